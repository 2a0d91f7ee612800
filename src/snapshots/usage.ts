import { lstat, opendir } from 'node:fs/promises';
import { join } from 'node:path';
import { throwIfAborted } from '../errdefs/index.js';
import type { Usage } from './types.js';

/** st_blocks unit in bytes. */
const BLOCK_UNIT = 512;

/**
 * du over the trees at roots (continuity's fs.DiskUsage): counts each inode
 * once (hard links share one) and sums allocated blocks × 512, not file sizes.
 * Symlinks are not followed. Entries that vanish during the walk (an
 * active snapshot in use) are skipped; a missing root is an error.
 * Checks the signal between entries.
 */
export async function diskUsage(roots: string[], signal?: AbortSignal): Promise<Usage> {
  const seen = new Set<string>();
  let size = 0;
  const visit = async (path: string, isRoot: boolean): Promise<void> => {
    throwIfAborted(signal);
    let st;
    try {
      st = await lstat(path);
    } catch (err) {
      if (!isRoot && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const k = `${st.dev}:${st.ino}`;
    if (!seen.has(k)) {
      seen.add(k);
      size += st.blocks * BLOCK_UNIT;
    }
    if (!st.isDirectory()) return;
    let dir;
    try {
      dir = await opendir(path);
    } catch (err) {
      if (!isRoot && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for await (const ent of dir) await visit(join(path, ent.name), false);
  };
  for (const root of roots) await visit(root, true);
  return { size, inodes: seen.size };
}
