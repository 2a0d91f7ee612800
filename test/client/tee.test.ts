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
    const s = tee.claim(first.desc.digest);
    assert.ok(s, 'the first layer is claimable while it downloads');
    tee.release(); // as the pull does once it took the first layer
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
    assert.equal(tee.claim(later.desc.digest), undefined);
  } finally {
    await cleanup();
  }
});
