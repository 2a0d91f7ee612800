// Image pull through distd with the real ctr 1.6 and the real registry
// (Debian docker-registry on 127.0.0.1): pull + unpack into native and
// overlayfs (Diff/Apply on the daemon), ls, check, label, tag, mount,
// unmount, rm --sync (GC). Skipped without ctr/root or the registry.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { makeImage, type Image } from '../util/oci.js';
import { registryAvailable, startRegistry, type Registry } from '../util/registry.js';
import { ctr, ctrAvailable, pushBlob, pushManifest, rows, startTestDaemon, type TestDaemon } from './util.js';

const skip = !ctrAvailable() ? 'needs /usr/bin/ctr and root' : !registryAvailable() ? 'needs /usr/bin/docker-registry' : false;
let d: TestDaemon;
let reg: Registry;
let img: Image;
let ref: string;

before(async () => {
  if (skip) return;
  // Scheduled collections far out: the ad-hoc view below is not a GC root (as in containerd).
  [d, reg] = await Promise.all([startTestDaemon({ gc: { deletionThreshold: 0, scheduleDelayMs: 3_600_000 } }), startRegistry()]);
  img = await makeImage({
    layers: [
      { compression: 'gzip', files: [{ name: 'etc/a.txt', content: 'hello a\n' }, { name: 'etc/gone.txt', content: 'bye\n' }, { name: 'bin/tool', content: '#!/bin/sh\n', mode: 0o755 }] },
      // zstd layer deleting etc/gone.txt with an OCI whiteout
      { compression: 'zstd', files: [{ name: 'etc/b.txt', content: 'hello b\n' }, { name: 'etc/.wh.gone.txt', content: '' }] },
      { compression: 'none', files: [{ name: 'etc/c.txt', content: 'hello c\n'.repeat(1000) }] },
    ],
  });
  for (const b of img.blobs.slice(0, -1)) await pushBlob(reg.url, 'dist/small', b.desc.digest, b.bytes);
  await pushManifest(reg.url, 'dist/small', 'v1', img.manifest.desc.mediaType, img.manifest.bytes);
  ref = `${reg.host}/dist/small:v1`;
});

after(async () => {
  await d?.stop();
  await reg?.stop();
});

/** chainIDs of the image's layers, bottom first (identity.ChainIDs). */
function chainIDs(): string[] {
  const out: string[] = [];
  for (const l of img.layers) {
    const prev = out[out.length - 1];
    out.push(prev ? `sha256:${createHash('sha256').update(`${prev} ${l.diffID}`).digest('hex')}` : l.diffID);
  }
  return out;
}

async function checkTree(root: string): Promise<void> {
  assert.equal(await readFile(join(root, 'etc/a.txt'), 'utf8'), 'hello a\n');
  assert.equal(await readFile(join(root, 'etc/b.txt'), 'utf8'), 'hello b\n');
  assert.equal((await readFile(join(root, 'etc/c.txt'), 'utf8')).length, 8000);
  assert.equal((await lstat(join(root, 'bin/tool'))).mode & 0o777, 0o755);
  const etc = (await readdir(join(root, 'etc'))).sort();
  assert.deepEqual(etc, ['a.txt', 'b.txt', 'c.txt'], 'whiteout removed gone.txt');
}

test('ctr images pull --snapshotter native: fetch, Diff/Apply unpack, ls, check', { skip }, async () => {
  const ns = 'pull-native';
  await ctr(d.sock, ['images', 'pull', '--plain-http', '--snapshotter', 'native', ref], { ns });
  const ls = rows((await ctr(d.sock, ['images', 'ls'], { ns })).stdout);
  assert.equal(ls.length, 1);
  assert.deepEqual(ls[0].slice(0, 3), [ref, img.manifest.desc.mediaType, img.manifest.desc.digest]);
  assert.ok(ls[0].includes('linux/amd64'), JSON.stringify(ls[0]));
  const check = rows((await ctr(d.sock, ['images', 'check', '--snapshotter', 'native'], { ns })).stdout);
  assert.equal(check[0][3], 'complete (4/4)'); // config + 3 layers
  assert.equal(check[0][check[0].length - 1], 'true');
  // One committed snapshot per layer, named by chainID.
  const chain = chainIDs();
  const snaps = rows((await ctr(d.sock, ['snapshots', '--snapshotter', 'native', 'ls'], { ns })).stdout);
  assert.deepEqual(snaps.map((r) => r[0]).sort(), [...chain].sort());
  // The uncompressed digests were recorded on the layers, the snapshot ref on the config.
  const content = rows((await ctr(d.sock, ['content', 'ls'], { ns })).stdout);
  const labelsOf = (dg: string) => content.find((r) => r[0] === dg)?.[3] ?? '';
  assert.match(labelsOf(img.layers[0].desc.digest), new RegExp(`containerd.io/uncompressed=${img.layers[0].diffID}`));
  assert.match(labelsOf(img.config.desc.digest), new RegExp(`containerd.io/gc.ref.snapshot.native=${chain[2]}`));
  // Read the unpacked tree through a view of the top layer.
  const view = JSON.parse((await ctr(d.sock, ['snapshots', '--snapshotter', 'native', 'view', '--mounts', 'look', chain[2]], { ns })).stdout);
  assert.equal(view[0].Type, 'bind');
  await checkTree(view[0].Source);
  await ctr(d.sock, ['snapshots', '--snapshotter', 'native', 'rm', 'look'], { ns });
});

test('ctr images label | tag | rm --sync (GC collects blobs and snapshots)', { skip }, async () => {
  const ns = 'pull-native';
  await ctr(d.sock, ['images', 'label', ref, 'team=dist'], { ns });
  await ctr(d.sock, ['images', 'tag', ref, 'local/copy:v1'], { ns });
  let ls = rows((await ctr(d.sock, ['images', 'ls'], { ns })).stdout);
  assert.deepEqual(ls.map((r) => r[0]).sort(), ['local/copy:v1', ref].sort());
  assert.equal(ls.find((r) => r[0] === ref)![ls[0].length - 1], 'team=dist');
  // tag copies the record, labels included
  assert.deepEqual((await ctr(d.sock, ['images', 'ls', '-q', 'labels.team==dist'], { ns })).stdout.trim().split('\n').sort(), ['local/copy:v1', ref].sort());
  assert.deepEqual((await ctr(d.sock, ['images', 'ls', '-q', 'name~=^local/'], { ns })).stdout.trim().split('\n'), ['local/copy:v1']);
  await ctr(d.sock, ['images', 'rm', '--sync', ref], { ns });
  // The tag still references everything.
  assert.equal(rows((await ctr(d.sock, ['content', 'ls'], { ns })).stdout).length, 5);
  await ctr(d.sock, ['images', 'rm', '--sync', 'local/copy:v1'], { ns });
  ls = rows((await ctr(d.sock, ['images', 'ls'], { ns })).stdout);
  assert.equal(ls.length, 0);
  assert.equal(rows((await ctr(d.sock, ['content', 'ls'], { ns })).stdout).length, 0, 'blobs collected');
  assert.equal(rows((await ctr(d.sock, ['snapshots', '--snapshotter', 'native', 'ls'], { ns })).stdout).length, 0, 'snapshots collected');
});

test('ctr images pull (default overlayfs) | mount | unmount', { skip }, async () => {
  const ns = 'pull-overlay';
  await ctr(d.sock, ['images', 'pull', '--plain-http', ref], { ns });
  const check = rows((await ctr(d.sock, ['images', 'check'], { ns })).stdout);
  assert.equal(check[0][check[0].length - 1], 'true');
  const target = join(d.dir, 'mnt');
  await mkdir(target, { recursive: true });
  const out = await ctr(d.sock, ['images', 'mount', ref, target], { ns });
  try {
    assert.match(out.stdout, new RegExp(chainIDs()[2]));
    await checkTree(target);
  } finally {
    await ctr(d.sock, ['images', 'unmount', '--rm', target], { ns });
  }
  assert.deepEqual(await readdir(target), []);
});

test('namespace label containerd.io/defaults/snapshotter steers ctr images pull', { skip }, async () => {
  const ns = 'pull-default';
  await ctr(d.sock, ['namespaces', 'create', ns, 'containerd.io/defaults/snapshotter=native']);
  await ctr(d.sock, ['images', 'pull', '--plain-http', ref], { ns });
  assert.equal(rows((await ctr(d.sock, ['snapshots', '--snapshotter', 'native', 'ls'], { ns })).stdout).length, 3);
  assert.equal(rows((await ctr(d.sock, ['snapshots', '--snapshotter', 'overlayfs', 'ls'], { ns })).stdout).length, 0);
});

test('ctr images export | import | push (to the registry) | pull back', { skip }, async () => {
  const ns = 'pull-export';
  await ctr(d.sock, ['images', 'pull', '--plain-http', '--snapshotter', 'native', ref], { ns });
  const file = join(d.dir, 'small.tar');
  await ctr(d.sock, ['images', 'export', file, ref], { ns });
  await ctr(d.sock, ['images', 'import', '--snapshotter', 'native', file], { ns: 'imported' });
  assert.deepEqual((await ctr(d.sock, ['images', 'ls', '-q'], { ns: 'imported' })).stdout.trim().split('\n'), [ref]);
  const check = rows((await ctr(d.sock, ['images', 'check', '--snapshotter', 'native'], { ns: 'imported' })).stdout);
  assert.equal(check[0][check[0].length - 1], 'true');
  // push under another name, then pull it into a fresh namespace
  const pushed = `${reg.host}/dist/pushed:v2`;
  await ctr(d.sock, ['images', 'tag', ref, pushed], { ns });
  await ctr(d.sock, ['images', 'push', '--plain-http', pushed], { ns });
  await ctr(d.sock, ['images', 'pull', '--plain-http', '--snapshotter', 'native', pushed], { ns: 'repulled' });
  const ls = rows((await ctr(d.sock, ['images', 'ls'], { ns: 'repulled' })).stdout);
  assert.deepEqual(ls.map((r) => [r[0], r[2]]), [[pushed, img.manifest.desc.digest]]);
});
