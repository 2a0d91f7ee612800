/**
 * A small continuity/fstest: appliers that build file trees, and a tree
 * comparison (type, permission bits, owner, content, link targets, device
 * numbers and hard-link grouping; times and xattrs are ignored, the root
 * directory itself too).
 */
import { createHash } from 'node:crypto';
import { chmod, lchown, link as fsLink, lstat, mkdir, readFile, readdir, readlink, rename as fsRename, rm, symlink as fsSymlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type Applier = (root: string) => Promise<void>;

const at = (root: string, p: string) => join(root, p);

export const apply = (...as: Applier[]): Applier => async (root) => {
  for (const a of as) await a(root);
};

export const createFile = (p: string, content: string | Uint8Array, mode: number): Applier => async (root) => {
  await writeFile(at(root, p), content);
  await chmod(at(root, p), mode);
};

export const createDir = (p: string, mode: number): Applier => async (root) => {
  await mkdir(at(root, p));
  await chmod(at(root, p), mode);
};

export const removeAll = (p: string): Applier => async (root) => {
  await rm(at(root, p), { recursive: true, force: true });
};

export const chown = (p: string, uid: number, gid: number): Applier => async (root) => {
  await lchown(at(root, p), uid, gid);
};

/** Hard link: newPath gets oldPath's inode. */
export const link = (oldPath: string, newPath: string): Applier => async (root) => {
  await fsLink(at(root, oldPath), at(root, newPath));
};

export const symlink = (target: string, p: string): Applier => async (root) => {
  await fsSymlink(target, at(root, p));
};

export const rename = (from: string, to: string): Applier => async (root) => {
  await fsRename(at(root, from), at(root, to));
};

interface Entry {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  content?: string;
  target?: string;
  rdev?: number;
  /** Other paths sharing the inode (regular files). */
  links?: string;
}

function typeOf(st: import('node:fs').Stats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isSocket()) return 'socket';
  return 'unknown';
}

/** A manifest of the tree at root: relative path → entry. */
export async function manifest(root: string): Promise<Manifest> {
  const out = new Map<string, Entry>();
  const inodes = new Map<string, string[]>();
  const visit = async (r: string): Promise<void> => {
    const p = join(root, r);
    const st = await lstat(p);
    const e: Entry = { type: typeOf(st), mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid };
    if (st.isFile()) {
      e.content = createHash('sha256').update(await readFile(p)).digest('hex');
      const k = `${st.dev}:${st.ino}`;
      inodes.set(k, [...(inodes.get(k) ?? []), r]);
    } else if (st.isSymbolicLink()) {
      e.target = await readlink(p);
      e.mode = ''; // symlink permissions are meaningless
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      e.rdev = st.rdev;
    }
    out.set('/' + r, e);
    if (st.isDirectory()) await walk(r);
  };
  const walk = async (rel: string): Promise<void> => {
    const names = await readdir(join(root, rel));
    await Promise.all(names.map((name) => visit(rel ? `${rel}/${name}` : name)));
  };
  await walk('');
  for (const paths of inodes.values()) {
    if (paths.length < 2) continue;
    paths.sort();
    for (const p of paths) out.get('/' + p)!.links = paths.filter((q) => q !== p).map((q) => '/' + q).join(',');
  }
  return out;
}

export type Manifest = Map<string, Entry>;

/** Throws describing the differences between two manifests (of trees a and b). */
export function compareManifests(ma: Manifest, mb: Manifest, a = 'a', b = 'b'): void {
  const diffs: string[] = [];
  for (const [p, ea] of ma) {
    const eb = mb.get(p);
    if (!eb) diffs.push(`${p}: only in ${a}`);
    else if (JSON.stringify(ea) !== JSON.stringify(eb)) diffs.push(`${p}: ${JSON.stringify(ea)} != ${JSON.stringify(eb)}`);
  }
  for (const p of mb.keys()) if (!ma.has(p)) diffs.push(`${p}: only in ${b}`);
  if (diffs.length) throw new Error(`directories differ:\n  ${diffs.slice(0, 20).join('\n  ')}`);
}

/** Throws describing the differences when the trees at a and b differ. */
export async function checkDirectoryEqual(a: string, b: string): Promise<void> {
  const [ma, mb] = await Promise.all([manifest(a), manifest(b)]);
  compareManifests(ma, mb, a, b);
}

/** Applies applier to a fresh copy-free temp tree and compares dir with it. */
export async function checkDirectoryEqualWithApplier(dir: string, applier: Applier, scratch: string): Promise<void> {
  await mkdir(scratch, { recursive: true });
  try {
    await applier(scratch);
    await checkDirectoryEqual(dir, scratch);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
