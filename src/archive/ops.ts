/**
 * The applier's file system operations and their two executors.
 *
 * The planner (apply.ts) turns tar entries into Ops on paths it has already
 * resolved inside the root; an Executor performs them strictly in order:
 *  - native: the addon's ApplySession (native/src/apply.cc), one libuv-pool
 *    job per batch; parents are opened with openat2(RESOLVE_BENEATH |
 *    RESOLVE_NO_SYMLINKS) so a wrong plan fails instead of escaping the root.
 *  - js: the same semantics with fs.promises (used when the addon is not
 *    built); parent directories are checked with realpath instead.
 *
 * Semantics shared by both (containerd's createTarFile):
 *  - creating over an existing entry removes it first (recursively), except
 *    a directory over a directory, which is kept and only gets metadata;
 *  - the final component is never followed; metadata order is chown,
 *    xattrs, chmod (skipped for symlinks), times;
 *  - xattr ENOTSUP is ignored, and EPERM for user.* on anything but regular
 *    files and directories.
 */
import { constants as C } from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { lgetxattr, llistxattr, lsetxattr, mknod, native, S_IFCHR, XATTR_CREATE } from '../internal/sys.js';
import { B, text } from './paths.js';

export const enum OpType {
  /** Create (p set) / append (d) / finish (c) the current regular file. */
  File = 1,
  /** Directory entry: create, or keep an existing directory; then metadata. */
  Mkdir = 2,
  /**
   * Missing parent directory: mkdir 0755, or the copied info of a lower
   * directory (u,g,md,ts,src for xattrs). With q, an existing directory gets
   * that info too (a parent whose lower info came later).
   */
  Mkparent = 3,
  Symlink = 4,
  /** Hard link p → tg (both relative to the root). */
  Link = 5,
  /** Device or FIFO: mode carries the type bits. */
  Mknod = 6,
  /** Recursive removal, never following symlinks; missing is fine. */
  RemoveAll = 7,
  /** Overlay whiteout: char device 0/0 owned by u:g. */
  Whiteout = 8,
  SetXattr = 9,
  /** Times only (directories, at the end); q: ignore a missing path. */
  Times = 10,
  /** Copy a lower layer's object (src, absolute) to p with its metadata (overlay copy-up). */
  CopyUp = 11,
}

/** As ts[3] (mtime nsec): leave the mtime as it is (utimensat's UTIME_OMIT). */
export const UTIME_OMIT = (1 << 30) - 2;

export type Timespecs = [atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number];

/** Paths (p, tg, src) are byte strings: one char per byte (latin1), see paths.ts. */
export interface Op {
  t: OpType;
  p?: string;
  d?: Buffer[];
  c?: boolean;
  u?: number;
  g?: number;
  md?: number;
  ts?: Timespecs;
  /** Alternating xattr name, value. */
  x?: Array<string | Buffer>;
  tg?: string;
  mode?: number;
  dev?: number;
  src?: string;
  xn?: string;
  xv?: Buffer | string;
  q?: boolean;
}

export interface Executor {
  readonly kind: 'native' | 'js';
  /** Runs ops in order; one call at a time. Rejects with the failing op's error (err.opIndex). */
  run(ops: Op[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Threads writing regular files in the native executor by default: only with
 * cores to spare (the planner and the decompressor keep two busy), else 1.
 * Asked per call, not at module load (which may be a snapshot's build).
 */
export function defaultThreads(): number {
  const cores = availableParallelism();
  return cores >= 4 ? Math.min(4, cores - 2) : 1;
}

/**
 * root: a path (string, UTF-8) or its bytes. threads (native only): regular
 * files are written on that many threads, everything else stays in order
 * (1 = strictly sequential).
 */
export function openExecutor(root: string | Buffer, kind?: 'native' | 'js', threads = defaultThreads()): Executor {
  const want = kind ?? (native ? 'native' : 'js');
  const rootBytes = typeof root === 'string' ? Buffer.from(root) : root;
  if (want === 'native') {
    if (!native) throw new Error('native addon not loaded');
    const s = new native.ApplySession(rootBytes, threads);
    const packer = new Packer();
    return {
      kind: 'native',
      // one buffer instead of an object per op: the addon reads it without a call per field
      run: (ops) => {
        const { packed, data } = packer.encode(ops);
        return s.run(packed, data);
      },
      close: async () => s.close(),
    };
  }
  return new JsExecutor(rootBytes.toString('latin1'));
}

// ---- packed ops (native executor) ----------------------------------------------------

/** Presence flags: native/src/apply.cc's Field bits, plus Close. */
const enum PF {
  Data = 1,
  Chown = 2,
  Perm = 4,
  Times = 8,
  Xattrs = 16,
  Target = 32,
  Dev = 64,
  Src = 128,
  Xv = 256,
  Quiet = 512,
  Close = 1024,
}

/**
 * Encodes ops in the layout native/src/apply.cc's run() reads (see
 * there): paths are byte strings written as latin1, xattr names as UTF-8,
 * values as given (Buffer bytes or UTF-8 text); file data stays in its own
 * buffers, referenced by index.
 */
export class Packer {
  // small: the first batch grows it, so the growing path has run before the
  // optimizer compiles encode (see above)
  private buf = Buffer.allocUnsafe(1 << 10);
  // scalars through a DataView: inlined by the optimizer, unlike Buffer's checked writers
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  private off = 0;

  encode(ops: Op[]): { packed: Buffer; data: Uint8Array[] } {
    this.off = 0;
    const data: Uint8Array[] = [];
    for (const op of ops) {
      const chown = op.u !== undefined && op.g !== undefined;
      // One expression whose every operation runs for every op. V8 compiles
      // this loop once it is hot, from what the code did so far; an operation
      // that had never run (`fl |= PF.Src` before the first copy-up) throws the
      // compiled code away when it first runs, and the loop is compiled again
      // (~30 ms of a CPU, per such branch).
      const fl =
        (op.c ? PF.Close : 0) |
        (chown ? PF.Chown : 0) |
        (op.md !== undefined ? PF.Perm : 0) |
        (op.ts ? PF.Times : 0) |
        (op.x ? PF.Xattrs : 0) |
        (op.tg !== undefined ? PF.Target : 0) |
        (op.mode !== undefined || op.dev !== undefined ? PF.Dev : 0) |
        (op.src !== undefined ? PF.Src : 0) |
        (op.xn !== undefined ? PF.Xv : 0) |
        (op.q ? PF.Quiet : 0) |
        (op.d ? PF.Data : 0);
      this.reserve(3); // every writer below reserves what it writes
      this.view.setUint8(this.off, op.t);
      this.view.setUint16(this.off + 1, fl, true);
      this.off += 3;
      this.latin1(op.p ?? '');
      if (op.d) {
        this.u32(data.length);
        this.u32(op.d.length);
        for (const b of op.d) data.push(b);
      }
      if (chown) {
        this.u32(op.u!);
        this.u32(op.g!);
      }
      if (op.md !== undefined) this.u32(op.md);
      if (op.ts) for (const t of op.ts) this.f64(t);
      if (op.x) {
        const n = op.x.length >> 1;
        this.u32(n);
        for (let i = 0; i < n * 2; i += 2) {
          this.bytes(op.x[i]!);
          this.bytes(op.x[i + 1]!);
        }
      }
      // optional fields through helpers that run for every op: rare ones
      // (src, xn) share the code, and what V8 learned of it, with common ones
      this.optLatin1(op.tg);
      if (fl & PF.Dev) {
        this.f64(op.mode ?? 0);
        this.f64(op.dev ?? 0);
      }
      this.optLatin1(op.src);
      this.optBytes(op.xn);
      this.optBytes(op.xn === undefined ? undefined : (op.xv ?? ''));
    }
    // a copy: the next encode reuses the buffer while this batch may still be queued
    return { packed: Buffer.from(this.buf.subarray(0, this.off)), data };
  }

  private reserve(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.length);
  }

  private u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.off, v >>> 0, true);
    this.off += 4;
  }

  private f64(v: number): void {
    this.reserve(8);
    this.view.setFloat64(this.off, v, true);
    this.off += 8;
  }

  /** A byte string (one char per byte). */
  private latin1(s: string): void {
    this.reserve(4 + s.length);
    this.view.setUint32(this.off, s.length, true);
    this.off += 4 + this.buf.write(s, this.off + 4, 'latin1');
  }

  private optLatin1(s: string | undefined): void {
    if (s !== undefined) this.latin1(s);
  }

  private optBytes(v: string | Uint8Array | undefined): void {
    if (v !== undefined) this.bytes(v);
  }

  /** Buffer bytes, or a string as UTF-8. */
  private bytes(v: string | Uint8Array): void {
    if (typeof v === 'string') {
      const n = Buffer.byteLength(v, 'utf8');
      this.reserve(4 + n);
      this.view.setUint32(this.off, n, true);
      this.off += 4 + this.buf.write(v, this.off + 4, 'utf8');
    } else {
      this.reserve(4 + v.length);
      this.view.setUint32(this.off, v.length, true);
      this.buf.set(v, this.off + 4);
      this.off += 4 + v.length;
    }
  }
}

// ---- JS executor ------------------------------------------------------------------

function errno(code: string, syscall: string, path: string, msg = code): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${msg}, ${syscall} '${text(path)}'`) as NodeJS.ErrnoException;
  e.code = code;
  e.syscall = syscall;
  e.path = text(path);
  return e;
}

function ignorableXattr(err: unknown, name: string, regularOrDir: boolean): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return true;
  return code === 'EPERM' && name.startsWith('user.') && !regularOrDir;
}

function toSeconds(sec: number, nsec: number): number {
  return sec + nsec / 1e9;
}

/** Regular files the JS executor writes at the same time. */
const JS_CONCURRENCY = 8;

async function writeAll(fh: FileHandle, data: Buffer[] | undefined): Promise<void> {
  let bufs = (data ?? []).filter((b) => b.length);
  while (bufs.length) {
    const { bytesWritten } = await fh.writev(bufs);
    let left = bytesWritten;
    while (bufs.length && left >= bufs[0]!.length) left -= bufs.shift()!.length;
    if (left > 0) bufs[0] = bufs[0]!.subarray(left);
  }
}

class JsExecutor implements Executor {
  readonly kind = 'js' as const;
  private rootReal: Buffer | undefined;
  private verified = new Set<string>();
  private cur: FileHandle | undefined;
  private curPath = '';
  private failed = false;

  /** root: a byte string. */
  constructor(private readonly root: string) {}

  /** Byte string of root/p. */
  private full(p: string): string {
    return p === '' ? this.root : `${this.root}/${p}`;
  }

  /** The parent of p must be a real directory beneath the root (no symlinks on the way). */
  private async checkParent(p: string): Promise<void> {
    const i = p.lastIndexOf('/');
    const dir = i < 0 ? '' : p.slice(0, i);
    if (dir === '' || this.verified.has(dir)) return;
    this.rootReal ??= await fsp.realpath(B(this.root), { encoding: 'buffer' });
    const want = Buffer.concat([this.rootReal, B(`/${dir}`)]);
    const got = await fsp.realpath(want, { encoding: 'buffer' });
    if (!got.equals(want)) throw errno('ELOOP', 'openat2', this.full(dir), 'parent path contains a symbolic link');
    const st = await fsp.lstat(want);
    if (!st.isDirectory()) throw errno('ENOTDIR', 'openat2', this.full(dir), 'not a directory');
    this.verified.add(dir);
  }

  private async removeAll(path: string): Promise<void> {
    this.verified.clear();
    await fsp.rm(B(path), { recursive: true, force: true });
  }

  /** create(); on EEXIST remove the entry and retry once. */
  private async replacing<T>(path: string, create: () => Promise<T>): Promise<T> {
    try {
      return await create();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    await this.removeAll(path);
    return create();
  }

  private async setXattrs(op: Op, path: string, regularOrDir: boolean): Promise<void> {
    const x = op.x;
    if (!x) return;
    for (let i = 0; i + 1 < x.length; i += 2) {
      const name = x[i] as string;
      try {
        await lsetxattr(B(path), name, x[i + 1]!);
      } catch (err) {
        if (!ignorableXattr(err, name, regularOrDir)) throw err;
      }
    }
  }

  private async copyXattrs(src: string, dst: string): Promise<void> {
    let names: string[];
    try {
      names = await llistxattr(B(src));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTSUP' || code === 'ENODATA') return;
      throw err;
    }
    for (const name of names) {
      if (name.startsWith('trusted.')) continue;
      const v = await lgetxattr(B(src), name).catch(() => undefined);
      if (v === undefined) continue;
      try {
        await lsetxattr(B(dst), name, v, XATTR_CREATE);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTSUP' && code !== 'ENODATA' && code !== 'EEXIST') throw err;
      }
    }
  }

  /** lchown, xattrs, chmod (not symlinks), lutimes — by path. */
  private async pathMeta(op: Op, path: string): Promise<void> {
    const P = B(path);
    if (op.u !== undefined && op.g !== undefined) await fsp.lchown(P, op.u, op.g);
    let st: import('node:fs').Stats | undefined;
    if (op.x || op.md !== undefined) st = await fsp.lstat(P);
    if (op.x) await this.setXattrs(op, path, !!st && (st.isFile() || st.isDirectory()));
    if (op.md !== undefined && st && !st.isSymbolicLink()) await fsp.chmod(P, op.md);
    if (op.ts) {
      // UTIME_OMIT as mtime nsec: keep the mtime (fs.lutimes has no omit)
      const m = op.ts[3] === UTIME_OMIT ? (await fsp.lstat(P)).mtimeMs / 1000 : toSeconds(op.ts[2], op.ts[3]);
      await fsp.lutimes(P, toSeconds(op.ts[0], op.ts[1]), m);
    }
  }

  /**
   * Ops run in order, except that regular files written by a single op
   * (open + data + close) overlap, up to JS_CONCURRENCY at a time, unless a
   * path in flight is the same, an ancestor or a descendant; any other op
   * waits for the files in flight (the native executor's rule).
   */
  async run(ops: Op[]): Promise<void> {
    if (this.failed) throw new Error('apply executor failed earlier');
    const inflight = new Map<Promise<void>, string>();
    let failure: { i: number; err: unknown } | undefined;
    const fail = (i: number, err: unknown) => {
      if (!failure || i < failure.i) failure = { i, err };
    };
    const drain = async () => {
      while (inflight.size) await Promise.allSettled([...inflight.keys()]);
    };
    const conflicts = (p: string) => {
      for (const q of inflight.values()) {
        if (q === p || p.startsWith(`${q}/`) || q.startsWith(`${p}/`)) return true;
      }
      return false;
    };
    for (let i = 0; i < ops.length && !failure; i++) {
      const op = ops[i]!;
      if (op.t === OpType.File && op.p && op.c && !this.cur) {
        if (conflicts(op.p)) await drain();
        while (inflight.size >= JS_CONCURRENCY) await Promise.race(inflight.keys());
        if (failure) break;
        const task: Promise<void> = this.wholeFile(op)
          .catch((err) => fail(i, err))
          .finally(() => inflight.delete(task));
        inflight.set(task, op.p);
        continue;
      }
      await drain();
      if (failure) break;
      try {
        await this.exec(op);
      } catch (err) {
        fail(i, err);
      }
    }
    await drain();
    if (failure) {
      this.failed = true;
      await this.cur?.close().catch(() => {});
      this.cur = undefined;
      const err = failure.err;
      if (err && typeof err === 'object') (err as { opIndex?: number }).opIndex = failure.i;
      throw err;
    }
  }

  /** A regular file in one op: create (replacing), write, chown, xattrs, chmod, times, close. */
  private async wholeFile(op: Op): Promise<void> {
    const path = this.full(op.p!);
    const fh = await this.createFile(op.p!, path);
    try {
      await writeAll(fh, op.d);
    } catch (err) {
      await fh.close();
      throw err;
    }
    await this.finishFile(op, fh, path);
  }

  /** Regular file p (at path) created empty for writing, replacing what is there. */
  private async createFile(p: string, path: string): Promise<FileHandle> {
    await this.checkParent(p);
    return this.replacing(path, () => fsp.open(B(path), C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600));
  }

  /** A written file's chown, xattrs, chmod and times, then close (closed either way). */
  private async finishFile(op: Op, fh: FileHandle, path: string): Promise<void> {
    try {
      if (op.u !== undefined && op.g !== undefined) await fh.chown(op.u, op.g);
      await this.setXattrs(op, path, true);
      if (op.md !== undefined) await fh.chmod(op.md);
      if (op.ts) await fh.utimes(toSeconds(op.ts[0], op.ts[1]), toSeconds(op.ts[2], op.ts[3]));
    } finally {
      await fh.close();
    }
  }

  private async exec(op: Op): Promise<void> {
    const p = op.p ?? '';
    const path = this.full(p);
    switch (op.t) {
      case OpType.File: {
        if (p) {
          if (this.cur) throw new Error('internal: file op opened while another file is open');
          this.cur = await this.createFile(p, path);
          this.curPath = path;
        }
        const fh = this.cur;
        if (!fh) throw new Error('internal: no open file');
        await writeAll(fh, op.d);
        if (op.c) {
          this.cur = undefined;
          await this.finishFile(op, fh, this.curPath);
        }
        return;
      }
      case OpType.Mkdir: {
        await this.checkParent(p);
        try {
          await fsp.mkdir(B(path), op.md ?? 0o755);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          const st = await fsp.lstat(B(path));
          if (!st.isDirectory()) {
            await this.removeAll(path);
            await fsp.mkdir(B(path), op.md ?? 0o755);
          }
        }
        await this.pathMeta(op, path);
        return;
      }
      case OpType.Mkparent: {
        await this.checkParent(p);
        try {
          await fsp.mkdir(B(path), 0o755);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          const st = await fsp.lstat(B(path));
          if (!st.isDirectory()) throw errno('ENOTDIR', 'mkdir', path, 'not a directory');
          if (!op.q) return;
        }
        await this.pathMeta({ ...op, md: op.md ?? 0o755 }, path);
        if (op.src) await this.copyXattrs(op.src, path);
        return;
      }
      case OpType.Symlink:
        await this.checkParent(p);
        await this.replacing(path, () => fsp.symlink(B(op.tg!), B(path)));
        await this.pathMeta(op, path);
        return;
      case OpType.Link: {
        await this.checkParent(p);
        await this.checkParent(op.tg!);
        const target = this.full(op.tg!);
        await this.replacing(path, () => fsp.link(B(target), B(path)));
        await this.pathMeta(op, path);
        return;
      }
      case OpType.Mknod:
        await this.checkParent(p);
        await this.replacing(path, () => mknod(B(path), op.mode!, op.dev ?? 0));
        await this.pathMeta(op, path);
        return;
      case OpType.RemoveAll:
        if (!p) throw errno('EINVAL', 'rmall', path);
        try {
          await this.checkParent(p);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'ENOTDIR') return;
          throw err;
        }
        await this.removeAll(path);
        return;
      case OpType.Whiteout:
        await this.checkParent(p);
        await this.replacing(path, () => mknod(B(path), S_IFCHR, 0));
        if (op.u !== undefined && op.g !== undefined) await fsp.lchown(B(path), op.u, op.g);
        return;
      case OpType.SetXattr:
        if (p) await this.checkParent(p);
        await lsetxattr(B(path), op.xn!, op.xv ?? '');
        return;
      case OpType.Times:
        try {
          if (p) await this.checkParent(p);
          await fsp.lutimes(B(path), toSeconds(op.ts![0], op.ts![1]), toSeconds(op.ts![2], op.ts![3]));
        } catch (err) {
          if (op.q && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw err;
        }
        return;
      case OpType.CopyUp: {
        await this.checkParent(p);
        const src = op.src!;
        const st = await fsp.lstat(B(src));
        if (st.isFile()) {
          await this.replacing(path, () => fsp.copyFile(B(src), B(path), C.COPYFILE_EXCL));
        } else if (st.isSymbolicLink()) {
          const target = await fsp.readlink(B(src), { encoding: 'buffer' });
          await this.replacing(path, () => fsp.symlink(target, B(path)));
        } else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO() || st.isSocket()) {
          await this.replacing(path, () => mknod(B(path), st.mode, st.rdev));
        } else {
          throw errno('EPERM', 'copyup', src);
        }
        await fsp.lchown(B(path), st.uid, st.gid);
        await this.copyXattrs(src, path);
        if (!st.isSymbolicLink()) await fsp.chmod(B(path), st.mode & 0o7777);
        await fsp.lutimes(B(path), st.atime, st.mtime);
        return;
      }
      default:
        throw new Error(`internal: unknown op type ${String(op.t)}`);
    }
  }

  async close(): Promise<void> {
    await this.cur?.close().catch(() => {});
    this.cur = undefined;
  }
}
