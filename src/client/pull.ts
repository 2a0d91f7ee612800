/**
 * client/pull: fetch + unpack, pipelined. The fetch runs as `dist fetch`
 * does; the unpacker runs at the same time, reading content through a
 * provider that waits for blobs still being downloaded, so layer i is
 * applied as soon as it and layer i-1's snapshot are ready. Both run under
 * one lease. Re-pulling an unpacked image does no work beyond resolving.
 */
import type { Descriptor, Provider, ReaderAt } from '../content/types.js';
import { isNotFound } from '../errdefs/index.js';
import type { Ctx } from '../internal/context.js';
import { withLease, type Services } from '../services/types.js';
import { fetchImage, platformMatcher, type FetchOptions, type FetchResult } from './fetch.js';
import { unpackImage, type UnpackResult } from './unpack.js';
import { LocalApplier } from '../diff/local.js';
import { TeeingIngester } from './tee.js';

export interface PullOptions extends FetchOptions {
  snapshotter: string;
  /** Fetch only (no unpack). */
  noUnpack?: boolean;
}

export interface PullResult extends FetchResult {
  unpack?: UnpackResult;
}

export async function pullImage(svc: Services, ctx: Ctx, ref: string, opts: PullOptions): Promise<PullResult> {
  return withLease(svc, ctx, async (lctx) => {
    const ac = new AbortController();
    const signal = lctx.signal ? AbortSignal.any([lctx.signal, ac.signal]) : ac.signal;
    const ctx2 = { ...lctx, signal };
    const waiter = new BlobWaiter(svc.content);
    let rootResolved: (d: Descriptor) => void = () => undefined;
    const root = new Promise<Descriptor>((r) => (rootResolved = r));
    // Layers applied on this machine can start while they download.
    const tee = svc.diff instanceof LocalApplier && !opts.noUnpack ? new TeeingIngester(svc.content) : undefined;
    const fetching = fetchImage(svc, ctx2, ref, {
      ...opts,
      ingester: tee,
      onProgress: (ev) => {
        opts.onProgress?.(ev);
        if ((ev.state === 'done' || ev.state === 'exists') && ev.ref.includes('sha256:')) {
          const digest = ev.ref.slice(ev.ref.indexOf('sha256:'));
          waiter.committed(digest);
          tee?.settle(digest);
        }
      },
      onResolved: (d) => rootResolved(d),
    });
    fetching.then(() => waiter.finish(), (err) => waiter.finish(err)).finally(() => tee?.end());
    const unpacking = opts.noUnpack
      ? Promise.resolve(undefined)
      : Promise.race([root, fetching.then((r) => r.image.target)]).then((target) =>
          unpackImage(svc, ctx2, target, {
            snapshotter: opts.snapshotter,
            platform: platformMatcher(opts),
            onProgress: opts.onProgress,
            provider: waiter,
            claimStream: tee ? (d) => tee.claim(d.digest) : undefined, // only the first layer is taken live
          }),
        );
    unpacking.catch((err) => ac.abort(err));
    try {
      const [fetched, unpack] = await Promise.all([fetching, unpacking]);
      return { ...fetched, unpack };
    } finally {
      tee?.end();
    }
  });
}

/**
 * A Provider over the content store whose readerAt waits, for a blob not yet
 * present, until the fetch commits it (or the fetch ends: then NotFound).
 */
class BlobWaiter implements Provider {
  private readonly waiters = new Map<string, (() => void)[]>();
  private done = false;
  private error: unknown;

  constructor(private readonly content: Provider) {}

  committed(digest: string): void {
    const ws = this.waiters.get(digest);
    this.waiters.delete(digest);
    ws?.forEach((w) => w());
  }

  finish(err?: unknown): void {
    this.done = true;
    this.error = err;
    for (const ws of this.waiters.values()) ws.forEach((w) => w());
    this.waiters.clear();
  }

  async readerAt(ctx: Ctx, desc: Pick<Descriptor, 'digest'> & Partial<Descriptor>): Promise<ReaderAt> {
    for (;;) {
      const wait = this.done ? undefined : new Promise<void>((r) => this.waiters.set(desc.digest, [...(this.waiters.get(desc.digest) ?? []), r]));
      try {
        return await this.content.readerAt(ctx, desc);
      } catch (err) {
        if (!isNotFound(err) || !wait) {
          if (this.error && isNotFound(err)) throw this.error;
          throw err;
        }
      }
      await wait;
    }
  }
}
