/**
 * The content suite against the namespaced metadata store (openEmbedded),
 * twice: plain, and with every call under a lease (containerd runs its
 * metadata suite with a lease-creating context wrapper).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { writeBlob } from '../../src/content/helpers.js';
import { isAlreadyExists, isFailedPrecondition, isInvalidArgument, isNotFound } from '../../src/errdefs/index.js';
import { openEmbedded } from '../../src/services/embedded.js';
import { tempDir } from '../util/tmp.js';
import { contentSuite, createContent, rejectsWith } from './testsuite.js';

contentSuite('metadata', async () => {
  const { dir, cleanup } = await tempDir('content-meta-');
  const svc = await openEmbedded(dir);
  return {
    store: svc.content,
    ctx: { namespace: 'testsuite' },
    ctx2: { namespace: 'testsuite-2' },
    cleanup: async () => {
      await svc.close();
      await cleanup();
    },
  };
});

contentSuite('metadata with lease', async () => {
  const { dir, cleanup } = await tempDir('content-meta-lease-');
  const svc = await openEmbedded(dir);
  const l1 = await svc.leases.create({ namespace: 'testsuite' });
  const l2 = await svc.leases.create({ namespace: 'testsuite-2' });
  return {
    store: svc.content,
    ctx: { namespace: 'testsuite', lease: l1.id },
    ctx2: { namespace: 'testsuite-2', lease: l2.id },
    cleanup: async () => {
      await svc.leases.delete({ namespace: 'testsuite' }, l1);
      await svc.leases.delete({ namespace: 'testsuite-2' }, l2);
      await svc.close();
      await cleanup();
    },
  };
});

async function withSvc(fn: (svc: Awaited<ReturnType<typeof openEmbedded>>) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await tempDir('content-meta-');
  const svc = await openEmbedded(dir);
  try {
    await fn(svc);
  } finally {
    await svc.close();
    await cleanup();
  }
}

test('metadata content: a namespace is required and must be valid', () =>
  withSvc(async ({ content }) => {
    const { digest } = createContent(10);
    await rejectsWith(content.info({}, digest), isFailedPrecondition, 'info without namespace', /namespace is required/);
    await rejectsWith(content.writer({}, { ref: 'x' }), isFailedPrecondition, 'writer without namespace');
    await rejectsWith(content.listStatuses({}), isFailedPrecondition, 'listStatuses without namespace');
    await rejectsWith(content.walk({}, () => {}), isFailedPrecondition, 'walk without namespace');
    await rejectsWith(content.info({ namespace: 'bad..ns' }, digest), isInvalidArgument, 'info in a bad namespace');
    await rejectsWith(content.info({ namespace: 'ns' }, 'sha256:zz'), isInvalidArgument, 'info of a bad digest');
  }));

test('metadata content: the blob file goes with the last namespace that references it', () =>
  withSvc(async ({ content }) => {
    const a = { namespace: 'a' };
    const b = { namespace: 'b' };
    const { data, digest } = createContent(1000);
    await writeBlob(a, content, 'r', Readable.from([data]), { digest });
    await writeBlob(b, content, 'r', Readable.from([data]), { digest });
    const path = content.backend.blobPath(digest);
    assert.ok(existsSync(path));
    await content.delete(a, digest);
    assert.ok(existsSync(path), 'still referenced by b');
    await content.delete(b, digest);
    assert.ok(!existsSync(path), 'removed with the last reference');
  }));

test('metadata content: writes under a lease become its resources (ingest while writing, content after commit)', () =>
  withSvc(async ({ content, leases }) => {
    const ns = 'leased';
    const lease = await leases.create({ namespace: ns }, { id: 'l1' });
    const ctx = { namespace: ns, lease: lease.id };
    const { data, digest } = createContent(300);
    const w = await content.writer(ctx, { ref: 'leased-ref', desc: { digest, size: 300 } });
    await w.write(data.subarray(0, 100));
    assert.deepEqual(await leases.listResources({ namespace: ns }, lease), [{ type: 'ingests', id: 'leased-ref' }]);
    await w.write(data.subarray(100));
    await w.commit(ctx, 300, digest);
    assert.deepEqual(await leases.listResources({ namespace: ns }, lease), [{ type: 'content', id: digest }]);
    // Label updates under a lease lease the blob too.
    const other = await leases.create({ namespace: ns }, { id: 'l2' });
    await content.update({ namespace: ns, lease: other.id }, { digest, labels: { x: 'y' } });
    assert.deepEqual(await leases.listResources({ namespace: ns }, other), [{ type: 'content', id: digest }]);
    // Deleting the blob drops it from every lease.
    await content.delete({ namespace: ns }, digest);
    assert.deepEqual(await leases.listResources({ namespace: ns }, lease), []);
    assert.deepEqual(await leases.listResources({ namespace: ns }, other), []);
    // An unknown lease is NotFound.
    await rejectsWith(content.writer({ namespace: ns, lease: 'nope' }, { ref: 'z' }), isNotFound, 'writer under an unknown lease');
  }));

test('metadata content: abort under a lease drops the ingest resource', () =>
  withSvc(async ({ content, leases }) => {
    const ns = 'leased';
    const lease = await leases.create({ namespace: ns }, { id: 'l1' });
    const ctx = { namespace: ns, lease: lease.id };
    const w = await content.writer(ctx, { ref: 'to-abort' });
    await w.write(Buffer.from('abc'));
    await w.close();
    assert.deepEqual(await leases.listResources({ namespace: ns }, lease), [{ type: 'ingests', id: 'to-abort' }]);
    await content.abort(ctx, 'to-abort');
    assert.deepEqual(await leases.listResources({ namespace: ns }, lease), []);
  }));

test('metadata content: a commit that finds the blob present (AlreadyExists) still drops the ingest and leases the content', () =>
  withSvc(async ({ content, leases, db }) => {
    const ns = 'dup';
    const { data, digest } = createContent(200);
    await writeBlob({ namespace: ns }, content, 'first', Readable.from([data]), { digest });
    const lease = await leases.create({ namespace: ns }, { id: 'dup-lease' });
    const ctx = { namespace: ns, lease: lease.id };
    const w = await content.writer(ctx, { ref: 'second' });
    await w.write(data);
    await rejectsWith(w.commit(ctx, 200, digest), isAlreadyExists, 'commit of a present blob');
    const rows = db.db.prepare('SELECT ref FROM ingests WHERE ns = ?').all(ns);
    assert.deepEqual(rows, [], 'ingest record removed (containerd deletes it and keeps AlreadyExists)');
    assert.deepEqual(await leases.listResources({ namespace: ns }, lease), [{ type: 'content', id: digest }], 'content leased, ingest not');
  }));

test('metadata content: an ingest is resumable in a new process (new store on the same root)', async () => {
  const { dir, cleanup } = await tempDir('content-meta-');
  try {
    const { data, digest } = createContent(5000);
    let svc = await openEmbedded(dir);
    const ctx = { namespace: 'reopen' };
    const w = await svc.content.writer(ctx, { ref: 'r', desc: { digest, size: 5000 } });
    await w.write(data.subarray(0, 2000));
    await w.close();
    await svc.close();
    svc = await openEmbedded(dir);
    try {
      const st = await svc.content.status(ctx, 'r');
      assert.equal(st.offset, 2000);
      assert.equal(st.total, 5000);
      assert.equal(st.expected, digest);
      const w2 = await svc.content.writer(ctx, { ref: 'r', desc: { digest, size: 5000 } });
      await w2.write(data.subarray(2000));
      await w2.commit(ctx, 5000, digest);
      assert.equal((await svc.content.info(ctx, digest)).size, 5000);
    } finally {
      await svc.close();
    }
  } finally {
    await cleanup();
  }
});

test('metadata content: deleting the last record of a blob keeps the file while another namespace ingests it (shared writer)', () =>
  withSvc(async ({ content }) => {
    const a = { namespace: 'a' };
    const b = { namespace: 'b' };
    const { data, digest } = createContent(1000);
    await writeBlob(a, content, 'r', Readable.from([data]), { digest });
    // b starts a pull of the same blob: a shared writer, no bytes needed.
    const w = await content.writer(b, { ref: 'pull', desc: { digest, size: 1000 } });
    try {
      assert.equal((await w.status()).offset, 1000);
      await content.delete(a, digest);
      // containerd: an ingest's expected digest references the blob, so it stays.
      await w.commit(b, 1000, digest);
    } finally {
      await w.close();
    }
    const ra = await content.readerAt(b, { digest });
    await ra.close();
    assert.equal((await content.info(b, digest)).size, 1000);
  }));
