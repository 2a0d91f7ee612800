/**
 * Fetcher: streams blobs and manifests by descriptor.
 *
 * Tries the descriptor's `urls` (http/https, never authorized) and then
 * every pull host: manifests from /manifests/<digest>, everything else from
 * /blobs/<digest> (redirects followed; the registry's Authorization never
 * goes to another origin). `offset` sends `Range: bytes=<offset>-`; a 206
 * must start at offset, a 200 is skipped forward. The stream is checked
 * against the descriptor size (when > 0): a short body fails with
 * Unavailable (resumable with offset = bytes received), extra bytes or a
 * mismatching Content-Length with FailedPrecondition. Manifests are capped
 * at limits.maxManifestSize. The caller verifies the digest.
 */
import { Readable, Transform } from 'node:stream';
import type { Ctx } from '../../internal/context.js';
import type { Descriptor } from '../../content/types.js';
import type { Fetcher, FetchOpts } from '../types.js';
import { validate as validateDigest } from '../../digest/index.js';
import { failedPrecondition, invalidArgument, isCanceled, isNotFound, notFound, unavailable } from '../../errdefs/index.js';
import { DockerBase, isManifestType } from './base.js';
import { repositoryScope } from './auth.js';
import type { RegistryHost } from './hosts.js';
import { header, responseError, transportError, type SendResponse } from './request.js';
import { dropBody, redactUrl } from './errors.js';

interface Target {
  host: RegistryHost;
  path?: string;
  url?: string;
}

export class DockerFetcher implements Fetcher {
  constructor(private readonly base: DockerBase) {}

  async fetch(ctx: Ctx, desc: Descriptor, opts: FetchOpts = {}): Promise<Readable> {
    validateDigest(desc.digest);
    const offset = opts.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) throw invalidArgument(`fetch ${desc.digest}: invalid offset ${offset}`);
    const size = desc.size > 0 ? desc.size : undefined;
    if (size !== undefined && offset > size) throw invalidArgument(`fetch ${desc.digest}: offset ${offset} beyond size ${size}`);
    if (size !== undefined && offset === size) return Readable.from([]);
    const manifest = isManifestType(desc.mediaType);
    const cap = this.base.limits.maxManifestSize;
    if (manifest && size !== undefined && size > cap) {
      throw failedPrecondition(`rejecting ${size} byte manifest ${desc.digest}: exceeds the ${cap} byte limit`);
    }
    const hosts = this.base.filterHosts('pull');
    if (!hosts.length) throw notFound(`no pull hosts for ${this.base.ref}`);

    const targets: Target[] = [];
    for (const u of desc.urls ?? []) {
      try {
        const url = new URL(u);
        if (url.protocol === 'http:' || url.protocol === 'https:') targets.push({ host: hosts[0]!, url: url.toString() });
      } catch { /* unparsable alternative url: skipped */ }
    }
    for (const host of hosts) targets.push({ host, path: this.base.path(host, manifest ? 'manifests' : 'blobs', desc.digest) });

    let firstErr: unknown;
    for (const t of targets) {
      try {
        return await this.open(ctx, t, desc, offset, size, manifest ? cap : undefined);
      } catch (err) {
        if (isCanceled(err)) throw err;
        if (firstErr === undefined || (isNotFound(firstErr) && !isNotFound(err))) firstErr = err;
      }
    }
    if (isNotFound(firstErr)) {
      throw notFound(`could not fetch content ${desc.digest} (${desc.mediaType}) from ${this.base.spec.locator}`, firstErr);
    }
    throw firstErr;
  }

  private async open(ctx: Ctx, t: Target, desc: Descriptor, offset: number, size: number | undefined, cap: number | undefined): Promise<Readable> {
    const headers: Record<string, string> = { accept: `${desc.mediaType}, */*` };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const res = await this.base.transport.send({
      method: 'GET', host: t.host, path: t.path, url: t.url, headers,
      scopes: [repositoryScope(this.base.repository, false)], followRedirects: true, signal: ctx.signal,
    });
    if (res.status < 200 || res.status > 299) throw await responseError(res);
    const where = `${desc.digest} from ${redactUrl(res.url)}`;
    const fail = (err: Error) => { dropBody(res.body); return err; };

    let skip = 0;
    if (offset > 0) {
      if (res.status === 206) {
        const cr = header(res.headers, 'content-range');
        if (cr && !cr.startsWith(`bytes ${offset}-`)) throw fail(failedPrecondition(`fetch ${where}: unexpected Content-Range ${JSON.stringify(cr)} for offset ${offset}`));
      } else {
        skip = offset; // the server ignored Range: read forward
      }
    }
    const expected = size !== undefined ? size - offset : undefined;
    const cl = header(res.headers, 'content-length');
    if (cl !== undefined && /^\d+$/.test(cl)) {
      const n = Number(cl);
      if (expected !== undefined && n !== expected + skip) {
        throw fail(failedPrecondition(`fetch ${where}: Content-Length ${n} does not match the expected ${expected + skip}`));
      }
      if (cap !== undefined && n - skip > cap) throw fail(failedPrecondition(`rejecting ${n} byte manifest ${desc.digest}: exceeds the ${cap} byte limit`));
    }
    return verifying(res, where, skip, expected, cap, ctx.signal);
  }
}

/** Pipes a response body through skip/count checks; errors are errdefs classes. */
function verifying(res: SendResponse, where: string, skip: number, expected: number | undefined, cap: number | undefined, signal?: AbortSignal): Readable {
  let skipped = 0;
  let seen = 0;
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (skipped < skip) {
        const drop = Math.min(skip - skipped, chunk.length);
        skipped += drop;
        chunk = chunk.subarray(drop);
        if (!chunk.length) return cb();
      }
      seen += chunk.length;
      if (expected !== undefined && seen > expected) return cb(failedPrecondition(`fetch ${where}: more data than the expected ${expected} bytes`));
      if (cap !== undefined && seen > cap) return cb(failedPrecondition(`fetch ${where}: manifest exceeds the ${cap} byte limit`));
      cb(null, chunk);
    },
    flush(cb) {
      if (skipped < skip) return cb(unavailable(`fetch ${where}: body ended before offset ${skip}`));
      if (expected !== undefined && seen < expected) return cb(unavailable(`fetch ${where}: unexpected EOF after ${seen} of ${expected} bytes`));
      cb();
    },
  });
  const body = res.body;
  body.on('error', (err) => {
    out.destroy(transportError(`fetch ${where} (after ${seen} bytes)`, err, signal));
  });
  out.on('close', () => dropBody(body));
  body.pipe(out);
  return out;
}
