#!/usr/bin/env node
// Generates a small OCI image (two gzip layers: busybox-static with a few
// files, then a layer that modifies and whites out a file) straight into a
// dist root through the library, and records it as an image.
// Usage: node scripts/demo-image.mjs ROOT NAME
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { openEmbedded } from '../build/src/services/embedded.js';
import { writeBlob } from '../build/src/content/helpers.js';

const [root, name] = process.argv.slice(2);
if (!root || !name) {
  console.error('usage: demo-image.mjs ROOT NAME');
  process.exit(2);
}
const sha = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');
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
const manifest = Buffer.from(JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
  layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(l.gz), size: l.gz.length })),
}));

const svc = await openEmbedded(root);
const ctx = { namespace: process.env.CONTAINERD_NAMESPACE || 'default' };
const put = (b) => writeBlob(ctx, svc.content, `demo-${sha(b)}`, [b], { size: b.length, digest: sha(b) });
for (const l of layers) await put(l.gz);
await put(config);
await put(manifest);
const labels = {
  'containerd.io/gc.ref.content.config': sha(config),
  ...Object.fromEntries(layers.map((l, i) => [`containerd.io/gc.ref.content.l.${i}`, sha(l.gz)])),
};
await svc.content.update(ctx, { digest: sha(manifest), labels }, Object.keys(labels).map((k) => `labels.${k}`));
const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length };
await svc.images.delete(ctx, name).catch(() => undefined);
await svc.images.create(ctx, { name, target });
await svc.close();
rmSync(work, { recursive: true, force: true });
console.log(`${name}: ${target.digest}`);
