/** `dist pull`, `dist apply`, `dist rootfs`, `dist images mount|unmount`: unpacking images. */
import { Command } from 'commander';
import { resolve } from 'node:path';
import { pullImage } from '../../client/pull.js';
import { platformMatcher } from '../../client/fetch.js';
import { unpackImage } from '../../client/unpack.js';
import { applyLayer } from '../../archive/apply.js';
import { mountAll, unmountAll } from '../../mount/index.js';
import { createReporter, modeFor } from '../../progress/index.js';
import { resolveSnapshotter } from '../../services/types.js';
import { exportRootfs } from '../../client/rootfs.js';
import { invalidArgument, isAlreadyExists, isNotFound, withHint } from '../../errdefs/index.js';
import { ensureDir } from '../../internal/dirs.js';
import { expiresIn } from '../../leases/types.js';
import { LABEL_REF_SNAPSHOT } from '../../gc/index.js';
import { printEvent, printJSON, withServices } from './context.js';
import { findName } from './images.js';
import { addRemoteFlags, collect, withRegistry } from './remoteflags.js';

export function pullCommand(): Command {
  return addRemoteFlags(new Command('pull'))
    .description('fetch an image and unpack it into a snapshotter')
    .argument('<ref>')
    .option('--snapshotter <name>', 'snapshotter: native or overlayfs (env CONTAINERD_SNAPSHOTTER; default overlayfs)')
    .option('--platform <platform>', "platform to pull, repeatable (default: this host's)", collect, [])
    .option('--all-platforms', 'fetch every platform of an index (unpacks the host platform)')
    .option('--max-concurrent-downloads <n>', 'parallel blob downloads', (v) => Number(v), 3)
    .option('--no-unpack', 'fetch only')
    .action(async (ref: string, o, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const snapshotter = await resolveSnapshotter(svc, ctx, o.snapshotter);
        const r = await withRegistry(o, g.json, (resolver, rep) =>
          pullImage(svc, ctx, ref, {
            resolver,
            snapshotter,
            platforms: o.platform,
            allPlatforms: o.allPlatforms,
            maxConcurrentDownloads: o.maxConcurrentDownloads,
            noUnpack: o.unpack === false,
            onProgress: (ev) => rep.update(ev),
          }),
        );
        if (g.json) printEvent({ event: 'image', name: r.image.name, target: r.image.target, chainID: r.unpack?.chainID, applied: r.unpack?.applied });
        else {
          process.stdout.write(`${r.image.name}: ${r.image.target.digest}\n`);
          if (r.unpack) process.stdout.write(`unpacked chain id: ${r.unpack.chainID} (${r.unpack.applied} of ${r.unpack.layers} layers applied, ${snapshotter})\n`);
        }
      });
    });
}

export function unpackCommand(): Command {
  return new Command('unpack')
    .description('unpack a fetched image into a snapshotter')
    .argument('<ref>')
    .option('--snapshotter <name>', 'snapshotter (env CONTAINERD_SNAPSHOTTER)')
    .option('--platform <platform>', 'platform to unpack')
    .action(async (ref: string, o: { snapshotter?: string; platform?: string }, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const img = await svc.images.get(ctx, await findName(svc, ctx, ref));
        const snapshotter = await resolveSnapshotter(svc, ctx, o.snapshotter);
        const rep = createReporter(modeFor({ json: g.json }));
        const r = await unpackImage(svc, ctx, img.target, { snapshotter, platform: platformMatcher({ platforms: o.platform ? [o.platform] : undefined }), onProgress: (ev) => rep.update(ev) });
        rep.finish();
        if (g.json) printJSON(r);
        else process.stdout.write(`unpacked chain id: ${r.chainID}\n`);
      });
    });
}

export function applyCommand(): Command {
  return new Command('apply')
    .description('apply a layer (tar, tar+gzip or tar+zstd) from standard input onto a directory, with OCI whiteouts')
    .argument('<dir>')
    .option('--media-type <type>', 'layer media type (default: detect by magic bytes)', '')
    .option('--expected-diff-id <digest>', 'fail unless the uncompressed tar has this digest')
    .action(async (dir: string, o: { mediaType: string; expectedDiffId?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals() as { json?: boolean };
      if (process.stdin.isTTY) throw withHint(invalidArgument('apply reads the layer from standard input, which is a terminal'), 'pipe a layer in: dist apply DIR < layer.tar.gz');
      await ensureDir(dir);
      const r = await applyLayer(dir, process.stdin, { mediaType: o.mediaType, expectedDiffID: o.expectedDiffId });
      if (g.json) printJSON(r);
      else process.stdout.write(`applied ${r.diffID} (${r.size} bytes)\n`);
    });
}

export function rootfsCommand(): Command {
  return new Command('rootfs')
    .description('write the flattened root filesystem of a fetched image into a plain directory (no mounts)')
    .argument('<ref>')
    .argument('<dir>')
    .option('--platform <platform>', 'platform (default: this host\'s)')
    .action(async (ref: string, dir: string, o: { platform?: string }, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const img = await svc.images.get(ctx, await findName(svc, ctx, ref));
        const r = await exportRootfs(svc, ctx, img.target, dir, { platform: platformMatcher({ platforms: o.platform ? [o.platform] : undefined }) });
        if (g.json) printJSON(r);
        else process.stdout.write(`${dir}: ${r.layers} layers, chain id ${r.chainID}\n`);
      });
    });
}

/** `images mount` / `images unmount`, added under `dist images`. */
export function addImageMountCommands(images: Command): void {
  images
    .command('mount')
    .description('mount an unpacked image read-write on a directory (a new active snapshot)')
    .argument('<ref>')
    .argument('<dir>')
    .option('--snapshotter <name>', 'snapshotter (env CONTAINERD_SNAPSHOTTER)')
    .option('--platform <platform>', 'platform')
    .option('--rw', 'mount read-write (default read-only view)')
    .action(async (ref: string, dir: string, o: { snapshotter?: string; platform?: string; rw?: boolean }, cmd: Command) => {
      await withServices(cmd, async (svc, ctx) => {
        const img = await svc.images.get(ctx, await findName(svc, ctx, ref));
        const snapshotter = await resolveSnapshotter(svc, ctx, o.snapshotter);
        const platform = platformMatcher({ platforms: o.platform ? [o.platform] : undefined });
        const key = mountKey(dir);
        await ensureDir(dir); // before the snapshot: a bad target leaves nothing behind
        // As ctr: a lease named after the target (24 h) holds the mount's
        // snapshot, so a garbage collection leaves a mounted image alone;
        // unmount --rm deletes it. The image is unpacked first if need be.
        let lease: { id: string } | undefined;
        try {
          lease = await svc.leases.create(ctx, { id: key, labels: { ...expiresIn(24 * 3600_000), [LABEL_REF_SNAPSHOT + snapshotter]: key } });
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
        }
        const lctx = { ...ctx, lease: key };
        try {
          const top = (await unpackImage(svc, lctx, img.target, { snapshotter, platform })).chainID;
          const sn = await svc.snapshotter(snapshotter);
          let mounts;
          try {
            mounts = o.rw ? await sn.prepare(lctx, key, top) : await sn.view(lctx, key, top);
          } catch (err) {
            if (!isAlreadyExists(err)) throw err;
            mounts = await sn.mounts(lctx, key); // mounted before: the same snapshot again
          }
          try {
            await mountAll(mounts, dir);
          } catch (err) {
            await sn.remove(ctx, key).catch(() => undefined);
            throw err;
          }
        } catch (err) {
          if (lease) await svc.leases.delete(ctx, lease).catch(() => undefined);
          throw err;
        }
        process.stdout.write(`${dir}\n`);
      });
    });
  images
    .command('unmount')
    .description('unmount a directory mounted by images mount and remove its snapshot')
    .argument('<dir>')
    .option('--snapshotter <name>', 'snapshotter (env CONTAINERD_SNAPSHOTTER)')
    .option('--rm', 'remove the snapshot (default true)', true)
    .action(async (dir: string, o: { snapshotter?: string; rm: boolean }, cmd: Command) => {
      await withServices(cmd, async (svc, ctx) => {
        await unmountAll(dir);
        if (o.rm) {
          const sn = await svc.snapshotter(await resolveSnapshotter(svc, ctx, o.snapshotter));
          await svc.leases.delete(ctx, { id: mountKey(dir) }).catch((err: unknown) => {
            if (!isNotFound(err)) throw err;
          });
          await sn.remove(ctx, mountKey(dir)).catch((err: unknown) => {
            if (!isNotFound(err)) throw err;
          });
        }
        process.stdout.write(`${dir}\n`);
      });
    });
}

/** The snapshot key of an image mount: the target directory, as ctr uses. */
function mountKey(dir: string): string {
  return resolve(dir);
}
