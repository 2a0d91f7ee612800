/**
 * Fixtures for the unpack tests: layer tars with every entry type an image
 * can carry (dirs, files with PAX ns mtimes and xattrs, hard links,
 * symlinks, devices, FIFOs, whiteouts, opaque markers), images over given
 * layers, the tree oracle (scripts/tree-oracle.mjs) and the dist CLI.
 */
import { execFile } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import tar from 'tar-stream';
import { compress as zstdCompress } from 'zstd-napi';
import type { Platform } from '../../src/content/types.js';
import { blob, MT, sha256, type Blob, type Compression, type Image, type Layer } from '../util/oci.js';
import { dist as runDist, type RunResult } from '../util/cli.js';

const run = promisify(execFile);

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const ORACLE = `${REPO}scripts/tree-oracle.mjs`;

interface Common {
  name: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch (default 1700000000). */
  mtime?: number;
  /** Extra PAX records, e.g. { mtime: '1700000000.123456789' }. */
  pax?: Record<string, string>;
  /** Written as SCHILY.xattr.<name> PAX records (values must be ASCII-safe bytes). */
  xattrs?: Record<string, string>;
}
export type Entry = Common &
  (
    | { type: 'dir' }
    | { type: 'file'; content?: string | Buffer }
    | { type: 'link' | 'symlink'; target: string }
    | { type: 'char' | 'block'; major: number; minor: number }
    | { type: 'fifo' }
  );

export const MTIME = 1700000000;

/** Shorthands. */
export const dir = (name: string, o: Partial<Common> = {}): Entry => ({ type: 'dir', name, ...o });
export const file = (name: string, content: string | Buffer = `${name}\n`, o: Partial<Common> = {}): Entry => ({ type: 'file', name, content, ...o });
export const hardlink = (name: string, target: string): Entry => ({ type: 'link', name, target });
export const symlink = (name: string, target: string): Entry => ({ type: 'symlink', name, target });
export const whiteout = (path: string): Entry => {
  const i = path.lastIndexOf('/');
  return file(i < 0 ? `.wh.${path}` : `${path.slice(0, i)}/.wh.${path.slice(i + 1)}`, '', { mode: 0 });
};
export const opaque = (dirPath: string): Entry => file(`${dirPath}/.wh..wh..opq`, '', { mode: 0 });

const TYPES = { dir: 'directory', file: 'file', link: 'link', symlink: 'symlink', char: 'character-device', block: 'block-device', fifo: 'fifo' } as const;

/** An uncompressed tar of the entries, in order. */
export async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((res, rej) => {
    pack.on('end', res);
    pack.on('error', rej);
  });
  for (const e of entries) {
    const content = e.type === 'file' ? (Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content ?? '')) : Buffer.alloc(0);
    const pax: Record<string, string> = { ...(e.pax ?? {}) };
    for (const [k, v] of Object.entries(e.xattrs ?? {})) pax[`SCHILY.xattr.${k}`] = v;
    const header: Partial<tar.Header> & { name: string } = {
      name: e.type === 'dir' && !e.name.endsWith('/') ? `${e.name}/` : e.name,
      type: TYPES[e.type],
      mode: e.mode ?? (e.type === 'dir' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: new Date((e.mtime ?? MTIME) * 1000),
      size: content.length,
      ...(e.type === 'link' || e.type === 'symlink' ? { linkname: e.target } : {}),
      ...(e.type === 'char' || e.type === 'block' ? { devmajor: e.major, devminor: e.minor } : {}),
      ...(Object.keys(pax).length ? { pax } : {}),
    };
    await new Promise<void>((res, rej) => pack.entry(header, content, (err) => (err ? rej(err) : res())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function layerOf(entries: Entry[], compression: Compression, docker = false): Promise<Layer> {
  const raw = await tarOf(entries);
  switch (compression) {
    case 'gzip':
      return { ...blob(docker ? MT.DockerLayerGzip : MT.OCILayerGzip, gzipSync(raw)), diffID: sha256(raw) };
    case 'zstd':
      return { ...blob(MT.OCILayerZstd, zstdCompress(raw)), diffID: sha256(raw) };
    default:
      return { ...blob(docker ? MT.DockerLayer : MT.OCILayer, raw), diffID: sha256(raw) };
  }
}

export interface ImageOpts {
  format?: 'oci' | 'docker';
  platform?: Platform;
  /** Override the config's rootfs.diff_ids (to make them wrong). */
  diffIDs?: string[];
}

/** An image (config + manifest) over prebuilt layers. */
export function imageOf(layers: Layer[], o: ImageOpts = {}): Image {
  const docker = o.format === 'docker';
  const platform = o.platform ?? { os: 'linux', architecture: 'amd64' };
  const config: Blob = blob(
    docker ? MT.DockerConfig : MT.OCIConfig,
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: o.diffIDs ?? layers.map((l) => l.diffID) },
      history: layers.map((_, i) => ({ created_by: `layer ${i}` })),
    }),
  );
  const manifest = blob(
    docker ? MT.DockerManifest : MT.OCIManifest,
    JSON.stringify({ schemaVersion: 2, mediaType: docker ? MT.DockerManifest : MT.OCIManifest, config: config.desc, layers: layers.map((l) => l.desc) }),
  );
  return { manifest, config, layers, blobs: [config, ...layers, manifest], platform };
}

/**
 * The "tricky" image: three layers (gzip, zstd, uncompressed) exercising
 * whiteouts, opaque dirs, hard links (in a layer and across layers),
 * symlinked dirs, setuid/setgid/sticky, devices, a FIFO, ns mtimes, owners,
 * xattrs (security.capability, user.*), long and non-ASCII names, and
 * replacements (dir→file, file→dir, file→symlink). Options: a hard link
 * to a file of a lower layer (crossLayerHardlink), no write through a
 * symlinked parent directory (throughSymlink: false), Docker media types.
 */
export async function trickyLayers(opts: { crossLayerHardlink?: boolean; docker?: boolean; throughSymlink?: boolean } = {}): Promise<Layer[]> {
  // security.capability v2: effective, permitted = CAP_NET_BIND_SERVICE (bytes all < 0x80)
  const cap = Buffer.from('0100000200040000000000000000000000000000', 'hex').toString('latin1');
  const longName = `deep/${'d'.repeat(60)}/${'f'.repeat(80)}.txt`;
  const l1: Entry[] = [
    dir('bin'),
    file('bin/tool', '#!/bin/sh\necho tool\n', { mode: 0o755 }),
    hardlink('bin/tool-hl', 'bin/tool'),
    file('bin/su', 'setuid\n', { mode: 0o4755 }),
    file('bin/wall', 'setgid\n', { mode: 0o2755, gid: 5 }),
    file('bin/ping', 'cap\n', { mode: 0o755, xattrs: { 'security.capability': cap } }),
    dir('etc'),
    file('etc/motd', 'motd 1\n'),
    file('etc/owned', 'owned\n', { uid: 1000, gid: 1001, mode: 0o640 }),
    file('etc/nsmtime', 'ns\n', { pax: { mtime: '1700000000.123456789' } }),
    file('etc/user-xattr', 'x\n', { xattrs: { 'user.note': 'hello', 'user.empty': '' } }),
    dir('tmp', { mode: 0o1777 }),
    dir('root', { mode: 0o700 }),
    dir('dev'),
    { type: 'char', name: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'char', name: 'dev/tty0', major: 4, minor: 0, mode: 0o620, gid: 5 },
    { type: 'block', name: 'dev/loop9', major: 7, minor: 9, mode: 0o660, gid: 6 },
    { type: 'fifo', name: 'run-fifo', mode: 0o600 },
    dir('opaque'),
    file('opaque/old1'),
    dir('opaque/sub'),
    file('opaque/sub/old2'),
    file('gone.txt'),
    dir('gonedir'),
    file('gonedir/a'),
    dir('realdir'),
    file('realdir/f1'),
    symlink('linkdir', 'realdir'),
    symlink('abslink', '/etc/motd'),
    symlink('dangling', '/no/such/target'),
    dir('replace-dir'),
    file('replace-dir/x'),
    file('replace-file'),
    file('to-symlink'),
    file(longName, 'long name\n'),
    file('unicodé-ñame.txt', 'utf8\n'),
    dir('usr/share/doc', { mtime: MTIME - 100 }),
    file('usr/share/doc/readme'),
    // implicit parent: no entry for "implicit/"
    file('implicit/child'),
  ];
  const l2: Entry[] = [
    whiteout('gone.txt'),
    whiteout('gonedir'),
    opaque('opaque'),
    file('opaque/new', 'new in opaque\n'),
    // lands in realdir/f2 (containerd 1.6's overlayfs fast path instead turns linkdir into a directory)
    ...(opts.throughSymlink === false ? [] : [file('linkdir/f2', 'through the symlinked dir\n')]),
    file('etc/motd', 'motd 2\n'),
    whiteout('usr/share/doc/readme'),
    ...(opts.crossLayerHardlink ? [hardlink('bin/tool-hl2', 'bin/tool')] : []),
    file('replace-dir', 'now a file\n'),
    dir('replace-file'),
    file('replace-file/inside'),
    symlink('to-symlink', 'etc/motd'),
    file('bin/su', 'setuid 2\n', { mode: 0o4711, uid: 0, gid: 0 }),
  ];
  const l3: Entry[] = [
    dir('etc', { mtime: MTIME + 10 }),
    file('etc/added', 'layer 3\n'),
    hardlink('etc/added-hl', 'etc/added'),
    whiteout('etc/owned'),
    file('etc/owned', 'recreated\n', { uid: 2000, gid: 2000 }), // whiteout then recreate in one layer
    file('newdir/deeper/file', 'implicit parents in layer 3\n'),
  ];
  return [await layerOf(l1, 'gzip', opts.docker), await layerOf(l2, opts.docker ? 'gzip' : 'zstd', opts.docker), await layerOf(l3, 'none', opts.docker)];
}

/** Runs the tree oracle over dir; extra args are oracle options. */
export async function oracle(dirPath: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [ORACLE, ...args, dirPath], { maxBuffer: 64 << 20 });
  return stdout;
}

/** Oracle output as a map path → line. */
export function byPath(out: string): Map<string, string> {
  return new Map(out.trimEnd().split('\n').map((l) => [l.split('\t')[0], l]));
}

/** The directory mtime fields removed (for comparisons where only those may differ). */
export function withoutDirMtimes(out: string): string {
  return out
    .split('\n')
    .map((l) => (l.split('\t')[1] === 'dir' ? l.replace(/\tmtime=[^\t]*/, '') : l))
    .join('\n');
}

/** Runs the dist CLI; resolves with stdout/stderr/exit code (never throws on exit code). */
export function dist(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return runDist(args, { env });
}
