/**
 * A full file system under the root: commands that must write fail with one
 * line naming the cause and what to do; once space is back, what was
 * written resumes. The root lives on a small tmpfs mounted
 * by the test (needs root).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemHint } from '../../src/errdefs/index.js';
import { dist, distOK } from '../util/cli.js';
import { tempDir } from '../util/tmp.js';

const skip = process.getuid?.() !== 0 && 'needs root (mounts a tmpfs)';
let dir = '';
let mnt = '';
let cleanup: () => Promise<void> = async () => undefined;

before(async () => {
  if (skip) return;
  ({ dir, cleanup } = await tempDir('dist-diskfull-'));
  mnt = join(dir, 'fs');
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt]);
});

after(async () => {
  if (skip) return;
  try {
    execFileSync('umount', [mnt]);
  } catch {
    /* not mounted */
  }
  await cleanup();
});

test('systemHint: ENOSPC, EDQUOT and SQLITE_FULL say the disk is full; SQLite I/O, read-only and permission errors say so; others get none', () => {
  const sys = (code: string) => Object.assign(new Error('x'), { code });
  for (const c of ['ENOSPC', 'EDQUOT', 'SQLITE_FULL']) assert.match(systemHint(sys(c)) ?? '', /file system is full/, c);
  assert.match(systemHint(new Error('wrapped', { cause: sys('ENOSPC') })) ?? '', /file system is full/, 'found along the cause chain');
  assert.match(systemHint(sys('SQLITE_IOERR_SHMSIZE')) ?? '', /metadata database/);
  assert.match(systemHint(sys('SQLITE_READONLY_DBMOVED')) ?? '', /not writable/);
  assert.match(systemHint(sys('EROFS')) ?? '', /not writable/);
  assert.match(systemHint(sys('EACCES')) ?? '', /may not access/);
  assert.match(systemHint(sys('EPERM')) ?? '', /privilege/);
  assert.equal(systemHint(sys('ENOENT')), undefined);
  assert.equal(systemHint(new Error('plain')), undefined);
});

test('dist on a full file system: one line with the cause and what to do; space back, the ingest resumes and completes', { skip }, async () => {
  const root = join(mnt, 'root');
  // a store (and its snapshotters) exists before the disk fills
  await distOK(['snapshots', 'ls'], { root });
  await distOK(['snapshots', '--snapshotter', 'native', 'ls'], { root });
  const data = randomBytes(8 << 20); // incompressible: tmpfs stores it all
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const ingest = ['content', 'ingest', '--expected-digest', digest, '--expected-size', String(data.length), 'big'];
  const filler = join(mnt, 'filler');
  // leave ~4 MiB: the store opens, the 8 MiB blob cannot be written
  const free = Number(execFileSync('df', ['-B1', '--output=avail', mnt]).toString().trim().split('\n').pop());
  writeFileSync(filler, Buffer.alloc(Math.max(0, free - (4 << 20))));

  const r = await dist(ingest, { root, input: data });
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^dist: .*no space left on device.*\(the root's file system is full: free space there, then try again; dist gc removes what no image or lease holds\)$/);

  // completely full: even opening the database fails, in one line that says why
  writeFileSync(join(mnt, 'filler2'), Buffer.alloc(0));
  try {
    for (;;) appendFileSync(join(mnt, 'filler2'), Buffer.alloc(64 << 10));
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  }
  const full = await dist(['images', 'ls'], { root });
  assert.notEqual(full.code, 0);
  assert.match(full.stderr, /^dist: .*\((the root's file system is full|the metadata database under the root could not be read or written)[^\n]*\)\n$/);

  // space back: the ingest resumes where it stopped and completes
  rmSync(filler);
  rmSync(join(mnt, 'filler2'));
  const active = await distOK(['content', 'active'], { root });
  assert.match(active.stdout, /^big\s/m, 'the partial ingest is kept');
  await distOK(ingest, { root, input: data });
  const ls = await distOK(['content', 'ls', '-q'], { root });
  assert.ok(ls.stdout.split('\n').includes(digest), ls.stdout);
  assert.equal((await distOK(['content', 'active'], { root })).stdout.trim().split('\n').length, 1, 'no ingest left (header only)');
});
