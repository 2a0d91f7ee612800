import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chown, link, lstat, mkdir, readdir, readFile, readlink, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../util/tmp.js';
import { withTempMount } from '../../src/mount/index.js';
import { NativeSnapshotter } from '../../src/snapshots/native/index.js';
import { snapshotterSuite } from './testsuite.js';

snapshotterSuite('native', async (_ctx, root) => {
  const snapshotter = await NativeSnapshotter.open(root);
  return { snapshotter, cleanup: () => snapshotter.close() };
});

const ctx = {};

test('native: mounts are rbind of the snapshot dir, or of the parent for a view', async () => {
  const { dir, cleanup } = await tempDir();
  const sn = await NativeSnapshotter.open(dir);
  try {
    const [m] = await sn.prepare(ctx, 'a');
    assert.equal(m.type, 'bind');
    assert.deepEqual(m.options, ['rbind', 'rw']);
    assert.match(m.source, new RegExp(`^${dir}/snapshots/\\d+$`));
    assert.equal((await stat(m.source)).mode & 0o7777, 0o755);
    await sn.commit(ctx, 'c', 'a');
    assert.deepEqual(await sn.view(ctx, 'v', 'c'), [{ type: 'bind', source: m.source, options: ['rbind', 'ro'] }]);
    const [p] = await sn.prepare(ctx, 'p', 'c');
    assert.notEqual(p.source, m.source);
    assert.deepEqual(p.options, ['rbind', 'rw']);
    const [e] = await sn.view(ctx, 'empty', undefined);
    assert.deepEqual(e.options, ['rbind', 'ro']);
    assert.deepEqual(await readdir(e.source), []);
  } finally {
    await sn.close();
    await cleanup();
  }
});

test('native: prepare copies the parent with owners, modes, times, links, devices and xattrs', async () => {
  const { dir, cleanup } = await tempDir();
  const sn = await NativeSnapshotter.open(join(dir, 'root'));
  try {
    const [m] = await sn.prepare(ctx, 'a');
    const s = m.source;
    await writeFile(join(s, 'file'), 'content');
    await chown(join(s, 'file'), 1000, 1001);
    await utimes(join(s, 'file'), 1_000_000, 1_000_000);
    await link(join(s, 'file'), join(s, 'hardlink'));
    await symlink('file', join(s, 'symlink'));
    await mkdir(join(s, 'sub'), { mode: 0o700 });
    execFileSync('mkfifo', [join(s, 'sub', 'fifo')]);
    execFileSync('mknod', [join(s, 'null'), 'c', '1', '3']);
    execFileSync('python3', ['-c', `import os; os.setxattr(${JSON.stringify(join(s, 'file'))}, 'user.test', b'value')`]);
    await sn.commit(ctx, 'c', 'a');

    const [n] = await sn.prepare(ctx, 'b', 'c');
    const d = n.source;
    const st = await stat(join(d, 'file'));
    assert.equal(await readFile(join(d, 'file'), 'utf8'), 'content');
    assert.equal(st.uid, 1000);
    assert.equal(st.gid, 1001);
    assert.equal(st.mtimeMs, 1_000_000_000);
    assert.equal((await stat(join(d, 'hardlink'))).ino, st.ino, 'hard link kept');
    assert.equal(await readlink(join(d, 'symlink')), 'file');
    assert.equal((await stat(join(d, 'sub'))).mode & 0o777, 0o700);
    assert.ok((await lstat(join(d, 'sub', 'fifo'))).isFIFO());
    const dev = await lstat(join(d, 'null'));
    assert.ok(dev.isCharacterDevice());
    assert.equal(dev.rdev, (1 << 8) | 3);
    const xattr = execFileSync('python3', ['-c', `import os; print(os.getxattr(${JSON.stringify(join(d, 'file'))}, 'user.test').decode())`], { encoding: 'utf8' });
    assert.equal(xattr.trim(), 'value');
    assert.equal((await stat(d)).mode & 0o7777, 0o755);
    // The copy is independent of the parent.
    await writeFile(join(d, 'file'), 'changed');
    const [v] = await sn.view(ctx, 'v', 'c');
    assert.equal(await readFile(join(v.source, 'file'), 'utf8'), 'content');
  } finally {
    await sn.close();
    await cleanup();
  }
});

test('native: state survives reopen; remove deletes the dir; cleanup deletes leftovers only', async () => {
  const { dir, cleanup } = await tempDir();
  let sn = await NativeSnapshotter.open(dir);
  try {
    const [m] = await sn.prepare(ctx, 'a', undefined, { labels: { x: 'y' } });
    await withTempMount([m], (root) => writeFile(join(root, 'f'), 'data'), { tempDir: dir });
    await sn.commit(ctx, 'c', 'a');
    const info = await sn.stat(ctx, 'c');
    const usage = await sn.usage(ctx, 'c');
    const [r] = await sn.prepare(ctx, 'gone', 'c');
    await sn.close();

    sn = await NativeSnapshotter.open(dir);
    assert.deepEqual(await sn.stat(ctx, 'c'), info);
    assert.deepEqual(await sn.usage(ctx, 'c'), usage);
    await sn.remove(ctx, 'gone');
    await assert.rejects(stat(r.source), { code: 'ENOENT' });

    await mkdir(join(dir, 'snapshots', 'new-leftover'));
    await mkdir(join(dir, 'snapshots', 'rm-99'));
    await mkdir(join(dir, 'snapshots', '12345'));
    await sn.cleanup(ctx);
    const [v] = await sn.view(ctx, 'v', 'c');
    assert.deepEqual((await readdir(join(dir, 'snapshots'))).sort(), [v.source.split('/').pop()]);
    assert.equal(await readFile(join(v.source, 'f'), 'utf8'), 'data');
    // Ids are never reused, even after removals.
    const [n] = await sn.prepare(ctx, 'next');
    assert.ok(Number(n.source.split('/').pop()) > Number(r.source.split('/').pop()));
  } finally {
    await sn.close();
    await cleanup();
  }
});
