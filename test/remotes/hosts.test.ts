/**
 * Host configuration: hosts.toml parsing, certs.d lookup, TLS (CA, client
 * certificates, skip_verify) against a real https server.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, readFile, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { configureHosts, parseHostsToml, isLocalhost, createResolver, createLimiter } from '../../src/remotes/docker/index.js';
import { isInvalidArgument, isUnavailable, isCanceled } from '../../src/errdefs/index.js';
import { tempDir } from '../util/tmp.js';
import { dist } from '../util/cli.js';
import { adoptDeferredExtraCerts, extraCertsDeferred } from '../../src/internal/extracerts.js';
import { MT } from '../util/oci.js';

const run = promisify(execFile);
const ctx = {};

test('parseHostsToml: mirrors in file order, then the server; paths, capabilities, ca, client, header', () => {
  const hosts = parseHostsToml(`
server = "https://registry.example.com"
ca = "/etc/ca.pem"

[host."https://mirror-b.example.com:5000"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  header = { X-A = "1", X-B = ["2", "3"] }

[host."http://mirror-a.example.com/sub/path"]
  capabilities = ["pull"]
  client = [["c.cert", "c.key"], "both.pem"]
  ca = ["a.crt", "/abs/b.crt"]

[host."mirror-c.example.com/custom"]
  override_path = true
`, '/etc/containerd/certs.d/docker.io');
  assert.equal(hosts.length, 4);
  assert.deepEqual(hosts.map((h) => [h.scheme, h.host, h.path]), [
    ['https', 'mirror-b.example.com:5000', '/v2'],
    ['http', 'mirror-a.example.com', '/sub/path/v2'],
    ['https', 'mirror-c.example.com', '/custom'],
    ['https', 'registry.example.com', '/v2'],
  ]);
  assert.deepEqual(hosts[0]!.capabilities, ['pull', 'resolve']);
  assert.equal(hosts[0]!.skipVerify, true);
  assert.deepEqual(hosts[0]!.header, { 'X-A': ['1'], 'X-B': ['2', '3'] });
  assert.deepEqual(hosts[1]!.clientPairs, [
    ['/etc/containerd/certs.d/docker.io/c.cert', '/etc/containerd/certs.d/docker.io/c.key'],
    ['/etc/containerd/certs.d/docker.io/both.pem', undefined],
  ]);
  assert.deepEqual(hosts[1]!.caFiles, ['/etc/containerd/certs.d/docker.io/a.crt', '/abs/b.crt']);
  assert.deepEqual(hosts[3]!.caFiles, ['/etc/ca.pem']);
  assert.deepEqual(hosts[3]!.capabilities, ['pull', 'resolve', 'push']);

  assert.throws(() => parseHostsToml('capabilities = ["pull", "fly"]', '/d'), (e: Error) => isInvalidArgument(e) && /unknown capability "fly"/.test(e.message));
  assert.throws(() => parseHostsToml('server = [', '/d'), (e: Error) => isInvalidArgument(e) && /hosts.toml/.test(e.message));
  assert.throws(() => parseHostsToml('skip_verify = "yes"', '/d'), isInvalidArgument);
});

test('configureHosts: a loopback host without configuration is https with an http fallback; other hosts, --plain-http and hosts.toml servers have none', async () => {
  const { dir, cleanup } = await tempDir();
  const ch = configureHosts({ hostsDir: dir });
  const plain = configureHosts({ hostsDir: dir, plainHTTP: true });
  try {
    for (const h of ['localhost:5000', '127.0.0.1:5000', '[::1]:5000', 'localhost']) {
      const [local] = await ch.hosts(h);
      assert.equal(local!.scheme, 'https', h);
      assert.ok(local!.httpFallback, `${h}: http fallback`);
      const [forced] = await plain.hosts(h);
      assert.deepEqual([forced!.scheme, forced!.httpFallback], ['http', undefined], `${h} with plainHTTP`);
    }
    for (const h of ['quay.io', '10.0.0.1:5000', 'docker.io']) assert.equal((await ch.hosts(h))[0]!.httpFallback, undefined, h);
    await mkdir(join(dir, 'localhost_5001_'), { recursive: true });
    await writeFile(join(dir, 'localhost_5001_', 'hosts.toml'), 'server = "https://localhost:5001"\n');
    assert.equal((await ch.hosts('localhost:5001'))[0]!.httpFallback, undefined, 'configured server');
  } finally {
    await ch.close();
    await plain.close();
    await cleanup();
  }
});

test('configureHosts defaults: docker.io → registry-1.docker.io; plainHTTP; host directory names', async () => {
  const { dir, cleanup } = await tempDir();
  const ch = configureHosts({ hostsDir: dir, plainHTTP: (h) => isLocalhost(h) });
  try {
    const [hub] = await ch.hosts('docker.io');
    assert.deepEqual([hub!.scheme, hub!.host, hub!.path], ['https', 'registry-1.docker.io', '/v2']);
    const [local] = await ch.hosts('localhost:5000');
    assert.equal(local!.scheme, 'http');
    const [remote] = await ch.hosts('quay.io');
    assert.equal(remote!.scheme, 'https');

    // "<host>_<port>_" wins over "<host>:<port>"; _default applies to the rest
    await mkdir(join(dir, 'reg.example_5000_'), { recursive: true });
    await writeFile(join(dir, 'reg.example_5000_', 'hosts.toml'), 'server = "http://a.example"\n');
    await mkdir(join(dir, '_default'));
    await writeFile(join(dir, '_default', 'hosts.toml'), '[host."https://mirror.example"]\n capabilities = ["pull"]\n');
    const a = await ch.hosts('reg.example:5000');
    assert.deepEqual(a.map((h) => `${h.scheme}://${h.host}${h.path}`), ['http://a.example/v2']);
    const b = await ch.hosts('other.example');
    assert.deepEqual(b.map((h) => `${h.scheme}://${h.host}`), ['https://mirror.example', 'https://other.example']);
  } finally {
    await ch.close();
    await cleanup();
  }
  assert.ok(isLocalhost('127.0.0.1:5000') && isLocalhost('[::1]:5000') && isLocalhost('localhost') && !isLocalhost('10.0.0.1:5000'));
});

let tls: { dir: string; cleanup: () => Promise<void>; server: Server; host: string; requests: number; sawClientCert: boolean[] };

before(async () => {
  const { dir, cleanup } = await tempDir();
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.crt'),
    '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'client.key'), '-out', join(dir, 'client.cert'),
    '-days', '2', '-subj', '/CN=dist-client']);
  const manifest = JSON.stringify({ schemaVersion: 2 });
  const sawClientCert: boolean[] = [];
  const server = createServer({
    key: await readFile(join(dir, 'server.key')), cert: await readFile(join(dir, 'server.crt')),
    ca: await readFile(join(dir, 'client.cert')), requestCert: true, rejectUnauthorized: false,
  }, (req, res) => {
    tls.requests++;
    const authorized = (req.socket as any).authorized === true;
    sawClientCert.push(authorized);
    res.writeHead(200, { 'content-type': MT.OCIManifest, 'content-length': manifest.length, 'docker-content-digest': 'sha256:' + 'b'.repeat(64) });
    res.end(req.method === 'HEAD' ? undefined : manifest);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  tls = { dir, cleanup, server, host: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests: 0, sawClientCert };
});

after(async () => {
  tls.server.closeAllConnections();
  await new Promise((r) => tls.server.close(r));
  await tls.cleanup();
});

async function certsDir(toml: string | undefined, files: string[] = []): Promise<string> {
  const root = join(tls.dir, `certs.d-${Math.random().toString(16).slice(2)}`);
  const d = join(root, tls.host.replace(':', '_') + '_');
  await mkdir(d, { recursive: true });
  if (toml !== undefined) await writeFile(join(d, 'hosts.toml'), toml);
  for (const f of files) await copyFile(join(tls.dir, f.split('=')[0]!), join(d, f.split('=')[1] ?? f));
  return root;
}

test('TLS: unknown CA fails; hosts.toml ca, skip_verify and client certificates work', async () => {
  const ref = `${tls.host}/lib/app:1`;
  const bare = createResolver({ hostsDir: [], retry: { retries: 0 } });
  await assert.rejects(bare.resolve(ctx, ref), (e: Error) => isUnavailable(e) && /certificate/i.test(e.message));
  await bare.close();

  const cases: Array<[string, string | undefined, string[], boolean]> = [
    ['ca in hosts.toml', `server = "https://${tls.host}"\nca = "server.crt"\n`, ['server.crt'], false],
    ['skip_verify', `server = "https://${tls.host}"\nskip_verify = true\n`, [], false],
    ['client pair', `server = "https://${tls.host}"\nca = "server.crt"\nclient = [["client.cert", "client.key"]]\n`, ['server.crt', 'client.cert', 'client.key'], true],
    ['docker certs.d layout (no hosts.toml)', undefined, ['server.crt=ca.crt', 'client.cert', 'client.key'], true],
  ];
  for (const [name, toml, files, clientCert] of cases) {
    const r = createResolver({ hostsDir: await certsDir(toml, files), retry: { retries: 0 } });
    try {
      const { desc } = await r.resolve(ctx, ref);
      assert.equal(desc.size, JSON.stringify({ schemaVersion: 2 }).length, name);
      assert.equal(tls.sawClientCert.at(-1), clientCert, name);
    } finally {
      await r.close();
    }
  }
});

test('NODE_EXTRA_CA_CERTS: trusted through the launcher, which defers it to the first TLS connection', async () => {
  const ref = `${tls.host}/lib/app:1`;
  const empty = await certsDir('');
  const crt = join(tls.dir, 'server.crt');
  const manifest = JSON.stringify({ schemaVersion: 2 });
  const plain = { NODE_EXTRA_CA_CERTS: '', DIST_EXTRA_CA_CERTS: '' };
  const untrusted = await dist(['fetch-object', '--hosts-dir', empty, ref], { env: plain });
  assert.notEqual(untrusted.code, 0, untrusted.stderr);
  assert.match(untrusted.stderr, /certificate/i);
  const trusted = await dist(['fetch-object', '--hosts-dir', empty, ref], { env: { NODE_EXTRA_CA_CERTS: crt } });
  assert.equal(trusted.code, 0, trusted.stderr);
  assert.equal(trusted.stdout, manifest);
  // with a hosts.toml CA as well (another certificate), the extra ones still count
  const other = await certsDir(`server = "https://${tls.host}"\nca = "client.cert"\n`, ['client.cert']);
  const both = await dist(['fetch-object', '--hosts-dir', other, ref], { env: { NODE_EXTRA_CA_CERTS: crt } });
  assert.equal(both.code, 0, both.stderr);
  assert.equal(both.stdout, manifest);
});

test('HTTPS_PROXY: the registry is reached through the proxy (CONNECT), trusting NODE_EXTRA_CA_CERTS deferred by the launcher', async () => {
  const connects: string[] = [];
  const proxy = createHttpServer();
  proxy.on('connect', (req, client: Socket, head: Buffer) => {
    connects.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const up = connect(Number(port), host!, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(client).pipe(up);
    });
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  try {
    const env = {
      HTTPS_PROXY: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      NO_PROXY: '', no_proxy: '',
      NODE_EXTRA_CA_CERTS: join(tls.dir, 'server.crt'),
    };
    const r = await dist(['fetch-object', '--hosts-dir', await certsDir(''), `${tls.host}/lib/app:1`], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, JSON.stringify({ schemaVersion: 2 }));
    assert.ok(connects.includes(tls.host), `the proxy saw ${JSON.stringify(connects)}`);
  } finally {
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
  }
});

test('adoptDeferredExtraCerts: gives NODE_EXTRA_CA_CERTS back to children; Node-loaded ones are left alone', () => {
  const env: NodeJS.ProcessEnv = { NODE_EXTRA_CA_CERTS: '/own.pem', DIST_EXTRA_CA_CERTS: '/deferred.pem' };
  adoptDeferredExtraCerts(env);
  assert.deepEqual(env, { NODE_EXTRA_CA_CERTS: '/own.pem' });
  assert.equal(extraCertsDeferred(), false);
  const env2: NodeJS.ProcessEnv = { DIST_EXTRA_CA_CERTS: '/deferred.pem' };
  adoptDeferredExtraCerts(env2);
  assert.deepEqual(env2, { NODE_EXTRA_CA_CERTS: '/deferred.pem' });
  assert.equal(extraCertsDeferred(), true);
});

test('limiter: at most n at once, FIFO, cancellable while waiting', async () => {
  const limit = createLimiter(2);
  let active = 0;
  let peak = 0;
  const order: number[] = [];
  const job = (i: number) => limit(async () => {
    active++;
    peak = Math.max(peak, active);
    await new Promise((r) => setTimeout(r, 10));
    order.push(i);
    active--;
    return i;
  });
  const ac = new AbortController();
  const first = [job(1), job(2)];
  const waiting = assert.rejects(limit(async () => 99, ac.signal), isCanceled); // queued: both slots are taken
  ac.abort();
  const results = await Promise.all([...first, job(3), job(4)]);
  await waiting;
  assert.deepEqual(results, [1, 2, 3, 4]);
  assert.equal(peak, 2);
  assert.deepEqual(order, [1, 2, 3, 4]);
});

test('limiter: a call that releases its slot early lets the next one start; releasing twice frees one slot', async () => {
  const limit = createLimiter(1);
  const events: string[] = [];
  let go!: () => void;
  const gate = new Promise<void>((r) => (go = r));
  const a = limit(async (release) => {
    events.push('a start');
    release();
    release(); // idempotent: must not free a slot it does not hold
    await gate;
    events.push('a end');
  });
  const b = limit(async () => {
    events.push('b start');
    await new Promise((r) => setTimeout(r, 5));
    events.push('b end');
  });
  const c = limit(async () => {
    events.push('c start');
  });
  await b;
  assert.deepEqual(events, ['a start', 'b start', 'b end'], 'c waits for b: one slot, released once');
  await c;
  go();
  await a;
  assert.deepEqual(events, ['a start', 'b start', 'b end', 'c start', 'a end']);
});
