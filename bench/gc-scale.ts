/**
 * bench/gc-scale: garbage collection and image listing at scale.
 *
 *   node build/bench/gc-scale.js [--blobs N] [--images M] [--namespaces K] [--reps R] [--no-files] [--keep]
 *
 * Builds a root directly through the metadata DB in big transactions:
 * M images spread over K namespaces, each image a manifest (labelled with
 * containerd.io/gc.ref.content.config / .l.<i>, as a fetch leaves them) → a
 * config and layers, the blob count per image chosen so that about 90 % of
 * the N blobs belong to images and the rest are unreferenced garbage. Every
 * blob is also written as a real (small) file under content/blobs, since the
 * collector lists that directory (--no-files skips them: only the metadata
 * side is timed then).
 *
 * Timed (medians of R repetitions):
 *  - the first full collection (sweeps the ~10 % garbage);
 *  - steady collections, each after adding 1 % fresh garbage;
 *  - svc.images.list over M image records in one namespace (the library);
 *  - `dist images ls -q` over the same (a CLI process, node start-up
 *    included; `dist namespaces ls` is timed as the start-up baseline).
 * The M records listed live in the namespace "default", added after the GC
 * timings as tags of the first namespace's manifests.
 * Goals: a full collection ≤ 2 s; images.list ≤ 100 ms. The build is
 * flushed (sync) before timing; wall and CPU time are both printed, since
 * on a shared machine the wall time of unlinks and fsyncs varies a lot.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { now } from '../src/internal/time.js';
import { openEmbedded, type Embedded } from '../src/services/embedded.js';

const MT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MT_CONFIG = 'application/vnd.oci.image.config.v1+json';
const MT_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const MAIN = fileURLToPath(new URL('../bin/dist.js', import.meta.url));

interface Args {
  blobs: number;
  images: number;
  namespaces: number;
  reps: number;
  files: boolean;
  keep: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { blobs: 100_000, images: 10_000, namespaces: 10, reps: 5, files: true, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${k} needs a positive integer`);
      return v;
    };
    if (k === '--blobs') a.blobs = num();
    else if (k === '--images') a.images = num();
    else if (k === '--namespaces') a.namespaces = num();
    else if (k === '--reps') a.reps = num();
    else if (k === '--no-files') a.files = false;
    else if (k === '--keep') a.keep = true;
    else if (k === '-h' || k === '--help') {
      process.stdout.write('usage: node build/bench/gc-scale.js [--blobs N] [--images M] [--namespaces K] [--reps R] [--no-files] [--keep]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

const sha = (b: string) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ms = (x: number) => `${x.toFixed(1)} ms`;

class Builder {
  private readonly insContent;
  private readonly blobDir: string;
  private seq = 0;
  constructor(private readonly svc: Embedded, private readonly files: boolean) {
    this.insContent = svc.db.db.prepare('INSERT INTO content(ns, digest, size, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)');
    this.blobDir = join(svc.root, 'content', 'blobs', 'sha256');
    mkdirSync(this.blobDir, { recursive: true });
  }

  /** Records a blob in ns (and writes its file); returns its descriptor. */
  blob(ns: string, data: string, mediaType: string, labels: Record<string, string> = {}) {
    const digest = sha(data);
    const t = now().toString();
    this.insContent.run(ns, digest, Buffer.byteLength(data), JSON.stringify(labels), t, t);
    if (this.files) writeFileSync(join(this.blobDir, digest.slice(7)), data);
    this.seq++;
    return { mediaType, digest, size: Buffer.byteLength(data) };
  }

  get count(): number {
    return this.seq;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const root = mkdtempSync(join(process.env.DIST_BENCH_TMP ?? tmpdir(), 'gc-scale-'));
  // Blobs per image (manifest + config + layers) so that ~90 % of the blobs are referenced.
  const perImage = Math.max(3, Math.floor((args.blobs * 0.9) / args.images));
  const layers = perImage - 2;
  const garbage = Math.max(0, args.blobs - perImage * args.images);
  const nss = Array.from({ length: args.namespaces }, (_, i) => `ns-${i}`);
  process.stdout.write(
    `gc-scale: ${args.blobs} blobs, ${args.images} images (1 manifest + 1 config + ${layers} layers each), ${garbage} unreferenced, ` +
      `${args.namespaces} namespaces, files ${args.files ? 'on' : 'off'}; root ${root}\n`,
  );

  const svc = await openEmbedded(root, { gc: 'off' });
  const b = new Builder(svc, args.files);
  const manifestsOfNs0: { mediaType: string; digest: string; size: number }[] = [];
  const t0 = performance.now();
  try {
    const insImage = svc.db.db.prepare('INSERT INTO images(ns, name, target, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)');
    const BATCH = 500; // images per transaction
    for (let start = 0; start < args.images; start += BATCH) {
      svc.db.tx(() => {
        for (let i = start; i < Math.min(args.images, start + BATCH); i++) {
          const ns = nss[i % nss.length];
          if (i < nss.length) svc.db.ensureNamespace(ns, now());
          const config = b.blob(ns, JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' }, image: i }), MT_CONFIG);
          const ls = Array.from({ length: layers }, (_, l) => b.blob(ns, `layer ${i}/${l} ${'x'.repeat(l * 7)}`, MT_LAYER));
          const labels: Record<string, string> = { 'containerd.io/gc.ref.content.config': config.digest, 'containerd.io/distribution.source.registry.example.com': `team/app${i}` };
          ls.forEach((l, j) => (labels[`containerd.io/gc.ref.content.l.${j}`] = l.digest));
          const manifest = b.blob(ns, JSON.stringify({ schemaVersion: 2, mediaType: MT_MANIFEST, config, layers: ls }), MT_MANIFEST, labels);
          if (ns === nss[0]) manifestsOfNs0.push(manifest);
          const t = now().toString();
          insImage.run(ns, `registry.example.com/team/app${i}:v1`, JSON.stringify(manifest), '{}', t, t);
        }
      });
    }
    const addGarbage = (n: number, tag: string) => {
      for (let start = 0; start < n; start += 5000) {
        svc.db.tx(() => {
          for (let i = start; i < Math.min(n, start + 5000); i++) b.blob(nss[i % nss.length], `garbage ${tag} ${i}`, MT_LAYER);
        });
      }
    };
    addGarbage(garbage, 'initial');
    await svc.close();
    // Flush the build's dirty pages so the timed collections do not pay their writeback.
    spawnSync('sync');
    process.stdout.write(`built ${b.count} blobs and ${args.images} images in ${ms(performance.now() - t0)} (load average ${loadavg().map((x) => x.toFixed(1)).join(' ')})\n`);

    // GC: the first full collection, then steady ones with 1 % fresh garbage each.
    const gsvc = await openEmbedded(root, { gc: 'off' });
    const gb = new Builder(gsvc, args.files);
    try {
      let w = performance.now();
      let cpu = process.cpuUsage();
      const first = await gsvc.gc.collect({});
      const firstMs = performance.now() - w;
      cpu = process.cpuUsage(cpu);
      if (first.content.count !== garbage || (args.files && first.blobs.count !== garbage)) {
        throw new Error(`first collection removed ${first.content.count} records / ${first.blobs.count} blobs, expected ${garbage}`);
      }
      process.stdout.write(`gc first collection: ${ms(firstMs)}, CPU ${ms((cpu.user + cpu.system) / 1000)} (removed ${first.content.count} records, ${first.blobs.count} blobs)\n`);
      const steady: number[] = [];
      const steadyCpu: number[] = [];
      const fresh = Math.max(1, Math.floor(args.blobs / 100));
      for (let r = 0; r < args.reps; r++) {
        for (let start = 0; start < fresh; start += 5000) {
          gsvc.db.tx(() => {
            for (let i = start; i < Math.min(fresh, start + 5000); i++) gb.blob(nss[i % nss.length], `garbage rep ${r} ${i}`, MT_LAYER);
          });
        }
        w = performance.now();
        cpu = process.cpuUsage();
        const res = await gsvc.gc.collect({});
        steady.push(performance.now() - w);
        cpu = process.cpuUsage(cpu);
        steadyCpu.push((cpu.user + cpu.system) / 1000);
        if (res.content.count !== fresh) throw new Error(`rep ${r}: removed ${res.content.count}, expected ${fresh}`);
      }
      const dry: number[] = [];
      for (let r = 0; r < args.reps; r++) {
        w = performance.now();
        await gsvc.gc.collect({}, { dryRun: true });
        dry.push(performance.now() - w);
      }
      process.stdout.write(`gc collection (+${fresh} garbage each), median of ${args.reps}: ${ms(median(steady))}, CPU ${ms(median(steadyCpu))}  [${steady.map((x) => x.toFixed(0)).join(', ')}]\n`);
      process.stdout.write(`gc dry run, median of ${args.reps}: ${ms(median(dry))}\n`);

      // images ls: M records in "default" (tags of ns-0's manifests).
      const t = now().toString();
      const insImage = gsvc.db.db.prepare('INSERT INTO images(ns, name, target, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)');
      gsvc.db.tx(() => {
        gsvc.db.ensureNamespace('default', now());
        for (let i = 0; i < args.images; i++) {
          const m = manifestsOfNs0[i % manifestsOfNs0.length];
          insImage.run('default', `registry.example.com/list/app${String(i).padStart(6, '0')}:v${i % 7}`, JSON.stringify(m), JSON.stringify({ 'io.example/team': `t${i % 13}` }), t, t);
        }
      });
    } finally {
      await gsvc.close();
    }

    const lsvc = await openEmbedded(root, { gc: 'off' });
    try {
      const list: number[] = [];
      for (let r = 0; r < args.reps + 1; r++) {
        const w = performance.now();
        const imgs = await lsvc.images.list({ namespace: 'default' });
        const d = performance.now() - w;
        if (imgs.length !== args.images) throw new Error(`listed ${imgs.length} images, expected ${args.images}`);
        if (r > 0) list.push(d); // the first call also prepares the statement
        else process.stdout.write(`images.list (library) first call: ${ms(d)}\n`);
      }
      process.stdout.write(`images.list (library) over ${args.images} images, median of ${args.reps}: ${ms(median(list))}  [${list.map((x) => x.toFixed(1)).join(', ')}]\n`);
      const filtered: number[] = [];
      for (let r = 0; r < args.reps; r++) {
        const w = performance.now();
        await lsvc.images.list({ namespace: 'default' }, ['labels."io.example/team"==t3']);
        filtered.push(performance.now() - w);
      }
      process.stdout.write(`images.list with a label filter, median of ${args.reps}: ${ms(median(filtered))}\n`);
    } finally {
      await lsvc.close();
    }

    const cli = (cmd: string[]) => {
      const w = performance.now();
      const r = spawnSync(process.execPath, [MAIN, '--root', root, '-n', 'default', ...cmd], { encoding: 'utf8', maxBuffer: 64 << 20 });
      const d = performance.now() - w;
      if (r.status !== 0) throw new Error(`dist ${cmd.join(' ')} failed: ${r.stderr}`);
      return { d, out: r.stdout };
    };
    const lsq: number[] = [];
    const base: number[] = [];
    try {
      for (let r = 0; r < args.reps; r++) {
        const { d, out } = cli(['images', 'ls', '-q']);
        const n = out.split('\n').filter(Boolean).length;
        if (n !== args.images) throw new Error(`dist images ls -q printed ${n} lines, expected ${args.images}`);
        lsq.push(d);
        base.push(cli(['namespaces', 'ls', '-q']).d);
      }
      process.stdout.write(`dist images ls -q (CLI process), median of ${args.reps}: ${ms(median(lsq))}; start-up baseline (dist namespaces ls -q): ${ms(median(base))}\n`);
    } catch (err) {
      process.exitCode = 1;
      process.stdout.write(`dist images ls -q (CLI process): FAILED: ${(err as Error).message.split('\n').slice(0, 3).join(' | ')}\n`);
    }
  } finally {
    if (args.keep) process.stdout.write(`kept ${root}\n`);
    else rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`gc-scale: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
