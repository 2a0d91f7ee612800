/**
 * archive: containerd's archive package — applying OCI/Docker layer tars to
 * directories (apply.ts), layer compression (compression.ts) and the tar
 * reader underneath (tar.ts).
 */
export { apply, applyLayer } from './apply.js';
export type { ApplyLayerOptions, ApplyLayerResult, ApplyOptions, ApplyResult, ApplyStats } from './apply.js';
export {
  compress,
  compressionOfMediaType,
  decompress,
  detectCompression,
  extension,
  gzipBackend,
  MediaTypes,
  zstdBackend,
} from './compression.js';
export type { Compression, CompressOpts, DecompressOpts, GzipBackend, LayerSource, ZstdBackend } from './compression.js';
export { TarReader } from './tar.js';
export type { TarEvent, TarHeader, TarTime } from './tar.js';
