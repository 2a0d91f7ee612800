/** `dist images …` (ctr images): list, remove, label, tag and check image records. */
import { Command } from 'commander';
import { canonicalNameOrSelf } from '../../client/push.js';
import { isNotFound } from '../../errdefs/index.js';
import { chainID } from '../../images/chainid.js';
import { check, imageRootFS, platforms as imagePlatforms, size as imageSize } from '../../images/helpers.js';
import type { Image } from '../../images/image.js';
import type { Ctx } from '../../internal/context.js';
import { labelsColumn, parseLabelArgs, progressBytes, tabwrite } from '../../internal/format.js';
import * as platforms from '../../platforms/index.js';
import { resolveSnapshotter, type Services } from '../../services/types.js';
import { printJSON, withServices } from './context.js';

export function imagesCommand(): Command {
  const c = new Command('images').alias('image').alias('i').description('manage images');

  c.command('ls')
    .alias('list')
    .description('list images')
    .option('-q, --quiet', 'print only the image refs')
    .argument('[filters...]', 'filters, e.g. name~=small, labels.k==v')
    .action(async (filters: string[], o: { quiet?: boolean }, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const list = await svc.images.list(ctx, filters);
        if (o.quiet && !g.json) return void process.stdout.write(list.map((i) => i.name + '\n').join(''));
        const rows = await Promise.all(list.map((img) => describe(svc, ctx, img)));
        if (g.json) return printJSON(rows);
        process.stdout.write(
          tabwrite([
            'REF\tTYPE\tDIGEST\tSIZE\tPLATFORMS\tLABELS\t',
            ...rows.map((r) => `${r.name}\t${r.target.mediaType}\t${r.target.digest}\t${progressBytes(r.size)}\t${r.platforms.length ? r.platforms.join(',') : '-'}\t${labelsColumn(r.labels)}\t`),
          ]),
        );
      });
    });

  c.command('rm')
    .alias('delete')
    .alias('remove')
    .description('remove images (content goes with the next garbage collection; --sync waits for it)')
    .option('--sync', 'collect garbage before returning')
    .argument('<refs...>')
    .action(async (refs: string[], o: { sync?: boolean }, cmd: Command) => {
      await withServices(cmd, async (svc, ctx) => {
        for (const [i, r] of refs.entries()) {
          const name = await findName(svc, ctx, r);
          try {
            await svc.images.delete(ctx, name, { sync: !!o.sync && i === refs.length - 1 });
            process.stdout.write(r + '\n');
          } catch (err) {
            if (!isNotFound(err)) throw err;
            process.stderr.write(`dist: ${(err as Error).message} (nothing to remove)\n`);
          }
        }
      });
    });

  c.command('label')
    .description('set (k=v) and clear (k=) labels of an image')
    .argument('<ref>')
    .argument('[labels...]')
    .action(async (ref: string, labels: string[], _o, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const parsed = parseLabelArgs(labels);
        const img = await svc.images.update(ctx, { name: await findName(svc, ctx, ref), labels: parsed }, Object.keys(parsed).map((k) => `labels.${k}`));
        if (g.json) printJSON(img);
        else process.stdout.write(Object.entries(img.labels).map(([k, v]) => `${k}=${v}`).sort().join(',') + '\n');
      });
    });

  c.command('tag')
    .description('create a new name for an existing image')
    .option('--force', 'replace the target name if it exists')
    .argument('<source>')
    .argument('<targets...>')
    .action(async (source: string, targets: string[], o: { force?: boolean }, cmd: Command) => {
      await withServices(cmd, async (svc, ctx) => {
        const src = await svc.images.get(ctx, await findName(svc, ctx, source));
        for (const t of targets) {
          const name = canonicalNameOrSelf(t);
          try {
            await svc.images.create(ctx, { name, target: src.target, labels: src.labels });
          } catch (err) {
            if (!o.force) throw err;
            await svc.images.delete(ctx, name).catch(() => undefined);
            await svc.images.create(ctx, { name, target: src.target, labels: src.labels });
          }
          process.stdout.write(name + '\n');
        }
      });
    });

  c.command('check')
    .description('check that images are complete (all content present) and unpacked')
    .option('-q, --quiet', 'print only the ready image refs')
    .option('--snapshotter <name>', 'snapshotter to check unpacking in (env CONTAINERD_SNAPSHOTTER)')
    .argument('[filters...]')
    .action(async (filters: string[], o: { quiet?: boolean; snapshotter?: string }, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const list = await svc.images.list(ctx, filters);
        const sn = await resolveSnapshotter(svc, ctx, o.snapshotter);
        const rows: { name: string; type: string; digest: string; status: string; size: string; unpacked: boolean; ready: boolean }[] = [];
        let failed = false;
        for (const img of list) {
          const r = await check(ctx, svc.content, img.target, platforms.defaultMatcher());
          const missing = r.missing.length;
          const status = !r.available ? 'incomplete' : missing ? 'incomplete' : 'complete';
          const have = r.present.reduce((a, d) => a + d.size, 0);
          const need = r.required.reduce((a, d) => a + d.size, 0);
          let unpacked = false;
          if (status === 'complete') unpacked = await isUnpacked(svc, ctx, img, sn);
          if (status !== 'complete') failed = true;
          rows.push({ name: img.name, type: img.target.mediaType, digest: img.target.digest, status: `${status} (${r.present.length}/${r.required.length})`, size: `${progressBytes(have)}/${progressBytes(need)}`, unpacked, ready: status === 'complete' });
        }
        if (g.json) printJSON(rows);
        else if (o.quiet) process.stdout.write(rows.filter((r) => r.ready).map((r) => r.name + '\n').join(''));
        else process.stdout.write(tabwrite(['REF\tTYPE\tDIGEST\tSTATUS\tSIZE\tUNPACKED\t', ...rows.map((r) => `${r.name}\t${r.type}\t${r.digest}\t${r.status}\t${r.size}\t${r.unpacked}`)]));
        if (failed) process.exitCode = 1;
      });
    });

  return c;
}

/** An image's name as stored: the argument as given if it exists, else its canonical form. */
export async function findName(svc: Services, ctx: Ctx, ref: string): Promise<string> {
  try {
    await svc.images.get(ctx, ref);
    return ref;
  } catch (err) {
    if (!isNotFound(err)) throw err;
    return canonicalNameOrSelf(ref);
  }
}

async function describe(svc: Services, ctx: Ctx, img: Image) {
  let size = 0;
  let plats: string[] = [];
  try {
    size = await imageSize(ctx, svc.content, img.target, platforms.defaultMatcher());
  } catch {
    /* content missing: size unknown */
  }
  try {
    plats = [...new Set((await imagePlatforms(ctx, svc.content, img.target)).map((p) => platforms.format(p)))].sort();
  } catch {
    /* content missing */
  }
  return { name: img.name, target: img.target, size, platforms: plats, labels: img.labels, createdAt: img.createdAt, updatedAt: img.updatedAt };
}

/** Whether the image's top layer chain exists as a snapshot. */
export async function isUnpacked(svc: Services, ctx: Ctx, img: Image, snapshotter: string, platform = platforms.defaultMatcher()): Promise<boolean> {
  try {
    const diffIDs = await imageRootFS(ctx, svc.content, img.target, platform);
    const sn = await svc.snapshotter(snapshotter);
    await sn.stat(ctx, chainID(diffIDs));
    return true;
  } catch {
    return false;
  }
}
