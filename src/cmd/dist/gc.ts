/** `dist gc`: run a garbage collection now and report what it removed (through a daemon: have it run one). */
import { Command } from 'commander';
import { bytesSize } from '../../internal/format.js';
import { expiresIn } from '../../leases/types.js';
import { embeddedOnly, globals, printJSON, withServices } from './context.js';

export function gcCommand(): Command {
  return new Command('gc')
    .description('collect garbage now: unreferenced content, snapshots, ingests and expired leases (all namespaces)')
    .option('--dry-run', 'list what would be removed, remove nothing')
    .action(async (o: { dryRun?: boolean }, cmd: Command) => {
      const g = globals(cmd);
      if ((g.address ?? process.env.CONTAINERD_ADDRESS) && !o.dryRun) {
        // A daemon's API has no collect call; a lease deleted with sync runs
        // one before the call returns (containerd's SynchronousDelete). What
        // it removed is the daemon's to log.
        await withServices(cmd, async (svc, ctx) => {
          const l = await svc.leases.create(ctx, { labels: expiresIn(3600_000) });
          await svc.leases.delete(ctx, l, { sync: true });
        });
        if (g.json) return printJSON({ collected: true, by: 'daemon' });
        process.stdout.write('garbage collected by the daemon\n');
        return;
      }
      const e = await embeddedOnly(g, o.dryRun ? 'gc --dry-run' : 'gc');
      try {
        const r = await e.gc.collect({}, { dryRun: !!o.dryRun });
        if (g.json) return printJSON(r);
        const verb = r.dryRun ? 'would remove' : 'removed';
        if (r.dryRun) {
          for (const [kind, rem] of Object.entries({ content: r.content, blobs: r.blobs, snapshots: r.snapshots, ingests: r.ingests, leases: r.leases })) {
            for (const item of rem.items) process.stdout.write(`${kind}\t${item}\n`);
          }
        }
        process.stdout.write(
          `${verb}: ${r.content.count} content records, ${r.blobs.count} blobs (${bytesSize(r.blobs.bytes)}), ` +
            `${r.snapshots.count} snapshots (${bytesSize(r.snapshots.bytes)}), ${r.ingests.count} ingests (${bytesSize(r.ingests.bytes)}), ` +
            `${r.leases.count} expired leases in ${r.durationMs.toFixed(0)} ms\n`,
        );
      } finally {
        await e.close();
      }
    });
}
