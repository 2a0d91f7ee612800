/**
 * A small image builder for tests: tar layers (gzip, zstd, uncompressed),
 * image config, OCI or Docker schema2 manifests, and an index / manifest
 * list over several platforms. Everything is in memory (test-sized).
 */
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import tar from 'tar-stream';
import { compress as zstdCompress } from 'zstd-napi';
import type { Descriptor, Platform } from '../../src/content/types.js';
import type { Ctx } from '../../src/internal/context.js';
import type { Pusher, PushWriter } from '../../src/remotes/types.js';
import { isAlreadyExists } from '../../src/errdefs/index.js';

export const MT = {
  OCIManifest: 'application/vnd.oci.image.manifest.v1+json',
  OCIIndex: 'application/vnd.oci.image.index.v1+json',
  OCIConfig: 'application/vnd.oci.image.config.v1+json',
  OCILayer: 'application/vnd.oci.image.layer.v1.tar',
  OCILayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCILayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
} as const;

export type Compression = 'gzip' | 'zstd' | 'none';

export interface Blob {
  desc: Descriptor;
  bytes: Buffer;
}

export function sha256(b: Uint8Array | string): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

export function blob(mediaType: string, bytes: Buffer | string, extra: Partial<Descriptor> = {}): Blob {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  return { desc: { mediaType, digest: sha256(b), size: b.length, ...extra }, bytes: b };
}

export interface FileSpec { name: string; content: string | Buffer; mode?: number }

/** A deterministic uncompressed tar of files. */
export async function makeTar(files: FileSpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => { chunks.push(c as Buffer); });
  const done = new Promise<void>((resolve, reject) => { pack.on('end', resolve); pack.on('error', reject); });
  for (const f of files) {
    const content = Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content);
    await new Promise<void>((resolve, reject) => {
      pack.entry({ name: f.name, size: content.length, mode: f.mode ?? 0o644, mtime: new Date(0) }, content, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface Layer extends Blob {
  /** sha256 of the uncompressed tar. */
  diffID: string;
}

export async function makeLayer(files: FileSpec[], compression: Compression, docker = false): Promise<Layer> {
  const raw = await makeTar(files);
  let bytes: Buffer;
  let mediaType: string;
  switch (compression) {
    case 'gzip':
      bytes = gzipSync(raw);
      mediaType = docker ? MT.DockerLayerGzip : MT.OCILayerGzip;
      break;
    case 'zstd':
      bytes = zstdCompress(raw);
      mediaType = MT.OCILayerZstd; // docker has no zstd type; containerd accepts the OCI one
      break;
    default:
      bytes = raw;
      mediaType = docker ? MT.DockerLayer : MT.OCILayer;
  }
  return { ...blob(mediaType, bytes), diffID: sha256(raw) };
}

export interface Image {
  manifest: Blob;
  config: Blob;
  layers: Layer[];
  /** Children first, manifest last: the push order. */
  blobs: Blob[];
  platform: Platform;
}

export interface ImageSpec {
  format?: 'oci' | 'docker';
  platform?: Platform;
  layers: Array<{ files: FileSpec[]; compression: Compression }>;
}

export async function makeImage(spec: ImageSpec): Promise<Image> {
  const docker = spec.format === 'docker';
  const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
  const layers: Layer[] = [];
  for (const l of spec.layers) layers.push(await makeLayer(l.files, l.compression, docker));
  const config = blob(docker ? MT.DockerConfig : MT.OCIConfig, JSON.stringify({
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) },
    history: layers.map(() => ({ created_by: 'dist test' })),
  }));
  const manifest = blob(docker ? MT.DockerManifest : MT.OCIManifest, JSON.stringify({
    schemaVersion: 2,
    mediaType: docker ? MT.DockerManifest : MT.OCIManifest,
    config: config.desc,
    layers: layers.map((l) => l.desc),
  }));
  return { manifest, config, layers, blobs: [config, ...layers, manifest], platform };
}

export interface IndexImage {
  index: Blob;
  images: Image[];
  /** Every blob, children first, the index last. */
  blobs: Blob[];
}

export function makeIndex(images: Image[], format: 'oci' | 'docker' = 'oci'): IndexImage {
  const docker = format === 'docker';
  const index = blob(docker ? MT.DockerManifestList : MT.OCIIndex, JSON.stringify({
    schemaVersion: 2,
    mediaType: docker ? MT.DockerManifestList : MT.OCIIndex,
    manifests: images.map((i) => ({ ...i.manifest.desc, platform: i.platform })),
  }));
  const seen = new Set<string>();
  const blobs: Blob[] = [];
  for (const b of [...images.flatMap((i) => i.blobs), index]) {
    if (seen.has(b.desc.digest)) continue;
    seen.add(b.desc.digest);
    blobs.push(b);
  }
  return { index, images, blobs };
}

/** Two-platform (amd64 + arm64) OCI index with gzip, zstd and uncompressed layers. */
export async function makeMultiPlatform(format: 'oci' | 'docker' = 'oci'): Promise<IndexImage> {
  const comps: Compression[] = format === 'docker' ? ['gzip', 'none'] : ['gzip', 'zstd', 'none'];
  const mk = (arch: string) => makeImage({
    format,
    platform: { os: 'linux', architecture: arch },
    layers: comps.map((c, i) => ({ compression: c, files: [{ name: `etc/${arch}-${i}.txt`, content: `${arch} layer ${i} ${c}\n`.repeat(50) }] })),
  });
  return makeIndex([await mk('amd64'), await mk('arm64')], format);
}

/** A Pusher that may take dist's PushOpts (DockerPusher does). */
export interface PusherWithOpts extends Pusher {
  push(ctx: Ctx, desc: Descriptor, opts?: { byDigest?: boolean }): Promise<PushWriter>;
}

const MANIFEST_TYPES = new Set<string>([MT.OCIManifest, MT.OCIIndex, MT.DockerManifest, MT.DockerManifestList]);

/**
 * Pushes blobs in order with a Pusher (AlreadyExists is fine). Manifests
 * other than the last blob (the root) go by digest. Returns the digests
 * that were actually written. Writes in chunks of `chunk` bytes.
 */
export async function pushBlobs(ctx: Ctx, pusher: PusherWithOpts, blobs: Blob[], chunk = 64 * 1024): Promise<string[]> {
  const written: string[] = [];
  for (const [i, b] of blobs.entries()) {
    let w;
    try {
      const byDigest = i < blobs.length - 1 && MANIFEST_TYPES.has(b.desc.mediaType);
      w = await pusher.push(ctx, b.desc, { byDigest });
    } catch (err) {
      if (isAlreadyExists(err)) continue;
      throw err;
    }
    for (let off = 0; off < b.bytes.length; off += chunk) await w.write(b.bytes.subarray(off, off + chunk));
    await w.commit();
    written.push(b.desc.digest);
  }
  return written;
}
