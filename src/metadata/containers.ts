/**
 * metadata/containers: container records per namespace (containerd's
 * metadata/containers.go) in the `containers` table. The record (image,
 * runtime, spec, snapshotter, snapshotKey, extensions) is JSON in `record`
 * (Any values base64); labels and timestamps have their own columns. The
 * garbage collector reads `snapshotter`/`snapshotKey` from the record: a
 * container keeps its snapshot alive.
 */
import { alreadyExists, invalidArgument, notFound } from '../errdefs/index.js';
import * as filters from '../filters/index.js';
import * as identifiers from '../identifiers/index.js';
import type { AnyValue, Container, ContainerInput, ContainerStore } from '../containers/types.js';
import { applyLabelPaths, validateLabels } from '../internal/fieldpaths.js';
import type { Ctx } from '../internal/context.js';
import { now } from '../internal/time.js';
import { parseLabels, type MetadataDB } from './db.js';
import { namespaceRequired } from './namespace.js';

interface Row { id: string; record: string; labels: string; created_at: string; updated_at: string }

interface StoredAny { typeUrl: string; value: string }
interface Record_ {
  image: string;
  runtime: { name: string; options?: StoredAny };
  spec?: StoredAny;
  snapshotter: string;
  snapshotKey: string;
  extensions: Record<string, StoredAny>;
}

export class MetaContainerStore implements ContainerStore {
  constructor(private readonly m: MetadataDB) {}

  async get(ctx: Ctx, id: string): Promise<Container> {
    const ns = namespaceRequired(ctx);
    const row = this.row(ns, id);
    if (!row) throw notFound(`container ${JSON.stringify(id)} in namespace ${JSON.stringify(ns)}`);
    return rowContainer(row);
  }

  async list(ctx: Ctx, fs: string[] = []): Promise<Container[]> {
    const ns = namespaceRequired(ctx);
    const filter = filters.parseAll(...fs);
    const rows = this.m.stmt('SELECT id, record, labels, created_at, updated_at FROM containers WHERE ns = ? ORDER BY id').all(ns) as Row[];
    const out: Container[] = [];
    for (const r of rows) {
      const c = rowContainer(r);
      if (filter.match(adaptContainer(c))) out.push(c);
    }
    return out;
  }

  async create(ctx: Ctx, input: ContainerInput): Promise<Container> {
    const ns = namespaceRequired(ctx);
    const c = normalize(input);
    prefix('create container failed validation', () => validateContainer(c));
    const t = now();
    this.m.tx(() => {
      this.m.ensureNamespace(ns, t);
      if (this.row(ns, c.id)) throw alreadyExists(`container ${JSON.stringify(c.id)}`);
      this.m.stmt('INSERT INTO containers(ns, id, record, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(ns, c.id, JSON.stringify(toRecord(c)), JSON.stringify(c.labels), t.toString(), t.toString());
    });
    return { ...c, createdAt: t, updatedAt: t };
  }

  async update(ctx: Ctx, input: ContainerInput, fieldpaths: string[] = []): Promise<Container> {
    const ns = namespaceRequired(ctx);
    if (!input.id) throw invalidArgument('must specify a container id');
    const upd = normalize(input);
    return this.m.tx(() => {
      const row = this.row(ns, upd.id);
      if (!row) throw notFound(`container ${JSON.stringify(upd.id)}`);
      const cur = rowContainer(row);
      let paths = fieldpaths;
      if (paths.length === 0) {
        // Full replace touches only the mutable fields; immutable ones must match.
        paths = ['labels', 'spec', 'extensions', 'image', 'snapshotkey'];
        if (cur.snapshotter !== upd.snapshotter) throw invalidArgument('container.Snapshotter field is immutable');
        if (cur.runtime.name !== upd.runtime.name) throw invalidArgument('container.Runtime.Name field is immutable');
      }
      const next: Container = { ...cur, labels: { ...cur.labels }, extensions: { ...cur.extensions } };
      const { labels, rest } = applyLabelPaths(cur.labels, upd.labels, paths);
      next.labels = labels;
      for (const p of rest) {
        if (p.startsWith('extensions.')) {
          const key = p.slice('extensions.'.length);
          if (Object.hasOwn(upd.extensions, key)) next.extensions[key] = upd.extensions[key];
          else delete next.extensions[key];
          continue;
        }
        switch (p) {
          case 'spec':
            next.spec = upd.spec;
            break;
          case 'extensions':
            next.extensions = { ...upd.extensions };
            break;
          case 'image':
            next.image = upd.image;
            break;
          case 'snapshotkey':
            next.snapshotKey = upd.snapshotKey;
            break;
          default:
            throw invalidArgument(`cannot update ${JSON.stringify(p)} field on ${JSON.stringify(upd.id)}`);
        }
      }
      prefix('update failed validation', () => validateContainer(next));
      next.updatedAt = now();
      this.m.stmt('UPDATE containers SET record = ?, labels = ?, updated_at = ? WHERE ns = ? AND id = ?')
        .run(JSON.stringify(toRecord(next)), JSON.stringify(next.labels), next.updatedAt.toString(), ns, upd.id);
      return next;
    });
  }

  async delete(ctx: Ctx, id: string): Promise<void> {
    const ns = namespaceRequired(ctx);
    this.m.tx(() => {
      const res = this.m.stmt('DELETE FROM containers WHERE ns = ? AND id = ?').run(ns, id);
      if (res.changes === 0) throw notFound(`container ${id}`);
    });
    this.m.markDirty('container');
  }

  private row(ns: string, id: string): Row | undefined {
    return this.m.stmt('SELECT id, record, labels, created_at, updated_at FROM containers WHERE ns = ? AND id = ?').get(ns, id) as Row | undefined;
  }
}

/** Runs fn, prefixing the message of an InvalidArgument it throws. */
function prefix(what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    throw invalidArgument(`${what}: ${(err as { detail?: string }).detail ?? String(err)}`, err);
  }
}

/** containerd's validateContainer. */
export function validateContainer(c: Container): void {
  try {
    identifiers.validate(c.id);
  } catch (err) {
    throw invalidArgument(`container.ID: ${(err as { detail?: string }).detail ?? String(err)}`, err);
  }
  for (const k of Object.keys(c.extensions)) {
    if (k === '') throw invalidArgument('container.Extension keys must not be zero-length');
  }
  try {
    validateLabels(c.labels);
  } catch (err) {
    throw invalidArgument(`containers.Labels: ${(err as { detail?: string }).detail ?? String(err)}`, err);
  }
  if (!c.runtime.name) throw invalidArgument('container.Runtime.Name must be set');
  if (!c.spec) throw invalidArgument('container.Spec must be set');
  if (c.snapshotKey && !c.snapshotter) throw invalidArgument('container.Snapshotter must be set if container.SnapshotKey is set');
}

function normalize(c: ContainerInput): Container {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.labels ?? {})) if (v !== '') labels[k] = v;
  return {
    id: c.id,
    labels,
    image: c.image ?? '',
    runtime: { name: c.runtime?.name ?? '', ...(c.runtime?.options ? { options: c.runtime.options } : {}) },
    ...(c.spec ? { spec: c.spec } : {}),
    snapshotter: c.snapshotter ?? '',
    snapshotKey: c.snapshotKey ?? '',
    createdAt: 0n,
    updatedAt: 0n,
    extensions: { ...(c.extensions ?? {}) },
  };
}

const anyOut = (a: AnyValue): StoredAny => ({ typeUrl: a.typeUrl, value: Buffer.from(a.value).toString('base64') });
const anyIn = (a: StoredAny): AnyValue => ({ typeUrl: a.typeUrl, value: Buffer.from(a.value, 'base64') });

function toRecord(c: Container): Record_ {
  const r: Record_ = {
    image: c.image,
    runtime: { name: c.runtime.name },
    snapshotter: c.snapshotter,
    snapshotKey: c.snapshotKey,
    extensions: Object.fromEntries(Object.entries(c.extensions).map(([k, v]) => [k, anyOut(v)])),
  };
  if (c.runtime.options) r.runtime.options = anyOut(c.runtime.options);
  if (c.spec) r.spec = anyOut(c.spec);
  return r;
}

function rowContainer(row: Row): Container {
  const r = JSON.parse(row.record) as Record_;
  const c: Container = {
    id: row.id,
    labels: parseLabels(row.labels),
    image: r.image ?? '',
    runtime: { name: r.runtime?.name ?? '' },
    snapshotter: r.snapshotter ?? '',
    snapshotKey: r.snapshotKey ?? '',
    createdAt: BigInt(row.created_at),
    updatedAt: BigInt(row.updated_at),
    extensions: Object.fromEntries(Object.entries(r.extensions ?? {}).map(([k, v]) => [k, anyIn(v)])),
  };
  if (r.runtime?.options) c.runtime.options = anyIn(r.runtime.options);
  if (r.spec) c.spec = anyIn(r.spec);
  return c;
}

/** Filter fields of a container: id, image, runtime.name, labels.* (containerd's adaptContainer). */
export function adaptContainer(c: Container): filters.Adaptor {
  return filters.adaptObject({ id: c.id, image: c.image, 'runtime.name': c.runtime.name }, { labels: c.labels });
}
