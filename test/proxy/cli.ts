/**
 * `dist --address SOCK` side by side with `ctr --address SOCK` against one
 * daemon (containerd 1.6, distd): what one writes, the other reads, and both
 * list the same things (namespaces, content, ingests, leases).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fromBytes } from '../../src/digest/index.js';
import type { Remote } from '../../src/services/remote.js';
import { uniqueNS, type Daemon } from './env.js';
import { DIST_BIN } from '../util/cli.js';


interface Run { code: number; stdout: string; stderr: string }

function run(cmd: string, args: string[], input?: string | Buffer): Run {
  const env = { ...process.env };
  delete env.CONTAINERD_NAMESPACE;
  delete env.CONTAINERD_ADDRESS;
  const r = spawnSync(cmd, args, { input: typeof input === 'string' ? Buffer.from(input) : input, timeout: 30_000, env });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

/** Table rows (header dropped) split on runs of tabs/spaces as ctr's tabwriter pads. */
function rows(out: string, sep: RegExp = /\s+/): string[][] {
  return out.split('\n').slice(1).map((l) => l.trim()).filter(Boolean).map((l) => l.split(sep));
}

/** "a=b,c=d" → sorted "a=b,c=d" ("-" or "" → ""), since ctr prints Go map order. */
const labelSet = (s: string | undefined) => (!s || s === '-' ? '' : s.split(',').sort().join(','));

export function cliChecks(name: string, get: () => Promise<{ daemon: Daemon; svc: Remote }>): void {
  const both = async () => {
    const { daemon } = await get();
    const a = daemon.address;
    return {
      dist: (args: string[], input?: string | Buffer) => run(DIST_BIN, ['--address', a, ...args], input),
      ctr: (args: string[], input?: string | Buffer) => run('ctr', ['--address', a, ...args], input),
    };
  };
  /** stdout of a command that must succeed. */
  const ok = (r: Run) => {
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  };

  test(`${name}: dist CLI vs ctr: namespaces ls | create`, async () => {
    const { dist, ctr } = await both();
    const a = uniqueNS('clins');
    const b = `${a}-ctr`;
    let r = dist(['namespaces', 'create', a, 'x=1', 'y=2']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ctr(['namespaces', 'create', b, 'z=3']).code, 0);
    r = dist(['namespaces', 'create', a]);
    assert.equal(r.code, 4, 'AlreadyExists exit code');
    assert.match(r.stderr, /already exists/);

    const norm = (out: string) => rows(out).map(([n, l]) => `${n} ${labelSet(l)}`).sort();
    const mine = norm(ok(dist(['namespaces', 'ls'])));
    const theirs = norm(ok(ctr(['namespaces', 'ls'])));
    assert.deepEqual(mine, theirs);
    assert.ok(mine.includes(`${a} x=1,y=2`) && mine.includes(`${b} z=3`), mine.join('\n'));
  });

  test(`${name}: dist CLI vs ctr: content ingest | ls | label | get | active | rm`, async () => {
    const { dist, ctr } = await both();
    const ns = uniqueNS('clict');
    const data = `dist and ctr ${ns}\n`.repeat(50);
    const d = fromBytes(data);
    const data2 = `second blob ${ns}`;
    const d2 = fromBytes(data2);
    // The CLIs ingest without a lease or labels: containerd's GC may collect
    // such blobs at any moment. A lease naming both digests keeps them.
    const { svc } = await get();
    const lease = await svc.leases.create({ namespace: ns });
    for (const id of [d, d2]) await svc.leases.addResource({ namespace: ns }, lease, { type: 'content', id });

    // Ingest with dist; ctr sees it, with the same bytes.
    let r = dist(['-n', ns, 'content', 'ingest', '--expected-digest', d, '--expected-size', String(data.length), 'ingest-1'], data);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(rows(ok(ctr(['-n', ns, 'content', 'ls'])), /\t+/).map((x) => x[0]), [d]);
    assert.equal(ok(dist(['-n', ns, 'content', 'ls', '-q'])), `${d}\n`);
    assert.equal(ok(ctr(['-n', ns, 'content', 'get', d])), data);
    assert.equal(ok(dist(['-n', ns, 'content', 'get', d])), data);
    // Again: already present is success.
    assert.equal(dist(['-n', ns, 'content', 'ingest', '--expected-digest', d, 'ingest-2'], data).code, 0);

    // Ingest with ctr; dist sees it.
    assert.equal(ctr(['-n', ns, 'content', 'ingest', '--expected-digest', d2, 'ingest-3'], data2).code, 0);
    assert.deepEqual(ok(dist(['-n', ns, 'content', 'ls', '-q'])).split('\n').filter(Boolean).sort(), [d, d2].sort());
    assert.equal(ok(dist(['-n', ns, 'content', 'get', d2])), data2);

    // Labels: dist sets, ctr shows (and the reverse); filters agree.
    assert.equal(dist(['-n', ns, 'content', 'label', d, 'foo=bar', 'flag']).code, 0);
    assert.equal(ctr(['-n', ns, 'content', 'label', d2, 'foo=baz']).code, 0);
    const labels = (out: string) => Object.fromEntries(rows(out, /\t+/).map((x) => [x[0], labelSet(x[x.length - 1])]));
    const expect = { [d]: 'flag=true,foo=bar', [d2]: 'foo=baz' };
    assert.deepEqual(labels(ok(ctr(['-n', ns, 'content', 'ls']))), expect);
    assert.deepEqual(labels(ok(dist(['-n', ns, 'content', 'ls']))), expect);
    assert.equal(ok(dist(['-n', ns, 'content', 'ls', '-q', 'labels.foo==bar'])), `${d}\n`);
    assert.equal(ok(ctr(['-n', ns, 'content', 'ls', '-q', 'labels.foo==bar'])), `${d}\n`);
    assert.equal(dist(['-n', ns, 'content', 'label', d, 'flag=']).code, 0);
    assert.deepEqual(labels(ok(ctr(['-n', ns, 'content', 'ls'])))[d], 'foo=bar', 'k= clears');

    // Stalled ingests (size mismatch keeps them), one from each side.
    r = dist(['-n', ns, 'content', 'ingest', '--expected-size', '100', 'stalled-dist'], 'hello');
    assert.equal(r.code, 5, `FailedPrecondition exit: ${r.stderr}`);
    assert.match(r.stderr, /failed precondition/);
    assert.notEqual(ctr(['-n', ns, 'content', 'ingest', '--expected-size', '100', 'stalled-ctr'], 'hi there').code, 0);
    const active = (out: string) => rows(out, /\t+/).map((x) => `${x[0]} ${x[1]}`).sort();
    const want = ['stalled-ctr 8B', 'stalled-dist 5B'];
    assert.deepEqual(active(ok(dist(['-n', ns, 'content', 'active']))), want);
    assert.deepEqual(active(ok(ctr(['-n', ns, 'content', 'active']))), want);
    assert.deepEqual(active(ok(dist(['-n', ns, 'content', 'active', 'ref~=dist$']))), ['stalled-dist 5B']);
    assert.deepEqual(active(ok(ctr(['-n', ns, 'content', 'active', 'ref~=dist$']))), ['stalled-dist 5B']);

    // rm: gone for both; a second rm is reported but not an error (as ctr).
    assert.equal(dist(['-n', ns, 'content', 'rm', d]).code, 0);
    assert.equal(ok(ctr(['-n', ns, 'content', 'ls', '-q'])), `${d2}\n`);
    r = dist(['-n', ns, 'content', 'rm', d]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /not found/);
    assert.equal(ctr(['-n', ns, 'content', 'rm', d2]).code, 0);
    assert.equal(ok(dist(['-n', ns, 'content', 'ls', '-q'])), '');
    r = dist(['-n', ns, 'content', 'get', d2]);
    assert.equal(r.code, 2, 'NotFound exit code');
    await svc.leases.delete({ namespace: ns }, lease);
  });

  test(`${name}: dist CLI vs ctr: leases create | ls | rm`, async () => {
    const { dist, ctr } = await both();
    const ns = uniqueNS('clils');
    let r = dist(['-n', ns, 'leases', 'create', '--id', 'dist-lease', 'k=v']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'dist-lease\n');
    assert.equal(ctr(['-n', ns, 'leases', 'create', '--id', 'ctr-lease']).code, 0);
    r = dist(['-n', ns, 'leases', 'create', '--id', 'ctr-lease']);
    assert.equal(r.code, 4, 'AlreadyExists exit code');

    const norm = (out: string) => rows(out).map(([id, created, l]) => `${id} ${created} ${labelSet(l)}`).sort();
    const mine = norm(ok(dist(['-n', ns, 'leases', 'ls'])));
    assert.deepEqual(mine, norm(ok(ctr(['-n', ns, 'leases', 'ls']))));
    assert.equal(mine.length, 2);
    assert.match(mine.find((x) => x.startsWith('dist-lease'))!, /containerd\.io\/gc\.expire=.*k=v/);
    assert.deepEqual(
      ok(dist(['-n', ns, 'leases', 'ls', '-q', 'id==ctr-lease'])),
      ok(ctr(['-n', ns, 'leases', 'ls', '-q', 'id==ctr-lease'])),
    );

    assert.equal(dist(['-n', ns, 'leases', 'rm', 'ctr-lease']).code, 0);
    assert.equal(ctr(['-n', ns, 'leases', 'rm', 'dist-lease']).code, 0);
    assert.deepEqual(rows(ok(ctr(['-n', ns, 'leases', 'ls']))), []);
    assert.deepEqual(rows(ok(dist(['-n', ns, 'leases', 'ls']))), []);
    r = dist(['-n', ns, 'leases', 'rm', 'nope']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.replace(/^dist: /, ''), ctr(['-n', ns, 'leases', 'rm', 'nope']).stderr.replace(/^ctr: /, ''));
  });

  test(`${name}: dist CLI: a missing socket fails at once with Unavailable`, () => {
    const r = run(DIST_BIN, ['--address', '/nonexistent/dist.sock', 'namespaces', 'ls']);
    assert.equal(r.code, 6);
    assert.match(r.stderr, /^dist: .*no such file or directory: unavailable/);
  });
}
