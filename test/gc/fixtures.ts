/** Shared fixtures for the GC tests: a fresh embedded root, blobs, small images. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeBlob } from '../../src/content/helpers.js';
import type { Descriptor } from '../../src/content/types.js';
import { isNotFound } from '../../src/errdefs/index.js';
import type { Ctx } from '../../src/internal/context.js';
import { openEmbedded, type Embedded, type EmbeddedOptions } from '../../src/services/embedded.js';
import { tempDir } from '../util/tmp.js';

export const MT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MT_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MT_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MT_LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** Runs fn on services opened on a fresh root; closes and removes it afterwards. */
export async function withRoot(fn: (svc: Embedded, root: string) => Promise<void>, opts: EmbeddedOptions = { gc: 'off' }): Promise<void> {
  const { dir, cleanup } = await tempDir('gc-');
  const svc = await openEmbedded(dir, opts);
  try {
    await fn(svc, dir);
  } finally {
    await svc.close();
    await cleanup();
  }
}

export function sha256(b: Uint8Array | string): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

let seq = 0;

/** Writes bytes (random when omitted) as a blob; returns its descriptor. */
export async function put(svc: Embedded, ctx: Ctx, data: Buffer | string = randomBytes(64 + (seq % 50)), labels?: Record<string, string>, mediaType = MT_LAYER): Promise<Descriptor> {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const desc = { mediaType, digest: sha256(buf), size: buf.length };
  await writeBlob(ctx, svc.content, `put-${process.pid}-${++seq}`, [buf], desc, labels ? { labels } : undefined);
  return desc;
}

export interface TestImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  /** Every blob of the image. */
  all: Descriptor[];
}

/**
 * Writes config, layers and a manifest whose gc.ref.content labels point at
 * them (as a fetch does); `extraManifestLabels` are added to the manifest.
 */
export async function putImage(svc: Embedded, ctx: Ctx, layers = 2, extraManifestLabels: Record<string, string> = {}): Promise<TestImage> {
  const config = await put(svc, ctx, JSON.stringify({ architecture: 'amd64', os: 'linux', n: randomBytes(8).toString('hex') }), undefined, MT_CONFIG);
  const ls: Descriptor[] = [];
  for (let i = 0; i < layers; i++) ls.push(await put(svc, ctx, randomBytes(100 + i)));
  const body = JSON.stringify({ schemaVersion: 2, mediaType: MT_MANIFEST, config, layers: ls });
  const labels: Record<string, string> = { 'containerd.io/gc.ref.content.config': config.digest, ...extraManifestLabels };
  ls.forEach((l, i) => (labels[`containerd.io/gc.ref.content.l.${i}`] = l.digest));
  const manifest = await put(svc, ctx, body, labels, MT_MANIFEST);
  return { manifest, config, layers: ls, all: [manifest, config, ...ls] };
}

export function blobOnDisk(svc: Embedded, dgst: string): boolean {
  return existsSync(svc.content.backend.blobPath(dgst));
}

export async function hasRecord(svc: Embedded, ctx: Ctx, dgst: string): Promise<boolean> {
  try {
    await svc.content.info(ctx, dgst);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** Asserts each blob is recorded in ctx's namespace and on disk (present) or neither (absent). */
export async function assertBlobs(svc: Embedded, ctx: Ctx, descs: Descriptor[], present: boolean, what = ''): Promise<void> {
  for (const d of descs) {
    assert.equal(await hasRecord(svc, ctx, d.digest), present, `${what} record of ${d.digest} ${present ? 'kept' : 'removed'}`);
    assert.equal(blobOnDisk(svc, d.digest), present, `${what} blob file of ${d.digest} ${present ? 'kept' : 'removed'}`);
  }
}

/** RFC 3339 (seconds) of now + ms. */
export function rfc3339In(ms: number): string {
  return new Date(Date.now() + ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Polls cond until true or the timeout passes. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
