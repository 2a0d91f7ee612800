/**
 * Crash and concurrency behaviour of the content store across processes:
 * an ingest survives its writer being SIGKILLed (the stale ref lock is taken
 * over), concurrent ingests of one digest end with one blob, and a commit
 * never exposes a partial file in blobs/.
 *
 * Child processes are plain `node --input-type=module -e` scripts importing
 * the compiled store from build/src.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { copyInto, readBlob, writeBlob } from '../../src/content/helpers.js';
import { fromBytes } from '../../src/digest/index.js';
import { isAlreadyExists, isUnavailable } from '../../src/errdefs/index.js';
import { openEmbedded } from '../../src/services/embedded.js';
import { tempDir } from '../util/tmp.js';
import { rejectsWith } from './testsuite.js';

const EMBEDDED = new URL('../../src/services/embedded.js', import.meta.url).href;
const HELPERS = new URL('../../src/content/helpers.js', import.meta.url).href;

interface Child {
  proc: ChildProcess;
  out: string[];
  err: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();

/**
 * Runs a node script as a child. With `unreaped`, the script runs under a
 * parent that never waits for it (sh starts it in the background, then
 * becomes `sleep`): killed, it stays a zombie; proc is then that parent.
 */
function spawnScript(code: string, env: Record<string, string>, unreaped = false): Child {
  const fullEnv = { ...process.env, DIST_EMBEDDED: EMBEDDED, DIST_HELPERS: HELPERS, ...env };
  const proc = unreaped
    ? spawn('sh', ['-c', '"$NODE" --input-type=module -e "$SCRIPT" & exec sleep 300'], {
        env: { ...fullEnv, NODE: process.execPath, SCRIPT: code },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn(process.execPath, ['--input-type=module', '-e', code], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  const out: string[] = [];
  const err: string[] = [];
  let buf = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
    buf += s;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    out.push(...lines);
  });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => err.push(s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal });
    }),
  );
  return { proc, out, err, exited };
}

/** Waits for a stdout line matching re (fails when the child exits first or after 20 s). */
async function waitLine(c: Child, re: RegExp): Promise<RegExpMatchArray> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    for (const l of c.out) {
      const m = l.match(re);
      if (m) return m;
    }
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) {
      throw new Error(`child exited (${c.proc.exitCode ?? c.proc.signalCode}) before ${re}: ${c.err.join('')}`);
    }
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${re}; stdout: ${c.out.join('\n')} stderr: ${c.err.join('')}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** SIGKILLs the child and waits until it is reaped. */
async function killHard(c: Child): Promise<void> {
  c.proc.kill('SIGKILL');
  const r = await c.exited;
  assert.equal(r.signal, 'SIGKILL');
}

async function cleanupChildren(): Promise<void> {
  for (const p of [...children]) {
    p.kill('SIGKILL');
    await new Promise((r) => p.once('exit', r));
  }
}

/** Opens a writer on REF, writes PART bytes of the DATA file, reports, then hangs. */
const WRITE_PART_AND_HANG = `
import { readFileSync } from 'node:fs';
const { openEmbedded } = await import(process.env.DIST_EMBEDDED);
const svc = await openEmbedded(process.env.ROOT);
const data = readFileSync(process.env.DATA);
const ctx = { namespace: process.env.NS };
const w = await svc.content.writer(ctx, { ref: process.env.REF, desc: { digest: process.env.DIGEST, size: data.length } });
console.log('pid ' + process.pid);
const n = Number(process.env.PART);
for (let i = 0; i < n; i += 65536) await w.write(data.subarray(i, Math.min(n, i + 65536)));
console.log('ready ' + (await w.status()).offset);
setInterval(() => {}, 1000);
`;

/** Writes DATA in 64 KiB chunks, pausing a little between them, reporting progress; never commits. */
const WRITE_SLOWLY = `
import { readFileSync } from 'node:fs';
const { openEmbedded } = await import(process.env.DIST_EMBEDDED);
const svc = await openEmbedded(process.env.ROOT);
const data = readFileSync(process.env.DATA);
const ctx = { namespace: process.env.NS };
const w = await svc.content.writer(ctx, { ref: process.env.REF, desc: { digest: process.env.DIGEST, size: data.length } });
for (let i = 0; i < data.length; i += 65536) {
  await w.write(data.subarray(i, Math.min(data.length, i + 65536)));
  console.log('wrote ' + (i + 65536));
  await new Promise((r) => setTimeout(r, 1));
}
console.log('all written');
setInterval(() => {}, 1000);
`;

/** writeBlob of DATA under REF in NS (64 KiB chunks); prints "done" or the error class. */
const WRITE_BLOB = `
import { readFileSync } from 'node:fs';
const { openEmbedded } = await import(process.env.DIST_EMBEDDED);
const { writeBlob } = await import(process.env.DIST_HELPERS);
const svc = await openEmbedded(process.env.ROOT);
const data = readFileSync(process.env.DATA);
async function* chunks() {
  for (let i = 0; i < data.length; i += 65536) {
    yield data.subarray(i, Math.min(data.length, i + 65536));
    await new Promise((r) => setImmediate(r));
  }
}
await writeBlob({ namespace: process.env.NS }, svc.content, process.env.REF, chunks(), { digest: process.env.DIGEST, size: data.length });
const info = await svc.content.info({ namespace: process.env.NS }, process.env.DIGEST);
console.log('done ' + info.size);
await svc.close();
`;

/** Opens a writer for DIGEST and prints the error class it gets. */
const OPEN_WRITER = `
const { openEmbedded } = await import(process.env.DIST_EMBEDDED);
const svc = await openEmbedded(process.env.ROOT);
try {
  const w = await svc.content.writer({ namespace: process.env.NS }, { ref: process.env.REF, desc: process.env.DIGEST ? { digest: process.env.DIGEST } : undefined });
  console.log('opened');
  await w.close();
} catch (err) {
  console.log('error ' + err.code + ' ' + err.message);
}
await svc.close();
`;

/** Polls BLOBS until stopped: reports any file whose size or digest is not the expected one. */
const WATCH_BLOBS = `
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
const dir = process.env.BLOBS;
const want = Number(process.env.SIZE);
let seen = false;
console.log('watching');
for (;;) {
  let names = [];
  try { names = readdirSync(dir); } catch {}
  for (const n of names) {
    let st;
    try { st = statSync(join(dir, n)); } catch { continue; }
    if (st.size !== want) { console.log('partial ' + n + ' ' + st.size); process.exit(3); }
    if (!seen) {
      const hex = createHash('sha256').update(readFileSync(join(dir, n))).digest('hex');
      if (hex !== n) { console.log('corrupt ' + n); process.exit(4); }
      seen = true;
      console.log('seen ' + n);
    }
  }
  await new Promise((r) => setImmediate(r));
}
`;

async function fixture(size: number): Promise<{ root: string; dataPath: string; data: Buffer; digest: string; cleanup: () => Promise<void> }> {
  const { dir, cleanup } = await tempDir('content-crash-');
  const data = randomBytes(size);
  const dataPath = join(dir, 'source.bin');
  writeFileSync(dataPath, data);
  return { root: join(dir, 'root'), dataPath, data, digest: fromBytes(data), cleanup };
}

test('crash: an ingest survives its writer being SIGKILLed; the stale lock is taken over', async () => {
  const f = await fixture(1 << 20);
  try {
    const part = 300_000;
    const ns = 'crash';
    const child = spawnScript(WRITE_PART_AND_HANG, { ROOT: f.root, DATA: f.dataPath, NS: ns, REF: 'crash-ref', DIGEST: f.digest, PART: String(part) });
    const m = await waitLine(child, /^ready (\d+)$/);
    assert.equal(Number(m[1]), part);

    const svc = await openEmbedded(f.root);
    try {
      const ctx = { namespace: ns };
      // While the writer process lives, the ref is locked across processes.
      await rejectsWith(svc.content.writer(ctx, { ref: 'crash-ref' }), isUnavailable, 'writer while the other process holds the ref', /locked/);
      const live = await svc.content.status(ctx, 'crash-ref');
      assert.equal(live.offset, part, 'status of the live ingest from another process');

      await killHard(child);

      const w = await svc.content.writer(ctx, { ref: 'crash-ref', desc: { digest: f.digest, size: f.data.length } });
      try {
        const st = await w.status();
        assert.equal(st.offset, part, 'offset = bytes written before the kill');
        assert.equal(st.total, f.data.length);
        assert.equal(st.expected, f.digest);
        assert.equal(w.digest(), fromBytes(f.data.subarray(0, part)), 'digest of the bytes kept');
        await w.write(f.data.subarray(part));
        await w.commit(ctx, f.data.length, f.digest);
      } finally {
        await w.close();
      }
      const info = await svc.content.info(ctx, f.digest);
      assert.equal(info.size, f.data.length);
      assert.ok((await readBlob(ctx, svc.content, { digest: f.digest })).equals(f.data));
      assert.deepEqual(await svc.content.listStatuses(ctx), []);
    } finally {
      await svc.close();
    }
  } finally {
    await cleanupChildren();
    await f.cleanup();
  }
});

test('crash: a SIGKILLed writer that is still a zombie (its parent has not reaped it) does not hold its lock', async () => {
  const f = await fixture(1 << 20);
  try {
    const part = 200_000;
    const ns = 'crash';
    const child = spawnScript(WRITE_PART_AND_HANG, { ROOT: f.root, DATA: f.dataPath, NS: ns, REF: 'zombie-ref', DIGEST: f.digest, PART: String(part) }, true);
    const pid = Number((await waitLine(child, /^pid (\d+)$/))[1]);
    await waitLine(child, /^ready (\d+)$/);
    const svc = await openEmbedded(f.root);
    try {
      const ctx = { namespace: ns };
      await rejectsWith(svc.content.writer(ctx, { ref: 'zombie-ref' }), isUnavailable, 'writer while the other process holds the ref', /locked/);
      process.kill(pid, 'SIGKILL');
      const state = () => {
        try {
          const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
          return st.slice(st.lastIndexOf(')') + 2).split(' ')[0];
        } catch {
          return undefined;
        }
      };
      const deadline = Date.now() + 10_000;
      while (state() !== 'Z') {
        assert.ok(Date.now() < deadline, `pid ${pid} did not become a zombie (state ${state()})`);
        await new Promise((r) => setTimeout(r, 5));
      }
      // taken over at once: no Unavailable while the zombie waits for its parent
      const w = await svc.content.writer(ctx, { ref: 'zombie-ref', desc: { digest: f.digest, size: f.data.length } });
      try {
        assert.equal((await w.status()).offset, part);
        await w.write(f.data.subarray(part));
        await w.commit(ctx, f.data.length, f.digest);
      } finally {
        await w.close();
      }
      assert.equal(state(), 'Z', 'still a zombie when the lock was taken over');
      assert.equal((await svc.content.info(ctx, f.digest)).size, f.data.length);
    } finally {
      await svc.close();
    }
  } finally {
    await cleanupChildren();
    await f.cleanup();
  }
});

test('crash: killed at an arbitrary point mid-stream, the ingest resumes by skipping what is on disk', async () => {
  const f = await fixture(8 << 20);
  try {
    const ns = 'crash';
    const child = spawnScript(WRITE_SLOWLY, { ROOT: f.root, DATA: f.dataPath, NS: ns, REF: 'mid', DIGEST: f.digest });
    await waitLine(child, /^wrote (1[0-9]{6}|[2-9][0-9]{6})$/); // past 1 MB
    await killHard(child);
    assert.ok(!child.out.includes('all written'), 'killed before the end');
    // Nothing partial was published.
    const blobs = join(f.root, 'content', 'blobs', 'sha256');
    assert.deepEqual(existsSync(blobs) ? readdirSync(blobs) : [], []);

    const svc = await openEmbedded(f.root);
    try {
      const ctx = { namespace: ns };
      const before = await svc.content.status(ctx, 'mid');
      assert.ok(before.offset >= 1_000_000 && before.offset < f.data.length, `offset ${before.offset}`);
      assert.equal(before.offset % 65536, 0, 'whole chunks on disk');
      const w = await svc.content.writer(ctx, { ref: 'mid', desc: { digest: f.digest, size: f.data.length } });
      try {
        assert.equal((await w.status()).offset, before.offset);
        await copyInto(ctx, w, Readable.from([f.data.subarray(0, 3 << 20), f.data.subarray(3 << 20)]), f.data.length);
        await w.commit(ctx, f.data.length, f.digest);
      } finally {
        await w.close();
      }
      assert.deepEqual(readdirSync(blobs), [f.digest.slice(7)]);
      assert.ok((await readBlob(ctx, svc.content, { digest: f.digest })).equals(f.data));
    } finally {
      await svc.close();
    }
  } finally {
    await cleanupChildren();
    await f.cleanup();
  }
});

test('concurrent ingests of one digest under different refs (one process): one commit wins, the other is AlreadyExists', async () => {
  const f = await fixture(1 << 20);
  try {
    const svc = await openEmbedded(f.root);
    try {
      const ctx = { namespace: 'conc' };
      const w1 = await svc.content.writer(ctx, { ref: 'r1', desc: { size: f.data.length } });
      const w2 = await svc.content.writer(ctx, { ref: 'r2', desc: { size: f.data.length } });
      for (let i = 0; i < f.data.length; i += 100_000) {
        const c = f.data.subarray(i, i + 100_000);
        await Promise.all([w1.write(c), w2.write(c)]);
      }
      const results = await Promise.allSettled([w1.commit(ctx, f.data.length, f.digest), w2.commit(ctx, f.data.length, f.digest)]);
      const ok = results.filter((r) => r.status === 'fulfilled');
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(ok.length, 1, 'one commit succeeds');
      assert.equal(failed.length, 1);
      assert.ok(isAlreadyExists(failed[0].reason), `the other is AlreadyExists: ${failed[0].reason}`);
      assert.deepEqual(readdirSync(join(f.root, 'content', 'blobs', 'sha256')), [f.digest.slice(7)]);
      assert.deepEqual(readdirSync(join(f.root, 'content', 'ingest')), [], 'both ingests cleaned up');
      assert.deepEqual(await svc.content.listStatuses(ctx), []);
      // writeBlob of the same digest under yet another ref succeeds without writing.
      await writeBlob(ctx, svc.content, 'r3', Readable.from([f.data]), { digest: f.digest, size: f.data.length });
      await rejectsWith(svc.content.writer(ctx, { ref: 'r4', desc: { digest: f.digest } }), isAlreadyExists, 'writer for a present digest');
    } finally {
      await svc.close();
    }
  } finally {
    await f.cleanup();
  }
});

test('concurrent ingests of one digest in two processes (same and different namespaces) both succeed, one blob on disk', async () => {
  const f = await fixture(4 << 20);
  try {
    const common = { ROOT: f.root, DATA: f.dataPath, DIGEST: f.digest };
    // Create the database first so the children do not race on the migration.
    await (await openEmbedded(f.root)).close();
    const kids = [
      spawnScript(WRITE_BLOB, { ...common, NS: 'one', REF: 'ref-a' }),
      spawnScript(WRITE_BLOB, { ...common, NS: 'one', REF: 'ref-b' }),
      spawnScript(WRITE_BLOB, { ...common, NS: 'two', REF: 'ref-a' }),
    ];
    const exits = await Promise.all(kids.map((k) => k.exited));
    for (const [i, e] of exits.entries()) {
      assert.equal(e.code, 0, `child ${i} failed: ${kids[i].err.join('')}`);
      assert.deepEqual(kids[i].out, [`done ${f.data.length}`]);
    }
    assert.deepEqual(readdirSync(join(f.root, 'content', 'blobs', 'sha256')), [f.digest.slice(7)], 'one blob on disk');
    assert.deepEqual(readdirSync(join(f.root, 'content', 'ingest')), [], 'no ingest left');
    const svc = await openEmbedded(f.root);
    try {
      for (const ns of ['one', 'two']) {
        assert.equal((await svc.content.info({ namespace: ns }, f.digest)).size, f.data.length);
        assert.deepEqual(await svc.content.listStatuses({ namespace: ns }), []);
      }
      const h = createHash('sha256');
      const ra = await svc.content.readerAt({ namespace: 'two' }, { digest: f.digest });
      try {
        for await (const c of ra.stream()) h.update(c as Buffer);
      } finally {
        await ra.close();
      }
      assert.equal(`sha256:${h.digest('hex')}`, f.digest);
    } finally {
      await svc.close();
    }
    // Another process asking for a writer of the digest: AlreadyExists; in a third namespace: a shared writer.
    const again = spawnScript(OPEN_WRITER, { ...common, NS: 'one', REF: 'ref-c' });
    await again.exited;
    assert.match(again.out.join('\n'), /^error AlreadyExists content sha256:[0-9a-f]{64}: already exists$/);
    const third = spawnScript(OPEN_WRITER, { ...common, NS: 'three', REF: 'ref-c' });
    await third.exited;
    assert.deepEqual(third.out, ['opened']);
  } finally {
    await cleanupChildren();
    await f.cleanup();
  }
});

test('commit is atomic: a concurrent observer never sees a partial or wrong file in blobs/', async () => {
  const f = await fixture(16 << 20);
  try {
    const svc = await openEmbedded(f.root);
    const blobs = join(f.root, 'content', 'blobs', 'sha256');
    const watcher = spawnScript(WATCH_BLOBS, { BLOBS: blobs, SIZE: String(f.data.length) });
    try {
      await waitLine(watcher, /^watching$/);
      const ctx = { namespace: 'atomic' };
      // A failed commit (wrong digest) publishes nothing.
      const bad = await svc.content.writer(ctx, { ref: 'bad' });
      await bad.write(f.data.subarray(0, 1000));
      await rejectsWith(bad.commit(ctx, 1000, f.digest), () => true, 'commit with the wrong digest');
      assert.deepEqual(readdirSync(blobs), []);

      const w = await svc.content.writer(ctx, { ref: 'atomic', desc: { digest: f.digest, size: f.data.length } });
      for (let i = 0; i < f.data.length; i += 1 << 20) {
        await w.write(f.data.subarray(i, i + (1 << 20)));
        assert.deepEqual(readdirSync(blobs), [], 'nothing in blobs/ while writing');
      }
      await w.commit(ctx, f.data.length, f.digest);
      await waitLine(watcher, /^seen [0-9a-f]{64}$/);
      assert.equal(watcher.proc.exitCode, null, `watcher saw a bad file: ${watcher.out.join('\n')}`);
    } finally {
      watcher.proc.kill('SIGTERM');
      await watcher.exited;
      await svc.close();
    }
    assert.ok(!watcher.out.some((l) => /^(partial|corrupt)/.test(l)), watcher.out.join('\n'));
  } finally {
    await cleanupChildren();
    await f.cleanup();
  }
});
