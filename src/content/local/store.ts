/**
 * content/local: the content store on disk, shared by every namespace.
 *
 * Layout under root:
 *   blobs/<alg>/<hex>               committed blobs (read-only, 0444)
 *   ingest/<sha256(ref)>/           one folder per ingest ref:
 *     ref, data, total, expected, startedat, updatedat, lock
 *
 * Contracts:
 * - One live writer per ref across processes: the `lock` file holds the
 *   owner's pid (O_EXCL create); a lock whose pid is dead is taken over, so an
 *   ingest survives its writer being SIGKILLed and can be resumed.
 * - Commit verifies size and digest, fsyncs, then renames data into blobs/
 *   (atomic), so no reader ever sees a partial blob. A mismatch fails with
 *   FailedPrecondition and keeps the ingest; an existing blob: AlreadyExists.
 * - Labels are kept in memory only (the metadata store persists them).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as digest from '../../digest/index.js';
import { alreadyExists, failedPrecondition, invalidArgument, isNotFound, notFound, throwIfAborted, unavailable, withHint } from '../../errdefs/index.js';
import * as filters from '../../filters/index.js';
import { applyLabelPaths } from '../../internal/fieldpaths.js';
import type { Ctx } from '../../internal/context.js';
import { native } from '../../internal/sys.js';
import { processAlive, procStat } from '../../internal/proc.js';
import { now, type Timestamp } from '../../internal/time.js';
import type { CommitOpts, Info, ReaderAt, Status, Store, WalkFn, Writer, WriterOpts } from '../types.js';

/** Options the metadata layer passes to the local writer's commit. */
export interface LocalCommitOpts extends CommitOpts {
  /**
   * Runs the final publish step (the rename into blobs/) inside the caller's
   * critical section, e.g. a database write transaction shared with GC.
   */
  withLock?: <T>(publish: () => T) => T;
}

const HASH_CHUNK = 1 << 20;

export class LocalStore implements Store {
  private readonly labels = new Map<string, { labels: Record<string, string>; updatedAt: Timestamp }>();
  /** Refs with a live writer in this process. */
  private readonly locked = new Set<string>();

  private constructor(readonly root: string) {}

  static async open(root: string): Promise<LocalStore> {
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
    await mkdir(join(root, 'ingest'), { recursive: true });
    return new LocalStore(root);
  }

  /** Path of a committed blob (whether or not it exists). */
  blobPath(dgst: string): string {
    const { algorithm, hex } = digest.parse(dgst);
    return join(this.root, 'blobs', algorithm, hex);
  }

  ingestDir(ref: string): string {
    return join(this.root, 'ingest', createHash('sha256').update(ref).digest('hex'));
  }

  async info(_ctx: Ctx, dgst: string): Promise<Info> {
    const p = this.blobPath(dgst);
    let st;
    try {
      st = await stat(p, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`content ${dgst}`);
      throw err;
    }
    const l = this.labels.get(dgst);
    return { digest: dgst, size: Number(st.size), createdAt: st.mtimeNs, updatedAt: l?.updatedAt ?? st.mtimeNs, labels: { ...(l?.labels ?? {}) } };
  }

  async update(ctx: Ctx, info: Pick<Info, 'digest'> & Partial<Info>, fieldpaths?: string[]): Promise<Info> {
    const cur = await this.info(ctx, info.digest);
    const { labels, rest } = applyLabelPaths(cur.labels, info.labels, fieldpaths);
    if (rest.length) throw invalidArgument(`cannot update ${rest.join(', ')} field on content info ${info.digest}`);
    const updatedAt = now();
    this.labels.set(info.digest, { labels, updatedAt });
    return { ...cur, labels, updatedAt };
  }

  async walk(ctx: Ctx, fn: WalkFn, fs: string[] = []): Promise<void> {
    const filter = filters.parseAll(...fs);
    const blobs = join(this.root, 'blobs');
    for (const alg of await readdir(blobs).catch(() => [] as string[])) {
      for (const hex of await readdir(join(blobs, alg)).catch(() => [] as string[])) {
        throwIfAborted(ctx.signal);
        const dgst = `${alg}:${hex}`;
        if (!digest.isValid(dgst)) continue;
        let info: Info;
        try {
          info = await this.info(ctx, dgst);
        } catch (err) {
          if (isNotFound(err)) continue; // deleted meanwhile
          throw err;
        }
        if (filter.match(adaptInfo(info))) await fn(info);
      }
    }
  }

  async delete(_ctx: Ctx, dgst: string): Promise<void> {
    if (!this.removeBlob(dgst)) throw notFound(`content ${dgst}`);
  }

  /** @internal Labels given at commit (kept in memory, like update's). */
  setCommitLabels(dgst: string, labels: Record<string, string> | undefined, at: Timestamp): void {
    if (labels && Object.keys(labels).length) this.labels.set(dgst, { labels: { ...labels }, updatedAt: at });
  }

  /** Size of a committed blob, or undefined when absent (synchronous, for callers inside a DB transaction). */
  blobSize(dgst: string): number | undefined {
    try {
      return statSync(this.blobPath(dgst)).size;
    } catch {
      return undefined;
    }
  }

  /** Removes a blob file synchronously (for callers inside a DB transaction); false when absent. */
  removeBlob(dgst: string): boolean {
    try {
      unlinkSync(this.blobPath(dgst));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    this.labels.delete(dgst);
    return true;
  }

  async readerAt(_ctx: Ctx, desc: { digest: string }): Promise<ReaderAt> {
    const p = this.blobPath(desc.digest);
    let fh: FileHandle;
    try {
      fh = await open(p, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`content ${desc.digest}`);
      throw err;
    }
    const size = (await fh.stat()).size;
    return new FileReaderAt(fh, p, size);
  }

  async writer(ctx: Ctx, opts: WriterOpts): Promise<LocalWriter> {
    const ref = opts.ref;
    if (!ref) throw invalidArgument('ref must not be empty');
    throwIfAborted(ctx.signal);
    const expected = opts.desc?.digest ?? '';
    if (expected) {
      digest.parse(expected);
      if (existsSync(this.blobPath(expected))) throw alreadyExists(`content ${expected}`);
    }
    const total = opts.desc?.size ?? 0;
    const dir = this.ingestDir(ref);
    mkdirSync(dir, { recursive: true });
    this.lock(ref, dir);
    try {
      const t = now();
      const dataPath = join(dir, 'data');
      let startedAt: Timestamp = t;
      let updatedAt: Timestamp = t;
      let savedTotal = 0;
      let savedExpected = '';
      if (existsSync(join(dir, 'ref'))) {
        // Resume: keep timestamps, total and expected of the ingest.
        startedAt = readTimestamp(join(dir, 'startedat')) ?? t;
        updatedAt = readTimestamp(join(dir, 'updatedat')) ?? t;
        savedTotal = Number(readText(join(dir, 'total')) || '0');
        savedExpected = readText(join(dir, 'expected'));
      } else {
        writeFileSync(join(dir, 'ref'), ref);
        writeFileSync(join(dir, 'startedat'), t.toString());
        writeFileSync(join(dir, 'updatedat'), t.toString());
      }
      const finalTotal = total || savedTotal;
      const finalExpected = expected || savedExpected;
      if (finalTotal !== savedTotal) writeFileSync(join(dir, 'total'), String(finalTotal));
      if (finalExpected !== savedExpected) writeFileSync(join(dir, 'expected'), finalExpected);
      const fh = await open(dataPath, existsSync(dataPath) ? 'r+' : 'w+');
      const alg = finalExpected ? digest.parse(finalExpected).algorithm : digest.Canonical;
      const { hash, size } = await hashFile(fh, alg, ctx.signal);
      return new LocalWriter(this, ref, dir, fh, hash, alg, size, finalTotal, finalExpected, startedAt, updatedAt);
    } catch (err) {
      this.unlock(ref, dir);
      throw err;
    }
  }

  async status(_ctx: Ctx, ref: string): Promise<Status> {
    const dir = this.ingestDir(ref);
    const st = readIngest(dir);
    if (!st || st.ref !== ref) throw notFound(`ingest ref ${JSON.stringify(ref)}`);
    return st;
  }

  async listStatuses(ctx: Ctx, fs: string[] = []): Promise<Status[]> {
    const filter = filters.parseAll(...fs);
    const out: Status[] = [];
    const base = join(this.root, 'ingest');
    for (const name of await readdir(base).catch(() => [] as string[])) {
      throwIfAborted(ctx.signal);
      const st = readIngest(join(base, name));
      if (st && filter.match(adaptStatus(st))) out.push(st);
    }
    return out.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  }

  async abort(_ctx: Ctx, ref: string): Promise<void> {
    const dir = this.ingestDir(ref);
    if (!existsSync(join(dir, 'ref'))) throw notFound(`ingest ref ${JSON.stringify(ref)}`);
    await rm(dir, { recursive: true, force: true });
  }

  /** Takes the ref lock or throws Unavailable. */
  private lock(ref: string, dir: string): void {
    const lockPath = join(dir, 'lock');
    if (this.locked.has(ref)) throw locked(ref);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(lockPath, 'wx');
        writeSync(fd, lockOwner(process.pid));
        closeSync(fd);
        this.locked.add(ref);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const [pidText, started] = readText(lockPath).split(' ');
        const pid = Number(pidText);
        if (pid && pid !== process.pid && processAlive(pid, started)) throw locked(ref);
        // Stale lock: its owner died (or it is ours from a writer that was lost).
        rmSync(lockPath, { force: true });
      }
    }
    throw locked(ref);
  }

  /** Whether a live writer (in this or another process) holds the ref. */
  isLocked(ref: string): boolean {
    if (this.locked.has(ref)) return true;
    const [pidText, started] = readText(join(this.ingestDir(ref), 'lock')).split(' ');
    const pid = Number(pidText);
    return !!pid && processAlive(pid, started);
  }

  /** @internal */
  unlock(ref: string, dir: string): void {
    this.locked.delete(ref);
    rmSync(join(dir, 'lock'), { force: true });
  }
}

/**
 * Bytes a writer lets pile up before it asks the kernel to start writing
 * them out (commit's fsync then waits only for the tail: ~30 ms less at the
 * end of a 50 MB layer here). Linux; without the addon, fsync does it all.
 */
const WRITEBACK_WINDOW = 8 << 20;

export class LocalWriter implements Writer {
  private closed = false;
  /** Bytes below this offset were handed to writeback already. */
  private writeback = 0;
  /** The writeback request in flight, if any. */
  private flushing: Promise<void> | undefined;
  constructor(
    private readonly store: LocalStore,
    readonly ref: string,
    private readonly dir: string,
    private readonly fh: FileHandle,
    private hash: Hash,
    private readonly alg: string,
    private offset: number,
    private readonly total: number,
    private readonly expected: string,
    private readonly startedAt: Timestamp,
    private updatedAt: Timestamp,
  ) {}

  async write(chunk: Uint8Array, signal?: AbortSignal): Promise<void> {
    this.checkOpen();
    throwIfAborted(signal);
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, done, chunk.length - done, this.offset + done);
      done += bytesWritten;
    }
    this.hash.update(chunk);
    this.offset += chunk.length;
    this.updatedAt = now();
    if (this.offset - this.writeback >= WRITEBACK_WINDOW && native?.startWriteback && !this.flushing) {
      // one at a time; commit and close wait for it (the fd must stay open)
      this.flushing = native.startWriteback(this.fh.fd, this.writeback, this.offset - this.writeback).finally(() => (this.flushing = undefined));
      this.writeback = this.offset;
    }
  }

  digest(): string {
    return `${this.alg}:${this.hash.copy().digest('hex')}`;
  }

  async status(): Promise<Status> {
    return { ref: this.ref, offset: this.offset, total: this.total, expected: this.expected, startedAt: this.startedAt, updatedAt: this.updatedAt };
  }

  async truncate(size: number): Promise<void> {
    this.checkOpen();
    if (size < 0 || size > this.offset) throw invalidArgument(`cannot truncate ingest ${this.ref} to ${size} (at ${this.offset})`);
    await this.fh.truncate(size);
    const { hash } = await hashFile(this.fh, this.alg, undefined, size);
    this.hash = hash;
    this.offset = size;
    this.writeback = Math.min(this.writeback, size);
    this.updatedAt = now();
  }

  async commit(ctx: Ctx, size: number, expected: string, opts: LocalCommitOpts = {}): Promise<void> {
    this.checkOpen();
    try {
      throwIfAborted(ctx.signal);
      await this.flushing;
      await this.fh.sync();
      if (size > 0 && size !== this.offset) {
        throw failedPrecondition(`unexpected commit size ${this.offset}, expected ${size}`);
      }
      let dgst = this.digest();
      if (expected) {
        const alg = digest.parse(expected).algorithm;
        if (alg !== this.alg) dgst = `${alg}:${(await hashFile(this.fh, alg, ctx.signal, this.offset)).hash.digest('hex')}`;
        if (dgst !== expected) throw failedPrecondition(`unexpected commit digest ${dgst}, expected ${expected}`);
      }
      const target = this.store.blobPath(dgst);
      const dataPath = join(this.dir, 'data');
      mkdirSync(join(target, '..'), { recursive: true });
      // The commit time becomes the blob's mtime (info.createdAt), as in containerd.
      // utimes takes float seconds and libuv keeps whole µs (truncating): use a
      // whole µs 1-2 µs ahead of now(), passed as its middle to survive the float.
      const commitUs = now() / 1000n + 2n;
      const committedAt = commitUs * 1000n;
      const secs = Number(commitUs / 1_000_000n) + (Number(commitUs % 1_000_000n) + 0.5) / 1e6;
      utimesSync(dataPath, secs, secs);
      // After publish ran, the ingest is spent: its data is in blobs/ (moved) or
      // the same blob was already there. Either way the ingest folder goes.
      let published = false;
      const publish = () => {
        published = true;
        if (existsSync(target)) return false;
        renameSync(dataPath, target);
        return true;
      };
      let moved: boolean;
      try {
        moved = (opts.withLock ?? ((f) => f()))(publish);
      } finally {
        if (published) {
          await this.close();
          await rm(this.dir, { recursive: true, force: true });
        }
      }
      if (!moved) throw alreadyExists(`content ${dgst}`);
      this.store.setCommitLabels(dgst, opts.labels, committedAt);
      try {
        fsyncDir(join(target, '..'));
      } catch {
        /* best effort */
      }
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.flushing; // it holds the fd number
      await this.fh.close();
    } catch {
      /* already closed */
    }
    if (existsSync(this.dir)) {
      try {
        await writeFile(join(this.dir, 'updatedat'), this.updatedAt.toString());
      } catch {
        /* dir removed by commit/abort */
      }
    }
    this.store.unlock(this.ref, this.dir);
  }

  private checkOpen(): void {
    if (this.closed) throw failedPrecondition(`writer for ${this.ref} is closed`);
  }
}

class FileReaderAt implements ReaderAt {
  constructor(private readonly fh: FileHandle, readonly path: string, readonly size: number) {}

  async readAt(buf: Uint8Array, offset: number): Promise<number> {
    if (offset >= this.size) return 0;
    const { bytesRead } = await this.fh.read(buf, 0, Math.min(buf.length, this.size - offset), offset);
    return bytesRead;
  }

  stream(opts: { offset?: number; length?: number; signal?: AbortSignal } = {}): Readable {
    const start = opts.offset ?? 0;
    const end = opts.length !== undefined ? start + opts.length - 1 : undefined;
    if (end !== undefined && end < start) return Readable.from([]);
    return createReadStream(this.path, { start, end, highWaterMark: 1 << 20, signal: opts.signal });
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

/** Hashes the first `limit` bytes of a file (default: all); returns hash and size. */
async function hashFile(fh: FileHandle, alg: string, signal?: AbortSignal, limit?: number): Promise<{ hash: Hash; size: number }> {
  const hash = digest.hasher(alg);
  const size = limit ?? (await fh.stat()).size;
  const buf = Buffer.allocUnsafe(Math.min(HASH_CHUNK, Math.max(size, 1)));
  let pos = 0;
  while (pos < size) {
    throwIfAborted(signal);
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return { hash, size: pos };
}

function readText(p: string): string {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return '';
  }
}

function readTimestamp(p: string): Timestamp | undefined {
  const s = readText(p);
  return /^\d+$/.test(s) ? BigInt(s) : undefined;
}

function readIngest(dir: string): Status | undefined {
  const ref = readText(join(dir, 'ref'));
  if (!ref) return undefined;
  let offset = 0;
  let dataMtime = 0n;
  try {
    const st = statSync(join(dir, 'data'), { bigint: true });
    offset = Number(st.size);
    dataMtime = st.mtimeNs;
  } catch {
    /* no data yet */
  }
  // A folder being removed (or half-written) lacks its files: its own mtime
  // (bumped by every unlink in it) stands in for the missing timestamps.
  let dirMtime = 0n;
  try {
    dirMtime = statSync(dir, { bigint: true }).mtimeNs;
  } catch {
    return undefined; // gone
  }
  const startedAt = readTimestamp(join(dir, 'startedat')) ?? dirMtime;
  // updatedat is written at open and close; a live writer's data file is newer.
  let updatedAt = readTimestamp(join(dir, 'updatedat')) ?? startedAt;
  if (dataMtime > updatedAt) updatedAt = dataMtime;
  if (dirMtime > updatedAt && !existsSync(join(dir, 'data'))) updatedAt = dirMtime;
  return {
    ref,
    offset,
    total: Number(readText(join(dir, 'total')) || '0'),
    expected: readText(join(dir, 'expected')),
    startedAt,
    updatedAt,
  };
}

function locked(ref: string) {
  return withHint(unavailable(`ref ${ref} locked`), 'another writer holds this ingest; retry when it is done');
}

/** "<pid> <start time>": the start time (field 22 of /proc/<pid>/stat) tells a reused pid apart. */
function lockOwner(pid: number): string {
  const started = procStat(pid)?.start;
  return started ? `${pid} ${started}` : String(pid);
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Filter fields of content info: digest, size, labels.* */
export function adaptInfo(info: Info): filters.Adaptor {
  return filters.adaptObject({ digest: info.digest, size: info.size }, { labels: info.labels });
}

/** Filter fields of an ingest status: ref, expected. */
export function adaptStatus(st: Status): filters.Adaptor {
  return filters.adaptObject({ ref: st.ref, expected: st.expected });
}

