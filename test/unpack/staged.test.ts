/**
 * overlayfs layers applied side by side (client/unpack's staging snapshots)
 * give the tree a layer-by-layer unpack gives: parents a layer creates
 * implicitly still get the lower directory's owner, mode, xattrs and atime
 * (containerd's mkparent), an opaque marker in such a parent keeps the lower
 * mtime, and nothing of the staging is left behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fetchImage, platformMatcher } from '../../src/client/fetch.js';
import { unpackImage } from '../../src/client/unpack.js';
import { chainIDs } from '../../src/images/chainid.js';
import type { Ctx } from '../../src/internal/context.js';
import { withTempMount } from '../../src/mount/index.js';
import type { DockerResolver } from '../../src/remotes/docker/index.js';
import { openEmbedded } from '../../src/services/embedded.js';
import { pushBlobs, type Image } from '../util/oci.js';
import { registryAvailable, startRegistry, testResolver, type Registry } from '../util/registry.js';
import { tempDir } from '../util/tmp.js';
import { byPath, dir, file, imageOf, layerOf, opaque, oracle } from './fixtures.js';

const skip = (!registryAvailable() && 'docker-registry not installed') || (process.getuid?.() !== 0 && 'needs root (owners, xattrs, mounts)');
const ctx: Ctx = { namespace: 'default' };
const SINCE = ['--since', String(BigInt(Date.now() - 2000) * 1_000_000n)];
const OLD = 1600000000;

let reg: Registry;
let resolver: DockerResolver;
let img: Image;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  resolver = testResolver();
  const l1 = await layerOf(
    [
      dir('a', { mode: 0o710, uid: 1000, gid: 1001, mtime: OLD, xattrs: { 'user.k': 'v' } }),
      dir('q', { mode: 0o750, uid: 7, gid: 7, mtime: OLD }),
      file('q/x', 'x\n'),
      file('big1.bin', randomBytes(6 << 20)),
    ],
    'gzip',
  );
  // a/ and q/ are implicit parents here; a/b exists in no lower layer
  const l2 = await layerOf([file('a/b/c', 'c\n'), opaque('q'), file('big2.bin', randomBytes(2 << 20))], 'gzip');
  const l3 = await layerOf([file('a/d', 'd\n'), file('a/b/e', 'e\n')], 'zstd');
  img = imageOf([l1, l2, l3]);
  await pushBlobs(ctx, await resolver.pusher(ctx, `${reg.host}/staged:v1`), img.blobs);
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await resolver?.close();
  await reg?.stop();
});

async function unpacked(parallel: boolean): Promise<{ tree: string; keys: string[] }> {
  const t = await tempDir('dist-staged-');
  cleanups.push(t.cleanup);
  const svc = await openEmbedded(join(t.dir, 'root'));
  try {
    const f = await fetchImage(svc, ctx, `${reg.host}/staged:v1`, { resolver });
    const r = await unpackImage(svc, ctx, f.image.target, { snapshotter: 'overlayfs', platform: platformMatcher({}), parallel });
    const chain = chainIDs(img.layers.map((l) => l.diffID));
    assert.deepEqual(r, { chainID: chain[2], applied: 3, layers: 3 });
    const sn = await svc.snapshotter('overlayfs');
    const keys: string[] = [];
    await sn.walk(ctx, (i) => void keys.push(i.name));
    const mounts = await sn.view(ctx, 'check', chain[2]);
    try {
      return { tree: await withTempMount(mounts, (d) => oracle(d, ...SINCE)), keys: keys.sort() };
    } finally {
      await sn.remove(ctx, 'check');
    }
  } finally {
    await svc.close();
  }
}

test('overlayfs: staged (parallel) unpack equals the layer-by-layer unpack', { skip }, async () => {
  const seq = await unpacked(false);
  const par = await unpacked(true);
  assert.equal(par.tree, seq.tree);
  // only the committed chain: no staging or extraction snapshots left
  assert.deepEqual(par.keys, chainIDs(img.layers.map((l) => l.diffID)).sort());
  const t = byPath(par.tree);
  // the implicit parent a/ carries the lower directory's owner, mode and xattrs
  assert.match(t.get('a') ?? '', /\tdir\tmode=0710\tuid=1000\tgid=1001\t/);
  assert.match(t.get('a') ?? '', /user\.k=/);
  assert.match(t.get('a/b') ?? '', /\tdir\tmode=0755\tuid=0\tgid=0\t/);
  // entries were made in a/ after it was created: its mtime is new; the
  // opaque q/ got nothing inside, so it keeps the lower directory's mtime
  assert.match(t.get('a') ?? '', /mtime=new/);
  assert.match(t.get('q') ?? '', new RegExp(`\\tdir\\tmode=0750\\tuid=7\\tgid=7\\t.*mtime=${OLD}000000000`));
  assert.equal(t.get('q/x'), undefined);
  for (const p of ['a/b/c', 'a/b/e', 'a/d', 'big1.bin', 'big2.bin']) assert.match(t.get(p) ?? '', /\tfile\t/, p);
});
