/**
 * events/exchange: the in-process event bus (containerd's events/exchange).
 * Publish stamps and wraps an event; Forward passes an envelope through;
 * every subscriber gets the envelopes matching its filters, in publish order.
 *
 * Each subscriber has its own queue, so a slow one never blocks publishers or
 * other subscribers. A queue is bounded (MAX_QUEUED): a subscriber that falls
 * that far behind is dropped — its iteration fails with Unavailable — rather
 * than growing the daemon's memory without limit.
 */
import { DistError, codeOf, invalidArgument, unavailable, wrap } from '../errdefs/index.js';
import * as filters from '../filters/index.js';
import { isValid as isIdentifier, validate as validateIdentifier } from '../identifiers/index.js';
import type { Ctx } from '../internal/context.js';
import { now } from '../internal/time.js';
import { namespaceRequired } from '../metadata/namespace.js';
import { anyTypeName, packAny, unpackAny } from '../api/grpc/any.js';
import type { AnyValue, Envelope, Forwarder, Publisher, Subscriber } from './types.js';

/** Envelopes a subscriber may have pending before it is dropped. */
export const MAX_QUEUED = 10_000;

/** containerd's topic rule: "/" then identifiers separated by "/". */
export function validateTopic(topic: string): void {
  const fail = (why: string) => invalidArgument(`envelope topic ${JSON.stringify(topic)}: ${why}`);
  if (topic === '') throw fail('must not be empty');
  if (topic[0] !== '/') throw fail("must start with '/'");
  if (topic.length === 1) throw fail('must have at least one component');
  for (const c of topic.slice(1).split('/')) {
    if (!isIdentifier(c)) {
      try {
        validateIdentifier(c);
      } catch (err) {
        throw invalidArgument(`envelope topic ${JSON.stringify(topic)}: failed validation on component ${JSON.stringify(c)}: ${(err as Error).message}`, err);
      }
    }
  }
}

class Subscription {
  readonly queue: Envelope[] = [];
  failed?: Error;
  private wake?: () => void;

  constructor(readonly filter: filters.Filter) {}

  push(env: Envelope): void {
    if (this.failed) return;
    if (this.queue.length >= MAX_QUEUED) {
      this.failed = unavailable(`event subscriber fell behind by ${MAX_QUEUED} events`);
      this.queue.length = 0;
    } else {
      this.queue.push(env);
    }
    this.notify();
  }

  notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  wait(): Promise<void> {
    return new Promise((res) => (this.wake = res));
  }
}

export class Exchange implements Publisher, Forwarder, Subscriber {
  private readonly subs = new Set<Subscription>();

  /** Number of live subscriptions (for tests and metrics). */
  get subscribers(): number {
    return this.subs.size;
  }

  async publish(ctx: Ctx, topic: string, event: object, typeName?: string): Promise<void> {
    let ns: string;
    try {
      ns = namespaceRequired(ctx);
    } catch (err) {
      throw wrap(codeOf(err), `failed publishing event: ${err instanceof DistError ? err.detail : String(err)}`, err);
    }
    validateTopic(topic);
    const any: AnyValue = typeName === undefined ? toAny(event) : (packAny(typeName, event) as AnyValue);
    this.broadcast({ timestamp: now(), namespace: ns, topic, event: any });
  }

  async forward(_ctx: Ctx, env: Envelope): Promise<void> {
    if (!isIdentifier(env.namespace)) {
      try {
        validateIdentifier(env.namespace);
      } catch (err) {
        throw invalidArgument(`event envelope has invalid namespace: ${(err as Error).message}`, err);
      }
    }
    validateTopic(env.topic);
    if (typeof env.timestamp !== 'bigint') throw invalidArgument('timestamp must be set on forwarded event');
    this.broadcast({ ...env, event: toAny(env.event) });
  }

  async *subscribe(ctx: Ctx, fs: string[] = []): AsyncGenerator<Envelope> {
    let filter: filters.Filter;
    try {
      filter = filters.parseAll(...fs);
    } catch (err) {
      throw invalidArgument(`failed parsing subscription filters: ${(err as Error).message}`, err);
    }
    const sub = new Subscription(filter);
    this.subs.add(sub);
    const onAbort = () => sub.notify();
    ctx.signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        if (ctx.signal?.aborted) return;
        if (sub.failed) throw sub.failed;
        const env = sub.queue.shift();
        if (env) {
          yield env;
          continue;
        }
        await sub.wait();
      }
    } finally {
      ctx.signal?.removeEventListener('abort', onAbort);
      this.subs.delete(sub);
    }
  }

  /** Ends every subscription (daemon shutdown): iterations fail with Unavailable. */
  close(): void {
    for (const s of this.subs) {
      s.failed = unavailable('event exchange closed');
      s.notify();
    }
  }

  private broadcast(env: Envelope): void {
    if (this.subs.size === 0) return;
    const adaptor = envelopeAdaptor(env);
    for (const s of this.subs) {
      if (s.filter === filters.Always || s.filter.match(adaptor)) s.push(env);
    }
  }
}

/** Accepts a packed Any ({type_url, value}); anything else is a caller bug. */
function toAny(event: object): AnyValue {
  const e = event as Partial<AnyValue>;
  if (typeof e?.type_url !== 'string') throw invalidArgument('event must be a google.protobuf.Any');
  return { type_url: e.type_url, value: Buffer.from(e.value ?? []) };
}

/**
 * Filter fields of an envelope (containerd's Envelope.Field): namespace,
 * topic, and event.<field…> read from the decoded payload (string fields, map
 * entries by the joined rest of the path, nested messages by path). The
 * payload is decoded at most once, and only if a filter asks.
 */
export function envelopeAdaptor(env: Envelope): filters.Adaptor {
  let decoded: Record<string, unknown> | null | undefined;
  return (path) => {
    if (path.length === 0) return undefined;
    switch (path[0]) {
      case 'namespace':
        return env.namespace || undefined;
      case 'topic':
        return env.topic || undefined;
      case 'event': {
        if (decoded === undefined) {
          try {
            decoded = unpackAny(env.event as never).message as Record<string, unknown>;
          } catch {
            decoded = null; // unknown payload type: no fields
          }
        }
        return decoded ? fieldOf(decoded, path.slice(1)) : undefined;
      }
      default:
        return undefined;
    }
  };
}

function fieldOf(obj: Record<string, unknown>, path: string[]): string | undefined {
  if (path.length === 0) return undefined;
  const v = obj[path[0]];
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return path.length === 1 && v !== '' ? v : undefined;
  if (typeof v === 'number' || typeof v === 'boolean') return path.length === 1 ? String(v) : undefined;
  if (typeof v === 'object' && !Buffer.isBuffer(v) && !Array.isArray(v)) {
    const rest = path.slice(1);
    if (rest.length === 0) return undefined;
    const m = v as Record<string, unknown>;
    const joined = rest.join('.');
    // A map field (labels): key is the rest of the path joined with ".".
    if (typeof m[joined] === 'string') return (m[joined] as string) || undefined;
    return fieldOf(m, rest);
  }
  return undefined;
}

/** The payload's message name (for logs). */
export function eventTypeName(env: Envelope): string {
  return anyTypeName(env.event);
}

