/**
 * What the directory-based snapshotters (native, overlay) share: a root with
 * `metadata.db` (MetaStore) and `snapshots/<id>/` per snapshot, and every
 * method except creating a snapshot's directory and building its mounts.
 *
 * Directories are created as `snapshots/new-*` and renamed to `snapshots/<id>`
 * inside the metadata transaction; removal renames to `snapshots/rm-<id>`
 * inside it and deletes after it committed. Anything in `snapshots/` that is
 * not a live id (crash leftovers, asynchronously removed snapshots) is
 * deleted by `cleanup`.
 */
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Ctx } from '../internal/context.js';
import { codeOf, DistError, failedPrecondition, alreadyExists, throwIfAborted } from '../errdefs/index.js';
import type { Mount } from '../mount/types.js';
import { MetaStore, type SnapshotRecord, type Transaction } from './storage/metastore.js';
import { snapshotFilter } from './storage/fields.js';
import type { Info, Kind, SnapshotOpts, Snapshotter, UpdateInfo, Usage, WalkFunc } from './types.js';
import { diskUsage } from './usage.js';

/** Re-throws err with `prefix: ` in front of its message, keeping its errdefs class. */
export function prefixError(prefix: string, err: unknown): DistError {
  const msg = err instanceof Error ? err.message : String(err);
  return new DistError(codeOf(err), `${prefix}: ${msg}`, { cause: err });
}

export interface LocalOptions {
  /**
   * Remove only drops the metadata; directories go on the next `cleanup`
   * (containerd's AsynchronousRemove, used by its overlayfs plugin).
   */
  asyncRemove?: boolean;
}

export abstract class LocalSnapshotter implements Snapshotter {
  protected readonly snapshotsDir: string;
  protected readonly asyncRemove: boolean;

  protected constructor(readonly root: string, protected readonly ms: MetaStore, opts: LocalOptions = {}) {
    this.snapshotsDir = join(root, 'snapshots');
    this.asyncRemove = opts.asyncRemove ?? false;
  }

  /** Creates root (0700), `root/snapshots` (0700) and opens `root/metadata.db`. */
  protected static async openStore(root: string): Promise<MetaStore> {
    await mkdir(root, { recursive: true, mode: 0o700 });
    await mkdir(join(root, 'snapshots'), { recursive: true, mode: 0o700 });
    return MetaStore.open(join(root, 'metadata.db'));
  }

  /**
   * Builds a snapshot directory in a temp dir (`snapshots/new-*`) with fill,
   * then renames it to `snapshots/<id>`; the temp dir goes on failure.
   */
  protected async buildDir(id: () => string, fill: (td: string) => Promise<void>): Promise<string> {
    const td = await mkdtemp(join(this.snapshotsDir, 'new-'));
    try {
      await fill(td);
      const dir = this.snapshotDir(id());
      await rename(td, dir);
      return dir;
    } catch (err) {
      await rm(td, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** `root/snapshots/<id>`. */
  protected snapshotDir(id: string): string {
    return join(this.snapshotsDir, id);
  }

  /** The directory whose usage is the snapshot's own (native: its dir; overlay: its upper). */
  protected abstract usageDir(id: string): string;

  /** Mounts of an active or view snapshot. */
  protected abstract mountsOf(s: SnapshotRecord): Mount[];

  /**
   * Inserts the snapshot (tx.createSnapshot) and creates its directory at
   * `snapshotDir(id)` inside the write transaction. Returns the record and
   * the directory created (undefined when none), for removal if the
   * transaction fails to commit.
   */
  protected abstract createInTx(ctx: Ctx, tx: Transaction, kind: Kind, key: string, parent: string | undefined, opts: SnapshotOpts | undefined): Promise<{ record: SnapshotRecord; dir?: string }>;

  async stat(ctx: Ctx, key: string): Promise<Info> {
    throwIfAborted(ctx.signal);
    return this.ms.view((tx) => tx.getInfo(key).info);
  }

  async update(ctx: Ctx, info: UpdateInfo, fieldpaths?: string[]): Promise<Info> {
    return this.ms.update(ctx, (tx) => tx.updateInfo(info, fieldpaths));
  }

  async usage(ctx: Ctx, key: string): Promise<Usage> {
    throwIfAborted(ctx.signal);
    const { id, info, usage } = this.ms.view((tx) => tx.getInfo(key));
    if (info.kind === 'active') return diskUsage([this.usageDir(id)], ctx.signal);
    if (usage.size >= 0) return usage;
    // Measured on first use: a committed snapshot's directory no longer changes.
    const measured = await diskUsage([this.usageDir(id)], ctx.signal);
    await this.ms.update(ctx, async (tx) => tx.setUsage(id, measured));
    return measured;
  }

  async mounts(ctx: Ctx, key: string): Promise<Mount[]> {
    throwIfAborted(ctx.signal);
    try {
      return this.mountsOf(this.ms.view((tx) => tx.getSnapshot(key)));
    } catch (err) {
      throw prefixError('failed to get snapshot mount', err);
    }
  }

  prepare(ctx: Ctx, key: string, parent?: string, opts?: SnapshotOpts): Promise<Mount[]> {
    return this.createSnapshot(ctx, 'active', key, parent, opts);
  }

  view(ctx: Ctx, key: string, parent?: string, opts?: SnapshotOpts): Promise<Mount[]> {
    return this.createSnapshot(ctx, 'view', key, parent, opts);
  }

  protected async createSnapshot(ctx: Ctx, kind: Kind, key: string, parent: string | undefined, opts: SnapshotOpts | undefined): Promise<Mount[]> {
    let created: string | undefined;
    let record: SnapshotRecord;
    try {
      record = await this.ms.update(ctx, async (tx) => {
        const r = await this.createInTx(ctx, tx, kind, key, parent || undefined, opts);
        created = r.dir;
        return r.record;
      });
    } catch (err) {
      if (created) await rm(created, { recursive: true, force: true }).catch(() => undefined);
      throw prefixError('failed to create snapshot', err);
    }
    return this.mountsOf(record);
  }

  async commit(ctx: Ctx, name: string, key: string, opts?: SnapshotOpts): Promise<void> {
    await this.ms.update(ctx, async (tx) => {
      const { info } = tx.getInfo(key);
      if (tx.exists(name)) throw prefixError('failed to commit snapshot', alreadyExists(`committed snapshot ${name}`));
      if (info.kind !== 'active') throw prefixError('failed to commit snapshot', failedPrecondition(`snapshot "${key}" is not active`));
      try {
        // Usage is measured on first use, not here: a commit stays O(1) in the tree's size.
        tx.commitActive(key, name, undefined, opts);
      } catch (err) {
        throw prefixError('failed to commit snapshot', err);
      }
    });
  }

  async remove(ctx: Ctx, key: string): Promise<void> {
    const moved: { from?: string; to?: string } = {};
    try {
      await this.ms.update(ctx, async (tx) => {
        let id: string;
        try {
          ({ id } = tx.remove(key));
        } catch (err) {
          throw prefixError('failed to remove', err);
        }
        if (this.asyncRemove) return;
        const from = this.snapshotDir(id);
        const to = join(this.snapshotsDir, `rm-${id}`);
        try {
          await rename(from, to);
          Object.assign(moved, { from, to });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw prefixError('failed to rename', err);
        }
      });
    } catch (err) {
      // The metadata is unchanged: put the directory back.
      if (moved.to && moved.from) await rename(moved.to, moved.from).catch(() => undefined);
      throw err;
    }
    // Committed: the key is gone. A failed delete leaves `rm-<id>` for cleanup.
    if (moved.to) await rm(moved.to, { recursive: true, force: true }).catch(() => undefined);
  }

  async walk(ctx: Ctx, fn: WalkFunc, filters?: string[]): Promise<void> {
    throwIfAborted(ctx.signal);
    const match = snapshotFilter(filters ?? []);
    // Collected first, so fn may call back into the snapshotter.
    const infos = this.ms.view((tx) => tx.listInfo(match));
    for (const info of infos) {
      throwIfAborted(ctx.signal);
      await fn(info);
    }
  }

  /** Deletes everything under `snapshots/` that is not a live snapshot's directory. */
  async cleanup(ctx: Ctx): Promise<void> {
    // Scanned under the write lock, so no snapshot is being created meanwhile.
    const stale = await this.ms.update(ctx, async (tx) => {
      const ids = tx.idMap();
      return (await readdir(this.snapshotsDir)).filter((d) => !ids.has(d)).map((d) => join(this.snapshotsDir, d));
    });
    for (const dir of stale) {
      throwIfAborted(ctx.signal);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.ms.close();
  }
}
