#!/usr/bin/env node
// Generates a one-layer OCI image of a chosen size straight into a dist root
// (through the library) and records it as an image, for measuring pulls by
// image size. Nothing is held in memory: the layer is streamed through tar
// and gzip into a temporary file, then into the content store.
// Usage: node scripts/gen-image.mjs ROOT NAME MIB [FILES]
//   MIB    uncompressed file bytes in the layer (MiB)
//   FILES  how many files share them (default: one per 4 MiB, at least 1)
// File contents are deterministic (AES-128-CTR of zeros keyed by the file's
// index) with every other 4 KiB block zeroed, so gzip halves them roughly,
// like real layers; names, owners and times are fixed: the same arguments
// give the same digests.
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants } from 'node:zlib';
import tarStream from 'tar-stream';
import { sha, storeImage } from './image-store.mjs';

const [root, name, mibArg, filesArg] = process.argv.slice(2);
const mib = Number(mibArg);
if (!root || !name || !(mib > 0)) {
  console.error('usage: gen-image.mjs ROOT NAME MIB [FILES]');
  process.exit(2);
}
const MiB = 1 << 20;
const total = Math.round(mib * MiB);
const files = Math.max(1, Number(filesArg) || Math.ceil(total / (4 * MiB)));
const work = mkdtempSync(join(tmpdir(), 'dist-gen-'));
const mtime = new Date('2024-01-01T00:00:00Z');

/** Writes the bytes of file i (n bytes) into the tar entry, 1 MiB at a time. */
async function fill(entry, i, n) {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(i, 12);
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(MiB);
  for (let off = 0; off < n; off += MiB) {
    const b = c.update(zeros.subarray(0, Math.min(MiB, n - off)));
    for (let k = 4096; k < b.length; k += 8192) b.fill(0, k, k + 4096);
    if (!entry.write(b)) await new Promise((r) => entry.once('drain', r));
  }
  entry.end();
}

const pack = tarStream.pack();
const produce = (async () => {
  pack.entry({ name: 'data/', type: 'directory', mode: 0o755, mtime, uid: 0, gid: 0 });
  for (let i = 0; i < files; i++) {
    const n = Math.floor(total / files) + (i < total % files ? 1 : 0);
    const entry = pack.entry({ name: `data/f${String(i).padStart(6, '0')}`, size: n, mode: 0o644, mtime, uid: 0, gid: 0 });
    await fill(entry, i, n);
  }
  pack.finalize();
})();

// the uncompressed digest (diff ID) is taken on the way into gzip
const diff = createHash('sha256');
const tap = new Transform({
  transform(chunk, _enc, cb) {
    diff.update(chunk);
    cb(null, chunk);
  },
});
const gzPath = join(work, 'layer.tar.gz');
await Promise.all([produce, pipeline(pack, tap, createGzip({ level: 1, memLevel: 9, strategy: constants.Z_DEFAULT_STRATEGY }), createWriteStream(gzPath))]);
const gzDigest = await new Promise((resolve, reject) => {
  const h = createHash('sha256');
  createReadStream(gzPath).on('data', (b) => h.update(b)).on('end', () => resolve('sha256:' + h.digest('hex'))).on('error', reject);
});
const gzSize = statSync(gzPath).size;

const config = Buffer.from(JSON.stringify({
  architecture: 'amd64', os: 'linux',
  config: { Env: ['PATH=/bin'], WorkingDir: '/' },
  rootfs: { type: 'layers', diff_ids: ['sha256:' + diff.digest('hex')] },
  history: [{ created_by: `dist gen-image ${mib} MiB in ${files} files` }],
}));
const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: gzDigest, size: gzSize };
const target = await storeImage(root, name, { config, layers: [{ desc: layer, src: createReadStream(gzPath) }] });
rmSync(work, { recursive: true, force: true });
console.log(`${name}: ${target.digest} (${files} files, ${mib} MiB, layer ${(gzSize / MiB).toFixed(1)} MiB gzip)`);
