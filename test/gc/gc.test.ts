/**
 * Garbage collection through the library: every rule of containerd's
 * metadata/gc.go (roots, references, flat and expiring leases, ingest
 * expiry, namespaces as separate graphs, children-first snapshot removal),
 * dry runs, the scheduler, and collections racing writers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { readBlob } from '../../src/content/helpers.js';
import { isNotFound } from '../../src/errdefs/index.js';
import { GCScheduler } from '../../src/gc/scheduler.js';
import type { GCResult } from '../../src/gc/index.js';
import { now } from '../../src/internal/time.js';
import { LABEL_EXPIRE, LABEL_FLAT } from '../../src/leases/types.js';
import type { Embedded } from '../../src/services/embedded.js';
import { MT_INDEX, assertBlobs, blobOnDisk, hasRecord, put, putImage, rfc3339In, sha256, waitFor, withRoot } from './fixtures.js';

const ns = 'gc-test';
const ctx = { namespace: ns };
const ROOT = 'containerd.io/gc.root';
const REF_SNAP = 'containerd.io/gc.ref.snapshot.native';

/** The backend snapshot dirs of the native snapshotter under root. */
function nativeDirs(root: string): string[] {
  const d = join(root, 'snapshots', 'native', 'snapshots');
  return existsSync(d) ? readdirSync(d).sort() : [];
}

/** Prepares and commits a chain of snapshots named names[0] ← names[1] ← …; returns the snapshotter. */
async function chain(svc: Embedded, names: string[], parent = '') {
  const sn = await svc.snapshotter('native');
  for (const n of names) {
    await sn.prepare(ctx, `${n}-active`, parent || undefined);
    await sn.commit(ctx, n, `${n}-active`);
    parent = n;
  }
  return sn;
}

async function snapExists(svc: Embedded, key: string, c = ctx): Promise<boolean> {
  try {
    await (await svc.snapshotter('native')).stat(c, key);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

async function ingestExists(svc: Embedded, ref: string, c = ctx): Promise<boolean> {
  try {
    await svc.content.status(c, ref);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

test('gc: a blob under a lease survives; an unreferenced one goes (record and file)', () =>
  withRoot(async (svc) => {
    await svc.leases.create(ctx, { id: 'keep' });
    const leased = await put(svc, { ...ctx, lease: 'keep' });
    const loose = await put(svc, ctx);
    const r = await svc.gc.collect(ctx);
    await assertBlobs(svc, ctx, [leased], true, 'leased');
    await assertBlobs(svc, ctx, [loose], false, 'unreferenced');
    assert.deepEqual(r.content.items, [`${ns}/${loose.digest}`]);
    assert.equal(r.content.count, 1);
    assert.equal(r.content.bytes, loose.size);
    assert.deepEqual(r.blobs.items, [loose.digest]);
    assert.equal(r.blobs.bytes, loose.size);
    assert.equal(r.dryRun, false);
    // A second collection finds nothing.
    const again = await svc.gc.collect(ctx);
    assert.equal(again.content.count + again.blobs.count, 0);
  }));

test('gc: containerd.io/gc.root keeps a blob (any value); removing the label lets it go', () =>
  withRoot(async (svc) => {
    const rooted = await put(svc, ctx, undefined, { [ROOT]: '2030-01-01T00:00:00Z' });
    const other = await put(svc, ctx, undefined, { [ROOT]: '' });
    await svc.gc.collect(ctx);
    await assertBlobs(svc, ctx, [rooted, other], true, 'gc.root');
    await svc.content.update(ctx, { digest: rooted.digest, labels: {} }, [`labels.${ROOT}`]);
    await svc.gc.collect(ctx);
    await assertBlobs(svc, ctx, [rooted], false, 'label cleared');
    await assertBlobs(svc, ctx, [other], true, 'still rooted');
  }));

test('gc: image → manifest → config/layers are kept through gc.ref.content labels, and go with the image (sync delete)', () =>
  withRoot(async (svc) => {
    const img = await putImage(svc, ctx, 3);
    // An index above it (gc.ref.content.m.0) and an unrelated blob.
    const index = await put(svc, ctx, JSON.stringify({ schemaVersion: 2, manifests: [img.manifest] }), { 'containerd.io/gc.ref.content.m.0': img.manifest.digest }, MT_INDEX);
    const loose = await put(svc, ctx);
    await svc.images.create(ctx, { name: 'example.com/app:1', target: index });
    const r = await svc.gc.collect(ctx);
    await assertBlobs(svc, ctx, [index, ...img.all], true, 'referenced');
    await assertBlobs(svc, ctx, [loose], false, 'unreferenced');
    assert.equal(r.content.count, 1);

    await svc.images.delete(ctx, 'example.com/app:1', { sync: true });
    await assertBlobs(svc, ctx, [index, ...img.all], false, 'after image rm --sync');
    assert.deepEqual(readdirSync(join(svc.root, 'content', 'blobs', 'sha256')), [], 'blob dir empty');
  }));

test('gc: label names: gc.ref.content, .<name> and /<name> are followed; gc.ref.contentX is not', () =>
  withRoot(async (svc) => {
    const [a, b, c, d] = [await put(svc, ctx), await put(svc, ctx), await put(svc, ctx), await put(svc, ctx)];
    await put(svc, ctx, 'holder', {
      [ROOT]: 'x',
      'containerd.io/gc.ref.content': a.digest,
      'containerd.io/gc.ref.content.x': b.digest,
      'containerd.io/gc.ref.content/y': c.digest,
      'containerd.io/gc.ref.contentbad': d.digest,
    });
    await svc.gc.collect(ctx);
    await assertBlobs(svc, ctx, [a, b, c], true, 'referenced');
    await assertBlobs(svc, ctx, [d], false, 'bad label name');
  }));

test('gc: gc.ref.snapshot.<snapshotter> keeps a committed snapshot and its parents', () =>
  withRoot(async (svc, root) => {
    const sn = await chain(svc, ['s1', 's2', 's3']);
    await chain(svc, ['x']);
    assert.equal(nativeDirs(root).length, 4);
    const holder = await put(svc, ctx, undefined, { [ROOT]: 'x', [REF_SNAP]: 's3' });
    const r = await svc.gc.collect(ctx);
    for (const k of ['s1', 's2', 's3']) assert.ok(await snapExists(svc, k), `${k} kept`);
    assert.equal(await snapExists(svc, 'x'), false, 'unreferenced x collected');
    assert.deepEqual(r.snapshots.items, [`${ns}/native/x`]);
    assert.equal(nativeDirs(root).length, 3, 'x backend dir gone');
    // s3 is still usable as a parent.
    await sn.prepare(ctx, 'work', 's3');
    await sn.remove(ctx, 'work');

    await svc.content.update(ctx, { digest: holder.digest, labels: {} }, [`labels.${REF_SNAP}`]);
    await svc.gc.collect(ctx);
    for (const k of ['s1', 's2', 's3']) assert.equal(await snapExists(svc, k), false, `${k} collected`);
    assert.deepEqual(nativeDirs(root), [], 'backend dirs gone');
  }));

test('gc: unreferenced snapshots are removed children first, backend dirs included', () =>
  withRoot(async (svc, root) => {
    const sn = await chain(svc, ['a', 'b', 'c']);
    await sn.prepare(ctx, 'd', 'c'); // an active child on top
    await sn.view(ctx, 'v', 'a'); // a view of the bottom
    const bkeys = Object.fromEntries(['a', 'b', 'c', 'd', 'v'].map((k) => [k, sn.backendKey(ctx, k)]));
    const order: string[] = [];
    const backend = sn.backend;
    const orig = backend.remove.bind(backend);
    backend.remove = async (c, key) => {
      order.push(key);
      return orig(c, key);
    };
    const r = await svc.gc.collect(ctx);
    assert.equal(r.snapshots.count, 5);
    assert.deepEqual([...r.snapshots.items].sort(), ['a', 'b', 'c', 'd', 'v'].map((k) => `${ns}/native/${k}`));
    assert.deepEqual(order.length, 5, 'five backend removals');
    const pos = (k: string) => order.indexOf(bkeys[k]);
    assert.ok(pos('d') < pos('c') && pos('c') < pos('b') && pos('b') < pos('a'), `children first: ${order.join(', ')}`);
    assert.ok(pos('v') < pos('a'), 'view before its parent');
    for (const k of ['a', 'b', 'c', 'd', 'v']) assert.equal(await snapExists(svc, k), false);
    assert.deepEqual(nativeDirs(root), [], 'backend dirs gone');
    let walked = 0;
    await backend.walk({}, () => void walked++);
    assert.equal(walked, 0, 'backend has no snapshots left');
  }));

test('gc: an expired lease no longer protects and is removed; unexpired and malformed expiries keep theirs', () =>
  withRoot(async (svc) => {
    await svc.leases.create(ctx, { id: 'old', labels: { [LABEL_EXPIRE]: rfc3339In(-3600_000) } });
    await svc.leases.create(ctx, { id: 'fresh', labels: { [LABEL_EXPIRE]: rfc3339In(3600_000) } });
    await svc.leases.create(ctx, { id: 'odd', labels: { [LABEL_EXPIRE]: 'not a time' } });
    const old = await putImage(svc, { ...ctx, lease: 'old' }, 1);
    const fresh = await put(svc, { ...ctx, lease: 'fresh' });
    const odd = await put(svc, { ...ctx, lease: 'odd' });
    const r = await svc.gc.collect(ctx);
    await assertBlobs(svc, ctx, old.all, false, 'under the expired lease');
    await assertBlobs(svc, ctx, [fresh, odd], true, 'under live leases');
    assert.deepEqual(r.leases.items, [`${ns}/old`]);
    assert.deepEqual((await svc.leases.list(ctx)).map((l) => l.id).sort(), ['fresh', 'odd']);
    const left = svc.db.db.prepare("SELECT count(*) AS n FROM lease_resources WHERE lease = 'old'").get() as { n: number };
    assert.equal(left.n, 0, 'resources of the expired lease dropped');
  }));

test('gc: a flat lease keeps its own resources without following their references (snapshot parents still kept)', () =>
  withRoot(async (svc) => {
    await svc.leases.create(ctx, { id: 'flat', labels: { [LABEL_FLAT]: 'true' } });
    const img = await putImage(svc, ctx, 2);
    await svc.leases.addResource(ctx, { id: 'flat' }, { type: 'content', id: img.manifest.digest });
    // Snapshots: p ← top, top labels a blob.
    const sn = await chain(svc, ['p']);
    const labelled = await put(svc, ctx);
    await sn.prepare(ctx, 'top-active', 'p');
    await sn.commit(ctx, 'top', 'top-active', { labels: { 'containerd.io/gc.ref.content': labelled.digest } });
    await svc.leases.addResource(ctx, { id: 'flat' }, { type: 'snapshots/native', id: 'top' });

    await svc.gc.collect(ctx);
    await assertBlobs(svc, ctx, [img.manifest], true, 'the flat-leased manifest');
    await assertBlobs(svc, ctx, [img.config, ...img.layers, labelled], false, 'references of flat-leased objects');
    assert.ok(await snapExists(svc, 'top'), 'flat-leased snapshot kept');
    assert.ok(await snapExists(svc, 'p'), 'its parent kept (containerd follows parents of flat snapshots)');

    // The same lease without the flat label follows references.
    await svc.leases.create(ctx, { id: 'deep' });
    const img2 = await putImage(svc, ctx, 2);
    await svc.leases.addResource(ctx, { id: 'deep' }, { type: 'content', id: img2.manifest.digest });
    await svc.gc.collect(ctx);
    await assertBlobs(svc, ctx, img2.all, true, 'under a deep lease');
  }));

test('gc: an object held by a flat lease and also referenced normally is followed', () =>
  withRoot(async (svc) => {
    await svc.leases.create(ctx, { id: 'flat', labels: { [LABEL_FLAT]: '' } });
    const img = await putImage(svc, ctx, 2);
    await svc.leases.addResource(ctx, { id: 'flat' }, { type: 'content', id: img.manifest.digest });
    await svc.images.create(ctx, { name: 'example.com/both:1', target: img.manifest });
    await svc.gc.collect(ctx);
    await assertBlobs(svc, ctx, img.all, true, 'image-referenced (and flat-leased)');

    const sn = await chain(svc, ['base', 'mid']);
    await svc.leases.addResource(ctx, { id: 'flat' }, { type: 'snapshots/native', id: 'mid' });
    const blob = await put(svc, ctx);
    await sn.update(ctx, { name: 'mid', labels: { 'containerd.io/gc.ref.content': blob.digest } }, ['labels.containerd.io/gc.ref.content']);
    await put(svc, ctx, undefined, { [ROOT]: 'x', [REF_SNAP]: 'mid' });
    await svc.gc.collect(ctx);
    await assertBlobs(svc, ctx, [blob], true, 'labelled by a snapshot that is also referenced normally');
  }));

test('gc: a blob in two namespaces survives deletion in one (file stays) and goes after both', () =>
  withRoot(async (svc) => {
    const a = { namespace: 'ns-a' };
    const b = { namespace: 'ns-b' };
    const data = randomBytes(300);
    const da = await put(svc, a, data);
    const db = await put(svc, b, data);
    assert.equal(da.digest, db.digest);
    await svc.images.create(a, { name: 'img', target: { ...da, mediaType: MT_INDEX } });
    await svc.images.create(b, { name: 'img', target: { ...db, mediaType: MT_INDEX } });

    await svc.images.delete(a, 'img', { sync: true });
    assert.equal(await hasRecord(svc, a, da.digest), false, 'record in ns-a gone');
    assert.equal(await hasRecord(svc, b, da.digest), true, 'record in ns-b kept');
    assert.ok(blobOnDisk(svc, da.digest), 'blob file stays while ns-b holds it');
    assert.deepEqual(await readBlob(b, svc.content, da), data);

    await svc.images.delete(b, 'img', { sync: true });
    await assertBlobs(svc, b, [da], false, 'after deletion in both');
  }));

test('gc: an abandoned ingest (expiry passed) is aborted; a leased or fresh one survives', () =>
  withRoot(async (svc) => {
    await svc.leases.create(ctx, { id: 'pull' });
    const chunk = randomBytes(1000);
    const open = async (ref: string, c: typeof ctx & { lease?: string }) => {
      const w = await svc.content.writer(c, { ref });
      await w.write(chunk);
      await w.close();
    };
    await open('abandoned', ctx);
    await open('fresh', ctx);
    await open('leased', { ...ctx, lease: 'pull' });
    const row = (ref: string) => svc.db.db.prepare('SELECT bref, expires_at FROM ingests WHERE ns = ? AND ref = ?').get(ns, ref) as { bref: string; expires_at: string | null };
    assert.equal(row('leased').expires_at, null, 'a leased ingest has no expiry');
    assert.ok(BigInt(row('fresh').expires_at!) > now(), 'an unleased ingest expires later');
    const abandonedDir = svc.content.backend.ingestDir(row('abandoned').bref);
    assert.ok(existsSync(abandonedDir));

    // 24 hours pass for "abandoned".
    svc.db.db.prepare('UPDATE ingests SET expires_at = ? WHERE ns = ? AND ref = ?').run((now() - 1n).toString(), ns, 'abandoned');
    const r = await svc.gc.collect(ctx);
    assert.deepEqual(r.ingests.items, [`${ns}/abandoned`]);
    assert.equal(r.ingests.bytes, chunk.length);
    assert.equal(await ingestExists(svc, 'abandoned'), false, 'abandoned ingest aborted');
    assert.equal(existsSync(abandonedDir), false, 'its backend dir removed');
    assert.ok(await ingestExists(svc, 'fresh'), 'fresh ingest kept');
    assert.ok(await ingestExists(svc, 'leased'), 'leased ingest kept');

    // The leased one resumes and commits.
    const w = await svc.content.writer({ ...ctx, lease: 'pull' }, { ref: 'leased' });
    assert.equal((await w.status()).offset, chunk.length);
    await w.write(chunk);
    await w.commit({ ...ctx, lease: 'pull' }, 2 * chunk.length, sha256(Buffer.concat([chunk, chunk])));
    await w.close();
    await svc.gc.collect(ctx);
    assert.ok(await hasRecord(svc, ctx, sha256(Buffer.concat([chunk, chunk]))), 'committed under the lease');
  }));

test('gc: a live ingest expecting a digest keeps that blob file for its commit (shared across namespaces)', () =>
  withRoot(async (svc) => {
    const a = { namespace: 'ns-a' };
    const b = { namespace: 'ns-b' };
    const data = randomBytes(500);
    const desc = await put(svc, a, data); // unreferenced in ns-a
    // ns-b starts writing the same digest: shared, no bytes needed.
    const w = await svc.content.writer(b, { ref: 'same', desc });
    await svc.gc.collect(ctx);
    assert.equal(await hasRecord(svc, a, desc.digest), false, 'ns-a record collected');
    assert.ok(blobOnDisk(svc, desc.digest), 'blob file kept for the pending ingest in ns-b');
    await w.commit(b, desc.size, desc.digest);
    await w.close();
    assert.deepEqual(await readBlob(b, svc.content, desc), data, 'ns-b reads the committed blob');
  }));

test('gc: dry run reports what would go and removes nothing', () =>
  withRoot(async (svc, root) => {
    const loose = await put(svc, ctx);
    await svc.leases.create(ctx, { id: 'old', labels: { [LABEL_EXPIRE]: rfc3339In(-60_000) } });
    const underOld = await put(svc, { ...ctx, lease: 'old' });
    await chain(svc, ['lonely']);
    const w = await svc.content.writer(ctx, { ref: 'stale' });
    await w.write(Buffer.from('partial'));
    await w.close();
    svc.db.db.prepare('UPDATE ingests SET expires_at = ? WHERE ns = ? AND ref = ?').run('1', ns, 'stale');
    const kept = await putImage(svc, ctx, 1);
    await svc.images.create(ctx, { name: 'kept', target: kept.manifest });
    const dirs = nativeDirs(root);

    const dry = await svc.gc.collect(ctx, { dryRun: true });
    assert.equal(dry.dryRun, true);
    assert.deepEqual([...dry.content.items].sort(), [`${ns}/${loose.digest}`, `${ns}/${underOld.digest}`].sort());
    assert.deepEqual([...dry.blobs.items].sort(), [loose.digest, underOld.digest].sort());
    assert.equal(dry.blobs.bytes, loose.size + underOld.size);
    assert.deepEqual(dry.leases.items, [`${ns}/old`]);
    assert.deepEqual(dry.snapshots.items, [`${ns}/native/lonely`]);
    assert.deepEqual(dry.ingests.items, [`${ns}/stale`]);
    assert.equal(dry.ingests.bytes, 'partial'.length);

    await assertBlobs(svc, ctx, [loose, underOld, ...kept.all], true, 'after the dry run');
    assert.deepEqual((await svc.leases.list(ctx)).map((l) => l.id), ['old']);
    assert.ok(await snapExists(svc, 'lonely'));
    assert.deepEqual(nativeDirs(root), dirs);
    assert.ok(await ingestExists(svc, 'stale'));

    // The real collection removes exactly that.
    const r = await svc.gc.collect(ctx);
    for (const k of ['content', 'blobs', 'leases', 'snapshots', 'ingests'] as const) {
      assert.deepEqual([...r[k].items].sort(), [...dry[k].items].sort(), k);
    }
    await assertBlobs(svc, ctx, kept.all, true, 'image content');
  }));

test('gc: collections back to back never break writers under a lease', () =>
  withRoot(async (svc) => {
    const lctx = { ...ctx, lease: 'fetch' };
    await svc.leases.create(ctx, { id: 'fetch' });
    const WRITERS = 4;
    const BLOBS = 40;
    const written: { digest: string; size: number; data: Buffer }[] = [];
    let done = false;
    let collections = 0;
    let removedLive = 0;
    const removedItems: string[] = [];
    const collector = (async () => {
      while (!done) {
        const r = await svc.gc.collect(ctx);
        collections++;
        removedLive += r.content.count + r.ingests.count + r.blobs.count;
        if (r.content.count + r.ingests.count + r.blobs.count) removedItems.push(...r.content.items, ...r.ingests.items.map((i) => `ingest ${i}`), ...r.blobs.items.map((i) => `blob ${i}`));
        await tick();
      }
    })();
    const writer = async (wi: number) => {
      for (let i = 0; i < BLOBS; i++) {
        const parts = [randomBytes(700), randomBytes(900), randomBytes(300)];
        const data = Buffer.concat(parts);
        const w = await svc.content.writer(lctx, { ref: `w${wi}-${i}` });
        for (const p of parts) {
          await w.write(p);
          await tick(); // let a collection run mid-ingest
        }
        await w.commit(lctx, data.length, sha256(data));
        await w.close();
        written.push({ digest: sha256(data), size: data.length, data });
      }
    };
    try {
      await Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(i)));
    } finally {
      done = true;
      await collector;
    }
    assert.equal(written.length, WRITERS * BLOBS, 'every commit succeeded');
    assert.ok(collections >= 10, `collections ran meanwhile (${collections})`);
    assert.equal(removedLive, 0, `nothing under the lease was collected: ${removedItems.join(", ")}`);
    for (const d of written.slice(0, 20)) assert.deepEqual(await readBlob(ctx, svc.content, d), d.data);
    await assertBlobs(svc, ctx, written.map((d) => ({ ...d, mediaType: 'x' })), true, 'after the race');
    assert.deepEqual(await svc.content.listStatuses(ctx), [], 'no ingests left');

    await svc.leases.delete(ctx, { id: 'fetch' }, { sync: true });
    await assertBlobs(svc, ctx, written.map((d) => ({ ...d, mediaType: 'x' })), false, 'after lease rm --sync');
  }));

test('gc: a sync delete while a collection is under way still collects what it released', () =>
  withRoot(async (svc) => {
    const img = await putImage(svc, ctx, 2);
    await svc.images.create(ctx, { name: 'racy', target: img.manifest });
    await chain(svc, ['slow']); // gives the running collection backend work
    const running = svc.gc.collect(ctx);
    await svc.images.delete(ctx, 'racy', { sync: true });
    await assertBlobs(svc, ctx, img.all, false, 'after images.delete sync during a collection');
    await running;
  }));

test('gc scheduler: embedded "scheduled" mode collects shortly after a deletion', () =>
  withRoot(
    async (svc) => {
      const img = await putImage(svc, ctx, 2);
      await svc.images.create(ctx, { name: 'sched', target: img.manifest });
      const t0 = Date.now();
      await svc.images.delete(ctx, 'sched'); // no sync
      assert.ok(blobOnDisk(svc, img.manifest.digest), 'not collected synchronously');
      await waitFor(() => img.all.every((d) => !blobOnDisk(svc, d.digest)), 5000, 'scheduled collection');
      assert.ok(Date.now() - t0 < 5000);
      await assertBlobs(svc, ctx, img.all, false, 'after the scheduled collection');
      assert.equal(svc.gcScheduler.isDirty, false);
    },
    { gc: 'scheduled' },
  ));

test('gc scheduler: threshold, delay, one collection per burst, runNow', () =>
  withRoot(async (svc) => {
    const results: GCResult[] = [];
    const s = new GCScheduler(svc.db, svc.gc, { deletionThreshold: 1, delayMs: 30, onResult: (r) => results.push(r) });
    try {
      const blobs = [await put(svc, ctx), await put(svc, ctx), await put(svc, ctx), await put(svc, ctx)];
      await svc.content.delete(ctx, blobs[0].digest); // 1 deletion: not above the threshold
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(results.length, 0, 'no collection below the threshold');
      assert.equal(s.isDirty, true);
      await svc.images.create(ctx, { name: 'x', target: { ...blobs[1], mediaType: MT_INDEX } });
      await svc.images.delete(ctx, 'x'); // 2nd deletion: scheduled
      await svc.images.create(ctx, { name: 'y', target: { ...blobs[2], mediaType: MT_INDEX } });
      await svc.images.delete(ctx, 'y'); // same burst
      await waitFor(() => results.length > 0, 3000, 'scheduled collection');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(results.length, 1, 'one collection for the burst');
      assert.deepEqual([...results[0].blobs.items].sort(), [blobs[1].digest, blobs[2].digest, blobs[3].digest].sort());
      assert.equal(s.isDirty, false);

      await s.runNow(); // nothing pending: no collection
      assert.equal(results.length, 1);
      const more = await put(svc, ctx);
      await svc.images.create(ctx, { name: 'z', target: { ...more, mediaType: MT_INDEX } });
      await svc.images.delete(ctx, 'z');
      await s.runNow(); // below the threshold, but runNow collects what is pending
      assert.equal(results.length, 2);
      assert.deepEqual(results[1].blobs.items, [more.digest]);
    } finally {
      s.close();
    }
  }));

test('gc: backend ingests no namespace records (deleted namespace) are removed; a live writer is kept', () =>
  withRoot(async (svc) => {
    const ctx = { namespace: 'doomed' };
    const w = await svc.content.writer(ctx, { ref: 'left-behind' });
    await w.write(Buffer.from('partial bytes'));
    await w.close();
    const live = await svc.content.writer({ namespace: 'alive' }, { ref: 'still-writing' });
    await live.write(Buffer.from('live'));
    // Deleting the namespace drops its ingest records but not the backend folder.
    await svc.namespaces.delete(ctx, 'doomed');
    const before = await svc.content.backend.listStatuses({});
    assert.ok(before.some((s) => s.ref === 'doomed/left-behind'));
    svc.db.db.prepare("DELETE FROM ingests WHERE ns = 'alive'").run(); // unrecorded, but its writer is live
    const young = await svc.gc.collect();
    assert.equal(young.ingests.count, 0, 'recent orphans are left for later');
    svc.gc.orphanIngestAgeMs = 0;
    const r = await svc.gc.collect();
    assert.ok(r.ingests.items.includes('(orphan)/doomed/left-behind'), JSON.stringify(r.ingests));
    const after = (await svc.content.backend.listStatuses({})).map((s) => s.ref);
    assert.deepEqual(after, ['alive/still-writing']);
    await live.close();
  }));
