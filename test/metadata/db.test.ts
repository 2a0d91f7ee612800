import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import { readBlob, writeBlob } from '../../src/content/helpers.js';
import { fromBytes } from '../../src/digest/index.js';
import { MetadataDB, SCHEMA_VERSION } from '../../src/metadata/db.js';
import { openEmbedded } from '../../src/services/embedded.js';
import { tempDir } from '../util/tmp.js';
import { digestOf } from './fixtures-meta.js';

test('db: a fresh database gets the current schema version and tables; reopening migrates nothing', async () => {
  const { dir, cleanup } = await tempDir('metadata-db-');
  try {
    const m = MetadataDB.open(dir);
    assert.ok(SCHEMA_VERSION >= 1);
    assert.equal(m.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.equal(m.db.pragma('journal_mode', { simple: true }), 'wal');
    const tables = (m.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    for (const t of ['content', 'images', 'ingests', 'lease_resources', 'leases', 'namespaces']) assert.ok(tables.includes(t), `table ${t}`);
    m.close();
    m.close(); // idempotent
    assert.ok(existsSync(join(dir, 'metadata.db')));
    const again = MetadataDB.open(dir);
    assert.equal(again.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    again.close();
  } finally {
    await cleanup();
  }
});

test('db: processes opening a new root at the same time migrate it once (the version is read under the write lock)', async () => {
  const { dir, cleanup } = await tempDir('meta-db-race-');
  try {
    const url = new URL('../../src/metadata/db.js', import.meta.url).href;
    // every child opens the same new root as soon as all of them are up
    const go = Date.now() + 600;
    const script = `const { MetadataDB } = await import(${JSON.stringify(url)});
      while (Date.now() < ${go}) {}
      const m = MetadataDB.open(process.argv[1]);
      console.log(m.db.pragma('user_version', { simple: true }));
      m.close();`;
    const runs = await Promise.all(
      Array.from({ length: 6 }, () =>
        new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
          const p = spawn(process.execPath, ['--input-type=module', '-e', script, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          p.stdout.on('data', (b: Buffer) => (out += b));
          p.stderr.on('data', (b: Buffer) => (err += b));
          p.on('close', (code) => resolve({ code, out, err }));
        }),
      ),
    );
    for (const r of runs) {
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out.trim(), String(SCHEMA_VERSION));
    }
    const m = MetadataDB.open(dir);
    try {
      assert.equal(m.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    } finally {
      m.close();
    }
  } finally {
    await cleanup();
  }
});

test('db: a database from a newer dist is refused', async () => {
  const { dir, cleanup } = await tempDir('metadata-db-');
  try {
    MetadataDB.open(dir).close();
    const raw = new Database(join(dir, 'metadata.db'));
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    assert.throws(() => MetadataDB.open(dir), /newer than this dist/);
  } finally {
    await cleanup();
  }
});

test('db: a database at an older version is upgraded in place, keeping its rows', async () => {
  const { dir, cleanup } = await tempDir('metadata-db-');
  try {
    // Build a version-1 database by hand: the v1 tables only.
    MetadataDB.open(dir).close();
    const raw = new Database(join(dir, 'metadata.db'));
    raw.prepare("INSERT INTO namespaces(name, labels, created_at) VALUES ('old', '{\"a\":\"b\"}', '1')").run();
    if (SCHEMA_VERSION >= 2) {
      raw.exec('DROP TABLE snapshots; DROP TABLE containers;');
      raw.pragma('user_version = 1');
    }
    raw.close();
    const svc = await openEmbedded(dir);
    try {
      assert.equal(svc.db.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      assert.deepEqual(await svc.namespaces.labels({}, 'old'), { a: 'b' });
    } finally {
      await svc.close();
    }
  } finally {
    await cleanup();
  }
});

test('db: everything survives close and reopen (namespaces, leases and resources, images, content, ingests)', async () => {
  const { dir, cleanup } = await tempDir('metadata-db-');
  try {
    const ctx = { namespace: 'persist' };
    const data = Buffer.from('persisted blob');
    const d = fromBytes(data);
    let svc = await openEmbedded(dir);
    await svc.namespaces.create({}, 'persist', { owner: 'me' });
    const lease = await svc.leases.create(ctx, { id: 'keep', labels: { x: 'y' } });
    await writeBlob({ ...ctx, lease: lease.id }, svc.content, 'blob', Readable.from([data]), { digest: d }, { labels: { l: 'v' } });
    const info = await svc.content.info(ctx, d);
    const img = await svc.images.create(ctx, { name: 'persisted:1', target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf('c'), size: 10 }, labels: { i: 'j' } });
    const w = await svc.content.writer(ctx, { ref: 'half', desc: { size: 10 } });
    await w.write(Buffer.from('12345'));
    await w.close();
    await svc.close();

    svc = await openEmbedded(dir);
    try {
      assert.deepEqual(await svc.namespaces.list({}), ['persist']);
      assert.deepEqual(await svc.namespaces.labels({}, 'persist'), { owner: 'me' });
      const leases = await svc.leases.list(ctx);
      assert.deepEqual(leases, [lease], 'lease with its ns-precision createdAt');
      assert.deepEqual(await svc.leases.listResources(ctx, lease), [{ type: 'content', id: d }]);
      assert.deepEqual(await svc.content.info(ctx, d), info, 'content info with ns-precision timestamps');
      assert.ok((await readBlob(ctx, svc.content, { digest: d })).equals(data));
      assert.deepEqual(await svc.images.get(ctx, 'persisted:1'), img);
      const st = await svc.content.status(ctx, 'half');
      assert.equal(st.offset, 5);
      assert.equal(st.total, 10);
    } finally {
      await svc.close();
    }
  } finally {
    await cleanup();
  }
});
