/**
 * Shared plumbing of the proxy tests: a daemon started once per test file
 * (lazily, by the first test that needs it; stopped by `after`), remote
 * Services on it, and suite factories that give each test fresh namespaces
 * with a lease (as containerd's integration suites do), cleaned up afterwards.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { tempDir } from '../util/tmp.js';
import { connect, type Remote } from '../../src/services/remote.js';
import type { Ctx } from '../../src/internal/context.js';
import type { Snapshotter } from '../../src/snapshots/types.js';
import type { SuiteFactory } from '../content/testsuite.js';
import type { SnapshotterFactory } from '../snapshots/testsuite.js';

export interface Daemon {
  address: string;
  stop(): Promise<void>;
  log?(lines?: number): string;
}

/** One daemon + one Remote per test file, started on first use. */
export function lazyRemote(start: () => Promise<Daemon>): () => Promise<{ daemon: Daemon; svc: Remote }> {
  let p: Promise<{ daemon: Daemon; svc: Remote }> | undefined;
  after(async () => {
    if (!p) return;
    const r = await p.catch(() => undefined);
    if (!r) return;
    await r.svc.close();
    await r.daemon.stop();
  });
  return () => {
    if (!p) {
      p = (async () => {
        const daemon = await start();
        try {
          return { daemon, svc: await connect(daemon.address) };
        } catch (err) {
          await daemon.stop();
          throw err;
        }
      })();
    }
    return p;
  };
}

let seq = 0;
/** A fresh namespace name for this process. */
export const uniqueNS = (prefix = 'proxy') => `${prefix}-${process.pid}-${++seq}`;

/** Removes what a test left in a namespace (best effort): ingests, blobs, images, leases, the namespace. */
export async function cleanNamespace(svc: Remote, ns: string): Promise<void> {
  const ctx: Ctx = { namespace: ns };
  for (const st of await svc.content.listStatuses(ctx).catch(() => [])) await svc.content.abort(ctx, st.ref).catch(() => undefined);
  const blobs: string[] = [];
  await svc.content.walk(ctx, (i) => { blobs.push(i.digest); }).catch(() => undefined);
  for (const d of blobs) await svc.content.delete(ctx, d).catch(() => undefined);
  for (const img of await svc.images.list(ctx).catch(() => [])) await svc.images.delete(ctx, img.name).catch(() => undefined);
  for (const l of await svc.leases.list(ctx).catch(() => [])) await svc.leases.delete(ctx, l).catch(() => undefined);
  await svc.namespaces.delete(ctx, ns).catch(() => undefined);
}

/** Content suite factory: two fresh namespaces, each with a lease. */
export function contentFactory(get: () => Promise<{ svc: Remote }>, flags: { containerd16?: boolean } = {}): SuiteFactory {
  return async () => {
    const { svc } = await get();
    const ns1 = uniqueNS('content');
    const ns2 = `${ns1}-b`;
    const l1 = await svc.leases.create({ namespace: ns1 });
    const l2 = await svc.leases.create({ namespace: ns2 });
    return {
      store: svc.content,
      ctx: { namespace: ns1, lease: l1.id },
      ctx2: { namespace: ns2, lease: l2.id },
      containerd16: flags.containerd16,
      truncateToZeroOnly: true,
      cleanup: async () => {
        await cleanNamespace(svc, ns1);
        await cleanNamespace(svc, ns2);
      },
    };
  };
}

/** Removes every snapshot of a namespace, children first. */
export async function removeSnapshots(sn: Snapshotter, ctx: Ctx): Promise<void> {
  for (let round = 0; round < 200; round++) {
    const infos: { name: string; parent?: string }[] = [];
    await sn.walk(ctx, (i) => { infos.push(i); });
    if (infos.length === 0) return;
    const parents = new Set(infos.map((i) => i.parent).filter(Boolean));
    const leaves = infos.filter((i) => !parents.has(i.name));
    for (const l of leaves) await sn.remove(ctx, l.name).catch(() => undefined);
  }
}

/**
 * Wraps a snapshotter so every call runs in `ns` under `lease`, whatever
 * Ctx the suite passes (the suite uses one fixed namespace for all tests).
 */
function scoped(sn: Snapshotter, ns: string, lease: string): Snapshotter {
  const c = (ctx: Ctx): Ctx => ({ ...ctx, namespace: ns, lease });
  return {
    stat: (ctx, key) => sn.stat(c(ctx), key),
    update: (ctx, info, paths) => sn.update(c(ctx), info, paths),
    usage: (ctx, key) => sn.usage(c(ctx), key),
    mounts: (ctx, key) => sn.mounts(c(ctx), key),
    prepare: (ctx, key, parent, opts) => sn.prepare(c(ctx), key, parent, opts),
    view: (ctx, key, parent, opts) => sn.view(c(ctx), key, parent, opts),
    commit: (ctx, name, key, opts) => sn.commit(c(ctx), name, key, opts),
    remove: (ctx, key) => sn.remove(c(ctx), key),
    walk: (ctx, fn, filters) => sn.walk(c(ctx), fn, filters),
    cleanup: (ctx) => sn.cleanup!(c(ctx)),
    close: () => sn.close(),
  };
}

/** Snapshotter suite factory: the named snapshotter in a fresh namespace with a lease. */
export function snapshotterFactory(get: () => Promise<{ svc: Remote }>, name: string): SnapshotterFactory {
  return async () => {
    const { svc } = await get();
    const sn = await svc.snapshotter(name);
    const ns = uniqueNS(`sn-${name}`);
    const lease = await svc.leases.create({ namespace: ns });
    return {
      snapshotter: scoped(sn, ns, lease.id),
      cleanup: async () => {
        await removeSnapshots(sn, { namespace: ns, lease: lease.id }).catch(() => undefined);
        await cleanNamespace(svc, ns);
      },
    };
  };
}

const DISTD = fileURLToPath(new URL('../../src/cmd/distd/main.js', import.meta.url));

/** Why distd cannot run here (not built, or not root for snapshot mounts), or undefined. */
export function distdUnavailable(): string | undefined {
  if (!existsSync(DISTD)) return `${DISTD} not built`;
  if (process.getuid?.() !== 0) return 'needs root';
  return undefined;
}

/**
 * Our distd in its own process (`distd --root --state --address` on a temp
 * dir), as a user would run it; waits up to 15 s for the socket; stop() sends
 * SIGTERM (SIGKILL after 5 s) and removes the dir.
 */
export async function startDistd(): Promise<Daemon> {
  const { dir, cleanup } = await tempDir('distd-proxy-');
  const address = join(dir, 'distd.sock');
  const logPath = join(dir, 'distd.log');
  const fd = openSync(logPath, 'a');
  const child = spawn(process.execPath, [DISTD, '--root', join(dir, 'root'), '--state', join(dir, 'run'), '--address', address, '--log-level', 'warn'], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited: number | null | undefined;
  const exitP = new Promise<void>((res) => child.once('exit', (code) => { exited = code; res(); }));
  const onExit = () => { if (exited === undefined) child.kill('SIGKILL'); };
  process.once('exit', onExit);
  const log = (lines = 20) => (existsSync(logPath) ? readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '');
  const stop = async () => {
    process.off('exit', onExit);
    if (exited === undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitP;
      clearTimeout(timer);
    }
    await cleanup();
  };
  const isSocket = () => { try { return statSync(address).isSocket(); } catch { return false; } };
  const deadline = Date.now() + 15_000;
  while (!isSocket()) {
    if (exited !== undefined || Date.now() > deadline) {
      const l = log();
      await stop();
      throw new Error(`distd did not start (${exited ?? 'timeout'}):\n${l}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { address, stop, log };
}
