// End to end over a real unix socket: our server helper, the Version, Health
// and Introspection services, a fake Content service exercising the handler
// wrappers (namespace rules, errors, streams, cancellation), our client
// helpers, and — when installed — the real `ctr` 1.6.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { lstat, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as errdefs from '../../src/errdefs/index.js';
import type { Ctx } from '../../src/internal/context.js';
import { tempDir } from '../util/tmp.js';
import { serveUnix, type RunningServer } from '../../src/api/grpc/server.js';
import { Connection, bidiCall, normalizeAddress, serverStreamCall, unaryCall } from '../../src/api/grpc/client.js';
import { bidi, serverStream, unary } from '../../src/api/grpc/handlers.js';
import { HealthService } from '../../src/api/services/health.js';
import { buildVersion, versionService } from '../../src/api/services/version.js';
import { introspectionService, type PluginInfo } from '../../src/api/services/introspection.js';

const execFileP = promisify(execFile);
const UUID = '5b0a6f1e-2c4d-4e8f-9a0b-1c2d3e4f5a6b';
const PLUGINS: PluginInfo[] = [
  { type: 'io.containerd.content.v1', id: 'content' },
  { type: 'io.containerd.snapshotter.v1', id: 'native', platforms: [{ os: 'linux', architecture: 'amd64' }] },
  { type: 'io.containerd.snapshotter.v1', id: 'overlayfs', init_err: { code: 2, message: 'no overlay here: skip plugin' } },
];
const CHUNK = 256 * 1024;

let dir: { dir: string; cleanup: () => Promise<void> };
let sock: string;
let running: RunningServer;
let conn: Connection;
const seen: { readAborted?: boolean; slowAborted?: boolean; readSent: number } = { readSent: 0 };

/** A fake Content service: just enough behaviour to drive every wrapper. */
function fakeContent() {
  return {
    Info: unary<{ digest: string }, object>((req, ctx) => {
      if (req.digest !== 'sha256:ok') throw errdefs.notFound(`content digest ${req.digest}`);
      return { info: { digest: req.digest, size: '3', labels: { ns: ctx.namespace!, lease: ctx.lease ?? '' } } };
    }),
    Status: unary<{ ref: string }, object>(async (_req, ctx) => {
      // Waits until the client cancels.
      await new Promise<void>((res) => ctx.signal!.addEventListener('abort', () => res(), { once: true }));
      seen.slowAborted = ctx.signal!.aborted;
      return {};
    }),
    Read: serverStream<{ digest: string; size: string }, object>(async function* (req, ctx) {
      const chunks = Number(req.size);
      try {
        for (let i = 0; i < chunks; i++) {
          seen.readSent = i + 1;
          yield { offset: String(i * CHUNK), data: Buffer.alloc(CHUNK, i % 256) };
        }
        if (req.digest === 'sha256:fail-late') throw errdefs.unavailable('ref x locked');
      } finally {
        seen.readAborted = ctx.signal!.aborted;
      }
    }),
    Write: bidi<{ action: string; ref: string; offset: string; data: Buffer }, object>(async (requests, send) => {
      let offset = 0;
      for await (const req of requests) {
        if (req.action === 'COMMIT') throw errdefs.failedPrecondition(`unexpected commit digest for ${req.ref}`);
        offset += req.data.length;
        await send({ action: req.action, offset: String(offset) });
      }
    }),
  };
}

before(async () => {
  dir = await tempDir('dist-api-');
  sock = join(dir.dir, 'run', 'distd.sock');
  const health = new HealthService(['containerd.services.version.v1.Version']);
  running = await serveUnix(sock, [
    ['grpc.health.v1.Health', health.impl()],
    ['containerd.services.version.v1.Version', versionService()],
    ['containerd.services.introspection.v1.Introspection', introspectionService({ uuid: UUID, plugins: PLUGINS })],
    ['containerd.services.content.v1.Content', fakeContent()],
  ]);
  conn = new Connection(sock);
  await conn.ready();
});

after(async () => {
  conn?.close();
  await running?.stop(2000);
  await dir?.cleanup();
});

test('socket: unix:// address, mode 0660', async () => {
  assert.equal(running.address, `unix://${sock}`);
  assert.equal(normalizeAddress(sock), running.address);
  assert.equal(normalizeAddress(`unix://${sock}`), running.address);
  const st = await lstat(sock);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o660);
});

test('Version/Version answers package.json version and the git revision', async () => {
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8'));
  const v = await unaryCall<object, { version: string; revision: string }>(conn.client('containerd.services.version.v1.Version'), 'Version', {});
  assert.equal(v.version, pkg.version);
  assert.deepEqual(v, buildVersion());
  if (existsSync(new URL('../../../.git', import.meta.url))) assert.match(v.revision, /^[0-9a-f]{40}$/);
});

test('Health/Check: SERVING for the server and known services, NotFound otherwise', async () => {
  const h = conn.client('grpc.health.v1.Health');
  assert.deepEqual(await unaryCall(h, 'Check', { service: '' }), { status: 'SERVING' });
  assert.deepEqual(await unaryCall(h, 'Check', { service: 'containerd.services.version.v1.Version' }), { status: 'SERVING' });
  await assert.rejects(unaryCall(h, 'Check', { service: 'nope' }), (e: Error) => errdefs.isNotFound(e) && /unknown service/.test(e.message));
});

test('Health/Watch: current status first, stream ends when the client stops reading', async () => {
  const h = conn.client('grpc.health.v1.Health');
  for await (const r of serverStreamCall<object, { status: string }>(h, 'Watch', { service: 'unknown.Svc' })) {
    assert.deepEqual(r, { status: 'SERVICE_UNKNOWN' });
    break;
  }
});

test('Introspection: Server UUID, Plugins with type/id filters', async () => {
  const c = conn.client('containerd.services.introspection.v1.Introspection');
  assert.deepEqual(await unaryCall(c, 'Server', {}), { uuid: UUID });
  const all = await unaryCall<object, { plugins: any[] }>(c, 'Plugins', { filters: [] });
  assert.deepEqual(all.plugins.map((p) => p.id), ['content', 'native', 'overlayfs']);
  assert.deepEqual(all.plugins[1].platforms, [{ os: 'linux', architecture: 'amd64', variant: '' }]);
  assert.equal(all.plugins[2].init_err.message, 'no overlay here: skip plugin');
  assert.equal(all.plugins[0].init_err, null);
  const snaps = await unaryCall<object, { plugins: any[] }>(c, 'Plugins', { filters: ['type==io.containerd.snapshotter.v1'] });
  assert.deepEqual(snaps.plugins.map((p) => p.id), ['native', 'overlayfs']);
  const either = await unaryCall<object, { plugins: any[] }>(c, 'Plugins', { filters: ['id==content', 'id==native'] });
  assert.deepEqual(either.plugins.map((p) => p.id), ['content', 'native']);
  await assert.rejects(unaryCall(c, 'Plugins', { filters: ['type=='] }), (e: Error) => errdefs.isInvalidArgument(e));
});

test('namespaced calls: header required, validated, lease passed through', async () => {
  const c = conn.client('containerd.services.content.v1.Content');
  await assert.rejects(unaryCall(c, 'Info', { digest: 'sha256:ok' }, {}), (e: Error) => {
    assert.ok(errdefs.isFailedPrecondition(e));
    assert.equal(e.message, 'namespace is required: failed precondition');
    return true;
  });
  await assert.rejects(unaryCall(c, 'Info', { digest: 'sha256:ok' }, { namespace: 'bad/ns' }), (e: Error) => {
    assert.ok(errdefs.isInvalidArgument(e));
    assert.match(e.message, /^namespace validation: identifier "bad\/ns" must match .*: invalid argument$/);
    return true;
  });
  const r = await unaryCall<object, { info: { labels: Record<string, string> } }>(c, 'Info', { digest: 'sha256:ok' }, { namespace: 'ns1', lease: 'lease-7' });
  assert.deepEqual(r.info.labels, { ns: 'ns1', lease: 'lease-7' });
});

test('errors cross the wire with class and containerd message intact', async () => {
  const c = conn.client('containerd.services.content.v1.Content');
  await assert.rejects(unaryCall(c, 'Info', { digest: 'sha256:missing' }, { namespace: 'default' }), (e: errdefs.DistError) => {
    assert.ok(errdefs.isNotFound(e));
    assert.equal(e.message, 'content digest sha256:missing: not found');
    assert.equal((e.cause as grpc.ServiceError).code, grpc.status.NOT_FOUND);
    return true;
  });
  // A method the server does not implement maps to NotImplemented.
  await assert.rejects(unaryCall(c, 'Abort', { ref: 'x' }, { namespace: 'default' }), (e: Error) => errdefs.isNotImplemented(e));
  // A service the server does not have at all, likewise.
  await assert.rejects(unaryCall(conn.client('containerd.services.leases.v1.Leases'), 'List', {}, { namespace: 'default' }), (e: Error) => errdefs.isNotImplemented(e));
});

test('server stream: all chunks in order; an error after data reaches the client', async () => {
  const c = conn.client('containerd.services.content.v1.Content');
  let n = 0;
  for await (const m of serverStreamCall<object, { offset: string; data: Buffer }>(c, 'Read', { digest: 'sha256:a', size: '40' }, { namespace: 'default' })) {
    assert.equal(m.offset, String(n * CHUNK));
    assert.equal(m.data.length, CHUNK);
    assert.equal(m.data[0], n % 256);
    n++;
  }
  assert.equal(n, 40);
  let got = 0;
  await assert.rejects(
    (async () => {
      for await (const _ of serverStreamCall(c, 'Read', { digest: 'sha256:fail-late', size: '3' }, { namespace: 'default' })) got++;
    })(),
    (e: Error) => errdefs.isUnavailable(e) && e.message === 'ref x locked: unavailable',
  );
  assert.equal(got, 3);
});

test('server stream: backpressure holds the producer; breaking out cancels it', async () => {
  const c = conn.client('containerd.services.content.v1.Content');
  seen.readAborted = undefined;
  seen.readSent = 0;
  const total = 4000; // ~1 GiB if the server did not wait for the reader
  for await (const _ of serverStreamCall(c, 'Read', { digest: 'sha256:big', size: String(total) }, { namespace: 'default' })) {
    await new Promise((r) => setTimeout(r, 50)); // slow reader
    break;
  }
  for (let i = 0; i < 100 && seen.readAborted === undefined; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(seen.readAborted, true, 'producer saw its signal abort');
  assert.ok(seen.readSent < 200, `producer stopped early (sent ${seen.readSent} of ${total})`);
});

test('bidi stream: request/response pairs, then an error status', async () => {
  const c = conn.client('containerd.services.content.v1.Content');
  const call = bidiCall<object, { action: string; offset: string }>(c, 'Write', { namespace: 'default' });
  const it = call.responses[Symbol.asyncIterator]();
  await call.send({ action: 'STAT', ref: 'r1' });
  assert.deepEqual((await it.next()).value, { action: 'STAT', offset: '0', started_at: null, updated_at: null, total: '0', digest: '' });
  await call.send({ action: 'WRITE', ref: 'r1', offset: '0', data: Buffer.from('hello') });
  assert.equal((await it.next()).value!.offset, '5');
  await call.send({ action: 'COMMIT', ref: 'r1' });
  await assert.rejects(it.next(), (e: Error) => errdefs.isFailedPrecondition(e) && e.message === 'unexpected commit digest for r1: failed precondition');
});

test('bidi stream: half-close ends the handler normally', async () => {
  const c = conn.client('containerd.services.content.v1.Content');
  const call = bidiCall<object, { offset: string }>(c, 'Write', { namespace: 'default' });
  await call.send({ action: 'WRITE', ref: 'r2', data: Buffer.from('abc') });
  call.end();
  const out = [];
  for await (const r of call.responses) out.push(r.offset);
  assert.deepEqual(out, ['3']);
});

test('client AbortSignal cancels the call; the handler\'s Ctx.signal aborts', async () => {
  const c = conn.client('containerd.services.content.v1.Content');
  seen.slowAborted = undefined;
  const ac = new AbortController();
  const ctx: Ctx = { namespace: 'default', signal: ac.signal };
  const p = unaryCall(c, 'Status', { ref: 'slow' }, ctx);
  setTimeout(() => ac.abort(), 100);
  await assert.rejects(p, (e: Error) => errdefs.isCanceled(e));
  for (let i = 0; i < 100 && seen.slowAborted === undefined; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(seen.slowAborted, true);
});

test('a second server on a live socket is refused; a stale socket is replaced', async () => {
  await assert.rejects(serveUnix(sock, []), (e: Error) => errdefs.isFailedPrecondition(e) && /already listening/.test(e.message));
  // A socket file left behind by a killed process.
  const stale = join(dir.dir, 'stale.sock');
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  await new Promise((r) => child.on('exit', r));
  assert.ok((await lstat(stale)).isSocket());
  const s2 = await serveUnix(stale, [['containerd.services.version.v1.Version', versionService({ version: 'v9', revision: 'r' })]]);
  const c2 = new Connection(stale);
  try {
    assert.deepEqual(await unaryCall(c2.client('containerd.services.version.v1.Version'), 'Version', {}), { version: 'v9', revision: 'r' });
  } finally {
    c2.close();
    await s2.stop(1000);
  }
  assert.equal(existsSync(stale), false, 'stop() removes the socket');
});

const ctr = ['/usr/bin/ctr', '/usr/local/bin/ctr'].find((p) => existsSync(p));

test('ctr version prints our server version and UUID', { skip: ctr ? false : 'ctr not installed (Debian package containerd)' }, async () => {
  const { stdout } = await execFileP(ctr!, ['--address', sock, 'version'], { timeout: 20_000 });
  const v = buildVersion();
  assert.match(stdout, /Server:\n/);
  assert.ok(stdout.includes(`  Version:  ${v.version}\n`), stdout);
  assert.ok(stdout.includes(`  Revision: ${v.revision}\n`), stdout);
  assert.ok(stdout.includes(`  UUID: ${UUID}\n`), stdout);
});

test('ctr plugins ls lists the plugins handed in', { skip: ctr ? false : 'ctr not installed' }, async () => {
  const { stdout } = await execFileP(ctr!, ['--address', sock, 'plugins', 'ls'], { timeout: 20_000 });
  const rows = stdout.trim().split('\n').map((l) => l.trim().split(/\s+/));
  assert.deepEqual(rows[0], ['TYPE', 'ID', 'PLATFORMS', 'STATUS']);
  assert.deepEqual(rows.slice(1), [
    ['io.containerd.content.v1', 'content', '-', 'ok'],
    ['io.containerd.snapshotter.v1', 'native', 'linux/amd64', 'ok'],
    ['io.containerd.snapshotter.v1', 'overlayfs', '-', 'skip'],
  ]);
});
