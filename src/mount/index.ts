/**
 * Performing mounts (containerd's mount package, Linux only).
 *
 * With the native addon (src/internal/sys.ts) mounts are mount(2) calls as
 * containerd makes them: options split into flags and data, propagation
 * flags applied in a second call, and "bind"+"ro" followed by a read-only
 * remount. Without it (or for "loop" and over-long overlay options) the
 * system mount(8)/umount(8) binaries run instead; they take containerd's
 * option vocabulary as is.
 *
 * Overlay option strings longer than a page cannot be passed to mount(2);
 * as containerd does, long `lowerdir=` lists are rewritten relative to their
 * longest common parent directory, and mount(8) runs with that directory as
 * cwd (containerd forks and chdirs; a Node process cannot chdir per call).
 *
 * Must run as root. Every function throws errdefs errors (Unknown for a failed
 * mount/umount, with the tool's message).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, realpath, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { throwIfAborted, unknown } from '../errdefs/index.js';
import { native, MNT_DETACH } from '../internal/sys.js';
import type { Mount } from './types.js';

export type { Mount } from './types.js';

const PAGE_SIZE = 4096;
/** Same bound as containerd: compact lowerdir when the options reach a page minus this. */
const OPTIONS_SLACK = 512;
const UNMOUNT_BUSY_RETRIES = 50;
const UNMOUNT_BUSY_DELAY_MS = 50;
/** Upper bound on stacked mounts popped by unmountAll (guards against loops). */
const MAX_STACKED_MOUNTS = 1024;

export interface MountOptions {
  signal?: AbortSignal;
}

interface ExecResult { code: number; stdout: string; stderr: string }

function run(cmd: string, args: string[], opts: { cwd?: string; signal?: AbortSignal } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, signal: opts.signal, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ABORT_ERR') return reject(err);
      if (err && typeof (err as any).code !== 'number') return reject(unknown(`${cmd}: ${err.message}`, err));
      resolve({ code: err ? ((err as any).code as number) : 0, stdout, stderr });
    });
  });
}

const firstLine = (s: string) => s.trim().split('\n')[0] ?? '';

/**
 * Rewrites a long overlay `lowerdir=` relative to the dirs' common parent.
 * Returns the directory to run mount in (undefined: no rewrite) and the options.
 */
export function compactLowerdirOption(options: string[]): { chdir?: string; options: string[] } {
  const idx = options.findIndex((o) => o.startsWith('lowerdir='));
  if (idx < 0) return { options };
  const dirs = options[idx].slice('lowerdir='.length).split(':');
  if (dirs.length < 2) return { options };
  let prefix = dirs[0];
  for (const d of dirs.slice(1)) {
    let i = 0;
    while (i < prefix.length && i < d.length && prefix[i] === d[i]) i++;
    prefix = prefix.slice(0, i);
  }
  if (!prefix) return { options };
  // The common prefix may end mid-name: use its directory part.
  const common = prefix.endsWith('/') ? prefix.slice(0, -1) : dirname(prefix);
  if (common === '/' || common === '.' || common === '') return { options };
  const base = common + '/';
  if (!dirs.every((d) => d.startsWith(base))) return { options };
  const out = options.filter((_, i) => i !== idx);
  out.push('lowerdir=' + dirs.map((d) => d.slice(base.length)).join(':'));
  return { chdir: common, options: out };
}

// mount(2) flags (linux/mount.h)
const MS_RDONLY = 0x1;
const MS_REMOUNT = 0x20;
const MS_BIND = 0x1000;
const MS_REC = 0x4000;
const MS_SILENT = 0x8000;
const MS_UNBINDABLE = 0x20000;
const MS_PRIVATE = 0x40000;
const MS_SLAVE = 0x80000;
const MS_SHARED = 0x100000;
const PROPAGATION = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;

/** Option → [clears the flag?, flag], containerd's table (mount_linux.go). */
const FLAG_OPTIONS: Record<string, [boolean, number]> = {
  async: [true, 0x10],
  atime: [true, 0x400],
  bind: [false, MS_BIND],
  defaults: [false, 0],
  dev: [true, 0x4],
  diratime: [true, 0x800],
  dirsync: [false, 0x80],
  exec: [true, 0x8],
  mand: [false, 0x40],
  noatime: [false, 0x400],
  nodev: [false, 0x4],
  nodiratime: [false, 0x800],
  noexec: [false, 0x8],
  nomand: [true, 0x40],
  norelatime: [true, 0x200000],
  nostrictatime: [true, 0x1000000],
  nosuid: [false, 0x2],
  rbind: [false, MS_BIND | MS_REC],
  relatime: [false, 0x200000],
  remount: [false, MS_REMOUNT],
  ro: [false, MS_RDONLY],
  rw: [true, MS_RDONLY],
  strictatime: [false, 0x1000000],
  suid: [true, 0x2],
  sync: [false, 0x10],
  private: [false, MS_PRIVATE],
  rprivate: [false, MS_PRIVATE | MS_REC],
  shared: [false, MS_SHARED],
  rshared: [false, MS_SHARED | MS_REC],
  slave: [false, MS_SLAVE],
  rslave: [false, MS_SLAVE | MS_REC],
  unbindable: [false, MS_UNBINDABLE],
  runbindable: [false, MS_UNBINDABLE | MS_REC],
};

/** Splits mount options into mount(2) flags and the filesystem data string. */
export function parseMountOptions(options: string[]): { flags: number; data: string; loop: boolean } {
  let flags = 0;
  let loop = false;
  const data: string[] = [];
  for (const o of options) {
    const f = Object.hasOwn(FLAG_OPTIONS, o) ? FLAG_OPTIONS[o] : undefined;
    if (f && f[1] !== 0) flags = f[0] ? flags & ~f[1] : flags | f[1];
    else if (f) continue;
    else if (o === 'loop') loop = true;
    else data.push(o);
  }
  return { flags, data: data.join(','), loop };
}

/** mount(2) through the addon, as containerd's Mount.Mount does. */
async function mountSyscall(m: Mount, target: string, flags: number, data: string): Promise<void> {
  const sys = native!;
  const oflags = flags & ~PROPAGATION;
  if ((flags & MS_REMOUNT) === 0 || data !== '') await sys.mount(m.source, target, m.type || null, oflags, data || null);
  if (flags & PROPAGATION) await sys.mount('', target, '', flags & (PROPAGATION | MS_REC | MS_SILENT), null);
  if ((oflags & (MS_BIND | MS_RDONLY)) === (MS_BIND | MS_RDONLY)) await sys.mount('', target, '', oflags | MS_REMOUNT, null);
}

/** Performs one mount on target. */
export async function mount(m: Mount, target: string, opts: MountOptions = {}): Promise<void> {
  throwIfAborted(opts.signal);
  if (native) {
    const { flags, data, loop } = parseMountOptions(m.options);
    if (!loop && data.length < PAGE_SIZE - OPTIONS_SLACK) {
      try {
        return await mountSyscall(m, target, flags, data);
      } catch (err) {
        throw unknown(`failed to mount ${m.source} (${m.type}) on ${target}: ${(err as Error).message}`, err);
      }
    }
  }
  let options = m.options;
  let chdir: string | undefined;
  if (m.type === 'overlay' && options.reduce((n, o) => n + o.length, 0) >= PAGE_SIZE - OPTIONS_SLACK) {
    ({ chdir, options } = compactLowerdirOption(options));
  }
  const isBind = m.type === 'bind' || options.includes('bind') || options.includes('rbind');
  const args: string[] = [];
  // mount(8) does not know a filesystem type "bind": the flags say it.
  if (!isBind && m.type) args.push('-t', m.type);
  if (options.length) args.push('-o', options.join(','));
  args.push(m.source, target);
  const r = await run('mount', args, { cwd: chdir, signal: opts.signal });
  if (r.code !== 0) {
    throw unknown(`failed to mount ${m.source} (${m.type}) on ${target}: ${firstLine(r.stderr) || `exit ${r.code}`}`);
  }
}

/** Performs the mounts in order on target (they stack). */
export async function mountAll(mounts: Mount[], target: string, opts: MountOptions = {}): Promise<void> {
  for (const m of mounts) await mount(m, target, opts);
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points of this process (field 5 of /proc/self/mountinfo), unescaped. */
export async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length > 4) out.push(unescapeMountinfo(f[4]));
  }
  return out;
}

/** Whether path (resolved) is a mount point. False when it does not exist. */
export async function isMountPoint(path: string): Promise<boolean> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    return false;
  }
  return (await mountPoints()).includes(real);
}

export interface UnmountOptions {
  /** Lazy unmount (MNT_DETACH). */
  detach?: boolean;
  signal?: AbortSignal;
}

/** Unmounts the top mount on target; a target that is not mounted is fine. Retries while busy. */
export async function unmount(target: string, opts: UnmountOptions = {}): Promise<void> {
  if (native) {
    for (let i = 0; ; i++) {
      throwIfAborted(opts.signal);
      try {
        return await native.umount2(target, opts.detach ? MNT_DETACH : 0);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EINVAL' || code === 'ENOENT') return; // not mounted / gone
        if (code === 'EBUSY' && i < UNMOUNT_BUSY_RETRIES) {
          await new Promise((res) => setTimeout(res, UNMOUNT_BUSY_DELAY_MS));
          continue;
        }
        throw unknown(`failed to unmount ${target}: ${(err as Error).message}`, err);
      }
    }
  }
  const args = opts.detach ? ['-l', target] : [target];
  for (let i = 0; ; i++) {
    throwIfAborted(opts.signal);
    const r = await run('umount', args);
    if (r.code === 0) return;
    const msg = firstLine(r.stderr);
    if (/not mounted|no mount point specified|not found/.test(msg)) return;
    if (/busy/i.test(msg) && i < UNMOUNT_BUSY_RETRIES) {
      await new Promise((res) => setTimeout(res, UNMOUNT_BUSY_DELAY_MS));
      continue;
    }
    throw unknown(`failed to unmount ${target}: ${msg || `exit ${r.code}`}`);
  }
}

/** Unmounts every mount stacked on target until it is no mount point. Missing target: no-op. */
export async function unmountAll(target: string, opts: UnmountOptions = {}): Promise<void> {
  if (!target) return;
  for (let i = 0; i < MAX_STACKED_MOUNTS; i++) {
    if (!(await isMountPoint(target))) return;
    await unmount(target, opts);
  }
  throw unknown(`failed to unmount ${target}: still mounted after ${MAX_STACKED_MOUNTS} unmounts`);
}

/**
 * The mounts made read-only: overlay loses upperdir/workdir (the upper joins
 * the lowerdirs on top), everything else gets "ro" instead of "rw".
 */
export function readonlyMounts(mounts: Mount[]): Mount[] {
  return mounts.map((m) => {
    if (m.type === 'overlay') {
      let upper = '';
      const out: string[] = [];
      for (const o of m.options) {
        if (o.startsWith('upperdir=')) upper = o.slice('upperdir='.length);
        else if (!o.startsWith('workdir=')) out.push(o);
      }
      if (upper) {
        for (let i = 0; i < out.length; i++) {
          if (out[i].startsWith('lowerdir=')) out[i] = 'lowerdir=' + upper + ':' + out[i].slice('lowerdir='.length);
        }
      }
      return { ...m, options: out };
    }
    return { ...m, options: [...m.options.filter((o) => o !== 'rw' && o !== 'ro'), 'ro'] };
  });
}

export interface TempMountOptions {
  /** Where the temporary mount point is created (default: $XDG_RUNTIME_DIR or the OS temp dir). */
  tempDir?: string;
  signal?: AbortSignal;
}

/**
 * Mounts on a fresh temporary directory, runs fn(root), then unmounts and
 * removes the directory, whatever fn did. Returns fn's result.
 */
export async function withTempMount<T>(mounts: Mount[], fn: (root: string) => Promise<T> | T, opts: TempMountOptions = {}): Promise<T> {
  const base = opts.tempDir ?? process.env.XDG_RUNTIME_DIR ?? tmpdir();
  const root = await mkdtemp(join(base, 'dist-mount-'));
  let result: T;
  try {
    await mountAll(mounts, root, { signal: opts.signal });
    result = await fn(root);
  } catch (err) {
    await unmountAll(root).catch(() => undefined);
    await rmdir(root).catch(() => undefined);
    throw err;
  }
  await unmountAll(root);
  await rmdir(root).catch(() => undefined);
  return result;
}

/** withTempMount on readonlyMounts(mounts). */
export function withReadonlyTempMount<T>(mounts: Mount[], fn: (root: string) => Promise<T> | T, opts: TempMountOptions = {}): Promise<T> {
  return withTempMount(readonlyMounts(mounts), fn, opts);
}

/**
 * Probes whether overlayfs can be mounted with its upper/work dirs on the
 * filesystem of dir (e.g. the snapshotter root): mounts a two-lower overlay
 * in a temp dir under dir and unmounts it.
 */
export async function supportsOverlay(dir: string): Promise<boolean> {
  await mkdir(dir, { recursive: true });
  const td = await mkdtemp(join(dir, 'overlay-check-'));
  try {
    for (const d of ['lower1', 'lower2', 'upper', 'work', 'merged']) await mkdir(join(td, d));
    const merged = join(td, 'merged');
    try {
      await mount({
        type: 'overlay',
        source: 'overlay',
        options: [`lowerdir=${join(td, 'lower2')}:${join(td, 'lower1')}`, `upperdir=${join(td, 'upper')}`, `workdir=${join(td, 'work')}`],
      }, merged);
    } catch {
      return false;
    }
    await unmountAll(merged);
    return true;
  } finally {
    await rm(td, { recursive: true, force: true }).catch(() => undefined);
  }
}
