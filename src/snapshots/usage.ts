import { lstat, opendir } from 'node:fs/promises';
import { join } from 'node:path';
import { throwIfAborted } from '../errdefs/index.js';
import type { Usage } from './types.js';

/** st_blocks unit in bytes. */
const BLOCK_UNIT = 512;

/**
 * du over the trees at roots (continuity's fs.DiskUsage): counts each inode
 * once (hard links share one) and sums allocated blocks × 512, not file sizes.
 * Symlinks are not followed. Checks the signal between entries.
 */
export async function diskUsage(roots: string[], signal?: AbortSignal): Promise<Usage> {
  const seen = new Set<string>();
  let size = 0;
  const visit = async (path: string): Promise<void> => {
    throwIfAborted(signal);
    const st = await lstat(path);
    const k = `${st.dev}:${st.ino}`;
    if (!seen.has(k)) {
      seen.add(k);
      size += st.blocks * BLOCK_UNIT;
    }
    if (!st.isDirectory()) return;
    const dir = await opendir(path);
    for await (const ent of dir) await visit(join(path, ent.name));
  };
  for (const root of roots) await visit(root);
  return { size, inodes: seen.size };
}
