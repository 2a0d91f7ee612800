/**
 * Against the real distribution registry (docker-registry, no auth): push
 * images with the Pusher, resolve them, fetch every blob and verify digests.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { createResolver, type DockerResolver } from '../../src/remotes/docker/index.js';
import { isAlreadyExists, isNotFound, isNotImplemented, isInvalidArgument, isFailedPrecondition } from '../../src/errdefs/index.js';
import { startRegistry, registryAvailable, testResolver, type Registry } from '../util/registry.js';
import { makeImage, makeMultiPlatform, pushBlobs, blob, sha256, MT, type Blob } from '../util/oci.js';
import type { Fetcher } from '../../src/remotes/types.js';

const run = promisify(execFile);
const skip = !registryAvailable() && 'docker-registry not installed';

let reg: Registry;
let resolver: DockerResolver;
const ctx = {};

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  resolver = testResolver();
});

after(async () => {
  await resolver?.close();
  await reg?.stop();
});

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function fetchAndVerify(fetcher: Fetcher, blobs: Blob[]): Promise<void> {
  for (const b of blobs) {
    const got = await readAll(await fetcher.fetch(ctx, b.desc));
    assert.equal(got.length, b.desc.size, `${b.desc.mediaType} size`);
    assert.equal(sha256(got), b.desc.digest, `${b.desc.mediaType} digest`);
  }
}

test('push, resolve and fetch an OCI index with two platforms (gzip, zstd, uncompressed layers)', { skip }, async () => {
  const img = await makeMultiPlatform('oci');
  const ref = `${reg.host}/multi/oci:v1`;
  const pusher = await resolver.pusher(ctx, ref);
  const written = await pushBlobs(ctx, pusher, img.blobs);
  assert.equal(written.length, img.blobs.length);
  assert.ok(img.blobs.some((b) => b.desc.mediaType === MT.OCILayerZstd));

  const { name, desc } = await resolver.resolve(ctx, ref);
  assert.equal(name, ref);
  assert.deepEqual(desc, { mediaType: MT.OCIIndex, digest: img.index.desc.digest, size: img.index.desc.size });

  const fetcher = await resolver.fetcher(ctx, ref);
  await fetchAndVerify(fetcher, img.blobs);

  // by digest too
  const byDigest = await resolver.resolve(ctx, `${reg.host}/multi/oci@${img.index.desc.digest}`);
  assert.equal(byDigest.desc.digest, img.index.desc.digest);
  assert.equal(byDigest.desc.size, img.index.desc.size);

  // a second push finds everything present
  assert.deepEqual(await pushBlobs(ctx, pusher, img.blobs), []);

  // skopeo agrees on the digest of what the tag points at
  if (existsSync('/usr/bin/skopeo')) {
    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${ref}`]);
    assert.equal(sha256(stdout), desc.digest);
  }
});

test('Docker schema2 manifest list and manifest', { skip }, async () => {
  const img = await makeMultiPlatform('docker');
  const ref = `${reg.host}/multi/docker:v2`;
  await pushBlobs(ctx, await resolver.pusher(ctx, ref), img.blobs);
  const { desc } = await resolver.resolve(ctx, ref);
  assert.equal(desc.mediaType, MT.DockerManifestList);
  assert.equal(desc.digest, img.index.desc.digest);
  await fetchAndVerify(await resolver.fetcher(ctx, ref), img.blobs);

  const single = img.images[0]!;
  const r2 = `${reg.host}/multi/docker@${single.manifest.desc.digest}`;
  const d2 = await resolver.resolve(ctx, r2);
  assert.equal(d2.desc.mediaType, MT.DockerManifest);
  assert.equal(d2.desc.size, single.manifest.desc.size);
});

test('large blob goes up in PATCH chunks; fetch with offset resumes', { skip }, async () => {
  const r = createResolver({ plainHTTP: true, hostsDir: [], monolithicMax: 1024, chunkSize: 300 * 1024 });
  try {
    const big = Buffer.alloc(1024 * 1024 + 123);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
    const b = blob(MT.OCILayer, big);
    const ref = `${reg.host}/chunked/app:latest`;
    const pusher = await r.pusher(ctx, ref);
    const w = await pusher.push(ctx, b.desc);
    for (let off = 0; off < big.length; off += 100_000) await w.write(big.subarray(off, off + 100_000));
    await w.commit();
    await assert.rejects(pusher.push(ctx, b.desc), isAlreadyExists);

    const fetcher = await r.fetcher(ctx, ref);
    const all = await readAll(await fetcher.fetch(ctx, b.desc));
    assert.equal(sha256(all), b.desc.digest);
    const tail = await readAll(await fetcher.fetch(ctx, b.desc, { offset: 1000 }));
    assert.ok(tail.equals(big.subarray(1000)));
    const none = await readAll(await fetcher.fetch(ctx, b.desc, { offset: big.length }));
    assert.equal(none.length, 0);
  } finally {
    await r.close();
  }
});

test('push verifies what was written', { skip }, async () => {
  const ref = `${reg.host}/verify/app:latest`;
  const pusher = await resolver.pusher(ctx, ref);
  const b = blob(MT.OCILayer, 'hello world');
  const w = await pusher.push(ctx, b.desc);
  await w.write(Buffer.from('hello WORLD'));
  await assert.rejects(w.commit(), (err: Error) => isFailedPrecondition(err) && /expected sha256/.test(err.message));
  const w2 = await pusher.push(ctx, b.desc);
  await assert.rejects(w2.write(Buffer.from('hello world!!')), isFailedPrecondition);
  await w2.abort();
  // nothing was stored
  const fetcher = await resolver.fetcher(ctx, ref);
  await assert.rejects(fetcher.fetch(ctx, b.desc), isNotFound);
});

test('cross-repository mount', { skip }, async () => {
  const img = await makeImage({ layers: [{ compression: 'gzip', files: [{ name: 'm.txt', content: 'mount me\n'.repeat(100) }] }] });
  await pushBlobs(ctx, await resolver.pusher(ctx, `${reg.host}/mount/src:1`), img.blobs);
  const layer = img.layers[0]!;
  const pusher = await resolver.pusher(ctx, `${reg.host}/mount/dst:1`);
  const labels = { [`containerd.io/distribution.source.127.0.0.1`]: 'other/repo,mount/src' };
  await assert.rejects(pusher.push(ctx, layer.desc, { sources: labels }), (err: Error) => isAlreadyExists(err) && /mounted from mount\/src/.test(err.message));
  // via annotations as containerd does
  await assert.rejects(
    pusher.push(ctx, { ...img.config.desc, annotations: labels }),
    (err: Error) => isAlreadyExists(err) && /mounted/.test(err.message),
  );
  const fetcher = await resolver.fetcher(ctx, `${reg.host}/mount/dst:1`);
  await fetchAndVerify(fetcher, [layer, img.config]);
});

test('resolve errors: unknown tag, unknown repo, bad references', { skip }, async () => {
  await assert.rejects(resolver.resolve(ctx, `${reg.host}/nope/nope:latest`), (err: Error) => {
    assert.ok(isNotFound(err), String(err));
    assert.match(err.message, /nope\/nope:latest: not found/);
    return true;
  });
  await assert.rejects(resolver.resolve(ctx, `${reg.host}/multi/oci:missing`), isNotFound);
  await assert.rejects(resolver.resolve(ctx, `${reg.host}/multi/oci`), (err: Error) => isInvalidArgument(err) && /object required/.test(err.message));
  await assert.rejects(resolver.resolve(ctx, `${reg.host}/multi/oci@sha256:1234`), isInvalidArgument);
  const fetcher = await resolver.fetcher(ctx, `${reg.host}/multi/oci:v1`);
  await assert.rejects(fetcher.fetch(ctx, blob(MT.OCILayer, 'absent').desc), isNotFound);
  void isNotImplemented;
});
