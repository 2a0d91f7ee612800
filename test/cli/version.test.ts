/**
 * `dist version`, and the CLI started from its V8 startup snapshot
 * (build/bin/dist.blob) against the plain bundle: the same answers,
 * process state (the native addon, environment) made at run time, not frozen
 * when the snapshot was built.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, copyFile, mkdir, symlink } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DIST_BIN, dist, distOK } from '../util/cli.js';
import { startTestDaemon, type TestDaemon } from '../distd/util.js';
import { tempDir } from '../util/tmp.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const pkgVersion = (JSON.parse(readFileSync(`${repo}package.json`, 'utf8')) as { version: string }).version;
const blob = `${repo}build/bin/dist.blob`;
const addonBuilt = existsSync(`${repo}native/build/Release/dist_native.node`);

interface Out {
  client: { version: string; revision: string; node: string; nativeAddon?: string; nativeAddonError?: string; startupSnapshot: boolean };
  server?: { version: string; revision: string };
}

async function version(env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<Out> {
  const r = await distOK([...args, 'version', '--json'], { env: { DIST_NO_SNAPSHOT: '', NODE_OPTIONS: '', ...env } });
  return JSON.parse(r.stdout) as Out;
}

test('the build made a startup snapshot for this Node', () => {
  assert.ok(existsSync(blob), `${blob} missing: npm run build makes it`);
});

test('bin/dist starts from the snapshot; DIST_NO_SNAPSHOT and NODE_OPTIONS run the plain bundle with the same answers', async () => {
  const snap = await version();
  const plain = await version({ DIST_NO_SNAPSHOT: '1' });
  const flagged = await version({ NODE_OPTIONS: '--max-old-space-size=512' }); // V8 would refuse the snapshot
  assert.equal(snap.client.startupSnapshot, true);
  assert.equal(plain.client.startupSnapshot, false);
  assert.equal(flagged.client.startupSnapshot, false);
  for (const o of [snap, plain, flagged]) {
    assert.equal(o.client.version, pkgVersion);
    assert.equal(o.client.node, process.version);
    assert.equal(o.client.revision, snap.client.revision);
  }
});

test('the snapshot is used only with the node binary that built it; a linked or relative launcher finds it', async () => {
  const t = await tempDir('dist-launcher-');
  try {
    // another `node` first on PATH (a copy: same version, another file): the plain bundle
    await mkdir(`${t.dir}/path`);
    await copyFile(realpathSync(process.execPath), `${t.dir}/path/node`);
    await chmod(`${t.dir}/path/node`, 0o755);
    const other = await version({ PATH: `${t.dir}/path:${process.env.PATH ?? ''}` });
    assert.equal(other.client.startupSnapshot, false);
    assert.equal(other.client.version, pkgVersion);
    // through a symlink to bin/dist, and as a path relative to the working directory
    await symlink(DIST_BIN, `${t.dir}/dist`);
    const linked = JSON.parse((await run(`${t.dir}/dist`, ['version', '--json'], t.dir)).stdout) as Out;
    assert.equal(linked.client.startupSnapshot, true);
    const relative = JSON.parse((await run('./bin/dist', ['version', '--json'], repo)).stdout) as Out;
    assert.equal(relative.client.startupSnapshot, true);
  } finally {
    await t.cleanup();
  }
});

function run(cmd: string, args: string[], cwd: string): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env: { ...process.env, DIST_NO_SNAPSHOT: '', NODE_OPTIONS: '' } }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd}: ${String(err)} ${stderr}`)) : resolve({ stdout })));
  });
}

test('the native addon is loaded when the snapshot starts, under the environment of the run', async () => {
  const on = await version();
  if (addonBuilt) assert.match(on.client.nativeAddon ?? '', /dist_native\.node$/);
  const off = await version({ DIST_NATIVE_DISABLE: '1' });
  assert.equal(off.client.startupSnapshot, true);
  assert.equal(off.client.nativeAddon, undefined);
  assert.match(off.client.nativeAddonError ?? '', /DIST_NATIVE_DISABLE=1/);
});

test('arguments and errors are the same from the snapshot as from the bundle', async () => {
  const t = await tempDir('dist-version-');
  try {
    for (const args of [['--root', t.dir, 'images', 'ls', '--bogus'], ['--root', t.dir, 'images', 'ls', '-q'], ['nosuchverb'], ['--root', t.dir, 'content', 'get', 'sha256:zz']]) {
      const a = await dist(args, { env: { DIST_NO_SNAPSHOT: '', NODE_OPTIONS: '' } });
      const b = await dist(args, { env: { DIST_NO_SNAPSHOT: '1' } });
      assert.deepEqual(a, b, args.join(' '));
    }
  } finally {
    await t.cleanup();
  }
});

let d: TestDaemon;
before(async () => {
  d = await startTestDaemon();
});
after(async () => {
  await d?.stop();
});

test('with --address, the daemon answers its version too', async () => {
  const o = await version({}, ['--address', d.sock]);
  assert.deepEqual(o.server, { version: o.client.version, revision: o.client.revision });
  const text = await distOK(['--address', d.sock, 'version'], { env: { NODE_OPTIONS: '' } });
  assert.match(text.stdout, /^Client:\n {2}Version: +\S+\n[\s\S]*\nServer:\n {2}Version: +\S+\n {2}Revision: /);
});

test('with --address, dist gc has the daemon collect (a lease deleted with sync); --dry-run stays local-only', async () => {
  const data = 'garbage for the daemon\n';
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  // committed outside any lease and named by no image: garbage
  await distOK(['--address', d.sock, 'content', 'ingest', '--expected-digest', digest, '--expected-size', String(data.length), 'gc-test'], { input: data });
  assert.match((await distOK(['--address', d.sock, 'content', 'ls', '-q'])).stdout, new RegExp(digest));
  const r = await distOK(['--address', d.sock, 'gc']);
  assert.equal(r.stdout, 'garbage collected by the daemon\n');
  assert.doesNotMatch((await distOK(['--address', d.sock, 'content', 'ls', '-q'])).stdout, new RegExp(digest));
  assert.equal((await distOK(['--address', d.sock, 'leases', 'ls', '-q'])).stdout.trim(), '', 'the helper lease is gone');
  const dry = await dist(['--address', d.sock, 'gc', '--dry-run']);
  assert.equal(dry.code, 1, dry.stderr);
  assert.match(dry.stderr, /^dist: gc --dry-run works on a local root only \(drop --address\): not implemented\n$/);
});
