/**
 * Test fixtures for image walks: content builders (multi-platform index,
 * manifests, configs, layers), store factories (in-memory double and the
 * real local store), a fake registry Fetcher with fault injection and a fake
 * Pusher that records what it received.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import * as digest from '../../src/digest/index.js';
import { alreadyExists, notFound, failedPrecondition } from '../../src/errdefs/index.js';
import type { Descriptor, Platform, Store } from '../../src/content/types.js';
import type { Ctx } from '../../src/internal/context.js';
import type { Fetcher, FetchOpts, Pusher, PushWriter } from '../../src/remotes/types.js';
import { join } from 'node:path';
import { LocalStore } from '../../src/content/local/store.js';
import { MetadataDB } from '../../src/metadata/db.js';
import { MetaContentStore } from '../../src/metadata/content.js';
import { tempDir } from '../util/tmp.js';
import { MemStore } from './memstore.js';
import * as mt from '../../src/images/mediatypes.js';

export const ctx: Ctx = { namespace: 'default' };

export interface StoreFactory {
  name: string;
  make(): Promise<{ store: Store; cleanup: () => Promise<void> }>;
}

export const storeFactories: StoreFactory[] = [
  { name: 'memstore', make: async () => ({ store: new MemStore(), cleanup: async () => {} }) },
  {
    name: 'local',
    make: async () => {
      const t = await tempDir('dist-images-');
      return { store: await LocalStore.open(t.dir), cleanup: t.cleanup };
    },
  },
  {
    name: 'metadata',
    make: async () => {
      const t = await tempDir('dist-images-');
      const db = MetadataDB.open(join(t.dir, 'meta'));
      const store = new MetaContentStore(db, await LocalStore.open(join(t.dir, 'content')));
      return { store, cleanup: async () => { db.close(); await t.cleanup(); } };
    },
  },
];

/** Whether commit labels persist (the bare local store keeps none: metadata owns labels). */
export const keepsCommitLabels = (name: string) => name !== 'local';

/** Writes data into any Store via writer+commit; returns the descriptor. */
export async function writeBlob(store: Store, data: Buffer | string, mediaType: string, extra: Partial<Descriptor> = {}): Promise<Descriptor> {
  const buf = Buffer.from(data);
  const desc: Descriptor = { mediaType, digest: digest.fromBytes(buf), size: buf.length, ...extra };
  try {
    const w = await store.writer(ctx, { ref: `test-${desc.digest}`, desc });
    await w.write(buf);
    await w.commit(ctx, desc.size, desc.digest);
  } catch (err: any) {
    if (err?.code !== 'AlreadyExists') throw err;
  }
  return desc;
}

export interface BuiltManifest {
  platform: Platform;
  desc: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  diffIDs: string[];
}

export interface BuiltImage {
  index: Descriptor;
  manifests: BuiltManifest[];
  /** Every blob by digest. */
  blobs: Map<string, Buffer>;
}

export interface BuildOpts {
  docker?: boolean;
  layersPerManifest?: number;
  layerSize?: number;
  /** Share the first layer between all manifests. */
  sharedBase?: boolean;
  /** Omit platform on index entries (matched through the config). */
  noIndexPlatform?: boolean;
}

/** Builds a multi-platform image in memory (no store): index → manifests → config + layers. */
export function buildImage(platforms: Platform[], opts: BuildOpts = {}): BuiltImage {
  const blobs = new Map<string, Buffer>();
  const add = (data: Buffer | string, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor => {
    const buf = Buffer.from(data);
    const d: Descriptor = { mediaType, digest: digest.fromBytes(buf), size: buf.length, ...extra };
    blobs.set(d.digest, buf);
    return d;
  };
  const layerMT = opts.docker ? mt.MediaTypeDockerSchema2LayerGzip : mt.MediaTypeImageLayerGzip;
  const configMT = opts.docker ? mt.MediaTypeDockerSchema2Config : mt.MediaTypeImageConfig;
  const manifestMT = opts.docker ? mt.MediaTypeDockerSchema2Manifest : mt.MediaTypeImageManifest;
  const indexMT = opts.docker ? mt.MediaTypeDockerSchema2ManifestList : mt.MediaTypeImageIndex;
  const base = opts.sharedBase ? add(randomBytes(opts.layerSize ?? 300), layerMT) : undefined;
  const manifests: BuiltManifest[] = platforms.map((p) => {
    const n = opts.layersPerManifest ?? 2;
    const layers: Descriptor[] = [];
    for (let i = 0; i < n; i++) layers.push(i === 0 && base ? base : add(randomBytes(opts.layerSize ?? 300), layerMT));
    const diffIDs = layers.map((l) => digest.fromBytes('diff:' + l.digest));
    const cfg = { architecture: p.architecture, os: p.os, ...(p.variant ? { variant: p.variant } : {}), config: { Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: diffIDs } };
    const config = add(JSON.stringify(cfg), configMT);
    const man = { schemaVersion: 2, mediaType: manifestMT, config, layers };
    const desc = add(JSON.stringify(man), manifestMT, opts.noIndexPlatform ? {} : { platform: p });
    return { platform: p, desc, config, layers, diffIDs };
  });
  const index = add(JSON.stringify({ schemaVersion: 2, mediaType: indexMT, manifests: manifests.map((m) => m.desc) }), indexMT);
  return { index, manifests, blobs };
}

/** Stores every blob of a built image. */
export async function storeImage(store: Store, img: BuiltImage): Promise<void> {
  for (const [, buf] of img.blobs) await writeBlob(store, buf, 'application/octet-stream');
}

export interface FetchCall { digest: string; offset: number }

/**
 * A registry in memory. faults: per digest, a queue consumed one per fetch:
 * {breakAfter: n} (stream errors with ECONNRESET after n bytes) or
 * {endAfter: n} (stream ends cleanly after n bytes). corrupt (one byte
 * flipped), extra (trailing garbage); failFetch: fetch() itself rejects with
 * the queued errors.
 */
export class FakeFetcher implements Fetcher {
  readonly calls: FetchCall[] = [];
  readonly faults = new Map<string, Array<{ breakAfter: number } | { endAfter: number }>>();
  readonly corrupt = new Set<string>();
  readonly extra = new Set<string>();
  readonly failFetch = new Map<string, Error[]>();
  /** When set, every fetch awaits it before streaming (concurrency tests). */
  gate?: Promise<void>;
  chunkSize = 64;
  active = 0;
  maxActive = 0;

  constructor(readonly blobs: Map<string, Buffer>) {}

  async fetch(_ctx: Ctx, desc: Descriptor, opts: FetchOpts = {}): Promise<Readable> {
    const offset = opts.offset ?? 0;
    this.calls.push({ digest: desc.digest, offset });
    const fail = this.failFetch.get(desc.digest)?.shift();
    if (fail) throw fail;
    let data = this.blobs.get(desc.digest);
    if (!data) throw notFound(`blob ${desc.digest}`);
    if (this.corrupt.has(desc.digest)) {
      data = Buffer.from(data);
      data[data.length >> 1] ^= 0xff;
    }
    if (this.extra.has(desc.digest)) data = Buffer.concat([data, Buffer.from('garbage')]);
    let body = data.subarray(offset);
    const fault = this.faults.get(desc.digest)?.shift();
    const br = fault && 'breakAfter' in fault ? fault.breakAfter : undefined;
    const end = fault && 'endAfter' in fault ? fault.endAfter : undefined;
    const chunkSize = this.chunkSize;
    const self = this;
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    const gate = this.gate;
    async function* gen() {
      try {
        if (gate) await gate;
        let sent = 0;
        const limit = end !== undefined ? Math.min(end, body.length) : br !== undefined ? Math.min(br, body.length) : body.length;
        while (sent < limit) {
          const n = Math.min(chunkSize, limit - sent);
          yield body.subarray(sent, sent + n);
          sent += n;
          await new Promise((r) => setImmediate(r));
        }
        if (br !== undefined) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      } finally {
        self.active--;
      }
    }
    return Readable.from(gen(), { objectMode: false });
  }
}

/** A registry that receives pushes; records commit order. */
export class FakePusher implements Pusher {
  readonly received = new Map<string, Buffer>();
  readonly committed: string[] = [];
  readonly aborted: string[] = [];
  readonly existing = new Set<string>();
  /** Annotations of descriptors passed to push (for mount sources). */
  readonly pushedDescs: Descriptor[] = [];

  async push(_ctx: Ctx, desc: Descriptor): Promise<PushWriter> {
    this.pushedDescs.push(desc);
    if (this.existing.has(desc.digest) || this.received.has(desc.digest)) throw alreadyExists(`${desc.digest}`);
    const chunks: Buffer[] = [];
    const self = this;
    return {
      async write(chunk) {
        chunks.push(Buffer.from(chunk));
      },
      async commit() {
        const data = Buffer.concat(chunks);
        if (digest.fromBytes(data) !== desc.digest) throw failedPrecondition(`digest mismatch for ${desc.digest}`);
        self.received.set(desc.digest, data);
        self.committed.push(desc.digest);
      },
      async abort() {
        self.aborted.push(desc.digest);
      },
    };
  }
}
