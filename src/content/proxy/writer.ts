/**
 * content/proxy writer: one Write bidi stream per writer, driven exactly like
 * containerd's remoteWriter: every request waits for its response (so the
 * daemon's pace is the writer's pace).
 *
 * - open: STAT{ref, total, expected}; the reply carries the offset to resume
 *   from (and AlreadyExists when the expected digest is present).
 * - write: WRITE{offset, data} in chunks of at most 1 MiB; the reply's offset
 *   must advance by the chunk size.
 * - status: STAT{} (the daemon does not echo `expected`: it is the one given
 *   at open).
 * - truncate(0): WRITE{offset: 0} with no data (the daemon truncates when a
 *   write at offset 0 meets a non-empty ingest). The protocol cannot cut an
 *   ingest in the middle: other sizes below the offset are NotImplemented.
 * - commit: COMMIT{total, expected, offset, labels}; the writer is closed
 *   afterwards, whatever the outcome.
 * - close: ends the sending side and waits for the daemon to finish the
 *   stream, so the ref lock is released when close() returns.
 */
import type * as grpc from '@grpc/grpc-js';
import { bidiCall, type BidiCall } from '../../api/grpc/client.js';
import { int64 } from '../../api/grpc/loader.js';
import type { content as api, In } from '../../api/grpc/messages.js';
import { timestampFromProto } from '../../api/grpc/timestamp.js';
import { canceled, failedPrecondition, invalidArgument, isCanceled, notImplemented, throwIfAborted, unknown } from '../../errdefs/index.js';
import type { Ctx } from '../../internal/context.js';
import type { CommitOpts, Status, Writer } from '../types.js';

/** Largest data payload of one WRITE request. */
export const MAX_WRITE_CHUNK = 1 << 20;

type Req = In<api.WriteContentRequest>;
type Res = api.WriteContentResponse;

export class RemoteWriter implements Writer {
  private offset = 0;
  private dgst = '';
  private total = 0;
  private closed = false;
  /** First stream failure: the stream is gone, every later call fails with it. */
  private broken: Error | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly responses: AsyncIterator<Res>;

  private constructor(
    private readonly call: BidiCall<Req, Res>,
    readonly ref: string,
    private readonly expected: string,
  ) {
    this.responses = call.responses[Symbol.asyncIterator]();
  }

  /** Opens the Write stream for ref and negotiates (STAT). */
  static async open(client: grpc.Client, ctx: Ctx, ref: string, total: number, expected: string): Promise<RemoteWriter> {
    throwIfAborted(ctx.signal);
    const call = bidiCall<Req, Res>(client, 'Write', ctx);
    const w = new RemoteWriter(call, ref, expected);
    try {
      const resp = await w.send({ action: 'STAT', ref, total: int64(total), expected });
      w.offset = Number(resp.offset);
      w.total = Number(resp.total);
    } catch (err) {
      call.cancel();
      w.closed = true;
      throw err;
    }
    return w;
  }

  /** One request, one response. Marks the writer broken on any failure. */
  private async send(req: Req, signal?: AbortSignal): Promise<Res> {
    if (this.broken) throw this.broken;
    let onAbort: (() => void) | undefined;
    if (signal) {
      throwIfAborted(signal);
      onAbort = () => this.call.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
    }
    try {
      await this.call.send(req);
      const r = await this.responses.next();
      if (r.done) throw unknown(`write ${this.ref}: stream ended without a response`);
      if (r.value.digest) this.dgst = r.value.digest;
      return r.value;
    } catch (err) {
      const e = signal?.aborted && !isCanceled(err) ? canceled('operation canceled', signal.reason) : (err as Error);
      this.broken = e;
      this.closed = true;
      throw e;
    } finally {
      if (onAbort) signal!.removeEventListener('abort', onAbort);
    }
  }

  /** Serialises operations on the stream. */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private checkOpen(): void {
    if (this.broken) throw this.broken;
    if (this.closed) throw failedPrecondition(`writer ${this.ref} is closed`);
  }

  write(chunk: Uint8Array, signal?: AbortSignal): Promise<void> {
    return this.run(async () => {
      this.checkOpen();
      for (let i = 0; i < chunk.length; i += MAX_WRITE_CHUNK) {
        const data = chunk.subarray(i, Math.min(chunk.length, i + MAX_WRITE_CHUNK));
        const offset = this.offset;
        const resp = await this.send({ action: 'WRITE', offset: int64(offset), data }, signal);
        const n = Number(resp.offset) - offset;
        if (n !== data.length) {
          this.broken = unknown(`write ${this.ref}: short write: ${n} of ${data.length} bytes at ${offset}`);
          this.closed = true;
          this.call.cancel();
          throw this.broken;
        }
        this.offset += n;
      }
    });
  }

  digest(): string {
    return this.dgst;
  }

  status(): Promise<Status> {
    return this.run(async () => {
      this.checkOpen();
      const resp = await this.send({ action: 'STAT' });
      this.offset = Number(resp.offset);
      this.total = Number(resp.total);
      return {
        ref: this.ref,
        offset: this.offset,
        total: this.total,
        expected: this.expected,
        startedAt: timestampFromProto(resp.started_at) ?? 0n,
        updatedAt: timestampFromProto(resp.updated_at) ?? 0n,
      };
    });
  }

  truncate(size: number): Promise<void> {
    return this.run(async () => {
      this.checkOpen();
      if (!Number.isInteger(size) || size < 0 || size > this.offset) {
        throw invalidArgument(`truncate ${this.ref} to ${size}: beyond the current offset ${this.offset}`);
      }
      if (size === this.offset) return;
      if (size !== 0) throw notImplemented(`truncate ${this.ref} to ${size}: only 0 or the current offset over the content API`);
      const resp = await this.send({ action: 'WRITE', offset: '0' });
      this.offset = Number(resp.offset);
    });
  }

  commit(ctx: Ctx, size: number, expected: string, opts: CommitOpts = {}): Promise<void> {
    return this.run(async () => {
      this.checkOpen();
      try {
        throwIfAborted(ctx.signal);
        const resp = await this.send({
          action: 'COMMIT',
          total: int64(size),
          offset: int64(this.offset),
          expected,
          labels: opts.labels ?? {},
        }, ctx.signal);
        const got = Number(resp.offset);
        if (size !== 0 && got !== size) throw failedPrecondition(`commit ${this.ref}: unexpected size ${got}, expected ${size}`);
        if (expected && resp.digest !== expected) throw failedPrecondition(`commit ${this.ref}: unexpected digest ${resp.digest}, expected ${expected}`);
        this.offset = got;
      } finally {
        await this.finish();
      }
    });
  }

  /** Ends the stream and waits until the daemon has finished it (releasing the ref). */
  private async finish(): Promise<void> {
    if (this.closed && this.broken) return;
    this.closed = true;
    this.call.end();
    try {
      for (;;) {
        const r = await this.responses.next();
        if (r.done) break;
      }
    } catch {
      // The stream is over either way.
    }
  }

  close(): Promise<void> {
    return this.run(async () => {
      if (this.closed) return;
      await this.finish();
    });
  }
}
