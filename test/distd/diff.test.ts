// Creating layers: writeDiff on plain directories (entries, order, whiteouts,
// parents, hardlinks, long names), and through distd: ctr snapshots diff
// (Diff/Diff over native snapshots), then Diff/Apply of that layer onto the
// parent reproduces the child.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, link, mkdir, readFile, readdir, lstat, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TarReader, type TarHeader } from '../../src/archive/tar.js';
import { Connection, unaryCall } from '../../src/api/grpc/client.js';
import { writeDiff } from '../../src/diff/walking.js';
import { tempDir } from '../util/tmp.js';
import { ctr, ctrAvailable, rows, startTestDaemon, type TestDaemon } from './util.js';

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

function entries(tar: Buffer): { h: TarHeader; data: Buffer }[] {
  const r = new TarReader();
  r.push(tar);
  const out: { h: TarHeader; data: Buffer }[] = [];
  for (let e = r.next(); e; e = r.next()) {
    if (e.kind === 'header') out.push({ h: e.header, data: Buffer.alloc(0) });
    else if (e.kind === 'data') out[out.length - 1].data = Buffer.concat([out[out.length - 1].data, e.data]);
  }
  r.end();
  return out;
}

async function tree(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string) {
    for (const n of (await readdir(join(root, rel))).sort()) {
      const p = rel ? `${rel}/${n}` : n;
      const st = await lstat(join(root, p));
      const extra = st.isSymbolicLink() ? `->${await readlink(join(root, p))}` : st.isFile() ? `:${createHash('sha256').update(await readFile(join(root, p))).digest('hex').slice(0, 8)}` : '';
      out.push(`${p} ${(st.mode & 0o7777).toString(8)}${extra}`);
      if (st.isDirectory()) await walk(p);
    }
  }
  await walk('');
  return out;
}

/** base tree, then the changes the tests expect to see. */
async function makeBase(dir: string): Promise<void> {
  await mkdir(join(dir, 'etc/conf.d'), { recursive: true });
  await mkdir(join(dir, 'gone/deep'), { recursive: true });
  await writeFile(join(dir, 'etc/keep.txt'), 'same\n');
  await writeFile(join(dir, 'etc/change.txt'), 'before\n');
  await writeFile(join(dir, 'etc/conf.d/x.conf'), 'x\n');
  await writeFile(join(dir, 'gone/deep/file'), 'bye\n');
  await writeFile(join(dir, 'rm.txt'), 'rm me\n');
  await writeFile(join(dir, 'perm.sh'), '#!/bin/sh\n');
}

async function makeChanges(dir: string): Promise<void> {
  await writeFile(join(dir, 'etc/change.txt'), 'after, longer\n');
  await writeFile(join(dir, 'etc/conf.d/new.conf'), 'new\n');
  await rm(join(dir, 'gone'), { recursive: true });
  await rm(join(dir, 'rm.txt'));
  await chmod(join(dir, 'perm.sh'), 0o755);
  await mkdir(join(dir, 'added/sub'), { recursive: true });
  await writeFile(join(dir, 'added/sub/a'), 'aaa\n');
  await link(join(dir, 'added/sub/a'), join(dir, 'added/hard'));
  await symlink('../etc/keep.txt', join(dir, 'added/sym'));
  const long = 'l'.repeat(120);
  await writeFile(join(dir, 'added', long), 'long name\n');
}

test('writeDiff: changes in walk order, whiteouts, parents first, hardlinks, long names', async () => {
  const t = await tempDir('distd-diff-');
  try {
    const lower = join(t.dir, 'lower');
    const upper = join(t.dir, 'upper');
    await makeBase(lower);
    await makeBase(upper);
    // identical content with a different mtime must count as unchanged only when mtimes match
    for (const p of ['etc/keep.txt', 'etc/change.txt', 'etc/conf.d/x.conf', 'perm.sh']) {
      await utimes(join(lower, p), 1_600_000_000, 1_600_000_000);
      await utimes(join(upper, p), 1_600_000_000, 1_600_000_000);
    }
    await makeChanges(upper);
    const tar = await collect(writeDiff(lower, upper, { now: new Date(1_700_000_000_000) }));
    assert.equal(tar.length % 512, 0);
    const es = entries(tar);
    const list = es.map((e) => `${e.h.type} ${e.h.name}${e.h.linkname ? ` -> ${e.h.linkname}` : ''}`);
    assert.deepEqual(list, [
      '5 added/',
      '0 added/hard', // first path of the inode in walk order carries the data
      `0 added/${'l'.repeat(120)}`,
      '5 added/sub/',
      '1 added/sub/a -> added/hard',
      '2 added/sym -> ../etc/keep.txt',
      '5 etc/',
      '0 etc/change.txt',
      '5 etc/conf.d/',
      '0 etc/conf.d/new.conf',
      '0 .wh.gone',
      '0 perm.sh',
      '0 .wh.rm.txt',
    ]);
    const byName = new Map(es.map((e) => [e.h.name, e]));
    assert.equal(byName.get('etc/change.txt')!.data.toString(), 'after, longer\n');
    assert.equal(byName.get('added/hard')!.data.toString(), 'aaa\n');
    assert.equal(byName.get('perm.sh')!.h.mode & 0o777, 0o755);
    assert.equal(byName.get('.wh.gone')!.h.size, 0);
    assert.equal(byName.get('.wh.gone')!.h.mtime.sec, 1_700_000_000);
    // nothing below the deleted directory, no unchanged files
    assert.ok(!list.some((l) => l.includes('gone/') || l.includes('keep.txt') && !l.includes('sym')));
  } finally {
    await t.cleanup();
  }
});

const skip = ctrAvailable() ? false : 'needs /usr/bin/ctr and root';
let d: TestDaemon;
before(async () => {
  if (!skip) d = await startTestDaemon({ gc: { deletionThreshold: 0, scheduleDelayMs: 3_600_000 } });
});
after(async () => {
  await d?.stop();
});

test('ctr snapshots diff (Diff/Diff) then Diff/Apply onto the parent reproduces the child', { skip }, async () => {
  const ns = 'diff-rt';
  const sn = (...a: string[]) => ctr(d.sock, ['snapshots', '--snapshotter', 'native', ...a], { ns });
  const src = (out: string) => JSON.parse(out)[0].Source as string;
  const base = src((await sn('prepare', '--mounts', 'base')).stdout);
  await makeBase(base);
  await sn('commit', 'base-c', 'base');
  const child = src((await sn('prepare', '--mounts', 'child', 'base-c')).stdout);
  await makeChanges(child);

  // Uncompressed diff to stdout: same entries as writeDiff would give.
  const raw: Buffer = await new Promise((res, rej) =>
    execFile('/usr/bin/ctr', ['--address', d.sock, '-n', ns, 'snapshots', '--snapshotter', 'native', 'diff', '--media-type', 'application/vnd.oci.image.layer.v1.tar', 'child'], { encoding: 'buffer', maxBuffer: 16 << 20 }, (err, out, stderr) => (err ? rej(new Error(`${err.message}: ${stderr}`)) : res(out))),
  );
  const names = entries(raw).map((e) => e.h.name);
  assert.ok(names.includes('etc/change.txt') && names.includes('.wh.rm.txt') && names.includes('.wh.gone') && names.includes('added/sub/a'), names.join(' '));
  assert.ok(!names.includes('etc/keep.txt'));

  // gzip (default) kept in the store with the uncompressed label.
  const gz: Buffer = await new Promise((res, rej) =>
    execFile('/usr/bin/ctr', ['--address', d.sock, '-n', ns, 'snapshots', '--snapshotter', 'native', 'diff', '--keep', 'child'], { encoding: 'buffer', maxBuffer: 16 << 20 }, (err, out, stderr) => (err ? rej(new Error(`${err.message}: ${stderr}`)) : res(out))),
  );
  const tarDigest = `sha256:${createHash('sha256').update(gunzipSync(gz)).digest('hex')}`;
  const gzDigest = `sha256:${createHash('sha256').update(gz).digest('hex')}`;
  const content = rows((await ctr(d.sock, ['content', 'ls'], { ns })).stdout);
  const row = content.find((r) => r[0] === gzDigest);
  assert.ok(row, `${gzDigest} in ${JSON.stringify(content)}`);
  assert.match(row![3], new RegExp(`containerd.io/uncompressed=${tarDigest}`));
  assert.match(row![3], /containerd.io\/gc.root=/);

  // Apply the gzip layer onto a fresh snapshot of the parent.
  const target = src((await sn('prepare', '--mounts', 'replay', 'base-c')).stdout);
  const conn = new Connection(d.sock);
  try {
    const df = conn.client('containerd.services.diff.v1.Diff');
    const applied = await unaryCall<object, { applied: { digest: string; media_type: string } }>(df, 'Apply', {
      diff: { media_type: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: gzDigest, size: String(gz.length) },
      mounts: [{ type: 'bind', source: target, options: ['rbind', 'rw'] }],
    }, { namespace: ns });
    assert.equal(applied.applied.digest, tarDigest);
    assert.equal(applied.applied.media_type, 'application/vnd.oci.image.layer.v1.tar');
  } finally {
    conn.close();
  }
  assert.deepEqual(await tree(target), await tree(child));
  await sn('rm', 'replay', 'child');
  await sn('rm', 'base-c');
});
