import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  children, childrenHandler, dispatch, ErrSkipDesc, ErrStopHandler, filterPlatforms, handlers, isEmptyWalk, limitManifests, Semaphore,
  setChildrenLabels, walk, walkNotEmpty, childGCLabels, childGCLabelsFilterLayers, setChildrenMappedLabels, type Handler,
} from '../../src/images/handlers.js';
import * as mt from '../../src/images/mediatypes.js';
import { isCanceled, isNotFound, isInvalidArgument, unavailable, isUnavailable } from '../../src/errdefs/index.js';
import * as platforms from '../../src/platforms/index.js';
import type { Descriptor } from '../../src/content/types.js';
import * as digest from '../../src/digest/index.js';
import { buildImage, ctx, storeFactories, storeImage } from './fixtures.js';

const P = platforms.parse;
const node = (name: string, mediaType = 'application/x-test'): Descriptor => ({ mediaType, digest: digest.fromBytes(name), size: name.length, annotations: { name } });
const nameOf = (d: Descriptor) => d.annotations!.name;

/** A synthetic tree: r → a, b; a → a1, a2; b → b1. */
const tree: Record<string, string[]> = { r: ['a', 'b'], a: ['a1', 'a2'], b: ['b1'] };
const treeHandler = (visit: string[]): Handler => async (_c, d) => {
  visit.push(nameOf(d));
  return (tree[nameOf(d)] ?? []).map((n) => node(n));
};

test('walk is depth-first and sequential', async () => {
  const seen: string[] = [];
  await walk(ctx, treeHandler(seen), node('r'));
  assert.deepEqual(seen, ['r', 'a', 'a1', 'a2', 'b', 'b1']);
});

test('ErrSkipDesc skips children; other errors stop the walk', async () => {
  const seen: string[] = [];
  const h: Handler = async (c, d) => {
    const kids = await treeHandler(seen)(c, d);
    if (nameOf(d) === 'a') throw ErrSkipDesc;
    return kids;
  };
  await walk(ctx, h, node('r'));
  assert.deepEqual(seen, ['r', 'a', 'b', 'b1']);
  const boom: Handler = async (_c, d) => {
    if (nameOf(d) === 'a') throw unavailable('boom');
    return (tree[nameOf(d)] ?? []).map((n) => node(n));
  };
  await assert.rejects(walk(ctx, boom, node('r')), (e) => isUnavailable(e));
});

test('handlers: concatenates children; ErrStopHandler ends the chain keeping children so far', async () => {
  const calls: string[] = [];
  const h1: Handler = async () => { calls.push('h1'); return [node('x')]; };
  const stop: Handler = async () => { calls.push('stop'); throw ErrStopHandler; };
  const h2: Handler = async () => { calls.push('h2'); return [node('y')]; };
  assert.deepEqual((await handlers(h1, h2)(ctx, node('r'))).map(nameOf), ['x', 'y']);
  calls.length = 0;
  assert.deepEqual((await handlers(h1, stop, h2)(ctx, node('r'))).map(nameOf), ['x']);
  assert.deepEqual(calls, ['h1', 'stop']);
  // Stop wrapped in a cause chain is still recognised.
  const wrapped: Handler = async () => { throw new Error('wrapped', { cause: ErrStopHandler }); };
  assert.deepEqual((await handlers(h1, wrapped, h2)(ctx, node('r'))).map(nameOf), ['x']);
});

test('walkNotEmpty throws ErrEmptyWalk when nothing has children', async () => {
  await assert.rejects(walkNotEmpty(ctx, async () => [], node('r')), (e) => isEmptyWalk(e));
  await walkNotEmpty(ctx, treeHandler([]), node('r'));
});

test('dispatch visits everything, siblings concurrently', async () => {
  const seen: string[] = [];
  let active = 0;
  let maxActive = 0;
  const h: Handler = async (c, d) => {
    active++;
    maxActive = Math.max(maxActive, active);
    await new Promise((r) => setTimeout(r, 5));
    active--;
    return treeHandler(seen)(c, d);
  };
  await dispatch(ctx, h, 0, node('r'));
  assert.deepEqual([...seen].sort(), ['a', 'a1', 'a2', 'b', 'b1', 'r']);
  assert.ok(maxActive >= 2, `siblings ran concurrently (max ${maxActive})`);
});

test('dispatch honours the concurrency limit across the tree', async () => {
  const wide: Descriptor[] = Array.from({ length: 12 }, (_, i) => node(`n${i}`));
  let active = 0;
  let maxActive = 0;
  const h: Handler = async (_c, d) => {
    active++;
    maxActive = Math.max(maxActive, active);
    await new Promise((r) => setTimeout(r, 3));
    active--;
    return nameOf(d) === 'root' ? wide : nameOf(d).length < 4 ? [node(nameOf(d) + 'kid'), node(nameOf(d) + 'kid2')] : [];
  };
  await dispatch(ctx, h, 3, node('root'));
  assert.equal(maxActive, 3);
  // A shared semaphore bounds two dispatches together.
  const sem = new Semaphore(2);
  maxActive = 0;
  await Promise.all([dispatch(ctx, h, sem, node('root')), dispatch(ctx, h, sem, node('root'))]);
  assert.equal(maxActive, 2);
});

test('dispatch: the first error aborts the others and is rethrown', async () => {
  const wide: Descriptor[] = Array.from({ length: 5 }, (_, i) => node(`n${i}`));
  const abortedReasons: unknown[] = [];
  let started = 0;
  const failure = unavailable('registry down');
  const h: Handler = async (c, d) => {
    if (nameOf(d) === 'root') return wide;
    started++;
    if (nameOf(d) === 'n2') {
      await new Promise((r) => setTimeout(r, 5));
      throw failure;
    }
    // Long-running handler that honours its signal.
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, 5000);
      c.signal!.addEventListener('abort', () => {
        clearTimeout(t);
        abortedReasons.push(c.signal!.reason);
        reject(c.signal!.reason);
      }, { once: true });
    });
    return [node(nameOf(d) + 'child')];
  };
  const t0 = Date.now();
  await assert.rejects(dispatch(ctx, h, 0, node('root')), (e) => e === failure);
  assert.ok(Date.now() - t0 < 2000, 'did not wait for the slow handlers');
  assert.equal(started, 5);
  assert.equal(abortedReasons.length, 4);
  assert.ok(abortedReasons.every((r) => r === failure));
});

test('dispatch: caller abort ends with Canceled; ErrSkipDesc skips children', async () => {
  const ac = new AbortController();
  const h: Handler = async (c, d) => {
    if (nameOf(d) === 'r') {
      ac.abort();
      return [node('a')];
    }
    return [];
  };
  await assert.rejects(dispatch({ ...ctx, signal: ac.signal }, h, 1, node('r')), (e) => isCanceled(e));
  const seen: string[] = [];
  await dispatch(ctx, async (c, d) => {
    const kids = await treeHandler(seen)(c, d);
    if (nameOf(d) === 'b') throw ErrSkipDesc;
    return kids;
  }, 2, node('r'));
  assert.deepEqual([...seen].sort(), ['a', 'a1', 'a2', 'b', 'r']);
});

test('childGCLabels names keys as containerd does', () => {
  const d = (m: string) => ({ mediaType: m, digest: digest.fromBytes(m), size: 1 });
  assert.deepEqual(childGCLabels(d(mt.MediaTypeImageConfig)), ['containerd.io/gc.ref.content.config']);
  assert.deepEqual(childGCLabels(d(mt.MediaTypeContainerd1Checkpoint)), ['containerd.io/gc.ref.content.config']);
  assert.deepEqual(childGCLabels(d(mt.MediaTypeDockerSchema2Manifest)), ['containerd.io/gc.ref.content.m.']);
  assert.deepEqual(childGCLabels(d(mt.MediaTypeImageLayerZstd)), ['containerd.io/gc.ref.content.l.']);
  assert.deepEqual(childGCLabels(d(mt.MediaTypeImageIndex)), ['containerd.io/gc.ref.content.']);
  assert.deepEqual(childGCLabelsFilterLayers(d(mt.MediaTypeImageLayerGzip)), []);
});

for (const f of storeFactories) {
  test(`[${f.name}] children / childrenHandler read manifests and indexes`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64'), P('linux/arm64')]);
      await storeImage(store, img);
      assert.deepEqual(await children(ctx, store, img.index), img.manifests.map((m) => m.desc));
      const m = img.manifests[0];
      assert.deepEqual(await childrenHandler(store)(ctx, m.desc), [m.config, ...m.layers]);
      assert.deepEqual(await children(ctx, store, m.config), []);
      assert.deepEqual(await children(ctx, store, m.layers[0]), []);
      assert.deepEqual(await children(ctx, store, { mediaType: 'application/x-unknown', digest: m.config.digest, size: 1 }), []);
      // An index read as a manifest is refused (containerd's media type cross-check).
      await assert.rejects(children(ctx, store, { ...img.index, mediaType: mt.MediaTypeImageManifest }), (e: any) => isInvalidArgument(e) && /expected manifest but found index/.test(e.message));
      await assert.rejects(children(ctx, store, { ...m.desc, digest: digest.fromBytes('missing') }), (e) => isNotFound(e));
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] setChildrenLabels labels parents with gc refs (index .m.N, manifest .config + .l.N)`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64'), P('linux/arm64')], { layersPerManifest: 3 });
      await storeImage(store, img);
      await walk(ctx, setChildrenLabels(store, childrenHandler(store)), img.index);
      const idxLabels = (await store.info(ctx, img.index.digest)).labels;
      assert.deepEqual(idxLabels, {
        'containerd.io/gc.ref.content.m.0': img.manifests[0].desc.digest,
        'containerd.io/gc.ref.content.m.1': img.manifests[1].desc.digest,
      });
      const m = img.manifests[1];
      assert.deepEqual((await store.info(ctx, m.desc.digest)).labels, {
        'containerd.io/gc.ref.content.config': m.config.digest,
        'containerd.io/gc.ref.content.l.0': m.layers[0].digest,
        'containerd.io/gc.ref.content.l.1': m.layers[1].digest,
        'containerd.io/gc.ref.content.l.2': m.layers[2].digest,
      });
      assert.deepEqual((await store.info(ctx, m.config.digest)).labels, {});
      // A repeated bare key gets an index from its second use on.
      const cfg2 = { ...m.config, digest: digest.fromBytes('other') };
      const labelled = setChildrenMappedLabels(store, async () => [m.config, cfg2]);
      await labelled(ctx, m.desc);
      const l = (await store.info(ctx, m.desc.digest)).labels;
      assert.equal(l['containerd.io/gc.ref.content.config'], m.config.digest);
      assert.equal(l['containerd.io/gc.ref.content.config1'], cfg2.digest);
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] filterPlatforms and limitManifests`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/386'), P('linux/arm64'), P('linux/amd64'), P('windows/amd64')]);
      await storeImage(store, img);
      const m = platforms.only(P('linux/amd64'));
      const filtered = await filterPlatforms(childrenHandler(store), m)(ctx, img.index);
      assert.deepEqual(filtered.map((d) => platforms.format(d.platform!)), ['linux/386', 'linux/amd64']);
      const best = await limitManifests(filterPlatforms(childrenHandler(store), m), m, 1)(ctx, img.index);
      assert.deepEqual(best.map((d) => platforms.format(d.platform!)), ['linux/amd64']);
      const all = await limitManifests(filterPlatforms(childrenHandler(store), m), m, 0)(ctx, img.index);
      assert.deepEqual(all.map((d) => platforms.format(d.platform!)), ['linux/amd64', 'linux/386']);
      await assert.rejects(limitManifests(filterPlatforms(childrenHandler(store), platforms.only(P('linux/s390x'))), platforms.only(P('linux/s390x')), 1)(ctx, img.index),
        (e: any) => isNotFound(e) && /no match for platform in manifest/.test(e.message));
      // Manifests (not indexes) pass through untouched.
      const md = img.manifests[0];
      assert.deepEqual(await limitManifests(childrenHandler(store), m, 1)(ctx, md.desc), [md.config, ...md.layers]);
    } finally {
      await cleanup();
    }
  });
}
