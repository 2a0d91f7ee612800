/**
 * client/tee: lets a pull unpack a layer while it downloads. An Ingester
 * wrapper copies the bytes of every layer ingest that starts at offset 0
 * into a stream the unpacker may claim by digest. Until claimed, chunks are
 * buffered up to a cap, then the download waits (bounded) for the unpacker
 * to claim or release the copy. Released, timed out, truncated, or closed
 * without a commit, the copy is abandoned and the stream (if claimed)
 * errors — the unpacker then applies the committed blob instead.
 * The copy never decides anything: the snapshot is committed only once the
 * blob itself committed (digest verified) and the diffID matched.
 *
 * The download fills buffers the tee lends (TeeWriter.chunkBuffer); the
 * claimed stream carries RECYCLE, through which the decompressor hands each
 * back once its input pipe took it, so a layer's bytes cycle through a few
 * buffers instead of taking fresh memory per chunk until the GC runs.
 */
import { PassThrough, type Readable } from 'node:stream';
import { RECYCLE } from '../archive/compression.js';
import type { CommitOpts, Info, Ingester, Manager, Status, Writer, WriterOpts } from '../content/types.js';
import { unavailable } from '../errdefs/index.js';
import { ChunkPool } from '../internal/chunkpool.js';
import { isLayer } from '../images/mediatypes.js';
import type { Ctx } from '../internal/context.js';

/** Bytes buffered for an unclaimed layer; past them the download waits for a decision. */
export const MAX_UNCLAIMED = 4 << 20;
/** How long a download waits for the unpacker to claim or release its copy. */
export const DECIDE_MS = 5000;

/** Spare chunk buffers a tee keeps (1 MiB each for a download's writes). */
const SPARE_MAX = 8;

class Tee {
  readonly pool = new ChunkPool(SPARE_MAX);
  private chunks: Buffer[] = [];
  private buffered = 0;
  private sink?: PassThrough;
  private dead = false;
  /** Wakes a download held for the unpacker's decision. */
  private decided: () => void = () => undefined;
  ended = false;

  constructor(private readonly onDead: () => void) {}

  get claimed(): boolean {
    return this.sink !== undefined;
  }

  /** chunk: written to the store already; the copy's only other holder. */
  async push(chunk: Uint8Array): Promise<void> {
    const b = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.dead) {
      this.pool.put(b.buffer);
      return;
    }
    if (this.sink) {
      if (!this.sink.write(b)) await drained(this.sink);
      return;
    }
    this.chunks.push(Buffer.from(b)); // the writer may reuse its buffer
    this.pool.put(b.buffer);
    this.buffered += b.length;
    if (this.buffered > MAX_UNCLAIMED) {
      // Hold the download until the unpacker claims or releases the copy
      // (it decides once it has read the manifest), at most DECIDE_MS.
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, DECIDE_MS);
        this.decided = () => {
          clearTimeout(t);
          resolve();
        };
      });
      if (!this.sink) this.fail();
    }
  }

  claim(): Readable | undefined {
    if (this.dead || this.sink) return undefined;
    this.sink = new PassThrough({ highWaterMark: 1 << 20 });
    (this.sink as PassThrough & { [RECYCLE]?: (chunk: Buffer) => void })[RECYCLE] = (chunk) => this.pool.put(chunk.buffer);
    for (const c of this.chunks) this.sink.write(c);
    this.chunks = [];
    if (this.ended) this.sink.end();
    this.decided();
    return this.sink;
  }

  end(): void {
    if (this.dead) return;
    this.ended = true;
    this.sink?.end();
  }

  fail(): void {
    if (this.dead) return;
    this.dead = true;
    this.chunks = [];
    this.sink?.destroy(unavailable('layer download copy abandoned'));
    this.decided();
    this.onDead();
  }
}

export class TeeingIngester implements Ingester, Pick<Manager, 'update'> {
  private readonly tees = new Map<string, Tee>();
  /** After release() or a claim: downloads that start from now on are not copied (but the claimed one's). */
  private released = false;
  /** A claim made before its layer's download started. */
  private pending?: { digest: string; resolve: (s: Readable | undefined) => void };
  private ended = false;
  /** Layers the fetch is done with (settle()). */
  private readonly settled = new Set<string>();

  constructor(private readonly inner: Ingester & Pick<Manager, 'update'>) {}

  update(ctx: Ctx, info: Pick<Info, 'digest'> & Partial<Info>, fieldpaths?: string[]): Promise<Info> {
    return this.inner.update(ctx, info, fieldpaths);
  }

  /**
   * The live copy of the layer `digest`, the one copy taken: the others are
   * dropped (release()). Should that download not have started yet, it
   * resolves when it starts, or with undefined once it cannot come live
   * (settle(digest), end(), or a download resumed past byte 0).
   */
  claim(digest: string): Promise<Readable | undefined> {
    this.pending?.resolve(undefined);
    this.pending = undefined;
    const tee = this.tees.get(digest);
    const stream = tee?.claim();
    this.release();
    if (tee) return Promise.resolve(stream);
    if (this.ended || this.settled.has(digest)) return Promise.resolve(undefined);
    return new Promise((resolve) => (this.pending = { digest, resolve }));
  }

  /** The fetch is done with `digest` (committed, or present already): a claim still waiting for it gets undefined. */
  settle(digest: string): void {
    this.settled.add(digest);
    if (this.pending?.digest === digest) this.answer(undefined);
  }

  /**
   * Drops every unclaimed copy, and copies no download that starts later
   * but a pending claim's. (A copy nobody claims would hold its download
   * for DECIDE_MS once past MAX_UNCLAIMED.)
   */
  release(): void {
    this.released = true;
    for (const [d, t] of this.tees) {
      if (!t.claimed) {
        t.fail();
        this.tees.delete(d);
      }
    }
  }

  /** The fetch ended: release(), and claims (pending or later) of a download not started get undefined. */
  end(): void {
    this.ended = true;
    this.release();
    this.answer(undefined);
  }

  async writer(ctx: Ctx, opts: WriterOpts): Promise<Writer> {
    const w = await this.inner.writer(ctx, opts);
    const desc = opts.desc;
    if (!desc?.digest || !desc.mediaType || !isLayer(desc.mediaType) || this.tees.has(desc.digest)) return w;
    const digest = desc.digest;
    // not copied: a claim of it (now or later) gets undefined
    if ((this.released && this.pending?.digest !== digest) || (await w.status()).offset !== 0) {
      this.settle(digest);
      return w;
    }
    const tee = new Tee(() => this.tees.get(digest) === tee && this.tees.delete(digest));
    this.tees.set(digest, tee);
    if (this.pending?.digest === digest) this.answer(tee.claim());
    return new TeeWriter(w, tee);
  }

  private answer(s: Readable | undefined): void {
    const p = this.pending;
    this.pending = undefined;
    p?.resolve(s);
  }
}

class TeeWriter implements Writer {
  private offset = 0;
  /** A claimed copy hands the chunk itself to the unpacker's stream. */
  readonly retainsChunks = true;

  chunkBuffer(size: number): Buffer {
    return this.tee.pool.get(size);
  }

  constructor(private readonly w: Writer, private readonly tee: Tee) {}

  get ref(): string {
    return this.w.ref;
  }

  async write(chunk: Uint8Array, signal?: AbortSignal): Promise<void> {
    await this.w.write(chunk, signal);
    this.offset += chunk.length;
    await this.tee.push(chunk);
  }

  digest(): string {
    return this.w.digest();
  }

  status(): Promise<Status> {
    return this.w.status();
  }

  async truncate(size: number): Promise<void> {
    await this.w.truncate(size);
    if (size !== this.offset) this.tee.fail();
    this.offset = size;
  }

  async commit(ctx: Ctx, size: number, expected: string, opts?: CommitOpts): Promise<void> {
    try {
      await this.w.commit(ctx, size, expected, opts);
      this.tee.end();
    } catch (err) {
      this.tee.fail();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.w.close();
    if (!this.tee.ended) this.tee.fail();
  }
}

/** Resolves when the stream drains or closes (listeners removed either way). */
function drained(s: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      s.off('drain', done);
      s.off('close', done);
      resolve();
    };
    s.on('drain', done);
    s.on('close', done);
  });
}
