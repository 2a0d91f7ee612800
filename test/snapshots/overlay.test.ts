import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chown, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { tempDir } from '../util/tmp.js';
import { withTempMount } from '../../src/mount/index.js';
import { OverlaySnapshotter } from '../../src/snapshots/overlay/index.js';
import { snapshotterSuite } from './testsuite.js';

snapshotterSuite('overlayfs', async (_ctx, root) => {
  const snapshotter = await OverlaySnapshotter.open(root);
  return { snapshotter, cleanup: () => snapshotter.close() };
});

const ctx = {};
const indexOff = existsSync('/sys/module/overlay/parameters/index') ? ['index=off'] : [];

test('overlayfs: mounts by kind and depth, as containerd 1.6', async () => {
  const { dir, cleanup } = await tempDir();
  const sn = await OverlaySnapshotter.open(dir);
  const fs = (id: string) => join(dir, 'snapshots', id, 'fs');
  const idOf = (source: string) => source.split('/').at(-2)!;
  try {
    const [a] = await sn.prepare(ctx, 'a');
    assert.equal(a.type, 'bind');
    assert.deepEqual(a.options, ['rw', 'rbind']);
    const id1 = idOf(a.source);
    assert.equal(a.source, fs(id1));
    assert.ok(existsSync(join(dir, 'snapshots', id1, 'work')));
    assert.equal((await stat(a.source)).mode & 0o7777, 0o755);
    assert.equal((await stat(join(dir, 'snapshots', id1, 'work'))).mode & 0o7777, 0o711);
    assert.deepEqual(await sn.view(ctx, 'v0', undefined), [{ type: 'bind', source: fs(String(Number(id1) + 1)), options: ['ro', 'rbind'] }]);
    await sn.commit(ctx, 'c1', 'a');

    assert.deepEqual(await sn.view(ctx, 'v1', 'c1'), [{ type: 'bind', source: fs(id1), options: ['ro', 'rbind'] }]);
    const [b] = await sn.prepare(ctx, 'b', 'c1');
    assert.equal(b.type, 'overlay');
    assert.equal(b.source, 'overlay');
    const opts = b.options;
    const id2 = opts.find((o) => o.startsWith('upperdir='))!.split('/').at(-2)!;
    assert.deepEqual(opts, [...indexOff, `workdir=${join(dir, 'snapshots', id2, 'work')}`, `upperdir=${fs(id2)}`, `lowerdir=${fs(id1)}`]);
    await sn.commit(ctx, 'c2', 'b');

    const [v2] = await sn.view(ctx, 'v2', 'c2');
    assert.deepEqual(v2, { type: 'overlay', source: 'overlay', options: [...indexOff, `lowerdir=${fs(id2)}:${fs(id1)}`] });
    // A view has no work dir.
    const vId = String(Number(id2) + 1);
    assert.ok(existsSync(fs(vId)) && !existsSync(join(dir, 'snapshots', vId, 'work')));
    assert.deepEqual(await sn.mounts(ctx, 'v2'), [v2]);
  } finally {
    await sn.close();
    await cleanup();
  }
});

test('overlayfs: a child upper takes the owner of the parent root; changes land in its own fs', async () => {
  const { dir, cleanup } = await tempDir();
  const sn = await OverlaySnapshotter.open(join(dir, 'root'));
  try {
    const [a] = await sn.prepare(ctx, 'a');
    await chown(a.source, 1234, 4321);
    await writeFile(join(a.source, 'base'), 'base');
    await sn.commit(ctx, 'c', 'a');
    const m = await sn.prepare(ctx, 'b', 'c');
    const upper = m[0].options.find((o) => o.startsWith('upperdir='))!.slice('upperdir='.length);
    const st = await stat(upper);
    assert.equal(st.uid, 1234);
    assert.equal(st.gid, 4321);
    await withTempMount(m, async (root) => {
      assert.equal(await readFile(join(root, 'base'), 'utf8'), 'base');
      await writeFile(join(root, 'new'), 'new');
    }, { tempDir: dir });
    assert.deepEqual(await readdir(upper), ['new']);
    const u = await sn.usage(ctx, 'b');
    assert.equal(u.inodes, 2); // fs/ and new
    await sn.commit(ctx, 'c2', 'b');
    assert.deepEqual(await sn.usage(ctx, 'c2'), u);
  } finally {
    await sn.close();
    await cleanup();
  }
});

test('overlayfs: remove deletes the dir; asyncRemove defers it to cleanup; reopen keeps state', async () => {
  const { dir, cleanup } = await tempDir();
  let sn = await OverlaySnapshotter.open(dir);
  try {
    const [a] = await sn.prepare(ctx, 'a', undefined, { labels: { k: 'v' } });
    const snapDir = join(a.source, '..');
    await sn.remove(ctx, 'a');
    assert.equal(existsSync(snapDir), false);

    await sn.prepare(ctx, 'keep', undefined, { labels: { k: 'v' } });
    const info = await sn.stat(ctx, 'keep');
    await sn.close();
    sn = await OverlaySnapshotter.open(dir, { asyncRemove: true, skipCheck: true });
    assert.deepEqual(await sn.stat(ctx, 'keep'), info);
    const [b] = await sn.prepare(ctx, 'b');
    const bDir = join(b.source, '..');
    await sn.remove(ctx, 'b');
    assert.equal(existsSync(bDir), true, 'async remove leaves the directory');
    await mkdir(join(dir, 'snapshots', 'new-crashed'));
    await sn.cleanup(ctx);
    assert.equal(existsSync(bDir), false);
    const keepId = (await sn.mounts(ctx, 'keep'))[0].source.split('/').at(-2)!;
    assert.deepEqual(await readdir(join(dir, 'snapshots')), [keepId]);
  } finally {
    await sn.close();
    await cleanup();
  }
});

test('overlayfs: a successful mount probe is remembered in the root for this kernel and file system only', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const stamp = join(dir, 'overlay-supported');
    await (await OverlaySnapshotter.open(dir, { probeCacheDir: undefined })).close();
    const key = await readFile(stamp, 'utf8');
    assert.equal(key, `${release()} dev ${(await stat(dir)).dev}\n`);
    // a stamp for another kernel does not count: the probe runs and writes this one
    await writeFile(stamp, 'other-kernel dev 1\n');
    await (await OverlaySnapshotter.open(dir, { probeCacheDir: undefined })).close();
    assert.equal(await readFile(stamp, 'utf8'), key);
    // no probe directory is left behind either way
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('overlay-check-')), []);
  } finally {
    await cleanup();
  }
});

test('overlayfs: with a probe cache dir, a success is remembered for every root on that file system', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const cache = join(dir, 'run');
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await (await OverlaySnapshotter.open(a, { probeCacheDir: cache })).close();
    const dev = (await stat(a)).dev;
    const key = `${release()} dev ${dev}\n`;
    assert.equal(await readFile(join(cache, `overlay-supported-${dev}`), 'utf8'), key);
    // a new root on the same file system takes it over (its own stamp written, nothing probed there)
    await (await OverlaySnapshotter.open(b, { probeCacheDir: cache })).close();
    assert.equal(await readFile(join(b, 'overlay-supported'), 'utf8'), key);
    assert.deepEqual((await readdir(b)).filter((n) => n.startsWith('overlay-check-')), []);
    // a cache entry for another kernel does not count: the probe runs and rewrites it
    await writeFile(join(cache, `overlay-supported-${dev}`), 'other-kernel dev 1\n');
    const c = join(dir, 'c');
    await (await OverlaySnapshotter.open(c, { probeCacheDir: cache })).close();
    assert.equal(await readFile(join(cache, `overlay-supported-${dev}`), 'utf8'), key);
  } finally {
    await cleanup();
  }
});
