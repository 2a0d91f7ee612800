/**
 * gc/scheduler: runs a collection after deletions, like containerd's
 * gc scheduler: a deletion marks the store dirty; once `deletionThreshold`
 * deletions have accumulated (0: any), a collection runs after `delayMs`.
 * Collections never overlap; deletions during one schedule the next.
 */
import type { MetadataDB } from '../metadata/db.js';
import type { GarbageCollector, GCResult } from './index.js';

export interface SchedulerOptions {
  /** Deletions needed before a collection is scheduled (default 0: the first one). */
  deletionThreshold?: number;
  /** Wait after the triggering deletion (default 100 ms, batching bursts); Infinity: only runNow() collects. */
  delayMs?: number;
  onResult?: (r: GCResult) => void;
  onError?: (err: unknown) => void;
}

export class GCScheduler {
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly off: () => void;

  constructor(m: MetadataDB, private readonly gc: GarbageCollector, private readonly opts: SchedulerOptions = {}) {
    this.off = m.onDirty(() => this.dirty());
  }

  /** Whether deletions happened since the last collection. */
  get isDirty(): boolean {
    return this.pending > 0;
  }

  private dirty(): void {
    this.pending++;
    const delay = this.opts.delayMs ?? 100;
    if (delay !== Infinity && this.pending > (this.opts.deletionThreshold ?? 0) && !this.timer) {
      this.timer = setTimeout(() => void this.runNow(), delay);
      this.timer.unref();
    }
  }

  /** Runs a collection now if anything is pending (awaits one in progress). */
  async runNow(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.running) await this.running;
    if (this.pending === 0) return;
    this.pending = 0;
    this.running = this.gc
      .collect()
      .then((r) => this.opts.onResult?.(r), (err) => this.opts.onError?.(err))
      .finally(() => (this.running = undefined));
    await this.running;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.off();
  }
}
