/**
 * grpc.health.v1.Health: the standard health check. The server as a whole
 * ("") and every service name set with setStatus answer SERVING unless told
 * otherwise; unknown names are NotFound on Check (as grpc-go) and
 * SERVICE_UNKNOWN on Watch. shutdown() flips everything to NOT_SERVING.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { serverStream, unary, type ServiceImpl } from '../grpc/handlers.js';
import { serviceError } from '../grpc/errors.js';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

interface CheckRequest {
  service: string;
}
interface CheckResponse {
  status: ServingStatus;
}

export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>([['', 'SERVING']]);
  private readonly watchers = new Set<() => void>();
  private down = false;

  /** `services`: full names answered SERVING besides "". */
  constructor(services: Iterable<string> = []) {
    for (const s of services) this.statuses.set(s, 'SERVING');
  }

  setStatus(service: string, status: ServingStatus): void {
    if (this.down) status = 'NOT_SERVING';
    this.statuses.set(service, status);
    this.notify();
  }

  /** Everything NOT_SERVING from now on (call when the daemon starts stopping). */
  shutdown(): void {
    this.down = true;
    for (const k of this.statuses.keys()) this.statuses.set(k, 'NOT_SERVING');
    this.notify();
  }

  status(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  private notify(): void {
    for (const w of this.watchers) w();
  }

  /** The grpc-js implementation (not namespaced). */
  impl(): ServiceImpl {
    return {
      Check: unary<CheckRequest, CheckResponse>(
        (req) => {
          const s = this.statuses.get(req.service);
          if (s === undefined) throw serviceError(grpcStatus.NOT_FOUND, 'unknown service');
          return { status: s };
        },
        { namespaced: false },
      ),
      Watch: serverStream<CheckRequest, CheckResponse>(
        (req, ctx) => this.watch(req.service, ctx.signal!),
        { namespaced: false },
      ),
    };
  }

  /** Current status, then every change, until the signal aborts. */
  private async *watch(service: string, signal: AbortSignal): AsyncGenerator<CheckResponse> {
    let wake: (() => void) | undefined;
    let dirty = true;
    const onChange = () => {
      dirty = true;
      wake?.();
    };
    this.watchers.add(onChange);
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      let last: ServingStatus | undefined;
      while (!signal.aborted) {
        if (dirty) {
          dirty = false;
          const s = this.statuses.get(service) ?? 'SERVICE_UNKNOWN';
          if (s !== last) {
            last = s;
            yield { status: s };
          }
          continue;
        }
        await new Promise<void>((res) => (wake = res));
        wake = undefined;
      }
    } finally {
      this.watchers.delete(onChange);
      signal.removeEventListener('abort', onAbort);
    }
  }
}
