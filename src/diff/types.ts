/**
 * diff: applying layers onto snapshot mounts (containerd's diff.Applier).
 * Local: src/diff/local.ts reads the layer from a content Provider; remote:
 * the Diff service's Apply over gRPC (the daemon applies).
 */
import type { Descriptor } from '../content/types.js';
import type { Ctx } from '../internal/context.js';
import type { Mount } from '../mount/types.js';

export interface Applier {
  /**
   * Applies the layer `desc` (compressed or not) onto mounts and returns the
   * descriptor of the uncompressed tar (digest = diffID). With
   * opts.expectedDiffID, a mismatch fails (FailedPrecondition).
   */
  apply(ctx: Ctx, desc: Descriptor, mounts: Mount[], opts?: { expectedDiffID?: string }): Promise<Descriptor>;
}
