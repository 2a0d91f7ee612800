// distd as a daemon (child processes): one daemon per root, SIGTERM drains
// an in-flight Write and closes the database, config file and flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { Connection, bidiCall, unaryCall } from '../../src/api/grpc/client.js';
import { applyToml, defaultConfig, parseDuration } from '../../src/cmd/distd/config.js';
import { isFailedPrecondition } from '../../src/errdefs/index.js';
import { tempDir } from '../util/tmp.js';
import { startTestDaemon } from './util.js';
import { startDaemon } from '../../src/cmd/distd/daemon.js';

const MAIN = new URL('../../src/cmd/distd/main.js', import.meta.url).pathname;

interface Child {
  proc: ChildProcess;
  stderr: () => string;
  exit: Promise<number | null>;
}

function spawnDistd(args: string[]): Child {
  const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = once(proc, 'exit').then(([code]) => code as number | null);
  return { proc, stderr: () => err, exit };
}

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a second daemon on the same root refuses to start with one line', async () => {
  const t = await tempDir('distd-lock-');
  const root = join(t.dir, 'root');
  const first = spawnDistd(['--root', root, '--state', join(t.dir, 'run1')]);
  try {
    await waitFor(() => existsSync(join(t.dir, 'run1', 'distd.sock')) || first.proc.exitCode !== null, 'first daemon');
    assert.equal(first.proc.exitCode, null, first.stderr());
    const second = spawnDistd(['--root', root, '--state', join(t.dir, 'run2')]);
    assert.equal(await second.exit, 1);
    const lines = second.stderr().trim().split('\n');
    assert.equal(lines.length, 1, second.stderr());
    assert.match(lines[0], new RegExp(`^distd: root ${root} is in use by another distd \\(pid ${first.proc.pid}, lock .*distd\\.lock\\)`));
    // In-process too.
    await assert.rejects(startDaemon({ ...defaultConfig(), root, state: join(t.dir, 'run3'), address: join(t.dir, 'run3', 's.sock') }), (e: Error) => isFailedPrecondition(e) && /in use by another distd/.test(e.message));
  } finally {
    first.proc.kill('SIGKILL');
    await first.exit;
  }
  // A lock left by a dead daemon is taken over.
  const third = spawnDistd(['--root', root, '--state', join(t.dir, 'run4')]);
  try {
    await waitFor(() => existsSync(join(t.dir, 'run4', 'distd.sock')) || third.proc.exitCode !== null, 'third daemon');
    assert.equal(third.proc.exitCode, null, third.stderr());
    third.proc.kill('SIGTERM');
    assert.equal(await third.exit, 0);
  } finally {
    if (third.proc.exitCode === null) third.proc.kill('SIGKILL');
    await third.exit;
    await t.cleanup();
  }
});

test('SIGTERM drains an in-flight Write, then closes the database and removes socket and lock', async () => {
  const t = await tempDir('distd-term-');
  const root = join(t.dir, 'root');
  const sock = join(t.dir, 'd.sock');
  const child = spawnDistd(['--root', root, '--state', join(t.dir, 'run'), '--address', sock]);
  await waitFor(() => existsSync(sock) || child.proc.exitCode !== null, 'daemon socket');
  const conn = new Connection(sock);
  try {
    const ctx = { namespace: 'drain' };
    const content = conn.client('containerd.services.content.v1.Content');
    const data = Buffer.alloc(256 * 1024, 7);
    const dgst = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const w = bidiCall<object, { action: string; offset: string; digest: string }>(content, 'Write', ctx);
    const it = w.responses[Symbol.asyncIterator]();
    await w.send({ action: 'STAT', ref: 'drain-ref', total: String(data.length), expected: dgst });
    assert.equal((await it.next()).value!.offset, '0');
    await w.send({ action: 'WRITE', offset: '0', data: data.subarray(0, 1000) });
    assert.equal((await it.next()).value!.offset, '1000');
    // The daemon is asked to stop while the stream is open.
    child.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(child.proc.exitCode, null, 'still draining');
    await w.send({ action: 'COMMIT', offset: '1000', data: data.subarray(1000), total: String(data.length), expected: dgst });
    const c = (await it.next()).value!;
    assert.equal(c.action, 'COMMIT');
    assert.equal(c.digest, dgst);
    w.end();
    for (;;) if ((await it.next()).done) break;
  } finally {
    conn.close();
  }
  assert.equal(await child.exit, 0, child.stderr());
  assert.ok(!existsSync(sock), 'socket removed');
  assert.ok(!existsSync(join(root, 'distd.lock')), 'lock removed');
  assert.ok(!existsSync(join(root, 'metadata.db-wal')), 'database closed (WAL checkpointed)');
  const logs = child.stderr().trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(logs.map((l) => l.msg).filter((m) => m !== 'call'), ['serving', 'signal received', 'stopping: draining in-flight calls', 'stopped']);
  // The blob committed during the drain is there after a restart.
  const again = await startTestDaemon({ root });
  try {
    const info = await again.daemon.services.content.info({ namespace: 'drain' }, `sha256:${createHash('sha256').update(Buffer.alloc(256 * 1024, 7)).digest('hex')}`);
    assert.equal(info.size, 256 * 1024);
  } finally {
    await again.stop();
  }
  await t.cleanup();
});

test('config: TOML file, durations, unknown keys, flags over the file', async () => {
  assert.equal(parseDuration('100ms', 'x'), 100);
  assert.equal(parseDuration('1m30s', 'x'), 90_000);
  assert.equal(parseDuration(2, 'x'), 2000);
  assert.throws(() => parseDuration('10 parsecs', 'gc.schedule_delay'), /gc.schedule_delay: invalid duration/);
  const cfg = applyToml(defaultConfig(), {
    version: 2,
    root: '/x/root',
    default_snapshotter: 'native',
    grpc: { address: '/x/s.sock', max_recv_message_size: 1024 },
    gc: { schedule_delay: '1s', deletion_threshold: 3 },
    debug: { level: 'debug' },
  });
  assert.equal(cfg.root, '/x/root');
  assert.equal(cfg.address, '/x/s.sock');
  assert.equal(cfg.maxRecvMessageSize, 1024);
  assert.equal(cfg.maxSendMessageSize, 16 << 20);
  assert.deepEqual(cfg.gc, { deletionThreshold: 3, scheduleDelayMs: 1000 });
  assert.equal(cfg.logLevel, 'debug');
  assert.throws(() => applyToml(defaultConfig(), { grpc: { adress: 'typo' } }), /unknown config key grpc\.adress/);
  assert.throws(() => applyToml(defaultConfig(), { debug: { level: 'loud' } }), /invalid log level/);

  const t = await tempDir('distd-config-');
  const file = join(t.dir, 'distd.toml');
  await writeFile(file, `root = "${join(t.dir, 'root')}"\nstate = "${join(t.dir, 'run')}"\n[grpc]\naddress = "${join(t.dir, 'from-config.sock')}"\n[debug]\nlevel = "warn"\n`);
  const child = spawnDistd(['--config', file, '--log-level', 'info']);
  await waitFor(() => existsSync(join(t.dir, 'from-config.sock')) || child.proc.exitCode !== null, 'config socket');
  assert.equal(child.proc.exitCode, null, child.stderr());
  const conn = new Connection(join(t.dir, 'from-config.sock'));
  const v = await unaryCall<object, { version: string }>(conn.client('containerd.services.version.v1.Version'), 'Version', {});
  assert.ok(v.version);
  conn.close();
  child.proc.kill('SIGINT');
  assert.equal(await child.exit, 0);
  assert.match(child.stderr(), /"msg":"serving"/, 'info level from the flag beats warn from the file');
  const bad = spawnDistd(['--config', join(t.dir, 'missing.toml')]);
  assert.equal(await bad.exit, 1);
  assert.match(bad.stderr(), /^distd: config .*missing\.toml: ENOENT/);
  await t.cleanup();
});
