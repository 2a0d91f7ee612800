/** `dist leases …` (ctr leases). */
import { Command } from 'commander';
import { labelsColumn, parseDuration, parseLabelArgs, tabwrite } from '../../internal/format.js';
import { toDate, toRFC3339 } from '../../internal/time.js';
import { expiresIn } from '../../leases/types.js';
import { printJSON, withServices } from './context.js';

export function leasesCommand(): Command {
  const c = new Command('leases').alias('lease').description('manage leases');

  c.command('create')
    .description('create a lease')
    .option('--id <id>', 'lease id (random when omitted)')
    .option('--expires <duration>', 'expire after this long, e.g. 24h (0 = never)', '24h')
    .argument('[labels...]', 'k=v labels')
    .action(async (labels: string[], o: { id?: string; expires: string }, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const l = parseLabelArgs(labels);
        const ms = parseDuration(o.expires);
        if (ms > 0) Object.assign(l, expiresIn(ms));
        const lease = await svc.leases.create(ctx, { id: o.id, labels: l });
        if (g.json) printJSON(lease);
        else process.stdout.write(lease.id + '\n');
      });
    });

  c.command('ls')
    .alias('list')
    .description('list leases')
    .option('-q, --quiet', 'print only the lease id')
    .argument('[filters...]', 'filters, e.g. id==x, labels.k==v')
    .action(async (filters: string[], o: { quiet?: boolean }, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const list = await svc.leases.list(ctx, filters);
        if (g.json) return printJSON(list);
        if (o.quiet) return void process.stdout.write(list.map((l) => l.id + '\n').join(''));
        process.stdout.write(tabwrite(['ID\tCREATED AT\tLABELS\t', ...list.map((l) => `${l.id}\t${rfc3339(toDate(l.createdAt))}\t${labelsColumn(l.labels)}\t`)]));
      });
    });

  c.command('rm')
    .alias('delete')
    .description('delete leases')
    .option('--sync', 'run a garbage collection before returning')
    .argument('<ids...>')
    .action(async (ids: string[], o: { sync?: boolean }, cmd: Command) => {
      await withServices(cmd, async (svc, ctx) => {
        for (const id of ids) {
          await svc.leases.delete(ctx, { id }, { sync: !!o.sync });
          process.stdout.write(id + '\n');
        }
      });
    });
  return c;
}

function rfc3339(d: Date): string {
  return toRFC3339(d.getTime());
}
