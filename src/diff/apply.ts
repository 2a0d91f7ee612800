/**
 * diff/apply: applies a (compressed) layer onto the mounts a snapshotter
 * returned (containerd's diff.Applier), returning the uncompressed
 * descriptor whose digest is the layer's diffID.
 *
 * Fast paths, as containerd's Linux applier: a single `bind` mount is applied
 * straight into its source directory; a single `overlay` mount with an
 * upperdir is applied into the upperdir, writing overlay whiteouts (0/0 char
 * devices, trusted.overlay.opaque). As containerd 1.6's upperdir path, names
 * are resolved in the upperdir alone (a lower layer's symlink is not followed,
 * a hard link to a lower file fails) and the lowerdirs only lend their
 * attributes to parents the layer creates implicitly; so an upperdir does not
 * depend on its lowers' contents and layers can be applied side by side.
 * Anything else is mounted on a temporary directory.
 */
import { applyLayer } from '../archive/apply.js';
import type { LayerSource } from '../archive/compression.js';
import type { Descriptor } from '../content/types.js';
import { withTempMount, type Mount } from '../mount/index.js';

export const MediaTypeLayerUncompressed = 'application/vnd.oci.image.layer.v1.tar';

export interface ApplyOptions {
  /** Media type of the layer (decides decompression; magic bytes are checked too). */
  mediaType: string;
  /** When set, the computed diffID must equal it (FailedPrecondition otherwise). */
  expectedDiffID?: string;
  signal?: AbortSignal;
}

/** Where a layer can be written without mounting: { root, overlay parents } or undefined. */
export function directTarget(mounts: Mount[]): { root: string; parents?: string[]; overlay: boolean } | undefined {
  if (mounts.length !== 1) return undefined;
  const m = mounts[0];
  if (m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind')) {
    if (m.options.includes('ro')) return undefined;
    return { root: m.source, overlay: false };
  }
  if (m.type === 'overlay') {
    let upper: string | undefined;
    let lower: string[] = [];
    for (const o of m.options) {
      if (o.startsWith('upperdir=')) upper = o.slice('upperdir='.length);
      else if (o.startsWith('lowerdir=')) lower = o.slice('lowerdir='.length).split(':');
    }
    if (upper) return { root: upper, parents: lower, overlay: true };
  }
  return undefined;
}

export async function applyToMounts(mounts: Mount[], layer: LayerSource, opts: ApplyOptions): Promise<Descriptor> {
  const direct = directTarget(mounts);
  const run = (root: string, parents?: string[], overlay = false) =>
    applyLayer(root, layer, {
      mediaType: opts.mediaType,
      expectedDiffID: opts.expectedDiffID,
      signal: opts.signal,
      overlayWhiteouts: overlay,
      parents,
      lowerLookups: false,
    });
  const r = direct ? await run(direct.root, direct.parents, direct.overlay) : await withTempMount(mounts, (dir) => run(dir));
  return { mediaType: MediaTypeLayerUncompressed, digest: r.diffID, size: r.size };
}
