/**
 * What resolver, fetcher and pusher share for one reference: the parsed
 * Spec, the repository path, the hosts to try, the transport and limits.
 */
import { parseSpec, specHostname, specRepository, type Spec } from '../../reference/index.js';
import { invalidArgument } from '../../errdefs/index.js';
import type { Capability, RegistryHost } from './hosts.js';
import { isProxy } from './hosts.js';
import type { Transport } from './request.js';

export const MediaType = {
  OCIManifest: 'application/vnd.oci.image.manifest.v1+json',
  OCIIndex: 'application/vnd.oci.image.index.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

const MANIFEST_TYPES = new Set<string>([
  MediaType.OCIManifest, MediaType.OCIIndex, MediaType.DockerManifest, MediaType.DockerManifestList,
  MediaType.DockerSchema1, MediaType.DockerSchema1Signed,
]);

/** True for media types served from /manifests/ rather than /blobs/. */
export function isManifestType(mediaType: string): boolean {
  return MANIFEST_TYPES.has(mediaType);
}

export function isSchema1(mediaType: string): boolean {
  return mediaType === MediaType.DockerSchema1 || mediaType === MediaType.DockerSchema1Signed;
}

/** Accept header for resolving (containerd's order, `*\/*` last). */
export const RESOLVE_ACCEPT = [
  MediaType.DockerManifest, MediaType.DockerManifestList, MediaType.OCIManifest, MediaType.OCIIndex, '*/*',
].join(', ');

/** containerd's MaxManifestSize is 4*1048*1048 (sic); dist uses 4 MiB. */
export const DEFAULT_MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

export interface Limits {
  maxManifestSize: number;
  /** Blobs up to this size are uploaded with one PUT (buffered, retryable). */
  monolithicMax: number;
  /** PATCH chunk size for larger blobs. */
  chunkSize: number;
}

export class DockerBase {
  readonly spec: Spec;
  readonly refHost: string;
  readonly repository: string;

  constructor(
    readonly ref: string,
    readonly hosts: RegistryHost[],
    readonly transport: Transport,
    readonly limits: Limits,
  ) {
    this.spec = parseSpec(ref);
    this.refHost = specHostname(this.spec);
    this.repository = specRepository(this.spec);
    if (!this.repository) throw invalidArgument(`reference ${JSON.stringify(ref)}: repository required`);
  }

  filterHosts(...caps: Capability[]): RegistryHost[] {
    return this.hosts.filter((h) => caps.every((c) => h.capabilities.includes(c)));
  }

  /** `/v2/<repo>/<parts…>` on host, with `?ns=` for mirrors. */
  path(host: RegistryHost, ...parts: string[]): string {
    let p = `${host.path.replace(/\/+$/, '')}/${this.repository}/${parts.join('/')}`;
    if (isProxy(this.refHost, host)) p += `${p.includes('?') ? '&' : '?'}ns=${encodeURIComponent(this.refHost)}`;
    return p;
  }
}

/** Content-Type without parameters; text/plain means schema 1 (containerd). */
export function manifestMediaType(contentType: string | undefined): string {
  let ct = (contentType ?? '').trim();
  const i = ct.indexOf(';');
  if (i >= 0) ct = ct.slice(0, i).trim();
  if (ct === 'text/plain') return MediaType.DockerSchema1;
  return ct;
}
