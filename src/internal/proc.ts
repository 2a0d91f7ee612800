/**
 * proc: whether the process behind a pid (from a lock file) still runs, by
 * /proc/<pid>/stat where there is one, else by kill(pid, 0).
 */
import { readFileSync } from 'node:fs';

/** State (field 3) and start time (field 22, clock ticks since boot) of /proc/<pid>/stat; undefined when there is no such process (or no /proc). */
export function procStat(pid: number): { state: string; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: fields after its closing paren.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: f[0] ?? '', start: f[19] ?? '' };
  } catch {
    return undefined;
  }
}

/**
 * Whether pid runs: it exists, has not exited, and (when `started` is given)
 * started at that time, so a reused pid is told apart. A killed process stays
 * a zombie until its parent reaps it; it holds no file and writes nothing
 * more, so it counts as gone.
 */
export function processAlive(pid: number, started?: string): boolean {
  const st = procStat(pid);
  if (st) return st.state !== 'Z' && st.state !== 'X' && (!started || st.start === started);
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
