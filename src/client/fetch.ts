/**
 * client/fetch: containerd's client.Fetch — resolve a reference, fetch the
 * image's content (index → matching manifests → config and layers) into the
 * content store under a temporary lease, label parents with their children
 * (containerd.io/gc.ref.content.*) and blobs with their source
 * (containerd.io/distribution.source.<host>), and record the image.
 */
import type { Descriptor, Ingester, Manager } from '../content/types.js';
import { isAlreadyExists } from '../errdefs/index.js';
import { annotateDistributionSource, fetchHandler, type ProgressEvent } from '../remotes/handlers.js';
import { childrenHandler, dispatch, filterPlatforms, handlers, limitManifests, setChildrenLabels } from '../images/handlers.js';
import type { Image } from '../images/image.js';
import type { Ctx } from '../internal/context.js';
import * as platforms from '../platforms/index.js';
import type { Event } from '../progress/index.js';
import * as reference from '../reference/index.js';
import type { Resolver } from '../remotes/types.js';
import { withLease, type Services } from '../services/types.js';

export interface FetchOptions {
  resolver: Resolver;
  /** Platforms to fetch ("linux/arm64/v8"); default: the host's. */
  platforms?: string[];
  /** Fetch every platform of an index. */
  allPlatforms?: boolean;
  /** Parallel blob downloads (default 3). */
  maxConcurrentDownloads?: number;
  onProgress?: (ev: Event) => void;
  /** Labels of the image record. */
  labels?: Record<string, string>;
  /** Where blobs are written (default the content store); e.g. a TeeingIngester. */
  ingester?: Ingester & Pick<Manager, 'update'>;
  /** Called with the root descriptor once the reference is resolved. */
  onResolved?: (desc: Descriptor) => void;
}

export interface FetchResult {
  image: Image;
  /** The canonical name the reference resolved to. */
  name: string;
}

/** The platform matcher the options select (all / given / host default). */
export function platformMatcher(o: { platforms?: string[]; allPlatforms?: boolean }): platforms.MatchComparer {
  if (o.allPlatforms) return platforms.all;
  if (o.platforms?.length) return platforms.ordered(...o.platforms.map((p) => platforms.parse(p)));
  return platforms.defaultMatcher();
}

/** Canonical name of a user's reference ("redis" → "docker.io/library/redis:latest"). */
export function canonicalName(ref: string): string {
  return reference.toString(reference.withDefaultTag(reference.parseNormalizedNamed(ref)));
}

export async function fetchImage(svc: Services, ctx: Ctx, ref: string, opts: FetchOptions): Promise<FetchResult> {
  const wanted = canonicalName(ref);
  const progress = opts.onProgress ?? (() => undefined);
  progress({ ref: wanted, state: 'resolving' });
  const { name, desc } = await opts.resolver.resolve(ctx, wanted);
  progress({ ref: wanted, state: 'resolved' });
  opts.onResolved?.(desc);
  const fetcher = await opts.resolver.fetcher(ctx, name);
  const matcher = platformMatcher(opts);
  const parsed = reference.parseNormalizedNamed(name);

  return withLease(svc, ctx, async (lctx) => {
    const onProgress = (ev: ProgressEvent) => progress({ ref: ev.ref, state: ev.state, offset: ev.offset, total: ev.total });
    // containerd 1.6's order: labels are set from all children, then filtered.
    let children = filterPlatforms(setChildrenLabels(svc.content, childrenHandler(svc.content)), opts.allPlatforms ? undefined : matcher);
    if (!opts.allPlatforms) children = limitManifests(children, matcher, 1);
    const handler = handlers(
      fetchHandler(opts.ingester ?? svc.content, fetcher, { onProgress }),
      children,
      annotateDistributionSource(svc.content, parsed.domain, parsed.path),
    );
    await dispatch(lctx, handler, opts.maxConcurrentDownloads ?? 3, desc);
    const image = await putImage(svc, lctx, { name, target: desc, labels: opts.labels });
    return { image, name };
  });
}

/** Creates the image record, or updates it when the name exists (containerd's createImage). */
export async function putImage(svc: Services, ctx: Ctx, img: { name: string; target: Descriptor; labels?: Record<string, string> }): Promise<Image> {
  try {
    return await svc.images.create(ctx, { name: img.name, target: img.target, labels: img.labels ?? {} });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    const paths = ['target', ...Object.keys(img.labels ?? {}).map((k) => `labels.${k}`)];
    return svc.images.update(ctx, { name: img.name, target: img.target, labels: img.labels ?? {} }, paths);
  }
}
