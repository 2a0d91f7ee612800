#!/usr/bin/env node
// Generates a small OCI image (two gzip layers: busybox-static with a few
// files, then a layer that modifies and whites out a file) straight into a
// dist root through the library, and records it as an image.
// Usage: node scripts/demo-image.mjs ROOT NAME
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { sha, storeImage } from './image-store.mjs';

const [root, name] = process.argv.slice(2);
if (!root || !name) {
  console.error('usage: demo-image.mjs ROOT NAME');
  process.exit(2);
}
const work = mkdtempSync(join(tmpdir(), 'dist-demo-'));

function layer(dir) {
  // GNU tar, sorted, root-owned, fixed mtime: reproducible bytes.
  const tar = execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=2024-01-01 00:00Z', '-C', dir, '-cf', '-', '.'], { maxBuffer: 1 << 28 });
  const gz = execFileSync('gzip', ['-n', '-6'], { input: tar, maxBuffer: 1 << 28 });
  return { tar, gz };
}

const l1 = join(work, 'l1');
mkdirSync(join(l1, 'bin'), { recursive: true });
mkdirSync(join(l1, 'etc'), { recursive: true });
if (existsSync('/bin/busybox')) {
  copyFileSync('/bin/busybox', join(l1, 'bin/busybox'));
  for (const t of ['sh', 'ls', 'cat', 'echo']) symlinkSync('busybox', join(l1, 'bin', t));
}
writeFileSync(join(l1, 'etc/motd'), 'hello from the dist demo image\n');
writeFileSync(join(l1, 'etc/old.conf'), 'removed by layer 2\n');
const l2 = join(work, 'l2');
mkdirSync(join(l2, 'etc'), { recursive: true });
writeFileSync(join(l2, 'etc/motd'), 'motd from layer 2\n');
writeFileSync(join(l2, 'etc/.wh.old.conf'), '');

const layers = [layer(l1), layer(l2)];
const config = Buffer.from(JSON.stringify({
  architecture: 'amd64', os: 'linux',
  config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'], WorkingDir: '/' },
  rootfs: { type: 'layers', diff_ids: layers.map((l) => sha(gunzipSync(l.gz))) },
  history: [{ created_by: 'dist demo layer 1' }, { created_by: 'dist demo layer 2' }],
}));
const target = await storeImage(root, name, {
  config,
  layers: layers.map((l) => ({ desc: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(l.gz), size: l.gz.length }, src: [l.gz] })),
});
rmSync(work, { recursive: true, force: true });
console.log(`${name}: ${target.digest}`);
