/**
 * compression: detection (magic bytes, media types), every decompressor
 * backend, tool failures and aborts as stream errors, compress round trips,
 * and applyLayer's diffID check over gzip / zstd / plain layers.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { applyLayer } from '../../src/archive/apply.js';
import {
  compress,
  compressionOfMediaType,
  decompress,
  detectCompression,
  findTool,
  MediaTypes,
  type GzipBackend,
  type ZstdBackend,
} from '../../src/archive/compression.js';
import { isCanceled, isFailedPrecondition, isNotImplemented } from '../../src/errdefs/index.js';
import { tempDir } from '../util/tmp.js';
import { sha256, streamOf, tar } from './util.js';

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Compressible test data: text with some noise. */
function sample(size: number): Buffer {
  const words = 'layer tar gzip zstd overlay snapshot content digest manifest index '.split(' ');
  const out: string[] = [];
  let len = 0;
  let i = 0;
  while (len < size) {
    const w = words[(i * 7919) % words.length]! + (i % 13 === 0 ? randomBytes(2).toString('hex') : '') + ' ';
    out.push(w);
    len += w.length;
    i++;
  }
  return Buffer.from(out.join('')).subarray(0, size);
}

function gzipTool(data: Buffer): Buffer {
  return execFileSync('gzip', ['-c', '-6'], { input: data, maxBuffer: 1 << 30 });
}

function zstdTool(data: Buffer): Buffer {
  return execFileSync('zstd', ['-c', '-q', '-3'], { input: data, maxBuffer: 1 << 30 });
}

const gzipBackends = (['igzip', 'unpigz', 'pigz', 'zlib'] as GzipBackend[]).filter((b) => b === 'zlib' || findTool(b));
const zstdBackends = (['zstd', 'napi'] as ZstdBackend[]).filter((b) => b === 'napi' || findTool('zstd'));

/** Pids of our direct children running `name`. */
function children(name: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && comm === name) out.push(Number(pid));
    } catch {
      /* gone */
    }
  }
  return out;
}

test('detectCompression: magic bytes', () => {
  assert.equal(detectCompression(gzipSync(Buffer.from('x'))), 'gzip');
  assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0])), 'zstd');
  assert.equal(detectCompression(Buffer.from([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1])), 'zstd'); // skippable frame
  assert.equal(detectCompression(Buffer.from([0x5f, 0x2a, 0x4d, 0x18, 4, 0, 0, 0])), 'zstd');
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b])), 'none', 'too short');
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 0x07])), 'none', 'gzip needs deflate (08)');
  assert.equal(detectCompression(tar([{ name: 'a', data: 'a' }])), 'none');
  assert.equal(detectCompression(Buffer.alloc(0)), 'none');
});

test('compressionOfMediaType', () => {
  assert.equal(compressionOfMediaType(MediaTypes.OCILayer), 'none');
  assert.equal(compressionOfMediaType(MediaTypes.OCILayerGzip), 'gzip');
  assert.equal(compressionOfMediaType(MediaTypes.OCILayerZstd), 'zstd');
  assert.equal(compressionOfMediaType(MediaTypes.OCILayerNonDistributableGzip), 'gzip');
  assert.equal(compressionOfMediaType(MediaTypes.DockerLayer), 'none');
  assert.equal(compressionOfMediaType(MediaTypes.DockerLayerGzip), 'gzip');
  assert.equal(compressionOfMediaType(MediaTypes.DockerLayerForeignGzip), 'gzip');
  assert.equal(compressionOfMediaType('application/vnd.oci.image.layer.v1.tar+gzip; foo=bar'), 'gzip');
  assert.equal(compressionOfMediaType('application/octet-stream'), undefined);
  assert.throws(() => compressionOfMediaType('application/vnd.oci.image.layer.v1.tar+bzip2'), isNotImplemented);
});

for (const backend of gzipBackends) {
  test(`gzip via ${backend}: multi-member stream, small chunks`, async () => {
    const a = sample(3 << 20);
    const b = sample(100_000);
    const gz = Buffer.concat([gzipTool(a), gzipSync(b)]);
    let seen = '';
    const out = await collect(decompress(streamOf(gz, 10_000), { gzip: backend, onDetect: (c, be) => (seen = `${c}/${be}`) }));
    assert.equal(seen, `gzip/${backend}`);
    assert.equal(sha256(out), sha256(Buffer.concat([a, b])));
  });

  test(`gzip via ${backend}: corrupt input is a stream error`, async () => {
    const gz = gzipTool(sample(1 << 20));
    const truncated = gz.subarray(0, gz.length >> 1);
    await assert.rejects(collect(decompress(streamOf(truncated), { gzip: backend })), (err: Error) => {
      if (backend !== 'zlib') assert.match(err.message, new RegExp(`${backend}.*exit status`));
      return true;
    });
    const garbage = Buffer.concat([gz.subarray(0, 20), randomBytes(50_000)]);
    await assert.rejects(collect(decompress(streamOf(garbage), { gzip: backend })));
  });
}

for (const backend of zstdBackends) {
  test(`zstd via ${backend}`, async () => {
    const a = sample(2 << 20);
    const out = await collect(decompress(streamOf(zstdTool(a), 4096), { zstd: backend }));
    assert.equal(sha256(out), sha256(a));
    const bad = zstdTool(a).subarray(0, 5000);
    await assert.rejects(collect(decompress(streamOf(bad), { zstd: backend })));
  });
}

test('plain input passes through; the magic bytes decide, not the media type', async () => {
  const t = tar([{ name: 'f', data: 'plain' }]);
  assert.equal(sha256(await collect(decompress(streamOf(t, 100)))), sha256(t));
  // a gzip blob labelled as a plain tar is still gunzipped (magic wins, as containerd)
  const gz = gzipSync(t);
  assert.equal(sha256(await collect(decompress(streamOf(gz), { mediaType: MediaTypes.OCILayer }))), sha256(t));
  // labelled gzip but plain: read as plain (containerd's DecompressStream)
  assert.equal(sha256(await collect(decompress(streamOf(t), { mediaType: MediaTypes.OCILayerGzip }))), sha256(t));
  // an unknown compression in the media type is refused
  await assert.rejects(collect(decompress(streamOf(t), { mediaType: 'application/vnd.oci.image.layer.v1.tar+bzip2' })), isNotImplemented);
  // empty input: empty output (containerd treats it as an empty uncompressed layer)
  assert.equal((await collect(decompress(streamOf(Buffer.alloc(0))))).length, 0);
});

test('input errors surface as output errors', async () => {
  const gz = gzipTool(sample(1 << 20));
  async function* failing() {
    yield gz.subarray(0, 50_000);
    throw new Error('network reset');
  }
  await assert.rejects(collect(decompress(Readable.from(failing(), { objectMode: false }))), /network reset/);
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const childBackend: GzipBackend | undefined = findTool('igzip') ? 'igzip' : findTool('unpigz') ? 'unpigz' : undefined;

test('abort kills the decompressor child and fails with Canceled', { skip: !childBackend }, async () => {
  const gz = gzipTool(sample(8 << 20));
  const ac = new AbortController();
  let n = 0;
  // a source that stalls after a little data, so the child is alive when we abort
  const src = new Readable({
    read() {
      if (n++ === 0) this.push(gz.subarray(0, 100_000));
    },
  });
  const done = collect(decompress(src, { gzip: childBackend, signal: ac.signal }));
  await waitFor(() => children(childBackend!).length === 1);
  ac.abort(new Error('user abort'));
  await assert.rejects(done, (err) => isCanceled(err));
  await waitFor(() => children(childBackend!).length === 0);
  assert.ok(src.destroyed);
});

test('destroying the output early kills the child', { skip: !childBackend }, async () => {
  const gz = gzipTool(sample(16 << 20));
  const out = decompress(streamOf(gz, 65536), { gzip: childBackend });
  const it = out[Symbol.asyncIterator]();
  await it.next();
  assert.equal(children(childBackend!).length, 1);
  out.destroy();
  await waitFor(() => children(childBackend!).length === 0);
});

test('compress round trips (tools and builtin)', async () => {
  const data = sample(1 << 20);
  for (const builtin of [false, true]) {
    for (const c of ['gzip', 'zstd', 'none'] as const) {
      const z = await collect(compress(streamOf(data, 50_000), c, { builtin }));
      assert.equal(detectCompression(z), c, `${c} builtin=${builtin}`);
      assert.equal(sha256(await collect(decompress(streamOf(z)))), sha256(data));
    }
  }
});

const layerEntries = [
  { name: 'etc/os-release', data: 'ID=test\n' },
  { name: 'usr/bin/tool', data: sample(200_000), mode: 0o755 },
  { name: 'usr/lib/libx.so', type: 'symlink', linkname: 'libx.so.1' },
];

test('applyLayer: gzip, zstd and plain, by media type and by magic; diffID verified', async () => {
  const plain = tar(layerEntries, { record: 10240 });
  const diffID = sha256(plain);
  const variants: Array<[string, Buffer, string | undefined]> = [
    ['gzip', gzipTool(plain), MediaTypes.OCILayerGzip],
    ['gzip', gzipSync(plain), undefined],
    ['gzip', gzipTool(plain), MediaTypes.DockerLayerGzip],
    ['zstd', zstdTool(plain), MediaTypes.OCILayerZstd],
    ['zstd', zstdTool(plain), 'application/octet-stream'],
    ['none', plain, MediaTypes.OCILayer],
    ['none', plain, MediaTypes.DockerLayerGzip], // some registries serve plain tars under the gzip type
    ['none', plain, undefined],
  ];
  for (const [want, blob, mediaType] of variants) {
    const { dir, cleanup } = await tempDir();
    const r = await applyLayer(dir, streamOf(blob, 32768), { mediaType, expectedDiffID: diffID });
    assert.equal(r.compression, want, `${want} ${mediaType}`);
    assert.equal(r.diffID, diffID);
    assert.equal(r.size, plain.length);
    assert.equal(await fsp.readFile(join(dir, 'etc/os-release'), 'utf8'), 'ID=test\n');
    assert.equal(await fsp.readlink(join(dir, 'usr/lib/libx.so')), 'libx.so.1');
    await cleanup();
  }
});

test('applyLayer: diffID mismatch is FailedPrecondition naming both digests', async () => {
  const plain = tar(layerEntries);
  const wrong = sha256('something else');
  const { dir, cleanup } = await tempDir();
  await assert.rejects(applyLayer(dir, streamOf(gzipTool(plain)), { expectedDiffID: wrong }), (err: Error) => {
    assert.ok(isFailedPrecondition(err));
    assert.ok(err.message.includes(wrong));
    assert.ok(err.message.includes(sha256(plain)));
    return true;
  });
  // trailing bytes after the end-of-archive marker count
  const padded = Buffer.concat([plain, Buffer.alloc(4096)]);
  const r = await applyLayer(dir, streamOf(gzipTool(padded)), { expectedDiffID: sha256(padded) });
  assert.equal(r.diffID, sha256(padded));
  await cleanup();
});

test('applyLayer: a corrupt blob fails the apply with the tool error', async () => {
  const plain = tar(layerEntries);
  const gz = gzipTool(plain);
  const { dir, cleanup } = await tempDir();
  await assert.rejects(applyLayer(dir, streamOf(gz.subarray(0, gz.length - 100))));
  await cleanup();
});

test('text helper sanity (decompress output is a byte stream)', async () => {
  assert.equal(await text(decompress(streamOf(gzipSync(Buffer.from('héllo'))))), 'héllo');
});
