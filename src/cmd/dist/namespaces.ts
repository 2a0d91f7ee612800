/** `dist namespaces …` (ctr namespaces). */
import { Command } from 'commander';
import { isNotFound } from '../../errdefs/index.js';
import { labelsColumn, parseLabelArgs, tabwrite } from '../../internal/format.js';
import { printJSON, withServices } from './context.js';

export function namespacesCommand(): Command {
  const c = new Command('namespaces').alias('namespace').alias('ns').description('manage namespaces');

  c.command('create')
    .description('create a new namespace')
    .argument('<name>')
    .argument('[labels...]', 'k=v labels')
    .action(async (name: string, labels: string[], _o, cmd: Command) => {
      await withServices(cmd, (svc, ctx) => svc.namespaces.create(ctx, name, parseLabelArgs(labels)));
    });

  c.command('ls')
    .alias('list')
    .description('list namespaces')
    .option('-q, --quiet', 'print only the namespace name')
    .action(async (o: { quiet?: boolean }, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const names = await svc.namespaces.list(ctx);
        if (o.quiet && !g.json) return void process.stdout.write(names.map((n) => n + '\n').join(''));
        const rows = await Promise.all(names.map(async (name) => ({ name, labels: await svc.namespaces.labels(ctx, name) })));
        if (g.json) return printJSON(rows);
        process.stdout.write(tabwrite(['NAME\tLABELS\t', ...rows.map((r) => `${r.name}\t${labelsColumn(r.labels) === '-' ? '' : labelsColumn(r.labels)}\t`)]));
      });
    });

  c.command('label')
    .description('set (k=v) and clear (k=) labels of a namespace')
    .argument('<name>')
    .argument('[labels...]')
    .action(async (name: string, labels: string[], _o, cmd: Command) => {
      await withServices(cmd, async (svc, ctx) => {
        for (const [k, v] of Object.entries(parseLabelArgs(labels))) await svc.namespaces.setLabel(ctx, name, k, v);
      });
    });

  c.command('rm')
    .alias('remove')
    .description('remove namespaces (refused while they hold images, blobs, snapshots or containers)')
    .argument('<names...>')
    .action(async (names: string[], _o, cmd: Command) => {
      await withServices(cmd, async (svc, ctx) => {
        for (const n of names) {
          try {
            await svc.namespaces.delete(ctx, n);
            process.stdout.write(n + '\n');
          } catch (err) {
            if (!isNotFound(err)) throw err;
            process.stderr.write(`dist: ${(err as Error).message} (nothing to remove)\n`);
          }
        }
      });
    });
  return c;
}
