// The real ctr 1.6 against distd (in-process, temp root and socket): version,
// plugins, namespaces, content, leases and snapshots commands, with their
// printed output checked. Skipped when ctr is missing or not running as root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ctr, ctrAvailable, rows, startTestDaemon, type TestDaemon } from './util.js';

const skip = ctrAvailable() ? false : 'needs /usr/bin/ctr and root';
let d: TestDaemon;

before(async () => {
  // ctr content ingest writes under a temporary lease: like containerd, the
  // blob is garbage once the lease goes. Scheduled collections are pushed far
  // out so that the steps below see what they just wrote (sync deletes still collect).
  if (!skip) d = await startTestDaemon({ gc: { deletionThreshold: 0, scheduleDelayMs: 3_600_000 } });
});
after(async () => {
  await d?.stop();
});

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('ctr version: server version, revision and the root UUID', { skip }, async () => {
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8'));
  const { stdout } = await ctr(d.sock, ['version']);
  const server = stdout.slice(stdout.indexOf('Server:'));
  assert.match(server, new RegExp(`Version:\\s+${pkg.version.replace(/\./g, '\\.')}`));
  assert.match(server, new RegExp(`UUID: ${d.daemon.uuid}`));
});

test('ctr plugins ls: content, both snapshotters, metadata, gc, grpc services', { skip }, async () => {
  const { stdout } = await ctr(d.sock, ['plugins', 'ls']);
  const table = rows(stdout).map((r) => r.join(' '));
  for (const want of [
    /^io\.containerd\.content\.v1 content - ok$/,
    /^io\.containerd\.snapshotter\.v1 native linux\/\w+ ok$/,
    /^io\.containerd\.snapshotter\.v1 overlayfs linux\/\w+ ok$/,
    /^io\.containerd\.metadata\.v1 \w+ - ok$/,
    /^io\.containerd\.gc\.v1 scheduler - ok$/,
    /^io\.containerd\.grpc\.v1 content - ok$/,
    /^io\.containerd\.grpc\.v1 snapshots - ok$/,
    /^io\.containerd\.grpc\.v1 diff - ok$/,
  ]) {
    assert.ok(table.some((l) => want.test(l)), `${want} in\n${stdout}`);
  }
  const only = await ctr(d.sock, ['plugins', 'ls', 'type==io.containerd.snapshotter.v1']);
  assert.deepEqual(rows(only.stdout).map((r) => r[1]).sort(), ['native', 'overlayfs']);
});

test('ctr namespaces create | ls | label | rm', { skip }, async () => {
  await ctr(d.sock, ['namespaces', 'create', 'ctr-ns', 'team=dist', 'tier=test']);
  let ls = rows((await ctr(d.sock, ['namespaces', 'ls'])).stdout);
  assert.deepEqual(ls.find((r) => r[0] === 'ctr-ns')?.[1].split(',').sort(), ['team=dist', 'tier=test']);
  await ctr(d.sock, ['namespaces', 'label', 'ctr-ns', 'tier=', 'extra=1']);
  ls = rows((await ctr(d.sock, ['namespaces', 'ls'])).stdout);
  assert.deepEqual(ls.find((r) => r[0] === 'ctr-ns')?.[1].split(',').sort(), ['extra=1', 'team=dist']);
  const q = await ctr(d.sock, ['namespaces', 'ls', '-q']);
  assert.ok(q.stdout.split('\n').includes('ctr-ns'));
  // A duplicate is AlreadyExists; a bad name InvalidArgument.
  const dup = await ctr(d.sock, ['namespaces', 'create', 'ctr-ns'], { allowFail: true });
  assert.notEqual(dup.code, 0);
  assert.match(dup.stderr, /namespace ctr-ns: already exists/);
  const bad = await ctr(d.sock, ['namespaces', 'create', 'Bad_NS!'], { allowFail: true });
  assert.match(bad.stderr, /invalid argument/);
  // Not empty: FailedPrecondition, then rm after emptying it.
  const blob = Buffer.from('namespace content\n');
  await ctr(d.sock, ['content', 'ingest', '--expected-size', String(blob.length), '--expected-digest', sha(blob), 'nsref'], { ns: 'ctr-ns', input: blob });
  const busy = await ctr(d.sock, ['namespaces', 'rm', 'ctr-ns'], { allowFail: true });
  assert.match(busy.stderr, /namespace "ctr-ns" must be empty, but it still has blobs: failed precondition/);
  await ctr(d.sock, ['content', 'rm', sha(blob)], { ns: 'ctr-ns' });
  await ctr(d.sock, ['namespaces', 'rm', 'ctr-ns']);
  ls = rows((await ctr(d.sock, ['namespaces', 'ls'])).stdout);
  assert.equal(ls.find((r) => r[0] === 'ctr-ns'), undefined);
});

test('ctr content ingest | ls | active | get | label | rm', { skip }, async () => {
  const ns = 'ctr-content';
  const blob = randomBytes(3 << 20); // > 1 MiB: several WRITE messages
  const dgst = sha(blob);
  await ctr(d.sock, ['content', 'ingest', '--expected-size', String(blob.length), '--expected-digest', dgst, 'ref-1'], { ns, input: blob });
  // Ingesting it again: AlreadyExists on the first STAT, which ctr treats as success.
  await ctr(d.sock, ['content', 'ingest', '--expected-size', String(blob.length), '--expected-digest', dgst, 'ref-2'], { ns, input: blob });
  let ls = rows((await ctr(d.sock, ['content', 'ls'], { ns })).stdout);
  assert.equal(ls.length, 1);
  assert.equal(ls[0][0], dgst);
  assert.equal(ls[0][1], '3.146MB');
  // A wrong digest fails the commit and leaves the ingest active at full size.
  const wrong = sha(Buffer.from('not it'));
  const bad = await ctr(d.sock, ['content', 'ingest', '--expected-size', String(blob.length), '--expected-digest', wrong, 'ref-bad'], { ns, input: blob, allowFail: true });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, new RegExp(`unexpected commit digest ${dgst}, expected ${wrong}: failed precondition`));
  const active = rows((await ctr(d.sock, ['content', 'active'], { ns })).stdout);
  assert.equal(active.length, 1);
  assert.deepEqual(active[0].slice(0, 2), ['ref-bad', '3.146MB']);
  assert.equal(rows((await ctr(d.sock, ['content', 'active', 'ref~=nomatch'], { ns })).stdout).length, 0);
  // label: set, then clear with k=
  await ctr(d.sock, ['content', 'label', dgst, 'a=1', 'b=2'], { ns });
  ls = rows((await ctr(d.sock, ['content', 'ls'], { ns })).stdout);
  assert.deepEqual(ls[0][3].split(',').sort(), ['a=1', 'b=2']); // ctr prints a Go map: any order
  await ctr(d.sock, ['content', 'label', dgst, 'b='], { ns });
  ls = rows((await ctr(d.sock, ['content', 'ls', 'labels.a==1'], { ns })).stdout);
  assert.equal(ls[0][3], 'a=1');
  assert.equal(rows((await ctr(d.sock, ['content', 'ls', 'labels.b'], { ns })).stdout).length, 0);
  // rm, then the blob is gone (a second rm ignores NotFound).
  await ctr(d.sock, ['content', 'rm', dgst], { ns });
  await ctr(d.sock, ['content', 'rm', dgst], { ns });
  assert.equal(rows((await ctr(d.sock, ['content', 'ls'], { ns })).stdout).length, 0);
  const gone = await ctr(d.sock, ['content', 'get', dgst], { ns, allowFail: true });
  assert.match(gone.stderr, /not found/);
});

test('ctr content get returns the exact bytes', { skip }, async () => {
  const blob = randomBytes(1_500_000);
  const dgst = sha(blob);
  await ctr(d.sock, ['content', 'ingest', '--expected-size', String(blob.length), '--expected-digest', dgst, 'get-ref'], { ns: 'ctr-get', input: blob });
  const { execFile } = await import('node:child_process');
  const out: Buffer = await new Promise((res, rej) =>
    execFile('/usr/bin/ctr', ['--address', d.sock, '-n', 'ctr-get', 'content', 'get', dgst], { encoding: 'buffer', maxBuffer: 8 << 20 }, (err, stdout) => (err ? rej(err) : res(stdout))),
  );
  assert.equal(out.length, blob.length);
  assert.equal(sha(out), dgst);
});

test('ctr leases create | ls | rm', { skip }, async () => {
  const ns = 'ctr-leases';
  const created = await ctr(d.sock, ['leases', 'create', '--id', 'lease-1', 'team=dist'], { ns });
  assert.equal(created.stdout.trim(), 'lease-1');
  const random = (await ctr(d.sock, ['leases', 'create'], { ns })).stdout.trim();
  assert.match(random, /^\d{14,}-[0-9a-f]+$|^[\w.-]+$/);
  let ls = rows((await ctr(d.sock, ['leases', 'ls'], { ns })).stdout);
  const l1 = ls.find((r) => r[0] === 'lease-1');
  assert.ok(l1, `lease-1 in ${JSON.stringify(ls)}`);
  assert.match(l1![1], /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  assert.deepEqual(l1![2].split(',').map((l) => l.split('=')[0]).sort(), ['containerd.io/gc.expire', 'team']);
  assert.ok(ls.some((r) => r[0] === random));
  ls = rows((await ctr(d.sock, ['leases', 'ls', 'labels.team==dist'], { ns })).stdout);
  assert.deepEqual(ls.map((r) => r[0]), ['lease-1']);
  const dup = await ctr(d.sock, ['leases', 'create', '--id', 'lease-1'], { ns, allowFail: true });
  assert.match(dup.stderr, /already exists/);
  await ctr(d.sock, ['leases', 'rm', 'lease-1', random], { ns });
  await ctr(d.sock, ['leases', 'rm', '--sync', (await ctr(d.sock, ['leases', 'create'], { ns })).stdout.trim()], { ns });
  assert.equal(rows((await ctr(d.sock, ['leases', 'ls'], { ns })).stdout).length, 0);
  const missing = await ctr(d.sock, ['leases', 'rm', 'lease-1'], { ns, allowFail: true });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /not found/);
});

test('ctr snapshots --snapshotter native prepare | view | commit | ls | tree | usage | info | label | rm', { skip }, async () => {
  const ns = 'ctr-snaps';
  const s = (...args: string[]) => ctr(d.sock, ['snapshots', '--snapshotter', 'native', ...args], { ns });
  const mounts = JSON.parse((await s('prepare', '--mounts', 'base')).stdout);
  assert.equal(mounts.length, 1);
  assert.equal(mounts[0].Type, 'bind');
  assert.deepEqual(mounts[0].Options, ['rbind', 'rw']);
  await s('commit', 'base-c', 'base');
  await s('prepare', 'child', 'base-c');
  const view = JSON.parse((await s('view', '--mounts', 'v1', 'base-c')).stdout);
  assert.deepEqual(view[0].Options, ['rbind', 'ro']);
  const ls = rows((await s('ls')).stdout);
  assert.deepEqual(ls, [['base-c', 'Committed'], ['child', 'base-c', 'Active'], ['v1', 'base-c', 'View']]);
  const tree = (await s('tree')).stdout;
  assert.match(tree, /^ base-c\n  \\_ child\n  \\_ v1\n$/);
  const usage = rows((await s('usage', 'child')).stdout);
  assert.equal(usage[0][0], 'child');
  assert.match(usage[0][1], /KiB|B/);
  const info = JSON.parse((await s('info', 'child')).stdout);
  assert.equal(info.Kind, 'Active');
  assert.equal(info.Parent, 'base-c');
  await s('label', 'child', 'foo=bar');
  assert.equal(JSON.parse((await s('info', 'child')).stdout).Labels.foo, 'bar');
  const busy = await ctr(d.sock, ['snapshots', '--snapshotter', 'native', 'rm', 'base-c'], { ns, allowFail: true });
  assert.match(busy.stderr, /cannot remove snapshot with child: failed precondition/);
  await s('rm', 'child', 'v1');
  await s('rm', 'base-c');
  assert.equal(rows((await s('ls')).stdout).length, 0);
});

test('ctr snapshots: unknown snapshotter is InvalidArgument; without --snapshotter ctr uses overlayfs', { skip }, async () => {
  const ns = 'ctr-snapdefault';
  const unknown = await ctr(d.sock, ['snapshots', '--snapshotter', 'nope', 'ls'], { ns, allowFail: true });
  assert.match(unknown.stderr, /snapshotter not loaded: nope: invalid argument/);
  // ctr 1.6's snapshots commands fall back to overlayfs (they never read the
  // namespace label); a parentless overlay snapshot mounts as a bind of its upper dir.
  const m = JSON.parse((await ctr(d.sock, ['snapshots', 'prepare', '--mounts', 'ov'], { ns })).stdout);
  assert.equal(m[0].Type, 'bind');
  assert.match(m[0].Source, /\/snapshots\/overlayfs\//);
  await ctr(d.sock, ['snapshots', 'commit', 'ov-c', 'ov'], { ns });
  const child = JSON.parse((await ctr(d.sock, ['snapshots', 'prepare', '--mounts', 'ov2', 'ov-c'], { ns })).stdout);
  assert.equal(child[0].Type, 'overlay');
  assert.ok(child[0].Options.some((o: string) => o.startsWith('upperdir=')));
  await ctr(d.sock, ['snapshots', 'rm', 'ov2'], { ns });
  await ctr(d.sock, ['snapshots', 'rm', 'ov-c'], { ns });
  assert.equal(rows((await ctr(d.sock, ['snapshots', 'ls'], { ns })).stdout).length, 0);
});

test('ctr events: namespace and snapshot events as they happen', { skip }, async () => {
  const { spawn } = await import('node:child_process');
  const ev = spawn('/usr/bin/ctr', ['--address', d.sock, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  ev.stdout.on('data', (b: Buffer) => (out += b.toString()));
  try {
    for (let i = 0; i < 200 && d.daemon.events.subscribers === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await ctr(d.sock, ['namespaces', 'create', 'ctr-ev', 'a=b']);
    await ctr(d.sock, ['snapshots', '--snapshotter', 'native', 'prepare', 'k1'], { ns: 'ctr-ev' });
    await ctr(d.sock, ['snapshots', '--snapshotter', 'native', 'commit', 'k1c', 'k1'], { ns: 'ctr-ev' });
    await ctr(d.sock, ['snapshots', '--snapshotter', 'native', 'rm', 'k1c'], { ns: 'ctr-ev' });
    await ctr(d.sock, ['namespaces', 'rm', 'ctr-ev']);
    for (let i = 0; i < 200 && out.trim().split('\n').length < 5; i++) await new Promise((r) => setTimeout(r, 10));
  } finally {
    ev.kill();
  }
  const lines = out.trim().split('\n').map((l) => l.replace(/^\S+ \S+ \S+ \S+ /, ''));
  assert.deepEqual(lines, [
    'default /namespaces/create {"name":"ctr-ev","labels":{"a":"b"}}',
    'ctr-ev /snapshot/prepare {"key":"k1"}',
    'ctr-ev /snapshot/commit {"key":"k1","name":"k1c"}',
    'ctr-ev /snapshot/remove {"key":"k1c"}',
    'ctr-ev /namespaces/delete {"name":"ctr-ev"}',
  ]);
});
