/**
 * The `overlayfs` snapshotter: each snapshot owns `<root>/snapshots/<id>/fs`
 * (its changes: overlay's upperdir, later a lowerdir of its children) and,
 * when active, `work/` (overlay's workdir). Mounts, as containerd 1.6:
 *
 * - no parent: a bind of `fs` (rw; ro for a view), since overlay needs a lower;
 * - view of one parent: a read-only bind of the parent's `fs`;
 * - active with parents: `overlay` with `lowerdir=` the parents' `fs`, nearest
 *   first, `upperdir=` and `workdir=` its own;
 * - view of two or more parents: `overlay` with only `lowerdir=` (read-only).
 *
 * `index=off` is added when the kernel knows the option (with many layers
 * sharing lowers, the inode index would tie a lower to one overlay).
 * Usage of an active snapshot is measured on its `fs`; a committed one is
 * measured once, on first use, and stored.
 */
import { existsSync } from 'node:fs';
import { chmod, lchown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join, resolve } from 'node:path';
import type { Ctx } from '../../internal/context.js';
import { failedPrecondition, withHint } from '../../errdefs/index.js';
import type { Mount } from '../../mount/types.js';
import { supportsOverlay } from '../../mount/index.js';
import { LocalSnapshotter, type LocalOptions } from '../local.js';
import type { SnapshotRecord, Transaction } from '../storage/metastore.js';
import type { Kind, SnapshotOpts } from '../types.js';

export interface OverlayOptions extends LocalOptions {
  /** Skip the mount probe at open (the caller knows overlay works on root). */
  skipCheck?: boolean;
  /**
   * Where a successful probe is also remembered for every root on the same
   * file system (default /run/dist for root, none otherwise; cleared at boot).
   */
  probeCacheDir?: string;
}

/** The default probeCacheDir: /run/dist when running as root. */
function defaultProbeCacheDir(): string | undefined {
  return process.getuid?.() === 0 && existsSync('/run') ? '/run/dist' : undefined;
}

/** Whether the running kernel's overlay module takes `index=`. */
function kernelHasIndexOption(): boolean {
  return existsSync('/sys/module/overlay/parameters/index');
}

/**
 * supportsOverlay(root), remembered in root for this kernel and file system:
 * the CLI opens the snapshotter on every call, and the probe (a mount and an
 * unmount in a temp dir) would cost each call ~8 ms. Only a success is
 * remembered; with a cache dir, also for other roots on the same file system
 * (a new root skips the probe, as containerd probes once per daemon start).
 */
async function overlayWorks(root: string, cacheDir: string | undefined): Promise<boolean> {
  const stamp = join(root, 'overlay-supported');
  const dev = (await stat(root)).dev;
  const key = `${release()} dev ${dev}\n`;
  const read = (f: string) => readFile(f, 'utf8').catch(() => '');
  // best effort: the probe runs again next time
  const remember = (f: string) => writeFile(f, key).catch(() => undefined);
  if ((await read(stamp)) === key) return true;
  const shared = cacheDir ? join(cacheDir, `overlay-supported-${dev}`) : undefined;
  if (shared && (await read(shared)) === key) {
    await remember(stamp);
    return true;
  }
  if (!(await supportsOverlay(root))) return false;
  await remember(stamp);
  if (shared) await mkdir(cacheDir!, { recursive: true, mode: 0o700 }).then(() => remember(shared), () => undefined);
  return true;
}

export class OverlaySnapshotter extends LocalSnapshotter {
  private readonly indexOff = kernelHasIndexOption();

  /**
   * Opens (creating) an overlay snapshotter rooted at root. Unless
   * opts.skipCheck, first checks that overlay mounts work there
   * (FailedPrecondition otherwise).
   */
  static async open(root: string, opts: OverlayOptions = {}): Promise<OverlaySnapshotter> {
    root = resolve(root); // mounts carry absolute paths
    // the probe (file system calls on the thread pool, a mount) runs while the database opens
    await mkdir(root, { recursive: true, mode: 0o700 });
    const probing = opts.skipCheck ? Promise.resolve(true) : overlayWorks(root, 'probeCacheDir' in opts ? opts.probeCacheDir : defaultProbeCacheDir());
    probing.catch(() => undefined); // a failing open wins; the rejection is not lost
    const ms = await LocalSnapshotter.openStore(root);
    let works = false;
    try {
      works = await probing;
    } finally {
      if (!works) await ms.close();
    }
    if (!works) {
      throw withHint(
        failedPrecondition(`overlayfs is not supported on ${root}`),
        `${process.getuid?.() === 0 ? 'an overlay mount failed there' : 'overlay mounts need root'}: use --snapshotter native, or CONTAINERD_SNAPSHOTTER=native`,
      );
    }
    return new OverlaySnapshotter(root, ms, opts);
  }

  /** `snapshots/<id>/fs`. */
  upperPath(id: string): string {
    return join(this.snapshotDir(id), 'fs');
  }

  /** `snapshots/<id>/work`. */
  workPath(id: string): string {
    return join(this.snapshotDir(id), 'work');
  }

  protected usageDir(id: string): string {
    return this.upperPath(id);
  }

  protected async createInTx(_ctx: Ctx, tx: Transaction, kind: Kind, key: string, parent: string | undefined, opts: SnapshotOpts | undefined) {
    let record: SnapshotRecord | undefined;
    const dir = await this.buildDir(() => record!.id, async (td) => {
      await mkdir(join(td, 'fs'));
      await chmod(join(td, 'fs'), 0o755);
      if (kind === 'active') {
        await mkdir(join(td, 'work'));
        await chmod(join(td, 'work'), 0o711);
      }
      record = tx.createSnapshot(kind, key, parent, opts);
      if (record.parentIds.length > 0) {
        // The root of the tree keeps the owner of the parent's root.
        const st = await stat(this.upperPath(record.parentIds[0]));
        await lchown(join(td, 'fs'), st.uid, st.gid);
      }
    });
    return { record: record!, dir };
  }

  protected mountsOf(s: SnapshotRecord): Mount[] {
    if (s.parentIds.length === 0) {
      return [{ type: 'bind', source: this.upperPath(s.id), options: [s.kind === 'view' ? 'ro' : 'rw', 'rbind'] }];
    }
    const options: string[] = [];
    if (this.indexOff) options.push('index=off');
    if (s.kind === 'active') {
      options.push(`workdir=${this.workPath(s.id)}`, `upperdir=${this.upperPath(s.id)}`);
    } else if (s.parentIds.length === 1) {
      return [{ type: 'bind', source: this.upperPath(s.parentIds[0]), options: ['ro', 'rbind'] }];
    }
    options.push(`lowerdir=${s.parentIds.map((id) => this.upperPath(id)).join(':')}`);
    return [{ type: 'overlay', source: 'overlay', options }];
  }
}
