/**
 * client/tee: the live copy of layer downloads for a pull's unpacker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { TeeingIngester, MAX_UNCLAIMED } from '../../src/client/tee.js';
import { LocalStore } from '../../src/content/local/store.js';
import { tempDir } from '../util/tmp.js';
import { MT } from '../util/oci.js';

const ctx = {};

function layer(n: number, fill: number) {
  const data = Buffer.alloc(n, fill);
  return { data, desc: { mediaType: MT.OCILayerGzip, digest: 'sha256:' + createHash('sha256').update(data).digest('hex'), size: n } };
}

async function download(tee: TeeingIngester, l: ReturnType<typeof layer>): Promise<void> {
  const w = await tee.writer(ctx, { ref: `ref-${l.desc.digest}`, desc: l.desc });
  for (let off = 0; off < l.data.length; off += 1 << 20) await w.write(l.data.subarray(off, off + (1 << 20)));
  await w.commit(ctx, l.data.length, l.desc.digest);
  await w.close();
}

test('tee: a claimed layer streams its download; after release, later downloads are not held', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const tee = new TeeingIngester(await LocalStore.open(dir));
    const first = layer(3 << 20, 1);
    const w = await tee.writer(ctx, { ref: 'first', desc: first.desc });
    await w.write(first.data.subarray(0, 1 << 20));
    const s = await tee.claim(first.desc.digest);
    assert.ok(s, 'the first layer is claimable while it downloads');
    const got: Buffer[] = [];
    s.on('data', (c: Buffer) => got.push(c));
    const ended = new Promise((r) => s.on('end', r));
    await w.write(first.data.subarray(1 << 20));
    await w.commit(ctx, first.data.length, first.desc.digest);
    await w.close();
    await ended;
    assert.ok(Buffer.concat(got).equals(first.data));

    // A download that starts after the release is not copied: past
    // MAX_UNCLAIMED it would otherwise wait seconds for a claim that never comes.
    const later = layer(MAX_UNCLAIMED + (3 << 20), 2);
    const t0 = performance.now();
    await download(tee, later);
    assert.ok(performance.now() - t0 < 2000, `the later download was held ${Math.round(performance.now() - t0)} ms`);
    assert.equal(await tee.claim(later.desc.digest), undefined);
  } finally {
    await cleanup();
  }
});

test('tee: a claim made before its download starts is answered when it starts; other layers are not held meanwhile', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const tee = new TeeingIngester(await LocalStore.open(dir));
    const first = layer(2 << 20, 3);
    const other = layer(MAX_UNCLAIMED + (2 << 20), 4);
    const claimed = tee.claim(first.desc.digest);
    // another layer downloading while the claim waits is not copied (not held for a decision)
    const t0 = performance.now();
    await download(tee, other);
    assert.ok(performance.now() - t0 < 2000, `the other download was held ${Math.round(performance.now() - t0)} ms`);
    const got: Buffer[] = [];
    const downloading = download(tee, first);
    const s = await claimed;
    assert.ok(s, 'the claim gets the download once it starts');
    s.on('data', (c: Buffer) => got.push(c));
    await new Promise((r) => s.on('end', r));
    await downloading;
    assert.ok(Buffer.concat(got).equals(first.data));
  } finally {
    await cleanup();
  }
});

test('tee: a claim gets undefined for a layer the fetch settled (present already), and once the fetch ended', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const tee = new TeeingIngester(await LocalStore.open(dir));
    const a = layer(1 << 10, 5);
    const b = layer(1 << 10, 6);
    const waiting = tee.claim(a.desc.digest);
    tee.settle(a.desc.digest); // e.g. the blob was in the store: no download comes
    assert.equal(await waiting, undefined);
    assert.equal(await tee.claim(a.desc.digest), undefined, 'settled before the claim');
    const pending = tee.claim(b.desc.digest);
    tee.end();
    assert.equal(await pending, undefined);
    assert.equal(await tee.claim(b.desc.digest), undefined, 'claimed after the fetch ended');
    // and a download starting after the end is not copied
    await download(tee, b);
  } finally {
    await cleanup();
  }
});
