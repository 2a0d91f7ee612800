/**
 * metadata/leases: leases and their resources, per namespace. Writers that
 * carry ctx.lease record what they create through `addToLease` in the same
 * transaction as the object itself.
 */
import { randomBytes } from 'node:crypto';
import * as digest from '../digest/index.js';
import { alreadyExists, invalidArgument, notFound, notImplemented } from '../errdefs/index.js';
import * as filters from '../filters/index.js';
import { validateLabels } from '../internal/fieldpaths.js';
import type { Ctx } from '../internal/context.js';
import { now, toRFC3339 } from '../internal/time.js';
import type { Lease, LeaseManager, Resource } from '../leases/types.js';
import { parseLabels, type MetadataDB } from './db.js';
import { namespaceRequired } from './namespace.js';

/** Runs a garbage collection (installed by the GC package). */
export type Collector = (ctx: Ctx) => Promise<unknown>;

export class MetaLeaseManager implements LeaseManager {
  collector?: Collector;

  constructor(private readonly m: MetadataDB) {}

  async create(ctx: Ctx, opts: { id?: string; labels?: Record<string, string> } = {}): Promise<Lease> {
    const ns = namespaceRequired(ctx);
    // Any non-empty id, as containerd (ctr images mount uses the target path).
    const id = opts.id || randomLeaseId();
    const labels = opts.labels ?? {};
    validateLabels(labels);
    const createdAt = now();
    this.m.tx(() => {
      this.m.ensureNamespace(ns, createdAt);
      if (this.m.stmt('SELECT 1 FROM leases WHERE ns = ? AND id = ?').get(ns, id)) throw alreadyExists(`lease ${JSON.stringify(id)}`);
      this.m.stmt('INSERT INTO leases(ns, id, labels, created_at) VALUES (?, ?, ?, ?)').run(ns, id, JSON.stringify(labels), createdAt.toString());
    });
    return { id, createdAt, labels: { ...labels } };
  }

  async delete(ctx: Ctx, lease: { id: string }, opts: { sync?: boolean } = {}): Promise<void> {
    const ns = namespaceRequired(ctx);
    this.m.tx(() => {
      const res = this.m.stmt('DELETE FROM leases WHERE ns = ? AND id = ?').run(ns, lease.id);
      if (res.changes === 0) throw notFound(`lease ${JSON.stringify(lease.id)}`);
      this.m.stmt('DELETE FROM lease_resources WHERE ns = ? AND lease = ?').run(ns, lease.id);
    });
    this.m.markDirty('lease');
    if (opts.sync && this.collector) await this.collector(ctx);
  }

  async list(ctx: Ctx, fs: string[] = []): Promise<Lease[]> {
    const ns = namespaceRequired(ctx);
    const filter = filters.parseAll(...fs);
    const rows = this.m.stmt('SELECT id, labels, created_at FROM leases WHERE ns = ? ORDER BY id').all(ns) as { id: string; labels: string; created_at: string }[];
    const out: Lease[] = [];
    for (const r of rows) {
      const l = { id: r.id, labels: parseLabels(r.labels), createdAt: BigInt(r.created_at) };
      if (filter.match(filters.adaptObject({ id: l.id }, { labels: l.labels }))) out.push(l);
    }
    return out;
  }

  async addResource(ctx: Ctx, lease: { id: string }, r: Resource): Promise<void> {
    const ns = namespaceRequired(ctx);
    const { type, id } = parseResource(r);
    this.m.tx(() => {
      this.requireLease(ns, lease.id);
      this.m.stmt('INSERT OR IGNORE INTO lease_resources(ns, lease, type, id) VALUES (?, ?, ?, ?)').run(ns, lease.id, type, id);
    });
  }

  async deleteResource(ctx: Ctx, lease: { id: string }, r: Resource): Promise<void> {
    const ns = namespaceRequired(ctx);
    const { type, id } = parseResource(r);
    this.m.tx(() => {
      this.requireLease(ns, lease.id);
      this.m.stmt('DELETE FROM lease_resources WHERE ns = ? AND lease = ? AND type = ? AND id = ?').run(ns, lease.id, type, id);
    });
    this.m.markDirty('lease');
  }

  async listResources(ctx: Ctx, lease: { id: string }): Promise<Resource[]> {
    const ns = namespaceRequired(ctx);
    return this.m.read(() => {
      this.requireLease(ns, lease.id);
      return (this.m.stmt('SELECT type, id FROM lease_resources WHERE ns = ? AND lease = ? ORDER BY type, id').all(ns, lease.id) as Resource[]).map((x) => ({ id: x.id, type: x.type }));
    });
  }

  private requireLease(ns: string, id: string): void {
    if (!this.m.stmt('SELECT 1 FROM leases WHERE ns = ? AND id = ?').get(ns, id)) throw notFound(`lease ${JSON.stringify(id)}`);
  }
}

/**
 * Records a resource under ctx.lease, inside the caller's transaction.
 * NotFound when the lease does not exist. No-op without a lease.
 */
export function addToLease(m: MetadataDB, ctx: Ctx, ns: string, type: string, id: string): void {
  if (!ctx.lease) return;
  if (!m.stmt('SELECT 1 FROM leases WHERE ns = ? AND id = ?').get(ns, ctx.lease)) throw notFound(`lease ${JSON.stringify(ctx.lease)}`);
  m.stmt('INSERT OR IGNORE INTO lease_resources(ns, lease, type, id) VALUES (?, ?, ?, ?)').run(ns, ctx.lease, type, id);
}

/** Drops a resource from every lease of the namespace (the object is gone). */
export function removeFromLeases(m: MetadataDB, ns: string, type: string, id: string): void {
  m.stmt('DELETE FROM lease_resources WHERE ns = ? AND type = ? AND id = ?').run(ns, type, id);
}

function parseResource(r: Resource): { type: string; id: string } {
  const keys = r.type.split('/');
  switch (keys[0]) {
    case 'content':
    case 'ingests':
      if (keys.length !== 1) throw invalidArgument(`invalid resource type ${r.type}`);
      if (keys[0] === 'content') {
        try {
          digest.parse(r.id);
        } catch (err) {
          throw invalidArgument(`invalid content resource id ${r.id}`, err);
        }
      }
      return { type: r.type, id: r.id };
    case 'snapshots':
      if (keys.length !== 2 || !keys[1]) throw invalidArgument(`invalid snapshot resource type ${r.type}`);
      return { type: r.type, id: r.id };
    default:
      throw notImplemented(`resource type ${r.type} not supported yet`);
  }
}

function randomLeaseId(): string {
  const ms = Date.now();
  const t = toRFC3339(ms).replace(/[-:TZ]/g, '') + String(ms % 1000).padStart(3, '0'); // YYYYMMDDhhmmssmmm
  return `${t}-${randomBytes(3).toString('hex')}`;
}
