/**
 * DockerResolver: the Resolver for OCI distribution / Docker registries
 * (containerd's remotes/docker resolver).
 *
 * References are containerd Specs (`host/path[:tag][@digest]`, no
 * normalisation: run reference.parseNormalizedNamed + toString first for
 * docker-style names). resolve() tries, per host with the needed
 * capabilities, HEAD then (when digest or size is missing) GET on
 * /v2/<repo>/manifests/<tag|digest> (for a digest also /blobs/<digest>).
 * Outcomes: the descriptor; NotImplemented for schema 1; NotFound naming the
 * reference; FailedPrecondition for auth failures (see errors.ts) or a
 * manifest over maxManifestSize (refused without buffering it).
 */
import type { Ctx } from '../../internal/context.js';
import type { Descriptor } from '../../content/types.js';
import type { Resolved, Resolver } from '../types.js';
import { Canonical, hasher, parse as parseDigest } from '../../digest/index.js';
import {
  DistError, failedPrecondition, invalidArgument, isCanceled, notFound, notImplemented,
} from '../../errdefs/index.js';
import { parseSpec, specDigest, specHostname, splitObject } from '../../reference/index.js';
import { Authorizer, repositoryScope, type CredentialsFn } from './auth.js';
import {
  DEFAULT_MAX_MANIFEST_SIZE, DockerBase, RESOLVE_ACCEPT, isSchema1, manifestMediaType, type Limits,
} from './base.js';
import { configureHosts, type HostOptions, type RegistryHost, type RegistryHosts } from './hosts.js';
import { Transport, transportError, discard, header, responseError, type RetryOptions, type SendResponse } from './request.js';
import { DockerFetcher } from './fetcher.js';
import { dropBody, redactUrl } from './errors.js';
import { DockerPusher } from './pusher.js';

export interface ResolverOptions extends HostOptions {
  /** Host lookup; replaces hostsDir/plainHTTP/tls/timeouts handling. */
  hosts?: RegistryHosts;
  /** Credentials per registry host (see config.ts: dockerCredentials()). */
  credentials?: CredentialsFn;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** Default "dist/0.1". */
  userAgent?: string;
  retry?: RetryOptions;
  /** Default 4 MiB. */
  maxManifestSize?: number;
  /** Blobs up to this size are pushed with a single PUT (default 4 MiB). */
  monolithicMax?: number;
  /** PATCH chunk size for larger blobs (default 16 MiB). */
  chunkSize?: number;
}

export class DockerResolver implements Resolver {
  readonly transport: Transport;
  readonly authorizer: Authorizer;
  private readonly hosts: RegistryHosts;
  private readonly closeHosts?: () => Promise<void>;
  private readonly limits: Limits;

  constructor(opts: ResolverOptions = {}) {
    const headers: Record<string, string> = { 'user-agent': opts.userAgent ?? 'dist/0.1' };
    for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k.toLowerCase()] = v;
    this.authorizer = new Authorizer({ credentials: opts.credentials, headers: { 'user-agent': headers['user-agent']! } });
    this.transport = new Transport({ authorizer: this.authorizer, headers, retry: opts.retry });
    if (opts.hosts) {
      this.hosts = opts.hosts;
    } else {
      const ch = configureHosts(opts);
      this.hosts = ch.hosts;
      this.closeHosts = ch.close;
    }
    this.limits = {
      maxManifestSize: opts.maxManifestSize ?? DEFAULT_MAX_MANIFEST_SIZE,
      monolithicMax: opts.monolithicMax ?? 4 * 1024 * 1024,
      chunkSize: opts.chunkSize ?? 16 * 1024 * 1024,
    };
    if (!(this.limits.chunkSize > 0)) throw invalidArgument('chunkSize must be positive');
  }

  private async base(ref: string): Promise<DockerBase> {
    const spec = parseSpec(ref);
    const hosts = await this.hosts(specHostname(spec));
    return new DockerBase(ref, hosts, this.transport, this.limits);
  }

  async resolve(ctx: Ctx, ref: string): Promise<Resolved> {
    const b = await this.base(ref);
    if (b.spec.object === '') throw invalidArgument(`reference ${JSON.stringify(ref)}: object required (a tag or digest)`);
    const dgst = specDigest(b.spec);
    const paths: string[][] = [];
    let hosts: RegistryHost[];
    if (dgst) {
      parseDigest(dgst);
      paths.push(['manifests', dgst], ['blobs', dgst]);
      hosts = b.filterHosts('pull');
    } else {
      const { tag } = splitObject(b.spec.object);
      paths.push(['manifests', encodeURIComponent(tag)]);
      hosts = b.filterHosts('pull', 'resolve');
    }
    if (!hosts.length) throw notFound(`no resolve hosts for ${ref}`);
    const scopes = [repositoryScope(b.repository, false)];
    const cap = this.limits.maxManifestSize;
    let firstErr: unknown;
    const tooLarge = (n: number | string) => failedPrecondition(`rejecting ${n} byte manifest for ${ref}: exceeds the ${cap} byte limit`);
    const failed = async (res: SendResponse) => responseError(
      res, res.status === 401 || res.status === 403 ? 'pull access denied, repository does not exist or may require authorization' : undefined,
    );

    for (const parts of paths) {
      for (const host of hosts) {
        let res: SendResponse;
        try {
          res = await this.transport.send({
            method: 'HEAD', host, path: b.path(host, ...parts), headers: { accept: RESOLVE_ACCEPT },
            scopes, followRedirects: true, signal: ctx.signal,
          });
        } catch (err) {
          if (isCanceled(err)) throw err;
          firstErr ??= err;
          continue;
        }
        if (res.status === 404) { await discard(res); continue; }
        if (res.status < 200 || res.status > 299) { firstErr ??= await failed(res); continue; }
        await discard(res);
        let mediaType = manifestMediaType(header(res.headers, 'content-type'));
        if (isSchema1(mediaType)) throw notImplemented(`${ref}: schema 1 manifests are not supported (${mediaType})`);
        const cl = header(res.headers, 'content-length');
        let size = cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : undefined;
        let digest = dgst;
        if (!digest) {
          const h = header(res.headers, 'docker-content-digest');
          if (h && size !== undefined) {
            try { parseDigest(h); } catch (err) { throw invalidArgument(`${ref}: registry sent an invalid Docker-Content-Digest ${JSON.stringify(h)}`, err); }
            digest = h;
          }
        }
        if (!digest || size === undefined) {
          // no digest or size in the HEAD answer: read the manifest (capped)
          let got: { mediaType: string; digest: string; size: number } | undefined;
          try {
            got = await this.readManifest(ctx, host, b.path(host, ...parts), scopes, digest, ref);
          } catch (err) {
            if (isCanceled(err)) throw err;
            firstErr ??= err;
            continue;
          }
          if (!got) continue; // 404
          ({ mediaType, size } = got);
          digest = got.digest;
        }
        if (size! > cap) { firstErr ??= tooLarge(size!); continue; }
        const desc: Descriptor = { mediaType, digest, size: size! };
        return { name: ref, desc };
      }
    }
    throw firstErr ?? notFound(ref);
  }

  /** GETs a manifest, hashing it as it streams; refuses more than maxManifestSize bytes. */
  private async readManifest(ctx: Ctx, host: RegistryHost, path: string, scopes: string[], knownDigest: string, ref: string) {
    const cap = this.limits.maxManifestSize;
    const res = await this.transport.send({
      method: 'GET', host, path, headers: { accept: RESOLVE_ACCEPT }, scopes, followRedirects: true, signal: ctx.signal,
    });
    if (res.status === 404) { await discard(res); return undefined; }
    if (res.status < 200 || res.status > 299) {
      throw await responseError(res, res.status === 401 || res.status === 403 ? 'pull access denied, repository does not exist or may require authorization' : undefined);
    }
    const mediaType = manifestMediaType(header(res.headers, 'content-type'));
    if (isSchema1(mediaType)) { dropBody(res.body); throw notImplemented(`${ref}: schema 1 manifests are not supported (${mediaType})`); }
    const cl = header(res.headers, 'content-length');
    if (cl !== undefined && /^\d+$/.test(cl) && Number(cl) > cap) {
      dropBody(res.body);
      throw failedPrecondition(`rejecting ${cl} byte manifest for ${ref}: exceeds the ${cap} byte limit`);
    }
    const h = hasher(knownDigest ? parseDigest(knownDigest).algorithm : Canonical);
    let size = 0;
    try {
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > cap) {
          throw failedPrecondition(`rejecting manifest for ${ref}: more than the ${cap} byte limit`);
        }
        h.update(chunk as Buffer);
      }
    } catch (err) {
      if (err instanceof DistError) throw err;
      throw transportError(`GET ${redactUrl(res.url)}`, err, ctx.signal);
    } finally {
      dropBody(res.body);
    }
    const algorithm = knownDigest ? parseDigest(knownDigest).algorithm : Canonical;
    return { mediaType, size, digest: knownDigest || `${algorithm}:${h.digest('hex')}` };
  }

  async fetcher(_ctx: Ctx, ref: string): Promise<DockerFetcher> {
    return new DockerFetcher(await this.base(ref));
  }

  async pusher(_ctx: Ctx, ref: string): Promise<DockerPusher> {
    return new DockerPusher(await this.base(ref));
  }

  /** Releases connections (undici agents) created for configured hosts. */
  async close(): Promise<void> {
    await this.closeHosts?.();
  }
}

export function createResolver(opts: ResolverOptions = {}): DockerResolver {
  return new DockerResolver(opts);
}
