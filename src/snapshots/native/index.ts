/**
 * The `native` snapshotter: every active snapshot is a full copy of its
 * parent's tree in `<root>/snapshots/<id>`, mounted with a bind mount.
 * Works on any filesystem; costs a copy per prepare (reflinks where the
 * filesystem has them).
 *
 * - prepare: new dir (mode 0755), parent tree copied in, `bind` rw.
 * - view without parent: an empty dir of its own, `bind` ro.
 * - view of a parent: no dir; a read-only bind of the parent's dir.
 */
import { execFile } from 'node:child_process';
import { chmod } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Ctx } from '../../internal/context.js';
import { unknown } from '../../errdefs/index.js';
import type { Mount } from '../../mount/types.js';
import { LocalSnapshotter, type LocalOptions } from '../local.js';
import type { SnapshotRecord, Transaction } from '../storage/metastore.js';
import type { Kind, SnapshotOpts } from '../types.js';

/**
 * Copies the tree under src into the existing dir dst, keeping owners,
 * modes, times, xattrs, hard links, symlinks, devices, FIFOs and sockets:
 * `cp -a --reflink=auto src/. dst` (GNU coreutils), which is what
 * continuity's fs.CopyDir does in Go and shares extents on btrfs/xfs.
 * dst itself takes src's mode, owner and times. xattrs that cannot be set
 * (security.*) are skipped silently, as containerd does.
 */
export async function copyTree(src: string, dst: string, signal?: AbortSignal): Promise<void> {
  await run('cp', ['-a', '--reflink=auto', '--', `${src}/.`, dst], signal);
  // continuity's CopyDir sets a directory's times before copying its entries,
  // so every non-empty directory of a containerd native snapshot carries the
  // copy time: do the same (find(1) + touch(1)), or unpacked trees differ.
  await run('find', [dst, '-type', 'd', '!', '-empty', '-exec', 'touch', '-c', '{}', '+'], signal);
}

function run(cmd: string, args: string[], signal?: AbortSignal): Promise<void> {
  return new Promise((done, fail) => {
    execFile(cmd, args, { signal, encoding: 'utf8' }, (err, _out, stderr) => {
      if (!err) return done();
      if ((err as NodeJS.ErrnoException).name === 'AbortError') return fail(err);
      fail(unknown(`copying of parent failed: ${cmd}: ${stderr.trim().split('\n')[0] || err.message}`, err));
    });
  });
}

export class NativeSnapshotter extends LocalSnapshotter {
  /** Opens (creating) a native snapshotter rooted at root. */
  static async open(root: string, opts: LocalOptions = {}): Promise<NativeSnapshotter> {
    root = resolve(root); // mounts carry absolute paths
    const ms = await LocalSnapshotter.openStore(root);
    return new NativeSnapshotter(root, ms, opts);
  }

  protected usageDir(id: string): string {
    return this.snapshotDir(id);
  }

  protected async createInTx(ctx: Ctx, tx: Transaction, kind: Kind, key: string, parent: string | undefined, opts: SnapshotOpts | undefined) {
    const record = tx.createSnapshot(kind, key, parent, opts);
    if (kind === 'view' && record.parentIds.length > 0) return { record };
    const dir = await this.buildDir(() => record.id, async (td) => {
      await chmod(td, 0o755);
      if (record.parentIds.length > 0) await copyTree(this.snapshotDir(record.parentIds[0]), td, ctx.signal);
    });
    return { record, dir };
  }

  protected mountsOf(s: SnapshotRecord): Mount[] {
    const ro = s.kind === 'view' ? 'ro' : 'rw';
    const source = s.parentIds.length === 0 || s.kind === 'active' ? this.snapshotDir(s.id) : this.snapshotDir(s.parentIds[0]);
    return [{ type: 'bind', source, options: ['rbind', ro] }];
  }
}
