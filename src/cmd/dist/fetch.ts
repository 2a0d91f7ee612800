/** `dist fetch`, `dist fetch-object`, `dist push`: moving images between registries and the store. */
import { Command } from 'commander';
import { fetchImage } from '../../client/fetch.js';
import { pushImage } from '../../client/push.js';
import * as digest from '../../digest/index.js';
import { printEvent, printJSON, withServices } from './context.js';
import { addRemoteFlags, collect, resolverFrom, withRegistry } from './remoteflags.js';

export function fetchCommand(): Command {
  return addRemoteFlags(new Command('fetch'))
    .description('fetch all content of an image into the content store and record the image')
    .argument('<ref>', 'image reference, e.g. localhost:5000/small:latest')
    .option('--platform <platform>', "platform to fetch, repeatable (default: this host's)", collect, [])
    .option('--all-platforms', 'fetch every platform of an index')
    .option('--max-concurrent-downloads <n>', 'parallel blob downloads', (v) => Number(v), 3)
    .action(async (ref: string, o, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const r = await withRegistry(o, g.json, (resolver, rep) =>
          fetchImage(svc, ctx, ref, {
            resolver,
            platforms: o.platform,
            allPlatforms: o.allPlatforms,
            maxConcurrentDownloads: o.maxConcurrentDownloads,
            onProgress: (ev) => rep.update(ev),
          }),
        );
        if (g.json) printEvent({ event: 'image', name: r.image.name, target: r.image.target });
        else process.stdout.write(`${r.image.name}: ${r.image.target.digest}\n`);
      });
    });
}

export function fetchObjectCommand(): Command {
  return addRemoteFlags(new Command('fetch-object'))
    .description('write one object of a remote image to standard output (default: the root manifest or index)')
    .argument('<ref>')
    .argument('[digests...]', 'objects to fetch (blobs); default the root')
    .action(async (ref: string, digests: string[], o, cmd: Command) => {
      await withServices(cmd, async (_svc, ctx) => {
        const resolver = await resolverFrom(o);
        try {
          const { canonicalName } = await import('../../client/fetch.js');
          const { name, desc } = await resolver.resolve(ctx, canonicalName(ref));
          const fetcher = await resolver.fetcher(ctx, name);
          const targets = digests.length
            ? digests.map((d) => ({ mediaType: 'application/octet-stream', digest: digest.validate(d), size: -1 }))
            : [desc];
          for (const t of targets) {
            const s = await fetcher.fetch(ctx, t);
            for await (const chunk of s) {
              if (!process.stdout.write(chunk as Buffer)) await new Promise((r) => process.stdout.once('drain', r));
            }
          }
        } finally {
          await resolver.close();
        }
      });
    });
}

export function pushCommand(): Command {
  return addRemoteFlags(new Command('push'))
    .description('push an image (and everything it references) to a registry')
    .argument('<ref>', 'remote reference')
    .argument('[local]', 'local image name (default: ref)')
    .option('--platform <platform>', 'push only this platform of an index, repeatable', collect, [])
    .option('--max-concurrent-uploads <n>', 'parallel blob uploads', (v) => Number(v), 3)
    .action(async (ref: string, local: string | undefined, o, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const r = await withRegistry(o, g.json, (resolver, rep) =>
          pushImage(svc, ctx, ref, local, { resolver, platforms: o.platform, maxConcurrentUploads: o.maxConcurrentUploads, onProgress: (ev) => rep.update(ev) }),
        );
        if (g.json) printEvent({ event: 'pushed', name: r.name, digest: r.digest });
        else process.stdout.write(`${r.name}: ${r.digest}\n`);
      });
    });
}
