/**
 * Unpack benchmark: a generated layer set (default ~100 MB uncompressed,
 * gzip) applied by
 *   tar        igzip -dc | tar -x            (the baseline)
 *   ours       applyLayer, native executor (default threads: 1 below 4 cores)
 *   ours-pool  applyLayer, native executor writing files on 4 threads
 *   ours-js    applyLayer, JS executor (no addon)
 *   containerd igzip -dc | containerd 1.6 archive.Apply (Go oracle)
 * Runs are interleaved; the median wall time of each is reported with the
 * ratio to tar.
 *
 * Usage: node build/test/archive/bench.js [--mb 100] [--runs 3] [--dir /tmp/x] [--out /dev/shm/x] [--only tar,ours]
 *        [--layers dir1,dir2]   (directories holding layer.tar + layer.tar.gz instead of generated ones)
 */
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyLayer } from '../../src/archive/apply.js';
import { gzipBackend } from '../../src/archive/compression.js';
import { native } from '../../src/internal/sys.js';
import { oracle } from './util.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : def;
};
const MB = Number(opt('mb', '100'));
const RUNS = Number(opt('runs', '3'));
const BASE = opt('dir', join(tmpdir(), `dist-archive-bench-${MB}`));
const ONLY = opt('only', 'tar,ours,ours-pool,ours-js,containerd').split(',');

/** Deterministic pseudo-random numbers. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const WORDS = 'the layer of an image holds files directories links and metadata for a container runtime to unpack quickly and safely'.split(' ');

function content(r: () => number, size: number): Buffer {
  // text-like, compresses ~3-4x with gzip, plus some incompressible runs
  const b = Buffer.allocUnsafe(size);
  let i = 0;
  while (i < size) {
    if (r() < 0.02) {
      const n = Math.min(size - i, 16 + Math.floor(r() * 112));
      for (let k = 0; k < n; k++) b[i + k] = Math.floor(r() * 256);
      i += n;
    } else {
      const w = WORDS[Math.floor(r() * WORDS.length)]! + (r() < 0.1 ? '\n' : ' ');
      i += b.write(w, i, 'latin1');
    }
  }
  return b;
}

function fileSize(r: () => number): number {
  // roughly a distro image: ~17 KB on average, a few big shared libraries
  const x = r();
  if (x < 0.7) return Math.floor(r() * 4096);
  if (x < 0.97) return 4096 + Math.floor(r() * 32_768);
  if (x < 0.998) return 65_536 + Math.floor(r() * 270_000);
  return 1_000_000 + Math.floor(r() * 3_000_000);
}

/** Generates a tree of about `bytes` and tars it (PAX, like docker/buildkit layers). */
async function makeLayer(dir: string, bytes: number, seed: number): Promise<void> {
  const r = rng(seed);
  const tree = join(dir, 'tree');
  await fsp.rm(tree, { recursive: true, force: true });
  const dirs = ['usr', 'usr/lib', 'usr/share', 'etc', 'var/lib'];
  for (const d of dirs) await fsp.mkdir(join(tree, d), { recursive: true });
  let total = 0;
  let files = 0;
  while (total < bytes) {
    if (r() < 0.08 || dirs.length < 20) {
      const parent = dirs[Math.floor(r() * dirs.length)]!;
      const d = `${parent}/d${dirs.length}`;
      await fsp.mkdir(join(tree, d), { recursive: true });
      dirs.push(d);
    }
    const d = dirs[Math.floor(r() * dirs.length)]!;
    const p = join(tree, d, `f${files++}.${['so', 'py', 'txt', 'h', 'js'][files % 5]}`);
    const size = fileSize(r);
    await fsp.writeFile(p, content(r, size));
    if (r() < 0.2) await fsp.chmod(p, 0o755);
    total += size;
    if (r() < 0.05) await fsp.symlink(`f${files - 1}.${['so', 'py', 'txt', 'h', 'js'][(files - 1) % 5]}`, join(tree, d, `l${files}`));
    if (r() < 0.01) await fsp.link(p, join(tree, d, `h${files}`));
  }
  execFileSync('tar', ['-C', tree, '--format=posix', '--numeric-owner', '-cf', join(dir, 'layer.tar'), '.']);
  execFileSync('sh', ['-c', `pigz -6 -c ${join(dir, 'layer.tar')} > ${join(dir, 'layer.tar.gz')}`]);
  await fsp.rm(tree, { recursive: true, force: true });
  console.error(`layer ${dir}: ${files} files, ${(total / 1e6).toFixed(1)} MB of data`);
}

function sh(cmd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd}: exit ${code}`))));
  });
}

async function main(): Promise<void> {
  await fsp.mkdir(BASE, { recursive: true });
  const parts = [0.6, 0.3, 0.1];
  let layers = parts.map((_, i) => join(BASE, `layer${i}`));
  const given = opt('layers', '');
  if (given) {
    // existing directories holding layer.tar and layer.tar.gz
    layers = given.split(',');
  } else {
    for (let i = 0; i < parts.length; i++) {
      if (!existsSync(join(layers[i]!, 'layer.tar.gz'))) {
        await fsp.mkdir(layers[i]!, { recursive: true });
        await makeLayer(layers[i]!, parts[i]! * MB * 1e6, 42 + i);
      }
    }
  }
  let plain = 0;
  let gz = 0;
  for (const l of layers) {
    plain += (await fsp.stat(join(l, 'layer.tar'))).size;
    gz += (await fsp.stat(join(l, 'layer.tar.gz'))).size;
  }
  console.log(`layer set: ${layers.length} layers, ${(plain / 1e6).toFixed(1)} MB tar, ${(gz / 1e6).toFixed(1)} MB gzip; gzip backend ${gzipBackend()}; addon ${native ? 'loaded' : 'missing'}`);
  // one fresh directory per run, deleted only at the end: deleting between runs
  // makes the file system discard blocks while the next run writes (noise)
  const outBase = opt('out', join(BASE, 'out'));
  await fsp.rm(outBase, { recursive: true, force: true });
  let seq = 0;
  const impls: Record<string, (root: string) => Promise<void>> = {
    tar: async (root) => {
      for (const l of layers) await sh(`igzip -dc ${join(l, 'layer.tar.gz')} | tar -x -C ${root}`);
    },
    ours: async (root) => {
      for (const l of layers) await applyLayer(root, createReadStream(join(l, 'layer.tar.gz'), { highWaterMark: 1 << 20 }), { executor: 'native' });
    },
    'ours-pool': async (root) => {
      for (const l of layers) await applyLayer(root, createReadStream(join(l, 'layer.tar.gz'), { highWaterMark: 1 << 20 }), { executor: 'native', threads: 4 });
    },
    'ours-js': async (root) => {
      for (const l of layers) await applyLayer(root, createReadStream(join(l, 'layer.tar.gz'), { highWaterMark: 1 << 20 }), { executor: 'js' });
    },
    containerd: async (root) => {
      for (const l of layers) await sh(`igzip -dc ${join(l, 'layer.tar.gz')} | ${oracle()} ${root} > /dev/null`);
    },
  };
  const names = Object.keys(impls).filter((n) => ONLY.includes(n) && (!n.startsWith('ours') || n === 'ours-js' || native) && (n !== 'containerd' || oracle()));
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let run = 0; run < RUNS; run++) {
    for (const n of names) {
      const out = join(outBase, `${n}-${seq++}`);
      await fsp.mkdir(out, { recursive: true });
      execFileSync('sync');
      await new Promise((r) => setTimeout(r, 300));
      const t0 = performance.now();
      await impls[n]!(out);
      times[n]!.push(performance.now() - t0);
    }
  }
  await fsp.rm(outBase, { recursive: true, force: true });
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  const min = (a: number[]) => Math.min(...a);
  const base = times.tar ? med(times.tar) : undefined;
  const baseMin = times.tar ? min(times.tar) : undefined;
  for (const n of names) {
    const m = med(times[n]!);
    const lo = min(times[n]!);
    console.log(
      `${n.padEnd(11)} median ${m.toFixed(0).padStart(6)} ms${base ? ` (${(m / base).toFixed(2)}x tar)` : ''}` +
        `  best ${lo.toFixed(0).padStart(6)} ms${baseMin ? ` (${(lo / baseMin).toFixed(2)}x tar)` : ''}` +
        `  ${(plain / 1e6 / (m / 1000)).toFixed(0)} MB/s  runs: ${times[n]!.map((t) => t.toFixed(0)).join(', ')}`,
    );
  }
}

await main();
