/** metadata/namespaces: the namespace store over the metadata database. */
import { alreadyExists, failedPrecondition, notFound } from '../errdefs/index.js';
import * as identifiers from '../identifiers/index.js';
import { validateLabels } from '../internal/fieldpaths.js';
import type { Ctx } from '../internal/context.js';
import { now } from '../internal/time.js';
import type { NamespaceStore } from '../namespaces/types.js';
import { parseLabels, type MetadataDB } from './db.js';

export class MetaNamespaceStore implements NamespaceStore {
  constructor(private readonly m: MetadataDB) {}

  async create(_ctx: Ctx, name: string, labels: Record<string, string> = {}): Promise<void> {
    identifiers.validate(name);
    validateLabels(labels);
    this.m.tx(() => {
      if (this.m.stmt('SELECT 1 FROM namespaces WHERE name = ?').get(name)) throw alreadyExists(`namespace ${name}`);
      this.m.stmt('INSERT INTO namespaces(name, labels, created_at) VALUES (?, ?, ?)').run(name, JSON.stringify(labels), now().toString());
    });
  }

  async labels(_ctx: Ctx, name: string): Promise<Record<string, string>> {
    identifiers.validate(name);
    const row = this.m.stmt('SELECT labels FROM namespaces WHERE name = ?').get(name) as { labels: string } | undefined;
    return parseLabels(row?.labels);
  }

  async setLabel(_ctx: Ctx, name: string, key: string, value: string): Promise<void> {
    identifiers.validate(name);
    if (value) validateLabels({ [key]: value });
    this.m.tx(() => {
      this.m.ensureNamespace(name, now());
      const row = this.m.stmt('SELECT labels FROM namespaces WHERE name = ?').get(name) as { labels: string };
      const labels = parseLabels(row.labels);
      if (value) labels[key] = value;
      else delete labels[key];
      this.m.stmt('UPDATE namespaces SET labels = ? WHERE name = ?').run(JSON.stringify(labels), name);
    });
  }

  async list(_ctx: Ctx): Promise<string[]> {
    return (this.m.stmt('SELECT name FROM namespaces ORDER BY name').all() as { name: string }[]).map((r) => r.name);
  }

  async delete(_ctx: Ctx, name: string): Promise<void> {
    identifiers.validate(name);
    this.m.tx(() => {
      const has: string[] = [];
      if (this.m.stmt('SELECT 1 FROM images WHERE ns = ? LIMIT 1').get(name)) has.push('images');
      if (this.m.stmt('SELECT 1 FROM content WHERE ns = ? LIMIT 1').get(name)) has.push('blobs');
      if (this.m.stmt('SELECT 1 FROM containers WHERE ns = ? LIMIT 1').get(name)) has.push('containers');
      for (const r of this.m.stmt('SELECT DISTINCT snapshotter FROM snapshots WHERE ns = ? ORDER BY snapshotter').all(name) as { snapshotter: string }[]) {
        has.push(`snapshots on ${JSON.stringify(r.snapshotter)} snapshotter`);
      }
      if (has.length) throw failedPrecondition(`namespace ${JSON.stringify(name)} must be empty, but it still has ${has.join(', ')}`);
      const res = this.m.stmt('DELETE FROM namespaces WHERE name = ?').run(name);
      if (res.changes === 0) throw notFound(`namespace ${JSON.stringify(name)}`);
      this.m.stmt('DELETE FROM leases WHERE ns = ?').run(name);
      this.m.stmt('DELETE FROM lease_resources WHERE ns = ?').run(name);
      this.m.stmt('DELETE FROM ingests WHERE ns = ?').run(name);
    });
    this.m.markDirty('namespace');
  }
}
