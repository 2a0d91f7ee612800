/**
 * lock: one daemon per root. The lock file (<root>/distd.lock) holds the
 * owner's pid; it is created with O_EXCL, and a file whose pid is no longer
 * alive (a crashed daemon, also while still a zombie) is taken over. A live
 * owner makes acquire() fail with a one-line message naming it.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { failedPrecondition } from '../../errdefs/index.js';
import { processAlive } from '../../internal/proc.js';

/** Lock files held by this process (a pid match alone may be a reused pid). */
const held = new Set<string>();

export interface Lock {
  readonly path: string;
  release(): void;
}

export function acquireLock(path: string, what: string): Lock {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      held.add(path);
      let released = false;
      return {
        path,
        release() {
          if (released) return;
          released = true;
          held.delete(path);
          try {
            if (Number(readFileSync(path, 'utf8').trim()) === process.pid) rmSync(path, { force: true });
          } catch {
            /* already gone */
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let pid = 0;
    try {
      pid = Number(readFileSync(path, 'utf8').trim());
    } catch {
      continue; // removed meanwhile: retry
    }
    const ours = pid === process.pid && held.has(path);
    if (ours || (pid > 0 && pid !== process.pid && processAlive(pid))) {
      throw failedPrecondition(`${what} is in use by another distd (pid ${pid}, lock ${path})`);
    }
    if (pid === 0) {
      // Being written right now by a starting daemon, or garbage: give it a moment.
      const until = Date.now() + 50;
      while (Date.now() < until) { /* spin briefly */ }
      try {
        pid = Number(readFileSync(path, 'utf8').trim());
      } catch {
        continue;
      }
      if (pid > 0 && processAlive(pid)) throw failedPrecondition(`${what} is in use by another distd (pid ${pid}, lock ${path})`);
    }
    rmSync(path, { force: true }); // stale: its daemon is gone
  }
  throw failedPrecondition(`${what}: could not take the lock ${path}`);
}
