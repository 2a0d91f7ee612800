/**
 * dist fetch / push / fetch-object / images against the real CNCF
 * distribution registry (docker-registry), started by the test, with images
 * the test builds (OCI and Docker schema2, an index with two platforms,
 * gzip, zstd and uncompressed layers). skopeo checks our digests.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { writeBlob } from '../../src/content/helpers.js';
import { openEmbedded } from '../../src/services/embedded.js';
import { dist, distOK } from '../util/cli.js';
import { makeImage, makeMultiPlatform, type Blob } from '../util/oci.js';
import { registryAvailable, startRegistry, type Registry } from '../util/registry.js';
import { tempDir } from '../util/tmp.js';

const run = promisify(execFile);
const skip = !registryAvailable() && 'docker-registry not installed';

/** Writes blobs into root and records an image named `name` → root blob. */
async function seed(root: string, name: string, blobs: Blob[], rootBlob: Blob): Promise<void> {
  const svc = await openEmbedded(root);
  const ctx = { namespace: 'default' };
  try {
    for (const b of blobs) await writeBlob(ctx, svc.content, `seed-${b.desc.digest}`, [b.bytes], b.desc);
    await svc.images.create(ctx, { name, target: rootBlob.desc });
  } finally {
    await svc.close();
  }
}

function events(stdout: string): { event: string; ref?: string; state?: string }[] {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

describe('dist against a real registry', { skip }, () => {
  let reg: Registry;
  let auth: Registry;
  const dirs: (() => Promise<void>)[] = [];
  const tmp = async () => {
    const t = await tempDir();
    dirs.push(t.cleanup);
    return t.dir;
  };

  before(async () => {
    reg = await startRegistry();
    auth = await startRegistry({ htpasswd: { tester: 'testpass' } });
  });
  after(async () => {
    await reg?.stop();
    await auth?.stop();
    for (const c of dirs) await c();
  });

  test('push an index (2 platforms, gzip/zstd/none) and fetch it back into a fresh root; skopeo agrees', async () => {
    const idx = await makeMultiPlatform('oci');
    const a = await tmp();
    const ref = `${reg.host}/multi/app:v1`;
    await seed(a, ref, idx.blobs, idx.index);
    const pushed = await distOK(['push', '--plain-http', ref], { root: a });
    assert.match(pushed.stdout, new RegExp(idx.index.desc.digest));

    if (existsSync('/usr/bin/skopeo')) {
      const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${ref}`]);
      assert.equal(JSON.parse(stdout).manifests.length, 2);
      // skopeo prints the stored bytes plus a newline.
      assert.equal(stdout.replace(/\n$/, ''), idx.index.bytes.toString());
      const layout = await tmp();
      await run('skopeo', ['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:v1`]);
      const indexJson = JSON.parse((await import('node:fs')).readFileSync(`${layout}/index.json`, 'utf8'));
      assert.equal(indexJson.manifests[0].digest, idx.index.desc.digest);
    }

    const b = await tmp();
    const f = await distOK(['--json', 'fetch', '--plain-http', '--all-platforms', ref], { root: b });
    const evs = events(f.stdout);
    assert.ok(evs.some((e) => e.state === 'downloading' || e.state === 'done'));
    const ls = await distOK(['content', 'ls', '-q'], { root: b });
    for (const blob of idx.blobs) assert.ok(ls.stdout.includes(blob.desc.digest), `missing ${blob.desc.digest}`);
    const imgs = JSON.parse((await distOK(['--json', 'images', 'ls'], { root: b })).stdout);
    assert.equal(imgs[0].target.digest, idx.index.desc.digest);
    assert.deepEqual(imgs[0].platforms, ['linux/amd64', 'linux/arm64']);

    // Only one platform here: pushing the index says what is missing and what to do
    const c = await tmp();
    await distOK(['fetch', '--plain-http', '--platform', 'linux/arm64', ref], { root: c });
    const partial = await dist(['push', '--plain-http', ref, ref], { root: c });
    assert.equal(partial.code, 2, partial.stderr);
    assert.match(partial.stderr, /^dist: content sha256:[0-9a-f]{64}: not found \(the image is not complete in this store, as dist images check shows: fetch all its platforms first, with dist fetch --all-platforms\)$/m);

    // The same image again: nothing is downloaded.
    const again = await distOK(['--json', 'fetch', '--plain-http', '--all-platforms', ref], { root: b });
    const states = events(again.stdout).filter((e) => e.event === 'progress' && e.ref?.includes('sha256:')).map((e) => e.state);
    assert.ok(states.length > 0);
    assert.ok(states.every((s) => s === 'exists'), `second fetch states: ${states.join(',')}`);
  });

  test('a plain-HTTP registry on a loopback address needs no --plain-http (https first, then http, as containerd for localhost): push, fetch, fetch-object', async () => {
    const img = await makeImage({ format: 'oci', layers: [{ compression: 'gzip', files: [{ name: 'etc/fallback', content: 'plain\n' }] }] });
    const a = await tmp();
    const port = reg.host.split(':')[1];
    for (const host of [reg.host, `localhost:${port}`]) {
      const ref = `${host}/fallback/app:v1`;
      await seed(a, ref, img.blobs, img.manifest);
      await distOK(['push', ref], { root: a });
      const b = await tmp();
      await distOK(['fetch', ref], { root: b });
      const ls = await distOK(['content', 'ls', '-q'], { root: b });
      for (const blob of img.blobs) assert.ok(ls.stdout.includes(blob.desc.digest), `${host}: missing ${blob.desc.digest}`);
      const obj = await distOK(['fetch-object', ref], { root: b });
      assert.equal(JSON.parse(obj.stdout).config.digest, img.config.desc.digest);
    }
  });

  test('Docker schema2 image: push, fetch, labels as containerd sets them, fetch-object pipes JSON', async () => {
    const img = await makeImage({ format: 'docker', layers: [{ compression: 'gzip', files: [{ name: 'etc/hello', content: 'hi\n' }] }, { compression: 'none', files: [{ name: 'etc/two', content: '2\n' }] }] });
    const a = await tmp();
    const ref = `${reg.host}/docker/app:latest`;
    await seed(a, ref, img.blobs, img.manifest);
    await distOK(['push', '--plain-http', ref], { root: a });
    const b = await tmp();
    await distOK(['fetch', '--plain-http', ref], { root: b });
    const infos = JSON.parse((await distOK(['--json', 'content', 'ls'], { root: b })).stdout) as { digest: string; labels: Record<string, string> }[];
    const m = infos.find((i) => i.digest === img.manifest.desc.digest)!;
    assert.equal(m.labels['containerd.io/gc.ref.content.config'], img.config.desc.digest);
    assert.equal(m.labels['containerd.io/gc.ref.content.l.0'], img.layers[0].desc.digest);
    assert.equal(m.labels['containerd.io/gc.ref.content.l.1'], img.layers[1].desc.digest);
    for (const i of infos) assert.equal(i.labels['containerd.io/distribution.source.127.0.0.1'], 'docker/app');
    const obj = await distOK(['fetch-object', '--plain-http', ref], { root: b });
    assert.equal(JSON.parse(obj.stdout).config.digest, img.config.desc.digest);
    const cfg = await distOK(['fetch-object', '--plain-http', ref, img.config.desc.digest], { root: b });
    assert.deepEqual(JSON.parse(cfg.stdout).rootfs.diff_ids, img.layers.map((l) => l.diffID));
  });

  test('basic auth: --user works, wrong password is one clear line', async () => {
    const img = await makeImage({ layers: [{ compression: 'gzip', files: [{ name: 'x', content: 'x\n' }] }] });
    const a = await tmp();
    const ref = `${auth.host}/private/app:v1`;
    await seed(a, ref, img.blobs, img.manifest);
    const noauth = await dist(['push', '--plain-http', ref], { root: a, env: { DOCKER_CONFIG: a } });
    assert.notEqual(noauth.code, 0);
    assert.match(noauth.stderr, /^dist: .*(401|unauthorized|authoriz)/im);
    assert.match(noauth.stderr, /\(the registry wants credentials: --user USER:PASS, or an entry in ~\/\.docker\/config\.json\)$/m);
    await distOK(['push', '--plain-http', '--user', 'tester:testpass', ref], { root: a, env: { DOCKER_CONFIG: a } });
    const b = await tmp();
    const bad = await dist(['fetch', '--plain-http', '--user', 'tester:nope', ref], { root: b, env: { DOCKER_CONFIG: a } });
    assert.notEqual(bad.code, 0);
    assert.equal(bad.stderr.trim().split('\n').filter((l) => l.startsWith('dist:')).length, 1);
    assert.match(bad.stderr, new RegExp(auth.host.replace(/\./g, '\\.')));
    assert.match(bad.stderr, /\(the registry refused these credentials: check --user or the entry in ~\/\.docker\/config\.json\)$/m);
    await distOK(['fetch', '--plain-http', '--user', 'tester:testpass', ref], { root: b, env: { DOCKER_CONFIG: a } });
  });

  test('unknown tag and bad reference: NotFound / InvalidArgument with exit codes', async () => {
    const b = await tmp();
    const nf = await dist(['fetch', '--plain-http', `${reg.host}/nope/nothing:v9`], { root: b });
    assert.equal(nf.code, 2, nf.stderr);
    assert.match(nf.stderr, /not found/);
    const bad = await dist(['fetch', '--plain-http', `${reg.host}/UPPER/case:v1`], { root: b });
    assert.equal(bad.code, 3, bad.stderr);
    assert.match(bad.stderr, /invalid argument/);
  });

  test('images tag, label, rm', async () => {
    const img = await makeImage({ layers: [{ compression: 'gzip', files: [{ name: 'y', content: 'y\n' }] }] });
    const a = await tmp();
    const ref = `${reg.host}/tags/app:v1`;
    await seed(a, ref, img.blobs, img.manifest);
    await distOK(['images', 'tag', ref, `${reg.host}/tags/app:v2`], { root: a });
    await distOK(['images', 'label', `${reg.host}/tags/app:v2`, 'team=dist'], { root: a });
    const ls = await distOK(['images', 'ls'], { root: a });
    assert.match(ls.stdout, /tags\/app:v2 .* team=dist/);
    await distOK(['images', 'rm', `${reg.host}/tags/app:v2`], { root: a });
    const q = await distOK(['images', 'ls', '-q'], { root: a });
    assert.deepEqual(q.stdout.trim().split('\n'), [ref]);
  });
});
