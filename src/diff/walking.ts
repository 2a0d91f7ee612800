/**
 * diff/walking: creating a layer from the difference between two trees
 * (containerd's walking differ: diff/walking + archive.WriteDiff over
 * continuity's double-walk fs.Changes).
 *
 * `writeDiff(lower, upper)` walks both trees in lexical order per directory
 * and emits a tar stream of the changes, as containerd's ChangeWriter does:
 *  - added and modified entries from `upper` (PAX/USTAR headers, mtime
 *    truncated to seconds, no user/group names, sockets skipped);
 *  - deletions as `.wh.<name>` whiteout files (a deleted directory is one
 *    whiteout, nothing below it);
 *  - every entry's parent directories are written first (once), from upper;
 *  - hardlinks within upper become link entries to the first path written
 *    for that inode (unmodified paths of a changed inode are linked too);
 *  - security.capability travels as a SCHILY.xattr PAX record.
 * A path counts as unchanged when mode, owner and rdev match and (for
 * non-directories) size and mtime seconds match, with equal nanoseconds or,
 * when both are zero, equal content (or symlink target).
 *
 * `WalkingDiff.compare(ctx, lowerMounts, upperMounts)` mounts both sets
 * (upper read-only), streams the (optionally compressed) diff into the
 * content store under a ref, commits it with the containerd.io/uncompressed
 * label and returns its descriptor.
 */
import { randomBytes } from 'node:crypto';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { compress, type Compression } from '../archive/compression.js';
import type { Descriptor, Store } from '../content/types.js';
import * as digest from '../digest/index.js';
import { isAlreadyExists, notImplemented, throwIfAborted } from '../errdefs/index.js';
import type { Ctx } from '../internal/context.js';
import { native } from '../internal/sys.js';
import { withReadonlyTempMount, withTempMount } from '../mount/index.js';
import type { Mount } from '../mount/types.js';

export const LABEL_UNCOMPRESSED = 'containerd.io/uncompressed';
const WHITEOUT_PREFIX = '.wh.';
const BLOCK = 512;
const COPY_CHUNK = 1 << 20;

const MEDIA_TYPES: Record<string, Compression> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
};

export interface CompareOptions {
  /** Layer media type (default gzip'd OCI layer); tar, tar+gzip, tar+zstd. */
  mediaType?: string;
  /** Ingest ref to write under (default: a unique one, aborted on failure). */
  ref?: string;
  /** Labels of the committed blob (containerd.io/uncompressed is added). */
  labels?: Record<string, string>;
}

/** containerd's diff.Comparer. */
export interface Comparer {
  compare(ctx: Ctx, lower: Mount[], upper: Mount[], opts?: CompareOptions): Promise<Descriptor>;
}

// ---- tar writing -------------------------------------------------------------

interface Header {
  name: string;
  /** '0' file, '1' hardlink, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo */
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Map<string, Buffer>;
}

/** Writes `v` as NUL-terminated octal in a field of `len`; false when it does not fit. */
function octal(buf: Buffer, off: number, len: number, v: number): boolean {
  const s = Math.max(0, Math.trunc(v)).toString(8);
  if (s.length > len - 1) return false;
  buf.write(s.padStart(len - 1, '0'), off, len - 1, 'ascii');
  buf[off + len - 1] = 0;
  return true;
}

function ustar(h: Header, name: string, linkname: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'utf8');
  octal(b, 100, 8, h.mode & 0o7777);
  octal(b, 108, 8, h.uid);
  octal(b, 116, 8, h.gid);
  octal(b, 124, 12, h.size);
  octal(b, 136, 12, h.mtime);
  b.write(h.type, 156, 1, 'ascii');
  b.write(linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'ascii');
  octal(b, 329, 8, h.devmajor ?? 0);
  octal(b, 337, 8, h.devminor ?? 0);
  b.fill(0x20, 148, 156); // checksum field counts as spaces
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 8, 'ascii');
  return b;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let n = body.length + 1;
  while (String(n).length + body.length !== n) n = String(n).length + body.length;
  return Buffer.concat([Buffer.from(String(n)), body]);
}

const pad = (n: number) => (n % BLOCK === 0 ? 0 : BLOCK - (n % BLOCK));
const isAscii = (s: string) => /^[\x00-\x7f]*$/.test(s);

/** The header blocks of one entry: a PAX header when USTAR cannot hold it, then the USTAR header. */
export function encodeHeader(h: Header): Buffer {
  const pax = new Map(h.pax ?? []);
  let name = h.name;
  let linkname = h.linkname ?? '';
  if (Buffer.byteLength(name) > 100 || !isAscii(name)) {
    pax.set('path', Buffer.from(name));
    name = Buffer.from(name).subarray(0, 99).toString('latin1').replace(/[^\x00-\x7f]/g, '_');
  }
  if (Buffer.byteLength(linkname) > 100 || !isAscii(linkname)) {
    pax.set('linkpath', Buffer.from(linkname));
    linkname = Buffer.from(linkname).subarray(0, 99).toString('latin1').replace(/[^\x00-\x7f]/g, '_');
  }
  const probe = Buffer.alloc(12);
  for (const [k, v, len] of [['size', h.size, 12], ['uid', h.uid, 8], ['gid', h.gid, 8]] as const) {
    if (!octal(probe, 0, len, v)) pax.set(k, Buffer.from(String(v)));
  }
  const main = ustar(pax.has('size') ? { ...h, size: 0 } : h, name, linkname);
  if (pax.size === 0) return main;
  if (pax.has('size')) octal(main, 124, 12, 0);
  const records = Buffer.concat([...pax].map(([k, v]) => paxRecord(k, v)));
  const base = h.name.replace(/\/+$/, '').split('/').pop() ?? '';
  const xname = `PaxHeaders.0/${base}`.slice(0, 99).replace(/[^\x00-\x7f]/g, '_');
  const xh = ustar({ name: xname, type: 'x', mode: 0o644, uid: 0, gid: 0, size: records.length, mtime: h.mtime }, xname, '');
  return Buffer.concat([xh, records, Buffer.alloc(pad(records.length)), main]);
}

// ---- walking -------------------------------------------------------------------

type Kind = 'add' | 'modify' | 'delete' | 'unmodified';

function isDir(st: BigIntStats): boolean {
  return st.isDirectory();
}

function isLinked(st: BigIntStats): boolean {
  return !st.isDirectory() && st.nlink > 1n;
}

async function capability(p: string): Promise<Buffer | undefined> {
  if (!native) return undefined;
  try {
    const v = native.lgetxattr(p, 'security.capability');
    return v && v.length ? v : undefined;
  } catch {
    return undefined;
  }
}

async function sameContent(a: string, b: string): Promise<boolean> {
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const ba = Buffer.allocUnsafe(64 << 10);
    const bb = Buffer.allocUnsafe(64 << 10);
    for (let pos = 0; ; ) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, ba.length, pos), fb.read(bb, 0, bb.length, pos)]);
      if (ra.bytesRead !== rb.bytesRead) return false;
      if (ra.bytesRead === 0) return true;
      if (!ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
      pos += ra.bytesRead;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

/** continuity's sameFile. */
async function sameFile(l: BigIntStats, u: BigIntStats, lp: string, up: string): Promise<boolean> {
  if (l.dev === u.dev && l.ino === u.ino) return true;
  if (l.mode !== u.mode || l.uid !== u.uid || l.gid !== u.gid || l.rdev !== u.rdev) return false;
  const [ca, cb] = await Promise.all([capability(lp), capability(up)]);
  if (!(ca ?? Buffer.alloc(0)).equals(cb ?? Buffer.alloc(0))) return false;
  if (isDir(l)) return true;
  if (l.size !== u.size) return false;
  const NS = 1_000_000_000n;
  if (l.mtimeNs / NS !== u.mtimeNs / NS) return false;
  const n1 = l.mtimeNs % NS;
  const n2 = u.mtimeNs % NS;
  if (n1 === 0n && n2 === 0n) {
    if (l.isSymbolicLink()) return (await readlink(lp)) === (await readlink(up));
    if (l.size === 0n) return true;
    return sameContent(lp, up);
  }
  return n1 === n2;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

async function names(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort(byteOrder);
}

function devNumbers(rdev: bigint): { major: number; minor: number } {
  const r = Number(rdev);
  return { major: ((r >>> 8) & 0xfff) | (Math.floor(r / 2 ** 32) & ~0xfff), minor: (r & 0xff) | ((r >>> 12) & 0xfff00) };
}

/**
 * The tar stream of changes from `lower` to `upper` (see the module comment).
 * Pull-based: nothing is read ahead of the consumer.
 */
export async function* writeDiff(lower: string, upper: string, opts: { signal?: AbortSignal; now?: Date } = {}): AsyncGenerator<Buffer> {
  const whiteoutT = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const inodeSrc = new Map<string, string>();
  const inodeRefs = new Map<string, string[]>();
  const addedDirs = new Set<string>();

  // includeParents: each entry's parent dirs (from upper), once, before it.
  async function* parents(name: string, isDirEntry: boolean): AsyncGenerator<Buffer> {
    const trimmed = name.replace(/\/+$/, '');
    const i = trimmed.lastIndexOf('/');
    if (i > 0) {
      const parent = trimmed.slice(0, i);
      if (!addedDirs.has(parent)) {
        addedDirs.add(parent);
        yield* change('modify', parent, await lstat(join(upper, parent), { bigint: true }));
      }
    }
    if (isDirEntry) addedDirs.add(trimmed);
  }

  async function* change(kind: Kind, p: string, st: BigIntStats): AsyncGenerator<Buffer> {
    throwIfAborted(opts.signal);
    if (kind === 'delete') {
      const i = p.lastIndexOf('/');
      const name = i < 0 ? `${WHITEOUT_PREFIX}${p}` : `${p.slice(0, i)}/${WHITEOUT_PREFIX}${p.slice(i + 1)}`;
      yield* parents(name, false);
      yield encodeHeader({ name, type: '0', mode: 0, uid: 0, gid: 0, size: 0, mtime: whiteoutT });
      return;
    }
    if (st.isSocket()) return;
    const source = join(upper, p);
    const h: Header = { name: p, type: '0', mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), size: 0, mtime: Number(st.mtimeNs / 1_000_000_000n) };
    if (st.isDirectory()) {
      h.type = '5';
      h.name = `${p}/`;
    } else if (st.isSymbolicLink()) {
      h.type = '2';
      h.linkname = await readlink(source);
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      h.type = st.isCharacterDevice() ? '3' : '4';
      const { major, minor } = devNumbers(st.rdev);
      h.devmajor = major;
      h.devminor = minor;
    } else if (st.isFIFO()) {
      h.type = '6';
    } else {
      h.size = Number(st.size);
    }
    let extraLinks: string[] | undefined;
    if (isLinked(st)) {
      const key = `${st.dev}:${st.ino}`;
      const src = inodeSrc.get(key);
      if (src !== undefined) {
        h.type = '1';
        h.linkname = src;
        h.size = 0;
      } else {
        if (kind === 'unmodified') {
          inodeRefs.set(key, [...(inodeRefs.get(key) ?? []), h.name]);
          return;
        }
        inodeSrc.set(key, h.name);
        extraLinks = inodeRefs.get(key);
        inodeRefs.delete(key);
      }
    } else if (kind === 'unmodified') {
      return;
    }
    const cap = await capability(source);
    if (cap) h.pax = new Map([['SCHILY.xattr.security.capability', cap]]);
    yield* parents(h.name, h.type === '5');
    yield encodeHeader(h);
    if (h.type === '0' && h.size > 0) {
      const fh = await open(source, 'r');
      try {
        let done = 0;
        while (done < h.size) {
          throwIfAborted(opts.signal);
          const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, h.size - done));
          const { bytesRead } = await fh.read(buf, 0, buf.length, done);
          if (bytesRead === 0) throw new Error(`short read copying ${p}: ${done} of ${h.size} bytes`);
          done += bytesRead;
          yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
        }
        const n = pad(h.size);
        if (n) yield Buffer.alloc(n);
      } finally {
        await fh.close();
      }
    }
    for (const extra of extraLinks ?? []) {
      const link: Header = { ...h, name: extra, type: '1', linkname: h.name, size: 0 };
      yield* parents(link.name, false);
      yield encodeHeader(link);
    }
  }

  // Everything below rel in upper, as additions (a new directory's content).
  async function* addAll(rel: string): AsyncGenerator<Buffer> {
    for (const name of await names(join(upper, rel))) {
      const p = `${rel}/${name}`;
      const st = await lstat(join(upper, p), { bigint: true });
      yield* change('add', p, st);
      if (st.isDirectory()) yield* addAll(p);
    }
  }

  async function* walk(rel: string): AsyncGenerator<Buffer> {
    const ln = await names(join(lower, rel)).catch(() => [] as string[]);
    const un = await names(join(upper, rel));
    const all = [...new Set([...ln, ...un])].sort(byteOrder);
    const lset = new Set(ln);
    const uset = new Set(un);
    for (const name of all) {
      const p = rel ? `${rel}/${name}` : name;
      const l = lset.has(name) ? await lstat(join(lower, p), { bigint: true }) : undefined;
      const u = uset.has(name) ? await lstat(join(upper, p), { bigint: true }) : undefined;
      if (!u) {
        yield* change('delete', p, l!);
        continue;
      }
      if (!l) {
        yield* change('add', p, u);
        if (u.isDirectory()) yield* addAll(p);
        continue;
      }
      const same = await sameFile(l, u, join(lower, p), join(upper, p));
      if (!same) yield* change('modify', p, u);
      else if (isLinked(u)) yield* change('unmodified', p, u);
      if (u.isDirectory()) yield* l.isDirectory() ? walk(p) : addAll(p);
    }
  }

  yield* walk('');
  yield Buffer.alloc(2 * BLOCK);
}

// ---- the differ ------------------------------------------------------------------

function uniqueRef(): string {
  return `${process.hrtime.bigint()}-${randomBytes(9).toString('base64url')}`;
}

/** containerd's walking differ over a content store. */
export class WalkingDiff implements Comparer {
  constructor(private readonly store: Store) {}

  async compare(ctx: Ctx, lower: Mount[], upper: Mount[], opts: CompareOptions = {}): Promise<Descriptor> {
    const mediaType = opts.mediaType || 'application/vnd.oci.image.layer.v1.tar+gzip';
    const compression = MEDIA_TYPES[mediaType];
    if (compression === undefined) throw notImplemented(`unsupported diff media type: ${mediaType}`);
    const signal = ctx.signal;
    return withTempMount(lower, (lowerRoot) =>
      withReadonlyTempMount(upper, async (upperRoot) => {
        const newRef = !opts.ref;
        const ref = opts.ref || uniqueRef();
        const w = await this.store.writer(ctx, { ref, desc: {} });
        let committed = false;
        try {
          if (!newRef) await w.truncate(0);
          const hash = digest.hasher('sha256');
          const tee = async function* () {
            for await (const c of writeDiff(lowerRoot, upperRoot, { signal })) {
              hash.update(c);
              yield c;
            }
          };
          const body = compress(Readable.from(tee(), { objectMode: false }), compression, { signal });
          for await (const chunk of body) await w.write(chunk as Buffer, signal);
          const labels = { ...(opts.labels ?? {}) };
          const uncompressed = `sha256:${hash.digest('hex')}`;
          if (compression !== 'none') labels[LABEL_UNCOMPRESSED] = uncompressed;
          const dgst = w.digest();
          try {
            await w.commit(ctx, 0, dgst, Object.keys(labels).length ? { labels } : {});
          } catch (err) {
            if (!isAlreadyExists(err)) throw err;
          }
          committed = true;
          const info = await this.store.info(ctx, dgst);
          if (compression !== 'none' && !info.labels[LABEL_UNCOMPRESSED]) {
            await this.store.update(ctx, { digest: dgst, labels: { [LABEL_UNCOMPRESSED]: uncompressed } }, [`labels.${LABEL_UNCOMPRESSED}`]);
          }
          return { mediaType, digest: info.digest, size: info.size };
        } catch (err) {
          if (!committed) {
            await w.close().catch(() => undefined);
            if (newRef) await this.store.abort(ctx, ref).catch(() => undefined);
          }
          throw err;
        }
      }),
    );
  }
}

