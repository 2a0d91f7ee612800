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
 *
 * overlayfs, applied on this machine: layers go side by side. An upperdir
 * does not depend on its lowers' contents (names resolve in the upperdir
 * alone, as containerd's upperdir path does), so layer i is applied into a
 * parentless staging snapshot while layer i-1 is still unpacking; once i-1 is
 * committed, layer i's real snapshot is prepared on it, the staged entries are
 * renamed into its upperdir and it is committed. Only a parent the layer
 * creates implicitly needs the lowers (their attributes): the apply waits for
 * them there. One staged apply runs beside the layer in front.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rename } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { applyLayer, runningInUserNS } from '../archive/apply.js';
import { applyToMounts, directTarget } from '../diff/apply.js';
import { LocalApplier } from '../diff/local.js';
import type { Descriptor, Provider } from '../content/types.js';
import { failedPrecondition, invalidArgument, isAlreadyExists, isCanceled, isNotFound } from '../errdefs/index.js';
import { LABEL_REF_SNAPSHOT } from '../gc/index.js';
import { chainIDs } from '../images/chainid.js';
import { manifest as imageManifest } from '../images/helpers.js';
import { readImageConfig } from '../images/manifest.js';
import type { Ctx } from '../internal/context.js';
import { createLimiter } from '../internal/limiter.js';
import { lgetxattr, lsetxattr } from '../internal/sys.js';
import type { Mount } from '../mount/types.js';
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
   * when layers are applied locally (embedded services). Resolves once the
   * download started, or with undefined when it will not come live.
   */
  claimStream?: (desc: Descriptor) => Promise<Readable | undefined>;
  /**
   * Apply overlay layers side by side through staging snapshots (default:
   * when layers are applied on this machine into `overlayfs`).
   */
  parallel?: boolean;
}

export interface UnpackResult {
  chainID: string;
  /** Layers applied now (the others existed already). */
  applied: number;
  layers: number;
}

export const LABEL_UNCOMPRESSED = 'containerd.io/uncompressed';

const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

export async function unpackImage(svc: Services, ctx: Ctx, target: Descriptor, opts: UnpackOptions): Promise<UnpackResult> {
  return withLease(svc, ctx, async (lctx) => {
    const provider = opts.provider ?? svc.content;
    const progress = opts.onProgress ?? (() => undefined);
    // the snapshotter opens (its database, a mount probe) while the manifest is read
    const opening = svc.snapshotter(opts.snapshotter);
    opening.catch(() => undefined); // a failing manifest read wins; the rejection is not lost
    const m = await imageManifest(lctx, provider, target, opts.platform);
    const sn = await opening;
    // The first layer needs no parent: it can go into its snapshot while it downloads.
    const early = m.layers.length > 0 && opts.claimStream ? startEarly(lctx, sn, m.layers[0], opts.claimStream) : undefined;
    /** p, dropping the early apply if it fails (before the layer tasks own it). */
    const orDiscard = <T>(p: Promise<T>): Promise<T> =>
      p.catch(async (err: unknown) => {
        await early?.discard();
        throw err;
      });
    const config = await orDiscard(readImageConfig(lctx, provider, m.config));
    const diffIDs = config.rootfs?.diff_ids ?? [];
    if (diffIDs.length !== m.layers.length) {
      await early?.discard();
      throw invalidArgument(`mismatched image rootfs and manifest layers: ${diffIDs.length} diff ids, ${m.layers.length} layers`);
    }
    const chain = chainIDs(diffIDs);
    const exists = (i: number) =>
      sn.stat(lctx, chain[i]).then(
        () => true,
        (err) => {
          if (isNotFound(err)) return false;
          throw err;
        },
      );
    const rowOf = (i: number) => `unpack-${m.layers[i].digest}`;
    const labelLayer = (i: number) =>
      svc.content.update(lctx, { digest: m.layers[i].digest, labels: { [LABEL_UNCOMPRESSED]: diffIDs[i] } }, [`labels.${LABEL_UNCOMPRESSED}`]);

    // Layers already unpacked: a chain ID names the whole stack below it.
    let k = 0;
    while (k < m.layers.length && (await orDiscard(exists(k)))) {
      if (k === 0) await early?.discard();
      progress({ ref: rowOf(k), state: 'exists' });
      k++;
    }

    const ac = new AbortController();
    const signal = lctx.signal ? AbortSignal.any([lctx.signal, ac.signal]) : ac.signal;
    const c2: Ctx = { ...lctx, signal };
    const staged = (opts.parallel ?? (svc.diff instanceof LocalApplier && opts.snapshotter === 'overlayfs')) && !runningInUserNS();
    const slot = createLimiter(1);
    let applied = 0;
    /** Layer i is in its committed snapshot: containerd's label on the blob, progress. */
    const finished = async (i: number) => {
      await labelLayer(i);
      progress({ ref: rowOf(i), state: 'done', offset: m.layers[i].size, total: m.layers[i].size });
      applied++;
    };

    // The first layer to apply is on the critical path (every later one waits
    // for its commit): staged layers start once its apply has, not before.
    // (Should its blob still be downloading without a live copy, they wait for
    // that download too; a pull normally applies the first layer live.)
    let headStarted: () => void = () => undefined;
    const headStart = new Promise<void>((r) => (headStarted = r));

    /** Layer i into its snapshot on chain[i-1] (committed): the early copy, or the Diff service. */
    const direct = async (i: number): Promise<void> => {
      try {
        await directLayer(i);
      } finally {
        headStarted();
      }
    };
    const directLayer = async (i: number): Promise<void> => {
      const layer = m.layers[i];
      if (await exists(i)) {
        if (i === 0) await early?.discard();
        progress({ ref: rowOf(i), state: 'exists' });
        return;
      }
      if (i === 0 && early) {
        progress({ ref: rowOf(i), state: 'unpacking', total: layer.size });
        headStarted(); // it has been applying from the download since before
        if (await early.finish(diffIDs[0], chain[0], provider)) {
          await finished(0);
          return;
        }
        // The live copy broke (or the blob was there already): apply the committed blob.
      }
      // Wait for the blob (a pull may still be downloading it).
      await (await provider.readerAt(c2, layer)).close();
      progress({ ref: rowOf(i), state: 'unpacking', total: layer.size });
      const key = `extract-${randomBytes(6).toString('base64url')} ${chain[i]}`;
      const mounts = await sn.prepare(c2, key, i > 0 ? chain[i - 1] : undefined);
      try {
        const applying = svc.diff.apply(c2, layer, mounts, { expectedDiffID: diffIDs[i] });
        headStarted();
        await applying;
        await sn.commit(c2, chain[i], key);
      } catch (err) {
        await sn.remove(lctx, key).catch(() => undefined);
        if (!isAlreadyExists(err)) throw err; // another unpack committed the same chain meanwhile
      }
      await finished(i);
    };

    /** Layer i applied into a staging snapshot while `below` (layers < i) completes; then moved and committed. */
    const stagedLayer = async (i: number, below: Promise<void>): Promise<void> => {
      const layer = m.layers[i];
      const rand = randomBytes(6).toString('base64url');
      const stageKey = `extract-${rand} staged ${chain[i]}`;
      const key = `extract-${rand} ${chain[i]}`;
      let finalMounts: Promise<Mount[]> | undefined;
      const final = () => (finalMounts ??= below.then(() => sn.prepare(c2, key, chain[i - 1])));
      let stagedDir: string | undefined;
      let stagedCreated = false;
      try {
        // Slots are asked for in layer order (all wait for the same headStart,
        // then ask synchronously): an apply waiting on lower layers never holds
        // a slot one of them needs.
        await headStart;
        const present = await slot(async (release) => {
          if (await exists(i)) return true;
          const ra = await provider.readerAt(c2, layer); // waits for the download
          try {
            progress({ ref: rowOf(i), state: 'unpacking', total: layer.size });
            const t = directTarget(await sn.prepare(c2, stageKey));
            stagedCreated = true;
            if (!t || t.overlay) throw failedPrecondition(`unpack: staging snapshot for ${chain[i]} is not a plain directory`);
            stagedDir = t.root;
            await applyLayer(t.root, ra.path ? { path: ra.path } : ra.stream({ signal }), {
              mediaType: layer.mediaType,
              expectedDiffID: diffIDs[i],
              signal,
              overlayWhiteouts: true,
              lowerLookups: false,
              // waiting for the layers below holds no slot: the next layer may stream meanwhile
              lazyParents: async () => {
                release();
                return directTarget(await final())?.parents ?? [];
              },
            });
            return false;
          } finally {
            await ra.close();
          }
        }, signal);
        if (present) {
          await below;
          progress({ ref: rowOf(i), state: 'exists' });
          return;
        }
        const t = directTarget(await final());
        if (!t?.overlay) throw failedPrecondition(`unpack: snapshotter ${opts.snapshotter} gave no overlay upperdir for ${chain[i]}`);
        await moveEntries(stagedDir!, t.root);
        await sn.commit(c2, chain[i], key);
      } catch (err) {
        if (finalMounts) await finalMounts.then(() => sn.remove(lctx, key)).catch(() => undefined);
        if (!isAlreadyExists(err)) throw err; // another unpack committed the same chain meanwhile
      } finally {
        if (stagedCreated) await sn.remove(lctx, stageKey).catch(() => undefined);
      }
      await finished(i);
    };

    const tasks: Promise<void>[] = [];
    for (let i = k; i < m.layers.length; i++) {
      const below = tasks[tasks.length - 1] ?? Promise.resolve();
      const t = staged && i > k ? stagedLayer(i, below) : below.then(() => direct(i));
      t.catch((err) => ac.abort(err));
      tasks.push(t);
    }
    const settled = await Promise.allSettled(tasks);
    const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (failures.length) {
      if (k === 0) await early?.discard();
      throw failures.find((e) => !isCanceled(e)) ?? failures[0];
    }
    const top = chain[chain.length - 1] ?? '';
    if (top) {
      const key = LABEL_REF_SNAPSHOT + opts.snapshotter;
      await svc.content.update(lctx, { digest: m.config.digest, labels: { [key]: top } }, [`labels.${key}`]);
    }
    return { chainID: top, applied, layers: m.layers.length };
  });
}

/**
 * Renames every entry of a staging upper directory into the (new, empty)
 * upperdir, and its opaque marker (a layer's top-level `.wh..wh..opq`).
 * Names are moved as bytes; same file system, so nothing is copied.
 */
async function moveEntries(from: string, to: string): Promise<void> {
  const f = Buffer.from(`${from}/`);
  const t = Buffer.from(`${to}/`);
  for (const name of await readdir(Buffer.from(from), { encoding: 'buffer' })) {
    await rename(Buffer.concat([f, name]), Buffer.concat([t, name]));
  }
  const opaque = await lgetxattr(from, OVERLAY_OPAQUE_XATTR).catch(() => undefined);
  if (opaque) await lsetxattr(to, OVERLAY_OPAQUE_XATTR, opaque);
}

/**
 * Starts applying the first layer from its live download into a new active
 * snapshot. finish() waits for the apply and for the blob's own commit
 * (digest verified), checks the diffID and commits the snapshot; it answers
 * false when the live copy was not available or broke (nothing left behind).
 */
function startEarly(ctx: Ctx, sn: Snapshotter, layer: Descriptor, claim: (d: Descriptor) => Promise<Readable | undefined>) {
  const key = `extract-${randomBytes(6).toString('base64url')} early`;
  let prepared = false;
  const run = (async () => {
    const stream = await claim(layer);
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
