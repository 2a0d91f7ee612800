/**
 * Differential harness: applies the same layers with our applier (native and
 * JS executors) and with containerd's archive.Apply (the oracle), each in its
 * own sandbox {root | upper<i>, outside}, then checks
 *  - every implementation agrees on success/failure,
 *  - the resulting trees are identical (mtimes set at apply time print "new"),
 *  - nothing outside the root changed (content, mode, owner, link count).
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { apply, type ApplyOptions } from '../../src/archive/apply.js';
import { native } from '../../src/internal/sys.js';
import { listTree, oracle, runOracle, streamOf } from './util.js';

export interface Env {
  /** Absolute path of this sandbox's outside dir (planted victims). */
  outside: string;
  /** Absolute path of the root the layers go to (last upper in overlay mode). */
  root: string;
}

export interface Case {
  layers: (env: Env) => Buffer[];
  /** Apply each layer to its own upper dir with overlay whiteouts and the previous uppers as parents. */
  overlay?: boolean;
  /** Without parents in overlay mode (each upper standalone). */
  noParents?: boolean;
  /** With parents: lookups in the merged view (ours only; containerd's fast path has none). */
  lowerLookups?: boolean;
  /** The last layer must fail (all implementations). */
  fails?: boolean | RegExp;
  /** Chunk size of the input stream (exercise split headers). */
  chunk?: number;
  opts?: Partial<ApplyOptions>;
  /** Skip the oracle comparison (documented divergence). */
  noOracle?: boolean;
}

/** native: one thread; pool: regular files on 4 threads; js: the fallback executor. */
export type Impl = 'native' | 'pool' | 'js' | 'containerd';

export function impls(): Impl[] {
  const out: Impl[] = [];
  if (native) out.push('native', 'pool');
  out.push('js');
  if (oracle()) out.push('containerd');
  return out;
}

/** Plants victims outside the root. */
async function plant(outside: string): Promise<void> {
  await fsp.mkdir(join(outside, 'dir'), { recursive: true });
  await fsp.writeFile(join(outside, 'victim'), 'original');
  await fsp.chmod(join(outside, 'victim'), 0o644);
  await fsp.writeFile(join(outside, 'dir', 'inner'), 'inner');
  await fsp.chmod(join(outside, 'dir'), 0o750);
  await fsp.symlink('victim', join(outside, 'vlink'));
}

export interface Outcome {
  impl: Impl;
  error?: string;
  trees: string[][];
  outsideBefore: string[];
  outsideAfter: string[];
  env: Env;
}

export async function runCase(base: string, impl: Impl, c: Case, since: bigint): Promise<Outcome> {
  const dir = join(base, impl);
  const outside = join(dir, 'outside');
  await fsp.mkdir(outside, { recursive: true });
  await plant(outside);
  const outsideBefore = await listTree(outside);
  const n0 = c.layers({ outside, root: join(dir, c.overlay ? 'upper0' : 'root') }).length;
  const roots: string[] = c.overlay ? Array.from({ length: n0 }, (_, i) => join(dir, `upper${i}`)) : [join(dir, 'root')];
  for (const r of roots) await fsp.mkdir(r, { recursive: true });
  const env: Env = { outside, root: roots[roots.length - 1]! };
  const layers = c.layers(env);
  let error: string | undefined;
  for (let i = 0; i < layers.length; i++) {
    const root = c.overlay ? roots[i]! : roots[0]!;
    const parents = c.overlay && !c.noParents ? roots.slice(0, i).reverse() : [];
    try {
      if (impl === 'containerd') {
        const r = await runOracle(root, layers[i]!, { overlay: c.overlay, parents });
        if (!r.ok) throw new Error(r.err.trim());
      } else {
        await apply(root, streamOf(layers[i]!, c.chunk), {
          executor: impl === 'js' ? 'js' : 'native',
          threads: impl === 'pool' ? 4 : 1,
          overlayWhiteouts: c.overlay,
          parents: parents.length ? parents : undefined,
          lowerLookups: c.lowerLookups,
          ...c.opts,
        });
      }
    } catch (err) {
      error = (err as Error).message;
      if (i < layers.length - 1) throw new Error(`${impl}: layer ${i} failed: ${error}`);
    }
  }
  const trees: string[][] = [];
  for (const r of roots) trees.push(await listTree(r, { since }));
  return { impl, error, trees, outsideBefore, outsideAfter: await listTree(outside), env };
}

/** Runs a case on every implementation and checks they agree. Returns the outcomes (ours first). */
export async function check(base: string, c: Case): Promise<Outcome[]> {
  const since = BigInt(Date.now() - 2000) * 1_000_000n;
  const outs: Outcome[] = [];
  for (const impl of impls()) {
    if (impl === 'containerd' && c.noOracle) continue;
    outs.push(await runCase(base, impl, c, since));
  }
  for (const o of outs) {
    assert.deepEqual(o.outsideAfter, o.outsideBefore, `${o.impl}: something outside the root changed`);
    if (c.fails) {
      assert.ok(o.error, `${o.impl}: expected the last layer to fail`);
      if (c.fails instanceof RegExp && o.impl !== 'containerd') assert.match(o.error!, c.fails, `${o.impl}: error message`);
    } else {
      assert.equal(o.error, undefined, `${o.impl}: unexpected failure`);
    }
  }
  const ref = outs[0]!;
  for (const o of outs.slice(1)) {
    // the JS executor sets times through Node's utimes (a double): sub-µs precision is lost
    const coarse = o.impl === 'js' || ref.impl === 'js';
    for (let i = 0; i < ref.trees.length; i++) {
      assert.deepEqual(normalize(o.trees[i]!, o.env, coarse), normalize(ref.trees[i]!, ref.env, coarse), `${o.impl} vs ${ref.impl}: tree ${i} differs`);
    }
  }
  return outs;
}

/** Sandbox paths (in link targets, and in names created inside the root) differ per implementation. */
function normalize(lines: string[], env: Env, coarse: boolean): string[] {
  return lines.map((l) => {
    const sandbox = dirname(env.outside);
    l = l.split(sandbox).join('<SANDBOX>').split(sandbox.slice(1)).join('<SANDBOX-REL>');
    // Node's utimes takes seconds as a double: compare to the millisecond
    return coarse ? l.replace(/mtime=(-?\d+)\b/, (_, ns: string) => `mtime=${(BigInt(ns) + 500_000n) / 1_000_000n}ms`) : l;
  });
}
