#!/usr/bin/env node
/**
 * tree-oracle: a canonical listing of a directory tree, for comparing two
 * unpacks of the same image (containerd's vs ours) with `diff`.
 *
 * Usage: node scripts/tree-oracle.mjs [options] DIR
 *   --since <ns|file>   mtimes at or after this instant (ns since the epoch,
 *                       or the mtime of a reference file) print as `mtime=new`:
 *                       "set by the applier at unpack time" rather than taken
 *                       from the archive. Without it, raw ns are printed.
 *   --no-dir-mtime      leave directory mtimes out
 *   --no-content        leave file content digests out (faster)
 *   --no-xattrs         leave xattrs out
 *
 * One line per entry, sorted by path (byte order), tab-separated fields:
 *   <path> <type> mode=<octal, incl. setuid/setgid/sticky> uid= gid=
 *   file:    size= sha256= mtime=
 *   symlink: target= mtime=
 *   char/block: dev=<major>,<minor> mtime=
 *   dir:     mtime= (unless --no-dir-mtime)
 *   fifo/socket: mtime=
 *   then, when present: xattrs=<name=hex;...> (sorted), and for non-dirs with
 *   more than one link: nlink=<n> group=<first path of the inode in this tree>.
 * The root entry is printed as "." without mtime.
 *
 * mtimes are nanoseconds: containerd 1.6's archive.Apply sets atime/mtime with
 * utimensat from the tar header (PAX records carry ns), directories at the
 * end of each layer. Paths are printed with bytes outside printable ASCII (and
 * backslash) escaped as \xNN, so non-UTF-8 names survive.
 *
 * Xattrs come from the project's native addon (native/build/Release/
 * dist_native.node: llistxattr/lgetxattr); without it from getfattr(1), or
 * python3's os.listxattr. Walk a MOUNTED overlay (the merged view), never the
 * raw upperdir: whiteout devices and trusted.overlay.* are then invisible.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, lstatSync, readlinkSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = { since: undefined, dirMtime: true, content: true, xattrs: true };
let root;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--since') {
    const v = args[++i];
    opt.since = /^\d+$/.test(v) ? BigInt(v) : statSync(v, { bigint: true }).mtimeNs;
  } else if (a === '--no-dir-mtime') opt.dirMtime = false;
  else if (a === '--no-content') opt.content = false;
  else if (a === '--no-xattrs') opt.xattrs = false;
  else if (a === '-h' || a === '--help') {
    process.stdout.write('usage: tree-oracle.mjs [--since NS|FILE] [--no-dir-mtime] [--no-content] [--no-xattrs] DIR\n');
    process.exit(0);
  } else if (root === undefined) root = a;
  else {
    process.stderr.write(`tree-oracle: unexpected argument ${a}\n`);
    process.exit(2);
  }
}
if (!root) {
  process.stderr.write('usage: tree-oracle.mjs [options] DIR\n');
  process.exit(2);
}

// ---- xattrs
const xattrReader = opt.xattrs ? makeXattrReader() : () => [];

function makeXattrReader() {
  const require = createRequire(import.meta.url);
  const repo = fileURLToPath(new URL('../', import.meta.url));
  for (const p of [process.env.DIST_NATIVE_ADDON, `${repo}native/build/Release/dist_native.node`].filter(Boolean)) {
    try {
      const addon = require(p);
      return (path) => {
        const s = path.toString('utf8');
        if (!Buffer.from(s).equals(path)) return fallbackXattrs(path); // not UTF-8: the addon takes strings
        const names = addon.llistxattr(s).slice().sort();
        return names.map((n) => [n, addon.lgetxattr(s, n) ?? Buffer.alloc(0)]);
      };
    } catch {
      /* try the next way */
    }
  }
  return fallbackXattrs;
}

function fallbackXattrs(path) {
  try {
    const out = execFileSync('getfattr', ['-d', '-m', '-', '-e', 'hex', '--absolute-names', '-h', path.toString('latin1')], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'] });
    const res = [];
    for (const line of out.split('\n')) {
      const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
      if (m) res.push([m[1], Buffer.from(m[2], 'hex')]);
    }
    return res.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  const py = 'import os,sys\np=os.fsencode(sys.argv[1])\nfor n in sorted(os.listxattr(p,follow_symlinks=False)):\n  print(n+"="+os.getxattr(p,n,follow_symlinks=False).hex())';
  const out = execFileSync('python3', ['-c', py, path.toString('latin1')], { encoding: 'latin1' });
  return out.split('\n').filter(Boolean).map((l) => {
    const i = l.lastIndexOf('=');
    return [l.slice(0, i), Buffer.from(l.slice(i + 1), 'hex')];
  });
}

// ---- walk
function escapePath(buf) {
  let s = '';
  for (const b of buf) s += b > 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return s;
}

const rootBuf = Buffer.from(root);
/** [{ rel: Buffer, abs: Buffer, st }] */
const entries = [];
function walk(relBuf, absBuf) {
  const st = lstatSync(absBuf, { bigint: true });
  entries.push({ rel: relBuf, abs: absBuf, st });
  if (!st.isDirectory()) return;
  for (const name of readdirSync(absBuf, { encoding: 'buffer' })) {
    const rel = relBuf.length ? Buffer.concat([relBuf, Buffer.from('/'), name]) : name;
    walk(rel, Buffer.concat([absBuf, Buffer.from('/'), name]));
  }
}
walk(Buffer.alloc(0), rootBuf);
entries.sort((a, b) => Buffer.compare(a.rel, b.rel));

// hardlink groups: the first path (in sort order) of each multiply-linked inode
const groups = new Map();
for (const e of entries) {
  if (e.st.isDirectory() || e.st.nlink < 2n) continue;
  const k = `${e.st.dev}:${e.st.ino}`;
  if (!groups.has(k)) groups.set(k, e.rel);
}

function typeOf(st) {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  return 'unknown';
}

function devOf(rdev) {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return `${major},${minor}`;
}

async function sha256(path) {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c);
  return h.digest('hex');
}

function mtimeField(st) {
  const ns = st.mtimeNs;
  return `mtime=${opt.since !== undefined && ns >= opt.since ? 'new' : ns.toString()}`;
}

const out = [];
for (const e of entries) {
  const st = e.st;
  const type = typeOf(st);
  const f = [e.rel.length ? escapePath(e.rel) : '.', type, `mode=${(Number(st.mode) & 0o7777).toString(8).padStart(4, '0')}`, `uid=${st.uid}`, `gid=${st.gid}`];
  const isRoot = e.rel.length === 0;
  switch (type) {
    case 'file':
      f.push(`size=${st.size}`);
      if (opt.content) f.push(`sha256=${await sha256(e.abs)}`);
      break;
    case 'symlink':
      f.push(`target=${escapePath(readlinkSync(e.abs, { encoding: 'buffer' }))}`);
      break;
    case 'char':
    case 'block':
      f.push(`dev=${devOf(st.rdev)}`);
      break;
  }
  if (!isRoot && (type !== 'dir' || opt.dirMtime)) f.push(mtimeField(st));
  const xa = xattrReader(e.abs);
  if (xa.length) f.push(`xattrs=${xa.map(([n, v]) => `${n}=${v.toString('hex')}`).join(';')}`);
  if (type !== 'dir' && st.nlink > 1n) f.push(`nlink=${st.nlink}`, `group=${escapePath(groups.get(`${st.dev}:${st.ino}`))}`);
  out.push(f.join('\t'));
  if (out.length >= 512) {
    process.stdout.write(out.join('\n') + '\n');
    out.length = 0;
  }
}
if (out.length) process.stdout.write(out.join('\n') + '\n');
