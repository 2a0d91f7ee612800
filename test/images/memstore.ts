/**
 * MemStore: an in-memory content Store test double with the local store's
 * contracts (one live writer per ref → Unavailable; a writer for a present
 * digest → AlreadyExists; commit verifies size/digest → FailedPrecondition,
 * keeping the ingest; ingests survive close and resume at their offset).
 * Filters on walk/listStatuses are not supported (all entries returned).
 */
import { Readable } from 'node:stream';
import * as digest from '../../src/digest/index.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, throwIfAborted, unavailable } from '../../src/errdefs/index.js';
import type { CommitOpts, Descriptor, Info, ReaderAt, Status, Store, WalkFn, Writer, WriterOpts } from '../../src/content/types.js';
import type { Ctx } from '../../src/internal/context.js';
import { applyLabelPaths } from '../../src/internal/fieldpaths.js';
import { now, type Timestamp } from '../../src/internal/time.js';

interface Blob { data: Buffer; info: Info }
interface Ingest { ref: string; chunks: Buffer[]; offset: number; total: number; expected: string; startedAt: Timestamp; updatedAt: Timestamp; locked: boolean }

export class MemStore implements Store {
  readonly blobs = new Map<string, Blob>();
  readonly ingests = new Map<string, Ingest>();
  /** Count of readerAt calls (tests assert reads). */
  reads = 0;

  async info(_ctx: Ctx, dgst: string): Promise<Info> {
    const b = this.blobs.get(dgst);
    if (!b) throw notFound(`content ${dgst}`);
    return { ...b.info, labels: { ...b.info.labels } };
  }

  async update(_ctx: Ctx, info: Pick<Info, 'digest'> & Partial<Info>, fieldpaths?: string[]): Promise<Info> {
    const b = this.blobs.get(info.digest);
    if (!b) throw notFound(`content ${info.digest}`);
    const { labels, rest } = applyLabelPaths(b.info.labels, info.labels, fieldpaths);
    if (rest.length) throw invalidArgument(`cannot update ${rest.join(', ')} field on content info ${info.digest}`);
    b.info = { ...b.info, labels, updatedAt: now() };
    return { ...b.info, labels: { ...labels } };
  }

  async walk(_ctx: Ctx, fn: WalkFn): Promise<void> {
    for (const b of [...this.blobs.values()]) await fn({ ...b.info, labels: { ...b.info.labels } });
  }

  async delete(_ctx: Ctx, dgst: string): Promise<void> {
    if (!this.blobs.delete(dgst)) throw notFound(`content ${dgst}`);
  }

  async readerAt(_ctx: Ctx, desc: Pick<Descriptor, 'digest'>): Promise<ReaderAt> {
    const b = this.blobs.get(desc.digest);
    if (!b) throw notFound(`content ${desc.digest}`);
    this.reads++;
    const data = b.data;
    return {
      size: data.length,
      async readAt(buf, offset) {
        if (offset >= data.length) return 0;
        const n = Math.min(buf.length, data.length - offset);
        buf.set(data.subarray(offset, offset + n));
        return n;
      },
      stream(opts = {}) {
        const start = opts.offset ?? 0;
        const end = opts.length !== undefined ? start + opts.length : data.length;
        const chunks: Buffer[] = [];
        for (let i = start; i < end; i += 7) chunks.push(data.subarray(i, Math.min(end, i + 7)));
        return Readable.from(chunks, { objectMode: false });
      },
      async close() {},
    };
  }

  async writer(ctx: Ctx, opts: WriterOpts): Promise<Writer> {
    if (!opts.ref) throw invalidArgument('ref must not be empty');
    throwIfAborted(ctx.signal);
    const expected = opts.desc?.digest ?? '';
    if (expected && this.blobs.has(expected)) throw alreadyExists(`content ${expected}`);
    let ing = this.ingests.get(opts.ref);
    if (ing?.locked) throw unavailable(`ref ${opts.ref} locked`);
    if (!ing) {
      const t = now();
      ing = { ref: opts.ref, chunks: [], offset: 0, total: 0, expected: '', startedAt: t, updatedAt: t, locked: false };
      this.ingests.set(opts.ref, ing);
    }
    ing.total = opts.desc?.size || ing.total;
    ing.expected = expected || ing.expected;
    ing.locked = true;
    return new MemWriter(this, ing);
  }

  async status(_ctx: Ctx, ref: string): Promise<Status> {
    const ing = this.ingests.get(ref);
    if (!ing) throw notFound(`ingest ref ${JSON.stringify(ref)}`);
    return statusOf(ing);
  }

  async listStatuses(): Promise<Status[]> {
    return [...this.ingests.values()].map(statusOf);
  }

  async abort(_ctx: Ctx, ref: string): Promise<void> {
    if (!this.ingests.delete(ref)) throw notFound(`ingest ref ${JSON.stringify(ref)}`);
  }

  /** Test helper: stores data directly; returns its descriptor. */
  put(data: Buffer | string, mediaType: string, labels: Record<string, string> = {}): Descriptor {
    const buf = Buffer.from(data);
    const dgst = digest.fromBytes(buf);
    const t = now();
    this.blobs.set(dgst, { data: buf, info: { digest: dgst, size: buf.length, createdAt: t, updatedAt: t, labels } });
    return { mediaType, digest: dgst, size: buf.length };
  }
}

function statusOf(ing: Ingest): Status {
  return { ref: ing.ref, offset: ing.offset, total: ing.total, expected: ing.expected, startedAt: ing.startedAt, updatedAt: ing.updatedAt };
}

class MemWriter implements Writer {
  private closed = false;
  constructor(private readonly store: MemStore, private readonly ing: Ingest) {}
  get ref() {
    return this.ing.ref;
  }
  async write(chunk: Uint8Array, signal?: AbortSignal): Promise<void> {
    this.check();
    throwIfAborted(signal);
    this.ing.chunks.push(Buffer.from(chunk));
    this.ing.offset += chunk.length;
    this.ing.updatedAt = now();
  }
  digest(): string {
    return digest.fromBytes(Buffer.concat(this.ing.chunks));
  }
  async status(): Promise<Status> {
    return statusOf(this.ing);
  }
  async truncate(size: number): Promise<void> {
    this.check();
    if (size < 0 || size > this.ing.offset) throw invalidArgument(`cannot truncate ingest ${this.ref} to ${size}`);
    this.ing.chunks = [Buffer.concat(this.ing.chunks).subarray(0, size)];
    this.ing.offset = size;
  }
  async commit(ctx: Ctx, size: number, expected: string, opts: CommitOpts = {}): Promise<void> {
    this.check();
    try {
      throwIfAborted(ctx.signal);
      if (size > 0 && size !== this.ing.offset) throw failedPrecondition(`unexpected commit size ${this.ing.offset}, expected ${size}`);
      const dgst = this.digest();
      if (expected && dgst !== expected) throw failedPrecondition(`unexpected commit digest ${dgst}, expected ${expected}`);
      this.store.ingests.delete(this.ing.ref);
      if (this.store.blobs.has(dgst)) throw alreadyExists(`content ${dgst}`);
      const t = now();
      const data = Buffer.concat(this.ing.chunks);
      this.store.blobs.set(dgst, { data, info: { digest: dgst, size: data.length, createdAt: t, updatedAt: t, labels: { ...(opts.labels ?? {}) } } });
    } finally {
      await this.close();
    }
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ing.locked = false;
  }
  private check() {
    if (this.closed) throw failedPrecondition(`writer for ${this.ref} is closed`);
  }
}
