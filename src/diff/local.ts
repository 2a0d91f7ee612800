/** diff/local: an Applier that reads layers from a content Provider and applies them on this machine. */
import type { Descriptor, Provider } from '../content/types.js';
import type { Ctx } from '../internal/context.js';
import type { Mount } from '../mount/types.js';
import { applyToMounts } from './apply.js';
import type { Applier } from './types.js';

export class LocalApplier implements Applier {
  constructor(private readonly content: Provider) {}

  async apply(ctx: Ctx, desc: Descriptor, mounts: Mount[], opts: { expectedDiffID?: string } = {}): Promise<Descriptor> {
    const ra = await this.content.readerAt(ctx, desc);
    try {
      // a local file is handed to the decompressor as is (no copy through this process)
      const src = ra.path ? { path: ra.path } : ra.stream({ signal: ctx.signal });
      return await applyToMounts(mounts, src, { mediaType: desc.mediaType, expectedDiffID: opts.expectedDiffID, signal: ctx.signal });
    } finally {
      await ra.close();
    }
  }
}
