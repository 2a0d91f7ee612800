/**
 * Image JSON documents (OCI manifest, index and image config, and their
 * Docker schema 2 twins, which share the shapes), parsed with validation.
 *
 * Parsing checks the shape this project relies on (descriptors with valid
 * digests and sizes, arrays where arrays belong) and the media-type cross
 * check containerd does: a manifest must not look like an index and vice
 * versa; schema 1 (fsLayers) is refused. Any failure is InvalidArgument
 * naming the blob's digest. Unknown fields are kept.
 */
import { readBlob as readWholeBlob } from '../content/helpers.js';
import { invalidArgument } from '../errdefs/index.js';
import * as digests from '../digest/index.js';
import type { Ctx } from '../internal/context.js';
import type { Descriptor, Platform, Provider } from '../content/types.js';
import { isIndex, isManifest } from './mediatypes.js';

export interface Manifest {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** Docker schema 2 manifest / manifest list: same shapes as OCI. */
export type DockerManifest = Manifest;
export type DockerManifestList = Index;

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, object>;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Volumes?: Record<string, object>;
    WorkingDir?: string;
    Labels?: Record<string, string>;
    StopSignal?: string;
    [k: string]: unknown;
  };
  rootfs: { type: string; diff_ids: string[] };
  history?: Array<{ created?: string; created_by?: string; author?: string; comment?: string; empty_layer?: boolean }>;
  [k: string]: unknown;
}

/** Cap for manifests and indexes (the distribution spec's 4 MiB). */
export const MAX_MANIFEST_SIZE = 4 << 20;
/** Cap for image configs (long histories make them bigger than manifests). */
export const MAX_CONFIG_SIZE = 16 << 20;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class ShapeError extends Error {}

function fail(msg: string): never {
  throw new ShapeError(msg);
}

function checkStringMap(v: unknown, where: string): void {
  if (v === undefined) return;
  if (!isObj(v) || !Object.values(v).every((s) => typeof s === 'string')) fail(`${where}: expected an object of strings`);
}

function checkStringArray(v: unknown, where: string): void {
  if (v === undefined) return;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) fail(`${where}: expected an array of strings`);
}

function checkPlatform(v: unknown, where: string): asserts v is Platform {
  if (!isObj(v)) fail(`${where}: expected an object`);
  if (typeof v.architecture !== 'string') fail(`${where}.architecture: expected a string`);
  if (typeof v.os !== 'string') fail(`${where}.os: expected a string`);
  if (v.variant !== undefined && typeof v.variant !== 'string') fail(`${where}.variant: expected a string`);
  if (v['os.version'] !== undefined && typeof v['os.version'] !== 'string') fail(`${where}.os.version: expected a string`);
  checkStringArray(v['os.features'], `${where}.os.features`);
}

function checkDescriptor(v: unknown, where: string): asserts v is Descriptor {
  if (!isObj(v)) fail(`${where}: expected a descriptor object`);
  if (typeof v.mediaType !== 'string') fail(`${where}.mediaType: expected a string`);
  if (typeof v.digest !== 'string' || !digests.isValid(v.digest)) fail(`${where}.digest: invalid digest ${JSON.stringify(v.digest)}`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) fail(`${where}.size: expected a non-negative integer`);
  checkStringMap(v.annotations, `${where}.annotations`);
  checkStringArray(v.urls, `${where}.urls`);
  if (v.platform !== undefined) checkPlatform(v.platform, `${where}.platform`);
}

function checkDescriptors(v: unknown, where: string): Descriptor[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(`${where}: expected an array`);
  v.forEach((d, i) => checkDescriptor(d, `${where}[${i}]`));
  return v as Descriptor[];
}

function decode(data: Uint8Array | string, what: string, dgst: string): Obj {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch (err) {
    throw invalidArgument(`${what} ${dgst}: invalid JSON: ${(err as Error).message}`, err);
  }
  if (!isObj(doc)) throw invalidArgument(`${what} ${dgst}: expected a JSON object`);
  return doc;
}

function shaped<T>(what: string, dgst: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ShapeError) throw invalidArgument(`${what} ${dgst}: ${err.message}`);
    throw err;
  }
}

/** The label used in errors: the digest when known, else "<unknown digest>". */
function label(dgst?: string): string {
  return dgst || '<unknown digest>';
}

/**
 * containerd's validateMediaType: refuses schema 1, and documents whose
 * fields contradict mediaType (a manifest with "manifests", an index with
 * "config"/"layers", or a mismatching embedded mediaType).
 */
function checkMediaType(doc: Obj, mt: string | undefined): void {
  if (doc.fsLayers !== undefined) fail('media-type: schema 1 not supported');
  if (mt === undefined) return;
  const embedded = typeof doc.mediaType === 'string' ? doc.mediaType : '';
  if (isManifest(mt)) {
    if (doc.manifests !== undefined || isIndex(embedded)) fail(`media-type: expected manifest but found index (${mt})`);
  } else if (isIndex(mt)) {
    if (doc.config !== undefined || doc.layers !== undefined || isManifest(embedded)) fail(`media-type: expected index but found manifest (${mt})`);
  }
}

function checkCommon(doc: Obj): void {
  if (doc.schemaVersion !== undefined && doc.schemaVersion !== 2) fail(`unsupported schemaVersion ${JSON.stringify(doc.schemaVersion)}`);
  if (doc.mediaType !== undefined && typeof doc.mediaType !== 'string') fail('mediaType: expected a string');
  if (doc.artifactType !== undefined && typeof doc.artifactType !== 'string') fail('artifactType: expected a string');
  if (doc.subject !== undefined) checkDescriptor(doc.subject, 'subject');
  checkStringMap(doc.annotations, 'annotations');
}

/**
 * Parses a manifest. desc (when given) names the blob in errors and its
 * mediaType is cross-checked against the document.
 */
export function parseManifest(data: Uint8Array | string, desc?: Partial<Descriptor>): Manifest {
  const d = label(desc?.digest);
  const doc = decode(data, 'manifest', d);
  return shaped('manifest', d, () => {
    checkMediaType(doc, desc?.mediaType);
    checkCommon(doc);
    if (doc.config === undefined) fail('config: missing');
    checkDescriptor(doc.config, 'config');
    doc.layers = checkDescriptors(doc.layers, 'layers');
    return doc as unknown as Manifest;
  });
}

/** Parses an index (or Docker manifest list). */
export function parseIndex(data: Uint8Array | string, desc?: Partial<Descriptor>): Index {
  const d = label(desc?.digest);
  const doc = decode(data, 'index', d);
  return shaped('index', d, () => {
    checkMediaType(doc, desc?.mediaType);
    checkCommon(doc);
    doc.manifests = checkDescriptors(doc.manifests, 'manifests');
    return doc as unknown as Index;
  });
}

/**
 * Parses an image config. architecture/os must be strings when present
 * (missing: ""); rootfs.diff_ids must be valid digests (missing rootfs:
 * no diff ids).
 */
export function parseImageConfig(data: Uint8Array | string, desc?: Partial<Descriptor>): ImageConfig {
  const d = label(desc?.digest);
  const doc = decode(data, 'image config', d);
  return shaped('image config', d, () => {
    for (const k of ['architecture', 'os', 'variant', 'os.version', 'created', 'author'] as const) {
      if (doc[k] !== undefined && typeof doc[k] !== 'string') fail(`${k}: expected a string`);
    }
    doc.architecture ??= '';
    doc.os ??= '';
    checkStringArray(doc['os.features'], 'os.features');
    if (doc.config !== undefined && doc.config !== null && !isObj(doc.config)) fail('config: expected an object');
    if (doc.rootfs === undefined || doc.rootfs === null) {
      doc.rootfs = { type: '', diff_ids: [] };
    } else {
      if (!isObj(doc.rootfs)) fail('rootfs: expected an object');
      const r = doc.rootfs;
      if (r.type !== undefined && typeof r.type !== 'string') fail('rootfs.type: expected a string');
      if (r.diff_ids === undefined || r.diff_ids === null) r.diff_ids = [];
      if (!Array.isArray(r.diff_ids)) fail('rootfs.diff_ids: expected an array');
      r.diff_ids.forEach((id, i) => {
        if (typeof id !== 'string' || !digests.isValid(id)) fail(`rootfs.diff_ids[${i}]: invalid digest ${JSON.stringify(id)}`);
      });
    }
    if (doc.history !== undefined && doc.history !== null && !Array.isArray(doc.history)) fail('history: expected an array');
    return doc as unknown as ImageConfig;
  });
}

/** Reads a whole (small) blob; larger than maxSize (default MAX_MANIFEST_SIZE): InvalidArgument. */
export function readBlob(ctx: Ctx, provider: Provider, desc: Descriptor, opts: { maxSize?: number } = {}): Promise<Buffer> {
  return readWholeBlob(ctx, provider, desc, opts.maxSize ?? MAX_MANIFEST_SIZE);
}

/** Reads and JSON-decodes a blob (no shape checks); InvalidArgument naming the digest on bad JSON. */
export async function readJSON<T = unknown>(ctx: Ctx, provider: Provider, desc: Descriptor, opts: { maxSize?: number } = {}): Promise<T> {
  const buf = await readBlob(ctx, provider, desc, opts);
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch (err) {
    throw invalidArgument(`blob ${desc.digest}: invalid JSON: ${(err as Error).message}`, err);
  }
}

export async function readManifest(ctx: Ctx, provider: Provider, desc: Descriptor, opts: { maxSize?: number } = {}): Promise<Manifest> {
  return parseManifest(await readBlob(ctx, provider, desc, { maxSize: opts.maxSize ?? MAX_MANIFEST_SIZE }), desc);
}

export async function readIndex(ctx: Ctx, provider: Provider, desc: Descriptor, opts: { maxSize?: number } = {}): Promise<Index> {
  return parseIndex(await readBlob(ctx, provider, desc, { maxSize: opts.maxSize ?? MAX_MANIFEST_SIZE }), desc);
}

export async function readImageConfig(ctx: Ctx, provider: Provider, desc: Descriptor, opts: { maxSize?: number } = {}): Promise<ImageConfig> {
  return parseImageConfig(await readBlob(ctx, provider, desc, { maxSize: opts.maxSize ?? MAX_CONFIG_SIZE }), desc);
}

