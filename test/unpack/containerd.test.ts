/**
 * The reference check: a private containerd 1.6 (test/util/containerd.ts)
 * and dist pull the same test-built image from a real docker-registry, and
 * the tree oracle of containerd's unpacked snapshot must equal ours — for
 * both snapshotters byte for byte (modes, owners, contents, link groups,
 * devices, xattrs, ns mtimes — for native including the copy time that
 * continuity's fs.CopyDir leaves on every non-empty directory, which our
 * native snapshotter reproduces).
 *
 * Two deliberate differences from containerd 1.6's overlayfs fast path
 * (which applies into the upper dir looking only at the upper dir) are
 * pinned down here: an entry below a symlinked directory of a lower layer
 * (containerd replaces the symlink by a new directory; dist follows it, as
 * containerd's native snapshotter and a mounted overlay do), and a hard
 * link to a lower layer's file (containerd fails the unpack; dist copies the
 * file up and links it).
 * Skipped when containerd/ctr or docker-registry are missing or not root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pullImage } from '../../src/client/pull.js';
import { chainID } from '../../src/images/chainid.js';
import type { Ctx } from '../../src/internal/context.js';
import { withTempMount, type Mount } from '../../src/mount/index.js';
import type { DockerResolver } from '../../src/remotes/docker/index.js';
import { openEmbedded } from '../../src/services/embedded.js';
import { containerdUnavailable, startContainerd, type Containerd } from '../util/containerd.js';
import { pushBlobs, type Image } from '../util/oci.js';
import { registryAvailable, startRegistry, testResolver, type Registry } from '../util/registry.js';
import { tempDir } from '../util/tmp.js';
import { startTestDaemon } from '../distd/util.js';
import { imageOf, oracle, trickyLayers, withoutDirMtimes } from './fixtures.js';

const run = promisify(execFile);
const ctrMissing = spawnSync('ctr', ['--version']).status !== 0 && 'ctr not installed';
const skip = containerdUnavailable() || ctrMissing || (!registryAvailable() && 'docker-registry not installed');
const ctx: Ctx = { namespace: 'default' };
const NS = 'dist-compare';
const SINCE = ['--since', String(BigInt(Date.now() - 2000) * 1_000_000n)];

let ctd: Containerd;
let reg: Registry;
let resolver: DockerResolver;
let tricky: Image;
let plain: Image;
let xlink: Image;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  if (skip) return;
  [ctd, reg] = await Promise.all([startContainerd(), startRegistry()]);
  resolver = testResolver();
  tricky = imageOf(await trickyLayers());
  plain = imageOf(await trickyLayers({ throughSymlink: false }));
  xlink = imageOf(await trickyLayers({ crossLayerHardlink: true }));
  await pushBlobs(ctx, await resolver.pusher(ctx, `${reg.host}/tricky:v1`), tricky.blobs);
  await pushBlobs(ctx, await resolver.pusher(ctx, `${reg.host}/plain:v1`), plain.blobs);
  await pushBlobs(ctx, await resolver.pusher(ctx, `${reg.host}/xlink:v1`), xlink.blobs);
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await resolver?.close();
  await ctd?.stop();
  await reg?.stop();
});

async function ctr(...args: string[]): Promise<string> {
  return ctrAt(ctd.address, ...args);
}

async function ctrAt(address: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('ctr', ['--address', address, '-n', NS, ...args], { maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`ctr ${args.join(' ')}: ${e.stderr?.trim() || e.message}\n${ctd.log(10)}`);
  }
}

/** `ctr images pull` of ref with snapshotter sn through a daemon (default: containerd), as oracle output. */
async function ctrTree(ref: string, sn: string, top: string, address = ctd.address): Promise<string> {
  await ctrAt(address, 'images', 'pull', '--plain-http', '--snapshotter', sn, ref);
  // not `ctr images mount`: ctr 1.6 takes its snapshotter from a global flag that does not exist
  const key = `view-${sn}-${Math.random().toString(36).slice(2)}`;
  const raw = JSON.parse(await ctrAt(address, 'snapshots', '--snapshotter', sn, 'view', '--mounts', key, top)) as Array<{ Type: string; Source: string; Options: string[] }>;
  const mounts: Mount[] = raw.map((m) => ({ type: m.Type, source: m.Source, options: m.Options ?? [] }));
  try {
    return await withTempMount(mounts, (d) => oracle(d, ...SINCE));
  } finally {
    await ctrAt(address, 'snapshots', '--snapshotter', sn, 'rm', key).catch(() => undefined);
  }
}

/** dist's unpack (fresh root), as oracle output. */
async function distTree(ref: string, sn: string, top: string): Promise<string> {
  const t = await tempDir('dist-cmp-');
  cleanups.push(t.cleanup);
  const svc = await openEmbedded(join(t.dir, 'root'));
  try {
    const r = await pullImage(svc, ctx, ref, { resolver, snapshotter: sn });
    assert.equal(r.unpack?.chainID, top);
    const s = await svc.snapshotter(sn);
    const mounts = await s.view(ctx, 'oracle', top);
    try {
      return await withTempMount(mounts, (d) => oracle(d, ...SINCE));
    } finally {
      await s.remove(ctx, 'oracle');
    }
  } finally {
    await svc.close();
  }
}

test('ctr images pull through distd yields the tree ctr images pull through containerd yields (native and overlayfs)', { skip }, async () => {
  const d = await startTestDaemon();
  try {
    for (const [name, img, sn] of [['tricky', tricky, 'native'], ['plain', plain, 'overlayfs']] as const) {
      const ref = `${reg.host}/${name}:v1`;
      const top = chainID(img.layers.map((l) => l.diffID));
      const viaContainerd = await ctrTree(ref, sn, top);
      const viaDistd = await ctrTree(ref, sn, top, d.sock);
      assert.deepEqual(differences(viaContainerd, viaDistd), [], `${name} ${sn}`);
    }
  } finally {
    await d.stop();
  }
});

/** Lines that differ, as [ctr line | undefined, dist line | undefined] by path. */
function differences(a: string, b: string): Array<[string, string | undefined, string | undefined]> {
  const ma = new Map(a.trimEnd().split('\n').map((l) => [l.split('\t')[0], l]));
  const mb = new Map(b.trimEnd().split('\n').map((l) => [l.split('\t')[0], l]));
  const out: Array<[string, string | undefined, string | undefined]> = [];
  for (const p of new Set([...ma.keys(), ...mb.keys()])) if (ma.get(p) !== mb.get(p)) out.push([p, ma.get(p), mb.get(p)]);
  return out.sort((x, y) => (x[0] < y[0] ? -1 : 1));
}

test('containerd 1.6 and dist unpack the tricky image identically (overlayfs)', { skip }, async () => {
  const ref = `${reg.host}/plain:v1`;
  const top = chainID(plain.layers.map((l) => l.diffID));
  const [a, b] = [await ctrTree(ref, 'overlayfs', top), await distTree(ref, 'overlayfs', top)];
  assert.ok(a.split('\n').length > 40, a);
  assert.deepEqual(differences(a, b), []);
});

test('an entry below a lower layer\'s symlinked dir: dist overlayfs, like containerd 1.6\'s, replaces the symlink with a directory', { skip }, async () => {
  const ref = `${reg.host}/tricky:v1`;
  const top = chainID(tricky.layers.map((l) => l.diffID));
  const [a, b] = [await ctrTree(ref, 'overlayfs', top), await distTree(ref, 'overlayfs', top)];
  assert.deepEqual(differences(a, b), []);
  const t = new Map(b.trimEnd().split('\n').map((l) => [l.split('\t')[0], l]));
  assert.match(t.get('linkdir') ?? '', /\tdir\t/); // a new directory over the lower symlink
  assert.match(t.get('linkdir/f2') ?? '', /\tfile\t/);
  assert.equal(t.get('realdir/f2'), undefined);
});

test('containerd 1.6 and dist unpack the tricky image identically (native, directory mtimes included)', { skip }, async () => {
  const ref = `${reg.host}/tricky:v1`;
  const top = chainID(tricky.layers.map((l) => l.diffID));
  const [a, b] = [await ctrTree(ref, 'native', top), await distTree(ref, 'native', top)];
  // Our native snapshotter gives copied directories the copy time, as continuity's CopyDir does.
  assert.deepEqual(differences(a, b), []);
});

test('a hard link to a lower layer\'s file: native equal to containerd; overlayfs: containerd 1.6 and dist both fail the unpack', { skip }, async () => {
  const ref = `${reg.host}/xlink:v1`;
  const top = chainID(xlink.layers.map((l) => l.diffID));
  const [a, b] = [await ctrTree(ref, 'native', top), await distTree(ref, 'native', top)];
  assert.deepEqual(differences(withoutDirMtimes(a), withoutDirMtimes(b)), []);
  assert.match(b, /\nbin\/tool-hl2\tfile\t.*\tnlink=3\tgroup=bin\/tool\n/);

  // the overlayfs upperdir path links inside the upper dir only: the target is not there
  let ctrErr: Error | undefined;
  try {
    await ctr('images', 'pull', '--plain-http', '--snapshotter', 'overlayfs', ref);
  } catch (err) {
    ctrErr = err as Error;
  }
  assert.ok(ctrErr, 'containerd 1.6 was expected to fail this unpack on overlayfs');
  assert.match(ctrErr.message, /link .*no such file or directory/i);
  await assert.rejects(distTree(ref, 'overlayfs', top), (err: Error) => {
    assert.match(err.message, /bin\/tool-hl2|tool/);
    assert.match(err.message, /ENOENT|no such file|not found/i);
    return true;
  });
});
