/**
 * Pusher: uploads blobs and manifests.
 *
 *  1. HEAD the target (blob by digest; manifest by tag or digest — by tag it
 *     only counts as present when Docker-Content-Digest matches):
 *     present → AlreadyExists, nothing to write.
 *  2. Manifests: the writer buffers (≤ maxManifestSize) and commit() PUTs
 *     them with their media type as Content-Type, by tag when the pusher's
 *     reference has one (containerd's behaviour; pass {byDigest: true} for
 *     non-root manifests to leave the tag alone), else by digest.
 *  3. Blobs: a cross-repository mount is tried first when a source repo on
 *     the same registry is known (201 → AlreadyExists); then an upload
 *     session. Blobs ≤ monolithicMax are buffered and sent in one PUT
 *     (retryable); larger ones stream as PATCH chunks of chunkSize bytes
 *     (Content-Range), each written straight through with backpressure,
 *     then a closing PUT ?digest=.
 *  commit() checks size and digest of what was written before finalising,
 *  and Docker-Content-Digest of the registry's answer (when it sends one).
 *
 * Source repos for mounts come from `containerd.io/distribution.source.<host>`
 * annotations on the descriptor (containerd copies content labels there), or
 * from PushOpts.sources (pass the blob's content-store labels): comma-separated
 * repository paths; the one sharing the longest path prefix with the target wins.
 */
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import type { Hash } from 'node:crypto';
import type { Ctx } from '../../internal/context.js';
import type { Descriptor } from '../../content/types.js';
import type { Pusher, PushWriter } from '../types.js';
import { hasher, parse as parseDigest } from '../../digest/index.js';
import {
  alreadyExists, canceled, failedPrecondition, invalidArgument, notFound, throwIfAborted,
} from '../../errdefs/index.js';
import { splitObject } from '../../reference/index.js';
import { DockerBase, isManifestType } from './base.js';
import { repositoryScope } from './auth.js';
import type { RegistryHost } from './hosts.js';
import { discard, header, responseError, type SendResponse } from './request.js';
import { redactUrl } from './errors.js';
import { distributionSourceLabelKey, LabelDistributionSource } from '../source.js';

export { appendDistributionSource, distributionSourceLabelKey } from '../source.js';
/** The label prefix of distribution sources (see src/remotes/source.ts). */
export const DISTRIBUTION_SOURCE_LABEL = LabelDistributionSource;

/** Picks the mount source: the candidate repo sharing most leading path components with target. */
export function selectMountCandidate(refHost: string, target: string, sources: Record<string, string> | undefined): string | undefined {
  const value = sources?.[distributionSourceLabelKey(refHost)];
  if (!value) return undefined;
  const tc = target.split('/');
  let best: string | undefined;
  let bestN = -1;
  for (const repo of value.split(',')) {
    if (!repo || repo === target) continue;
    const rc = repo.split('/');
    let n = 0;
    while (n < tc.length && n < rc.length && tc[n] === rc[n]) n++;
    if (n >= bestN) { bestN = n; best = repo; }
  }
  return best;
}

export interface PushOpts {
  /** Labels/annotations holding `containerd.io/distribution.source.<host>` values. */
  sources?: Record<string, string>;
  /** Push a manifest by digest even when the reference has a tag. */
  byDigest?: boolean;
}

/** Where a manifest goes: the tag (or digest) of the reference's object, else the digest. */
export function manifestObject(object: string, digest: string): string {
  const { tag, digest: objDigest } = splitObject(object);
  if (objDigest && objDigest !== digest) return digest;
  return tag || digest;
}

export class DockerPusher implements Pusher {
  constructor(private readonly base: DockerBase) {}

  async push(ctx: Ctx, desc: Descriptor, opts: PushOpts = {}): Promise<PushWriter> {
    parseDigest(desc.digest);
    if (!Number.isSafeInteger(desc.size) || desc.size < 0) throw invalidArgument(`push ${desc.digest}: invalid size ${desc.size}`);
    const b = this.base;
    const hosts = b.filterHosts('push');
    if (!hosts.length) throw notFound(`no push hosts for ${b.ref}`);
    const host = hosts[0]!;
    const scopes = [repositoryScope(b.repository, true)];
    const manifest = isManifestType(desc.mediaType);
    const object = manifest ? (opts.byDigest ? desc.digest : manifestObject(b.spec.object, desc.digest)) : desc.digest;
    const signal = ctx.signal;

    if (manifest && desc.size > b.limits.maxManifestSize) {
      throw failedPrecondition(`push ${desc.digest}: ${desc.size} byte manifest exceeds the ${b.limits.maxManifestSize} byte limit`);
    }

    // 1. exists?
    const head = await b.transport.send({
      method: 'HEAD', host, path: b.path(host, manifest ? 'manifests' : 'blobs', object),
      headers: { accept: `${desc.mediaType}, */*` }, scopes, followRedirects: true, signal,
    });
    await discard(head);
    if (head.status === 200) {
      const got = header(head.headers, 'docker-content-digest');
      if (object === desc.digest || got === desc.digest) throw alreadyExists(`content ${desc.digest} on remote`);
    } else if (head.status !== 404 && head.status !== 401 && head.status !== 403) {
      // 401/403: the existence check may need more rights than we have; the push itself will tell
      throw await responseError(head);
    }

    if (manifest) {
      return new BufferedWriter(b, host, desc, scopes, signal, {
        method: 'PUT', path: b.path(host, 'manifests', object), contentType: desc.mediaType, expectStatus: [200, 201, 204],
      });
    }

    // 2. mount or start an upload session
    let started: SendResponse | undefined;
    const from = selectMountCandidate(b.refHost, b.repository, { ...(desc.annotations ?? {}), ...(opts.sources ?? {}) });
    if (from) {
      const q = `?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`;
      const res = await b.transport.send({
        method: 'POST', host, path: b.path(host, 'blobs', 'uploads/') + q,
        scopes: [...scopes, repositoryScope(from, false)], signal,
      });
      if (res.status === 201) {
        await discard(res);
        throw alreadyExists(`content ${desc.digest} on remote (mounted from ${from})`);
      }
      if (res.status === 202) started = res;
      else if ([401, 403, 404].includes(res.status)) await discard(res);
      else throw await responseError(res);
    }
    if (!started) {
      started = await b.transport.send({ method: 'POST', host, path: b.path(host, 'blobs', 'uploads/'), scopes, signal });
      if (started.status === 201) {
        await discard(started);
        throw alreadyExists(`content ${desc.digest} on remote`);
      }
      if (started.status !== 202 && started.status !== 200 && started.status !== 204) throw await responseError(started);
    }
    await discard(started);
    const location = uploadLocation(started);

    if (desc.size <= b.limits.monolithicMax) {
      return new BufferedWriter(b, host, desc, scopes, signal, {
        method: 'PUT', url: withDigest(location, desc.digest), contentType: 'application/octet-stream',
        expectStatus: [201, 204, 200], uploadLocation: location,
      });
    }
    return new ChunkedWriter(b, host, desc, scopes, signal, location);
  }
}

function uploadLocation(res: SendResponse): string {
  const loc = header(res.headers, 'location');
  if (!loc) throw failedPrecondition(`${res.method} ${redactUrl(res.url)}: upload response without Location`);
  return new URL(loc, res.url).toString();
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.append('digest', digest);
  return u.toString();
}

interface FinalRequest {
  method: 'PUT';
  path?: string;
  url?: string;
  contentType: string;
  expectStatus: number[];
  /** An upload session to cancel on abort. */
  uploadLocation?: string;
}

abstract class WriterBase implements PushWriter {
  protected written = 0;
  protected readonly hash: Hash;
  protected done = false;

  constructor(
    protected readonly base: DockerBase,
    protected readonly host: RegistryHost,
    protected readonly desc: Descriptor,
    protected readonly scopes: string[],
    protected readonly signal: AbortSignal | undefined,
  ) {
    this.hash = hasher(parseDigest(desc.digest).algorithm);
  }

  abstract write(chunk: Uint8Array, signal?: AbortSignal): Promise<void>;
  abstract commit(): Promise<void>;
  abstract abort(): Promise<void>;

  protected account(chunk: Uint8Array): void {
    if (this.done) throw failedPrecondition(`push ${this.desc.digest}: writer is closed`);
    if (this.written + chunk.byteLength > this.desc.size) {
      throw failedPrecondition(`push ${this.desc.digest}: more than the expected ${this.desc.size} bytes written`);
    }
    this.hash.update(chunk);
    this.written += chunk.byteLength;
  }

  /** Checks size and digest of everything written. */
  protected verifyLocal(): void {
    if (this.written !== this.desc.size) {
      throw failedPrecondition(`push ${this.desc.digest}: unexpected size ${this.written}, expected ${this.desc.size}`);
    }
    const got = `${parseDigest(this.desc.digest).algorithm}:${this.hash.digest('hex')}`;
    if (got !== this.desc.digest) throw failedPrecondition(`push: got digest ${got}, expected ${this.desc.digest}`);
  }

  /**
   * The start of every commit: refuses a closed writer, verifies what was
   * written (aborting the upload on a mismatch) and closes the writer.
   */
  protected async beginCommit(): Promise<void> {
    if (this.done) throw failedPrecondition(`push ${this.desc.digest}: writer is closed`);
    try {
      this.verifyLocal();
    } catch (err) {
      await this.abort();
      throw err;
    }
    this.done = true;
  }

  protected async checkFinal(res: SendResponse, expect: number[]): Promise<void> {
    if (!expect.includes(res.status)) throw await responseError(res);
    await discard(res);
    const got = header(res.headers, 'docker-content-digest');
    if (got && got !== this.desc.digest) {
      throw failedPrecondition(`push ${this.desc.digest}: registry reports digest ${got}`);
    }
  }

  protected async cancelUpload(location: string | undefined): Promise<void> {
    if (!location) return;
    try {
      const res = await this.base.transport.send({ method: 'DELETE', host: this.host, url: location, scopes: this.scopes, noRetry: true });
      await discard(res);
    } catch { /* best effort */ }
  }
}

/** Buffers everything (small blobs, manifests) and sends it in one retryable request. */
class BufferedWriter extends WriterBase {
  private chunks: Buffer[] = [];

  constructor(base: DockerBase, host: RegistryHost, desc: Descriptor, scopes: string[], signal: AbortSignal | undefined, private readonly final: FinalRequest) {
    super(base, host, desc, scopes, signal);
  }

  async write(chunk: Uint8Array, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    this.account(chunk);
    this.chunks.push(Buffer.from(chunk));
  }

  async commit(): Promise<void> {
    await this.beginCommit();
    const body = Buffer.concat(this.chunks);
    this.chunks = [];
    const res = await this.base.transport.send({
      method: this.final.method, host: this.host, path: this.final.path, url: this.final.url,
      headers: { 'content-type': this.final.contentType }, body, scopes: this.scopes, signal: this.signal,
    });
    await this.checkFinal(res, this.final.expectStatus);
  }

  async abort(): Promise<void> {
    this.done = true;
    this.chunks = [];
    await this.cancelUpload(this.final.uploadLocation);
  }
}

/** Streams PATCH chunks; nothing is buffered beyond the stream's high-water mark. */
class ChunkedWriter extends WriterBase {
  private location: string;
  private chunk?: {
    stream: PassThrough;
    remaining: number;
    response: Promise<SendResponse>;
    failed: Promise<never>;
  };
  private failure?: unknown;
  /** Bytes handed to PATCH requests so far (written counts accepted bytes). */
  private sent = 0;

  constructor(base: DockerBase, host: RegistryHost, desc: Descriptor, scopes: string[], signal: AbortSignal | undefined, location: string) {
    super(base, host, desc, scopes, signal);
    this.location = location;
  }

  private startChunk(): void {
    const start = this.sent;
    const n = Math.min(this.base.limits.chunkSize, this.desc.size - start);
    if (n <= 0) throw failedPrecondition(`push ${this.desc.digest}: more than the expected ${this.desc.size} bytes written`);
    const stream = new PassThrough({ highWaterMark: 256 * 1024 });
    const response = this.base.transport.send({
      method: 'PATCH', host: this.host, url: this.location, scopes: this.scopes, signal: this.signal,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(n),
        'content-range': `${start}-${start + n - 1}`,
      },
      body: stream,
    });
    const failed = response.then(
      async (res) => {
        if (res.status !== 202) throw await responseError(res);
        // an early 202 before the chunk was sent would be a protocol error; wait for end
        return new Promise<never>(() => {});
      },
    ) as Promise<never>;
    failed.catch((err) => { this.failure ??= err; stream.destroy(); });
    this.chunk = { stream, remaining: n, response, failed };
  }

  async write(data: Uint8Array, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    if (this.failure) throw this.failure;
    this.account(data);
    let buf = Buffer.from(data); // a copy: the caller may reuse its buffer once write() resolves
    while (buf.length) {
      if (!this.chunk) this.startChunk();
      const c = this.chunk!;
      const part = buf.subarray(0, c.remaining);
      buf = buf.subarray(part.length);
      c.remaining -= part.length;
      this.sent += part.length;
      const ok = c.stream.write(part);
      if (c.remaining === 0) {
        c.stream.end();
        await this.finishChunk(signal);
      } else if (!ok) {
        await this.race(once(c.stream, 'drain'), c.failed, signal);
      }
    }
  }

  private async race<T>(p: Promise<T>, failed: Promise<never>, signal?: AbortSignal): Promise<T> {
    const sigs = [signal, this.signal].filter((s): s is AbortSignal => !!s);
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(canceled(`push ${this.desc.digest}: canceled`));
      for (const s of sigs) s.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([p, failed, aborted]);
    } catch (err) {
      if (this.failure) throw this.failure;
      throw err;
    } finally {
      for (const s of sigs) s.removeEventListener('abort', onAbort!);
    }
  }

  private async finishChunk(signal?: AbortSignal): Promise<void> {
    const c = this.chunk!;
    this.chunk = undefined;
    let res: SendResponse;
    try {
      res = await this.race(c.response, new Promise<never>(() => {}), signal);
    } catch (err) {
      this.failure ??= err;
      throw err;
    }
    if (res.status !== 202) await c.failed; // rejects with the registry's error (and sets failure)
    await discard(res);
    this.location = uploadLocation(res);
  }

  async commit(): Promise<void> {
    if (this.failure && !this.done) throw this.failure;
    await this.beginCommit();
    const res = await this.base.transport.send({
      method: 'PUT', host: this.host, url: withDigest(this.location, this.desc.digest), scopes: this.scopes,
      headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(), signal: this.signal,
    });
    await this.checkFinal(res, [201, 204, 200]);
  }

  async abort(): Promise<void> {
    this.done = true;
    if (this.chunk) {
      this.chunk.stream.destroy();
      this.chunk.response.then((r) => discard(r), () => undefined);
      this.chunk = undefined;
    }
    await this.cancelUpload(this.location);
  }
}
