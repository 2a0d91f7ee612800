import { test } from 'node:test';
import assert from 'node:assert/strict';
import { check, config, imageRootFS, manifest, platforms as imagePlatforms, rootFS, size } from '../../src/images/helpers.js';
import * as mt from '../../src/images/mediatypes.js';
import { isNotFound } from '../../src/errdefs/index.js';
import * as platforms from '../../src/platforms/index.js';
import * as digest from '../../src/digest/index.js';
import { buildImage, ctx, storeFactories, storeImage, writeBlob } from './fixtures.js';

const P = platforms.parse;

for (const f of storeFactories) {
  test(`[${f.name}] manifest/config/rootFS pick the platform's manifest from an index`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64'), P('linux/arm64/v8'), P('linux/arm/v7')]);
      await storeImage(store, img);
      const arm64 = img.manifests[1];
      const m = await manifest(ctx, store, img.index, platforms.only(P('linux/arm64')));
      assert.deepEqual(m.config, arm64.config);
      assert.deepEqual(m.layers, arm64.layers);
      assert.deepEqual(await config(ctx, store, img.index, platforms.only(P('linux/amd64'))), img.manifests[0].config);
      // arm/v8 has no exact match: falls back to arm/v7.
      assert.deepEqual(await config(ctx, store, img.index, platforms.only(P('linux/arm/v8'))), img.manifests[2].config);
      assert.deepEqual(await rootFS(ctx, store, arm64.config), arm64.diffIDs);
      assert.deepEqual(await imageRootFS(ctx, store, img.index, platforms.only(P('linux/arm64'))), arm64.diffIDs);
      // No platform: the first manifest.
      assert.deepEqual((await manifest(ctx, store, img.index)).config, img.manifests[0].config);
      // A manifest root is returned whatever the platform.
      assert.deepEqual((await manifest(ctx, store, arm64.desc, platforms.only(P('windows/amd64')))).config, arm64.config);
      await assert.rejects(manifest(ctx, store, img.index, platforms.only(P('linux/s390x'))),
        (e: any) => isNotFound(e) && e.message === `no match for platform in manifest ${img.index.digest}: not found`);
      await assert.rejects(manifest(ctx, store, img.manifests[0].config), (e: any) => isNotFound(e) && /unexpected media type/.test(e.message));
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] index entries without platform are matched through their config`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/arm64'), P('linux/amd64')], { noIndexPlatform: true, docker: true });
      await storeImage(store, img);
      // Entries lack a platform so ordering keeps index order; only the first is considered (containerd's limit of 1).
      assert.deepEqual(await config(ctx, store, img.index, platforms.only(P('linux/arm64'))), img.manifests[0].config);
      await assert.rejects(config(ctx, store, img.index, platforms.only(P('linux/amd64'))), (e) => isNotFound(e));
      assert.deepEqual(await imagePlatforms(ctx, store, img.index), [P('linux/arm64'), P('linux/amd64')]);
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] platforms, size and check`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64'), P('linux/arm64/v8')], { layersPerManifest: 2 });
      await storeImage(store, img);
      assert.deepEqual((await imagePlatforms(ctx, store, img.index)).map(platforms.format), ['linux/amd64', 'linux/arm64/v8']);
      const amd = img.manifests[0];
      const expected = img.index.size + amd.desc.size + amd.config.size + amd.layers.reduce((n, l) => n + l.size, 0);
      assert.equal(await size(ctx, store, img.index, platforms.only(P('linux/amd64'))), expected);

      const ok = await check(ctx, store, img.index, platforms.only(P('linux/amd64')));
      assert.equal(ok.available, true);
      assert.deepEqual(ok.required, [amd.config, ...amd.layers]);
      assert.deepEqual(ok.present, ok.required);
      assert.deepEqual(ok.missing, []);

      await store.delete(ctx, amd.layers[1].digest);
      const partial = await check(ctx, store, img.index, platforms.only(P('linux/amd64')));
      assert.equal(partial.available, true);
      assert.deepEqual(partial.missing, [amd.layers[1]]);
      assert.deepEqual(partial.present, [amd.config, amd.layers[0]]);

      await store.delete(ctx, amd.desc.digest);
      const gone = await check(ctx, store, img.index, platforms.only(P('linux/amd64')));
      assert.deepEqual(gone, { available: false, required: [img.index], present: [], missing: [img.index] });

      // A single manifest image (no index): platforms come from the config.
      const solo = await writeBlob(store, JSON.stringify({ schemaVersion: 2, mediaType: mt.MediaTypeImageManifest, config: img.manifests[1].config, layers: img.manifests[1].layers }), mt.MediaTypeImageManifest);
      assert.deepEqual(await imagePlatforms(ctx, store, solo), [P('linux/arm64')]);
      assert.equal((await check(ctx, store, { ...solo, digest: digest.fromBytes('nope') })).available, false);
    } finally {
      await cleanup();
    }
  });
}
