/**
 * metadata/snapshots: a namespaced, lease-aware view over a local
 * snapshotter (containerd's metadata/snapshot.go). Keys are per namespace;
 * the backend sees `<ns>/<seq>/<key>` keys and only the inherited labels
 * (containerd.io/snapshot/*). Records (kind, parent, labels, times) live in
 * the metadata database, so snapshots can be listed and collected per
 * namespace.
 *
 * Creation reserves the record first (one write transaction), then asks the
 * backend; on a backend failure the record is dropped again. Removal drops
 * the record and then the backend snapshot.
 */
import { alreadyExists, failedPrecondition, invalidArgument, notFound, throwIfAborted } from '../errdefs/index.js';
import type { Ctx } from '../internal/context.js';
import { validateLabels } from '../internal/fieldpaths.js';
import { now } from '../internal/time.js';
import type { Mount } from '../mount/types.js';
import { applyUpdate, snapshotFilter } from '../snapshots/storage/fields.js';
import { filterInheritedLabels, type Info, type Kind, type SnapshotOpts, type Snapshotter, type UpdateInfo, type Usage, type WalkFunc } from '../snapshots/types.js';
import { parseLabels, type MetadataDB } from './db.js';
import { addToLease, removeFromLeases } from './leases.js';
import { namespaceRequired } from './namespace.js';

interface Row { key: string; bkey: string; parent: string; kind: string; labels: string; created_at: string; updated_at: string }

export class MetaSnapshotter implements Snapshotter {
  constructor(private readonly m: MetadataDB, readonly name: string, readonly backend: Snapshotter) {}

  private row(ns: string, key: string): Row | undefined {
    return this.m.stmt('SELECT key, bkey, parent, kind, labels, created_at, updated_at FROM snapshots WHERE ns = ? AND snapshotter = ? AND key = ?').get(ns, this.name, key) as Row | undefined;
  }

  private mustRow(ns: string, key: string): Row {
    const r = this.row(ns, key);
    if (!r) throw notFound(`snapshot ${key} does not exist`);
    return r;
  }

  /** The backend key of a namespaced key (for GC and diagnostics). */
  backendKey(ctx: Ctx, key: string): string {
    return this.mustRow(namespaceRequired(ctx), key).bkey;
  }

  async stat(ctx: Ctx, key: string): Promise<Info> {
    const ns = namespaceRequired(ctx);
    return rowInfo(this.mustRow(ns, key));
  }

  async update(ctx: Ctx, info: UpdateInfo, fieldpaths?: string[]): Promise<Info> {
    const ns = namespaceRequired(ctx);
    if (!info.name) throw invalidArgument('snapshot name must not be empty');
    return this.m.tx(() => {
      const r = this.mustRow(ns, info.name);
      const cur = rowInfo(r);
      const labels = applyUpdate(cur, info, fieldpaths);
      validateLabels(labels);
      const updatedAt = now();
      this.m.stmt('UPDATE snapshots SET labels = ?, updated_at = ? WHERE ns = ? AND snapshotter = ? AND key = ?').run(JSON.stringify(labels), updatedAt.toString(), ns, this.name, info.name);
      return { ...cur, labels, updatedAt };
    });
  }

  async usage(ctx: Ctx, key: string): Promise<Usage> {
    const ns = namespaceRequired(ctx);
    return this.backend.usage(ctx, this.mustRow(ns, key).bkey);
  }

  async mounts(ctx: Ctx, key: string): Promise<Mount[]> {
    const ns = namespaceRequired(ctx);
    return this.backend.mounts(ctx, this.mustRow(ns, key).bkey);
  }

  prepare(ctx: Ctx, key: string, parent?: string, opts?: SnapshotOpts): Promise<Mount[]> {
    return this.create(ctx, 'active', key, parent, opts);
  }

  view(ctx: Ctx, key: string, parent?: string, opts?: SnapshotOpts): Promise<Mount[]> {
    return this.create(ctx, 'view', key, parent, opts);
  }

  private async create(ctx: Ctx, kind: Kind, key: string, parent: string | undefined, opts?: SnapshotOpts): Promise<Mount[]> {
    const ns = namespaceRequired(ctx);
    if (!key) throw invalidArgument('snapshot key must not be empty');
    throwIfAborted(ctx.signal);
    const labels = dropEmpty(opts?.labels);
    validateLabels(labels);
    const t = now().toString();
    const { bkey, bparent } = this.m.tx(() => {
      this.m.ensureNamespace(ns, BigInt(t));
      if (this.row(ns, key)) throw alreadyExists(`snapshot ${JSON.stringify(key)}`);
      let bparent: string | undefined;
      if (parent) {
        const p = this.row(ns, parent);
        if (!p) throw notFound(`parent snapshot ${parent} does not exist`);
        if (p.kind !== 'committed') throw invalidArgument(`parent ${JSON.stringify(parent)} is not a committed snapshot`);
        bparent = p.bkey;
      }
      const bkey = `${ns}/${this.nextSeq()}/${key}`;
      this.m.stmt('INSERT INTO snapshots(ns, snapshotter, key, bkey, parent, kind, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(ns, this.name, key, bkey, parent ?? '', kind, JSON.stringify(labels), t, t);
      addToLease(this.m, ctx, ns, `snapshots/${this.name}`, key);
      return { bkey, bparent };
    });
    try {
      const bopts = { labels: filterInheritedLabels(labels) };
      return kind === 'view' ? await this.backend.view(ctx, bkey, bparent, bopts) : await this.backend.prepare(ctx, bkey, bparent, bopts);
    } catch (err) {
      this.m.tx(() => {
        this.m.stmt('DELETE FROM snapshots WHERE ns = ? AND snapshotter = ? AND key = ? AND bkey = ?').run(ns, this.name, key, bkey);
        removeFromLeases(this.m, ns, `snapshots/${this.name}`, key);
      });
      throw err;
    }
  }

  async commit(ctx: Ctx, name: string, key: string, opts?: SnapshotOpts): Promise<void> {
    const ns = namespaceRequired(ctx);
    if (!name) throw invalidArgument('snapshot name must not be empty');
    const labels = dropEmpty(opts?.labels);
    validateLabels(labels);
    const t = now().toString();
    // Reserve the name, then commit in the backend, then retire the key.
    const { bkey, bname } = this.m.tx(() => {
      if (this.row(ns, name)) throw alreadyExists(`snapshot ${JSON.stringify(name)}`);
      const r = this.mustRow(ns, key);
      if (r.kind !== 'active') throw failedPrecondition(`snapshot ${JSON.stringify(key)} is not active`);
      const bname = `${ns}/${this.nextSeq()}/${name}`;
      this.m.stmt('INSERT INTO snapshots(ns, snapshotter, key, bkey, parent, kind, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(ns, this.name, name, bname, r.parent, 'committing', JSON.stringify(labels), t, t);
      return { bkey: r.bkey, bname };
    });
    try {
      await this.backend.commit(ctx, bname, bkey, { labels: filterInheritedLabels(labels) });
    } catch (err) {
      this.m.tx(() => this.m.stmt('DELETE FROM snapshots WHERE ns = ? AND snapshotter = ? AND key = ? AND bkey = ?').run(ns, this.name, name, bname));
      throw err;
    }
    this.m.tx(() => {
      this.m.stmt("UPDATE snapshots SET kind = 'committed' WHERE ns = ? AND snapshotter = ? AND key = ?").run(ns, this.name, name);
      this.m.stmt('DELETE FROM snapshots WHERE ns = ? AND snapshotter = ? AND key = ?').run(ns, this.name, key);
      removeFromLeases(this.m, ns, `snapshots/${this.name}`, key);
      addToLease(this.m, ctx, ns, `snapshots/${this.name}`, name);
    });
  }

  async remove(ctx: Ctx, key: string): Promise<void> {
    const ns = namespaceRequired(ctx);
    const bkey = this.m.tx(() => {
      const r = this.mustRow(ns, key);
      if (this.m.stmt('SELECT 1 FROM snapshots WHERE ns = ? AND snapshotter = ? AND parent = ? LIMIT 1').get(ns, this.name, key)) {
        throw failedPrecondition('cannot remove snapshot with child');
      }
      this.m.stmt('DELETE FROM snapshots WHERE ns = ? AND snapshotter = ? AND key = ?').run(ns, this.name, key);
      removeFromLeases(this.m, ns, `snapshots/${this.name}`, key);
      return r.bkey;
    });
    this.m.markDirty('snapshot');
    await this.backend.remove(ctx, bkey).catch(() => undefined); // leftovers go at the next GC / cleanup
  }

  async walk(ctx: Ctx, fn: WalkFunc, filters?: string[]): Promise<void> {
    const ns = namespaceRequired(ctx);
    const match = snapshotFilter(filters);
    const rows = this.m.stmt("SELECT key, bkey, parent, kind, labels, created_at, updated_at FROM snapshots WHERE ns = ? AND snapshotter = ? AND kind != 'committing' ORDER BY key").all(ns, this.name) as Row[];
    for (const r of rows) {
      throwIfAborted(ctx.signal);
      const info = rowInfo(r);
      if (match(info)) await fn(info);
    }
  }

  async cleanup(ctx: Ctx): Promise<void> {
    await this.backend.cleanup?.(ctx);
  }

  async close(): Promise<void> {
    await this.backend.close();
  }

  private nextSeq(): number {
    const key = `snapshot_seq`;
    const cur = this.m.stmt('SELECT value FROM gc_state WHERE key = ?').get(key) as { value: string } | undefined;
    const next = (cur ? Number(cur.value) : 0) + 1;
    this.m.stmt('INSERT INTO gc_state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, String(next));
    return next;
  }
}

/** Stored labels never hold empty values (containerd drops them on write). */
function dropEmpty(labels: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(labels ?? {}).filter(([, v]) => v !== ''));
}

function rowInfo(r: Row): Info {
  const info: Info = { kind: (r.kind === 'committing' ? 'committed' : r.kind) as Kind, name: r.key, labels: parseLabels(r.labels), createdAt: BigInt(r.created_at), updatedAt: BigInt(r.updated_at) };
  if (r.parent) info.parent = r.parent;
  return info;
}
