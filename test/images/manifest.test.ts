import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mt from '../../src/images/mediatypes.js';
import { parseImageConfig, parseIndex, parseManifest, readJSON, readManifest, readBlob } from '../../src/images/manifest.js';
import { isInvalidArgument, isNotImplemented, isNotFound } from '../../src/errdefs/index.js';
import * as digest from '../../src/digest/index.js';
import { MemStore } from './memstore.js';
import { ctx } from './fixtures.js';

const D = (s: string) => digest.fromBytes(s);

test('media type predicates', () => {
  assert.ok(mt.isManifest(mt.MediaTypeImageManifest) && mt.isManifest(mt.MediaTypeDockerSchema2Manifest));
  assert.ok(!mt.isManifest(mt.MediaTypeDockerSchema1Manifest) && !mt.isManifest(mt.MediaTypeImageIndex));
  assert.ok(mt.isIndex(mt.MediaTypeImageIndex) && mt.isIndex(mt.MediaTypeDockerSchema2ManifestList));
  assert.ok(mt.isConfig(mt.MediaTypeImageConfig) && mt.isConfig(mt.MediaTypeDockerSchema2Config));
  assert.ok(!mt.isConfig(mt.MediaTypeContainerd1CheckpointConfig) && mt.isKnownConfig(mt.MediaTypeContainerd1CheckpointConfig));
  for (const l of [mt.MediaTypeImageLayer, mt.MediaTypeImageLayerGzip, mt.MediaTypeImageLayerZstd, mt.MediaTypeImageLayerNonDistributableGzip,
    mt.MediaTypeDockerSchema2Layer, mt.MediaTypeDockerSchema2LayerGzip, mt.MediaTypeDockerSchema2LayerForeignGzip, mt.MediaTypeDockerSchema2LayerGzip + '+encrypted']) {
    assert.ok(mt.isLayer(l), l);
  }
  assert.ok(!mt.isLayer(mt.MediaTypeImageConfig));
  assert.ok(mt.isNonDistributable(mt.MediaTypeImageLayerNonDistributable) && mt.isNonDistributable(mt.MediaTypeDockerSchema2LayerForeignGzip));
  assert.ok(!mt.isNonDistributable(mt.MediaTypeImageLayerGzip));
});

test('compressionOf follows containerd DiffCompression', () => {
  assert.equal(mt.compressionOf(mt.MediaTypeImageLayer), '');
  assert.equal(mt.compressionOf(mt.MediaTypeImageLayerGzip), 'gzip');
  assert.equal(mt.compressionOf(mt.MediaTypeImageLayerZstd), 'zstd');
  assert.equal(mt.compressionOf(mt.MediaTypeImageLayerNonDistributableZstd), 'zstd');
  assert.equal(mt.compressionOf(mt.MediaTypeImageLayerGzipEncrypted), 'gzip');
  assert.equal(mt.compressionOf(mt.MediaTypeImageLayerEncrypted), '');
  assert.equal(mt.compressionOf(mt.MediaTypeDockerSchema2Layer), 'unknown');
  assert.equal(mt.compressionOf(mt.MediaTypeDockerSchema2LayerGzip), 'gzip');
  assert.equal(mt.compressionOf(mt.MediaTypeDockerSchema2LayerGzip + '+encrypted'), '');
  assert.throws(() => mt.compressionOf(mt.MediaTypeImageConfig), (e) => isNotImplemented(e));
});

const cfgDesc = { mediaType: mt.MediaTypeImageConfig, digest: D('c'), size: 10 };
const layerDesc = { mediaType: mt.MediaTypeImageLayerGzip, digest: D('l'), size: 20 };

test('parseManifest accepts a valid manifest and keeps unknown fields', () => {
  const m = parseManifest(JSON.stringify({ schemaVersion: 2, mediaType: mt.MediaTypeImageManifest, config: cfgDesc, layers: [layerDesc], extra: 1 }), { digest: D('m'), mediaType: mt.MediaTypeImageManifest });
  assert.deepEqual(m.config, cfgDesc);
  assert.deepEqual(m.layers, [layerDesc]);
  assert.equal((m as any).extra, 1);
  assert.deepEqual(parseManifest(JSON.stringify({ schemaVersion: 2, config: cfgDesc })).layers, []);
});

test('parseManifest rejects bad JSON and wrong shapes with InvalidArgument naming the digest', () => {
  const dg = D('m');
  const desc = { digest: dg, mediaType: mt.MediaTypeImageManifest };
  const bad: Array<[unknown, RegExp]> = [
    ['{not json', /invalid JSON/],
    [[1, 2], /expected a JSON object/],
    [{ schemaVersion: 2 }, /config: missing/],
    [{ schemaVersion: 2, config: { ...cfgDesc, digest: 'sha256:xyz' } }, /config\.digest: invalid digest/],
    [{ schemaVersion: 2, config: { ...cfgDesc, size: -1 } }, /config\.size/],
    [{ schemaVersion: 2, config: { ...cfgDesc, size: '10' } }, /config\.size/],
    [{ schemaVersion: 2, config: cfgDesc, layers: {} }, /layers: expected an array/],
    [{ schemaVersion: 2, config: cfgDesc, layers: [{ ...layerDesc, mediaType: 5 }] }, /layers\[0\]\.mediaType/],
    [{ schemaVersion: 2, config: cfgDesc, layers: [{ ...layerDesc, platform: { os: 'linux' } }] }, /layers\[0\]\.platform\.architecture/],
    [{ schemaVersion: 2, config: cfgDesc, manifests: [] }, /expected manifest but found index/],
    [{ schemaVersion: 2, mediaType: mt.MediaTypeImageIndex, config: cfgDesc }, /expected manifest but found index/],
    [{ schemaVersion: 1, fsLayers: [{}] }, /schema 1 not supported/],
    [{ schemaVersion: 3, config: cfgDesc }, /unsupported schemaVersion/],
    [{ schemaVersion: 2, config: cfgDesc, annotations: { a: 1 } }, /annotations/],
  ];
  for (const [doc, re] of bad) {
    const text = typeof doc === 'string' ? doc : JSON.stringify(doc);
    assert.throws(() => parseManifest(text, desc), (err: any) => isInvalidArgument(err) && re.test(err.message) && err.message.includes(dg), text);
  }
});

test('parseIndex validates manifests and the media type cross-check', () => {
  const m1 = { mediaType: mt.MediaTypeImageManifest, digest: D('m1'), size: 5, platform: { os: 'linux', architecture: 'amd64' } };
  const idx = parseIndex(JSON.stringify({ schemaVersion: 2, manifests: [m1] }), { mediaType: mt.MediaTypeImageIndex, digest: D('i') });
  assert.deepEqual(idx.manifests, [m1]);
  assert.throws(() => parseIndex(JSON.stringify({ schemaVersion: 2, config: cfgDesc, layers: [] }), { mediaType: mt.MediaTypeImageIndex, digest: D('i') }),
    (e: any) => isInvalidArgument(e) && /expected index but found manifest/.test(e.message));
  assert.throws(() => parseIndex(JSON.stringify({ schemaVersion: 2, manifests: [{ ...m1, digest: 'nope' }] })), (e: any) => isInvalidArgument(e) && /manifests\[0\]\.digest/.test(e.message));
  assert.throws(() => parseIndex(JSON.stringify({ schemaVersion: 2, manifests: 'x' })), (e) => isInvalidArgument(e));
});

test('parseImageConfig: rootfs.diff_ids, platform fields', () => {
  const c = parseImageConfig(JSON.stringify({ architecture: 'arm64', os: 'linux', variant: 'v8', rootfs: { type: 'layers', diff_ids: [D('a'), D('b')] } }));
  assert.deepEqual(c.rootfs.diff_ids, [D('a'), D('b')]);
  assert.equal(c.variant, 'v8');
  assert.deepEqual(parseImageConfig('{}').rootfs.diff_ids, []);
  assert.throws(() => parseImageConfig(JSON.stringify({ architecture: 1, os: 'linux' })), (e) => isInvalidArgument(e));
  assert.throws(() => parseImageConfig(JSON.stringify({ os: 'linux', rootfs: { diff_ids: ['bad'] } }), { digest: D('cfg') }),
    (e: any) => isInvalidArgument(e) && e.message.includes(D('cfg')) && /diff_ids\[0\]/.test(e.message));
});

test('readJSON/readBlob read through the provider with a size cap', async () => {
  const s = new MemStore();
  const doc = { schemaVersion: 2, config: cfgDesc, layers: [layerDesc] };
  const d = s.put(JSON.stringify(doc), mt.MediaTypeImageManifest);
  assert.deepEqual(await readJSON(ctx, s, d), doc);
  assert.deepEqual((await readManifest(ctx, s, d)).layers, [layerDesc]);
  await assert.rejects(readJSON(ctx, s, d, { maxSize: 10 }), (e: any) => isInvalidArgument(e) && /exceeds limit/.test(e.message));
  // Descriptor claims a small size but the blob is larger: the blob's own size is capped.
  await assert.rejects(readBlob(ctx, s, { ...d, size: 5 }, { maxSize: 10 }), (e: any) => isInvalidArgument(e) && /exceeds limit/.test(e.message));
  const junk = s.put('{"a":', 'application/json');
  await assert.rejects(readJSON(ctx, s, junk), (e: any) => isInvalidArgument(e) && e.message.includes(junk.digest));
  await assert.rejects(readJSON(ctx, s, { ...d, digest: D('absent') }), (e) => isNotFound(e));
});
