/**
 * Escapes: every write, chmod, chown, hard link and whiteout must stay inside
 * the root, resolved as containerd resolves it (fs.RootPath), or fail cleanly.
 * Each case runs on our applier (native + JS executors) and containerd's
 * archive.Apply; victims planted next to the root must not change (content,
 * mode, owner, link count), and the trees must match containerd's.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { openExecutor, OpType } from '../../src/archive/ops.js';
import { native } from '../../src/internal/sys.js';
import { tempDir } from '../util/tmp.js';
import { check, type Case, type Env } from './harness.js';
import { tar, type Entry } from './util.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let n = 0;
before(async () => {
  tmp = await tempDir('dist-archive-breakout-');
});
after(async () => {
  await tmp.cleanup();
});

function run(c: Case) {
  return check(join(tmp.dir, `case${n++}`), c);
}

const T = 1_600_000_000;
const pwn = (name: string, extra: Partial<Entry> = {}): Entry => ({ name, data: 'pwned', mode: 0o777, uid: 4321, gid: 4321, mtime: T, ...extra });
/** The outside dir as seen from the root by a relative path. */
const relOut = (env: Env) => relative(env.root, env.outside);

async function passwdState(): Promise<string> {
  const st = await fsp.lstat('/etc/passwd');
  const data = await fsp.readFile('/etc/passwd');
  return `${st.mode} ${st.uid} ${st.gid} ${st.nlink} ${st.size} ${st.mtimeMs} ${createHash('sha256').update(data).digest('hex')}`;
}

test('"../" and absolute entry names land inside the root', async () => {
  await run({
    layers: (env) => [
      tar([
        pwn('../victim'),
        pwn('../../../../../../victim2'),
        pwn('a/../../escape'),
        pwn('/abs/file'),
        pwn(join(env.outside, 'victim')),
        pwn(`${relOut(env)}/victim`),
        { name: '../', type: 'dir', mode: 0o777, mtime: T },
        { name: '../../dev', type: 'char', devmajor: 1, devminor: 3, mtime: T },
      ]),
    ],
  });
});

test('a symlink pointing out of the root, then files written through it', async () => {
  await run({
    layers: (env) => [
      tar([
        { name: 'rel', type: 'symlink', linkname: relOut(env), mtime: T },
        { name: 'deep', type: 'symlink', linkname: '../../../../../../../../' + env.outside.slice(1), mtime: T },
        { name: 'abs', type: 'symlink', linkname: env.outside, mtime: T },
        { name: 'absdir', type: 'symlink', linkname: join(env.outside, 'dir'), mtime: T },
        pwn('rel/victim'),
        pwn('deep/victim'),
        pwn('abs/victim'),
        pwn('absdir/inner'),
        { name: 'abs/dir/', type: 'dir', mode: 0o777, uid: 99, mtime: T },
        { name: 'rel/newdev', type: 'fifo', mtime: T },
        { name: 'abs/vlink', type: 'symlink', linkname: '/etc/shadow', mtime: T },
      ]),
    ],
  });
});

test('symlink chains resolve inside the root; loops fail', async () => {
  await run({
    layers: (env) => [
      tar([
        { name: 'c', type: 'symlink', linkname: '/', mtime: T },
        { name: 'b', type: 'symlink', linkname: 'c/../../..' + env.outside, mtime: T },
        { name: 'a', type: 'symlink', linkname: 'b', mtime: T },
        { name: 'x/y', type: 'symlink', linkname: '../../a', mtime: T },
        pwn('a/victim'),
        pwn('x/y/dir/inner'),
        { name: 'up', type: 'symlink', linkname: '..', mtime: T },
        pwn('up/up/up/victim'),
      ]),
    ],
  });
  await run({
    layers: () => [
      tar([
        { name: 'loop1', type: 'symlink', linkname: 'loop2', mtime: T },
        { name: 'loop2', type: 'symlink', linkname: '/loop1', mtime: T },
        pwn('loop1/victim'),
      ]),
    ],
    fails: /too many links/,
  });
});

test('hard links to /etc/passwd resolve inside the root: missing there, the layer fails', async () => {
  const before = await passwdState();
  for (const linkname of ['/etc/passwd', '../../../../../../etc/passwd', 'etc/../../etc/passwd']) {
    await run({ layers: () => [tar([{ name: 'pw', type: 'link', linkname, mode: 0o777, uid: 4321, mtime: T }])], fails: /link target not found|no such file/i });
  }
  // through a symlinked directory too
  await run({
    layers: () => [
      tar([
        { name: 'etcl', type: 'symlink', linkname: '/etc', mtime: T },
        { name: 'pw', type: 'link', linkname: 'etcl/passwd', mode: 0o777, uid: 4321, mtime: T },
      ]),
    ],
    fails: /link target not found|no such file/i,
  });
  // with an etc/passwd inside the root, the link is to that one
  await run({
    layers: () => [
      tar([
        { name: 'etc/passwd', data: 'inside', mode: 0o644, mtime: T },
        { name: 'pw', type: 'link', linkname: '/etc/passwd', mode: 0o600, uid: 4321, mtime: T },
      ]),
    ],
  });
  assert.equal(await passwdState(), before, '/etc/passwd changed');
});

test('hard links to a victim outside fail or stay inside', async () => {
  await run({ layers: (env) => [tar([{ name: 'h', type: 'link', linkname: join(env.outside, 'victim'), mtime: T }])], fails: /not found|no such file/i });
  await run({ layers: (env) => [tar([{ name: 'h', type: 'link', linkname: `${relOut(env)}/victim`, mtime: T }])], fails: /not found|no such file/i });
  await run({
    layers: (env) => [
      tar([
        { name: 'o', type: 'symlink', linkname: env.outside, mtime: T },
        { name: 'h', type: 'link', linkname: 'o/victim', mode: 0o777, mtime: T },
      ]),
    ],
    fails: /not found|no such file/i,
  });
});

test('CVE-2021-32760: chmod/chown through a hard-linked symlink does not follow it', async () => {
  await run({
    layers: (env) => [
      tar([
        { name: 's', type: 'symlink', linkname: join(env.outside, 'victim'), mtime: T },
        { name: 'h', type: 'link', linkname: 's', mode: 0o4777, uid: 4321, gid: 4321, mtime: T, xattrs: { 'user.x': 'y' } },
        { name: 'rs', type: 'symlink', linkname: `../${relOut(env)}/dir`, mtime: T },
        { name: 'h2', type: 'link', linkname: 'rs', mode: 0o777, uid: 4321, mtime: T },
      ]),
    ],
  });
});

test('entries over a symlink replace it (the final component is never followed)', async () => {
  await run({
    layers: (env) => [
      tar([
        { name: 'f', type: 'symlink', linkname: join(env.outside, 'victim'), mtime: T },
        { name: 'd', type: 'symlink', linkname: join(env.outside, 'dir'), mtime: T },
        { name: 'dev', type: 'symlink', linkname: join(env.outside, 'victim'), mtime: T },
      ]),
      tar([
        pwn('f'),
        { name: 'd/', type: 'dir', mode: 0o777, uid: 4321, mtime: T },
        { name: 'dev', type: 'char', devmajor: 1, devminor: 3, mode: 0o777, mtime: T },
      ]),
    ],
  });
});

test('whiteouts through symlinks remove inside the root only', async () => {
  await run({
    layers: (env) => [
      tar([
        { name: 'o', type: 'symlink', linkname: env.outside, mtime: T },
        { name: 'r', type: 'symlink', linkname: relOut(env), mtime: T },
        { name: 'o/.wh.victim', mtime: T },
        { name: 'r/.wh.dir', mtime: T },
        { name: 'o/.wh..wh..opq', mtime: T },
        { name: 'r/.wh..wh..opq', mtime: T },
        { name: '.wh.o', mtime: T },
      ]),
    ],
  });
  await run({ layers: () => [tar([{ name: 'x/.wh...', mtime: T }])], fails: /invalid whiteout name/ });
  await run({ layers: () => [tar([{ name: '.wh.', mtime: T }])], fails: /invalid whiteout name/ });
});

test('the same escapes split across two layers', async () => {
  await run({
    layers: (env) => [
      tar([
        { name: 'rel', type: 'symlink', linkname: relOut(env), mtime: T },
        { name: 'abs', type: 'symlink', linkname: env.outside, mtime: T },
        { name: 'chain', type: 'symlink', linkname: 'rel/../' + relOut(env), mtime: T },
        { name: 'vs', type: 'symlink', linkname: join(env.outside, 'victim'), mtime: T },
        { name: 'target', data: 'inside', mtime: T },
      ]),
      tar([
        pwn('rel/victim'),
        pwn('abs/victim'),
        pwn('chain/dir/inner'),
        { name: 'abs/dir/', type: 'dir', mode: 0o777, mtime: T },
        { name: 'hl', type: 'link', linkname: 'vs', mode: 0o777, uid: 4321, mtime: T },
        { name: 'rel/.wh.victim', mtime: T },
        { name: 'abs/.wh..wh..opq', mtime: T },
        { name: 'abs/vlink2', type: 'link', linkname: 'target', mode: 0o777, mtime: T },
      ]),
    ],
  });
});

test('a directory replaced by an outward symlink: its final times resolve inside the root (or fail)', async () => {
  await run({
    layers: (env) => [
      tar([
        { name: 'd/', type: 'dir', mode: 0o777, mtime: T },
        { name: 'd', type: 'symlink', linkname: env.outside, mtime: T },
      ]),
    ],
    fails: true, // containerd: chtimes of <root>/<outside> fails (no such file)
  });
  await run({
    layers: () => [
      tar([
        { name: 'd/', type: 'dir', mode: 0o777, mtime: T },
        { name: 'inner/', type: 'dir', mtime: T },
        { name: 'd', type: 'symlink', linkname: '/inner', mtime: T },
      ]),
    ],
  });
});

test('overlay with parents: lower-layer symlinks out of the root are followed inside the merged root', async () => {
  await run({
    layers: (env) => [
      tar([
        { name: 'abs', type: 'symlink', linkname: env.outside, mtime: T },
        { name: 'rel', type: 'symlink', linkname: '../../../../../..' + env.outside, mtime: T },
        { name: 'vs', type: 'symlink', linkname: join(env.outside, 'victim'), mtime: T },
      ]),
      tar([
        pwn('abs/victim'),
        pwn('rel/dir/inner'),
        { name: 'abs/.wh.victim', mtime: T },
        { name: 'rel/.wh..wh..opq', mtime: T },
        { name: 'hl', type: 'link', linkname: 'vs', mode: 0o777, uid: 4321, mtime: T },
      ]),
    ],
    overlay: true,
    noOracle: true, // containerd's upperdir fast path does not look at lower symlinks
  });
});

test('executors refuse a path whose parent is a symlink (defence in depth)', async () => {
  const { dir, cleanup } = await tempDir();
  const root = join(dir, 'root');
  const outside = join(dir, 'outside');
  await fsp.mkdir(root);
  await fsp.mkdir(outside);
  await fsp.symlink(outside, join(root, 'evil'));
  await fsp.symlink('../outside', join(root, 'evil2'));
  const kinds: Array<'native' | 'js'> = native ? ['native', 'js'] : ['js'];
  for (const kind of kinds) {
    for (const p of ['evil/x', 'evil2/x']) {
      for (const op of [
        { t: OpType.File, p, d: [Buffer.from('x')], c: true },
        { t: OpType.Mkdir, p },
        { t: OpType.Symlink, p, tg: '/' },
        { t: OpType.Mknod, p, mode: 0o010644 },
      ]) {
        const ex = openExecutor(root, kind);
        await assert.rejects(ex.run([op]), (err) => ['ELOOP', 'ENOTDIR', 'EXDEV'].includes((err as NodeJS.ErrnoException).code!), `${kind} ${JSON.stringify(op)}`);
        await ex.close();
      }
    }
    const ex = openExecutor(root, kind);
    await assert.rejects(ex.run([{ t: OpType.Link, p: 'ok', tg: 'evil/victim' }]), /ELOOP|ENOTDIR|EXDEV/);
    await ex.close();
  }
  assert.deepEqual(await fsp.readdir(outside), []);
  await cleanup();
});
