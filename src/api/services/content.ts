/**
 * containerd.services.content.v1.Content over a content Store (containerd's
 * services/content/contentserver): Info, Update, List, Delete, Read, Status,
 * ListStatuses, Write, Abort — same validation, messages and stream shapes.
 *
 * Write follows containerd's protocol exactly: the first request names the
 * ref (and may pre-declare total/expected), which opens (or resumes) the
 * ingest and holds its lock for the stream's life. Every request is answered
 * with one response whose offset is the ingest's current offset; STAT also
 * reports digest/started_at/updated_at/total; WRITE checks the offset (a
 * non-zero offset must equal the current one, OutOfRange otherwise; offset 0
 * on a non-empty ingest truncates it) and appends; COMMIT does the same and
 * then commits with the last total/expected seen. A request carrying an
 * expected digest that the namespace already has aborts the ingest and fails
 * AlreadyExists. After a COMMIT (or the client's half-close) the last
 * response is sent once more, as containerd does. A failed commit leaves the
 * ingest in place; the ref lock is released when the stream ends either way.
 */
import { status as grpcStatus, type ServerWritableStream } from '@grpc/grpc-js';
import type { Info, Status, Store, Writer } from '../../content/types.js';
import * as digest from '../../digest/index.js';
import { DistError, codeOf, isAlreadyExists, isUnavailable, wrap } from '../../errdefs/index.js';
import type { Ctx } from '../../internal/context.js';
import type { Publisher } from '../../events/types.js';
import { Topics } from '../../events/types.js';
import { isServiceError, serviceError } from '../grpc/errors.js';
import { bidi, send, serverStream, unary, type HandlerOptions, type ServiceImpl } from '../grpc/handlers.js';
import type { content, google } from '../grpc/messages.js';
import { fromTs, int64, labelsOut, maskPaths, toNumber, ts } from './convert.js';

/** Infos per List response message (containerd's block size). */
export const LIST_BATCH = 100;
/**
 * Bytes per Read response message. containerd sends up to 1 MiB; smaller
 * messages keep the daemon's memory per concurrent Read low (clients accept
 * any size).
 */
export const READ_CHUNK = 256 * 1024;

export interface ContentServiceOptions extends HandlerOptions {
  /** Receives /content/delete events. */
  publisher?: Publisher;
  /** Called when a Write stream fails with something other than AlreadyExists (containerd logs these). */
  onWriteError?: (ref: string, err: unknown) => void;
}

export function infoToProto(i: Info): content.Info {
  return { digest: i.digest, size: int64(i.size), created_at: ts(i.createdAt), updated_at: ts(i.updatedAt), labels: labelsOut(i.labels) };
}

export function infoFromProto(i: content.Info | null | undefined): Info {
  return {
    digest: i?.digest ?? '',
    size: toNumber(i?.size, 'size'),
    createdAt: fromTs(i?.created_at),
    updatedAt: fromTs(i?.updated_at),
    labels: { ...(i?.labels ?? {}) },
  };
}

export function statusToProto(s: Status): content.Status {
  return { started_at: ts(s.startedAt), updated_at: ts(s.updatedAt), ref: s.ref, offset: int64(s.offset), total: int64(s.total), expected: s.expected };
}

const outOfRange = (msg: string) => serviceError(grpcStatus.OUT_OF_RANGE, msg);

export function contentService(store: Store, opts: ContentServiceOptions = {}): ServiceImpl {
  const h: HandlerOptions = { onError: opts.onError };
  const validDigest = (d: string, msg: (err: unknown) => string): void => {
    try {
      digest.parse(d);
    } catch (err) {
      throw serviceError(grpcStatus.INVALID_ARGUMENT, msg(err));
    }
  };
  const detail = (err: unknown) => (err instanceof DistError ? err.message : String(err));

  // Write streams whose writer is being closed, by namespace + ref.
  const closing = new Map<string, Promise<void>>();
  /**
   * Opens the ingest writer. A client that ends one Write stream and opens the
   * next one on the same ref at once (the Go client's Close then Writer) must
   * not see the first stream's lock: such a lock is waited for while that
   * stream is closing. A ref held by a live stream still fails Unavailable.
   */
  const openWriter = async (ctx: Ctx, ref: string, desc: { size: number; digest: string }): Promise<Writer> => {
    const key = `${ctx.namespace ?? ''}\0${ref}`;
    for (let attempt = 0; ; attempt++) {
      try {
        return await store.writer(ctx, { ref, desc });
      } catch (err) {
        if (!isUnavailable(err) || attempt >= 20) throw err;
        const c = closing.get(key);
        if (c) {
          await c.catch(() => undefined);
          continue;
        }
        // The previous stream's end may not have been seen yet: give it a few turns.
        if (attempt >= 3) throw err;
        await new Promise((res) => setImmediate(res));
      }
    }
  };

  return {
    Info: unary<content.InfoRequest, content.InfoResponse>(async (req, ctx) => {
      validDigest(req.digest, () => `${JSON.stringify(req.digest)} failed validation`);
      return { info: infoToProto(await store.info(ctx, req.digest)) };
    }, h),

    Update: unary<content.UpdateRequest, content.UpdateResponse>(async (req, ctx) => {
      const dg = req.info?.digest ?? '';
      validDigest(dg, () => `${JSON.stringify(dg)} failed validation`);
      const info = await store.update(ctx, infoFromProto(req.info), maskPaths(req.update_mask));
      return { info: infoToProto(info) };
    }, h),

    List: serverStream<content.ListContentRequest, content.ListContentResponse>(async (req, ctx, call) => {
      let batch: content.Info[] = [];
      const flush = async () => {
        const info = batch;
        batch = [];
        await send(call as ServerWritableStream<unknown, unknown>, { info }, ctx.signal);
      };
      await store.walk(ctx, async (info) => {
        batch.push(infoToProto(info));
        if (batch.length >= LIST_BATCH) await flush();
      }, req.filters ?? []);
      if (batch.length) await flush();
      return none();
    }, h),

    Delete: unary<content.DeleteContentRequest, google.Empty>(async (req, ctx) => {
      validDigest(req.digest, (err) => detail(err));
      await store.delete(ctx, req.digest);
      await opts.publisher?.publish(ctx, Topics.ContentDelete, { digest: req.digest }, 'containerd.events.ContentDelete');
      return {};
    }, h),

    Read: serverStream<content.ReadContentRequest, content.ReadContentResponse>(async (req, ctx, call) => {
      validDigest(req.digest, (err) => `${req.digest}: ${detail(err)}`);
      const oi = await store.info(ctx, req.digest);
      const ra = await store.readerAt(ctx, { digest: req.digest });
      try {
        let offset = toNumber(req.offset, 'offset');
        let size = toNumber(req.size, 'size');
        if (offset < 0) offset = 0;
        if (offset > oi.size) throw outOfRange(`read past object length ${oi.size} bytes`);
        if (size <= 0 || offset + size > oi.size) size = oi.size - offset;
        // Fresh buffer per message: grpc-js may still hold a queued one.
        const out = new Paced(call as ServerWritableStream<unknown, unknown>, ctx.signal);
        const end = offset + size;
        for (let pos = offset; pos < end; ) {
          const data = Buffer.allocUnsafe(Math.min(READ_CHUNK, end - pos));
          let n = 0;
          while (n < data.length) {
            const got = await ra.readAt(data.subarray(n), pos + n);
            if (got === 0) break;
            n += got;
          }
          if (n === 0) break; // the blob is shorter than its record says: end early
          await out.write({ offset: int64(pos), data: n === data.length ? data : data.subarray(0, n) });
          pos += n;
        }
        await out.flush();
      } finally {
        await ra.close();
      }
      return none();
    }, h),

    Status: unary<content.StatusRequest, content.StatusResponse>(async (req, ctx) => {
      try {
        return { status: statusToProto(await store.status(ctx, req.ref)) };
      } catch (err) {
        throw wrap(codeOf(err), `could not get status for ref ${JSON.stringify(req.ref)}: ${err instanceof DistError ? err.detail : String(err)}`, err);
      }
    }, h),

    ListStatuses: unary<content.ListStatusesRequest, content.ListStatusesResponse>(async (req, ctx) => {
      const statuses = await store.listStatuses(ctx, req.filters ?? []);
      return { statuses: statuses.map(statusToProto) };
    }, h),

    Abort: unary<content.AbortRequest, google.Empty>(async (req, ctx) => {
      await store.abort(ctx, req.ref);
      return {};
    }, h),

    Write: bidi<content.WriteContentRequest, Partial<content.WriteContentResponse>>(async (requests, sendMsg, ctx) => {
      const it = requests[Symbol.asyncIterator]();
      let next = await it.next();
      if (next.done) return;
      let req = next.value;
      const ref = req.ref;
      if (!ref) throw serviceError(grpcStatus.INVALID_ARGUMENT, 'first message must have a reference');
      let total = toNumber(req.total, 'total');
      let expected = req.expected ?? '';
      const key = `${ctx.namespace ?? ''}\0${ref}`;
      try {
        const wr = await openWriter(ctx, ref, { size: total, digest: expected });
        // One response object, updated in place like containerd's: fields set
        // by an earlier answer (started_at, total…) stay in later ones.
        const msg: Partial<content.WriteContentResponse> = {};
        try {
          for (;;) {
            msg.action = req.action;
            const ws = await wr.status();
            let offset = ws.offset;
            if (req.expected) {
              expected = req.expected;
              if (await has(store, ctx, req.expected)) {
                await wr.close();
                await store.abort(ctx, ref).catch(() => undefined);
                throw serviceError(grpcStatus.ALREADY_EXISTS, `blob with expected digest ${req.expected} exists`);
              }
            }
            const reqTotal = toNumber(req.total, 'total');
            if (reqTotal > 0) total = reqTotal;
            if (req.action === 'STAT') {
              msg.digest = wr.digest();
              msg.started_at = ts(ws.startedAt);
              msg.updated_at = ts(ws.updatedAt);
              msg.total = int64(total);
            } else {
              const reqOffset = toNumber(req.offset, 'offset');
              if (reqOffset > 0 && reqOffset !== ws.offset) {
                throw outOfRange(`write @${reqOffset} must occur at current offset ${ws.offset}`);
              }
              if (reqOffset === 0 && ws.offset > 0) {
                await wr.truncate(0);
                offset = 0;
              }
              const data = req.data;
              if (data && data.length > 0) {
                await wr.write(data, ctx.signal);
                offset += data.length;
              }
              if (req.action === 'COMMIT') {
                const labels = req.labels && Object.keys(req.labels).length ? req.labels : undefined;
                await wr.commit(ctx, total, expected, labels ? { labels } : {});
              }
              msg.digest = wr.digest();
            }
            msg.offset = int64(offset);
            await sendMsg(msg);
            if (req.action === 'COMMIT') break;
            next = await it.next();
            if (next.done) break;
            req = next.value;
          }
        } finally {
          // Register the close before awaiting it: a client that half-closes
          // and immediately reopens the ref waits for it (see openWriter).
          const closed = wr.close().finally(() => {
            if (closing.get(key) === closed) closing.delete(key);
          });
          closing.set(key, closed);
          await closed;
        }
        // containerd sends the last response once more when the stream ends cleanly.
        await sendMsg(msg);
      } catch (err) {
        const exists = isAlreadyExists(err) || (isServiceError(err) && err.code === grpcStatus.ALREADY_EXISTS);
        if (!exists) opts.onWriteError?.(ref, err);
        throw err;
      }
    }, h),
  };
}

/** Does the namespace have this blob? (containerd: Info succeeds) */
async function has(store: Store, ctx: Parameters<Store['info']>[0], dgst: string): Promise<boolean> {
  try {
    await store.info(ctx, dgst);
    return true;
  } catch {
    return false;
  }
}

/** An empty stream (for handlers that send through the call themselves). */
export async function* none<T>(): AsyncGenerator<T> {}

/** Messages a paced stream lets grpc-js hold before waiting. */
export const READ_WINDOW = 2;

/**
 * Writes to a server stream keeping at most READ_WINDOW messages queued in
 * grpc-js. Its object-mode buffer otherwise takes 16 messages (up to 16 MiB
 * of blob data per Read) before write() reports backpressure, which a slow
 * reader turns into daemon memory. A message counts as gone once grpc-js
 * has handed it to HTTP/2 (flow-controlled).
 */
export class Paced {
  private readonly pending: Promise<void>[] = [];
  private readonly aborted: Promise<never>;

  constructor(private readonly call: ServerWritableStream<unknown, unknown>, private readonly signal?: AbortSignal) {
    this.aborted = new Promise<never>((_, rej) => {
      const fail = () => rej(signal?.reason ?? new Error('call cancelled'));
      if (signal?.aborted) fail();
      else signal?.addEventListener('abort', fail, { once: true });
    });
    this.aborted.catch(() => undefined);
  }

  async write(msg: unknown): Promise<void> {
    this.signal?.throwIfAborted();
    if (this.pending.length >= READ_WINDOW) await Promise.race([this.pending.shift()!, this.aborted]);
    this.pending.push(
      new Promise<void>((res, rej) => {
        this.call.write(msg, (err?: Error | null) => (err ? rej(err) : res()));
      }),
    );
  }

  /** Waits until every message was handed over. */
  async flush(): Promise<void> {
    while (this.pending.length) await Promise.race([this.pending.shift()!, this.aborted]);
  }
}
