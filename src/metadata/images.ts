/** metadata/images: image records per namespace (containerd's metadata image store). */
import * as digest from '../digest/index.js';
import { alreadyExists, invalidArgument, notFound } from '../errdefs/index.js';
import * as filters from '../filters/index.js';
import type { Descriptor } from '../content/types.js';
import type { Image, ImageStore } from '../images/image.js';
import { applyLabelPaths, validateLabels } from '../internal/fieldpaths.js';
import type { Ctx } from '../internal/context.js';
import { now } from '../internal/time.js';
import { parseLabels, type MetadataDB } from './db.js';
import type { Collector } from './leases.js';
import { namespaceRequired } from './namespace.js';

interface ImageRow { name: string; target: string; labels: string; created_at: string; updated_at: string }

export class MetaImageStore implements ImageStore {
  collector?: Collector;

  constructor(private readonly m: MetadataDB) {}

  async get(ctx: Ctx, name: string): Promise<Image> {
    const ns = namespaceRequired(ctx);
    const row = this.m.stmt('SELECT name, target, labels, created_at, updated_at FROM images WHERE ns = ? AND name = ?').get(ns, name) as ImageRow | undefined;
    if (!row) throw notFound(`image ${JSON.stringify(name)}`);
    return rowImage(row);
  }

  async list(ctx: Ctx, fs: string[] = []): Promise<Image[]> {
    const ns = namespaceRequired(ctx);
    const filter = filters.parseAll(...fs);
    const rows = this.m.stmt('SELECT name, target, labels, created_at, updated_at FROM images WHERE ns = ? ORDER BY name').all(ns) as ImageRow[];
    const out: Image[] = [];
    for (const r of rows) {
      const img = rowImage(r);
      if (filter.match(adaptImage(img))) out.push(img);
    }
    return out;
  }

  async create(ctx: Ctx, img: Pick<Image, 'name' | 'target'> & Partial<Image>): Promise<Image> {
    const ns = namespaceRequired(ctx);
    validateImage(img);
    const labels = img.labels ?? {};
    const t = now();
    this.m.tx(() => {
      this.m.ensureNamespace(ns, t);
      if (this.m.stmt('SELECT 1 FROM images WHERE ns = ? AND name = ?').get(ns, img.name)) throw alreadyExists(`image ${JSON.stringify(img.name)}`);
      this.m.stmt('INSERT INTO images(ns, name, target, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)').run(ns, img.name, JSON.stringify(cleanDesc(img.target)), JSON.stringify(labels), t.toString(), t.toString());
    });
    return { name: img.name, target: cleanDesc(img.target), labels: { ...labels }, createdAt: t, updatedAt: t };
  }

  async update(ctx: Ctx, img: Pick<Image, 'name'> & Partial<Image>, fieldpaths: string[] = []): Promise<Image> {
    const ns = namespaceRequired(ctx);
    if (!img.name) throw invalidArgument('image name must not be empty');
    const out = this.m.tx(() => {
      const row = this.m.stmt('SELECT name, target, labels, created_at, updated_at FROM images WHERE ns = ? AND name = ?').get(ns, img.name) as ImageRow | undefined;
      if (!row) throw notFound(`image ${JSON.stringify(img.name)}`);
      const cur = rowImage(row);
      let target = cur.target;
      let labels = cur.labels;
      if (fieldpaths.length === 0) {
        // Full replace of the mutable fields (containerd: labels and target).
        labels = img.labels ?? {};
        if (img.target) target = img.target;
      } else {
        const r = applyLabelPaths(cur.labels, img.labels, fieldpaths);
        labels = r.labels;
        for (const p of r.rest) {
          if (p === 'target') {
            if (!img.target) throw invalidArgument('target must be set to update it');
            target = img.target;
          } else if (p === 'annotations' || p.startsWith('annotations.')) {
            const key = p.slice('annotations.'.length);
            const ann = { ...(target.annotations ?? {}) };
            if (p === 'annotations') target = { ...target, annotations: { ...(img.target?.annotations ?? {}) } };
            else {
              const v = img.target?.annotations?.[key];
              if (v) ann[key] = v;
              else delete ann[key];
              target = { ...target, annotations: ann };
            }
          } else {
            throw invalidArgument(`cannot update ${JSON.stringify(p)} field on image ${JSON.stringify(img.name)}`);
          }
        }
      }
      const next = { ...cur, labels, target: cleanDesc(target), updatedAt: now() };
      validateImage(next);
      this.m.stmt('UPDATE images SET target = ?, labels = ?, updated_at = ? WHERE ns = ? AND name = ?').run(JSON.stringify(next.target), JSON.stringify(next.labels), next.updatedAt.toString(), ns, img.name);
      return next;
    });
    if (out.target.digest !== img.target?.digest) this.m.markDirty('image');
    return out;
  }

  async delete(ctx: Ctx, name: string, opts: { sync?: boolean } = {}): Promise<void> {
    const ns = namespaceRequired(ctx);
    this.m.tx(() => {
      const res = this.m.stmt('DELETE FROM images WHERE ns = ? AND name = ?').run(ns, name);
      if (res.changes === 0) throw notFound(`image ${JSON.stringify(name)}`);
    });
    this.m.markDirty('image');
    if (opts.sync && this.collector) await this.collector(ctx);
  }
}

function validateImage(img: Pick<Image, 'name'> & Partial<Image>): void {
  if (!img.name) throw invalidArgument('image name must not be empty');
  if (img.labels) validateLabels(img.labels);
  const t = img.target;
  if (!t) throw invalidArgument('image target must be set');
  if (!t.mediaType) throw invalidArgument('target mediatype must be set');
  try {
    digest.parse(t.digest);
  } catch (err) {
    throw invalidArgument(`target digest ${JSON.stringify(t.digest)} is invalid`, err);
  }
  if (!(t.size > 0)) throw invalidArgument('target size must be greater than zero');
}

function cleanDesc(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.annotations && Object.keys(d.annotations).length) out.annotations = { ...d.annotations };
  if (d.urls?.length) out.urls = [...d.urls];
  if (d.platform) out.platform = d.platform;
  return out;
}

function rowImage(r: ImageRow): Image {
  return { name: r.name, target: JSON.parse(r.target) as Descriptor, labels: parseLabels(r.labels), createdAt: BigInt(r.created_at), updatedAt: BigInt(r.updated_at) };
}

/** Filter fields of an image: name, target.digest, target.mediatype, labels.* */
export function adaptImage(img: Image): filters.Adaptor {
  return (path) => {
    if (path.length === 0) return undefined;
    switch (path[0]) {
      case 'name':
        return path.length === 1 ? img.name : undefined;
      case 'target':
        if (path.length !== 2) return undefined;
        if (path[1] === 'digest') return img.target.digest;
        if (path[1] === 'mediatype') return img.target.mediaType;
        return undefined;
      case 'labels':
        return path.length >= 2 ? img.labels[path.slice(1).join('.')] : undefined;
      case 'annotations':
        return path.length >= 2 ? img.target.annotations?.[path.slice(1).join('.')] : undefined;
      default:
        return undefined;
    }
  };
}
