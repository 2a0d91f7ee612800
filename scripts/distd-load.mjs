#!/usr/bin/env node
// Load test for distd: N concurrent clients (one gRPC connection each), each
// ingesting B random blobs of S bytes through Content/Write and reading every
// one back through Content/Read, checking each digest. Starts its own distd
// (child process, temp root) unless --address is given; prints throughput and
// the daemon's peak RSS (VmHWM). Exit status 1 on any digest mismatch/error.
//
//   node scripts/distd-load.mjs [--clients 50] [--blobs 100] [--size 65536] [--address SOCK] [--max-rss-mb 200] [--no-read]
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection, bidiCall, serverStreamCall, unaryCall } from '../build/src/api/grpc/client.js';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const CLIENTS = Number(opt('clients', 50));
const BLOBS = Number(opt('blobs', 100));
const SIZE = Number(opt('size', 65536));
const MAX_RSS_MB = Number(opt('max-rss-mb', 200));
const NO_READ = args.includes('--no-read');
const CHUNK = 1 << 20;

const here = new URL('..', import.meta.url).pathname;
let daemon;
let sock = opt('address');
let tmp;
if (!sock) {
  tmp = mkdtempSync(join(tmpdir(), 'distd-load-'));
  sock = join(tmp, 'distd.sock');
  daemon = spawn(process.execPath, [join(here, 'build/src/cmd/distd/main.js'), '--root', join(tmp, 'root'), '--state', tmp, '--address', sock, '--log-level', 'warn'], { stdio: ['ignore', 'inherit', 'inherit'], env: { UV_THREADPOOL_SIZE: '16', ...process.env } });
  for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(sock)) throw new Error('distd did not start');
}

const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;
function rssOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) ?? [])[1] ?? 0) * 1024;
    return { rss: get('VmRSS'), hwm: get('VmHWM') };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}
let peakSampled = 0;
const sampler = daemon ? setInterval(() => (peakSampled = Math.max(peakSampled, rssOf(daemon.pid).rss)), 100) : undefined;
const rssStart = daemon ? rssOf(daemon.pid).rss : 0;

const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function writeBlob(content, ctx, ref, data) {
  const dgst = sha(data);
  const w = bidiCall(content, 'Write', ctx);
  const it = w.responses[Symbol.asyncIterator]();
  const req = async (r) => {
    await w.send(r);
    const n = await it.next();
    if (n.done) throw new Error('write stream ended early');
    return n.value;
  };
  try {
    await req({ action: 'STAT', ref, total: String(data.length), expected: dgst });
    let off = 0;
    while (data.length - off > CHUNK) {
      await req({ action: 'WRITE', offset: String(off), data: data.subarray(off, off + CHUNK) });
      off += CHUNK;
    }
    const c = await req({ action: 'COMMIT', offset: String(off), data: data.subarray(off), total: String(data.length), expected: dgst });
    if (c.digest !== dgst) throw new Error(`commit digest ${c.digest} != ${dgst}`);
    w.end();
    for (;;) if ((await it.next()).done) break;
  } catch (err) {
    w.cancel();
    throw err;
  }
  return dgst;
}

async function readBlob(content, ctx, dgst) {
  const h = createHash('sha256');
  let n = 0;
  for await (const m of serverStreamCall(content, 'Read', { digest: dgst, offset: '0', size: '0' }, ctx)) {
    h.update(m.data);
    n += m.data.length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size: n };
}

let written = 0;
let read = 0;
let errors = 0;
async function client(i) {
  const conn = new Connection(sock);
  const content = conn.client('containerd.services.content.v1.Content');
  const leases = conn.client('containerd.services.leases.v1.Leases');
  const ns = { namespace: 'load' };
  const { lease } = await unaryCall(leases, 'Create', { id: `load-${i}-${process.pid}` }, ns);
  const ctx = { namespace: 'load', lease: lease.id };
  try {
    for (let b = 0; b < BLOBS; b++) {
      const data = randomBytes(SIZE);
      const dgst = await writeBlob(content, ctx, `load-${i}-${b}`, data);
      written += data.length;
      if (NO_READ) continue;
      const back = await readBlob(content, ctx, dgst);
      read += back.size;
      if (back.digest !== dgst || back.size !== data.length) {
        errors++;
        console.error(`client ${i} blob ${b}: read back ${back.digest} (${back.size} B), wrote ${dgst}`);
      }
    }
  } finally {
    await unaryCall(leases, 'Delete', { id: lease.id, sync: false }, ns).catch(() => undefined);
    conn.close();
  }
}

const t0 = performance.now();
const results = await Promise.allSettled(Array.from({ length: CLIENTS }, (_, i) => client(i)));
const secs = (performance.now() - t0) / 1000;
for (const r of results) {
  if (r.status === 'rejected') {
    errors++;
    console.error('client failed:', r.reason?.message ?? r.reason);
  }
}
if (sampler) clearInterval(sampler);
const mb = (n) => n / 1e6;
const { hwm } = daemon ? rssOf(daemon.pid) : { hwm: 0 };
console.log(`clients ${CLIENTS} × blobs ${BLOBS} × ${kb(SIZE)}: ${CLIENTS * BLOBS} blobs in ${secs.toFixed(1)} s`);
console.log(`write ${mb(written).toFixed(0)} MB, read ${mb(read).toFixed(0)} MB: ${(mb(written + read) / secs).toFixed(1)} MB/s combined (${(mb(written) / secs).toFixed(1)} MB/s in, ${(mb(read) / secs).toFixed(1)} MB/s out), ${((CLIENTS * BLOBS) / secs).toFixed(0)} blobs/s`);
if (daemon) console.log(`distd RSS: start ${(rssStart / 2 ** 20).toFixed(0)} MiB, peak ${(Math.max(hwm, peakSampled) / 2 ** 20).toFixed(0)} MiB (VmHWM)`);
console.log(`digest errors: ${errors}`);
let rc = errors ? 1 : 0;
if (daemon && Math.max(hwm, peakSampled) > MAX_RSS_MB * 2 ** 20) {
  console.log(`peak RSS above ${MAX_RSS_MB} MiB`);
  rc = 1;
}
if (daemon) {
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(rc);
