/**
 * The content proxy's streams beyond the suite: writes larger than a gRPC
 * message (chunking), cancellation mid-write and mid-read, resuming after a
 * canceled writer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readBlob } from '../../src/content/helpers.js';
import type { Writer } from '../../src/content/types.js';
import { isCanceled, isUnavailable } from '../../src/errdefs/index.js';
import type { Ctx } from '../../src/internal/context.js';
import type { Remote } from '../../src/services/remote.js';
import { createContent, rejectsWith } from '../content/testsuite.js';
import { cleanNamespace, uniqueNS } from './env.js';

type Get = () => Promise<{ svc: Remote }>;

/** Opens a writer, retrying while the daemon still holds the ref of a canceled stream. */
async function openRetry(svc: Remote, ctx: Ctx, ref: string, desc: { size: number; digest: string }): Promise<Writer> {
  for (let i = 0; ; i++) {
    try {
      return await svc.content.writer(ctx, { ref, desc });
    } catch (err) {
      if (!isUnavailable(err) || i >= 50) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export function streamChecks(name: string, get: Get): void {
  const t = (title: string, fn: (svc: Remote, ctx: Ctx) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const { svc } = await get();
      const ns = uniqueNS('streams');
      const lease = await svc.leases.create({ namespace: ns });
      try {
        await fn(svc, { namespace: ns, lease: lease.id });
      } finally {
        await cleanNamespace(svc, ns);
      }
    });

  t('a 20 MiB write() (beyond the 16 MiB message limit) is chunked; read back in ranges', async (svc, ctx) => {
    const size = 20 << 20;
    const { data, digest } = createContent(size);
    const w = await svc.content.writer(ctx, { ref: 'big', desc: { size, digest } });
    try {
      await w.write(data);
      assert.equal((await w.status()).offset, size);
      assert.equal(w.digest(), digest);
      await w.commit(ctx, size, digest);
    } finally {
      await w.close();
    }
    const ra = await svc.content.readerAt(ctx, { digest });
    try {
      assert.equal(ra.size, size);
      const h = createHash('sha256');
      for await (const c of ra.stream()) h.update(c as Buffer);
      assert.equal(`sha256:${h.digest('hex')}`, digest, 'streamed whole');
      const buf = Buffer.alloc(3 << 20);
      const off = (17 << 20) + 5;
      assert.equal(await ra.readAt(buf, off), size - off);
      assert.ok(buf.subarray(0, size - off).equals(data.subarray(off)));
    } finally {
      await ra.close();
    }
    assert.equal((await readBlob(ctx, svc.content, { digest }, size)).length, size);
  });

  t('a write canceled midway fails Canceled, breaks the writer, and the ingest resumes', async (svc, ctx) => {
    const size = 8 << 20;
    const { data, digest } = createContent(size);
    const w = await svc.content.writer(ctx, { ref: 'cancel-me', desc: { size, digest } });
    await w.write(data.subarray(0, 1 << 20));
    const ac = new AbortController();
    const p = w.write(data.subarray(1 << 20), ac.signal);
    setTimeout(() => ac.abort(), 5);
    await rejectsWith(p, isCanceled, 'canceled write');
    await rejectsWith(w.write(Buffer.from('x')), () => true, 'write on a broken writer');
    await w.close();

    const w2 = await openRetry(svc, ctx, 'cancel-me', { size, digest });
    try {
      const off = (await w2.status()).offset;
      assert.ok(off >= 1 << 20 && off <= size, `resumes at ${off}`);
      await w2.write(data.subarray(off));
      await w2.commit(ctx, size, digest);
    } finally {
      await w2.close();
    }
    assert.equal((await svc.content.info(ctx, digest)).size, size);
  });

  t('ctx.signal cancels writers and readers; an aborted read stream errors', async (svc, ctx) => {
    const { data, digest } = createContent(4 << 20);
    const ac = new AbortController();
    const w = await svc.content.writer({ ...ctx, signal: ac.signal }, { ref: 'ctx-cancel' });
    await w.write(data.subarray(0, 1000));
    ac.abort();
    await rejectsWith(w.write(data.subarray(1000)), isCanceled, 'write after ctx abort');
    await w.close();
    await svc.content.abort(ctx, 'ctx-cancel').catch(() => undefined);

    const w2 = await openRetry(svc, ctx, 'full', { size: data.length, digest });
    await w2.write(data);
    await w2.commit(ctx, data.length, digest);
    const ac2 = new AbortController();
    const ra = await svc.content.readerAt({ ...ctx, signal: ac2.signal }, { digest });
    const s = ra.stream();
    let n = 0;
    await assert.rejects(
      (async () => {
        for await (const c of s) {
          n += (c as Buffer).length;
          if (n > 0) ac2.abort();
        }
      })(),
      (e: unknown) => isCanceled(e) || (e as Error).name === 'AbortError',
    );
    assert.ok(n < data.length, 'stopped before the end');
    await rejectsWith(ra.readAt(Buffer.alloc(10), 0), isCanceled, 'readAt after ctx abort');
    await ra.close();
  });
}
