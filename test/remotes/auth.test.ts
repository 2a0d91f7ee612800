/**
 * Authorization against the real registry: htpasswd Basic auth and token
 * auth with the tests' own token server; challenge parsing.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { createResolver, parseChallenges, isUnauthorized, type DockerResolver } from '../../src/remotes/docker/index.js';
import { isFailedPrecondition, isAlreadyExists } from '../../src/errdefs/index.js';
import { startRegistry, registryAvailable, type Registry } from '../util/registry.js';
import { makeImage, pushBlobs, sha256, type Image } from '../util/oci.js';

const skip = !registryAvailable() && 'docker-registry not installed';
const ctx = {};

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('parseChallenges: quoted params, escapes, several challenges per header and per value', () => {
  const got = parseChallenges([
    'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push repository:c:pull", Basic realm="x, y"',
    'basic realm=plain',
    'Digest realm="a\\"b", nonce="n"',
    'Bearer error="insufficient_scope",realm="r"',
    'Negotiate abc==',
  ]);
  assert.deepEqual(got, [
    { scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push repository:c:pull' } },
    { scheme: 'basic', params: { realm: 'x, y' } },
    { scheme: 'basic', params: { realm: 'plain' } },
    { scheme: 'digest', params: { realm: 'a"b', nonce: 'n' } },
    { scheme: 'bearer', params: { error: 'insufficient_scope', realm: 'r' } },
    { scheme: 'negotiate', params: {} },
  ]);
  assert.deepEqual(parseChallenges(undefined), []);
  assert.deepEqual(parseChallenges(',,  ,'), []);
});

describe('htpasswd basic auth', { skip }, () => {
  let reg: Registry;
  let img: Image;
  before(async () => {
    reg = await startRegistry({ htpasswd: { alice: 's3cret', bob: 'hunter2' } });
    img = await makeImage({ layers: [{ compression: 'gzip', files: [{ name: 'a', content: 'basic\n' }] }] });
  });
  after(async () => { await reg?.stop(); });

  const mk = (creds?: { username: string; password: string }): DockerResolver =>
    createResolver({ plainHTTP: true, hostsDir: [], credentials: creds ? (h) => (h === reg.host ? creds : undefined) : undefined });

  test('good credentials push and pull', async () => {
    const r = mk({ username: 'alice', password: 's3cret' });
    try {
      const ref = `${reg.host}/team/app:1`;
      await pushBlobs(ctx, await r.pusher(ctx, ref), img.blobs);
      const { desc } = await r.resolve(ctx, ref);
      assert.equal(desc.digest, img.manifest.desc.digest);
      const f = await r.fetcher(ctx, ref);
      for (const b of img.blobs) assert.equal(sha256(await readAll(await f.fetch(ctx, b.desc))), b.desc.digest);
    } finally {
      await r.close();
    }
  });

  test('bad or missing credentials: a clear error naming the registry', async () => {
    for (const creds of [{ username: 'alice', password: 'wrong' }, undefined]) {
      const r = mk(creds);
      try {
        await assert.rejects(r.resolve(ctx, `${reg.host}/team/app:1`), (err: Error) => {
          assert.ok(isFailedPrecondition(err), String(err));
          assert.ok(isUnauthorized(err));
          assert.ok(err.message.includes(reg.host), err.message);
          assert.match(err.message, /401 Unauthorized/);
          return true;
        });
        const p = await r.pusher(ctx, `${reg.host}/team/app:2`);
        await assert.rejects(p.push(ctx, img.config.desc), (err: Error) => isUnauthorized(err) && err.message.includes(reg.host));
      } finally {
        await r.close();
      }
    }
  });
});

describe('token auth', { skip }, () => {
  let reg: Registry;
  let img: Image;
  before(async () => {
    reg = await startRegistry({ token: { users: { carol: 'pw' } } });
    img = await makeImage({ layers: [{ compression: 'zstd', files: [{ name: 'b', content: 'token\n' }] }] });
  });
  after(async () => { await reg?.stop(); });

  const mk = (creds?: { username: string; password: string }) =>
    createResolver({ plainHTTP: true, hostsDir: [], credentials: creds ? () => creds : undefined });

  test('push with credentials; anonymous pull allowed for public/, denied elsewhere; tokens cached per scope', async () => {
    const carol = mk({ username: 'carol', password: 'pw' });
    try {
      await pushBlobs(ctx, await carol.pusher(ctx, `${reg.host}/public/app:1`), img.blobs);
      await pushBlobs(ctx, await carol.pusher(ctx, `${reg.host}/private/app:1`), img.blobs);
      // the credentialed token requests went as GET + Basic (POST is refused by this server)
      const carolReqs = reg.tokenServer!.requests.filter((q) => q.user === 'carol' && q.status === 200);
      assert.ok(carolReqs.length >= 1 && carolReqs.every((q) => q.method === 'GET'));
      assert.ok(reg.tokenServer!.requests.some((q) => q.method === 'POST' && q.status === 404));
    } finally {
      await carol.close();
    }

    const anon = mk();
    try {
      const before = reg.tokenServer!.requests.length;
      const { desc } = await anon.resolve(ctx, `${reg.host}/public/app:1`);
      assert.equal(desc.digest, img.manifest.desc.digest);
      const f = await anon.fetcher(ctx, `${reg.host}/public/app:1`);
      for (const b of img.blobs) assert.equal(sha256(await readAll(await f.fetch(ctx, b.desc))), b.desc.digest);
      await anon.resolve(ctx, `${reg.host}/public/app:1`);
      // one token for repository:public/app:pull, reused by every later request
      const got = reg.tokenServer!.requests.slice(before);
      assert.equal(got.length, 1, JSON.stringify(got));
      assert.deepEqual(got[0]!.scopes, ['repository:public/app:pull']);
      assert.equal(anon.authorizer.stats.tokenFetches, 1);

      await assert.rejects(anon.resolve(ctx, `${reg.host}/private/app:1`), (err: Error) => {
        assert.ok(isFailedPrecondition(err) && isUnauthorized(err), String(err));
        assert.match(err.message, /pull access denied/);
        assert.ok(err.message.includes(reg.host));
        return true;
      });
    } finally {
      await anon.close();
    }
  });

  test('wrong password: the token server refusal is reported', async () => {
    const r = mk({ username: 'carol', password: 'nope' });
    try {
      await assert.rejects(r.resolve(ctx, `${reg.host}/private/app:1`), (err: Error) => {
        assert.ok(isUnauthorized(err), String(err));
        assert.match(err.message, /failed to fetch token/);
        return true;
      });
    } finally {
      await r.close();
    }
  });

  test('cross-repository mount asks for pull on the source', async () => {
    const r = mk({ username: 'carol', password: 'pw' });
    try {
      const p = await r.pusher(ctx, `${reg.host}/private/copy:1`);
      const sources = { 'containerd.io/distribution.source.127.0.0.1': 'private/app' };
      await assert.rejects(p.push(ctx, img.layers[0]!.desc, { sources }), (err: Error) => isAlreadyExists(err) && /mounted/.test(err.message));
      const q = reg.tokenServer!.requests.at(-1)!;
      assert.deepEqual(q.scopes.sort(), ['repository:private/app:pull', 'repository:private/copy:pull,push']);
    } finally {
      await r.close();
    }
  });
});

describe('token auth with OAuth2 POST', { skip }, () => {
  let reg: Registry;
  before(async () => { reg = await startRegistry({ token: { users: { dave: 'pw' }, allowPost: true } }); });
  after(async () => { await reg?.stop(); });

  test('credentials go in a POST form', async () => {
    const img = await makeImage({ layers: [{ compression: 'none', files: [{ name: 'c', content: 'post\n' }] }] });
    const r = createResolver({ plainHTTP: true, hostsDir: [], credentials: () => ({ username: 'dave', password: 'pw' }) });
    try {
      await pushBlobs(ctx, await r.pusher(ctx, `${reg.host}/x/y:1`), img.blobs);
      assert.equal((await r.resolve(ctx, `${reg.host}/x/y:1`)).desc.digest, img.manifest.desc.digest);
      const reqs = reg.tokenServer!.requests.filter((q) => q.status === 200);
      assert.ok(reqs.length >= 1 && reqs.every((q) => q.method === 'POST' && q.user === 'dave'));
    } finally {
      await r.close();
    }
  });
});
