/**
 * Output into a pipe whose reader goes away (`dist content get D | head`):
 * dist stops quietly with the status of a process killed by SIGPIPE (141),
 * as ctr and cat do, instead of an unhandled EPIPE stack trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { DIST_BIN, distOK } from '../util/cli.js';
import { tempDir } from '../util/tmp.js';

test('dist content get into a pipe closed after the first bytes: exit 141, nothing on stderr', async () => {
  const { dir, cleanup } = await tempDir('dist-pipe-');
  try {
    const data = randomBytes(8 << 20);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await distOK(['content', 'ingest', '--expected-digest', digest, '--expected-size', String(data.length), 'big'], { root: dir, input: data });
    const child = spawn(DIST_BIN, ['--root', dir, 'content', 'get', digest], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b));
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.stdout.destroy(); // the reader goes away
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(code, 141, stderr);
    assert.equal(stderr, '');
  } finally {
    await cleanup();
  }
});
