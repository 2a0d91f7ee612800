/**
 * client/rootfs: a flattened root filesystem in a plain directory, no
 * snapshotter and no mounts (for users who cannot mount): the layers are
 * applied in order straight into dir, whiteouts removing what lower layers
 * wrote, each layer's diffID checked.
 */
import { applyLayer } from '../archive/apply.js';
import type { Descriptor } from '../content/types.js';
import { invalidArgument } from '../errdefs/index.js';
import { chainID } from '../images/chainid.js';
import { manifest as imageManifest } from '../images/helpers.js';
import { readImageConfig } from '../images/manifest.js';
import type { Ctx } from '../internal/context.js';
import type { MatchComparer } from '../platforms/index.js';
import type { Services } from '../services/types.js';
import { ensureDir } from '../internal/dirs.js';

export async function exportRootfs(svc: Services, ctx: Ctx, target: Descriptor, dir: string, opts: { platform: MatchComparer }): Promise<{ chainID: string; layers: number }> {
  const m = await imageManifest(ctx, svc.content, target, opts.platform);
  const config = await readImageConfig(ctx, svc.content, m.config);
  const diffIDs = config.rootfs?.diff_ids ?? [];
  if (diffIDs.length !== m.layers.length) throw invalidArgument(`mismatched image rootfs and manifest layers in ${target.digest}`);
  await ensureDir(dir, 0o755);
  for (let i = 0; i < m.layers.length; i++) {
    const ra = await svc.content.readerAt(ctx, m.layers[i]);
    try {
      await applyLayer(dir, ra.path ? { path: ra.path } : ra.stream({ signal: ctx.signal }), { mediaType: m.layers[i].mediaType, expectedDiffID: diffIDs[i], signal: ctx.signal });
    } finally {
      await ra.close();
    }
  }
  return { chainID: chainID(diffIDs), layers: m.layers.length };
}
