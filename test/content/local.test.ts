/** The content suite against content/local (no namespaces), plus disk-layout checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalStore } from '../../src/content/local/store.js';
import { tempDir } from '../util/tmp.js';
import { contentSuite, createContent } from './testsuite.js';

contentSuite('local', async () => {
  const { dir, cleanup } = await tempDir('content-local-');
  const store = await LocalStore.open(dir);
  return { store, ctx: {}, cleanup };
});

test('local: layout blobs/<alg>/<hex>, ingest folder removed on commit, rename (same inode)', async () => {
  const { dir, cleanup } = await tempDir('content-local-');
  try {
    const store = await LocalStore.open(dir);
    const { data, digest } = createContent(4096);
    const w = await store.writer({}, { ref: 'layout' });
    await w.write(data);
    const ingest = store.ingestDir('layout');
    const before = await stat(join(ingest, 'data'));
    await w.commit({}, data.length, digest);
    const p = store.blobPath(digest);
    assert.equal(p, join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
    const after = await stat(p);
    assert.equal(after.ino, before.ino, 'the blob is the ingest data file, renamed');
    assert.equal(after.size, 4096);
    assert.deepEqual(await readdir(join(dir, 'ingest')), [], 'ingest folder removed');
  } finally {
    await cleanup();
  }
});

test('local: large ingests hand written data to writeback as they go; commit, resume and close are unaffected', async () => {
  const { dir, cleanup } = await tempDir('content-local-');
  try {
    const store = await LocalStore.open(dir);
    const chunk = 1 << 20;
    const { data, digest } = createContent(20 * chunk + 123);
    // committed in one go
    const w = await store.writer({}, { ref: 'big' });
    for (let o = 0; o < data.length; o += chunk) await w.write(data.subarray(o, o + chunk));
    await w.commit({}, data.length, digest);
    assert.equal((await stat(store.blobPath(digest))).size, data.length);
    assert.equal((await store.info({}, digest)).size, data.length);
    // closed half way (a writeback may be in flight), resumed, truncated, committed
    await store.delete({}, digest);
    const w1 = await store.writer({}, { ref: 'again' });
    for (let o = 0; o < 12 * chunk; o += chunk) await w1.write(data.subarray(o, o + chunk));
    await w1.close();
    const w2 = await store.writer({}, { ref: 'again' });
    assert.equal((await w2.status()).offset, 12 * chunk);
    await w2.truncate(0);
    for (let o = 0; o < data.length; o += chunk) await w2.write(data.subarray(o, o + chunk));
    await w2.commit({}, data.length, digest);
    assert.equal((await store.info({}, digest)).size, data.length);
  } finally {
    await cleanup();
  }
});
