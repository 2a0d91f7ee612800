/** remotes/handlers: fetch and push walks against real stores and fake registries. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  annotateDistributionSource, appendDistributionSource, distributionSourceLabelKey, fetchHandler, makeRefKey, pushBlob, pushContent,
  skipNonDistributableBlobs, type ProgressEvent,
} from '../../src/remotes/handlers.js';
import { childrenHandler, dispatch, filterPlatforms, handlers, limitManifests, setChildrenLabels, walk } from '../../src/images/handlers.js';
import * as mt from '../../src/images/mediatypes.js';
import {
  isAlreadyExists, isCanceled, isFailedPrecondition, isInvalidArgument, isNotFound, isNotImplemented, isUnavailable, unavailable,
} from '../../src/errdefs/index.js';
import * as platforms from '../../src/platforms/index.js';
import * as digest from '../../src/digest/index.js';
import type { Descriptor, Store } from '../../src/content/types.js';
import { buildImage, ctx, FakeFetcher, FakePusher, keepsCommitLabels, storeFactories, storeImage, writeBlob } from './fixtures.js';

const P = platforms.parse;

async function readAll(store: Store, d: Pick<Descriptor, 'digest'>): Promise<Buffer> {
  const ra = await store.readerAt(ctx, d);
  try {
    const buf = Buffer.alloc(ra.size);
    let off = 0;
    while (off < buf.length) off += await ra.readAt(buf.subarray(off), off);
    return buf;
  } finally {
    await ra.close();
  }
}

async function present(store: Store, dgst: string): Promise<boolean> {
  try {
    await store.info(ctx, dgst);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

test('makeRefKey mirrors containerd MakeRefKey', () => {
  const dg = digest.fromBytes('x');
  assert.equal(makeRefKey({ mediaType: mt.MediaTypeImageManifest, digest: dg, size: 1 }), `manifest-${dg}`);
  assert.equal(makeRefKey({ mediaType: mt.MediaTypeDockerSchema2Manifest, digest: dg, size: 1 }), `manifest-${dg}`);
  assert.equal(makeRefKey({ mediaType: mt.MediaTypeDockerSchema2ManifestList, digest: dg, size: 1 }), `index-${dg}`);
  assert.equal(makeRefKey({ mediaType: mt.MediaTypeImageLayerZstd, digest: dg, size: 1 }), `layer-${dg}`);
  assert.equal(makeRefKey({ mediaType: mt.MediaTypeDockerSchema2Config, digest: dg, size: 1 }), `config-${dg}`);
  assert.equal(makeRefKey({ mediaType: 'application/x-foo', digest: dg, size: 1 }), `unknown-${dg}`);
  assert.equal(makeRefKey({ mediaType: mt.MediaTypeImageIndex, digest: dg, size: 1, annotations: { [mt.AnnotationRefName]: 'v1' } }), `index-v1@${dg}`);
  assert.equal(makeRefKey({ mediaType: 'application/x-foo', digest: dg, size: 1 }, { 'application/x-foo': 'foo' }), `foo-${dg}`);
});

test('appendDistributionSource keeps a sorted, duplicate-free list; key drops the port', () => {
  assert.equal(appendDistributionSource('', 'library/busybox'), 'library/busybox');
  assert.equal(appendDistributionSource('library/busybox', 'library/alpine'), 'library/alpine,library/busybox');
  assert.equal(appendDistributionSource('library/alpine,library/busybox', 'library/busybox'), 'library/alpine,library/busybox');
  assert.equal(appendDistributionSource('b,,a', 'c'), 'a,b,c');
  assert.equal(distributionSourceLabelKey('docker.io'), 'containerd.io/distribution.source.docker.io');
  assert.equal(distributionSourceLabelKey('localhost:5000'), 'containerd.io/distribution.source.localhost');
  assert.equal(distributionSourceLabelKey('[::1]:5000'), 'containerd.io/distribution.source.::1');
});

/**
 * A pull composed as containerd 1.6's client.Pull does: fetch; children
 * (GC-labelled before platform filtering and limiting); then record the
 * distribution source.
 */
function pullHandler(store: Store, fetcher: FakeFetcher, events: ProgressEvent[], matcher = platforms.all, extra: { labels?: Record<string, string> } = {}) {
  return handlers(
    fetchHandler(store, fetcher, { onProgress: (e) => events.push(e), retryDelayMs: 0, ...extra }),
    limitManifests(filterPlatforms(setChildrenLabels(store, childrenHandler(store)), matcher), matcher, 0),
    annotateDistributionSource(store, 'registry.example:5000', 'team/app'),
  );
}

for (const f of storeFactories) {
  test(`[${f.name}] full pull: every blob committed, labelled and verified`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64'), P('linux/arm64')], { sharedBase: true });
      const fetcher = new FakeFetcher(img.blobs);
      const events: ProgressEvent[] = [];
      await dispatch(ctx, pullHandler(store, fetcher, events), 3, img.index);
      for (const [dg, data] of img.blobs) assert.deepEqual(await readAll(store, { digest: dg }), data, dg);
      const src = 'containerd.io/distribution.source.registry.example';
      for (const dg of img.blobs.keys()) assert.equal((await store.info(ctx, dg)).labels[src], 'team/app');
      const idx = (await store.info(ctx, img.index.digest)).labels;
      assert.equal(idx['containerd.io/gc.ref.content.m.0'], img.manifests[0].desc.digest);
      assert.equal(idx['containerd.io/gc.ref.content.m.1'], img.manifests[1].desc.digest);
      const man = (await store.info(ctx, img.manifests[1].desc.digest)).labels;
      assert.equal(man['containerd.io/gc.ref.content.config'], img.manifests[1].config.digest);
      assert.equal(man['containerd.io/gc.ref.content.l.0'], img.manifests[1].layers[0].digest);
      assert.equal(man['containerd.io/gc.ref.content.l.1'], img.manifests[1].layers[1].digest);
      // Every blob ends 'done' or, for the base layer shared by both manifests, possibly 'exists'.
      const finals = new Map<string, string>();
      for (const e of events) if (e.state === 'done' || e.state === 'exists') finals.set(e.desc.digest, e.state);
      assert.equal(finals.size, img.blobs.size);
      const layer = img.manifests[0].layers[1];
      const le = events.filter((e) => e.desc.digest === layer.digest);
      assert.equal(le[le.length - 1].state, 'done');
      assert.equal(le[le.length - 1].ref, `layer-${layer.digest}`);
      assert.ok(le.some((e) => e.state === 'downloading' && e.offset > 0 && e.offset < layer.size && e.total === layer.size));
      assert.deepEqual(await store.listStatuses(ctx), [], 'no ingest left behind');
      // Pulling again: everything exists, nothing is fetched.
      const before = fetcher.calls.length;
      const again: ProgressEvent[] = [];
      await dispatch(ctx, pullHandler(store, fetcher, again), 3, img.index);
      assert.equal(fetcher.calls.length, before);
      assert.ok(again.filter((e) => e.state !== 'waiting').every((e) => e.state === 'exists'));
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] a broken transfer resumes from the writer's offset (Range)`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64')], { layerSize: 1000 });
      const layer = img.manifests[0].layers[0];
      const fetcher = new FakeFetcher(img.blobs);
      // A connection reset after 300 bytes, then a clean but short response of 200.
      fetcher.faults.set(layer.digest, [{ breakAfter: 300 }, { endAfter: 200 }]);
      const events: ProgressEvent[] = [];
      await fetchHandler(store, fetcher, { onProgress: (e) => events.push(e), retryDelayMs: 0 })(ctx, layer);
      assert.deepEqual(fetcher.calls.filter((c) => c.digest === layer.digest).map((c) => c.offset), [0, 300, 500]);
      assert.deepEqual(await readAll(store, layer), img.blobs.get(layer.digest));
      assert.equal(events[events.length - 1].state, 'done');
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] an interrupted pull resumes in a later pull`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64')], { layerSize: 1000 });
      const layer = img.manifests[0].layers[1];
      const fetcher = new FakeFetcher(img.blobs);
      fetcher.faults.set(layer.digest, [{ breakAfter: 640 }]);
      await assert.rejects(fetchHandler(store, fetcher, { maxAttempts: 1, retryDelayMs: 0 })(ctx, layer), (e: any) => isUnavailable(e) && /after 1 consecutive failed attempt/.test(e.message));
      assert.equal(await present(store, layer.digest), false);
      assert.equal((await store.status(ctx, `layer-${layer.digest}`)).offset, 640);
      await fetchHandler(store, fetcher, { maxAttempts: 1 })(ctx, layer);
      assert.deepEqual(fetcher.calls.map((c) => c.offset), [0, 640]);
      assert.deepEqual(await readAll(store, layer), img.blobs.get(layer.digest));
      await assert.rejects(store.status(ctx, `layer-${layer.digest}`), (e) => isNotFound(e));
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] retries are bounded when a transfer makes no progress`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64')]);
      const layer = img.manifests[0].layers[0];
      const fetcher = new FakeFetcher(img.blobs);
      fetcher.faults.set(layer.digest, Array.from({ length: 6 }, () => ({ breakAfter: 0 })));
      const events: ProgressEvent[] = [];
      await assert.rejects(fetchHandler(store, fetcher, { maxAttempts: 3, retryDelayMs: 0, onProgress: (e) => events.push(e) })(ctx, layer), (e) => isUnavailable(e));
      assert.equal(fetcher.calls.length, 3);
      assert.equal(events[events.length - 1].state, 'error');
      // fetch() itself failing transiently is retried too; a NotFound is not.
      fetcher.calls.length = 0;
      fetcher.faults.clear();
      fetcher.failFetch.set(layer.digest, [unavailable('503'), Object.assign(new Error('reset'), { code: 'ECONNRESET' })]);
      await fetchHandler(store, fetcher, { retryDelayMs: 0 })(ctx, layer);
      assert.equal(fetcher.calls.length, 3);
      const missing = { ...layer, digest: digest.fromBytes('not in registry') };
      fetcher.calls.length = 0;
      await assert.rejects(fetchHandler(store, fetcher, { retryDelayMs: 0 })(ctx, missing), (e) => isNotFound(e));
      assert.equal(fetcher.calls.length, 1);
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] wrong bytes: nothing committed, ingest reset`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64')]);
      const [l0, l1] = img.manifests[0].layers;
      const fetcher = new FakeFetcher(img.blobs);
      fetcher.corrupt.add(l0.digest);
      fetcher.extra.add(l1.digest);
      const events: ProgressEvent[] = [];
      await assert.rejects(fetchHandler(store, fetcher, { retryDelayMs: 0, onProgress: (e) => events.push(e) })(ctx, l0),
        (e: any) => isFailedPrecondition(e) && /unexpected commit digest/.test(e.message) && e.message.includes(l0.digest));
      assert.equal(await present(store, l0.digest), false);
      assert.equal((await store.status(ctx, `layer-${l0.digest}`)).offset, 0, 'bad bytes dropped');
      assert.equal(events[events.length - 1].state, 'error');
      await assert.rejects(fetchHandler(store, fetcher, { retryDelayMs: 0 })(ctx, l1), (e: any) => isFailedPrecondition(e) && /more than the expected/.test(e.message));
      assert.equal(await present(store, l1.digest), false);
      // Once the registry serves the right bytes, the same ref completes.
      fetcher.corrupt.clear();
      await fetchHandler(store, fetcher, { retryDelayMs: 0 })(ctx, l0);
      assert.deepEqual(await readAll(store, l0), img.blobs.get(l0.digest));
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] existing content is skipped; labels applied on commit and merged on exists`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64')]);
      const [l0, l1] = img.manifests[0].layers;
      await writeBlob(store, img.blobs.get(l0.digest)!, l0.mediaType);
      const fetcher = new FakeFetcher(img.blobs);
      const events: ProgressEvent[] = [];
      const labels = { 'example.com/pulled': 'yes' };
      const h = fetchHandler(store, fetcher, { onProgress: (e) => events.push(e), labels });
      assert.deepEqual(await h(ctx, l0), []);
      assert.equal(fetcher.calls.length, 0);
      assert.deepEqual(events.map((e) => e.state), ['exists']);
      assert.equal((await store.info(ctx, l0.digest)).labels['example.com/pulled'], 'yes');
      await h(ctx, l1);
      if (keepsCommitLabels(f.name)) assert.equal((await store.info(ctx, l1.digest)).labels['example.com/pulled'], 'yes');
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] concurrent fetches of one blob: one downloads, the other waits then finds it`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64')], { layerSize: 2000 });
      const layer = img.manifests[0].layers[0];
      const fetcher = new FakeFetcher(img.blobs);
      const events: ProgressEvent[] = [];
      const h = fetchHandler(store, fetcher, { onProgress: (e) => events.push(e) });
      await Promise.all([h(ctx, layer), h(ctx, layer)]);
      assert.equal(fetcher.calls.length, 1);
      const states = events.map((e) => e.state);
      assert.ok(states.includes('waiting') && states.includes('exists') && states.includes('done'), states.join());
      assert.deepEqual(await readAll(store, layer), img.blobs.get(layer.digest));
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] cancelling a fetch stops it without committing`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64')], { layerSize: 5000 });
      const layer = img.manifests[0].layers[0];
      const fetcher = new FakeFetcher(img.blobs);
      const ac = new AbortController();
      const h = fetchHandler(store, fetcher, { onProgress: (e) => { if (e.state === 'downloading' && e.offset >= 1000) ac.abort(); } });
      await assert.rejects(h({ ...ctx, signal: ac.signal }, layer), (e) => isCanceled(e));
      assert.equal(await present(store, layer.digest), false);
      assert.equal(fetcher.calls.length, 1, 'not retried');
      assert.ok((await store.status(ctx, `layer-${layer.digest}`)).offset >= 1000, 'partial ingest kept for resume');
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] size 0 and schema 1 are refused`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const fetcher = new FakeFetcher(new Map());
      const h = fetchHandler(store, fetcher);
      await assert.rejects(h(ctx, { mediaType: mt.MediaTypeImageLayerGzip, digest: digest.fromBytes('z'), size: 0 }), (e: any) => isInvalidArgument(e) && /size of zero/.test(e.message));
      await assert.rejects(h(ctx, { mediaType: mt.MediaTypeDockerSchema1Manifest, digest: digest.fromBytes('s1'), size: 5 }), (e) => isNotImplemented(e));
      assert.equal(fetcher.calls.length, 0);
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] pull of one platform fetches only its content`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64'), P('linux/arm64'), P('linux/386')]);
      const fetcher = new FakeFetcher(img.blobs);
      const m = platforms.only(P('linux/amd64'));
      const h = handlers(fetchHandler(store, fetcher), limitManifests(filterPlatforms(childrenHandler(store), m), m, 1));
      await dispatch(ctx, h, 2, img.index);
      const amd = img.manifests[0];
      const want = [img.index, amd.desc, amd.config, ...amd.layers].map((d) => d.digest).sort();
      assert.deepEqual(fetcher.calls.map((c) => c.digest).sort(), want);
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] pushContent: children before parents, index last; exists skipped`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64'), P('linux/arm64')], { sharedBase: true });
      await storeImage(store, img);
      const base = img.manifests[0].layers[0];
      await store.update(ctx, { digest: base.digest, labels: { 'containerd.io/distribution.source.docker.io': 'library/base' } }, ['labels.containerd.io/distribution.source.docker.io']);
      const pusher = new FakePusher();
      pusher.existing.add(img.manifests[1].layers[1].digest);
      const events: ProgressEvent[] = [];
      await pushContent(ctx, pusher, img.index, store, { limit: 2, onProgress: (e) => events.push(e) });
      const order = pusher.committed;
      assert.equal(order[order.length - 1], img.index.digest);
      for (const m of img.manifests) {
        const mi = order.indexOf(m.desc.digest);
        assert.ok(mi > 0);
        for (const c of [m.config, ...m.layers]) {
          if (c.digest === img.manifests[1].layers[1].digest) continue;
          assert.ok(order.indexOf(c.digest) >= 0 && order.indexOf(c.digest) < mi, 'child before its manifest');
        }
      }
      assert.equal(new Set(order).size, img.blobs.size - 1);
      for (const dg of order) assert.deepEqual(pusher.received.get(dg), img.blobs.get(dg));
      assert.ok(events.some((e) => e.state === 'exists' && e.desc.digest === img.manifests[1].layers[1].digest));
      // Distribution sources travel as annotations so a pusher can mount.
      const pushedBase = pusher.pushedDescs.find((d) => d.digest === base.digest)!;
      assert.equal(pushedBase.annotations?.['containerd.io/distribution.source.docker.io'], 'library/base');
    } finally {
      await cleanup();
    }
  });

  test(`[${f.name}] pushContent with a platform filter; pushBlob verifies and aborts`, async () => {
    const { store, cleanup } = await f.make();
    try {
      const img = buildImage([P('linux/amd64'), P('linux/arm64')]);
      await storeImage(store, img);
      const pusher = new FakePusher();
      await pushContent(ctx, pusher, img.index, store, { platforms: platforms.only(P('linux/arm64')) });
      const arm = img.manifests[1];
      assert.deepEqual([...pusher.committed].sort(), [img.index, arm.desc, arm.config, ...arm.layers].map((d) => d.digest).sort());
      // A descriptor whose size disagrees with the stored blob: upload aborted.
      const p2 = new FakePusher();
      const l = arm.layers[0];
      await assert.rejects(pushBlob(ctx, p2, store, { ...l, size: l.size + 1 }), (e) => isFailedPrecondition(e));
      assert.deepEqual(p2.aborted, [l.digest]);
      assert.deepEqual(p2.committed, []);
      await assert.rejects(pushBlob(ctx, p2, store, { ...l, digest: digest.fromBytes('absent') }), (e) => isNotFound(e));
      // skipNonDistributableBlobs drops foreign layers from a walk.
      const seen: string[] = [];
      const foreign = { mediaType: mt.MediaTypeImageLayerNonDistributableGzip, digest: digest.fromBytes('f'), size: 1 };
      await walk(ctx, skipNonDistributableBlobs(async (_c, d) => { seen.push(d.digest); return d.digest === arm.desc.digest ? [foreign, arm.config] : []; }), arm.desc);
      assert.deepEqual(seen, [arm.desc.digest, arm.config.digest]);
      assert.ok(!isAlreadyExists(undefined));
    } finally {
      await cleanup();
    }
  });
}
