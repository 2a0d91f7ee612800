/** `dist snapshots …` (ctr snapshots): list and manage snapshots of a snapshotter. */
import { Command } from 'commander';
import type { Mount } from '../../mount/types.js';
import { parseLabelArgs, progressBytes, tabwrite } from '../../internal/format.js';
import { kindString, type Info } from '../../snapshots/types.js';
import { resolveSnapshotter } from '../../services/types.js';
import { printJSON, withServices } from './context.js';
import type { Ctx } from '../../internal/context.js';
import type { Services } from '../../services/types.js';
import type { Snapshotter } from '../../snapshots/types.js';

type Opts = { snapshotter?: string };

/** Runs fn with the snapshotter the command's --snapshotter (or the defaults) names. */
async function withSnapshotter(cmd: Command, fn: (sn: Snapshotter, ctx: Ctx, svc: Services, g: { json?: boolean }) => Promise<void>): Promise<void> {
  await withServices(cmd, async (svc, ctx, g) => {
    const o = cmd.optsWithGlobals() as Opts;
    const sn = await svc.snapshotter(await resolveSnapshotter(svc, ctx, o.snapshotter));
    await fn(sn, ctx, svc, g);
  });
}

function printMounts(target: string, mounts: Mount[]): void {
  for (const m of mounts) process.stdout.write(`mount -t ${m.type} ${m.source} ${target} -o ${m.options.join(',')}\n`);
}

export function snapshotsCommand(): Command {
  const c = new Command('snapshots')
    .alias('snapshot')
    .description('manage snapshots')
    .option('--snapshotter <name>', 'snapshotter name (env CONTAINERD_SNAPSHOTTER; default overlayfs)');

  c.command('ls')
    .alias('list')
    .description('list snapshots')
    .argument('[filters...]')
    .action(async (filters: string[], _o, cmd: Command) => {
      await withSnapshotter(cmd, async (sn, ctx, _svc, g) => {
        const infos: Info[] = [];
        await sn.walk(ctx, (i) => void infos.push(i), filters);
        if (g.json) return printJSON(infos);
        process.stdout.write(tabwrite(['KEY\tPARENT\tKIND\t', ...infos.map((i) => `${i.name}\t${i.parent ?? ''}\t${kindString(i.kind)}\t`)]));
      });
    });

  c.command('tree')
    .description('display the snapshot tree')
    .action(async (_o, cmd: Command) => {
      await withSnapshotter(cmd, async (sn, ctx) => {
        const infos: Info[] = [];
        await sn.walk(ctx, (i) => void infos.push(i));
        const children = new Map<string, string[]>();
        const known = new Set(infos.map((i) => i.name));
        for (const i of infos) if (i.parent) children.set(i.parent, [...(children.get(i.parent) ?? []), i.name]);
        const print = (name: string, level: number) => {
          process.stdout.write(`${'  '.repeat(level)}${level > 0 ? '\\_' : ''} ${name}\n`);
          for (const ch of children.get(name) ?? []) print(ch, level + 1);
        };
        for (const i of infos) if (!i.parent) print(i.name, 0);
        for (const p of children.keys()) if (!known.has(p)) print(p, 0);
      });
    });

  c.command('usage')
    .description('usage of snapshots (size of their own changes, inodes)')
    .option('-b', 'display size in bytes')
    .argument('[keys...]')
    .action(async (keys: string[], o: { b?: boolean }, cmd: Command) => {
      await withSnapshotter(cmd, async (sn, ctx, _svc, g) => {
        if (!keys.length) await sn.walk(ctx, (i) => void keys.push(i.name));
        const rows = [];
        for (const k of keys) rows.push({ key: k, ...(await sn.usage(ctx, k)) });
        if (g.json) return printJSON(rows);
        process.stdout.write(tabwrite(['KEY\tSIZE\tINODES\t', ...rows.map((r) => `${r.key}\t${o.b ? r.size : progressBytes(r.size)}\t${r.inodes}\t`)]));
      });
    });

  c.command('info')
    .description('information about a snapshot (JSON)')
    .argument('<key>')
    .action(async (key: string, _o, cmd: Command) => {
      await withSnapshotter(cmd, async (sn, ctx) => printJSON(await sn.stat(ctx, key)));
    });

  c.command('rm')
    .alias('delete')
    .alias('remove')
    .description('remove snapshots')
    .argument('<keys...>')
    .action(async (keys: string[], _o, cmd: Command) => {
      await withSnapshotter(cmd, async (sn, ctx) => {
        for (const k of keys) await sn.remove(ctx, k);
      });
    });

  for (const verb of ['prepare', 'view'] as const) {
    c.command(verb)
      .description(verb === 'prepare' ? 'prepare an active snapshot on top of a committed parent' : 'create a read-only view of a committed snapshot')
      .argument('<key>')
      .argument('[parent]')
      .option('--target <dir>', 'mount target to print in the mount commands')
      .option('--mounts', 'print the mount commands')
      .action(async (key: string, parent: string | undefined, o: { target?: string; mounts?: boolean }, cmd: Command) => {
        await withSnapshotter(cmd, async (sn, ctx, _svc, g) => {
          const mounts = verb === 'prepare' ? await sn.prepare(ctx, key, parent) : await sn.view(ctx, key, parent);
          if (g.json) return printJSON(mounts);
          if (o.mounts) printMounts(o.target ?? '/tmp/mnt', mounts);
        });
      });
  }

  c.command('mounts')
    .alias('m')
    .description('print the mount commands of an active or view snapshot')
    .argument('<target>')
    .argument('<key>')
    .action(async (target: string, key: string, _o, cmd: Command) => {
      await withSnapshotter(cmd, async (sn, ctx, _svc, g) => {
        const mounts = await sn.mounts(ctx, key);
        if (g.json) return printJSON(mounts);
        printMounts(target, mounts);
      });
    });

  c.command('commit')
    .description('commit an active snapshot as a new committed snapshot')
    .argument('<name>')
    .argument('<key>')
    .action(async (name: string, key: string, _o, cmd: Command) => {
      await withSnapshotter(cmd, async (sn, ctx) => sn.commit(ctx, name, key));
    });

  c.command('label')
    .description('set (k=v) and clear (k=) labels of a snapshot')
    .argument('<key>')
    .argument('[labels...]')
    .action(async (key: string, labels: string[], _o, cmd: Command) => {
      await withSnapshotter(cmd, async (sn, ctx, _svc, g) => {
        const parsed = parseLabelArgs(labels);
        const info = await sn.update(ctx, { name: key, labels: parsed }, Object.keys(parsed).map((k) => `labels.${k}`));
        if (g.json) printJSON(info);
      });
    });
  return c;
}
