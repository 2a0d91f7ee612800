/**
 * content/proxy reader: random access over the Read server stream, as
 * containerd's remoteReaderAt. Every readAt is one Read(offset, size) call;
 * stream() is one Read from an offset, pulled with the stream's backpressure.
 */
import { Readable } from 'node:stream';
import type * as grpc from '@grpc/grpc-js';
import { serverStreamCall } from '../../api/grpc/client.js';
import { int64 } from '../../api/grpc/loader.js';
import type { content as api, In } from '../../api/grpc/messages.js';
import { canceled } from '../../errdefs/index.js';
import type { Ctx } from '../../internal/context.js';
import type { ReaderAt } from '../types.js';

function anySignal(a?: AbortSignal, b?: AbortSignal): AbortSignal | undefined {
  if (!a) return b;
  if (!b) return a;
  return AbortSignal.any([a, b]);
}

export class RemoteReaderAt implements ReaderAt {
  private closed = false;

  constructor(
    private readonly client: grpc.Client,
    private readonly ctx: Ctx,
    readonly digest: string,
    readonly size: number,
  ) {}

  private read(offset: number, size: number, signal?: AbortSignal): AsyncGenerator<api.ReadContentResponse> {
    const req: In<api.ReadContentRequest> = { digest: this.digest, offset: int64(offset), size: int64(size) };
    return serverStreamCall<In<api.ReadContentRequest>, api.ReadContentResponse>(this.client, 'Read', req, { ...this.ctx, signal: anySignal(this.ctx.signal, signal) });
  }

  async readAt(buf: Uint8Array, offset: number): Promise<number> {
    if (this.closed) throw canceled(`reader of ${this.digest} is closed`);
    if (offset >= this.size || buf.length === 0) return 0;
    // Size 0 means "to the end" on the wire: never send it.
    const want = Math.min(buf.length, this.size - offset);
    let n = 0;
    for await (const resp of this.read(offset, want)) {
      const data = resp.data;
      const c = Math.min(data.length, want - n);
      buf.set(data.subarray(0, c), n);
      n += c;
      if (n >= want) break;
    }
    return n;
  }

  stream(opts: { offset?: number; length?: number; signal?: AbortSignal } = {}): Readable {
    const offset = opts.offset ?? 0;
    const length = opts.length === undefined ? this.size - offset : Math.min(opts.length, this.size - offset);
    if (this.closed) return Readable.from((async function* () { throw canceled('reader is closed'); })(), { objectMode: false });
    if (length <= 0 || offset >= this.size) {
      if (opts.signal?.aborted) return Readable.from((async function* () { throw canceled('operation canceled', opts.signal?.reason); })(), { objectMode: false });
      return Readable.from([], { objectMode: false });
    }
    const self = this;
    async function* gen(): AsyncGenerator<Buffer> {
      if (opts.signal?.aborted) throw canceled('operation canceled', opts.signal.reason);
      let n = 0;
      for await (const resp of self.read(offset, length, opts.signal)) {
        const c = Math.min(resp.data.length, length - n);
        if (c > 0) yield c === resp.data.length ? resp.data : resp.data.subarray(0, c);
        n += c;
        if (n >= length) break;
      }
    }
    return Readable.from(gen(), { objectMode: false });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
