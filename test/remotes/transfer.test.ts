/**
 * fetchBlob's transfer loop: network chunks gathered into 1 MiB writes, the
 * gather buffer refilled after each write settles, unless the writer says it
 * keeps what it is given (then every write gets its own buffer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Descriptor } from '../../src/content/types.js';
import type { Status, Writer, Ingester } from '../../src/content/types.js';
import type { Fetcher } from '../../src/remotes/types.js';
import { fetchBlob } from '../../src/remotes/handlers.js';

const blob = randomBytes(3 * (1 << 20) + 12345);
const desc: Descriptor = {
  mediaType: 'application/octet-stream',
  digest: `sha256:${createHash('sha256').update(blob).digest('hex')}`,
  size: blob.length,
};

/** Serves blob in 7000-byte network chunks, each a fresh copy. */
const fetcher: Fetcher = {
  async fetch() {
    return Readable.from((function* () {
      for (let i = 0; i < blob.length; i += 7000) yield Buffer.from(blob.subarray(i, i + 7000));
    })());
  },
};

/** Records what it is given by reference; hashes at write time, as the content store does. */
function recordingIngester(retainsChunks: boolean) {
  const kept: Uint8Array[] = [];
  const hash = createHash('sha256');
  let offset = 0;
  let committed = false;
  const w: Writer = {
    ref: 'r',
    retainsChunks,
    async write(chunk) {
      kept.push(chunk);
      hash.update(chunk);
      offset += chunk.length;
    },
    digest: () => `sha256:${hash.copy().digest('hex')}`,
    async status(): Promise<Status> {
      return { ref: 'r', offset, total: blob.length, expected: desc.digest, startedAt: 0n, updatedAt: 0n } as unknown as Status;
    },
    async truncate() {
      throw new Error('not expected');
    },
    async commit() {
      committed = true;
    },
    async close() {},
  };
  const ingester: Ingester = { writer: async () => w };
  return { ingester, kept, committed: () => committed };
}

for (const retains of [false, true]) {
  test(`fetchBlob: ${retains ? 'a writer that keeps chunks gets a buffer per write' : 'one gather buffer, refilled after each write'}`, async () => {
    const r = recordingIngester(retains);
    await fetchBlob({}, r.ingester, fetcher, desc);
    assert.ok(r.committed());
    assert.ok(r.kept.length >= 4, `${r.kept.length} writes`);
    assert.ok(r.kept.every((c) => c.length <= 1 << 20));
    const buffers = new Set(r.kept.map((c) => c.buffer));
    if (retains) {
      // what the writer kept still reads as the blob
      assert.equal(buffers.size, r.kept.length);
      assert.ok(Buffer.concat(r.kept).equals(blob));
    } else {
      assert.equal(buffers.size, 1, 'every gathered write comes from the same buffer');
    }
  });
}
