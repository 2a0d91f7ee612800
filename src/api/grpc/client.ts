/**
 * client: grpc-js clients of a containerd-compatible daemon on a unix socket.
 *
 * One Connection holds one channel; `connection.client(name)` gives the
 * (cached) grpc-js client of a service on it. The call helpers put the Ctx's
 * namespace/lease into the headers, cancel the call when ctx.signal aborts,
 * and turn gRPC errors into DistErrors with fromGRPC.
 */
import * as grpc from '@grpc/grpc-js';
import type { Ctx } from '../../internal/context.js';
import { canceled, unavailable } from '../../errdefs/index.js';
import { fromGRPC } from './errors.js';
import { clientConstructor, type ServiceName } from './loader.js';
import { metadataFromCtx } from './metadata.js';
import { MAX_MESSAGE_SIZE, socketPath } from './server.js';

/** "/path.sock", "unix:///path.sock" or "unix:/path.sock" → "unix:///abs/path.sock". */
export function normalizeAddress(address: string): string {
  return `unix://${socketPath(address)}`;
}

export interface ConnectionOptions {
  maxMessageSize?: number;
  grpcOptions?: grpc.ChannelOptions;
}

export class Connection {
  readonly address: string;
  readonly channel: grpc.Channel;
  private readonly clients = new Map<ServiceName, grpc.Client>();

  constructor(address: string, opts: ConnectionOptions = {}) {
    this.address = normalizeAddress(address);
    const max = opts.maxMessageSize ?? MAX_MESSAGE_SIZE;
    this.channel = new grpc.Channel(this.address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': max,
      'grpc.max_send_message_length': max,
      ...opts.grpcOptions,
    });
  }

  /** The grpc-js client of a service, sharing this connection's channel. */
  client(name: ServiceName): grpc.Client {
    let c = this.clients.get(name);
    if (!c) {
      const Ctor = clientConstructor(name);
      c = new Ctor(this.address, grpc.credentials.createInsecure(), { channelOverride: this.channel });
      this.clients.set(name, c);
    }
    return c;
  }

  /** Waits until the channel is connected; Unavailable when it does not within timeoutMs. */
  async ready(timeoutMs = 5_000): Promise<void> {
    const c = this.client('containerd.services.version.v1.Version');
    await new Promise<void>((res, rej) =>
      c.waitForReady(Date.now() + timeoutMs, (err) => (err ? rej(unavailable(`${this.address}: ${err.message}`, err)) : res())),
    );
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    this.channel.close();
  }
}

/** Per-call options besides the Ctx. */
export interface CallOptions {
  /** Absolute deadline (ms since epoch) or Date. */
  deadline?: number | Date;
}

function callOptions(o: CallOptions = {}): grpc.CallOptions {
  return o.deadline !== undefined ? { deadline: o.deadline } : {};
}

/** Cancels `call` when the signal aborts; returns the detach function. */
function bindSignal(call: { cancel(): void }, signal?: AbortSignal): () => void {
  if (!signal) return () => {};
  if (signal.aborted) {
    call.cancel();
    return () => {};
  }
  const onAbort = () => call.cancel();
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

function mapError(err: unknown, signal?: AbortSignal): Error {
  if (signal?.aborted) return canceled('operation canceled', signal.reason);
  return fromGRPC(err);
}

function method(client: grpc.Client, name: string): (...args: any[]) => any {
  const fn = (client as any)[name];
  if (typeof fn !== 'function') throw new Error(`no method ${name} on client`);
  return fn.bind(client);
}

/** A unary call: resolves with the decoded response, rejects with a DistError. */
export function unaryCall<Req, Res>(client: grpc.Client, name: string, request: Req, ctx: Ctx = {}, opts?: CallOptions): Promise<Res> {
  return new Promise<Res>((res, rej) => {
    let detach = () => {};
    const call = method(client, name)(request, metadataFromCtx(ctx), callOptions(opts), (err: grpc.ServiceError | null, value: Res) => {
      detach();
      if (err) rej(mapError(err, ctx.signal));
      else res(value);
    }) as grpc.ClientUnaryCall;
    detach = bindSignal(call, ctx.signal);
  });
}

/** A server-streaming call as an async iterable; breaking out cancels the call. */
export async function* serverStreamCall<Req, Res>(client: grpc.Client, name: string, request: Req, ctx: Ctx = {}, opts?: CallOptions): AsyncGenerator<Res> {
  const call = method(client, name)(request, metadataFromCtx(ctx), callOptions(opts)) as grpc.ClientReadableStream<Res>;
  const detach = bindSignal(call, ctx.signal);
  let finished = false;
  try {
    for await (const msg of call) yield msg as Res;
    finished = true;
  } catch (err) {
    finished = true;
    throw mapError(err, ctx.signal);
  } finally {
    detach();
    if (!finished) call.cancel();
  }
}

/** A bidirectional call: send with backpressure, read responses, close the sending side. */
export interface BidiCall<Req, Res> {
  /** Writes one request; waits for 'drain' when buffers are full. */
  send(msg: Req): Promise<void>;
  /** Half-closes: no more requests. */
  end(): void;
  /** Responses, in order; errors arrive as DistErrors. */
  responses: AsyncIterable<Res>;
  cancel(): void;
}

export function bidiCall<Req, Res>(client: grpc.Client, name: string, ctx: Ctx = {}, opts?: CallOptions): BidiCall<Req, Res> {
  const call = method(client, name)(metadataFromCtx(ctx), callOptions(opts)) as grpc.ClientDuplexStream<Req, Res>;
  const detach = bindSignal(call, ctx.signal);
  // Keep errors from surfacing as unhandled 'error' events; the iterator reports them.
  call.on('error', () => {});
  const iterator = call.iterator({ destroyOnReturn: false }) as AsyncIterableIterator<Res>;
  return {
    async send(msg) {
      if (!call.write(msg)) {
        await new Promise<void>((res, rej) => {
          const cleanup = () => {
            call.off('drain', onDrain);
            call.off('close', onClose);
          };
          const onDrain = () => { cleanup(); res(); };
          const onClose = () => { cleanup(); rej(canceled('stream closed while writing')); };
          call.on('drain', onDrain);
          call.on('close', onClose);
        });
      }
    },
    end() {
      call.end();
    },
    cancel() {
      call.cancel();
    },
    responses: {
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            let r: IteratorResult<Res>;
            try {
              r = await iterator.next();
            } catch (err) {
              throw mapError(err, ctx.signal);
            }
            if (r.done) return;
            yield r.value;
          }
        } finally {
          detach();
        }
      },
    },
  };
}
