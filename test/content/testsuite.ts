/**
 * The shared content store suite (containerd 1.6's content/testsuite), run
 * against every Store implementation: content/local, the namespaced metadata
 * store, and (later) the gRPC proxy.
 *
 * Each test gets a fresh store from the factory and calls its cleanup. A
 * factory that returns `ctx2` (a second namespace over the same backing
 * store) also gets the cross-namespace tests (containerd's "shared" policy:
 * checkCrossNSShare / checkCrossNSAppend) and the visibility tests.
 *
 * Timestamps are checked at nanosecond precision between `now()` taken just
 * before and just after the call (src/internal/time.ts), as containerd does
 * with time.Now().
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { copyInto, readBlob, writeBlob } from '../../src/content/helpers.js';
import type { Info, Status, Store, Writer } from '../../src/content/types.js';
import { fromBytes } from '../../src/digest/index.js';
import {
  isAlreadyExists, isCanceled, isFailedPrecondition, isInvalidArgument, isNotFound, isNotImplemented, isUnavailable,
} from '../../src/errdefs/index.js';
import type { Ctx } from '../../src/internal/context.js';
import { now, type Timestamp } from '../../src/internal/time.js';

export interface SuiteEnv {
  store: Store;
  ctx: Ctx;
  /** A second namespace over the same backing store, for cross-namespace tests. */
  ctx2?: Ctx;
  cleanup: () => Promise<void>;
  /**
   * The store is containerd 1.6 itself (through the proxy): accept its known
   * gaps: statuses carry no `expected` (nor filter on it), no `size==` filter
   * on blobs, a bad `~=` regexp matches nothing instead of failing, and a
   * deleted blob's bytes stay in the shared backend until GC (a new writer
   * for that digest starts at its full size).
   */
  containerd16?: boolean;
  /** Writers can only truncate to 0 or their offset (the Write stream protocol); other sizes: NotImplemented. */
  truncateToZeroOnly?: boolean;
}

export type SuiteFactory = () => Promise<SuiteEnv>;

export const EMPTY_DIGEST = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

let contentSeed = 0;

/** Deterministic pseudo-random content (a fresh seed per call, like containerd's createContent). */
export function createContent(size: number): { data: Buffer; digest: string } {
  contentSeed++;
  const data = Buffer.allocUnsafe(size);
  let x = (Math.imul(contentSeed, 0x9e3779b1) >>> 0) || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  return { data, digest: fromBytes(data) };
}

/** Writes b in chunks of `chunk` bytes, awaiting each write. */
export async function writeChunks(w: Writer, b: Uint8Array, chunk = 32): Promise<void> {
  for (let i = 0; i < b.length; i += chunk) await w.write(b.subarray(i, Math.min(b.length, i + chunk)));
}

export function assertBetween(t: Timestamp, lo: Timestamp, hi: Timestamp, what: string): void {
  assert.equal(typeof t, 'bigint', `${what} must be a bigint ns timestamp`);
  assert.ok(t >= lo && t <= hi, `unexpected ${what} ${t}, expected between ${lo} and ${hi}`);
}

/** Asserts that `p` rejects with an error of the class tested by `is`. */
export async function rejectsWith(p: Promise<unknown>, is: (e: unknown) => boolean, what: string, msg?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(is(err), `${what}: wrong error class: ${String(err)}`);
    if (msg) assert.match(String((err as Error).message), msg, what);
    return true;
  });
}

interface ExpectedStatus {
  ref: string;
  offset: number;
  total: number;
}

async function checkStatus(w: Writer, exp: ExpectedStatus, dgst: string, preStart: Timestamp, postStart: Timestamp, preUpdate: Timestamp, postUpdate: Timestamp): Promise<Status> {
  const st = await w.status();
  assert.equal(w.digest(), dgst, 'writer digest');
  assert.equal(st.ref, exp.ref, 'status ref');
  assert.equal(st.offset, exp.offset, 'status offset');
  assert.equal(st.total, exp.total, 'status total');
  assertBetween(st.startedAt, preStart, postStart, 'startedAt');
  assertBetween(st.updatedAt, preUpdate, postUpdate, 'updatedAt');
  return st;
}

async function checkInfo(store: Store, ctx: Ctx, dgst: string, exp: { size: number; labels?: Record<string, string> }, c1: Timestamp, c2: Timestamp, u1: Timestamp, u2: Timestamp): Promise<Info> {
  const info = await store.info(ctx, dgst);
  assert.equal(info.digest, dgst, 'info digest');
  assert.equal(info.size, exp.size, 'info size');
  assertBetween(info.createdAt, c1, c2, 'createdAt');
  assertBetween(info.updatedAt, u1, u2, 'info updatedAt');
  assert.deepEqual(info.labels, exp.labels ?? {}, 'info labels');
  return info;
}

async function checkContent(store: Store, ctx: Ctx, dgst: string, exp: { size: number }, c1: Timestamp, c2: Timestamp, u1: Timestamp, u2: Timestamp): Promise<void> {
  await checkInfo(store, ctx, dgst, exp, c1, c2, u1, u2);
  const b = await readBlob(ctx, store, { digest: dgst });
  assert.equal(b.length, exp.size, 'blob size');
  assert.equal(fromBytes(b), dgst, 'blob digest');
}

async function collectWalk(store: Store, ctx: Ctx, filters?: string[]): Promise<string[]> {
  const out: string[] = [];
  await store.walk(ctx, async (info) => {
    await Promise.resolve();
    out.push(info.digest);
  }, filters);
  return out.sort();
}

async function readStream(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(parts);
}

const gcRootLabels = (): Record<string, string> => ({ 'containerd.io/gc.root': new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') });

type ResumeFn = (ctx: Ctx, w: Writer, b: Buffer, written: number, size: number, dgst: string) => Promise<void>;

const resumeTruncate: ResumeFn = async (ctx, w, b, _written, size, dgst) => {
  await w.truncate(0);
  assert.equal((await w.status()).offset, 0, 'offset after truncate(0)');
  assert.equal(w.digest(), EMPTY_DIGEST, 'digest after truncate(0)');
  await writeChunks(w, b, 1024);
  await w.commit(ctx, size, dgst);
};

const resumeDiscard: ResumeFn = async (ctx, w, b, written, size, dgst) => {
  await writeChunks(w, b.subarray(written), 1024);
  await w.commit(ctx, size, dgst);
};

/** content.Copy: the source starts at 0; the bytes already ingested are skipped. */
const resumeCopy: ResumeFn = async (ctx, w, b, _written, size, dgst) => {
  await copyInto(ctx, w, Readable.from([b]), size);
  await w.commit(ctx, size, dgst);
};

/** Same, from a source in odd-sized chunks, so skipping crosses chunk boundaries. */
const resumeCopyChunked: ResumeFn = async (ctx, w, b, _written, size, dgst) => {
  async function* chunks() {
    for (let i = 0; i < b.length; i += 777) yield b.subarray(i, Math.min(b.length, i + 777));
  }
  await copyInto(ctx, w, chunks(), size);
  await w.commit(ctx, size, dgst);
};

export function contentSuite(name: string, factory: SuiteFactory): void {
  /** Runs fn on a fresh store; always cleans up. */
  function it(title: string, fn: (env: SuiteEnv) => Promise<void>, opts: { needsNS?: boolean } = {}): void {
    test(title, async (t) => {
      const env = await factory();
      try {
        if (opts.needsNS && !env.ctx2) {
          t.skip('store has no namespaces');
          return;
        }
        await fn(env);
      } finally {
        await env.cleanup();
      }
    });
  }

  describe(`content suite: ${name}`, () => {
    it('Writer: without/with size, digest, both; commit with labels', async ({ store, ctx }) => {
      const labels = gcRootLabels();
      const cases = [
        { ref: 'c1', desc: undefined as { size?: number; digest?: string } | undefined },
        { ref: 'c2', desc: { size: 256 } },
        { ref: 'c3', desc: { digest: '' } },
        { ref: 'c4', desc: { size: 256, digest: '' } },
      ];
      const writers: { w: Writer; data: Buffer; digest: string }[] = [];
      for (const c of cases) {
        const { data, digest } = createContent(256);
        if (c.desc && 'digest' in c.desc) c.desc.digest = digest;
        writers.push({ w: await store.writer(ctx, { ref: c.ref, desc: c.desc }), data, digest });
      }
      try {
        for (const s of writers) {
          await writeChunks(s.w, s.data, 32);
          const pre = now();
          await s.w.commit(ctx, 0, '', { labels });
          const post = now();
          assert.equal(s.w.digest(), s.digest, 'digest after commit');
          await checkInfo(store, ctx, s.digest, { size: 256, labels }, pre, post, pre, post);
          await rejectsWith(store.status(ctx, s.w.ref), isNotFound, 'status of a committed ref');
        }
      } finally {
        for (const s of writers) await s.w.close();
      }
    });

    it('Writer: bad arguments', async ({ store, ctx }) => {
      await rejectsWith(store.writer(ctx, { ref: '' }), isInvalidArgument, 'empty ref');
      await rejectsWith(store.writer(ctx, { ref: 'x', desc: { digest: 'sha256:nothex' } }), isInvalidArgument, 'bad digest');
      await rejectsWith(store.writer(ctx, { ref: 'y', desc: { digest: 'md5:' + 'a'.repeat(32) } }), isInvalidArgument, 'unsupported algorithm');
      const ac = new AbortController();
      ac.abort();
      await rejectsWith(store.writer({ ...ctx, signal: ac.signal }, { ref: 'z' }), isCanceled, 'aborted signal');
    });

    it('UpdateStatus: offset, digest, total, expected, timestamps through writes', async (env) => {
      const { store, ctx } = env;
      const { data, digest } = createContent(256);
      const preStart = now();
      const w = await store.writer(ctx, { ref: 'c1', desc: { size: 256, digest } });
      const postStart = now();
      try {
        const exp = { ref: 'c1', offset: 0, total: 256 };
        let st = await checkStatus(w, exp, EMPTY_DIGEST, preStart, postStart, preStart, postStart);
        assert.equal(st.expected, digest, 'writer status expected');
        const startedAt = st.startedAt;

        const steps: [number, number][] = [[0, 64], [64, 192], [192, 256]];
        for (const [a, b] of steps) {
          const preUpdate = now();
          await w.write(data.subarray(a, b));
          const postUpdate = now();
          exp.offset = b;
          st = await checkStatus(w, exp, fromBytes(data.subarray(0, b)), preStart, postStart, preUpdate, postUpdate);
          assert.equal(st.startedAt, startedAt, 'startedAt never changes');
          // The store's view of an active ingest agrees with the writer's.
          const sst = await store.status(ctx, 'c1');
          assert.equal(sst.ref, 'c1');
          assert.equal(sst.offset, b, 'store status offset');
          assert.equal(sst.total, 256, 'store status total');
          if (!env.containerd16) assert.equal(sst.expected, digest, 'store status expected');
          assert.equal(sst.startedAt, startedAt, 'store status startedAt');
          assert.ok(sst.updatedAt >= sst.startedAt, 'store status updatedAt >= startedAt');
        }

        const pre = now();
        await w.commit(ctx, 0, '', { labels: { a: 'b' } });
        const post = now();
        await checkInfo(store, ctx, digest, { size: 256, labels: { a: 'b' } }, pre, post, pre, post);
      } finally {
        await w.close();
      }
    });

    it('CommitExists: a second ingest of a committed blob is AlreadyExists', async ({ store, ctx }) => {
      const { data, digest } = createContent(256);
      await writeBlob(ctx, store, 'c1', Readable.from([data]), { digest });
      for (const [i, expected] of [digest, ''].entries()) {
        const w = await store.writer(ctx, { ref: `c1-commitexists-${i}` });
        try {
          await w.write(data);
          await rejectsWith(w.commit(ctx, data.length, expected), isAlreadyExists, `commit ${i}`);
        } finally {
          await w.close();
        }
        // The spent ingest is gone.
        await rejectsWith(store.status(ctx, `c1-commitexists-${i}`), isNotFound, `status ${i} after AlreadyExists`);
      }
      // An expected digest that is present already: AlreadyExists at writer().
      await rejectsWith(store.writer(ctx, { ref: 'c1-again', desc: { digest } }), isAlreadyExists, 'writer with existing digest');
      // writeBlob swallows AlreadyExists.
      await writeBlob(ctx, store, 'c1-again', Readable.from([data]), { digest, size: data.length });
      assert.deepEqual(await store.listStatuses(ctx), [], 'no ingest left behind');
    });

    it('Resume: close mid-write, reopen, status kept, finish, commit', async ({ store, ctx }) => {
      const ref = 'cb';
      const { data, digest } = createContent(256);
      const first = data.subarray(0, 128);
      const second = data.subarray(128);
      const preStart = now();
      const w1 = await store.writer(ctx, { ref, desc: { size: 256, digest } });
      const postStart = now();
      const preUpdate1 = postStart;
      await w1.write(first);
      const postUpdate1 = now();
      const exp = { ref, offset: 128, total: 256 };
      await checkStatus(w1, exp, fromBytes(first), preStart, postStart, preUpdate1, postUpdate1);
      await w1.close();
      await w1.close(); // idempotent

      const w2 = await store.writer(ctx, { ref, desc: { size: 256, digest } });
      try {
        // Status is consistent with the one before close.
        const st = await checkStatus(w2, exp, fromBytes(first), preStart, postStart, preUpdate1, postUpdate1);
        assert.equal(st.expected, digest);
        const preUpdate = now();
        await w2.write(second);
        const postUpdate = now();
        exp.offset = 256;
        await checkStatus(w2, exp, digest, preStart, postStart, preUpdate, postUpdate);
        const pre = now();
        await w2.commit(ctx, 0, '');
        const post = now();
        await checkInfo(store, ctx, digest, { size: 256 }, pre, post, pre, post);
      } finally {
        await w2.close();
      }
    });

    for (const [rname, rf] of [['Truncate', resumeTruncate], ['Discard', resumeDiscard], ['Copy', resumeCopy], ['CopyChunked', resumeCopyChunked]] as [string, ResumeFn][]) {
      it(`Resume${rname}: sizes 500/5000/50000 cut at 0, 10, 50, 90, 100 %`, async ({ store, ctx }) => {
        const sizes = [500, 5000, 50000];
        const truncations = [0.0, 0.1, 0.5, 0.9, 1.0];
        for (const [i, size] of sizes.entries()) {
          for (const [j, tp] of truncations.entries()) {
            const { data, digest } = createContent(size);
            const limit = Math.floor(size * tp);
            const ref = `ref-${i}-${j}`;
            let w = await store.writer(ctx, { ref, desc: { size, digest } });
            await w.write(data.subarray(0, limit));
            await w.close();
            w = await store.writer(ctx, { ref, desc: { size, digest } });
            try {
              const st = await w.status();
              assert.equal(st.offset, limit, `${ref}: offset after reopen`);
              assert.equal(w.digest(), fromBytes(data.subarray(0, limit)), `${ref}: digest after reopen`);
              const pre = now();
              await rf(ctx, w, data, limit, size, digest);
              const post = now();
              await checkInfo(store, ctx, digest, { size }, pre, post, pre, post);
            } finally {
              await w.close();
            }
          }
        }
        assert.deepEqual(await store.listStatuses(ctx), [], 'no ingest left');
      });
    }

    it('Truncate: to a middle offset rehashes; past the offset is InvalidArgument', async ({ store, ctx, truncateToZeroOnly }) => {
      const { data, digest } = createContent(3000);
      const w = await store.writer(ctx, { ref: 'trunc' });
      try {
        await w.write(data);
        if (truncateToZeroOnly) {
          await rejectsWith(w.truncate(1000), isNotImplemented, 'truncate to a middle offset');
          await rejectsWith(w.truncate(4000), isInvalidArgument, 'truncate past offset');
          await w.truncate(0);
          await w.write(data.subarray(0, 1000));
        } else await w.truncate(1000);
        assert.equal((await w.status()).offset, 1000);
        assert.equal(w.digest(), fromBytes(data.subarray(0, 1000)));
        await rejectsWith(w.truncate(2000), isInvalidArgument, 'truncate past offset');
        await w.write(data.subarray(1000));
        await w.commit(ctx, 3000, digest);
      } finally {
        await w.close();
      }
      assert.equal((await store.info(ctx, digest)).size, 3000);
    });

    it('SmallBlob: reading past the end of a tiny blob', async ({ store, ctx }) => {
      const blob = Buffer.from('foobar');
      const d = fromBytes(blob);
      const w = await store.writer(ctx, { ref: 'smallblob', desc: { size: blob.length, digest: d } });
      await w.write(blob);
      await w.commit(ctx, blob.length, d);
      await w.close();
      const ra = await store.readerAt(ctx, { digest: d });
      try {
        assert.equal(ra.size, 6);
        const buf = Buffer.alloc(7);
        const n = await ra.readAt(buf, 0);
        assert.equal(n, 6);
        assert.equal(buf.subarray(0, n).toString(), 'foobar');
        assert.equal(fromBytes(buf.subarray(0, n)), d);
      } finally {
        await ra.close();
      }
      assert.equal((await readBlob(ctx, store, { digest: d })).toString(), 'foobar');
    });

    it('Labels: commit labels, full replace, field paths labels.k and labels', async ({ store, ctx }) => {
      const { data, digest } = createContent(256);
      const w = await store.writer(ctx, { ref: 'c1-checklabels', desc: { size: 256, digest } });
      await w.write(data);
      const rootTime = gcRootLabels()['containerd.io/gc.root'];
      let labels: Record<string, string> = { k1: 'v1', k2: 'v2', 'containerd.io/gc.root': rootTime };
      const preCommit = now();
      await w.commit(ctx, 0, '', { labels });
      const postCommit = now();
      await w.close();
      await checkInfo(store, ctx, digest, { size: 256, labels }, preCommit, postCommit, preCommit, postCommit);

      // No field paths: the labels are replaced.
      labels = { k1: 'newvalue', k3: 'v3', 'containerd.io/gc.root': rootTime };
      let pre = now();
      const upd = await store.update(ctx, { digest, labels });
      let post = now();
      assert.deepEqual(upd.labels, labels, 'update returns the new labels');
      await checkInfo(store, ctx, digest, { size: 256, labels }, preCommit, postCommit, pre, post);

      // labels.k3 absent in the update → deleted; labels.k1 → set.
      pre = now();
      await store.update(ctx, { digest, labels: { k1: 'v1', 'containerd.io/gc.root': rootTime } }, ['labels.k3', 'labels.k1']);
      post = now();
      labels = { k1: 'v1', 'containerd.io/gc.root': rootTime };
      await checkInfo(store, ctx, digest, { size: 256, labels }, preCommit, postCommit, pre, post);

      // labels.k = '' deletes; a key holding dots.
      await store.update(ctx, { digest, labels: { k1: '', 'a.b': 'c' } }, ['labels.k1', 'labels.a.b']);
      labels = { 'a.b': 'c', 'containerd.io/gc.root': rootTime };
      assert.deepEqual((await store.info(ctx, digest)).labels, labels);

      // "labels": replace all.
      await store.update(ctx, { digest, labels: { only: 'this' } }, ['labels']);
      assert.deepEqual((await store.info(ctx, digest)).labels, { only: 'this' });

      // Other fields cannot be updated.
      await rejectsWith(store.update(ctx, { digest, size: 1 }, ['size']), isInvalidArgument, 'update size');
      assert.deepEqual((await store.info(ctx, digest)).labels, { only: 'this' }, 'failed update changed nothing');
      await rejectsWith(store.update(ctx, { digest: createContent(10).digest, labels: {} }), isNotFound, 'update of a missing blob');
      await rejectsWith(store.info(ctx, createContent(10).digest), isNotFound, 'info of a missing blob');
    });

    it('CommitErrorState: failed commits keep the ingest resumable', async ({ store, ctx }) => {
      const { data: c1, digest: d1 } = createContent(256);
      const { digest: d2 } = createContent(256);
      await writeBlob(ctx, store, 'c1', Readable.from([c1]), { digest: d1 });
      const ref = 'c1-commiterror-state';
      const notAvailable = () => rejectsWith(store.writer(ctx, { ref }), isUnavailable, 'second writer on a ref', /locked/);

      let w = await store.writer(ctx, { ref });
      await w.write(c1);
      await notAvailable();
      await rejectsWith(w.commit(ctx, c1.length, d1), isAlreadyExists, 'commit of existing content');

      w = await store.writer(ctx, { ref });
      await notAvailable();
      await w.write(c1);
      await rejectsWith(w.commit(ctx, c1.length, ''), isAlreadyExists, 'commit of existing content, no digest');
      await w.close();

      w = await store.writer(ctx, { ref });
      await notAvailable();
      const more = Buffer.concat([c1, Buffer.from('more')]);
      await w.write(more);
      // Wrong digest.
      await rejectsWith(w.commit(ctx, more.length, d2), isFailedPrecondition, 'commit with wrong digest');
      // Commit always closes the writer, even on error.
      await rejectsWith(w.write(Buffer.from('x')), () => true, 'write after failed commit');
      await w.close();

      w = await store.writer(ctx, { ref });
      await notAvailable();
      let st = await w.status();
      assert.equal(st.offset, more.length, 'ingest kept after a digest mismatch');
      assert.equal(w.digest(), fromBytes(more));
      // Wrong size.
      await rejectsWith(w.commit(ctx, c1.length, ''), isFailedPrecondition, 'commit with wrong size');
      await w.close();

      w = await store.writer(ctx, { ref });
      await notAvailable();
      st = await w.status();
      assert.equal(st.offset, more.length, 'ingest kept after a size mismatch');
      const pre = now();
      await w.commit(ctx, more.length, '');
      const post = now();
      await w.close();
      await checkInfo(store, ctx, fromBytes(more), { size: more.length }, pre, post, pre, post);

      // Another writer on the same ref starts afresh.
      w = await store.writer(ctx, { ref });
      assert.equal((await w.status()).offset, 0, 'a committed ref starts at 0');
      await w.write(c1);
      await notAvailable();
      await rejectsWith(w.commit(ctx, c1.length, d1), isAlreadyExists, 'commit of existing content again');
      await w.close();

      w = await store.writer(ctx, { ref });
      await notAvailable();
      await w.close();
      w = await store.writer(ctx, { ref });
      await w.close();
    });

    it('Locking: one live writer per ref; close releases it; refs are independent', async ({ store, ctx }) => {
      const w1 = await store.writer(ctx, { ref: 'locked-ref' });
      const other = await store.writer(ctx, { ref: 'locked-ref-2' });
      try {
        await rejectsWith(store.writer(ctx, { ref: 'locked-ref' }), isUnavailable, 'second writer', /locked/);
        // Concurrent attempts all fail while the first is live.
        const results = await Promise.allSettled([1, 2, 3].map(() => store.writer(ctx, { ref: 'locked-ref' })));
        for (const r of results) {
          assert.equal(r.status, 'rejected');
          assert.ok(isUnavailable((r as PromiseRejectedResult).reason));
        }
        await w1.write(Buffer.from('abc'));
        await other.write(Buffer.from('zz'));
      } finally {
        await w1.close();
        await other.close();
      }
      const w2 = await store.writer(ctx, { ref: 'locked-ref' });
      assert.equal((await w2.status()).offset, 3);
      await w2.close();
    });

    it('Abort: removes the ingest; unknown ref is NotFound', async ({ store, ctx }) => {
      const w = await store.writer(ctx, { ref: 'to-abort', desc: { size: 10 } });
      await w.write(Buffer.from('12345'));
      await w.close();
      assert.equal((await store.status(ctx, 'to-abort')).offset, 5);
      await store.abort(ctx, 'to-abort');
      await rejectsWith(store.status(ctx, 'to-abort'), isNotFound, 'status after abort');
      assert.deepEqual((await store.listStatuses(ctx)).map((s) => s.ref), []);
      await rejectsWith(store.abort(ctx, 'to-abort'), isNotFound, 'abort twice');
      await rejectsWith(store.abort(ctx, 'never-seen'), isNotFound, 'abort unknown');
      const w2 = await store.writer(ctx, { ref: 'to-abort' });
      try {
        const st = await w2.status();
        assert.equal(st.offset, 0, 'fresh ingest after abort');
        assert.equal(st.total, 0, 'total not kept after abort');
      } finally {
        await w2.close();
      }
    });

    it('ListStatuses: all, filters ref~=, ref==, expected==; bad filter', async ({ store, ctx, containerd16 }) => {
      const { digest } = createContent(100);
      const specs: [string, { size?: number; digest?: string } | undefined, number][] = [
        ['a-1', undefined, 3],
        ['a-2', { size: 100, digest }, 7],
        ['b-1', { size: 50 }, 0],
      ];
      const t0 = now();
      for (const [ref, desc, n] of specs) {
        const w = await store.writer(ctx, { ref, desc });
        await w.write(Buffer.alloc(n, 1));
        await w.close();
      }
      const t1 = now();
      const all = await store.listStatuses(ctx);
      assert.deepEqual(all.map((s) => s.ref).sort(), ['a-1', 'a-2', 'b-1']);
      const byRef = new Map(all.map((s) => [s.ref, s]));
      assert.equal(byRef.get('a-1')!.offset, 3);
      assert.equal(byRef.get('a-2')!.offset, 7);
      assert.equal(byRef.get('a-2')!.total, 100);
      if (!containerd16) assert.equal(byRef.get('a-2')!.expected, digest);
      assert.equal(byRef.get('b-1')!.total, 50);
      for (const s of all) {
        assertBetween(s.startedAt, t0, t1, `${s.ref} startedAt`);
        assertBetween(s.updatedAt, s.startedAt, t1, `${s.ref} updatedAt`);
      }
      const refs = async (...f: string[]) => (await store.listStatuses(ctx, f)).map((s) => s.ref).sort();
      assert.deepEqual(await refs('ref~=^a-'), ['a-1', 'a-2']);
      assert.deepEqual(await refs('ref~=1$'), ['a-1', 'b-1']);
      assert.deepEqual(await refs('ref==b-1'), ['b-1']);
      assert.deepEqual(await refs('ref!=b-1'), ['a-1', 'a-2']);
      assert.deepEqual(await refs(`expected==${digest}`), containerd16 ? [] : ['a-2']);
      assert.deepEqual(await refs('ref==a-1', 'ref==b-1'), ['a-1', 'b-1'], 'OR of two filters');
      assert.deepEqual(await refs('ref~=^a-,ref!=a-1'), ['a-2'], 'AND within one filter');
      assert.deepEqual(await refs('ref==none'), []);
      for (const bad of ['ref==', 'ref=x', '==x', 'ref~=(']) {
        // containerd logs a bad regexp and matches nothing.
        if (containerd16 && bad === 'ref~=(') assert.deepEqual(await refs(bad), []);
        else await rejectsWith(store.listStatuses(ctx, [bad]), isInvalidArgument, `bad filter ${bad}`);
      }
    });

    it('Walk: all blobs, filters labels.k==v, labels.k, digest==, size==, OR; bad filter', async ({ store, ctx, containerd16 }) => {
      const blobs = [createContent(10), createContent(20), createContent(30)];
      const labels: Record<string, string>[] = [{ k: 'v', x: '1' }, { k: 'other' }, {}];
      for (const [i, b] of blobs.entries()) {
        await writeBlob(ctx, store, `walk-${i}`, Readable.from([b.data]), { digest: b.digest, size: b.data.length }, { labels: labels[i] });
      }
      const d = blobs.map((b) => b.digest);
      assert.deepEqual(await collectWalk(store, ctx), [...d].sort());
      assert.deepEqual(await collectWalk(store, ctx, []), [...d].sort());
      assert.deepEqual(await collectWalk(store, ctx, ['labels.k==v']), [d[0]]);
      assert.deepEqual(await collectWalk(store, ctx, ['labels.k']), [d[0], d[1]].sort());
      assert.deepEqual(await collectWalk(store, ctx, ['labels."x"==1']), [d[0]]);
      assert.deepEqual(await collectWalk(store, ctx, [`digest==${d[2]}`]), [d[2]]);
      assert.deepEqual(await collectWalk(store, ctx, ['size==20']), containerd16 ? [] : [d[1]]);
      assert.deepEqual(await collectWalk(store, ctx, ['labels.k==v', `digest==${d[2]}`]), [d[0], d[2]].sort());
      assert.deepEqual(await collectWalk(store, ctx, ['labels.k==v,labels.x==2']), []);
      assert.deepEqual(await collectWalk(store, ctx, ['labels.nope']), []);
      // The callback sees full infos.
      const infos: Info[] = [];
      await store.walk(ctx, (info) => { infos.push(info); }, [`digest==${d[0]}`]);
      assert.equal(infos.length, 1);
      assert.equal(infos[0].size, 10);
      assert.deepEqual(infos[0].labels, labels[0]);
      // An error from the callback stops the walk and propagates.
      await assert.rejects(store.walk(ctx, () => { throw new Error('stop'); }), /stop/);
      for (const bad of ['labels.', 'digest==', 'labels.k=v']) {
        await rejectsWith(collectWalk(store, ctx, [bad]), isInvalidArgument, `bad filter ${bad}`);
      }
    });

    it('ReaderAt: random reads, stream ranges, EOF, NotFound', async ({ store, ctx }) => {
      const size = 300_000;
      const { data, digest } = createContent(size);
      await writeBlob(ctx, store, 'reader', Readable.from([data]), { digest, size });
      const ra = await store.readerAt(ctx, { digest });
      try {
        assert.equal(ra.size, size);
        let x = 12345;
        const rnd = (n: number) => {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          return x % n;
        };
        for (let i = 0; i < 50; i++) {
          const off = rnd(size);
          const len = 1 + rnd(20_000);
          const buf = Buffer.alloc(len);
          const n = await ra.readAt(buf, off);
          const want = Math.min(len, size - off);
          assert.ok(n > 0 && n <= want, `readAt(${len} @ ${off}) returned ${n}`);
          assert.ok(buf.subarray(0, n).equals(data.subarray(off, off + n)), `readAt(${len} @ ${off}) bytes`);
        }
        // Reads at or past the end return 0.
        assert.equal(await ra.readAt(Buffer.alloc(10), size), 0);
        assert.equal(await ra.readAt(Buffer.alloc(10), size + 100), 0);
        // A read crossing the end is short.
        const tail = Buffer.alloc(100);
        assert.equal(await ra.readAt(tail, size - 40), 40);
        assert.ok(tail.subarray(0, 40).equals(data.subarray(size - 40)));

        assert.ok((await readStream(ra.stream())).equals(data), 'whole stream');
        assert.ok((await readStream(ra.stream({ offset: 1000 }))).equals(data.subarray(1000)), 'stream from offset');
        assert.ok((await readStream(ra.stream({ offset: 1000, length: 5000 }))).equals(data.subarray(1000, 6000)), 'stream range');
        assert.ok((await readStream(ra.stream({ length: 1 }))).equals(data.subarray(0, 1)), 'first byte');
        assert.ok((await readStream(ra.stream({ offset: size - 1, length: 1 }))).equals(data.subarray(size - 1)), 'last byte');
        assert.equal((await readStream(ra.stream({ offset: 10, length: 0 }))).length, 0, 'empty range');
        assert.ok((await readStream(ra.stream({ offset: size - 10, length: 100 }))).equals(data.subarray(size - 10)), 'range past the end');
        // Several streams of one reader at once.
        const [a, b] = await Promise.all([readStream(ra.stream({ offset: 0, length: 150_000 })), readStream(ra.stream({ offset: 150_000 }))]);
        assert.ok(Buffer.concat([a, b]).equals(data), 'two concurrent streams');
        // An aborted stream errors.
        const ac = new AbortController();
        const s = ra.stream({ signal: ac.signal });
        ac.abort();
        await assert.rejects(readStream(s));
      } finally {
        await ra.close();
      }
      await rejectsWith(store.readerAt(ctx, { digest: createContent(5).digest }), isNotFound, 'readerAt of a missing blob');
    });

    it('Delete: info/readerAt/walk NotFound afterwards; delete twice NotFound; re-ingest works', async ({ store, ctx, containerd16 }) => {
      const a = createContent(100);
      const b = createContent(100);
      await writeBlob(ctx, store, 'del-a', Readable.from([a.data]), { digest: a.digest });
      await writeBlob(ctx, store, 'del-b', Readable.from([b.data]), { digest: b.digest });
      await store.delete(ctx, a.digest);
      await rejectsWith(store.info(ctx, a.digest), isNotFound, 'info after delete');
      await rejectsWith(store.readerAt(ctx, { digest: a.digest }), isNotFound, 'readerAt after delete');
      assert.deepEqual(await collectWalk(store, ctx), [b.digest]);
      await rejectsWith(store.delete(ctx, a.digest), isNotFound, 'delete twice');
      await rejectsWith(store.delete(ctx, 'sha256:bad'), (e) => isInvalidArgument(e) || isNotFound(e), 'delete of a malformed digest');
      // b untouched
      assert.ok((await readBlob(ctx, store, { digest: b.digest })).equals(b.data));
      // The digest can be ingested again.
      const w = await store.writer(ctx, { ref: 'del-a-again', desc: { digest: a.digest, size: 100 } });
      try {
        const off = (await w.status()).offset;
        if (containerd16 && off === 100) {
          // containerd: the bytes are still in the shared backend (no GC yet).
        } else {
          assert.equal(off, 0);
          await w.write(a.data);
        }
        await w.commit(ctx, 100, a.digest);
      } finally {
        await w.close();
      }
      assert.ok((await readBlob(ctx, store, { digest: a.digest })).equals(a.data));
    });

    it('Commit closes the writer; a closed writer refuses writes', async ({ store, ctx }) => {
      const { data, digest } = createContent(64);
      const w = await store.writer(ctx, { ref: 'closing' });
      await w.write(data);
      await w.commit(ctx, 64, digest);
      await rejectsWith(w.write(Buffer.from('x')), () => true, 'write after commit');
      await w.close(); // no-op
      const w2 = await store.writer(ctx, { ref: 'closed' });
      await w2.close();
      await rejectsWith(w2.write(Buffer.from('x')), () => true, 'write after close');
      // Empty blob.
      const w3 = await store.writer(ctx, { ref: 'empty' });
      await w3.commit(ctx, 0, EMPTY_DIGEST);
      assert.equal((await store.info(ctx, EMPTY_DIGEST)).size, 0);
      assert.equal((await readBlob(ctx, store, { digest: EMPTY_DIGEST })).length, 0);
    });

    it('CrossNamespaceShare: a writer in ns2 for a blob of ns1 needs no bytes', async ({ store, ctx, ctx2 }) => {
      const size = 1000;
      const { data, digest } = createContent(size);
      const ref = `ref-${size}`;
      const t1 = now();
      await writeBlob(ctx, store, ref, Readable.from([data]), { size, digest });
      const w = await store.writer(ctx2!, { ref, desc: { size, digest } });
      try {
        const t2 = now();
        await checkStatus(w, { ref, offset: size, total: size }, digest, t1, t2, t1, t2);
        await w.commit(ctx2!, size, digest);
      } finally {
        await w.close();
      }
      const t3 = now();
      await checkContent(store, ctx, digest, { size }, t1, t3, t1, t3);
      await checkContent(store, ctx2!, digest, { size }, t1, t3, t1, t3);
    }, { needsNS: true });

    it('CrossNamespaceAppend: ns2 extends a blob of ns1 into a new one', async ({ store, ctx, ctx2 }) => {
      const size = 1000;
      const { data, digest } = createContent(size);
      const ref = `ref-${size}`;
      const t1 = now();
      await writeBlob(ctx, store, ref, Readable.from([data]), { size, digest });
      const extra = Buffer.from('appended bytes');
      const b2 = Buffer.concat([data, extra]);
      const d2 = fromBytes(b2);
      const w = await store.writer(ctx2!, { ref, desc: { size, digest } });
      try {
        const t2 = now();
        await checkStatus(w, { ref, offset: size, total: size }, digest, t1, t2, t1, t2);
        await w.write(extra);
        await w.commit(ctx2!, b2.length, d2);
      } finally {
        await w.close();
      }
      const t3 = now();
      await checkContent(store, ctx, digest, { size }, t1, t3, t1, t3);
      await checkContent(store, ctx2!, d2, { size: b2.length }, t1, t3, t1, t3);
      // The appended blob is ns2's only; the original stays ns1's only.
      await rejectsWith(store.info(ctx, d2), isNotFound, 'appended blob in ns1');
      await rejectsWith(store.info(ctx2!, digest), isNotFound, 'original blob in ns2');
    }, { needsNS: true });

    it('CrossNamespaceShare: truncate(0) of a shared writer rewrites from scratch', async ({ store, ctx, ctx2 }) => {
      const { data, digest } = createContent(2000);
      await writeBlob(ctx, store, 'share-trunc', Readable.from([data]), { digest });
      const w = await store.writer(ctx2!, { ref: 'share-trunc', desc: { digest } });
      try {
        assert.equal((await w.status()).offset, 2000);
        await w.truncate(0);
        assert.equal((await w.status()).offset, 0);
        assert.equal(w.digest(), EMPTY_DIGEST);
        await writeChunks(w, data, 500);
        await w.commit(ctx2!, 2000, digest);
      } finally {
        await w.close();
      }
      assert.ok((await readBlob(ctx2!, store, { digest })).equals(data));
    }, { needsNS: true });

    it('Namespace isolation: blobs and ingests are visible only where written', async ({ store, ctx, ctx2 }) => {
      const { data, digest } = createContent(500);
      await writeBlob(ctx, store, 'iso', Readable.from([data]), { digest, size: 500 }, { labels: { ns: 'one' } });
      await rejectsWith(store.info(ctx2!, digest), isNotFound, 'info in ns2');
      await rejectsWith(store.readerAt(ctx2!, { digest }), isNotFound, 'readerAt in ns2');
      await rejectsWith(store.update(ctx2!, { digest, labels: { a: 'b' } }), isNotFound, 'update in ns2');
      await rejectsWith(store.delete(ctx2!, digest), isNotFound, 'delete in ns2');
      assert.deepEqual(await collectWalk(store, ctx2!), []);

      // An active ingest of ns1 is not seen from ns2, and the same ref in ns2 is independent.
      const w1 = await store.writer(ctx, { ref: 'shared-ref' });
      await w1.write(Buffer.from('hello'));
      try {
        assert.deepEqual(await store.listStatuses(ctx2!), []);
        await rejectsWith(store.status(ctx2!, 'shared-ref'), isNotFound, 'status of ns1 ingest from ns2');
        await rejectsWith(store.abort(ctx2!, 'shared-ref'), isNotFound, 'abort of ns1 ingest from ns2');
        const w2 = await store.writer(ctx2!, { ref: 'shared-ref' });
        try {
          assert.equal((await w2.status()).offset, 0, 'same ref in ns2 starts empty');
          await w2.write(Buffer.from('other'));
          assert.equal((await store.status(ctx2!, 'shared-ref')).offset, 5);
        } finally {
          await w2.close();
        }
        assert.equal((await store.status(ctx, 'shared-ref')).offset, 5);
      } finally {
        await w1.close();
      }
      assert.ok(await store.status(ctx, 'shared-ref'), 'ns1 ingest survives ns2 activity');

      // Written in ns2 too: visible there, with ns2's own labels.
      await writeBlob(ctx2!, store, 'iso', Readable.from([data]), { digest, size: 500 }, { labels: { ns: 'two' } });
      assert.deepEqual((await store.info(ctx2!, digest)).labels, { ns: 'two' });
      assert.deepEqual((await store.info(ctx, digest)).labels, { ns: 'one' });
      await store.update(ctx2!, { digest, labels: { changed: 'yes' } });
      assert.deepEqual((await store.info(ctx, digest)).labels, { ns: 'one' }, 'label updates are per namespace');

      // Deleting it in ns1 leaves ns2's copy readable.
      await store.delete(ctx, digest);
      await rejectsWith(store.info(ctx, digest), isNotFound, 'info in ns1 after delete');
      assert.ok((await readBlob(ctx2!, store, { digest })).equals(data));
    }, { needsNS: true });
  });
}
