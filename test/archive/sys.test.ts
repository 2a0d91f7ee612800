/**
 * src/internal/sys: the addon's syscalls and the system-tool fallbacks
 * (run in a child process with DIST_NATIVE_DISABLE=1).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { codeOf, Code } from '../../src/errdefs/index.js';
import * as sys from '../../src/internal/sys.js';
import { tempDir } from '../util/tmp.js';

const nativeOnly = { skip: sys.native ? false : `addon not loaded: ${sys.nativeLoadError?.message}` };

test('mkdev/major/minor match glibc', () => {
  for (const [M, m] of [
    [0, 0],
    [1, 3],
    [8, 17],
    [259, 7],
    [4095, 1048575],
    [65536, 70000],
  ] as const) {
    const d = sys.mkdev(M, m);
    assert.equal(sys.major(d), M);
    assert.equal(sys.minor(d), m);
    if (sys.native) assert.equal(d, sys.native.makedev(M, m));
  }
});

test('mknod: char device, fifo; errors are errno-coded', nativeOnly, async () => {
  const { dir, cleanup } = await tempDir();
  await sys.mknod(join(dir, 'null'), sys.S_IFCHR | 0o640, sys.mkdev(1, 3));
  const st = await fsp.lstat(join(dir, 'null'));
  assert.ok(st.isCharacterDevice());
  assert.equal(st.mode & 0o777, 0o640 & ~process.umask());
  assert.equal(sys.major(st.rdev), 1);
  assert.equal(sys.minor(st.rdev), 3);
  await sys.mknod(join(dir, 'fifo'), sys.S_IFIFO | 0o600, 0);
  assert.ok((await fsp.lstat(join(dir, 'fifo'))).isFIFO());
  await assert.rejects(sys.mknod(join(dir, 'fifo'), sys.S_IFIFO | 0o600, 0), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'EEXIST');
    assert.equal(err.syscall, 'mknod');
    assert.equal(codeOf(err), Code.AlreadyExists);
    return true;
  });
  await assert.rejects(sys.mknod(join(dir, 'no/such/dir'), sys.S_IFIFO, 0), (err) => codeOf(err) === Code.NotFound);
  await cleanup();
});

test('l*xattr: values are bytes, never follow symlinks, absent is undefined', nativeOnly, async () => {
  const { dir, cleanup } = await tempDir();
  const f = join(dir, 'f');
  await fsp.writeFile(f, 'x');
  await fsp.symlink('f', join(dir, 'l'));
  const bin = Buffer.from([0, 1, 2, 0xff]);
  await sys.lsetxattr(f, 'user.bin', bin);
  await sys.lsetxattr(f, 'user.str', 'hello');
  assert.deepEqual(await sys.lgetxattr(f, 'user.bin'), bin);
  assert.equal((await sys.lgetxattr(f, 'user.str'))?.toString(), 'hello');
  assert.equal(await sys.lgetxattr(f, 'user.absent'), undefined);
  assert.deepEqual((await sys.llistxattr(f)).sort(), ['user.bin', 'user.str']);
  // on the symlink itself: trusted.* is allowed for root, user.* is not (EPERM)
  await sys.lsetxattr(join(dir, 'l'), 'trusted.mark', 'on-link');
  assert.equal((await sys.lgetxattr(join(dir, 'l'), 'trusted.mark'))?.toString(), 'on-link');
  assert.equal(await sys.lgetxattr(f, 'trusted.mark'), undefined, 'the target is untouched');
  await assert.rejects(sys.lsetxattr(join(dir, 'l'), 'user.x', 'y'), (err: NodeJS.ErrnoException) => err.code === 'EPERM');
  await assert.rejects(sys.lsetxattr(f, 'user.str', 'again', sys.XATTR_CREATE), (err: NodeJS.ErrnoException) => err.code === 'EEXIST');
  const big = Buffer.alloc(3000, 'v');
  await sys.lsetxattr(f, 'user.big', big);
  assert.deepEqual(await sys.lgetxattr(f, 'user.big'), big);
  await cleanup();
});

test('mount/umount2: tmpfs and bind mounts', nativeOnly, async (t) => {
  const { dir, cleanup } = await tempDir();
  const target = join(dir, 'mnt');
  await fsp.mkdir(target);
  try {
    await sys.mount('tmpfs', target, 'tmpfs', 0, 'size=1m,mode=0700');
  } catch (err) {
    await cleanup();
    t.skip(`cannot mount here: ${(err as Error).message}`);
    return;
  }
  await fsp.writeFile(join(target, 'on-tmpfs'), 'x');
  assert.equal((await fsp.stat(target)).mode & 0o777, 0o700);
  const bind = join(dir, 'bind');
  await fsp.mkdir(bind);
  await sys.mount(target, bind, undefined, sys.MS_BIND, undefined);
  assert.deepEqual(await fsp.readdir(bind), ['on-tmpfs']);
  await sys.mount(undefined, bind, undefined, sys.MS_BIND | sys.MS_REMOUNT | sys.MS_RDONLY, undefined);
  await assert.rejects(fsp.writeFile(join(bind, 'ro'), 'x'), (err: NodeJS.ErrnoException) => err.code === 'EROFS');
  await sys.umount2(bind, sys.MNT_DETACH);
  await sys.umount2(target, 0);
  assert.deepEqual(await fsp.readdir(target), []);
  await assert.rejects(sys.umount2(target, 0), (err: NodeJS.ErrnoException) => err.code === 'EINVAL' && err.syscall === 'umount2');
  await cleanup();
});

test('fallback without the addon: mknod(1) and mount(8); xattrs need setfattr (attr package)', async () => {
  const { dir, cleanup } = await tempDir();
  const sysUrl = new URL('../../src/internal/sys.js', import.meta.url).href;
  const script = `
    const sys = await import(${JSON.stringify(sysUrl)});
    const out = { native: !!sys.native, why: sys.nativeLoadError?.message };
    const dir = ${JSON.stringify(dir)};
    await sys.mknod(dir + '/fifo', sys.S_IFIFO | 0o600, 0);
    await sys.mknod(dir + '/null', sys.S_IFCHR | 0o666, sys.mkdev(1, 3));
    try { await sys.lsetxattr(dir + '/fifo', 'user.x', 'y'); out.xattr = 'ok'; } catch (e) { out.xattr = e.code ?? e.name; out.xattrMsg = e.message; }
    try {
      await sys.mount('tmpfs', dir + '/mnt', 'tmpfs', sys.MS_NOSUID, 'size=1m');
      out.mounted = true;
      await sys.umount2(dir + '/mnt', sys.MNT_DETACH);
    } catch (e) { out.mount = e.message; }
    console.log(JSON.stringify(out));
  `;
  await fsp.mkdir(join(dir, 'mnt'));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, DIST_NATIVE_DISABLE: '1' },
    encoding: 'utf8',
    cwd: fileURLToPath(new URL('.', import.meta.url)),
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(out.native, false);
  assert.match(out.why, /DIST_NATIVE_DISABLE/);
  assert.ok((await fsp.lstat(join(dir, 'fifo'))).isFIFO());
  const st = await fsp.lstat(join(dir, 'null'));
  assert.ok(st.isCharacterDevice() && sys.major(st.rdev) === 1 && sys.minor(st.rdev) === 3);
  let hasSetfattr = true;
  try {
    execFileSync('setfattr', ['--version'], { stdio: 'ignore' });
  } catch {
    hasSetfattr = false;
  }
  if (hasSetfattr) assert.ok(out.xattr === 'ok' || out.xattr === 'EPERM', out.xattrMsg);
  else assert.equal(out.xattr, 'NotImplemented', 'no addon and no setfattr: NotImplemented');
  if (out.mount) assert.fail(`mount fallback failed: ${out.mount}`);
  assert.deepEqual(await fsp.readdir(join(dir, 'mnt')), []);
  await cleanup();
});

test('PipeReader: reads queued ahead fill in call order, digest covers every byte, EOF repeats', nativeOnly, async () => {
  const { createHash, randomBytes } = await import('node:crypto');
  const { closeSync, writeSync } = await import('node:fs');
  const n = sys.native!;
  const [r, w] = n.pipe();
  const data = randomBytes(3 * 65536 + 123);
  const reader = new n.PipeReader(r, 'sha256');
  // four reads queued before a byte is written: each fills its own buffer
  const bufs = [0, 1, 2, 3, 4].map(() => Buffer.alloc(65536));
  const reads = bufs.map((b) => reader.read(b));
  writeSync(w, data);
  closeSync(w);
  const got = await Promise.all(reads);
  assert.deepEqual(got, [65536, 65536, 65536, 123, 0]);
  assert.ok(Buffer.concat(bufs.map((b, i) => b.subarray(0, got[i]))).equals(data));
  assert.equal(await reader.read(Buffer.alloc(16)), 0);
  assert.equal(reader.digest(), createHash('sha256').update(data).digest('hex'));
  reader.close();
});

test('PipeReader: digest and close refuse while a read is queued', nativeOnly, async () => {
  const { closeSync } = await import('node:fs');
  const n = sys.native!;
  const [r, w] = n.pipe();
  const reader = new n.PipeReader(r, 'sha256');
  const p = reader.read(Buffer.alloc(16));
  assert.throws(() => reader.digest(), /queued/);
  assert.throws(() => reader.close(), /queued/);
  closeSync(w);
  assert.equal(await p, 0);
  reader.close();
});

test('ApplySession: a batch is decoded off the main thread; a malformed one rejects, writes nothing, and fails the session', nativeOnly, async () => {
  const { Packer } = await import('../../src/archive/ops.js');
  const t = await tempDir('apply-session-');
  try {
    const root = join(t.dir, 'root');
    await fsp.mkdir(root);
    const s = new sys.native!.ApplySession(root, 2);
    const packer = new Packer();
    const good = packer.encode([{ t: 2 /* Mkdir */, p: 'd', md: 0o750 }]);
    await s.run(good.packed, good.data);
    assert.equal((await fsp.stat(join(root, 'd'))).mode & 0o7777, 0o750);
    // a path that is not clean: the whole batch is refused before any op runs
    const bad = packer.encode([{ t: 2, p: 'e' }, { t: 2, p: '../escape' }]);
    await assert.rejects(s.run(bad.packed, bad.data), /ApplySession\.run: op path must be clean and relative: \.\.\/escape/);
    await assert.rejects(fsp.stat(join(root, 'e')), { code: 'ENOENT' });
    await assert.rejects(fsp.stat(join(t.dir, 'escape')), { code: 'ENOENT' });
    assert.throws(() => s.run(good.packed, good.data), /session failed earlier/);
    s.close();
    // truncated input
    const s2 = new sys.native!.ApplySession(root, 2);
    await assert.rejects(s2.run(good.packed.subarray(0, good.packed.length - 1), good.data), /packed ops truncated/);
    s2.close();
  } finally {
    await t.cleanup();
  }
});
