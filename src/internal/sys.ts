/**
 * sys: the Linux syscalls Node has no binding for (mknod, l*xattr, mount,
 * umount2), from the N-API addon in native/ (build: `node-gyp rebuild
 * --directory=native`, output native/build/Release/dist_native.node).
 *
 * Fallback: when the addon is missing or fails to load (nativeLoadError says
 * why), each call runs the system tool instead — mknod(1), setfattr/getfattr
 * (Debian package `attr`), mount(8)/umount(8) — slower, and a call fails with
 * NotImplemented when its tool is absent too. DIST_NATIVE_DISABLE=1 forces
 * the fallback; DIST_NATIVE_ADDON=<path> loads the addon from elsewhere.
 *
 * Errors look like Node's fs errors (err.code 'ENOENT', err.syscall, err.path)
 * so errdefs.codeOf classifies them.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { notImplemented } from '../errdefs/index.js';
import { packageRoot } from './pkgroot.js';
import { onStartup } from './snapshot.js';

/** Paths: strings are UTF-8; Buffers are raw bytes (names that are not UTF-8). */
export type PathArg = string | Buffer;

/** One ordered batch executor of src/archive's applier (see native/src/apply.cc). */
export interface NativeApplySession {
  /** A batch of ops packed by src/archive/ops.ts's Packer, with the file data they point into. */
  run(packed: Buffer, data: Uint8Array[]): Promise<void>;
  close(): void;
}

export interface NativeAddon {
  mknod(path: PathArg, mode: number, dev: number): void;
  makedev(major: number, minor: number): number;
  lsetxattr(path: PathArg, name: string, value: Uint8Array | string, flags?: number): void;
  lgetxattr(path: PathArg, name: string): Buffer | null;
  llistxattr(path: PathArg): string[];
  mount(source: PathArg | null, target: PathArg, fstype: string | null, flags: number, data: string | null): Promise<void>;
  umount2(target: PathArg, flags: number): Promise<void>;
  /** CLOCK_REALTIME in ns (absent from an addon built before it existed). */
  realtimeNs?(): bigint;
  /** Starts writing fd's dirty pages in [offset, offset+length) out, not waiting for the I/O (sync_file_range WRITE, on the pool; fd stays open until it settles; never rejects; absent from older builds). */
  startWriteback?(fd: number, offset: number, length: number): Promise<void>;
  /** root: path of the directory ops are relative to; ops' paths are byte strings (see native/src/apply.cc). */
  ApplySession: new (root: PathArg, threads?: number) => NativeApplySession;
  /** A pipe: [readFd, writeFd], both close-on-exec, grown to 1 MiB when allowed. */
  pipe(): [number, number];
  /** Reads fd (owned) in large chunks on a thread of its own, digesting every byte with alg (see native/src/reader.cc). */
  PipeReader: new (fd: number, alg?: string) => NativePipeReader;
}

export interface NativePipeReader {
  /** Fills buf until full or end of input; resolves the byte count (0 at the end). Reads may be queued ahead; they settle in call order. */
  read(buf: Buffer): Promise<number>;
  /** Hex digest of every byte read so far (no read queued). */
  digest(): string;
  /** Closes the fd (no read queued). */
  close(): void;
}

// mount(2) flags
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_RELATIME = 0x200000;
export const MS_STRICTATIME = 0x1000000;
// umount2(2) flags
export const MNT_FORCE = 0x1;
export const MNT_DETACH = 0x2;
export const MNT_EXPIRE = 0x4;
export const UMOUNT_NOFOLLOW = 0x8;
// setxattr(2) flags
export const XATTR_CREATE = 0x1;
export const XATTR_REPLACE = 0x2;
// file type bits for mknod
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFBLK = 0o060000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

function load(): { addon?: NativeAddon; path?: string; error?: Error } {
  if (process.env.DIST_NATIVE_DISABLE === '1') return { error: new Error('native addon disabled by DIST_NATIVE_DISABLE=1') };
  const require = createRequire(import.meta.url);
  const repo = packageRoot();
  const candidates = process.env.DIST_NATIVE_ADDON
    ? [process.env.DIST_NATIVE_ADDON]
    : [`${repo}/native/build/Release/dist_native.node`, `${repo}/native/build/Debug/dist_native.node`];
  let error: Error | undefined;
  for (const p of candidates) {
    if (!existsSync(p)) continue;
    try {
      return { addon: require(p) as NativeAddon, path: p };
    } catch (err) {
      error = err as Error;
    }
  }
  return { error: error ?? new Error(`native addon not built (looked for ${candidates.join(', ')})`) };
}

/** The loaded addon, or undefined (then the tool fallbacks below are used). */
export let native: NativeAddon | undefined;
/** Why the addon is not available. */
export let nativeLoadError: Error | undefined;
/** The file the addon was loaded from. */
export let nativeAddonPath: string | undefined;

function loadNow(): void {
  ({ addon: native, path: nativeAddonPath, error: nativeLoadError } = load());
}

// A V8 startup snapshot (scripts/bundle.mjs) cannot hold a loaded addon: it is
// loaded when the snapshot is deserialized, before the CLI's main runs.
onStartup(loadNow);

/** Linux dev_t of (major, minor), as glibc's makedev. */
export function mkdev(major: number, minor: number): number {
  const M = BigInt(major >>> 0);
  const m = BigInt(minor >>> 0);
  const dev = ((M & 0xfffn) << 8n) | ((M & ~0xfffn) << 32n) | (m & 0xffn) | ((m & ~0xffn) << 12n);
  return Number(dev);
}

export function major(dev: number): number {
  const d = BigInt(dev);
  return Number(((d & 0xfff00n) >> 8n) | ((d & 0xfffff00000000000n) >> 32n));
}

export function minor(dev: number): number {
  const d = BigInt(dev);
  return Number((d & 0xffn) | ((d & 0xffffff00000n) >> 12n));
}

// ---- tool fallbacks ----------------------------------------------------------

const ERRNO_TEXT: Array<[RegExp, string]> = [
  [/no such file or directory/i, 'ENOENT'],
  [/no such attribute|no data available/i, 'ENODATA'],
  [/file exists/i, 'EEXIST'],
  [/operation not permitted/i, 'EPERM'],
  [/permission denied/i, 'EACCES'],
  [/not a directory/i, 'ENOTDIR'],
  [/operation not supported/i, 'ENOTSUP'],
  [/not mounted|invalid argument/i, 'EINVAL'],
  [/busy/i, 'EBUSY'],
];

function toolError(tool: string, syscall: string, path: string, stderr: string, cause: unknown): Error {
  const text = stderr.trim().split('\n').pop() ?? '';
  const code = ERRNO_TEXT.find(([re]) => re.test(text))?.[1] ?? 'EIO';
  const err = new Error(`${code}: ${text || `${tool} failed`}, ${syscall} '${path}'`, { cause }) as NodeJS.ErrnoException;
  err.code = code;
  err.syscall = syscall;
  err.path = path;
  return err;
}

function run(tool: string, args: string[], syscall: string, path: string, encoding: 'buffer' | 'utf8' = 'utf8'): Promise<Buffer | string> {
  return new Promise((resolve, reject) => {
    execFile(tool, args, { encoding, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !stderr?.length) {
        return reject(notImplemented(`${syscall}: native addon not loaded (${nativeLoadError?.message}) and ${tool} is not installed`, err));
      }
      reject(toolError(tool, syscall, path, String(stderr ?? ''), err));
    });
  });
}

/** mknod(2). mode carries the file type (S_IFCHR, S_IFBLK, S_IFIFO) and permission bits. */
export async function mknod(pathArg: PathArg, mode: number, dev: number): Promise<void> {
  if (native) return native.mknod(pathArg, mode, dev);
  // fallback: mknod(1) (a Buffer path is passed as UTF-8: names that are not UTF-8 need the addon)
  const path = pathArg.toString();
  const perm = (mode & 0o7777).toString(8);
  switch (mode & S_IFMT) {
    case S_IFIFO:
      await run('mknod', ['-m', perm, path, 'p'], 'mknod', path);
      return;
    case S_IFCHR:
    case S_IFBLK:
      await run('mknod', ['-m', perm, path, (mode & S_IFMT) === S_IFCHR ? 'c' : 'b', String(major(dev)), String(minor(dev))], 'mknod', path);
      return;
    default:
      throw notImplemented(`mknod ${path}: file type 0${(mode & S_IFMT).toString(8)} needs the native addon`);
  }
}

/** lsetxattr(2): never follows a final symlink. */
export async function lsetxattr(pathArg: PathArg, name: string, value: Uint8Array | string, flags = 0): Promise<void> {
  if (native) return native.lsetxattr(pathArg, name, value, flags);
  const path = pathArg.toString();
  // fallback: setfattr(1) cannot express XATTR_CREATE/REPLACE: check first (racy)
  if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
    const cur = await lgetxattr(path, name);
    if (flags & XATTR_CREATE && cur !== undefined) throw toolError('setfattr', 'lsetxattr', path, 'File exists', undefined);
    if (flags & XATTR_REPLACE && cur === undefined) throw toolError('setfattr', 'lsetxattr', path, 'No data available', undefined);
  }
  const hex = '0x' + Buffer.from(value).toString('hex');
  await run('setfattr', ['-h', '-n', name, '-v', hex, '--', path], 'lsetxattr', path);
}

/** lgetxattr(2); undefined when the attribute is absent. */
export async function lgetxattr(pathArg: PathArg, name: string): Promise<Buffer | undefined> {
  if (native) return native.lgetxattr(pathArg, name) ?? undefined;
  const path = pathArg.toString();
  try {
    const out = (await run('getfattr', ['-h', '--absolute-names', '-e', 'hex', '-n', name, '--', path], 'lgetxattr', path)) as string;
    const line = out.split('\n').find((l) => l.startsWith(`${name}=`));
    if (line === undefined) return undefined;
    const v = line.slice(name.length + 1);
    return v.startsWith('0x') ? Buffer.from(v.slice(2), 'hex') : Buffer.alloc(0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENODATA') return undefined;
    throw err;
  }
}

/** llistxattr(2): attribute names of path itself (not of a symlink's target). */
export async function llistxattr(pathArg: PathArg): Promise<string[]> {
  if (native) return native.llistxattr(pathArg);
  const path = pathArg.toString();
  const out = (await run('getfattr', ['-h', '--absolute-names', '-m', '-', '--', path], 'llistxattr', path)) as string;
  return out.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split('=')[0]!);
}

const MOUNT_OPTS: Array<[number, string]> = [
  [MS_RDONLY, 'ro'], [MS_NOSUID, 'nosuid'], [MS_NODEV, 'nodev'], [MS_NOEXEC, 'noexec'],
  [MS_SYNCHRONOUS, 'sync'], [MS_REMOUNT, 'remount'], [MS_MANDLOCK, 'mand'], [MS_DIRSYNC, 'dirsync'],
  [MS_NOATIME, 'noatime'], [MS_NODIRATIME, 'nodiratime'], [MS_RELATIME, 'relatime'], [MS_STRICTATIME, 'strictatime'],
];

/** mount(2). Runs off the main thread (native) or as mount(8) (fallback). */
export async function mount(source: string | undefined, target: string, fstype: string | undefined, flags: number, data?: string): Promise<void> {
  if (native) return native.mount(source ?? null, target, fstype ?? null, flags, data ?? null);
  // fallback: mount(8) with the flags spelled as options
  const args: string[] = [];
  let rest = flags;
  const prop = flags & (MS_PRIVATE | MS_SLAVE | MS_SHARED);
  if (prop) {
    const rec = flags & MS_REC ? 'r' : '';
    const kind = prop === MS_PRIVATE ? 'private' : prop === MS_SLAVE ? 'slave' : prop === MS_SHARED ? 'shared' : '';
    if (!kind || flags & ~(prop | MS_REC)) throw notImplemented(`mount ${target}: flags 0x${flags.toString(16)} need the native addon`);
    await run('mount', [`--make-${rec}${kind}`, target], 'mount', target);
    return;
  }
  if (flags & MS_MOVE) {
    if (flags & ~MS_MOVE) throw notImplemented(`mount ${target}: flags 0x${flags.toString(16)} need the native addon`);
    await run('mount', ['--move', source ?? '', target], 'mount', target);
    return;
  }
  const opts: string[] = [];
  if (flags & MS_BIND) {
    opts.push(flags & MS_REC ? 'rbind' : 'bind');
    rest &= ~(MS_BIND | MS_REC);
  }
  for (const [bit, name] of MOUNT_OPTS) {
    if (flags & bit) {
      opts.push(name);
      rest &= ~bit;
    }
  }
  if (rest) throw notImplemented(`mount ${target}: flags 0x${rest.toString(16)} need the native addon`);
  if (data) opts.push(data);
  if (fstype) args.push('-t', fstype);
  if (opts.length) args.push('-o', opts.join(','));
  args.push('--', source ?? 'none', target);
  await run('mount', args, 'mount', target);
}

/** umount2(2): MNT_DETACH → `umount -l`, MNT_FORCE → `umount -f` in the fallback. */
export async function umount2(target: string, flags = 0): Promise<void> {
  if (native) return native.umount2(target, flags);
  const args: string[] = [];
  if (flags & MNT_DETACH) args.push('-l');
  if (flags & MNT_FORCE) args.push('-f');
  if (flags & ~(MNT_DETACH | MNT_FORCE | UMOUNT_NOFOLLOW)) throw notImplemented(`umount2 ${target}: flags 0x${flags.toString(16)} need the native addon`);
  args.push('--', target);
  await run('umount', args, 'umount2', target);
}
