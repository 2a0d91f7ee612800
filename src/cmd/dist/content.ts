/** `dist content …`: the content store verbs (ctr content). */
import { Command } from 'commander';
import { writeBlob } from '../../content/helpers.js';
import type { Info, Status } from '../../content/types.js';
import * as digest from '../../digest/index.js';
import { invalidArgument, isNotFound } from '../../errdefs/index.js';
import { humanDuration, humanSize, labelsColumn, parseLabelArgs, tabwrite } from '../../internal/format.js';
import { toDate } from '../../internal/time.js';
import { embeddedOnly, globals, printJSON, withServices, ctxOf } from './context.js';

export function contentCommand(): Command {
  const c = new Command('content').description('manage content');

  c.command('ingest')
    .description('accept content into the store from standard input (content already present counts as success)')
    .argument('<ref>', 'ingest reference (resume by using the same ref)')
    .option('--expected-size <n>', 'validate against provided size', (v) => parseSize(v), 0)
    .option('--expected-digest <digest>', 'verify content against expected digest', '')
    .action(async (ref: string, o: { expectedSize: number; expectedDigest: string }, cmd: Command) => {
      if (o.expectedDigest) digest.parse(o.expectedDigest);
      await withServices(cmd, async (svc, ctx) => {
        await writeBlob(ctx, svc.content, ref, process.stdin, { size: o.expectedSize, digest: o.expectedDigest });
      });
    });

  c.command('active')
    .description('display active transfers (ingests)')
    .argument('[filters...]', 'filters, e.g. ref~=layer')
    .action(async (filters: string[], _o, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const list = await svc.content.listStatuses(ctx, filters);
        if (g.json) return printJSON(list);
        const rows = ['REF\tSIZE\tAGE\t', ...list.map((s: Status) => `${s.ref}\t${humanSize(s.offset)}\t${humanDuration(Date.now() - toDate(s.startedAt).getTime())}\t`)];
        process.stdout.write(tabwrite(rows, '\t'));
      });
    });

  c.command('ls')
    .alias('list')
    .description('list all blobs in the store')
    .option('-q, --quiet', 'print only the blob digest')
    .argument('[filters...]', 'filters, e.g. labels.foo==bar')
    .action(async (filters: string[], o: { quiet?: boolean }, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const infos: Info[] = [];
        await svc.content.walk(ctx, (i) => void infos.push(i), filters);
        if (g.json) return printJSON(infos);
        if (o.quiet) return void process.stdout.write(infos.map((i) => i.digest + '\n').join(''));
        const rows = ['DIGEST\tSIZE\tAGE\tLABELS', ...infos.map((i) => `${i.digest}\t${humanSize(i.size)}\t${humanDuration(Date.now() - toDate(i.createdAt).getTime())}\t${labelsColumn(i.labels)}`)];
        process.stdout.write(tabwrite(rows, '\t'));
      });
    });

  c.command('path')
    .description('print the local path of a committed blob (embedded root only)')
    .argument('<digest>')
    .action(async (d: string, _o, cmd: Command) => {
      const g = globals(cmd);
      const e = await embeddedOnly(g, 'content path');
      try {
        await e.content.info(ctxOf(g), digest.validate(d));
        const p = e.content.backend.blobPath(d);
        if (g.json) printJSON({ digest: d, path: p });
        else process.stdout.write(p + '\n');
      } finally {
        await e.close();
      }
    });

  c.command('get')
    .description('write the data of blobs to standard output')
    .argument('<digests...>')
    .action(async (ds: string[], _o, cmd: Command) => {
      await withServices(cmd, async (svc, ctx) => {
        for (const d of ds) {
          const ra = await svc.content.readerAt(ctx, { digest: digest.validate(d) });
          try {
            const s = ra.stream({ signal: ctx.signal });
            for await (const chunk of s) {
              if (!process.stdout.write(chunk as Buffer)) await new Promise((r) => process.stdout.once('drain', r));
            }
          } finally {
            await ra.close();
          }
        }
      });
    });

  c.command('rm')
    .alias('delete')
    .description('permanently delete blobs from this namespace (an absent one is reported, not an error)')
    .argument('<digests...>')
    .action(async (ds: string[], _o, cmd: Command) => {
      await withServices(cmd, async (svc, ctx) => {
        for (const d of ds) {
          try {
            await svc.content.delete(ctx, digest.validate(d));
          } catch (err) {
            if (!isNotFound(err)) throw err;
            process.stderr.write(`dist: ${(err as Error).message} (nothing to delete)\n`);
          }
        }
      });
    });

  c.command('label')
    .description('set (k=v), clear (k=) labels of a blob; bare k sets k=true')
    .argument('<digest>')
    .argument('[labels...]')
    .action(async (d: string, labels: string[], _o, cmd: Command) => {
      await withServices(cmd, async (svc, ctx, g) => {
        const parsed = parseLabelArgs(labels);
        const paths = Object.keys(parsed).map((k) => `labels.${k}`);
        const info = await svc.content.update(ctx, { digest: digest.validate(d), labels: parsed }, paths);
        if (g.json) return printJSON(info);
      });
    });

  return c;
}

function parseSize(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw invalidArgument(`invalid size ${JSON.stringify(v)}`);
  return n;
}

