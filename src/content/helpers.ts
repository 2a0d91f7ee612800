/** content helpers: write a whole blob from a stream, read small blobs. */
import type { Readable } from 'node:stream';
import { failedPrecondition, invalidArgument, isAlreadyExists, throwIfAborted } from '../errdefs/index.js';
import type { Ctx } from '../internal/context.js';
import type { CommitOpts, Descriptor, Ingester, Provider, Writer } from './types.js';

/**
 * Writes a blob from `src` under `ref` and commits it against desc (size,
 * digest; either may be 0/'' to skip the check). Resumes an existing ingest
 * by skipping the bytes already written. A blob already present counts as
 * success (AlreadyExists is swallowed), as in containerd's WriteBlob.
 */
export async function writeBlob(ctx: Ctx, cs: Ingester, ref: string, src: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Readable, desc: Partial<Descriptor>, opts?: CommitOpts): Promise<void> {
  let w: Writer;
  try {
    w = await cs.writer(ctx, { ref, desc });
  } catch (err) {
    if (isAlreadyExists(err)) return;
    throw err;
  }
  try {
    await copyInto(ctx, w, src, desc.size ?? 0);
    await w.commit(ctx, desc.size ?? 0, desc.digest ?? '', opts);
  } catch (err) {
    if (isAlreadyExists(err)) return;
    throw err;
  } finally {
    await w.close();
  }
}

/**
 * Copies src into w from w's current offset: the first `offset` bytes of src
 * are skipped (resume). Writes are awaited one by one (backpressure).
 */
export async function copyInto(ctx: Ctx, w: Writer, src: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Readable, size = 0): Promise<void> {
  const st = await w.status();
  let skip = st.offset;
  if (size > 0 && skip > size) {
    await w.truncate(0);
    skip = 0;
  }
  for await (const chunk of src as AsyncIterable<Uint8Array>) {
    throwIfAborted(ctx.signal);
    let c = chunk;
    if (skip > 0) {
      if (c.length <= skip) {
        skip -= c.length;
        continue;
      }
      c = c.subarray(skip);
      skip = 0;
    }
    await w.write(c, ctx.signal);
  }
  if (skip > 0) throw failedPrecondition(`${w.ref}: source ended before the ${st.offset} bytes already ingested`);
}

/** Default cap for blobs read whole (manifests, indexes, configs). */
export const MAX_READ_BLOB = 16 << 20;

/**
 * Reads a whole (small) blob. Refuses one larger than maxSize with
 * InvalidArgument, before reading when the descriptor says so; a short read
 * is InvalidArgument too.
 */
export async function readBlob(ctx: Ctx, p: Provider, desc: Pick<Descriptor, 'digest'> & Partial<Descriptor>, maxSize = MAX_READ_BLOB): Promise<Buffer> {
  if (desc.size !== undefined && desc.size > maxSize) throw invalidArgument(`blob ${desc.digest}: size ${desc.size} exceeds limit of ${maxSize} bytes`);
  const ra = await p.readerAt(ctx, desc);
  try {
    if (ra.size > maxSize) throw invalidArgument(`blob ${desc.digest}: size ${ra.size} exceeds limit of ${maxSize} bytes`);
    const buf = Buffer.allocUnsafe(ra.size);
    let off = 0;
    while (off < ra.size) {
      const n = await ra.readAt(buf.subarray(off), off);
      if (n === 0) break;
      off += n;
    }
    if (off !== ra.size) throw invalidArgument(`blob ${desc.digest}: unexpected EOF after ${off} of ${ra.size} bytes`);
    return buf;
  } finally {
    await ra.close();
  }
}
