import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temp dir; removed by the returned cleanup (kept when DIST_KEEP_TMP=1). */
export async function tempDir(prefix = 'dist-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(process.env.DIST_TEST_TMP ?? tmpdir(), prefix));
  return {
    dir,
    cleanup: async () => {
      if (process.env.DIST_KEEP_TMP === '1') return;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
