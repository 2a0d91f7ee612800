/**
 * Test helpers for src/archive: a tar writer with full control over the
 * bytes (PAX, GNU long names, base-256, odd names and types), a canonical
 * tree listing, and containerd 1.6's own archive.Apply built from the Debian
 * Go sources (test/archive/oracle) for differential tests.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { native } from '../../src/internal/sys.js';

export interface Entry {
  /** A string (UTF-8) or raw bytes (names that are not UTF-8). */
  name: string | Buffer;
  /** file (default), dir, symlink, link, char, block, fifo, or a raw typeflag character. */
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo' | string;
  data?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds; fractional values go to a PAX mtime record. */
  mtime?: number;
  atime?: number;
  linkname?: string | Buffer;
  devmajor?: number;
  devminor?: number;
  /** Extra PAX records. */
  pax?: Record<string, string | Buffer>;
  /** SCHILY.xattr.* records. */
  xattrs?: Record<string, string | Buffer>;
  /** Long names as GNU 'L'/'K' entries instead of PAX records. */
  gnu?: boolean;
  /** Write uid/gid in base-256. */
  base256?: boolean;
  /** Override the size field (e.g. non-zero for header-only types). */
  sizeField?: number;
}

const TYPES: Record<string, string> = { file: '0', dir: '5', symlink: '2', link: '1', char: '3', block: '4', fifo: '6' };

function octal(buf: Buffer, off: number, len: number, v: number): void {
  const s = v.toString(8).padStart(len - 1, '0');
  if (s.length > len - 1) throw new Error(`value ${v} does not fit ${len} bytes`);
  buf.write(s, off, 'latin1');
  buf[off + len - 1] = 0;
}

/** Go's formatNumeric binary form: two's complement, high bit of the first byte set. */
function base256(buf: Buffer, off: number, len: number, v: number): void {
  let x = BigInt(v);
  for (let i = len - 1; i >= 0; i--) {
    buf[off + i] = Number(BigInt.asUintN(8, x));
    x >>= 8n;
  }
  buf[off] |= 0x80;
}

function numeric(buf: Buffer, off: number, len: number, v: number): void {
  if (v < 0 || v >= 8 ** (len - 1)) base256(buf, off, len, v);
  else octal(buf, off, len, v);
}

function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
  let n = body.length + 1;
  while (String(n).length + body.length !== n) n = String(n).length + body.length;
  return Buffer.concat([Buffer.from(String(n)), body]);
}

function pad(b: Buffer): Buffer {
  const r = b.length % 512;
  return r ? Buffer.concat([b, Buffer.alloc(512 - r)]) : b;
}

interface RawHeader {
  name: string | Buffer;
  type: string;
  size: number;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string | Buffer;
  devmajor?: number;
  devminor?: number;
  gnu?: boolean;
  base256?: boolean;
}

export function header(h: RawHeader): Buffer {
  const b = Buffer.alloc(512);
  Buffer.from(h.name).copy(b, 0, 0, 100);
  octal(b, 100, 8, h.mode ?? 0o644);
  if (h.base256) {
    base256(b, 108, 8, h.uid ?? 0);
    base256(b, 116, 8, h.gid ?? 0);
  } else {
    octal(b, 108, 8, h.uid ?? 0);
    octal(b, 116, 8, h.gid ?? 0);
  }
  octal(b, 124, 12, h.size);
  numeric(b, 136, 12, Math.floor(h.mtime ?? 1_600_000_000));
  b.fill(0x20, 148, 156);
  b.write(h.type, 156, 'latin1');
  if (h.linkname) Buffer.from(h.linkname).copy(b, 157, 0, 100);
  if (h.gnu) {
    b.write('ustar  \0', 257, 'latin1');
  } else {
    b.write('ustar\0', 257, 'latin1');
    b.write('00', 263, 'latin1');
  }
  octal(b, 329, 8, h.devmajor ?? 0);
  octal(b, 337, 8, h.devminor ?? 0);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(sum.toString(8).padStart(6, '0'), 148, 'latin1');
  b[154] = 0;
  b[155] = 0x20;
  return b;
}

/** One entry's bytes (with its PAX / GNU long-name headers). */
export function entry(e: Entry): Buffer {
  const type = TYPES[e.type ?? 'file'] ?? e.type!;
  const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
  const parts: Buffer[] = [];
  const pax: Array<[string, string | Buffer]> = [];
  const name = Buffer.from(e.name);
  const linkname = Buffer.from(e.linkname ?? '');
  const nameBytes = name.length;
  const linkBytes = linkname.length;
  if (nameBytes > 100) {
    if (e.gnu) {
      const nb = Buffer.concat([Buffer.from(name), Buffer.alloc(1)]);
      parts.push(header({ name: '././@LongLink', type: 'L', size: nb.length, gnu: true }), pad(nb));
    } else {
      pax.push(['path', name]);
    }
  }
  if (linkBytes > 100) {
    if (e.gnu) {
      const lb = Buffer.concat([Buffer.from(linkname), Buffer.alloc(1)]);
      parts.push(header({ name: '././@LongLink', type: 'K', size: lb.length, gnu: true }), pad(lb));
    } else {
      pax.push(['linkpath', linkname]);
    }
  }
  if (e.mtime !== undefined && !Number.isInteger(e.mtime)) pax.push(['mtime', e.mtime.toFixed(9)]);
  if (e.atime !== undefined) pax.push(['atime', Number.isInteger(e.atime) ? String(e.atime) : e.atime.toFixed(9)]);
  for (const [k, v] of Object.entries(e.pax ?? {})) pax.push([k, v]);
  for (const [k, v] of Object.entries(e.xattrs ?? {})) pax.push([`SCHILY.xattr.${k}`, v]);
  if (pax.length) {
    const body = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
    parts.push(header({ name: 'PaxHeaders/x', type: 'x', size: body.length }), pad(body));
  }
  parts.push(
    header({
      name: name.subarray(0, 100),
      type,
      size: e.sizeField ?? data.length,
      mode: e.mode ?? (type === '5' ? 0o755 : 0o644),
      uid: e.uid,
      gid: e.gid,
      mtime: e.mtime,
      linkname: linkname.subarray(0, 100),
      devmajor: e.devmajor,
      devminor: e.devminor,
      gnu: e.gnu,
      base256: e.base256,
    }),
  );
  if (data.length) parts.push(pad(data));
  return Buffer.concat(parts);
}

/** A whole archive: entries, two zero blocks, then opts.trailing (GNU tar pads to 10 KiB records). */
export function tar(entries: Entry[], opts: { eof?: boolean; record?: number; trailing?: Buffer } = {}): Buffer {
  const parts = entries.map(entry);
  if (opts.eof !== false) parts.push(Buffer.alloc(1024));
  let b = Buffer.concat(parts);
  if (opts.record) {
    const r = b.length % opts.record;
    if (r) b = Buffer.concat([b, Buffer.alloc(opts.record - r)]);
  }
  if (opts.trailing) b = Buffer.concat([b, opts.trailing]);
  return b;
}

/** A stream of buf in chunks of `size` bytes (default: one chunk). */
export function streamOf(buf: Buffer, size = buf.length || 1): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
  return Readable.from(chunks, { objectMode: false });
}

export function sha256(b: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

/** Bytes outside printable ASCII (and backslash) as \xNN. */
export function escapeBytes(b: Buffer): string {
  let out = '';
  for (const c of b) out += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return out;
}

export interface ListOpts {
  /** Leave directory mtimes out. */
  noDirMtime?: boolean;
  /** mtimes at or after this instant (ns) print as "new" (set at apply time). */
  since?: bigint;
}

/**
 * Canonical listing of a tree: one line per path (sorted), with type, mode
 * (incl. setuid/setgid/sticky), owner, size+digest / target / device,
 * mtime in ns, xattrs, and hard-link groups. The root prints without mtime.
 */
export async function listTree(dir: string, opts: ListOpts = {}): Promise<string[]> {
  const lines: string[] = [];
  const inodes = new Map<bigint, string>();
  const dirB = Buffer.from(dir);
  // rel: the path below dir as a byte string (latin1)
  async function walk(rel: string): Promise<void> {
    const p = rel ? Buffer.concat([dirB, Buffer.from(`/${rel}`, 'latin1')]) : dirB;
    const st = await fsp.lstat(p, { bigint: true });
    const mode = (Number(st.mode) & 0o7777).toString(8).padStart(4, '0');
    const shown = rel ? escapeBytes(Buffer.from(rel, 'latin1')) : '.';
    let line = `${shown} `;
    if (st.isDirectory()) line += 'dir';
    else if (st.isFile()) line += 'file';
    else if (st.isSymbolicLink()) line += 'symlink';
    else if (st.isCharacterDevice()) line += 'char';
    else if (st.isBlockDevice()) line += 'block';
    else if (st.isFIFO()) line += 'fifo';
    else line += 'other';
    line += ` mode=${mode} uid=${st.uid} gid=${st.gid}`;
    if (st.isFile()) line += ` size=${st.size} ${sha256(await fsp.readFile(p)).slice(7, 19)}`;
    if (st.isSymbolicLink()) line += ` target=${escapeBytes(await fsp.readlink(p, { encoding: 'buffer' }))}`;
    if (st.isCharacterDevice() || st.isBlockDevice()) {
      const r = Number(st.rdev);
      line += ` dev=${(r >> 8) & 0xfff},${(r & 0xff) | ((r >> 12) & 0xfff00)}`;
    }
    if (rel && !(st.isDirectory() && opts.noDirMtime)) line += ` mtime=${opts.since !== undefined && st.mtimeNs >= opts.since ? 'new' : st.mtimeNs}`;
    if (native) {
      const names = native.llistxattr(p).sort();
      if (names.length) line += ' xattrs=' + names.map((n) => `${n}=${native!.lgetxattr(p, n)?.toString('hex')}`).join(';');
    }
    if (!st.isDirectory() && st.nlink > 1n) {
      const first = inodes.get(st.ino);
      if (first === undefined) inodes.set(st.ino, shown);
      line += ` nlink=${st.nlink} group=${first ?? shown}`;
    }
    lines.push(line);
    if (st.isDirectory()) {
      const names = (await fsp.readdir(p, { encoding: 'buffer' })).map((b) => b.toString('latin1')).sort();
      for (const n of names) await walk(rel ? `${rel}/${n}` : n);
    }
  }
  await walk('');
  return lines;
}

// ---- containerd oracle ----------------------------------------------------------

let oraclePath: string | null | undefined;

/** Path of the built oracle, or undefined when Go or the containerd sources are missing. */
export function oracle(): string | undefined {
  if (oraclePath !== undefined) return oraclePath ?? undefined;
  oraclePath = null;
  const src = fileURLToPath(new URL('../../../test/archive/oracle/main.go', import.meta.url));
  if (!existsSync(src) || !existsSync('/usr/share/gocode/src/github.com/containerd/containerd/archive/tar.go')) return undefined;
  const text = readFileSync(src);
  const dir = join(tmpdir(), `dist-archive-oracle-${createHash('sha256').update(text).digest('hex').slice(0, 12)}`);
  const bin = join(dir, 'oracle');
  if (!existsSync(bin)) {
    try {
      mkdirSync(join(dir, 'src', 'oracle'), { recursive: true });
      execFileSync('cp', [src, join(dir, 'src', 'oracle', 'main.go')]);
      execFileSync('go', ['build', '-o', bin + '.tmp', 'oracle'], {
        env: { ...process.env, GOPATH: `${dir}:/usr/share/gocode`, GO111MODULE: 'off', GOFLAGS: '', GOCACHE: join(tmpdir(), 'dist-archive-gocache') },
        stdio: 'pipe',
      });
      execFileSync('mv', [bin + '.tmp', bin]);
    } catch {
      return undefined;
    }
  }
  oraclePath = bin;
  return bin;
}

/** Applies tarBytes to root with containerd's archive.Apply. */
export function runOracle(root: string, tarBytes: Buffer, opts: { overlay?: boolean; parents?: string[] } = {}): Promise<{ ok: boolean; out: string; err: string }> {
  const bin = oracle();
  if (!bin) throw new Error('oracle not available');
  const args = [root];
  if (opts.overlay) args.push('overlay', ...(opts.parents ?? []));
  return new Promise((resolve) => {
    const child = execFile(bin, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ ok: !err, out: stdout, err: stderr });
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(tarBytes);
  });
}
