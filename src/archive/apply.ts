/**
 * apply: unpacks an OCI/Docker layer tar into a directory the way
 * containerd 1.6's archive.Apply does (applyNaive + createTarFile), streaming.
 *
 * How one entry is applied (containerd's order):
 *   1. name = Clean(name); split into parent dir and base.
 *   2. The parent dir is resolved like fs.RootPath(root, dir): symlinks are
 *      followed *inside* the root (absolute targets start at the root, ".."
 *      stops at it, ≤255 links). The entry path is resolved-parent + base:
 *      the final component is never followed. Paths resolving to the root
 *      itself are skipped.
 *   3. Missing parents are created 0755 (with the ownership, mode, times
 *      and xattrs of the same directory in `parents`, when given).
 *   4. Whiteouts: ".wh.<name>" removes <name> (RemoveAll); ".wh..wh..opq"
 *      removes whatever the directory holds that this layer did not write
 *      (entries of the same layer written before the marker stay). With
 *      overlayWhiteouts they become a 0/0 char device and
 *      trusted.overlay.opaque=y instead.
 *   5. Anything existing at the path is removed first, except a directory
 *      over a directory (kept; it only gets the new metadata).
 *   6. Create by type; then lchown, xattrs (SCHILY.xattr.*, trusted.* refused
 *      like containerd), chmod after chown (so setuid/setgid bits survive;
 *      never on symlinks), times (lutimes; atime = max(atime, mtime);
 *      out-of-range times become the epoch). Directory times are set again at
 *      the end, after their contents, by resolving each directory's name.
 *   7. Hard links point at RootPath(dir of linkname) + base of linkname; a
 *      missing target fails the layer.
 *
 * With `parents` (the lower directories of an overlay upper, nearest first),
 * lookups see the merged view an overlay mount would show — upper, then the
 * lowers, honouring whiteout devices and opaque directories — so a symlink
 * from a lower layer (var/run -> /run) is followed exactly as when applying
 * through the mounted overlay; a hard link to a lower-layer file copies it up
 * first. containerd 1.6's upperdir fast path only looks at the upper dir (so
 * there var/run/x makes var/run a directory, and such a hard link fails);
 * `lowerLookups: false` reproduces that exactly.
 *
 * Design: the planner below keeps a model of the tree (Node per path it has
 * looked at or written) and turns entries into Ops (ops.ts) on resolved
 * paths; an Executor runs them in order, batched, off the main thread
 * (native addon) while the next entries are parsed. The planner only waits
 * for the executor when it must look at the real file system. The native
 * executor opens parents with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS),
 * so even a planner bug cannot write outside the root.
 *
 * The result's diffID is the sha256 of every byte of the uncompressed stream
 * as read — the end-of-archive blocks and any trailing padding included (the
 * stream is drained after the end marker, as containerd's applier does).
 */
import { createHash, type Hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import {
  canceled,
  codeOf,
  DistError,
  failedPrecondition,
  invalidArgument,
  notFound,
  unknown,
} from '../errdefs/index.js';
import { parse as parseDigest } from '../digest/index.js';
import { lgetxattr, mkdev, S_IFBLK, S_IFCHR, S_IFIFO } from '../internal/sys.js';
import { decompress, PREDIGEST, type Compression, type GzipBackend, type LayerSource, type Predigest, type ZstdBackend } from './compression.js';
import { openExecutor, type Executor, type Op, OpType, type Timespecs, UTIME_OMIT } from './ops.js';
import { B, clean, join, rel, relBase, relDir, rootPath, split, text, type LookupResult } from './paths.js';
import { TarReader, type TarHeader, type TarTime } from './tar.js';

export interface ApplyOptions {
  signal?: AbortSignal;
  /** Write whiteouts as overlayfs does (0/0 char devices, trusted.overlay.opaque=y): root is an overlay upperdir. */
  overlayWhiteouts?: boolean;
  /** Lower directories under the root, nearest first (overlay lowerdirs): merged-view lookups and parent attributes. */
  parents?: string[];
  /**
   * With parents: resolve paths in the merged view (default true), as when
   * applying through the mounted overlay. false = containerd 1.6's upperdir
   * fast path exactly: lookups in the root only, parents only give created
   * directories their attributes.
   */
  lowerLookups?: boolean;
  /**
   * The lower directories, asked for only when a created parent needs a
   * lower directory's attributes (lowerLookups must be false; parents unset).
   * Lets a layer be applied into a staging directory while its lowers are
   * still being unpacked: the apply waits only if it meets such a parent.
   */
  lazyParents?: () => Promise<string[]>;
  /** Keep the applier's own uid/gid instead of the archive's. */
  noSameOwner?: boolean;
  /** Non-fatal oddities containerd only logs (ignored xattrs, skipped devices). */
  onWarning?: (msg: string) => void;
  /** Force an executor (tests); default: native when the addon loaded. */
  executor?: 'native' | 'js';
  /** Native executor: threads writing regular files (default: 1, or up to 4 with 4+ cores). */
  threads?: number;
  /** Filled with counters while applying (benchmarks, debugging). */
  stats?: ApplyStats;
}

export interface ApplyStats {
  entries: number;
  batches: number;
  ops: number;
  /** Time batches spent in the executor. */
  executorMs: number;
  /** Time the planner waited for the executor (backpressure, lookups needing the disk). */
  waitMs: number;
  /** Times the planner had to wait for the disk to look something up. */
  flushes: number;
}

export interface ApplyResult {
  /** Digest of the uncompressed tar stream, every byte as read. */
  diffID: string;
  /** Uncompressed bytes read. */
  size: number;
}

/** Flush a batch to the executor at this many ops or bytes of file data. */
const BATCH_OPS = 1024;
/**
 * The first batch is short: the executor starts on the disk work at once,
 * and the submitting path has run before V8 optimizes the parse loop (a path
 * first taken by optimized code discards it; see ops.ts's Packer.encode).
 */
const FIRST_BATCH_OPS = 32;
const BATCH_BYTES = 8 << 20;
/** Batches submitted but not finished (one running, one queued). */
const MAX_QUEUED = 2;

const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_OPAQUE = '.wh..wh..opq';
const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

const enum Kind {
  Absent,
  Dir,
  Link,
  Other,
}

/** What the planner knows about one path of the (merged) tree. */
interface Node {
  kind: Kind;
  /** Symlink target. */
  target?: string;
  /** Exists in the root itself (for Absent: a whiteout device in the root). */
  upper: boolean;
  whiteout?: boolean;
  /** A directory this apply created empty in the root: every child in the root is known. */
  fresh?: boolean;
  opaque?: boolean;
  /** Merged view: indices of the lower dirs whose directory at this path shows through. */
  lowers?: number[];
  /** Merged view: the lower object (absolute path) when the path exists only below. */
  lowerPath?: string;
  /** Consulted by a path resolution (its change invalidates cached resolutions). */
  used?: boolean;
  children?: Set<string>;
  /** A directory entry of this layer was applied here (a deferred parent keeps that metadata). */
  explicit?: boolean;
}

interface LowerStat {
  kind: Kind;
  whiteout: boolean;
  opaque: boolean;
  target?: string;
}

interface Meta {
  u?: number;
  g?: number;
  md?: number;
  ts: Timespecs;
  x?: Array<string | Buffer>;
}

let userNS: boolean | undefined;
/** containerd's userns.RunningInUserNS: devices cannot be created there. */
export function runningInUserNS(): boolean {
  if (userNS === undefined) {
    try {
      const m = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
      userNS = !(m[0] === '0' && m[1] === '0' && m[2] === '4294967295');
    } catch {
      userNS = false;
    }
  }
  return userNS;
}

const MAX_SEC = 9223372036; // Go's maxTime: time.Unix(0, 1<<63-1)
const MAX_SEC_NSEC = 854775807;

function boundTime(t: TarTime): [number, number] {
  if (t.sec < 0 || t.sec > MAX_SEC || (t.sec === MAX_SEC && t.nsec > MAX_SEC_NSEC)) return [0, 0];
  return [t.sec, t.nsec];
}

function timespecs(h: TarHeader): Timespecs {
  const m = h.mtime;
  const a = h.atime && (h.atime.sec > m.sec || (h.atime.sec === m.sec && h.atime.nsec > m.nsec)) ? h.atime : m;
  const [as, an] = boundTime(a);
  const [ms, mn] = boundTime(m);
  return [as, an, ms, mn];
}

/** A byte-string path (see paths.ts) quoted for messages. */
const show = (s: string): string => JSON.stringify(text(s));

async function readlinkB(p: string): Promise<string> {
  return (await fsp.readlink(B(p), { encoding: 'buffer' })).toString('latin1');
}

async function readdirB(p: string): Promise<string[]> {
  return (await fsp.readdir(B(p), { encoding: 'buffer' })).map((b) => b.toString('latin1'));
}

function enotdir(path: string): NodeJS.ErrnoException {
  const e = new Error(`ENOTDIR: not a directory, lstat '${text(path)}'`) as NodeJS.ErrnoException;
  e.code = 'ENOTDIR';
  e.syscall = 'lstat';
  e.path = path;
  return e;
}

function fsError(detail: string, err: unknown): DistError {
  if (err instanceof DistError) return err;
  return new DistError(codeOf(err), `${detail}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

class Applier {
  private readonly exec: Executor;
  private readonly merged: boolean;
  private lowers!: string[];
  private lowerCache!: Array<Map<string, LowerStat | null>>;
  private lowerLinks!: Array<Map<string, string | null>>;
  private lazyLowers: (() => Promise<string[]>) | undefined;
  private rootNode!: Node;
  private readonly nodes = new Map<string, Node>();
  private gen = 0;
  private readonly resCache = new Map<string, { gen: number; rel: string }>();
  private rawUsed = false;
  private readonly unpacked = new Set<string>();
  private readonly dirs: Array<{ name: string; ts: Timespecs }> = [];
  /** Parents created before lazy lowers were known: they get the lower info at the end. */
  private readonly deferred: Array<{ r: string; node: Node }> = [];

  // batching
  private batch: Op[] = [];
  private batchNames: string[] = [];
  private batchBytes = 0;
  private batchOps = FIRST_BATCH_OPS;
  private batchSeq = 0;
  private tail: Promise<void> = Promise.resolve();
  /** Batches the executor finished (they run in submission order). */
  private batchesDone = 0;
  /** Parsed input chunks waiting for the batch that was open then to finish, to be recycled. */
  private chunksHeld: Array<{ ab: ArrayBufferLike; seq: number }> = [];
  private recycle: ((ab: ArrayBufferLike) => void) | undefined;
  private queued: Array<Promise<void>> = [];
  private failure: unknown;

  // entry being written
  private name = '';
  private file: { op: Op; seq: number; meta: Meta } | undefined;
  private skipping = false;

  /** The root as a byte string. */
  private readonly root: string;

  constructor(root: string, private readonly opts: ApplyOptions) {
    this.root = Buffer.from(root).toString('latin1'); // root arrives as a normal (UTF-8) path
    this.exec = openExecutor(Buffer.from(root), opts.executor, opts.threads);
    this.setLowers(opts.parents ?? []);
    this.merged = this.lowers.length > 0 && opts.lowerLookups !== false;
    if (opts.lazyParents) {
      if (this.merged || opts.parents?.length) throw invalidArgument('apply: lazyParents needs lowerLookups: false and no parents');
      this.lazyLowers = opts.lazyParents;
    }
  }

  /** The lower directories (paths as given), as byte strings with empty lookup caches. */
  private setLowers(paths: string[]): void {
    this.lowers = paths.map((p) => Buffer.from(resolve(p)).toString('latin1'));
    this.lowerCache = this.lowers.map(() => new Map());
    this.lowerLinks = this.lowers.map(() => new Map());
  }

  /** Whether there are lower directories (loading lazy ones on first use). */
  private async hasLowers(): Promise<boolean> {
    if (this.lazyLowers) {
      const get = this.lazyLowers;
      this.lazyLowers = undefined;
      this.setLowers(await get());
    }
    return this.lowers.length > 0;
  }

  private warn(msg: string): void {
    this.opts.onWarning?.(msg);
  }

  private full(r: string): string {
    return r === '' ? this.root : `${this.root}/${r}`;
  }

  async init(): Promise<void> {
    const entries = await fsp.readdir(B(this.root));
    const opaque = this.merged && (await this.isOpaque(this.root));
    this.rootNode = { kind: Kind.Dir, upper: true, fresh: entries.length === 0, opaque, children: new Set() };
    if (this.merged && !opaque) {
      const ls: number[] = [];
      for (let i = 0; i < this.lowers.length; i++) {
        ls.push(i);
        if (await this.isOpaque(this.lowers[i]!)) break;
      }
      this.rootNode.lowers = ls;
    }
  }

  private async isOpaque(path: string): Promise<boolean> {
    try {
      const v = await lgetxattr(B(path), OVERLAY_OPAQUE_XATTR);
      return v !== undefined && v.toString() === 'y';
    } catch {
      return false;
    }
  }

  // ---- executor plumbing --------------------------------------------------------

  private push(op: Op, bytes = 0): void {
    this.batch.push(op);
    this.batchNames.push(this.name);
    this.batchBytes += bytes;
  }

  private get batchFull(): boolean {
    return this.batch.length >= this.batchOps || this.batchBytes >= BATCH_BYTES;
  }

  /** Hands the current batch to the executor (runs after the ones before it). */
  private submitNow(): void {
    if (this.batch.length === 0) return;
    const ops = this.batch;
    const names = this.batchNames;
    this.batch = [];
    this.batchNames = [];
    this.batchBytes = 0;
    this.batchOps = BATCH_OPS;
    this.batchSeq++;
    const stats = this.opts.stats;
    if (stats) {
      stats.batches++;
      stats.ops += ops.length;
    }
    const p = this.tail.then(() => {
      const t0 = stats ? performance.now() : 0;
      return this.exec.run(ops).then(
        () => {
          if (stats) stats.executorMs += performance.now() - t0;
          this.batchesDone++;
          this.releaseChunks();
        },
        (err: unknown) => {
          const i = (err as { opIndex?: number })?.opIndex;
          const name = i !== undefined ? names[i] : undefined;
          throw fsError(name !== undefined ? `apply ${show(name)}` : 'apply', err);
        },
      );
    });
    this.tail = p;
    this.queued.push(p);
    p.then(
      () => this.queued.shift(),
      (err) => {
        this.queued.shift();
        this.failure ??= err;
      },
    );
  }

  /** Hands back input chunks no op still points into (their batch is on disk). */
  private releaseChunks(): void {
    const held = this.chunksHeld;
    let i = 0;
    while (i < held.length && held[i]!.seq < this.batchesDone) this.recycle?.(held[i++]!.ab);
    if (i) held.splice(0, i);
  }

  /** Submits and applies backpressure: at most MAX_QUEUED batches outstanding. */
  private async submit(): Promise<void> {
    this.submitNow();
    if (this.queued.length < MAX_QUEUED) return;
    const t0 = performance.now();
    while (this.queued.length >= MAX_QUEUED) await this.queued[0];
    if (this.opts.stats) this.opts.stats.waitMs += performance.now() - t0;
  }

  /** Waits until everything planned so far is on disk. */
  private async flush(): Promise<void> {
    this.submitNow();
    const t0 = performance.now();
    await this.tail;
    if (this.opts.stats) {
      this.opts.stats.waitMs += performance.now() - t0;
      this.opts.stats.flushes++;
    }
  }

  // ---- the model ----------------------------------------------------------------

  private nodeOf(r: string): Node | undefined {
    return r === '' ? this.rootNode : this.nodes.get(r);
  }

  private deleteSubtree(r: string, n: Node): void {
    if (!n.children) return;
    for (const c of n.children) {
      const cr = r ? `${r}/${c}` : c;
      const cn = this.nodes.get(cr);
      if (cn) {
        this.deleteSubtree(cr, cn);
        this.nodes.delete(cr);
      }
    }
    n.children = undefined;
  }

  /** Records n at r (a child of parent P), replacing what was known there. */
  private setNode(P: Node, r: string, n: Node): void {
    const old = this.nodes.get(r);
    if (old) {
      if (old.used && (old.kind === Kind.Link || n.kind === Kind.Link || (old.kind === Kind.Dir && n.kind !== Kind.Dir))) this.gen++;
      if (old.kind === Kind.Dir && n.kind !== Kind.Dir) this.deleteSubtree(r, old);
      else if (old.kind === Kind.Dir && n.kind === Kind.Dir && n !== old) {
        n.children = old.children;
      }
    }
    this.nodes.set(r, n);
    (P.children ??= new Set()).add(relBase(r));
  }

  /**
   * lstat of r in the root without waiting for the executor: r is unknown to
   * the model, so no planned op touched it (every op records what it leaves
   * at its path), and its parents are known, existing directories.
   */
  private async upperStat(r: string): Promise<LowerStat | null> {
    return this.statAt(this.full(r));
  }

  private async statAt(path: string): Promise<LowerStat | null> {
    let st;
    try {
      st = await fsp.lstat(B(path));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      throw err;
    }
    if (st.isDirectory()) return { kind: Kind.Dir, whiteout: false, opaque: this.merged && (await this.isOpaque(path)) };
    if (st.isSymbolicLink()) return { kind: Kind.Link, whiteout: false, opaque: false, target: await readlinkB(path) };
    const whiteout = st.isCharacterDevice() && st.rdev === 0;
    return { kind: Kind.Other, whiteout, opaque: false };
  }

  private async lowerStat(i: number, r: string): Promise<LowerStat | null> {
    const cache = this.lowerCache[i]!;
    let s = cache.get(r);
    if (s === undefined) {
      try {
        s = await this.statAt(`${this.lowers[i]}/${r}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
        s = null;
      }
      cache.set(r, s);
    }
    return s;
  }

  /** Overlay merge below an upper directory: the lower dirs at r that show through. */
  private async lowerDirs(from: number[] | undefined, r: string): Promise<number[]> {
    const out: number[] = [];
    for (const i of from ?? []) {
      const s = await this.lowerStat(i, r);
      if (!s) continue;
      if (s.whiteout || s.kind !== Kind.Dir) break;
      out.push(i);
      if (s.opaque) break;
    }
    return out;
  }

  /** The merged-view node of r when the root does not have it. */
  private async fromLowers(from: number[], r: string): Promise<Node> {
    const dirs: number[] = [];
    for (const i of from) {
      const s = await this.lowerStat(i, r);
      if (!s) continue;
      if (s.whiteout) break;
      if (s.kind === Kind.Dir) {
        dirs.push(i);
        if (s.opaque) break;
        continue;
      }
      if (dirs.length) break;
      return { kind: s.kind, target: s.target, upper: false, lowerPath: `${this.lowers[i]}/${r}` };
    }
    if (dirs.length) return { kind: Kind.Dir, upper: false, lowers: dirs, lowerPath: `${this.lowers[dirs[0]!]}/${r}` };
    return { kind: Kind.Absent, upper: false };
  }

  /** Looks up r, a child of the known directory P, and records it. */
  private async child(P: Node, r: string): Promise<Node> {
    let n: Node;
    const up = P.upper && !P.fresh ? await this.upperStat(r) : null;
    if (up) {
      if (up.whiteout) n = { kind: Kind.Absent, upper: true, whiteout: true };
      else if (up.kind === Kind.Dir) n = { kind: Kind.Dir, upper: true, opaque: up.opaque, lowers: up.opaque || P.opaque ? [] : await this.lowerDirs(P.lowers, r) };
      else n = { kind: up.kind, upper: true, target: up.target };
    } else if (P.opaque || !P.lowers?.length) {
      n = { kind: Kind.Absent, upper: false };
    } else {
      n = await this.fromLowers(P.lowers, r);
    }
    this.setNode(P, r, n);
    return n;
  }

  /** Node of a real path r (parents walked from the root), or undefined when a parent is not a directory. */
  private async walk(r: string): Promise<Node | undefined> {
    if (r === '') return this.rootNode;
    let P = this.rootNode;
    let cur = '';
    const parts = r.split('/');
    for (let i = 0; i < parts.length; i++) {
      cur = cur ? `${cur}/${parts[i]}` : parts[i]!;
      const n = this.nodes.get(cur) ?? (await this.child(P, cur));
      if (i === parts.length - 1) return n;
      if (n.kind !== Kind.Dir) return undefined;
      P = n;
    }
    return undefined;
  }

  /** fs.RootPath's Lstat+Readlink, answered from the model when possible. */
  private readonly lookup = (inside: string): LookupResult | Promise<LookupResult> => {
    const k = this.lookupKnown(inside);
    return k !== undefined ? k : this.lookupSlow(rel(inside));
  };

  /** lookup from the model alone: undefined where the model does not know. */
  private readonly lookupKnown = (inside: string): LookupResult | undefined => {
    const r = rel(inside);
    if (r === '') return null;
    const n = this.nodes.get(r);
    if (!n) return undefined;
    n.used = true;
    return n.kind === Kind.Link ? n.target! : null;
  };

  private async lookupSlow(r: string): Promise<LookupResult> {
    const pr = relDir(r);
    const P = this.nodeOf(pr);
    if (P) {
      if (P.kind === Kind.Dir) {
        const n = await this.child(P, r);
        n.used = true;
        return n.kind === Kind.Link ? n.target! : null;
      }
      if (P.kind === Kind.Absent) return null;
      if (P.kind === Kind.Other) throw enotdir(this.full(r));
    }
    // parent not known: walk it from the root
    const parts = r.split('/');
    let Pn = this.rootNode;
    let cur = '';
    for (let i = 0; i < parts.length; i++) {
      cur = cur ? `${cur}/${parts[i]}` : parts[i]!;
      const n = this.nodes.get(cur) ?? (await this.child(Pn, cur));
      n.used = true;
      if (i === parts.length - 1) return n.kind === Kind.Link ? n.target! : null;
      if (n.kind === Kind.Dir) {
        Pn = n;
        continue;
      }
      if (n.kind === Kind.Absent) return null;
      if (n.kind === Kind.Other) throw enotdir(this.full(r));
      // A symlink in the middle: containerd lstat()s root+path, which the
      // kernel resolves through that link (only ever an intermediate pass).
      this.rawUsed = true;
      if (this.merged) return null;
      await this.flush();
      try {
        const st = await fsp.lstat(B(this.full(r)));
        return st.isSymbolicLink() ? await readlinkB(this.full(r)) : null;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    }
    return null;
  }

  /** RootPath of an entry's parent dir, as a relative path; cached until the tree changes under it. */
  private async resolveDir(dir: string): Promise<string> {
    const c = this.cachedDir(dir);
    if (c !== undefined) return c;
    this.rawUsed = false;
    const r = rel(await rootPath(dir, this.lookup));
    if (!this.rawUsed) this.resCache.set(dir, { gen: this.gen, rel: r });
    return r;
  }

  /** resolveDir's answer when it needs no lookup (the root, or cached), else undefined. */
  private cachedDir(dir: string): string | undefined {
    if (dir === '') return '';
    const c = this.resCache.get(dir);
    return c && c.gen === this.gen ? c.rel : undefined;
  }

  /** resolveDir's answer when the model alone gives it (then cached), else undefined. */
  private resolveDirKnown(dir: string): string | undefined {
    const c = this.cachedDir(dir);
    if (c !== undefined) return c;
    const inside = rootPath(dir, this.lookupKnown);
    if (inside === undefined) return undefined;
    const r = rel(inside);
    this.resCache.set(dir, { gen: this.gen, rel: r });
    return r;
  }

  /** lowerDirInfo without the owner when the archive's owners are not kept. */
  private async parentInfo(r: string): Promise<Partial<Op>> {
    const info = await this.lowerDirInfo(r);
    if (this.opts.noSameOwner) {
      delete info.u;
      delete info.g;
    }
    return info;
  }

  /** Attributes for a created parent from the first lower that has the directory (containerd's mkparent). */
  private async lowerDirInfo(r: string): Promise<Partial<Op>> {
    for (let i = 0; i < this.lowers.length; i++) {
      const base = this.lowers[i]!;
      const links = this.lowerLinks[i]!;
      const inside = await rootPath(`/${r}`, async (p) => {
        let t = links.get(p);
        if (t === undefined) {
          try {
            const st = await fsp.lstat(B(base + p));
            t = st.isSymbolicLink() ? await readlinkB(base + p) : null;
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code !== 'ENOENT') throw err;
            t = null;
          }
          links.set(p, t);
        }
        return t;
      });
      const path = base + (inside === '/' ? '' : inside);
      let st;
      try {
        st = await fsp.lstat(B(path), { bigint: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      if (!st.isDirectory()) return {}; // replaced: do not copy attributes
      const ns = (t: bigint): [number, number] => [Number(t / 1_000_000_000n), Number(t % 1_000_000_000n)];
      const [as, an] = ns(st.atimeNs);
      const [ms, mn] = ns(st.mtimeNs);
      return { u: Number(st.uid), g: Number(st.gid), md: Number(st.mode) & 0o7777, ts: [as, an, ms, mn], src: path };
    }
    return {};
  }

  /** containerd's mkparent for a resolved directory r. */
  private async mkparent(r: string): Promise<void> {
    const known = this.nodes.get(r);
    if (known && known.kind === Kind.Dir && known.upper) return;
    let P = this.rootNode;
    let cur = '';
    for (const part of r.split('/')) {
      cur = cur ? `${cur}/${part}` : part;
      const n = this.nodes.get(cur) ?? (await this.child(P, cur));
      if (n.kind === Kind.Dir && n.upper) {
        P = n;
        continue;
      }
      if (n.kind === Kind.Link) throw unknown(`mkparent ${show(this.full(cur))}: unexpected symlink in a resolved path`);
      if (n.kind === Kind.Other || n.whiteout) {
        throw fsError(`mkparent ${show(cur)}`, Object.assign(enotdir(this.full(cur)), { syscall: 'mkparent' }));
      }
      // Lazy lowers: the parent is made now, its lower info comes at the end.
      const defer = this.lazyLowers !== undefined;
      const info = !defer && this.lowers.length ? await this.parentInfo(cur) : {};
      this.push({ t: OpType.Mkparent, p: cur, ...info });
      const nn: Node = { kind: Kind.Dir, upper: true, fresh: true, lowers: n.kind === Kind.Dir ? n.lowers : [] };
      if (defer) this.deferred.push({ r: cur, node: nn });
      this.setNode(P, cur, nn);
      P = nn;
    }
  }

  /** Drops what is known about lower layers below P (it just became opaque). */
  private dropLowers(r: string, n: Node): void {
    n.lowers = [];
    if (!n.children) return;
    for (const c of [...n.children]) {
      const cr = r ? `${r}/${c}` : c;
      const cn = this.nodes.get(cr);
      if (!cn) continue;
      if (!cn.upper) {
        this.deleteSubtree(cr, cn);
        this.nodes.delete(cr);
        n.children.delete(c);
      } else if (cn.kind === Kind.Dir) {
        this.dropLowers(cr, cn);
      }
    }
  }

  // ---- entries ------------------------------------------------------------------

  private meta(h: TarHeader, withMode = true): Meta {
    const m: Meta = { ts: timespecs(h) };
    if (!this.opts.noSameOwner) {
      m.u = h.uid;
      m.g = h.gid;
    }
    if (withMode) m.md = h.mode & 0o7777;
    if (h.xattrs) {
      for (const [k, v] of h.xattrs) {
        if (k.startsWith('trusted.')) {
          this.warn(`ignored xattr ${k} in archive: admin attributes from archive not supported`);
          continue;
        }
        (m.x ??= []).push(k, v);
      }
    }
    return m;
  }

  /** What every entry starts with. */
  private begin(name: string): void {
    if (this.opts.stats) this.opts.stats.entries++;
    this.skipping = true;
    this.file = undefined;
    this.name = name;
  }

  /**
   * The common entry, planned without a promise: a file, directory or
   * symlink whose parent resolves in the model to a directory of this
   * layer, where nothing needs a look at the disk. onHeader (async: a
   * promise and a microtask per await, for every entry) does the same for
   * these and handles everything else. Answers false when the entry needs
   * onHeader, having done nothing onHeader would not do the same way (a
   * directory resolution cached, the nodes it looked at marked used).
   */
  private onHeaderFast(h: TarHeader): boolean {
    const t = h.type;
    const isFile = t === '0' || t === '\0';
    if (!isFile && t !== '5' && t !== '2') return false;
    const name = clean(h.name);
    const [dir, base] = split(name);
    if (base === '' || base === '.' || base === '..' || base.startsWith(WHITEOUT_PREFIX)) return false;
    const prel = this.resolveDirKnown(dir);
    if (prel === undefined) return false;
    const P = this.nodeOf(prel);
    if (!P || P.kind !== Kind.Dir || !P.upper) return false; // mkparent has work to do
    const path = prel ? `${prel}/${base}` : base;
    let old: Node | undefined;
    let lowers: number[] | undefined;
    if (t === '5') {
      // child() and lowerDirs() answer without the disk only in a new directory with nothing below
      const noLowers = P.opaque || !P.lowers?.length;
      old = this.nodes.get(path);
      if (!old && !(P.fresh && noLowers)) return false;
      if (!(old?.kind === Kind.Dir && old.upper)) {
        if (!noLowers) return false;
        lowers = [];
      }
    }
    this.begin(name);
    const m = this.meta(h);
    if (isFile) this.planFile(P, path, m);
    else if (t === '2') this.planSymlink(P, path, h, m);
    else this.planDir(P, path, name, m, old ?? { kind: Kind.Absent, upper: false }, lowers);
    this.unpacked.add(path);
    return true;
  }

  async onHeader(h: TarHeader): Promise<void> {
    const name = clean(h.name);
    this.begin(name);
    if ((h.type === '3' || h.type === '4') && runningInUserNS()) {
      this.warn(`file ${show(name)} ignored: archive may not be supported on system`);
      return;
    }
    const [dir, base] = split(name);
    const prel = await this.resolveDir(dir);
    const path = base === '' || base === '.' || base === '..' ? prel : prel ? `${prel}/${base}` : base;
    if (path === '') return; // resolved to root
    if (prel !== '') await this.mkparent(prel);
    const P = this.nodeOf(prel)!;

    if (base.startsWith(WHITEOUT_PREFIX)) {
      await this.whiteout(h, P, prel, base);
      return;
    }

    const m = this.meta(h);
    switch (h.type) {
      case '0':
      case '\0':
        this.planFile(P, path, m);
        break;
      case '5': {
        const old = this.nodes.get(path) ?? (await this.child(P, path));
        // a new, empty directory (whatever was there is removed first), or merged into the existing one
        const lowers = old.kind === Kind.Dir && old.upper ? undefined : P.opaque ? [] : await this.lowerDirs(P.lowers, path);
        this.planDir(P, path, name, m, old, lowers);
        break;
      }
      case '2':
        this.planSymlink(P, path, h, m);
        break;
      case '1':
        await this.hardlink(h, P, path, m);
        break;
      case '3':
      case '4':
      case '6': {
        const type = h.type === '3' ? S_IFCHR : h.type === '4' ? S_IFBLK : S_IFIFO;
        this.push({ t: OpType.Mknod, p: path, mode: type | (h.mode & 0o7777), dev: mkdev(h.devmajor, h.devminor), ...m });
        this.setNode(P, path, { kind: Kind.Other, upper: true });
        break;
      }
      default:
        throw invalidArgument(`unhandled tar header type ${h.type.charCodeAt(0)} for ${show(h.name)}`);
    }
    this.unpacked.add(path);
  }

  /** A regular file at path (its data follows). */
  private planFile(P: Node, path: string, m: Meta): void {
    const op: Op = { t: OpType.File, p: path, d: [] };
    this.push(op);
    this.file = { op, seq: this.batchSeq, meta: m };
    this.skipping = false;
    this.setNode(P, path, { kind: Kind.Other, upper: true });
  }

  private planSymlink(P: Node, path: string, h: TarHeader, m: Meta): void {
    this.push({ t: OpType.Symlink, p: path, tg: h.linkname, u: m.u, g: m.g, ts: m.ts, x: m.x });
    this.setNode(P, path, { kind: Kind.Link, upper: true, target: h.linkname });
  }

  /**
   * A directory entry at path over old (what is there now): with lowers, a
   * new empty directory with those lower dirs below it; without, the
   * existing directory of this layer, which only takes the new attributes.
   */
  private planDir(P: Node, path: string, name: string, m: Meta, old: Node, lowers: number[] | undefined): void {
    this.push({ t: OpType.Mkdir, p: path, ...m });
    old.explicit = true;
    if (lowers) this.setNode(P, path, { kind: Kind.Dir, upper: true, fresh: true, lowers });
    this.dirs.push({ name, ts: m.ts });
  }

  private async hardlink(h: TarHeader, P: Node, path: string, m: Meta): Promise<void> {
    const [tdir, tbase] = split(h.linkname);
    const tinside = join(await rootPath(tdir, this.lookup), tbase);
    const trel = rel(tinside);
    const what = `failed to create hard link ${show(h.name)} -> ${show(h.linkname)}`;
    const tn = trel === '' ? undefined : await this.walk(trel);
    if (!tn || tn.kind === Kind.Absent || tn.kind === Kind.Dir) {
      // containerd removes what is at the path before link(2) fails
      this.push({ t: OpType.RemoveAll, p: path });
      this.setNode(P, path, { kind: Kind.Absent, upper: false });
      if (trel === '') throw invalidArgument(`${what}: link target resolves to the root`);
      if (!tn || tn.kind === Kind.Absent) throw notFound(`${what}: link target not found`);
      throw invalidArgument(`${what}: link target is a directory`);
    }
    if (!tn.upper) {
      // only in a lower layer: copy it up first, as overlayfs would
      const tparent = relDir(trel);
      if (tparent !== '') await this.mkparent(tparent);
      this.push({ t: OpType.CopyUp, p: trel, src: tn.lowerPath });
      this.setNode(this.nodeOf(tparent)!, trel, { kind: tn.kind, target: tn.target, upper: true });
    }
    this.push({ t: OpType.Link, p: path, tg: trel, ...m });
    this.setNode(P, path, { kind: tn.kind === Kind.Link ? Kind.Link : Kind.Other, target: tn.target, upper: true });
  }

  private async whiteout(h: TarHeader, P: Node, prel: string, base: string): Promise<void> {
    const overlay = !!this.opts.overlayWhiteouts;
    if (base === WHITEOUT_OPAQUE) {
      if (overlay) {
        this.push({ t: OpType.SetXattr, p: prel, xn: OVERLAY_OPAQUE_XATTR, xv: 'y' });
        P.opaque = true;
        this.dropLowers(prel, P);
        this.gen++;
        return;
      }
      await this.opaqueRemove(P, prel);
      return;
    }
    const orig = base.slice(WHITEOUT_PREFIX.length);
    if (orig === '' || orig === '.' || orig === '..') throw invalidArgument(`invalid whiteout name: ${base}: invalid archive`);
    const wpath = prel ? `${prel}/${orig}` : orig;
    if (overlay) {
      const op: Op = { t: OpType.Whiteout, p: wpath };
      if (!this.opts.noSameOwner) {
        op.u = h.uid;
        op.g = h.gid;
      }
      this.push(op);
      this.setNode(P, wpath, { kind: Kind.Absent, upper: true, whiteout: true });
      return;
    }
    this.push({ t: OpType.RemoveAll, p: wpath });
    this.setNode(P, wpath, this.merged ? await this.fromLowersOf(P, wpath) : { kind: Kind.Absent, upper: false });
  }

  private async fromLowersOf(P: Node, r: string): Promise<Node> {
    return P.opaque || !P.lowers?.length ? { kind: Kind.Absent, upper: false } : this.fromLowers(P.lowers, r);
  }

  /** Non-overlay opaque marker: remove everything under dir this layer did not write (filepath.Walk order). */
  private async opaqueRemove(P: Node, prel: string): Promise<void> {
    await this.flush();
    const dirPath = this.full(prel);
    await fsp.lstat(B(dirPath)); // containerd: the directory must exist
    const walkDir = async (r: string): Promise<void> => {
      let names: string[];
      try {
        names = (await readdirB(this.full(r))).sort(); // byte order, as Go
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const n of names) {
        const cr = r ? `${r}/${n}` : n;
        if (!this.unpacked.has(cr)) {
          this.push({ t: OpType.RemoveAll, p: cr });
          continue;
        }
        const st = await fsp.lstat(B(this.full(cr))).catch(() => undefined);
        if (st?.isDirectory()) await walkDir(cr);
      }
    };
    await walkDir(prel);
    // the directory's contents are unknown again: let the removals land before anything looks
    await this.flush();
    this.deleteSubtree(prel, P);
    P.fresh = false;
    this.gen++;
  }

  onData(data: Buffer): void {
    const f = this.file;
    if (!f) return;
    if (f.seq !== this.batchSeq) {
      // the batch holding the open was submitted: continue in a new op
      f.op = { t: OpType.File, d: [] };
      f.seq = this.batchSeq;
      this.push(f.op);
    }
    f.op.d!.push(data);
    this.batchBytes += data.length;
  }

  onEnd(): void {
    const f = this.file;
    if (!f) return;
    this.file = undefined;
    if (f.seq !== this.batchSeq) {
      f.op = { t: OpType.File };
      this.push(f.op);
    }
    const op = f.op;
    op.c = true;
    op.u = f.meta.u;
    op.g = f.meta.g;
    op.md = f.meta.md;
    op.ts = f.meta.ts;
    if (f.meta.x) op.x = f.meta.x;
  }

  /**
   * Deferred parents (lazyParents): what containerd's mkparent would have
   * given them at creation — owner, mode, xattrs and atime of the lower
   * directory. The mtime stays: the entries created in them since changed it,
   * as they would have after mkparent. Skipped where the layer replaced the
   * directory or gave it its own entry.
   */
  private async finishDeferred(): Promise<void> {
    const live = this.deferred.filter(({ r, node }) => this.nodes.get(r) === node && !node.explicit);
    if (!live.length || !(await this.hasLowers())) return;
    for (const { r, node } of live) {
      const info = await this.parentInfo(r);
      if (!info.ts) continue; // no lower directory there: 0755 as made
      this.name = r;
      // nothing made inside (an opaque marker only sets an xattr): the lower mtime stands too
      const made = [...(node.children ?? [])].some((c) => this.nodes.get(`${r}/${c}`)?.upper);
      const ts: Timespecs = made ? [info.ts[0], info.ts[1], 0, UTIME_OMIT] : info.ts;
      this.push({ t: OpType.Mkparent, p: r, ...info, ts, q: true });
      if (this.batchFull) await this.submit();
    }
  }

  /** Directory times, after everything else (containerd resolves each name again). */
  private async finishDirs(): Promise<void> {
    for (const d of this.dirs) {
      this.name = d.name;
      const known = rootPath(d.name, this.lookupKnown); // no promise when the model knows every step
      const r = rel(known ?? (await rootPath(d.name, this.lookup)));
      const n = this.nodeOf(r);
      this.push({ t: OpType.Times, p: r, ts: d.ts, q: this.merged && !!n && !n.upper });
      if (this.batchFull) await this.submit();
    }
  }

  async run(stream: Readable, algorithm: string): Promise<ApplyResult> {
    const signal = this.opts.signal;
    const hash = createHash(algorithm);
    // bytes the decompressor digests as it reads them are not hashed twice
    const pre = (stream as Readable & { [PREDIGEST]?: Predigest })[PREDIGEST];
    const tr = new TarReader();
    let input: ConsumeResult;
    try {
      await this.init();
      input = await this.consume(stream, tr, hash, pre, algorithm);
      if (signal?.aborted) throw canceled('apply: operation canceled', signal.reason);
      tr.end();
      await this.finishDeferred();
      await this.finishDirs();
      await this.flush();
      if (this.failure) throw this.failure;
    } catch (err) {
      if (!stream.destroyed) stream.destroy();
      // what the entries before the failing one did stays applied (as in containerd);
      // on abort, nothing more is written
      if (!this.failure && !signal?.aborted) this.submitNow();
      await this.tail.catch(() => {});
      await this.exec.close().catch(() => {});
      if (signal?.aborted && !(err instanceof DistError && err.code === 'Canceled')) {
        throw canceled('apply: operation canceled', signal.reason);
      }
      throw err;
    }
    await this.exec.close();
    if (input.hashing === false) {
      if (!pre?.value) throw unknown('apply: the decompressor gave no digest');
      return { diffID: `${algorithm}:${pre.value}`, size: input.size };
    }
    return { diffID: `${algorithm}:${hash.digest('hex')}`, size: input.size };
  }

  /**
   * The hot loop: reads the stream to its end, planning entries and
   * submitting batches. Apart from run's once-per-layer tail, so that V8's
   * optimized code for it never reaches code that has not run yet (which
   * would discard it while another layer still applies).
   */
  private async consume(stream: Readable, tr: TarReader, hash: Hash, pre: Predigest | undefined, algorithm: string): Promise<ConsumeResult> {
    const signal = this.opts.signal;
    let hashing: boolean | undefined;
    let size = 0;
    for await (const c of stream) {
      if (signal?.aborted) throw canceled('apply: operation canceled', signal.reason);
      if (this.failure) throw this.failure;
      const chunk: Buffer = typeof c === 'string' ? Buffer.from(c) : c;
      if (hashing === undefined) {
        hashing = !(pre?.active && pre.algorithm === algorithm);
        if (pre?.active) this.recycle = pre.recycle;
      }
      if (hashing) hash.update(chunk);
      size += chunk.length;
      if (tr.done) continue; // drain what follows the end-of-archive marker
      tr.push(chunk);
      for (let ev = tr.next(); ev !== null; ev = tr.next()) {
        if (ev.kind === 'data') {
          if (!this.skipping) this.onData(ev.data);
        } else if (ev.kind === 'header') {
          if (!this.onHeaderFast(ev.header)) await this.onHeader(ev.header);
        } else {
          this.onEnd();
        }
        if (this.batchFull) await this.submit();
      }
      // the chunk is parsed: what points into it is in the open batch or earlier ones
      if (this.recycle) this.chunksHeld.push({ ab: chunk.buffer, seq: this.batchSeq });
      // keep the executor busy while waiting for input
      if (this.queued.length === 0) this.submitNow();
    }
    return { hashing, size };
  }
}

/** What consume() read: whether it hashed the bytes itself (undefined: no input), and how many. */
interface ConsumeResult {
  hashing: boolean | undefined;
  size: number;
}

/**
 * Applies an uncompressed layer tar to root (containerd's archive.Apply),
 * reading the stream to its very end. Returns the digest and size of the
 * bytes read.
 */
export async function apply(root: string, tarStream: Readable, opts: ApplyOptions = {}): Promise<ApplyResult> {
  return applyWith(root, tarStream, opts, 'sha256');
}

async function applyWith(root: string, tarStream: Readable, opts: ApplyOptions, algorithm: string): Promise<ApplyResult> {
  if (opts.signal?.aborted) {
    tarStream.destroy();
    throw canceled('apply: operation canceled', opts.signal.reason);
  }
  let st;
  try {
    st = await fsp.stat(root);
  } catch (err) {
    tarStream.destroy();
    throw fsError(`apply: root ${root}`, err);
  }
  if (!st.isDirectory()) {
    tarStream.destroy();
    throw invalidArgument(`apply: root ${root} is not a directory`);
  }
  return new Applier(resolve(root), opts).run(tarStream, algorithm);
}

export interface ApplyLayerOptions extends ApplyOptions {
  /** The layer descriptor's media type (compression hint; the magic bytes decide). */
  mediaType?: string;
  /** The layer's diffID (the config's rootfs.diff_ids entry): checked after applying. */
  expectedDiffID?: string;
  gzip?: GzipBackend;
  zstd?: ZstdBackend;
}

export interface ApplyLayerResult extends ApplyResult {
  compression: Compression;
}

/**
 * Decompresses and applies a layer blob, then checks the uncompressed digest
 * against expectedDiffID (FailedPrecondition with both digests on mismatch;
 * the tree is left as applied — callers discard the snapshot).
 */
export async function applyLayer(root: string, compressed: LayerSource, opts: ApplyLayerOptions = {}): Promise<ApplyLayerResult> {
  const algorithm = opts.expectedDiffID ? parseDigest(opts.expectedDiffID).algorithm : 'sha256';
  let compression: Compression = 'none';
  const plain = decompress(compressed, {
    digest: algorithm,
    mediaType: opts.mediaType,
    signal: opts.signal,
    gzip: opts.gzip,
    zstd: opts.zstd,
    onDetect: (c) => {
      compression = c;
    },
  });
  const res = await applyWith(root, plain, opts, algorithm);
  if (opts.expectedDiffID && res.diffID !== opts.expectedDiffID) {
    throw failedPrecondition(`wrong diff id calculated on extraction: expected ${opts.expectedDiffID}, got ${res.diffID}`);
  }
  return { ...res, compression };
}
