/**
 * Garbage collection through the CLI (`bin/dist --root
 * <tmp>`): content ingest/label, leases create/rm --sync, images rm [--sync],
 * dist gc [--dry-run] [--json]. Records the CLI cannot make (images, lease
 * resources) are written through the library between commands.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { GCResult } from '../../src/gc/index.js';
import { openEmbedded, type Embedded } from '../../src/services/embedded.js';
import { tempDir } from '../util/tmp.js';
import { dist, type RunResult } from '../util/cli.js';
import { MT_CONFIG, MT_LAYER, MT_MANIFEST, sha256 } from './fixtures.js';

/** dist on root, embedded whatever the environment says. */
function run(root: string, args: string[], input: Buffer | string = ''): Promise<RunResult> {
  return dist(args, { root, input, env: { CONTAINERD_ADDRESS: '', CONTAINERD_NAMESPACE: '' } });
}

async function ok(root: string, args: string[], input?: Buffer | string): Promise<string> {
  const r = await run(root, args, input);
  assert.equal(r.code, 0, `dist ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Ingests data with `dist content ingest`; returns its digest. */
async function ingest(root: string, data: Buffer | string, ref = `r-${randomBytes(4).toString('hex')}`): Promise<{ digest: string; size: number }> {
  const d = sha256(data);
  await ok(root, ['content', 'ingest', '--expected-digest', d, ref], data);
  return { digest: d, size: Buffer.byteLength(data) };
}

async function contentLs(root: string): Promise<string[]> {
  return (await ok(root, ['content', 'ls', '-q'])).split('\n').filter(Boolean).sort();
}

function blobFiles(root: string): string[] {
  const d = join(root, 'content', 'blobs', 'sha256');
  return existsSync(d) ? readdirSync(d).map((h) => `sha256:${h}`).sort() : [];
}

async function withLib(root: string, fn: (svc: Embedded) => Promise<void>): Promise<void> {
  const svc = await openEmbedded(root, { gc: 'off' });
  try {
    await fn(svc);
  } finally {
    await svc.close();
  }
}

async function withTmp(fn: (root: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await tempDir('gc-cli-');
  try {
    await fn(dir);
  } finally {
    await cleanup();
  }
}

const ctx = { namespace: 'default' };
const SUMMARY = /^(removed|would remove): (\d+) content records, (\d+) blobs \(([^)]+)\), (\d+) snapshots \([^)]+\), (\d+) ingests \([^)]+\), (\d+) expired leases in \d+ ms$/m;

describe('dist gc (CLI)', { concurrency: true }, () => {
  test('gc --dry-run lists and removes nothing; gc removes and reports counts and bytes; --json', () =>
    withTmp(async (root) => {
      const keep = await ingest(root, 'keep me', 'keep');
      await ok(root, ['content', 'label', keep.digest, 'containerd.io/gc.root=always']);
      const a = await ingest(root, randomBytes(1000));
      const b = await ingest(root, randomBytes(2000));

      const dry = await ok(root, ['gc', '--dry-run']);
      const lines = dry.trim().split('\n');
      assert.deepEqual(
        lines.filter((l) => l.startsWith('content\t')).sort(),
        [`content\tdefault/${a.digest}`, `content\tdefault/${b.digest}`].sort(),
      );
      assert.deepEqual(lines.filter((l) => l.startsWith('blobs\t')).sort(), [`blobs\t${a.digest}`, `blobs\t${b.digest}`].sort());
      const m = SUMMARY.exec(dry);
      assert.ok(m, `summary line in ${dry}`);
      assert.equal(m[1], 'would remove');
      assert.equal(m[2], '2');
      assert.equal(m[3], '2');
      assert.equal(m[4], '2.93KiB');
      assert.deepEqual(await contentLs(root), [keep.digest, a.digest, b.digest].sort(), 'dry run removed nothing');
      assert.deepEqual(blobFiles(root), [keep.digest, a.digest, b.digest].sort());

      const jdry = JSON.parse(await ok(root, ['--json', 'gc', '--dry-run'])) as GCResult;
      assert.equal(jdry.dryRun, true);
      assert.equal(jdry.blobs.bytes, 3000);
      assert.deepEqual([...jdry.blobs.items].sort(), [a.digest, b.digest].sort());

      const real = await ok(root, ['gc']);
      const r = SUMMARY.exec(real);
      assert.ok(r, `summary line in ${real}`);
      assert.deepEqual([r[1], r[2], r[3], r[4], r[5], r[6], r[7]], ['removed', '2', '2', '2.93KiB', '0', '0', '0']);
      assert.ok(!real.includes('\t'), 'no item list without --dry-run');
      assert.deepEqual(await contentLs(root), [keep.digest]);
      assert.deepEqual(blobFiles(root), [keep.digest]);

      const j = JSON.parse(await ok(root, ['--json', 'gc'])) as GCResult;
      assert.equal(j.dryRun, false);
      for (const k of ['content', 'blobs', 'snapshots', 'ingests', 'leases'] as const) assert.deepEqual(j[k], { items: [], count: 0, bytes: 0 }, k);
      assert.equal(typeof j.durationMs, 'number');

      // Clearing the root label lets it go.
      await ok(root, ['content', 'label', keep.digest, 'containerd.io/gc.root=']);
      const last = JSON.parse(await ok(root, ['--json', 'gc'])) as GCResult;
      assert.deepEqual(last.blobs.items, [keep.digest]);
      assert.deepEqual(blobFiles(root), []);
    }));

  test('leases: leased content survives gc; leases rm --sync collects it; expired leases are reported', () =>
    withTmp(async (root) => {
      assert.equal((await ok(root, ['leases', 'create', '--id', 'pull'])).trim(), 'pull');
      await ok(root, ['leases', 'create', '--id', 'old', '--expires', '0', 'containerd.io/gc.expire=2000-01-01T00:00:00Z']);
      const held = await ingest(root, randomBytes(500));
      const old = await ingest(root, randomBytes(700));
      await withLib(root, async (svc) => {
        await svc.leases.addResource(ctx, { id: 'pull' }, { type: 'content', id: held.digest });
        await svc.leases.addResource(ctx, { id: 'old' }, { type: 'content', id: old.digest });
      });
      const j = JSON.parse(await ok(root, ['--json', 'gc'])) as GCResult;
      assert.deepEqual(j.leases.items, ['default/old']);
      assert.deepEqual(j.content.items, [`default/${old.digest}`]);
      assert.deepEqual(await contentLs(root), [held.digest]);
      assert.deepEqual((await ok(root, ['leases', 'ls', '-q'])).trim().split('\n'), ['pull']);

      assert.equal((await ok(root, ['leases', 'rm', '--sync', 'pull'])).trim(), 'pull');
      assert.deepEqual(await contentLs(root), []);
      assert.deepEqual(blobFiles(root), []);
    }));

  test('images rm --sync collects the image content; images rm (no --sync) collects at exit', () =>
    withTmp(async (root) => {
      const build = async (tag: string) => {
        const config = await ingest(root, JSON.stringify({ os: 'linux', architecture: 'amd64', tag }));
        const layer = await ingest(root, randomBytes(1500));
        const manifest = await ingest(root, JSON.stringify({ schemaVersion: 2, mediaType: MT_MANIFEST, config: { mediaType: MT_CONFIG, ...config }, layers: [{ mediaType: MT_LAYER, ...layer }] }));
        await ok(root, ['content', 'label', manifest.digest, `containerd.io/gc.ref.content.config=${config.digest}`, `containerd.io/gc.ref.content.l.0=${layer.digest}`]);
        await withLib(root, async (svc) => {
          await svc.images.create(ctx, { name: `example.com/app:${tag}`, target: { mediaType: MT_MANIFEST, ...manifest } });
        });
        return [config.digest, layer.digest, manifest.digest].sort();
      };
      const one = await build('1');
      const two = await build('2');
      const all = [...one, ...two].sort();
      const j = JSON.parse(await ok(root, ['--json', 'gc'])) as GCResult;
      assert.equal(j.content.count, 0, 'everything referenced');
      assert.deepEqual((await ok(root, ['images', 'ls', '-q'])).trim().split('\n'), ['example.com/app:1', 'example.com/app:2']);

      assert.equal((await ok(root, ['images', 'rm', '--sync', 'example.com/app:1'])).trim(), 'example.com/app:1');
      assert.deepEqual(await contentLs(root), two, 'image 1 content collected');
      assert.deepEqual(blobFiles(root), two);
      assert.ok(all.length === 6);

      await ok(root, ['images', 'rm', 'example.com/app:2']); // collected when the CLI closes its root
      assert.deepEqual(await contentLs(root), []);
      assert.deepEqual(blobFiles(root), []);
    }));
});
