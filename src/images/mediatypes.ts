/**
 * Media types of image content (OCI image spec and Docker schema 2) and the
 * predicates containerd uses to classify them.
 */
import { notImplemented } from '../errdefs/index.js';

// OCI image spec v1.
export const MediaTypeImageManifest = 'application/vnd.oci.image.manifest.v1+json';
export const MediaTypeImageIndex = 'application/vnd.oci.image.index.v1+json';
export const MediaTypeImageConfig = 'application/vnd.oci.image.config.v1+json';
export const MediaTypeImageLayer = 'application/vnd.oci.image.layer.v1.tar';
export const MediaTypeImageLayerGzip = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MediaTypeImageLayerZstd = 'application/vnd.oci.image.layer.v1.tar+zstd';
export const MediaTypeImageLayerNonDistributable = 'application/vnd.oci.image.layer.nondistributable.v1.tar';
export const MediaTypeImageLayerNonDistributableGzip = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';
export const MediaTypeImageLayerNonDistributableZstd = 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd';
export const MediaTypeImageLayerEncrypted = MediaTypeImageLayer + '+encrypted';
export const MediaTypeImageLayerGzipEncrypted = MediaTypeImageLayerGzip + '+encrypted';

// Docker image manifest v2 schema 2 (and the legacy schema 1).
export const MediaTypeDockerSchema2Layer = 'application/vnd.docker.image.rootfs.diff.tar';
export const MediaTypeDockerSchema2LayerForeign = 'application/vnd.docker.image.rootfs.foreign.diff.tar';
export const MediaTypeDockerSchema2LayerGzip = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
export const MediaTypeDockerSchema2LayerForeignGzip = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
export const MediaTypeDockerSchema2Config = 'application/vnd.docker.container.image.v1+json';
export const MediaTypeDockerSchema2Manifest = 'application/vnd.docker.distribution.manifest.v2+json';
export const MediaTypeDockerSchema2ManifestList = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MediaTypeDockerSchema1Manifest = 'application/vnd.docker.distribution.manifest.v1+prettyjws';

// containerd checkpoint content (childless; the configs count as "known configs").
export const MediaTypeContainerd1Checkpoint = 'application/vnd.containerd.container.criu.checkpoint.criu.tar';
export const MediaTypeContainerd1CheckpointConfig = 'application/vnd.containerd.container.checkpoint.config.v1+proto';

/** Descriptor annotations. */
export const AnnotationRefName = 'org.opencontainers.image.ref.name';
export const AnnotationImageName = 'io.containerd.image.name';

/** Splits "base+ext1+ext2" into the base and its sorted extensions. */
export function parseMediaType(mt: string): [string, string[]] {
  if (mt === '') return ['', []];
  const [base, ...ext] = mt.split('+');
  return [base, ext.sort()];
}

/** OCI or Docker schema 2 manifest (schema 1 is not a manifest here). */
export function isManifest(mt: string): boolean {
  return mt === MediaTypeImageManifest || mt === MediaTypeDockerSchema2Manifest;
}

/** OCI index or Docker manifest list. */
export function isIndex(mt: string): boolean {
  return mt === MediaTypeImageIndex || mt === MediaTypeDockerSchema2ManifestList;
}

/** OCI or Docker image config (not checkpoint configs: see isKnownConfig). */
export function isConfig(mt: string): boolean {
  return mt === MediaTypeImageConfig || mt === MediaTypeDockerSchema2Config;
}

/** An image config or a containerd checkpoint config. */
export function isKnownConfig(mt: string): boolean {
  return isConfig(mt) || mt === MediaTypeContainerd1Checkpoint || mt === MediaTypeContainerd1CheckpointConfig;
}

/** Any OCI layer type, or a Docker layer (with any "+suffix"). */
export function isLayer(mt: string): boolean {
  if (mt.startsWith('application/vnd.oci.image.layer.')) return true;
  switch (parseMediaType(mt)[0]) {
    case MediaTypeDockerSchema2Layer:
    case MediaTypeDockerSchema2LayerGzip:
    case MediaTypeDockerSchema2LayerForeign:
    case MediaTypeDockerSchema2LayerForeignGzip:
      return true;
  }
  return false;
}

export function isNonDistributable(mt: string): boolean {
  return mt.startsWith('application/vnd.oci.image.layer.nondistributable.') || mt.startsWith('application/vnd.docker.image.rootfs.foreign.');
}

export function isDockerType(mt: string): boolean {
  return mt.startsWith('application/vnd.docker.');
}

/**
 * Compression of a layer diff: "gzip", "zstd", "" (uncompressed, or wrapped
 * e.g. "+encrypted"), or "unknown" for Docker's plain tar types, which are
 * sometimes compressed anyway (sniff the magic). NotImplemented when mt is
 * not a layer diff (containerd's DiffCompression).
 */
export type Compression = 'gzip' | 'zstd' | 'unknown' | '';

export function compressionOf(mt: string): Compression {
  const [base, ext] = parseMediaType(mt);
  switch (base) {
    case MediaTypeDockerSchema2Layer:
    case MediaTypeDockerSchema2LayerForeign:
      return ext.length > 0 ? '' : 'unknown';
    case MediaTypeDockerSchema2LayerGzip:
    case MediaTypeDockerSchema2LayerForeignGzip:
      return ext.length > 0 ? '' : 'gzip';
    case MediaTypeImageLayer:
    case MediaTypeImageLayerNonDistributable: {
      const last = ext[ext.length - 1];
      return last === 'gzip' || last === 'zstd' ? last : '';
    }
    default:
      throw notImplemented(`unrecognised mediatype ${mt}`);
  }
}
