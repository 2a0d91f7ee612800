/**
 * client/unpack: containerd's unpacker — applies an image's layers into a
 * snapshotter, one committed snapshot per chain ID. A layer whose chain ID
 * already exists is not applied again. Labels as containerd sets them:
 * `containerd.io/uncompressed=<diffID>` on each layer blob and
 * `containerd.io/gc.ref.snapshot.<snapshotter>=<top chain ID>` on the config.
 *
 * Content is read through the given Provider, so a pull can pass one that
 * waits for blobs still downloading: a layer starts unpacking as soon as it
 * and its parent snapshot are ready.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { applyToMounts } from '../diff/apply.js';
import type { Descriptor, Provider } from '../content/types.js';
import { failedPrecondition, invalidArgument, isAlreadyExists, isNotFound } from '../errdefs/index.js';
import { chainIDs } from '../images/chainid.js';
import { manifest as imageManifest } from '../images/helpers.js';
import { readImageConfig } from '../images/manifest.js';
import type { Ctx } from '../internal/context.js';
import type { MatchComparer } from '../platforms/index.js';
import type { Event } from '../progress/index.js';
import { withLease, type Services } from '../services/types.js';
import type { Snapshotter } from '../snapshots/types.js';

export interface UnpackOptions {
  snapshotter: string;
  platform: MatchComparer;
  onProgress?: (ev: Event) => void;
  /** Read content through this provider (default: the content store). */
  provider?: Provider;
  /**
   * The bytes of a layer while it downloads (a pull's TeeingIngester), to
   * unpack the first layer during its download on this machine. Only valid
   * when layers are applied locally (embedded services).
   */
  claimStream?: (desc: Descriptor) => Readable | undefined;
}

export interface UnpackResult {
  chainID: string;
  /** Layers applied now (the others existed already). */
  applied: number;
  layers: number;
}

export const LABEL_UNCOMPRESSED = 'containerd.io/uncompressed';

export async function unpackImage(svc: Services, ctx: Ctx, target: Descriptor, opts: UnpackOptions): Promise<UnpackResult> {
  return withLease(svc, ctx, async (lctx) => {
    const provider = opts.provider ?? svc.content;
    const progress = opts.onProgress ?? (() => undefined);
    const m = await imageManifest(lctx, provider, target, opts.platform);
    const sn = await svc.snapshotter(opts.snapshotter);
    // The first layer needs no parent: it can go into its snapshot while it downloads.
    const early = m.layers.length > 0 && opts.claimStream ? startEarly(lctx, sn, m.layers[0], opts.claimStream) : undefined;
    const config = await readImageConfig(lctx, provider, m.config).catch(async (err) => {
      await early?.discard();
      throw err;
    });
    const diffIDs = config.rootfs?.diff_ids ?? [];
    if (diffIDs.length !== m.layers.length) {
      throw invalidArgument(`mismatched image rootfs and manifest layers: ${diffIDs.length} diff ids, ${m.layers.length} layers`);
    }
    const chain = chainIDs(diffIDs);
    let applied = 0;
    let parent: string | undefined;
    for (let i = 0; i < m.layers.length; i++) {
      const layer = m.layers[i];
      const row = `unpack-${layer.digest}`;
      const exists = await sn.stat(lctx, chain[i]).then(() => true, (err) => {
        if (isNotFound(err)) return false;
        throw err;
      });
      if (exists) {
        if (i === 0) await early?.discard();
        progress({ ref: row, state: 'exists' });
        parent = chain[i];
        continue;
      }
      if (i === 0 && early) {
        progress({ ref: row, state: 'unpacking', total: layer.size });
        if (await early.finish(diffIDs[0], chain[0], provider)) {
          await svc.content.update(lctx, { digest: layer.digest, labels: { [LABEL_UNCOMPRESSED]: diffIDs[0] } }, [`labels.${LABEL_UNCOMPRESSED}`]);
          progress({ ref: row, state: 'done', offset: layer.size, total: layer.size });
          applied++;
          parent = chain[0];
          continue;
        }
        // The live copy broke (or the blob was there already): apply the committed blob.
      }
      // Wait for the blob (a pull may still be downloading it).
      await (await provider.readerAt(lctx, layer)).close();
      progress({ ref: row, state: 'unpacking', total: layer.size });
      const key = `extract-${randomBytes(6).toString('base64url')} ${chain[i]}`;
      const mounts = await sn.prepare(lctx, key, parent);
      try {
        await svc.diff.apply(lctx, layer, mounts, { expectedDiffID: diffIDs[i] });
        await sn.commit(lctx, chain[i], key);
      } catch (err) {
        await sn.remove(lctx, key).catch(() => undefined);
        if (!isAlreadyExists(err)) throw err; // another unpack committed the same chain meanwhile
      }
      await svc.content.update(lctx, { digest: layer.digest, labels: { [LABEL_UNCOMPRESSED]: diffIDs[i] } }, [`labels.${LABEL_UNCOMPRESSED}`]);
      progress({ ref: row, state: 'done', offset: layer.size, total: layer.size });
      applied++;
      parent = chain[i];
    }
    const top = chain[chain.length - 1] ?? '';
    if (top) {
      const key = `containerd.io/gc.ref.snapshot.${opts.snapshotter}`;
      await svc.content.update(lctx, { digest: m.config.digest, labels: { [key]: top } }, [`labels.${key}`]);
    }
    return { chainID: top, applied, layers: m.layers.length };
  });
}

/**
 * Starts applying the first layer from its live download into a new active
 * snapshot. finish() waits for the apply and for the blob's own commit
 * (digest verified), checks the diffID and commits the snapshot; it answers
 * false when the live copy was not available or broke (nothing left behind).
 */
function startEarly(ctx: Ctx, sn: Snapshotter, layer: Descriptor, claim: (d: Descriptor) => Readable | undefined) {
  const key = `extract-${randomBytes(6).toString('base64url')} early`;
  let prepared = false;
  const run = (async () => {
    const stream = claim(layer);
    if (!stream) return undefined;
    const mounts = await sn.prepare(ctx, key);
    prepared = true;
    return applyToMounts(mounts, stream, { mediaType: layer.mediaType, signal: ctx.signal });
  })();
  run.catch(() => undefined);
  const discard = async () => {
    await run.catch(() => undefined);
    if (prepared) await sn.remove(ctx, key).catch(() => undefined);
  };
  return {
    discard,
    async finish(diffID: string, chainID: string, provider: Provider): Promise<boolean> {
      let got: Descriptor | undefined;
      try {
        got = await run;
      } catch {
        got = undefined;
      }
      if (!got) {
        await discard();
        return false;
      }
      try {
        await (await provider.readerAt(ctx, layer)).close(); // the blob committed: its digest was right
        if (got.digest !== diffID) throw failedPrecondition(`layer ${layer.digest}: uncompressed digest ${got.digest} does not match diffID ${diffID}`);
        await sn.commit(ctx, chainID, key);
        return true;
      } catch (err) {
        await discard();
        if (isAlreadyExists(err)) return false;
        throw err;
      }
    },
  };
}
