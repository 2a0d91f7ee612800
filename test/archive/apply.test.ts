/**
 * apply: entry types, metadata, replacement rules, whiteouts and opaque
 * directories, overlay mode — each case applied by our applier (native and
 * JS executors) and by containerd 1.6's archive.Apply, trees compared.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apply } from '../../src/archive/apply.js';
import { isInvalidArgument } from '../../src/errdefs/index.js';
import { native } from '../../src/internal/sys.js';
import { tempDir } from '../util/tmp.js';
import { check, impls, type Case } from './harness.js';
import { entry, header, listTree, sha256, streamOf, tar, type Entry } from './util.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let n = 0;
before(async () => {
  tmp = await tempDir('dist-archive-apply-');
});
after(async () => {
  await tmp.cleanup();
});

function run(c: Case) {
  return check(join(tmp.dir, `case${n++}`), c);
}

const T = 1_600_000_000;

const everyType: Entry[] = [
  { name: 'etc/', type: 'dir', mode: 0o755, mtime: T },
  { name: 'etc/passwd', data: 'root:x:0:0::/root:/bin/sh\n', mode: 0o644, mtime: T + 1 },
  { name: 'etc/shadow', data: 'secret', mode: 0o640, uid: 0, gid: 42, mtime: T + 2 },
  { name: 'bin/', type: 'dir', mode: 0o755, mtime: T },
  { name: 'bin/su', data: 'ELF', mode: 0o4755, uid: 0, gid: 0, mtime: T },
  { name: 'bin/wall', data: 'ELF', mode: 0o2755, uid: 0, gid: 5, mtime: T },
  { name: 'bin/sh', type: 'symlink', linkname: 'dash', uid: 7, gid: 8, mtime: T + 3 },
  { name: 'bin/abs', type: 'symlink', linkname: '/etc/passwd', mtime: T + 4 },
  { name: 'bin/dangling', type: 'symlink', linkname: '../nowhere/x', mtime: T + 5 },
  { name: 'bin/dash', data: 'dash binary', mode: 0o755, uid: 1000, gid: 1000, mtime: T + 6 },
  { name: 'bin/dash-hard', type: 'link', linkname: 'bin/dash', mode: 0o755, uid: 1000, gid: 1000, mtime: T + 6 },
  { name: 'tmp/', type: 'dir', mode: 0o1777, mtime: T + 7 },
  { name: 'dev/', type: 'dir', mode: 0o755, mtime: T },
  { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666, mtime: T },
  { name: 'dev/loop0', type: 'block', devmajor: 7, devminor: 0, mode: 0o660, gid: 6, mtime: T },
  { name: 'dev/big', type: 'char', devmajor: 4095, devminor: 1048575, mode: 0o600, mtime: T },
  { name: 'run/fifo', type: 'fifo', mode: 0o600, uid: 3, gid: 3, mtime: T },
  { name: 'implicit/parents/deep/file', data: 'x', mtime: T },
  { name: 'locked', data: 'no perms', mode: 0o000, mtime: T },
  { name: 'sticky-setgid/', type: 'dir', mode: 0o3775, uid: 12, gid: 34, mtime: T + 9 },
  { name: 'frac', data: 'f', mtime: T + 0.123456789 },
  { name: 'atime-later', data: 'a', mtime: T, atime: T + 100 },
  { name: 'negative-mtime', data: 'n', mtime: -5 },
  { name: 'ünïcødé/ファイル', data: 'utf8', mtime: T },
  { name: 'long/' + 'x'.repeat(120) + '/' + 'y'.repeat(90), data: 'pax long name', mtime: T },
  { name: 'gnu/' + 'z'.repeat(150), data: 'gnu long name', gnu: true, mtime: T },
  { name: 'gnu/longlink', type: 'symlink', linkname: '/' + 'q'.repeat(200), gnu: true, mtime: T },
  { name: 'big-ids', data: 'b', uid: 70000, gid: 2 ** 21 + 5, base256: true, mtime: T },
  { name: 'xattrs', data: 'x', mtime: T, xattrs: { 'user.foo': 'bar', 'user.bin': Buffer.from([0, 1, 2, 255]), 'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex'), 'trusted.ignored': 'no' } },
  { name: 'xattr-dir/', type: 'dir', mtime: T, xattrs: { 'user.dir': 'yes' } },
  { name: './dot/./slash//file', data: 'cleaned', mtime: T },
  { name: 'etc/hosts', data: 'replaced below', mtime: T },
  { name: 'etc/hosts', data: 'second copy wins', mtime: T + 10 },
  { name: 'zero-size-dir-with-size/', type: 'dir', sizeField: 0, mtime: T },
];

test('every entry type, mode, owner, time, xattr and name form', async () => {
  await run({ layers: () => [tar(everyType)] });
});

test('same layer through 1-byte and 511-byte chunks', async () => {
  await run({ layers: () => [tar(everyType)], chunk: 1, noOracle: true });
  await run({ layers: () => [tar(everyType)], chunk: 511, noOracle: true });
});

test('replacement rules: non-dir over anything is replaced, dir over dir merges', async () => {
  await run({
    layers: () => [
      tar([
        { name: 'a/', type: 'dir', mode: 0o700, uid: 1, gid: 1, mtime: T },
        { name: 'a/child', data: 'c', mtime: T },
        { name: 'f', data: 'file', mtime: T },
        { name: 's', type: 'symlink', linkname: 'f', mtime: T },
        { name: 'm/', type: 'dir', mode: 0o700, mtime: T, xattrs: { 'user.old': '1' } },
        { name: 'm/keep', data: 'kept', mtime: T },
        { name: 'h', data: 'hard', mtime: T },
        { name: 'h2', type: 'link', linkname: 'h', mtime: T },
      ]),
      tar([
        { name: 'a', data: 'now a file', mtime: T + 1 },
        { name: 'f/', type: 'dir', mode: 0o751, mtime: T + 1 },
        { name: 'f/new', data: 'n', mtime: T + 1 },
        { name: 's', data: 'file over symlink', mtime: T + 1 },
        { name: 'm/', type: 'dir', mode: 0o755, uid: 5, gid: 6, mtime: T + 2, xattrs: { 'user.new': '2' } },
        { name: 'h', data: 'rewritten: h2 keeps the old inode', mtime: T + 1 },
      ]),
    ],
  });
});

test('whiteouts and opaque directories across two layers', async () => {
  await run({
    layers: () => [
      tar([
        { name: 'keep/', type: 'dir', mtime: T },
        { name: 'keep/a', data: 'a', mtime: T },
        { name: 'gone', data: 'g', mtime: T },
        { name: 'gonedir/', type: 'dir', mtime: T },
        { name: 'gonedir/x/y', data: 'y', mtime: T },
        { name: 'opq/', type: 'dir', mtime: T },
        { name: 'opq/old1', data: '1', mtime: T },
        { name: 'opq/olddir/f', data: 'f', mtime: T },
        { name: 'opq2/old', data: 'o', mtime: T },
      ]),
      tar([
        { name: '.wh.gone', mtime: T },
        { name: '.wh.gonedir', mtime: T },
        { name: 'keep/.wh.missing', mtime: T },
        { name: 'new/.wh.nothing', mtime: T },
        { name: 'opq/', type: 'dir', mtime: T + 5 },
        { name: 'opq/before', data: 'written before the marker: stays', mtime: T + 5 },
        { name: 'opq/.wh..wh..opq', mtime: T + 5 },
        { name: 'opq/after', data: 'after', mtime: T + 5 },
        { name: 'opq2/.wh..wh..opq', mtime: T + 5 },
        { name: '.wh..wh.plnk', mtime: T },
      ]),
    ],
  });
});

test('overlay mode: whiteout devices and opaque xattr in the upper', async () => {
  const layers = () => [
    tar([
      { name: 'd/', type: 'dir', mode: 0o750, uid: 9, gid: 9, mtime: T, xattrs: { 'user.lower': 'l' } },
      { name: 'd/f', data: 'lower', mtime: T },
      { name: 'o/x', data: 'x', mtime: T },
      { name: 'rm', data: 'r', mtime: T },
    ]),
    tar([
      { name: 'd/new', data: 'upper: d copied from the lower', uid: 4, mtime: T + 1 },
      { name: 'd/.wh.f', uid: 11, gid: 12, mtime: T + 1 },
      { name: 'o/.wh..wh..opq', mtime: T + 1 },
      { name: 'o/y', data: 'y', mtime: T + 1 },
      { name: '.wh.rm', mtime: T + 1 },
    ]),
  ];
  const outs = await run({ layers, overlay: true });
  const upper = join(outs[0]!.env.root);
  const wh = await fsp.lstat(join(upper, 'd', 'f'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout is a 0/0 char device');
  assert.equal(wh.uid, 11);
  const d = await fsp.lstat(join(upper, 'd'));
  assert.equal(d.mode & 0o7777, 0o750, 'mkparent copied the lower dir mode');
  assert.equal(d.uid, 9);
  if (native) {
    assert.equal(native.lgetxattr(join(upper, 'o'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(native.lgetxattr(join(upper, 'd'), 'user.lower')?.toString(), 'l', 'xattrs copied up from the lower dir');
  }
  // without parents too (a standalone upper)
  await run({ layers, overlay: true, noParents: true });
});

test('hardlinks: within the layer, to a symlink, onto a lower layer file', async () => {
  await run({
    layers: () => [
      tar([{ name: 'lower/file', data: 'from layer 0', mode: 0o600, mtime: T }]),
      tar([
        { name: 'l1', type: 'link', linkname: 'lower/file', mode: 0o640, mtime: T + 1 },
        { name: 'sym', type: 'symlink', linkname: 'lower/file', mtime: T },
        { name: 'l2', type: 'link', linkname: 'sym', mode: 0o777, mtime: T + 2 },
        { name: 'new', data: 'n', mtime: T },
        { name: 'sub/l3', type: 'link', linkname: './new', mtime: T },
      ]),
    ],
  });
});

test('ordering holds when files are written in parallel (conflicting paths in one batch)', async () => {
  const entries: Entry[] = [];
  for (let i = 0; i < 40; i++) entries.push({ name: `d/f${i}`, data: `first ${i}`.repeat(i * 10), mtime: T });
  entries.push({ name: 'd', data: 'a file replacing the directory with files in flight', mtime: T + 1 });
  for (let i = 0; i < 40; i++) entries.push({ name: 'same', data: `version ${i}`, mode: 0o600 + (i % 8), mtime: T + i });
  entries.push({ name: 'h', data: 'hard link target', mtime: T });
  entries.push({ name: 'h2', type: 'link', linkname: 'h', mtime: T });
  entries.push({ name: 's', data: 'replaced by a symlink', mtime: T });
  entries.push({ name: 's', type: 'symlink', linkname: 'h', mtime: T });
  entries.push({ name: 'e/x', data: 'x', mtime: T });
  entries.push({ name: 'e/', type: 'dir', mode: 0o700, mtime: T + 3 });
  entries.push({ name: 'e/y', data: 'y', mtime: T });
  entries.push({ name: '.wh.e', mtime: T });
  entries.push({ name: 'e/z', data: 'after the whiteout', mtime: T });
  await run({ layers: () => [tar(entries)] });
});

test('hardlink to a missing target fails the layer', async () => {
  await run({ layers: () => [tar([{ name: 'l', type: 'link', linkname: 'does/not/exist', mtime: T }])], fails: /link target not found|no such file/i });
});

test('overlay with parents: hard link to a lower-layer file copies it up', async () => {
  // containerd's upperdir fast path cannot do this (link target missing in the upper): ours only
  const outs = await run({
    layers: () => [
      tar([{ name: 'usr/bin/tool', data: 'lower tool', mode: 0o751, uid: 3, gid: 4, mtime: T, xattrs: { 'user.t': '1' } }]),
      tar([{ name: 'usr/bin/tool-alias', type: 'link', linkname: 'usr/bin/tool', mode: 0o751, uid: 3, gid: 4, mtime: T }]),
    ],
    overlay: true,
    noOracle: true,
  });
  const lines = outs[0]!.trees[1]!.join('\n');
  assert.match(lines, /usr\/bin\/tool file mode=0751 uid=3 gid=4 size=10 .* nlink=2 group=usr\/bin\/tool/);
  assert.match(lines, /usr\/bin\/tool-alias file .* nlink=2 group=usr\/bin\/tool/);
});

test('overlay with parents: lookups see the lower layers (var/run -> /run)', async () => {
  // applying through a mounted overlay follows the lower symlink; containerd's
  // upperdir fast path makes var/run a directory instead (documented divergence)
  const outs = await run({
    layers: () => [
      tar([
        { name: 'run/', type: 'dir', mode: 0o755, mtime: T },
        { name: 'var/', type: 'dir', mode: 0o755, mtime: T },
        { name: 'var/run', type: 'symlink', linkname: '/run', mtime: T },
      ]),
      tar([{ name: 'var/run/app.pid', data: '42', mtime: T }]),
    ],
    overlay: true,
    noOracle: true,
  });
  const upper = outs[0]!.trees[1]!.join('\n');
  assert.match(upper, /^run\/app\.pid file/m);
  assert.doesNotMatch(upper, /^var/m);
});

test('overlay with parents, lowerLookups: false: exactly containerd\'s upperdir fast path', async () => {
  await run({
    layers: () => [
      tar([
        { name: 'run/', type: 'dir', mode: 0o755, mtime: T },
        { name: 'var/', type: 'dir', mode: 0o711, uid: 5, mtime: T, xattrs: { 'user.v': '1' } },
        { name: 'var/run', type: 'symlink', linkname: '/run', mtime: T },
        { name: 'usr/bin/tool', data: 'lower', mtime: T },
      ]),
      tar([
        { name: 'var/run/app.pid', data: '42', mtime: T },
        { name: 'usr/bin/new', data: 'n', mtime: T },
      ]),
    ],
    overlay: true,
    lowerLookups: false,
  });
  await run({
    layers: () => [
      tar([{ name: 'usr/bin/tool', data: 'lower', mtime: T }]),
      tar([{ name: 'usr/bin/alias', type: 'link', linkname: 'usr/bin/tool', mtime: T }]),
    ],
    overlay: true,
    lowerLookups: false,
    fails: /link target not found|no such file/i,
  });
});

test('same-layer symlinked parents resolve inside the root (var/run -> /run)', async () => {
  await run({
    layers: () => [
      tar([
        { name: 'run/', type: 'dir', mtime: T },
        { name: 'var/run', type: 'symlink', linkname: '/run', mtime: T },
        { name: 'var/run/app.pid', data: '42', mtime: T },
        { name: 'lib', type: 'symlink', linkname: 'usr/lib', mtime: T },
        { name: 'lib/x86_64/libc.so', data: 'libc', mtime: T },
        { name: 'usr/lib64', type: 'symlink', linkname: './lib', mtime: T },
        { name: 'usr/lib64/ld.so', data: 'ld', mtime: T },
      ]),
    ],
  });
});

test('names that are not UTF-8 survive byte for byte (files, links, targets, whiteouts)', async () => {
  const latin1 = (s: string) => Buffer.from(s, 'latin1');
  await run({
    layers: () => [
      tar([
        { name: latin1('caf\xe9/'), type: 'dir', mtime: T },
        { name: latin1('caf\xe9/men\xfc.txt'), data: 'latin-1 name', mtime: T },
        { name: latin1('caf\xe9/gone\xff'), data: 'x', mtime: T },
        { name: latin1('l\xe9'), type: 'symlink', linkname: latin1('caf\xe9/men\xfc.txt'), mtime: T },
        { name: latin1('h\xe9'), type: 'link', linkname: latin1('caf\xe9/men\xfc.txt'), mtime: T },
        { name: Buffer.concat([latin1('long\xfe/'), Buffer.alloc(120, 0x61), latin1('\xfd')]), data: 'pax path with raw bytes', mtime: T },
      ]),
      tar([
        { name: latin1('caf\xe9/.wh.gone\xff'), mtime: T },
        { name: latin1('l\xe9/../x\xe9'), data: 'through a link with a raw-byte name', mtime: T },
      ]),
    ],
  });
});

test('devices, fifos and sockets are created with mknod; unknown types fail', async () => {
  await run({ layers: () => [tar([{ name: 'weird', type: 'V', data: '', mtime: T }])], fails: /unhandled tar header type/ });
});

test('a directory entry named like the root is skipped; "." keeps the root untouched', async () => {
  await run({
    layers: () => [
      tar([
        { name: './', type: 'dir', mode: 0o700, uid: 99, mtime: T },
        { name: '/', type: 'dir', mode: 0o700, mtime: T },
        { name: '..', type: 'dir', mode: 0o700, mtime: T },
        { name: 'ok', data: 'ok', mtime: T },
      ]),
    ],
  });
});

test('directory times are restored after their contents, also for later-replaced names', async () => {
  await run({
    layers: () => [
      tar([
        { name: 'd/', type: 'dir', mtime: T },
        { name: 'd/sub/', type: 'dir', mtime: T + 1 },
        { name: 'd/sub/f', data: 'f', mtime: T + 2 },
        { name: 'd/g', data: 'g', mtime: T + 3 },
        { name: 'e/', type: 'dir', mtime: T },
        { name: 'e', type: 'symlink', linkname: 'd', mtime: T + 4 },
      ]),
    ],
  });
});

test('truncated archives and corrupt headers fail cleanly', async () => {
  const full = tar([{ name: 'f', data: 'x'.repeat(3000), mtime: T }]);
  for (const bad of [full.subarray(0, 700), full.subarray(0, 300)]) {
    const { dir, cleanup } = await tempDir();
    await assert.rejects(apply(dir, streamOf(bad)), (err) => isInvalidArgument(err) && /unexpected EOF/.test((err as Error).message));
    await cleanup();
  }
  const corrupt = Buffer.from(full);
  corrupt[10] ^= 0xff; // breaks the checksum
  const { dir, cleanup } = await tempDir();
  await assert.rejects(apply(dir, streamOf(corrupt)), /checksum/);
  const zeroThenJunk = Buffer.concat([entry({ name: 'a', data: 'a' }), Buffer.alloc(512), header({ name: 'b', type: '0', size: 0 })]);
  await assert.rejects(apply(dir, streamOf(zeroThenJunk)), /zero block/);
  await cleanup();
});

test('a missing end-of-archive marker is accepted (as Go does) and the tree is complete', async () => {
  const { dir, cleanup } = await tempDir();
  const b = tar([{ name: 'a/b', data: 'b', mtime: T }], { eof: false });
  const r = await apply(dir, streamOf(b));
  assert.equal(r.diffID, sha256(b));
  assert.equal(await fsp.readFile(join(dir, 'a/b'), 'utf8'), 'b');
  await cleanup();
});

test('diffID covers every byte, including the record padding after the end marker', async () => {
  const { dir, cleanup } = await tempDir();
  const b = tar([{ name: 'f', data: 'data', mtime: T }], { record: 10240, trailing: Buffer.from('junk after the end') });
  const r = await apply(dir, streamOf(b, 700));
  assert.equal(r.size, b.length);
  assert.equal(r.diffID, sha256(b));
  await cleanup();
});

test('noSameOwner keeps the applier as owner', async () => {
  const { dir, cleanup } = await tempDir();
  await apply(dir, streamOf(tar([{ name: 'f', data: 'x', uid: 1234, gid: 5678, mode: 0o4755 }])), { noSameOwner: true });
  const st = await fsp.lstat(join(dir, 'f'));
  assert.equal(st.uid, process.getuid!());
  assert.equal(st.mode & 0o7777, 0o4755);
  await cleanup();
});

test('warnings: trusted.* xattrs from the archive are ignored and reported', async () => {
  const { dir, cleanup } = await tempDir();
  const warnings: string[] = [];
  await apply(dir, streamOf(tar([{ name: 'f', data: 'x', xattrs: { 'trusted.overlay.opaque': 'y' } }])), { onWarning: (w) => warnings.push(w) });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /trusted\.overlay\.opaque/);
  await cleanup();
});

test('abort stops the apply with Canceled and leaves no open executor', async () => {
  const { dir, cleanup } = await tempDir();
  const ac = new AbortController();
  const entries: Entry[] = [];
  for (let i = 0; i < 2000; i++) entries.push({ name: `d${i % 10}/f${i}`, data: 'x'.repeat(1000) });
  const b = tar(entries);
  let chunks = 0;
  const src = streamOf(b, 4096);
  src.on('data', () => {
    if (++chunks === 50) ac.abort(new Error('stop'));
  });
  await assert.rejects(apply(dir, src, { signal: ac.signal }), (err) => (err as { code?: string }).code === 'Canceled');
  assert.ok(src.destroyed);
  await cleanup();
});

test('large files stream through several batches', async () => {
  const { dir, cleanup } = await tempDir();
  const big = Buffer.alloc(20 << 20);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
  for (const impl of impls().filter((i) => i !== 'containerd')) {
    const root = join(dir, impl);
    await fsp.mkdir(root);
    await apply(root, streamOf(tar([{ name: 'big', data: big }, { name: 'after', data: 'a' }]), 65536), { executor: impl === 'js' ? 'js' : 'native', threads: impl === 'pool' ? 4 : 1 });
    assert.equal(sha256(await fsp.readFile(join(root, 'big'))), sha256(big));
    assert.deepEqual((await listTree(root)).length, 3);
  }
  await cleanup();
});
