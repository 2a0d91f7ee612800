/**
 * Checks of the namespaces, leases and images proxies (and connect) that any
 * containerd-compatible daemon must pass: what containerd's own client tests
 * (TestNamespaces / TestLeases / TestImages / GC) check, through our proxies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { link } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { readBlob, writeBlob } from '../../src/content/helpers.js';
import { fromBytes } from '../../src/digest/index.js';
import {
  isAlreadyExists, isCanceled, isFailedPrecondition, isInvalidArgument, isNotFound, isNotImplemented, isUnavailable,
} from '../../src/errdefs/index.js';
import type { Ctx } from '../../src/internal/context.js';
import { now } from '../../src/internal/time.js';
import { connect, type Remote } from '../../src/services/remote.js';
import { rejectsWith } from '../content/testsuite.js';
import { tempDir } from '../util/tmp.js';
import { cleanNamespace, uniqueNS } from './env.js';

type Get = () => Promise<{ svc: Remote }>;

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export function servicesChecks(name: string, get: Get): void {
  const t = (title: string, fn: (svc: Remote) => Promise<void>) => test(`${name}: ${title}`, async () => fn((await get()).svc));

  t('connect: a missing socket is Unavailable at once', async () => {
    const t0 = Date.now();
    await rejectsWith(connect('/nonexistent/dir/x.sock'), isUnavailable, 'missing socket', /no such file/);
    assert.ok(Date.now() - t0 < 1000);
    // A stale socket file (nobody listening): refused at once, not after the dial timeout.
    const { dir, cleanup } = await tempDir('stale-sock-');
    try {
      const path = join(dir, 'stale.sock');
      const srv = createServer();
      await new Promise<void>((res) => srv.listen(path, res));
      // Closing a listening server unlinks its socket: keep the file by copying the inode's name first.
      await link(path, join(dir, 'kept.sock'));
      await new Promise<void>((res) => srv.close(() => res()));
      const t1 = Date.now();
      await rejectsWith(connect(join(dir, 'kept.sock')), isUnavailable, 'stale socket', /connection refused/);
      assert.ok(Date.now() - t1 < 1000);
    } finally {
      await cleanup();
    }
  });

  t('snapshotter: loaded ones resolve, others are InvalidArgument', async (svc) => {
    assert.equal((await svc.snapshotter('native')).name, 'native');
    await rejectsWith(svc.snapshotter('nope'), isInvalidArgument, 'unknown snapshotter', /snapshotter not loaded: nope/);
  });

  t('a canceled Ctx cancels the call', async (svc) => {
    const ac = new AbortController();
    ac.abort();
    await rejectsWith(svc.namespaces.list({ signal: ac.signal }), isCanceled, 'aborted list');
  });

  t('namespaces: create, labels, setLabel, list, delete, errors', async (svc) => {
    const ns = uniqueNS('nsp');
    const ctx: Ctx = {};
    try {
      await svc.namespaces.create(ctx, ns, { a: '1', b: '2' });
      await rejectsWith(svc.namespaces.create(ctx, ns), isAlreadyExists, 'duplicate');
      await rejectsWith(svc.namespaces.create(ctx, 'bad..name'), isInvalidArgument, 'invalid name');
      assert.deepEqual(await svc.namespaces.labels(ctx, ns), { a: '1', b: '2' });
      await svc.namespaces.setLabel(ctx, ns, 'c', '3');
      await svc.namespaces.setLabel(ctx, ns, 'a', '');
      assert.deepEqual(await svc.namespaces.labels(ctx, ns), { b: '2', c: '3' });
      assert.ok((await svc.namespaces.list(ctx)).includes(ns));
      // Like containerd 1.6: an unknown namespace has no labels, no error.
      assert.deepEqual(await svc.namespaces.labels(ctx, `${ns}-unknown`), {});

      // Not empty: a blob.
      const data = Buffer.from(`blob of ${ns}`);
      await writeBlob({ namespace: ns }, svc.content, 'nsblob', Readable.from([data]), { digest: fromBytes(data), size: data.length });
      await rejectsWith(svc.namespaces.delete(ctx, ns), isFailedPrecondition, 'delete non-empty', /must be empty/);
      await svc.content.delete({ namespace: ns }, fromBytes(data));
      await svc.namespaces.delete(ctx, ns);
      assert.ok(!(await svc.namespaces.list(ctx)).includes(ns));
      await rejectsWith(svc.namespaces.delete(ctx, ns), isNotFound, 'delete twice');
    } finally {
      await cleanNamespace(svc, ns);
    }
  });

  t('leases: create, list with filters, resources, delete, errors', async (svc) => {
    const ns = uniqueNS('lsp');
    const ctx: Ctx = { namespace: ns };
    try {
      const t0 = now();
      const l = await svc.leases.create(ctx, { id: 'lease-1', labels: { k: 'v' } });
      const t1 = now();
      assert.equal(l.id, 'lease-1');
      assert.deepEqual(l.labels, { k: 'v' });
      assert.ok(l.createdAt >= t0 - 2_000_000n && l.createdAt <= t1 + 2_000_000n, 'createdAt near now');
      await rejectsWith(svc.leases.create(ctx, { id: 'lease-1' }), isAlreadyExists, 'duplicate');
      const r = await svc.leases.create(ctx);
      assert.ok(r.id.length > 0, 'random id');
      const ids = async (...f: string[]) => (await svc.leases.list(ctx, f)).map((x) => x.id).sort();
      assert.deepEqual(await ids(), ['lease-1', r.id].sort());
      assert.deepEqual(await ids('id==lease-1'), ['lease-1']);
      assert.deepEqual(await ids('labels.k==v'), ['lease-1']);
      await rejectsWith(svc.leases.list(ctx, ['id==']), isInvalidArgument, 'bad filter');

      const d = fromBytes('x');
      const res = [
        { id: d, type: 'content' },
        { id: 'some-ref', type: 'ingests' },
        { id: 'some-key', type: 'snapshots/native' },
      ];
      for (const x of res) await svc.leases.addResource(ctx, l, x);
      const key = (x: { id: string; type: string }) => `${x.type} ${x.id}`;
      assert.deepEqual((await svc.leases.listResources(ctx, l)).map(key).sort(), res.map(key).sort());
      await rejectsWith(svc.leases.addResource(ctx, l, { id: 'x', type: 'bogus' }), isNotImplemented, 'unknown resource type');
      await svc.leases.deleteResource(ctx, l, res[1]);
      assert.deepEqual((await svc.leases.listResources(ctx, l)).map(key).sort(), [key(res[0]), key(res[2])].sort());

      await svc.leases.delete(ctx, l, { sync: true });
      await svc.leases.delete(ctx, r);
      assert.deepEqual(await ids(), []);
      await rejectsWith(svc.leases.delete(ctx, l), isNotFound, 'delete twice');
    } finally {
      await cleanNamespace(svc, ns);
    }
  });

  t('leases + GC: a leased blob lives until the lease is deleted (sync)', async (svc) => {
    const ns = uniqueNS('gcp');
    const ctx: Ctx = { namespace: ns };
    try {
      const l = await svc.leases.create(ctx);
      const data = Buffer.from(`leased blob ${ns}`);
      const dgst = fromBytes(data);
      await writeBlob({ ...ctx, lease: l.id }, svc.content, 'leased', Readable.from([data]), { digest: dgst, size: data.length });
      assert.ok((await svc.leases.listResources(ctx, l)).some((x) => x.type === 'content' && x.id === dgst), 'blob joined the lease');
      assert.ok((await readBlob(ctx, svc.content, { digest: dgst })).equals(data));
      await svc.leases.delete(ctx, l, { sync: true });
      await rejectsWith(svc.content.info(ctx, dgst), isNotFound, 'collected after the lease went');
    } finally {
      await cleanNamespace(svc, ns);
    }
  });

  t('images: create, get, list with filters, update with field paths, delete, errors', async (svc) => {
    const ns = uniqueNS('imp');
    const ctx: Ctx = { namespace: ns };
    try {
      const target = { mediaType: MANIFEST, digest: fromBytes('manifest'), size: 8 };
      const t0 = now();
      const img = await svc.images.create(ctx, { name: 'example.com/a:1', target, labels: { l: '1' } });
      assert.equal(img.name, 'example.com/a:1');
      assert.deepEqual(img.target, target);
      assert.deepEqual(img.labels, { l: '1' });
      assert.ok(img.createdAt >= t0 - 2_000_000n && img.createdAt === img.updatedAt);
      await rejectsWith(svc.images.create(ctx, { name: 'example.com/a:1', target }), isAlreadyExists, 'duplicate');
      await rejectsWith(svc.images.create(ctx, { name: '', target }), isInvalidArgument, 'empty name');
      const t2 = { mediaType: MANIFEST, digest: fromBytes('other'), size: 5, annotations: { an: 'x' } };
      await svc.images.create(ctx, { name: 'example.com/b:2', target: t2 });
      assert.deepEqual((await svc.images.get(ctx, 'example.com/b:2')).target, t2, 'annotations travel');
      await rejectsWith(svc.images.get(ctx, 'example.com/none'), isNotFound, 'get missing');

      const names = async (...f: string[]) => (await svc.images.list(ctx, f)).map((i) => i.name).sort();
      assert.deepEqual(await names(), ['example.com/a:1', 'example.com/b:2']);
      assert.deepEqual(await names('name==example.com/b:2'), ['example.com/b:2']);
      assert.deepEqual(await names('labels.l==1'), ['example.com/a:1']);
      assert.deepEqual(await names(`target.digest==${t2.digest}`), ['example.com/b:2']);
      assert.deepEqual(await names('name~=a:1$', 'labels.nope'), ['example.com/a:1']);
      await rejectsWith(svc.images.list(ctx, ['name==']), isInvalidArgument, 'bad filter');

      let u = await svc.images.update(ctx, { name: 'example.com/a:1', labels: { m: '2' } }, ['labels.m']);
      assert.deepEqual(u.labels, { l: '1', m: '2' });
      assert.ok(u.updatedAt > u.createdAt);
      u = await svc.images.update(ctx, { name: 'example.com/a:1', target: t2 }, ['target']);
      assert.deepEqual(u.target, t2);
      u = await svc.images.update(ctx, { name: 'example.com/a:1', target, labels: { only: 'x' } });
      assert.deepEqual([u.target, u.labels], [target, { only: 'x' }], 'no field paths: replace');
      await rejectsWith(svc.images.update(ctx, { name: 'example.com/none', target }), isNotFound, 'update missing');

      await svc.images.delete(ctx, 'example.com/a:1', { sync: true });
      await svc.images.delete(ctx, 'example.com/b:2');
      assert.deepEqual(await names(), []);
      await rejectsWith(svc.images.delete(ctx, 'example.com/a:1'), isNotFound, 'delete twice');
    } finally {
      await cleanNamespace(svc, ns);
    }
  });
}
