/**
 * A fault-injecting in-process registry proves the transport's edge cases:
 * resumable truncated bodies, retries, Retry-After, redirects without
 * Authorization, size caps without buffering, Content-Length checks,
 * timeouts, error bodies, schema 1, mirrors from hosts.toml.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createResolver, RegistryError, type ResolverOptions } from '../../src/remotes/docker/index.js';
import {
  isUnavailable, isFailedPrecondition, isNotFound, isNotImplemented, isInvalidArgument, isDeadlineExceeded, isCanceled,
} from '../../src/errdefs/index.js';
import { sha256, MT } from '../util/oci.js';
import { tempDir } from '../util/tmp.js';

const ctx = {};

interface Fault {
  host: string;
  port: number;
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }>;
  close(): Promise<void>;
}

const servers: Fault[] = [];
after(async () => { await Promise.all(servers.map((s) => s.close())); });

async function fault(handler: (req: IncomingMessage, res: ServerResponse, n: number) => unknown): Promise<Fault> {
  const requests: Fault['requests'] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method!, url: req.url!, headers: req.headers });
    Promise.resolve(handler(req, res, requests.length)).catch((err) => { res.destroy(err); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const f: Fault = {
    host: `127.0.0.1:${port}`, port, requests,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
  servers.push(f);
  return f;
}

const opts = (extra: ResolverOptions = {}): ResolverOptions => ({ plainHTTP: true, hostsDir: [], retry: { baseDelayMs: 5, maxDelayMs: 20 }, ...extra });

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Reads until the stream errors; returns what arrived and the error. */
async function readUntilError(r: Readable): Promise<{ data: Buffer; err?: Error }> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of r) chunks.push(c as Buffer);
    return { data: Buffer.concat(chunks) };
  } catch (err) {
    return { data: Buffer.concat(chunks), err: err as Error };
  }
}

const DATA = Buffer.alloc(200_000);
for (let i = 0; i < DATA.length; i++) DATA[i] = (i * 31 + 7) & 0xff;
const DESC = { mediaType: MT.OCILayerGzip, digest: sha256(DATA), size: DATA.length };

function rangeStart(req: IncomingMessage): number {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  return m ? Number(m[1]) : 0;
}

test('truncated body: stream fails Unavailable, caller resumes with offset (Range → 206)', async () => {
  const srv = await fault((req, res, n) => {
    const start = rangeStart(req);
    if (n === 1) {
      // promise everything, send 70 000 bytes, then drop the connection
      res.writeHead(200, { 'content-length': DATA.length, 'content-type': 'application/octet-stream' });
      res.write(DATA.subarray(0, 70_000), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    res.writeHead(206, { 'content-length': DATA.length - start, 'content-range': `bytes ${start}-${DATA.length - 1}/${DATA.length}` });
    res.end(DATA.subarray(start));
  });
  const r = createResolver(opts());
  try {
    const f = await r.fetcher(ctx, `${srv.host}/a/b:t`);
    const first = await readUntilError(await f.fetch(ctx, DESC));
    assert.ok(first.err, 'the broken transfer errors');
    assert.ok(isUnavailable(first.err), String(first.err));
    assert.ok(first.data.length > 0 && first.data.length < DATA.length);
    const rest = await readAll(await f.fetch(ctx, DESC, { offset: first.data.length }));
    assert.equal(sha256(Buffer.concat([first.data, rest])), DESC.digest);
    assert.equal(srv.requests[1]!.headers.range, `bytes=${first.data.length}-`);
  } finally {
    await r.close();
  }
});

test('server ignoring Range (200): the offset is skipped locally; a wrong Content-Range is refused', async () => {
  let badRange = false;
  const srv = await fault((req, res) => {
    if (badRange) {
      res.writeHead(206, { 'content-length': 10, 'content-range': 'bytes 5-14/200000' });
      return res.end(DATA.subarray(5, 15));
    }
    res.writeHead(200, { 'content-length': DATA.length });
    res.end(DATA);
  });
  const r = createResolver(opts());
  try {
    const f = await r.fetcher(ctx, `${srv.host}/a/b:t`);
    const tail = await readAll(await f.fetch(ctx, DESC, { offset: 123_456 }));
    assert.ok(tail.equals(DATA.subarray(123_456)));
    badRange = true;
    await assert.rejects(f.fetch(ctx, DESC, { offset: 100 }), (err: Error) => isFailedPrecondition(err) && /Content-Range/.test(err.message));
  } finally {
    await r.close();
  }
});

test('500 then 200: retried; 503 forever: Unavailable after the retry budget', async () => {
  let mode = 'once';
  const srv = await fault((_req, res, n) => {
    if (mode === 'always' || n === 1) {
      res.writeHead(mode === 'always' ? 503 : 500, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'try later' }] }));
    }
    res.writeHead(200, { 'content-length': DATA.length });
    res.end(DATA);
  });
  const r = createResolver(opts({ retry: { retries: 2, baseDelayMs: 5, maxDelayMs: 10 } }));
  try {
    const f = await r.fetcher(ctx, `${srv.host}/a/b:t`);
    assert.equal(sha256(await readAll(await f.fetch(ctx, DESC))), DESC.digest);
    assert.equal(srv.requests.length, 2);
    mode = 'always';
    await assert.rejects(f.fetch(ctx, DESC), (err: Error) => {
      assert.ok(isUnavailable(err), String(err));
      assert.ok(err instanceof RegistryError && err.status === 503);
      assert.match(err.message, /UNAVAILABLE: try later/);
      return true;
    });
    assert.equal(srv.requests.length, 2 + 3);
  } finally {
    await r.close();
  }
});

test('429 with Retry-After is honoured (and capped)', async () => {
  let retryAfter = '1';
  const srv = await fault((_req, res, n) => {
    if (n % 2 === 1) {
      res.writeHead(429, { 'retry-after': retryAfter });
      return res.end();
    }
    res.writeHead(200, { 'content-length': DATA.length });
    res.end(DATA);
  });
  const r = createResolver(opts());
  try {
    const f = await r.fetcher(ctx, `${srv.host}/a/b:t`);
    let t0 = Date.now();
    await readAll(await f.fetch(ctx, DESC));
    const waited = Date.now() - t0;
    assert.ok(waited >= 950, `waited ${waited} ms`);
    assert.ok(waited < 3000, `waited ${waited} ms`);

    const capped = createResolver(opts({ retry: { maxRetryAfterMs: 100 } }));
    retryAfter = '3600';
    t0 = Date.now();
    await readAll(await (await capped.fetcher(ctx, `${srv.host}/a/b:t`)).fetch(ctx, DESC));
    assert.ok(Date.now() - t0 < 1000);
    await capped.close();
  } finally {
    await r.close();
  }
});

test('a redirect to another host gets no Authorization header', async () => {
  const cdn = await fault((_req, res) => {
    res.writeHead(200, { 'content-length': DATA.length });
    res.end(DATA);
  });
  const reg = await fault((req, res) => {
    if (req.headers.authorization !== 'Basic ' + Buffer.from('u:p').toString('base64')) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="fault"' });
      return res.end();
    }
    res.writeHead(307, { location: `http://${cdn.host}/blob?sig=1` });
    res.end();
  });
  const r = createResolver(opts({ credentials: (h) => (h === reg.host ? { username: 'u', password: 'p' } : undefined) }));
  try {
    const f = await r.fetcher(ctx, `${reg.host}/a/b:t`);
    assert.equal(sha256(await readAll(await f.fetch(ctx, DESC))), DESC.digest);
    assert.equal(reg.requests.length, 2);
    assert.ok(reg.requests[1]!.headers.authorization?.startsWith('Basic '));
    assert.equal(cdn.requests.length, 1);
    assert.equal(cdn.requests[0]!.headers.authorization, undefined);
    assert.equal(cdn.requests[0]!.url, '/blob?sig=1');
  } finally {
    await r.close();
  }
});

test('a 50 MiB "manifest" is refused without buffering it', async () => {
  const total = 50 * 1024 * 1024;
  let sent = 0;
  let withLength = false;
  const srv = await fault((req, res) => {
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-type': MT.OCIManifest }); // no digest, no length: forces a GET
      return res.end();
    }
    res.writeHead(200, { 'content-type': MT.OCIManifest, ...(withLength ? { 'content-length': total } : {}) });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.on('close', () => res.removeAllListeners('drain'));
    pump();
  });
  const r = createResolver(opts());
  try {
    const heapBefore = process.memoryUsage().heapUsed;
    await assert.rejects(r.resolve(ctx, `${srv.host}/big/manifest:latest`), (err: Error) => {
      assert.ok(isFailedPrecondition(err), String(err));
      assert.match(err.message, /byte limit/);
      return true;
    });
    await new Promise((res) => setTimeout(res, 50));
    assert.ok(sent < 16 * 1024 * 1024, `server pushed ${sent} bytes before the client gave up`);
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 32 * 1024 * 1024);

    withLength = true;
    sent = 0;
    await assert.rejects(r.resolve(ctx, `${srv.host}/big/manifest:latest`), (err: Error) => isFailedPrecondition(err) && /52428800 byte manifest/.test(err.message));
    // fetching a manifest descriptor larger than the cap is refused up front
    const f = await r.fetcher(ctx, `${srv.host}/big/manifest:latest`);
    await assert.rejects(f.fetch(ctx, { mediaType: MT.OCIManifest, digest: sha256('x'), size: total }), isFailedPrecondition);
  } finally {
    await r.close();
  }
});

test('wrong Content-Length is detected; a short body is Unavailable; extra bytes are refused', async () => {
  let mode = 'wrong-length';
  const srv = await fault((_req, res) => {
    if (mode === 'wrong-length') {
      res.writeHead(200, { 'content-length': 10 });
      return res.end(DATA.subarray(0, 10));
    }
    if (mode === 'short-chunked') { // no Content-Length: ends early, cleanly
      res.writeHead(200);
      return res.end(DATA.subarray(0, 1000));
    }
    res.writeHead(200); // too long
    res.end(Buffer.concat([DATA, Buffer.from('extra')]));
  });
  const r = createResolver(opts());
  try {
    const f = await r.fetcher(ctx, `${srv.host}/a/b:t`);
    await assert.rejects(f.fetch(ctx, DESC), (err: Error) => isFailedPrecondition(err) && /Content-Length 10/.test(err.message));
    mode = 'short-chunked';
    const short = await readUntilError(await f.fetch(ctx, DESC));
    assert.ok(isUnavailable(short.err), String(short.err));
    assert.match(short.err!.message, /unexpected EOF after 1000 of 200000/);
    mode = 'long';
    const long = await readUntilError(await f.fetch(ctx, DESC));
    assert.ok(isFailedPrecondition(long.err), String(long.err));
  } finally {
    await r.close();
  }
});

test('body idle timeout and cancellation', async () => {
  const srv = await fault((_req, res) => {
    res.writeHead(200, { 'content-length': DATA.length });
    res.write(DATA.subarray(0, 1000)); // then stall
  });
  const r = createResolver(opts({ timeouts: { bodyMs: 200 } }));
  try {
    const f = await r.fetcher(ctx, `${srv.host}/a/b:t`);
    const got = await readUntilError(await f.fetch(ctx, DESC));
    assert.equal(got.data.length, 1000);
    assert.ok(isDeadlineExceeded(got.err), String(got.err));

    const ac = new AbortController();
    const s = await f.fetch({ signal: ac.signal }, DESC);
    setTimeout(() => ac.abort(), 20);
    const c = await readUntilError(s);
    assert.ok(isCanceled(c.err), String(c.err));
  } finally {
    await r.close();
  }
});

test('registry errors: errors[] parsed, body capped at 64 KiB, classes by status', async () => {
  let status = 400;
  const srv = await fault((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    if (status === 400) return res.end(JSON.stringify({ errors: [{ code: 'NAME_INVALID', message: 'invalid repository name', detail: { name: 'x' } }] }));
    res.end(Buffer.alloc(1024 * 1024, 0x41));
  });
  const r = createResolver(opts());
  try {
    const f = await r.fetcher(ctx, `${srv.host}/a/b:t`);
    await assert.rejects(f.fetch(ctx, DESC), (err: Error) => {
      assert.ok(isInvalidArgument(err));
      assert.ok(err instanceof RegistryError);
      assert.deepEqual(err.errors, [{ code: 'NAME_INVALID', message: 'invalid repository name', detail: { name: 'x' } }]);
      assert.equal(err.method, 'GET');
      assert.equal(err.url, `http://${srv.host}/v2/a/b/blobs/${DESC.digest}`);
      assert.match(err.message, /NAME_INVALID: invalid repository name/);
      return true;
    });
    status = 405;
    await assert.rejects(f.fetch(ctx, DESC), (err: Error) => {
      assert.ok(isNotImplemented(err));
      assert.ok(err instanceof RegistryError && err.body.length === 64 * 1024);
      return true;
    });
  } finally {
    await r.close();
  }
});

test('schema 1 manifests are NotImplemented; unknown refs are NotFound naming the ref', async () => {
  const srv = await fault((req, res) => {
    if (req.url!.includes('/old/')) {
      res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'docker-content-digest': sha256('x'), 'content-length': 1 });
      return res.end();
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
  });
  const r = createResolver(opts());
  try {
    await assert.rejects(r.resolve(ctx, `${srv.host}/old/image:1`), (err: Error) => isNotImplemented(err) && /schema 1 manifests are not supported/.test(err.message));
    await assert.rejects(r.resolve(ctx, `${srv.host}/new/image:2`), (err: Error) => isNotFound(err) && err.message === `${srv.host}/new/image:2: not found`);
  } finally {
    await r.close();
  }
});

test('hosts.toml: mirror first (with ?ns= and its header), then the server; capabilities respected', async () => {
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.OCIManifest }));
  const mirror = await fault((req, res) => {
    if (req.url!.includes('/manifests/')) {
      res.writeHead(200, { 'content-type': MT.OCIManifest, 'docker-content-digest': sha256(manifest), 'content-length': manifest.length });
      return res.end(req.method === 'HEAD' ? undefined : manifest);
    }
    res.writeHead(404);
    res.end();
  });
  const origin = await fault((_req, res) => {
    res.writeHead(200, { 'content-length': DATA.length });
    res.end(DATA);
  });
  const { dir, cleanup } = await tempDir();
  try {
    const hd = join(dir, 'certs.d', 'registry.test');
    await mkdir(hd, { recursive: true });
    await writeFile(join(hd, 'hosts.toml'), [
      `server = "http://${origin.host}"`,
      `[host."http://${mirror.host}"]`,
      `  capabilities = ["pull", "resolve"]`,
      `  header = { X-Mirror = "yes" }`,
    ].join('\n'));
    const r = createResolver({ hostsDir: join(dir, 'certs.d'), retry: { retries: 0 } });
    try {
      const { desc } = await r.resolve(ctx, 'registry.test/lib/app:1');
      assert.equal(desc.digest, sha256(manifest));
      assert.equal(mirror.requests[0]!.url, '/v2/lib/app/manifests/1?ns=registry.test');
      assert.equal(mirror.requests[0]!.headers['x-mirror'], 'yes');
      assert.equal(origin.requests.length, 0);
      // blobs: the mirror 404s, the server has it
      const f = await r.fetcher(ctx, 'registry.test/lib/app:1');
      assert.equal(sha256(await readAll(await f.fetch(ctx, DESC))), DESC.digest);
      assert.equal(origin.requests.at(-1)!.url, `/v2/lib/app/blobs/${DESC.digest}?ns=registry.test`);
      // pushes skip the pull-only mirror
      const before = mirror.requests.length;
      const p = await r.pusher(ctx, 'registry.test/lib/app:1');
      await p.push(ctx, DESC).catch(() => undefined);
      assert.equal(mirror.requests.length, before);
      assert.ok(origin.requests.at(-1)!.method === 'HEAD');
    } finally {
      await r.close();
    }
  } finally {
    await cleanup();
  }
});

test('a rejected (expired) bearer token is refreshed once; a fresh token that is refused fails', async () => {
  let issued = 0;
  let accept = 'tok-2';
  const auth = await fault((_req, res) => {
    issued++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: `tok-${issued}`, expires_in: 300 }));
  });
  const reg = await fault((req, res) => {
    if (req.headers.authorization !== `Bearer ${accept}`) {
      const err = req.headers.authorization ? ',error="invalid_token"' : '';
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${auth.host}/token",service="fault",scope="repository:a/b:pull"${err}` });
      return res.end();
    }
    res.writeHead(200, { 'content-length': DATA.length });
    res.end(DATA);
  });
  const r = createResolver(opts());
  try {
    const f = await r.fetcher(ctx, `${reg.host}/a/b:t`);
    // 401 → tok-1 → refused (invalid_token) → one retry only: fails
    await assert.rejects(f.fetch(ctx, DESC), (err: Error) => isFailedPrecondition(err) && /invalid_token/.test(err.message) && err.message.includes(reg.host));
    // the cached tok-1 is rejected → dropped, tok-2 fetched, request retried
    assert.equal(sha256(await readAll(await f.fetch(ctx, DESC))), DESC.digest);
    assert.equal(issued, 2);
    // tok-2 stays cached
    await readAll(await f.fetch(ctx, DESC));
    assert.equal(issued, 2);
    accept = 'tok-3';
    await readAll(await f.fetch(ctx, DESC));
    assert.equal(issued, 3);
  } finally {
    await r.close();
  }
});

test('headers timeout: retried, then DeadlineExceeded', async () => {
  const srv = await fault(() => { /* never answers */ });
  const r = createResolver(opts({ timeouts: { headersMs: 150 }, retry: { retries: 1, baseDelayMs: 5 } }));
  try {
    const t0 = Date.now();
    await assert.rejects(r.resolve(ctx, `${srv.host}/a/b:t`), (err: Error) => isDeadlineExceeded(err) && /Headers Timeout|timeout/i.test(err.message));
    assert.equal(srv.requests.length, 2);
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    await r.close();
  }
});
