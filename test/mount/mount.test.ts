import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../util/tmp.js';
import { isUnknown } from '../../src/errdefs/index.js';
import {
  compactLowerdirOption,
  isMountPoint,
  mount,
  mountAll,
  parseMountOptions,
  readonlyMounts,
  supportsOverlay,
  unmountAll,
  withReadonlyTempMount,
  withTempMount,
} from '../../src/mount/index.js';

test('bind rw and ro mounts, unmountAll', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = join(dir, 'src');
    const rw = join(dir, 'rw');
    const ro = join(dir, 'ro');
    for (const d of [src, rw, ro]) await mkdir(d);
    await writeFile(join(src, 'f'), 'hello');
    await mountAll([{ type: 'bind', source: src, options: ['rbind', 'rw'] }], rw);
    await mountAll([{ type: 'bind', source: src, options: ['rbind', 'ro'] }], ro);
    assert.ok(await isMountPoint(rw));
    assert.equal(await readFile(join(ro, 'f'), 'utf8'), 'hello');
    await writeFile(join(rw, 'g'), 'written');
    assert.equal(await readFile(join(src, 'g'), 'utf8'), 'written');
    await assert.rejects(writeFile(join(ro, 'h'), 'x'), (e: NodeJS.ErrnoException) => e.code === 'EROFS');
    await unmountAll(rw);
    await unmountAll(ro);
    assert.equal(await isMountPoint(rw), false);
    assert.deepEqual(await readdir(ro), []);
    await unmountAll(ro); // not mounted: no-op
    await unmountAll(join(dir, 'missing')); // missing: no-op
  } finally {
    await cleanup();
  }
});

test('unmountAll pops stacked mounts', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    const t = join(dir, 't');
    for (const d of [a, b, t]) await mkdir(d);
    await writeFile(join(a, 'a'), '');
    await writeFile(join(b, 'b'), '');
    await mountAll([
      { type: 'bind', source: a, options: ['rbind', 'rw'] },
      { type: 'bind', source: b, options: ['rbind', 'rw'] },
    ], t);
    assert.deepEqual(await readdir(t), ['b']);
    await unmountAll(t);
    assert.equal(await isMountPoint(t), false);
    assert.deepEqual(await readdir(t), []);
  } finally {
    await cleanup();
  }
});

test('overlay mount with upper and work, and a lowerdir list longer than a page', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const lowers: string[] = [];
    for (let i = 0; i < 120; i++) {
      const l = join(dir, 'layers', `layer-with-a-long-name-${String(i).padStart(4, '0')}`, 'fs');
      await mkdir(l, { recursive: true });
      await writeFile(join(l, `f${i}`), String(i));
      await writeFile(join(l, 'top'), String(i));
      lowers.push(l);
    }
    const upper = join(dir, 'upper');
    const work = join(dir, 'work');
    const target = join(dir, 'merged');
    for (const d of [upper, work, target]) await mkdir(d);
    const options = [`lowerdir=${[...lowers].reverse().join(':')}`, `upperdir=${upper}`, `workdir=${work}`];
    assert.ok(options.join(',').length > 4096, 'options longer than a page');
    await mount({ type: 'overlay', source: 'overlay', options }, target);
    try {
      assert.equal((await readdir(target)).length, 121);
      assert.equal(await readFile(join(target, 'top'), 'utf8'), '119');
      await writeFile(join(target, 'new'), 'n');
      assert.equal(await readFile(join(upper, 'new'), 'utf8'), 'n');
    } finally {
      await unmountAll(target);
    }
  } finally {
    await cleanup();
  }
});

test('compactLowerdirOption rewrites lowerdir relative to the common parent', () => {
  const r = compactLowerdirOption(['index=off', 'lowerdir=/var/lib/s/snapshots/12/fs:/var/lib/s/snapshots/3/fs', 'upperdir=/u']);
  assert.equal(r.chdir, '/var/lib/s/snapshots');
  assert.deepEqual(r.options, ['index=off', 'upperdir=/u', 'lowerdir=12/fs:3/fs']);
  const r2 = compactLowerdirOption(['lowerdir=/a/x:/b/y']);
  assert.equal(r2.chdir, undefined);
  assert.deepEqual(r2.options, ['lowerdir=/a/x:/b/y']);
  assert.equal(compactLowerdirOption(['lowerdir=/only/one']).chdir, undefined);
  // A common prefix ending mid-name uses its directory part.
  assert.equal(compactLowerdirOption(['lowerdir=/r/s/10/fs:/r/s/11/fs']).chdir, '/r/s');
});

test('readonlyMounts', () => {
  assert.deepEqual(readonlyMounts([{ type: 'bind', source: '/s', options: ['rbind', 'rw'] }]), [{ type: 'bind', source: '/s', options: ['rbind', 'ro'] }]);
  assert.deepEqual(
    readonlyMounts([{ type: 'overlay', source: 'overlay', options: ['index=off', 'workdir=/w', 'upperdir=/u', 'lowerdir=/l1:/l2'] }]),
    [{ type: 'overlay', source: 'overlay', options: ['index=off', 'lowerdir=/u:/l1:/l2'] }],
  );
});

test('withTempMount unmounts and removes its dir, also when fn throws', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const src = join(dir, 'src');
    const tmp = join(dir, 'tmp');
    await mkdir(src);
    await mkdir(tmp);
    await writeFile(join(src, 'f'), 'x');
    const bind = [{ type: 'bind', source: src, options: ['rbind', 'rw'] }];
    const seen = await withTempMount(bind, async (root) => {
      assert.ok(await isMountPoint(root));
      return readdir(root);
    }, { tempDir: tmp });
    assert.deepEqual(seen, ['f']);
    assert.deepEqual(await readdir(tmp), []);
    await assert.rejects(withTempMount(bind, () => { throw new Error('boom'); }, { tempDir: tmp }), /boom/);
    assert.deepEqual(await readdir(tmp), []);
    await assert.rejects(
      withReadonlyTempMount(bind, (root) => writeFile(join(root, 'g'), 'y'), { tempDir: tmp }),
      (e: NodeJS.ErrnoException) => e.code === 'EROFS',
    );
    assert.deepEqual(await readdir(tmp), []);
    await assert.rejects(withTempMount([{ type: 'bind', source: join(dir, 'nope'), options: ['rbind'] }], () => 1, { tempDir: tmp }), isUnknown);
    assert.deepEqual(await readdir(tmp), []);
  } finally {
    await cleanup();
  }
});

test('a failed mount is Unknown with the tool message', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await assert.rejects(
      mount({ type: 'overlay', source: 'overlay', options: [`lowerdir=${join(dir, 'missing')}:${join(dir, 'missing2')}`] }, dir),
      (e: Error) => isUnknown(e) && /failed to mount/.test(e.message),
    );
  } finally {
    await cleanup();
  }
});

test('supportsOverlay on the test filesystem', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    assert.equal(await supportsOverlay(dir), true);
    assert.deepEqual(await readdir(dir), [], 'the probe leaves nothing behind');
    assert.ok((await stat(dir)).isDirectory());
  } finally {
    await cleanup();
  }
});

test('parseMountOptions splits flags from data like containerd', () => {
  assert.deepEqual(parseMountOptions(['rbind', 'ro']), { flags: 0x1000 | 0x4000 | 0x1, data: '', loop: false });
  assert.deepEqual(parseMountOptions(['ro', 'rw', 'nosuid', 'defaults']), { flags: 0x2, data: '', loop: false });
  assert.deepEqual(parseMountOptions(['index=off', 'lowerdir=/a:/b', 'loop']), { flags: 0, data: 'index=off,lowerdir=/a:/b', loop: true });
  assert.deepEqual(parseMountOptions(['rprivate']), { flags: 0x40000 | 0x4000, data: '', loop: false });
});
