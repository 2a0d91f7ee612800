/**
 * containerd.services.diff.v1.Diff (containerd's services/diff/local.go).
 * Apply: decompress the layer `diff` from the daemon's content store (in the
 * caller's namespace) and apply it onto `mounts` (what a snapshotter's
 * Prepare returned), answering the uncompressed descriptor (digest = the
 * layer's diffID). Diff: write the changes from `left` to `right` as a
 * layer of `media_type` (default tar+gzip) into the content store, under
 * `ref` when given, with `labels` (+ containerd.io/uncompressed).
 */
import { notImplemented } from '../../errdefs/index.js';
import type { Applier } from '../../diff/types.js';
import type { Comparer } from '../../diff/walking.js';
import { unary, type HandlerOptions, type ServiceImpl } from '../grpc/handlers.js';
import type { diff } from '../grpc/messages.js';
import { descriptorFromProto, descriptorToProto, mountFromProto } from './convert.js';

export interface DiffServiceOptions extends HandlerOptions {
  /** The applier, or a promise of it (loaded lazily); undefined: Apply is Unimplemented. */
  applier?: Applier | Promise<Applier | undefined>;
  /** Creates layers (Diff); undefined: Diff is Unimplemented. */
  comparer?: Comparer;
}

export function diffService(opts: DiffServiceOptions = {}): ServiceImpl {
  const h: HandlerOptions = { onError: opts.onError };
  return {
    Apply: unary<diff.ApplyRequest, diff.ApplyResponse>(async (req, ctx) => {
      const applier = await opts.applier;
      if (!applier) throw notImplemented('no diff applier available');
      const applied = await applier.apply(ctx, descriptorFromProto(req.diff), (req.mounts ?? []).map(mountFromProto));
      return { applied: descriptorToProto(applied) };
    }, h),

    Diff: unary<diff.DiffRequest, diff.DiffResponse>(async (req, ctx) => {
      if (!opts.comparer) throw notImplemented('diff: creating layers is not implemented');
      const d = await opts.comparer.compare(ctx, (req.left ?? []).map(mountFromProto), (req.right ?? []).map(mountFromProto), {
        ...(req.media_type ? { mediaType: req.media_type } : {}),
        ...(req.ref ? { ref: req.ref } : {}),
        ...(req.labels && Object.keys(req.labels).length ? { labels: req.labels } : {}),
      });
      return { diff: descriptorToProto(d) };
    }, h),
  };
}
