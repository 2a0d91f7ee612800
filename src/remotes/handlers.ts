/**
 * remotes/handlers: the image handlers that move content between a registry
 * and a content store (containerd's remotes/handlers.go).
 *
 * Fetch contract (fetchHandler): each blob is written through an ingest
 * whose ref is makeRefKey(desc), so an interrupted pull resumes where it
 * stopped (from the writer's offset, using a ranged fetch). Every byte is
 * hashed on the way in and the commit is made against desc's size and
 * digest: a blob that is too long, too short or has the wrong digest is never
 * committed (a wrong-digest ingest is truncated so the next pull starts
 * clean). A transfer that breaks mid-stream is resumed from the writer's
 * offset; maxAttempts consecutive failures (a failure that made progress
 * restarts the count) give up with Unavailable.
 *
 * Push contract (pushHandler/pushContent): blobs are streamed from the
 * provider and re-verified against desc before the upload is committed;
 * children are pushed before the manifests that reference them and the
 * root last, so a registry never sees a dangling reference.
 */
import type { Readable } from 'node:stream';
import {
  Code, canceled, codeOf, failedPrecondition, invalidArgument, isAlreadyExists, isCanceled, isUnavailable,
  notImplemented, throwIfAborted, unavailable, withHint, wrap,
} from '../errdefs/index.js';
import * as digests from '../digest/index.js';
import type { Ctx } from '../internal/context.js';
import type { Descriptor, Info, Ingester, Manager, Provider, Writer } from '../content/types.js';
import type { Fetcher, Pusher, PushWriter } from './types.js';
import { childrenHandler, dispatch, filterPlatforms, handlers, ErrStopHandler, ErrSkipDesc, type Handler, type Semaphore } from '../images/handlers.js';
import {
  AnnotationRefName, MediaTypeDockerSchema1Manifest, isConfig, isIndex, isKnownConfig, isLayer, isManifest, isNonDistributable,
} from '../images/mediatypes.js';
import type { Matcher } from '../platforms/index.js';
import { MAX_LABEL_SIZE } from '../internal/fieldpaths.js';
import { appendDistributionSource, distributionSourceLabelKey, LabelDistributionSource } from './source.js';

export type ProgressState = 'resolving' | 'waiting' | 'downloading' | 'uploading' | 'done' | 'exists' | 'error';

export interface ProgressEvent {
  /** The ingest ref key (makeRefKey). */
  ref: string;
  desc: Descriptor;
  state: ProgressState;
  /** Bytes in place so far (for 'done'/'exists': the size). */
  offset: number;
  total: number;
  /** Set with state 'error'. */
  error?: unknown;
}

export type ProgressFn = (ev: ProgressEvent) => void;

/**
 * The ingest ref for a descriptor: `<kind>-<digest>` where kind is manifest,
 * index, layer, config or unknown; `<name>@<digest>` replaces the digest when
 * the descriptor carries an org.opencontainers.image.ref.name annotation.
 * prefixes maps a media type to a custom kind.
 */
export function makeRefKey(desc: Descriptor, prefixes?: Record<string, string>): string {
  let key = desc.digest;
  const name = desc.annotations?.[AnnotationRefName];
  if (name !== undefined) key = `${name}@${desc.digest}`;
  const custom = prefixes?.[desc.mediaType];
  if (custom) return `${custom}-${key}`;
  const mt = desc.mediaType;
  if (isManifest(mt)) return `manifest-${key}`;
  if (isIndex(mt)) return `index-${key}`;
  if (isLayer(mt)) return `layer-${key}`;
  if (isKnownConfig(mt)) return `config-${key}`;
  return `unknown-${key}`;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Opens a writer, waiting while another writer holds the ref (Unavailable):
 * retries with randomised backoff (up to ~2 s) until it gets the lock or
 * ctx.signal aborts, then rethrows the lock error. onWait runs once, on the
 * first wait.
 */
export async function openWriter(ctx: Ctx, ingester: Ingester, opts: { ref: string; desc?: Partial<Descriptor> }, onWait?: () => void): Promise<Writer> {
  let retry = 16;
  let waited = false;
  for (;;) {
    try {
      return await ingester.writer(ctx, opts);
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      if (ctx.signal?.aborted) throw err;
      if (!waited) {
        waited = true;
        onWait?.();
      }
      await sleep(Math.floor(Math.random() * retry), ctx.signal);
      if (ctx.signal?.aborted) throw err;
      if (retry < 2048) retry <<= 1;
    }
  }
}

export interface FetchHandlerOpts {
  onProgress?: ProgressFn;
  /** Labels set on each blob at commit (merged into existing blobs when the ingester is also a Manager). */
  labels?: Record<string, string>;
  /**
   * Consecutive failed transfers of one blob before giving up (default 5);
   * a failed transfer that made progress restarts the count at 1.
   */
  maxAttempts?: number;
  /** Base of the exponential backoff between attempts, ms (default 100; capped at 2 s). */
  retryDelayMs?: number;
  /** Media type → ref key prefix (containerd's WithMediaTypeKeyPrefix). */
  keyPrefixes?: Record<string, string>;
}

export const DEFAULT_FETCH_ATTEMPTS = 5;

/** Fetched bytes are written to the store in pieces of up to this size. */
const TRANSFER_WRITE = 1 << 20;

/** A failure of the transfer itself (network, short read): worth resuming. */
class TransferBroken extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}

const NET_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ERR_STREAM_PREMATURE_CLOSE']);

/** Errors from starting a fetch that a retry may cure. */
function retryableFetchError(err: unknown): boolean {
  if (isUnavailable(err)) return true;
  for (let e: any = err, d = 0; e != null && d < 8; e = e.cause, d++) {
    const c = e?.code;
    if (typeof c === 'string' && (NET_CODES.has(c) || c.startsWith('UND_ERR_SOCKET') || c === 'UND_ERR_CLOSED')) return true;
  }
  return false;
}

/**
 * Handler that fetches each descriptor's blob into the ingester (returns no
 * children: compose with childrenHandler for a recursive pull). Schema 1
 * manifests are refused (NotImplemented).
 */
export function fetchHandler(ingester: Ingester & Partial<Pick<Manager, 'update'>>, fetcher: Fetcher, opts: FetchHandlerOpts = {}): Handler {
  return async (ctx, desc) => {
    if (desc.mediaType === MediaTypeDockerSchema1Manifest) throw notImplemented(`${desc.mediaType} not supported`);
    await fetchBlob(ctx, ingester, fetcher, desc, opts);
    return [];
  };
}

/** Fetches one blob into the ingester (see the module contract). */
export async function fetchBlob(ctx: Ctx, ingester: Ingester & Partial<Pick<Manager, 'update'>>, fetcher: Fetcher, desc: Descriptor, opts: FetchHandlerOpts = {}): Promise<void> {
  const ref = makeRefKey(desc, opts.keyPrefixes);
  const emit = (state: ProgressState, offset: number, error?: unknown) => {
    if (!opts.onProgress) return;
    const ev: ProgressEvent = { ref, desc, state, offset, total: desc.size };
    if (error !== undefined) ev.error = error;
    opts.onProgress(ev);
  };
  const exists = async () => {
    if (opts.labels && Object.keys(opts.labels).length > 0 && ingester.update) {
      await ingester.update(ctx, { digest: desc.digest, labels: opts.labels }, Object.keys(opts.labels).map((k) => `labels.${k}`));
    }
    emit('exists', desc.size);
  };

  let w: Writer;
  try {
    w = await openWriter(ctx, ingester, { ref, desc }, () => emit('waiting', 0));
  } catch (err) {
    if (isAlreadyExists(err)) return exists();
    emit('error', 0, err);
    throw err;
  }

  let committed = false;
  let offset = 0;
  try {
    if (desc.size === 0) {
      // Usually a registry that sent no Content-Length; committing an empty blob would hide that.
      throw invalidArgument(`unable to fetch descriptor (${desc.digest}) which reports content size of zero`);
    }
    offset = (await w.status()).offset;
    if (offset > desc.size) {
      await w.truncate(0);
      offset = 0;
    }
    emit('downloading', offset);

    const maxAttempts = Math.max(1, opts.maxAttempts ?? DEFAULT_FETCH_ATTEMPTS);
    const baseDelay = opts.retryDelayMs ?? 100;
    let failures = 0;
    while (offset < desc.size) {
      const before = offset;
      try {
        offset = await transfer(ctx, fetcher, desc, w, offset, (o) => emit('downloading', o));
      } catch (err) {
        if (!(err instanceof TransferBroken) || ctx.signal?.aborted) throw err instanceof TransferBroken ? (err.cause ?? err) : err;
        offset = (await w.status()).offset;
        failures = offset > before ? 1 : failures + 1;
        if (failures >= maxAttempts) {
          const cause = err.cause ?? err;
          const code = codeOf(cause);
          throw wrap(code === Code.Unknown ? Code.Unavailable : code, `failed to fetch ${desc.digest} after ${failures} consecutive failed attempt(s): ${err.message}`, cause);
        }
        await sleep(Math.min(2000, baseDelay * 2 ** (failures - 1)), ctx.signal);
        throwIfAborted(ctx.signal);
      }
    }

    const got = w.digest();
    if (got !== desc.digest) {
      // Wrong bytes: drop them so a later attempt doesn't resume onto garbage.
      await w.truncate(0);
      throw failedPrecondition(`failed commit on ref ${JSON.stringify(ref)}: unexpected commit digest ${got}, expected ${desc.digest}`);
    }
    committed = true;
    try {
      await w.commit(ctx, desc.size, desc.digest, opts.labels ? { labels: opts.labels } : undefined);
    } catch (err) {
      if (isAlreadyExists(err)) return await exists();
      throw wrap(codeOf(err), `failed commit on ref ${JSON.stringify(ref)}`, err);
    }
    emit('done', desc.size);
  } catch (err) {
    emit('error', offset, err);
    throw err;
  } finally {
    if (!committed) await w.close();
  }
}

/**
 * One ranged fetch from offset into w. Returns the new offset (== size on
 * success). Throws TransferBroken when the stream fails or ends short; other
 * errors (writer, size overflow, fetch refused) are final.
 */
async function transfer(ctx: Ctx, fetcher: Fetcher, desc: Descriptor, w: Writer, offset: number, progress: (offset: number) => void): Promise<number> {
  throwIfAborted(ctx.signal);
  let rs: Readable;
  try {
    rs = await fetcher.fetch(ctx, desc, offset > 0 ? { offset } : {});
  } catch (err) {
    if (!ctx.signal?.aborted && retryableFetchError(err)) throw new TransferBroken(`fetch ${desc.digest}: ${(err as Error)?.message ?? err}`, err);
    throw err;
  }
  const onAbort = () => rs.destroy(canceled('operation canceled', ctx.signal?.reason));
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  const it = rs[Symbol.asyncIterator]() as AsyncIterator<Uint8Array | string>;
  let cur = offset;
  // Network chunks (often 16-64 KiB) are gathered into writes of up to 1 MiB
  // (fewer write calls into the store); what arrived is written before a
  // break or a cancel, so a resume starts right after it. One buffer, refilled
  // once each write settled, unless the writer keeps what it is given (then
  // one per write, from the writer's chunkBuffer when it recycles them).
  const reuse = !w.retainsChunks;
  const fresh = () => w.chunkBuffer?.(TRANSFER_WRITE) ?? Buffer.allocUnsafe(TRANSFER_WRITE);
  let gather = fresh();
  let gathered = 0;
  // Writes ignore the signal: what arrived is kept for a resume, even when canceled.
  const put = async (data: Uint8Array) => {
    await w.write(data);
    cur += data.length;
    progress(cur);
  };
  const flush = async () => {
    if (gathered === 0) return;
    const data = gather.subarray(0, gathered);
    if (!reuse) gather = fresh();
    gathered = 0;
    await put(data);
  };
  try {
    for (;;) {
      let r: IteratorResult<Uint8Array | string>;
      try {
        r = await it.next();
      } catch (err) {
        await flush().catch(() => undefined);
        if (ctx.signal?.aborted || isCanceled(err)) throw canceled('operation canceled', ctx.signal?.reason ?? err);
        throw new TransferBroken(`transfer of ${desc.digest} broke at byte ${cur} of ${desc.size}: ${(err as Error)?.message ?? err}`, err);
      }
      if (r.done) break;
      if (ctx.signal?.aborted) {
        await flush();
        throw canceled('operation canceled', ctx.signal.reason);
      }
      const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      if (chunk.length === 0) continue;
      if (cur + gathered + chunk.length > desc.size) {
        gathered = 0;
        await w.truncate(0);
        throw failedPrecondition(`fetch ${desc.digest}: received more than the expected ${desc.size} bytes`);
      }
      if (gathered + chunk.length > TRANSFER_WRITE) await flush();
      if (chunk.length >= TRANSFER_WRITE) {
        await put(chunk);
      } else {
        gather.set(chunk, gathered);
        gathered += chunk.length;
        progress(cur + gathered); // bytes received
      }
    }
    await flush();
    throwIfAborted(ctx.signal);
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
    rs.destroy();
  }
  if (cur < desc.size) throw new TransferBroken(`transfer of ${desc.digest} ended early: unexpected EOF at byte ${cur} of ${desc.size}`, unavailable(`unexpected EOF fetching ${desc.digest}`));
  return cur;
}

export interface PushHandlerOpts {
  onProgress?: ProgressFn;
  /** The root being pushed: only it goes to the reference's tag, other manifests by digest. */
  root?: Descriptor;
}

/** Handler that pushes each descriptor's blob from provider (no children). AlreadyExists from the pusher: skipped. */
export function pushHandler(pusher: Pusher, provider: Provider, opts: PushHandlerOpts = {}): Handler {
  return async (ctx, desc) => {
    await pushBlob(ctx, pusher, provider, desc, opts);
    return [];
  };
}

/**
 * Pushes one blob: streams it from provider into the push writer, verifying
 * size and digest against desc before committing; on failure the upload is
 * aborted.
 */
export async function pushBlob(ctx: Ctx, pusher: Pusher, provider: Provider, desc: Descriptor, opts: PushHandlerOpts = {}): Promise<void> {
  const ref = makeRefKey(desc);
  const emit = (state: ProgressState, offset: number, error?: unknown) => {
    if (!opts.onProgress) return;
    const ev: ProgressEvent = { ref, desc, state, offset, total: desc.size };
    if (error !== undefined) ev.error = error;
    opts.onProgress(ev);
  };
  let pw: PushWriter;
  try {
    pw = await pusher.push(ctx, desc, { byDigest: opts.root !== undefined && desc.digest !== opts.root.digest });
  } catch (err) {
    if (isAlreadyExists(err)) {
      emit('exists', desc.size);
      return;
    }
    emit('error', 0, err);
    throw err;
  }
  let sent = 0;
  try {
    const ra = await provider.readerAt(ctx, desc);
    try {
      if (ra.size !== desc.size) throw failedPrecondition(`push ${desc.digest}: content is ${ra.size} bytes, descriptor says ${desc.size}`);
      const h = digests.hasher(digests.parse(desc.digest).algorithm);
      emit('uploading', 0);
      for await (const chunk of ra.stream({ signal: ctx.signal }) as AsyncIterable<Uint8Array>) {
        await pw.write(chunk, ctx.signal);
        h.update(chunk);
        sent += chunk.length;
        emit('uploading', sent);
      }
      const got = `${digests.parse(desc.digest).algorithm}:${h.digest('hex')}`;
      if (sent !== desc.size || got !== desc.digest) throw failedPrecondition(`push ${desc.digest}: read ${sent} bytes with digest ${got}`);
    } finally {
      await ra.close();
    }
    try {
      await pw.commit();
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    emit('done', desc.size);
  } catch (err) {
    await pw.abort().catch(() => undefined);
    emit('error', sent, err);
    throw err;
  }
}

export interface PushContentOpts {
  /** Only push index entries matching this platform matcher (others and their content are skipped). */
  platforms?: Matcher;
  /** Concurrent blob pushes (number or shared Semaphore; 0/undefined: no limit). */
  limit?: number | Semaphore;
  /** Wraps the composed handler (e.g. to add skipNonDistributableBlobs-like filters). */
  wrapper?: (h: Handler) => Handler;
  onProgress?: ProgressFn;
}

/**
 * Pushes desc and everything below it: layers and configs concurrently
 * first, then manifests, and the root index last (parents always after their
 * children). When provider is also a Manager, children are annotated with
 * their `containerd.io/distribution.source.*` labels so the pusher can try
 * cross-repository mounts.
 */
export async function pushContent(ctx: Ctx, pusher: Pusher, desc: Descriptor, provider: Provider & Partial<Pick<Manager, 'info'>>, opts: PushContentOpts = {}): Promise<void> {
  const manifestStack: Descriptor[] = [];
  const collectManifests: Handler = async (_c, d) => {
    if (isManifest(d.mediaType) || isIndex(d.mediaType)) {
      manifestStack.push(d);
      throw ErrStopHandler;
    }
    return [];
  };
  const push = pushHandler(pusher, provider, { onProgress: opts.onProgress, root: desc });
  let children = filterPlatforms(childrenHandler(provider), opts.platforms);
  if (provider.info) children = annotateDistributionSourceHandler(children, provider as Pick<Manager, 'info'>);
  let handler: Handler = handlers(children, collectManifests, push);
  if (opts.wrapper) handler = opts.wrapper(handler);
  await dispatch(ctx, handler, opts.limit, desc);
  // Manifests were seen parents-first: push them in reverse.
  for (let i = manifestStack.length - 1; i >= 0; i--) {
    const m = manifestStack[i];
    try {
      await push(ctx, m);
    } catch (err) {
      if (isIndex(m.mediaType) && /\b400\b|bad request/i.test(String((err as Error)?.message ?? ''))) {
        throw withHint(
          wrap(codeOf(err), 'manifest list/index references to blobs and/or manifests are missing in your target registry', err),
          'a registry takes an index only with every manifest it names: push all its platforms',
        );
      }
      throw err;
    }
  }
}

export { LabelDistributionSource, distributionSourceLabelKey, appendDistributionSource } from './source.js';

/**
 * Handler recording that desc's blob is available from host/repo: appends
 * repo to the blob's `containerd.io/distribution.source.<host>` label (a
 * sorted, comma-joined list). Skipped when the label would exceed 4096 bytes.
 * Compose after fetchHandler: handlers(fetchHandler(...), annotate, children).
 */
export function annotateDistributionSource(manager: Pick<Manager, 'info' | 'update'>, host: string, repo: string): Handler {
  const key = distributionSourceLabelKey(host);
  repo = repo.replace(/^\//, '');
  return async (ctx, desc) => {
    const info: Info = await manager.info(ctx, desc.digest);
    const value = appendDistributionSource(info.labels?.[key] ?? '', repo);
    if (Buffer.byteLength(key) + Buffer.byteLength(value) > MAX_LABEL_SIZE) return [];
    if (info.labels?.[key] === value) return [];
    await manager.update(ctx, { digest: desc.digest, labels: { [key]: value } }, [`labels.${key}`]);
    return [];
  };
}

/**
 * Wraps f: for a manifest or index, copies each child's
 * `containerd.io/distribution.source.*` labels into the child's annotations
 * (new descriptor objects; the inputs are not mutated).
 */
export function annotateDistributionSourceHandler(f: Handler, manager: Pick<Manager, 'info'>): Handler {
  return async (ctx, desc) => {
    const kids = await f(ctx, desc);
    if (!isManifest(desc.mediaType) && !isIndex(desc.mediaType)) return kids;
    const out: Descriptor[] = [];
    for (const child of kids) {
      const info = await manager.info(ctx, child.digest);
      let annotations = child.annotations;
      for (const [k, v] of Object.entries(info.labels ?? {})) {
        if (!k.startsWith(`${LabelDistributionSource}.`)) continue;
        annotations = { ...(annotations ?? {}), [k]: v };
      }
      out.push(annotations === child.annotations ? child : { ...child, annotations });
    }
    return out;
  };
}

/**
 * Wraps f: skips non-distributable layers (and drops them from children);
 * layers have no children and don't call f.
 */
export function skipNonDistributableBlobs(f: Handler): Handler {
  return async (ctx, desc) => {
    if (isNonDistributable(desc.mediaType)) throw ErrSkipDesc;
    if (isLayer(desc.mediaType)) return [];
    const kids = await f(ctx, desc);
    return kids.filter((c) => !isNonDistributable(c.mediaType));
  };
}

/**
 * Wraps f: for a manifest whose platform doesn't match m, keeps only its
 * config among the children (so other platforms' configs are still handled
 * without their layers).
 */
export function filterManifestByPlatformHandler(f: Handler, m: Matcher | undefined): Handler {
  return async (ctx, desc) => {
    const kids = await f(ctx, desc);
    if (!desc.platform || !m) return kids;
    if (isManifest(desc.mediaType) && !m.match(desc.platform)) return kids.filter((c) => isConfig(c.mediaType));
    return kids;
  };
}
