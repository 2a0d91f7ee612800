/**
 * `dist --address` against a real containerd 1.6: pull (containerd's Diff
 * service applies the layers), then images ls / check, snapshots ls, content
 * ls and namespaces ls agree with ctr's view of the same daemon.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeBlob } from '../../src/content/helpers.js';
import { openEmbedded } from '../../src/services/embedded.js';
import { distOK } from '../util/cli.js';
import { containerdUnavailable, startContainerd, type Containerd } from '../util/containerd.js';
import { makeImage } from '../util/oci.js';
import { registryAvailable, startRegistry, type Registry } from '../util/registry.js';
import { tempDir } from '../util/tmp.js';

const run = promisify(execFile);
const skip = containerdUnavailable() ?? (!registryAvailable() ? 'docker-registry not installed' : undefined);

/** Table output with trailing blanks dropped and, for label columns, pairs sorted (ctr prints Go map order). */
function norm(s: string): string {
  return s
    .split('\n')
    .map((l) => l.replace(/\s+$/, '').replace(/(\S+=\S+(,\S+=\S+)+)$/, (m) => m.split(',').sort().join(',')))
    .join('\n');
}

test('dist --address <containerd>: pull and every view agree with ctr', { skip }, async (t) => {
  let ctd: Containerd | undefined;
  let reg: Registry | undefined;
  const tmp = await tempDir();
  t.after(async () => {
    await ctd?.stop();
    await reg?.stop();
    await tmp.cleanup();
  });
  ctd = await startContainerd();
  reg = await startRegistry();
  // An image of our own, pushed with dist.
  const img = await makeImage({ layers: [{ compression: 'gzip', files: [{ name: 'etc/hello', content: 'hi\n' }] }, { compression: 'zstd', files: [{ name: 'etc/two', content: '2\n' }] }] });
  const ref = `${reg.host}/viaaddr/app:v1`;
  const svc = await openEmbedded(tmp.dir);
  for (const b of img.blobs) await writeBlob({ namespace: 'default' }, svc.content, `seed-${b.desc.digest}`, [b.bytes], b.desc);
  await svc.images.create({ namespace: 'default' }, { name: ref, target: img.manifest.desc });
  await svc.close();
  await distOK(['push', '--plain-http', ref], { root: tmp.dir });

  const addr = ['--address', ctd.address, '-n', 'viaaddr'];
  const pulled = await distOK([...addr, 'pull', '--plain-http', '--snapshotter', 'native', ref]);
  assert.match(pulled.stdout, /unpacked chain id: sha256:/);
  const ctr = async (...args: string[]) => (await run('ctr', ['--address', ctd!.address, '-n', 'viaaddr', ...args])).stdout;
  assert.equal(norm((await distOK([...addr, 'images', 'ls'])).stdout), norm(await ctr('images', 'ls')));
  assert.equal(norm((await distOK([...addr, 'images', 'check', '--snapshotter', 'native'])).stdout), norm(await ctr('images', 'check', '--snapshotter', 'native')));
  assert.equal(norm((await distOK([...addr, 'snapshots', '--snapshotter', 'native', 'ls'])).stdout), norm(await ctr('snapshots', '--snapshotter', 'native', 'ls')));
  assert.equal((await distOK([...addr, 'content', 'ls', '-q'])).stdout, await ctr('content', 'ls', '-q'));
  const ns = (await distOK(['--address', ctd.address, 'namespaces', 'ls', '-q'])).stdout;
  assert.equal(ns, (await run('ctr', ['--address', ctd.address, 'namespaces', 'ls', '-q'])).stdout);
  assert.ok(ns.split('\n').includes('viaaddr'));
});
