/**
 * handlers: turn async functions taking (request, Ctx) into grpc-js handlers.
 *
 * Each wrapper builds the Ctx from the call (namespace/lease headers, a signal
 * aborted on cancellation; see metadata.ts), runs the function, and maps any
 * thrown error with toGRPC. Streams respect backpressure: `send` resolves once
 * grpc-js can take more (or rejects when the call is cancelled).
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type * as grpc from '@grpc/grpc-js';
import type { Ctx } from '../../internal/context.js';
import { isServiceError, toGRPC } from './errors.js';
import { ctxFromCall, type CtxOptions } from './metadata.js';

export interface HandlerOptions extends CtxOptions {
  /** Called with every error a handler fails with (after mapping), e.g. to log Unknown ones. */
  onError?: (err: unknown, status: grpc.ServiceError) => void;
}

function fail(err: unknown, opts: HandlerOptions): grpc.ServiceError {
  const status = toGRPC(err);
  opts.onError?.(err, status);
  return status;
}

/** Writes one message, waiting for 'drain' when grpc-js buffers are full. */
export async function send<T>(stream: Writable, message: T, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  if (!stream.write(message)) await once(stream, 'drain', { signal });
}

/** A unary method: `(req, ctx, call) => response`. */
export function unary<Req, Res>(
  fn: (req: Req, ctx: Ctx, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
  opts: HandlerOptions = {},
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request, ctxFromCall(call, opts), call))
      .then(
        (res) => callback(null, res),
        (err) => callback(fail(err, opts)),
      );
  };
}

/** A server-streaming method: `(req, ctx, call) => async iterable of responses`. */
export function serverStream<Req, Res>(
  fn: (req: Req, ctx: Ctx, call: grpc.ServerWritableStream<Req, Res>) => AsyncIterable<Res> | Promise<AsyncIterable<Res>>,
  opts: HandlerOptions = {},
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    void (async () => {
      try {
        const ctx = ctxFromCall(call, opts);
        for await (const msg of await fn(call.request, ctx, call)) await send(call, msg, ctx.signal);
        call.end();
      } catch (err) {
        finishWithError(call, fail(err, opts));
      }
    })();
  };
}

/**
 * A bidirectional method: `(requests, send, ctx, call) => Promise<void>`.
 * `requests` ends when the client half-closes; leaving its loop early does
 * not tear the call down. The call is ended when the function resolves.
 */
export function bidi<Req, Res>(
  fn: (requests: AsyncIterable<Req>, send: (msg: Res) => Promise<void>, ctx: Ctx, call: grpc.ServerDuplexStream<Req, Res>) => Promise<void>,
  opts: HandlerOptions = {},
): grpc.handleBidiStreamingCall<Req, Res> {
  return (call) => {
    void (async () => {
      try {
        const ctx = ctxFromCall(call, opts);
        const requests = call.iterator({ destroyOnReturn: false }) as AsyncIterable<Req>;
        await fn(requests, (msg) => send(call, msg, ctx.signal), ctx, call);
        call.end();
      } catch (err) {
        finishWithError(call, fail(err, opts));
      }
    })();
  };
}

/** Ends a streaming call with an error status, unless the client is already gone. */
function finishWithError(call: grpc.ServerWritableStream<any, any> | grpc.ServerDuplexStream<any, any>, status: grpc.ServiceError): void {
  if (call.cancelled || call.destroyed || call.writableEnded) return;
  // grpc-js streaming calls turn an 'error' event into the final status.
  call.emit('error', isServiceError(status) ? status : toGRPC(status));
}

/** A grpc-js implementation map for one service: method name → handler. */
export type ServiceImpl = grpc.UntypedServiceImplementation;
