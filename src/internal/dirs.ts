/** dirs: target directories the user names (apply, rootfs, mount). */
import { mkdir } from 'node:fs/promises';
import { invalidArgument } from '../errdefs/index.js';

/**
 * Creates dir and its parents as needed (mkdir -p). A path that exists but
 * is not a directory, or lies below a file, is InvalidArgument.
 */
export async function ensureDir(dir: string, mode = 0o777): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw invalidArgument(`${dir} is not a directory`, err);
    throw err;
  }
}
