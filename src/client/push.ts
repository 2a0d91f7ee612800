/**
 * client/push: containerd's client.Push — push an image's content to a
 * registry, blobs the registry lacks first (cross-repository mounts where the
 * distribution source is known), then manifests bottom-up, the index last.
 */
import { DistError, isNotFound, withHint } from '../errdefs/index.js';
import type { Ctx } from '../internal/context.js';
import type { Event } from '../progress/index.js';
import { pushContent, type ProgressEvent } from '../remotes/handlers.js';
import type { Resolver } from '../remotes/types.js';
import type { Services } from '../services/types.js';
import { canonicalName, platformMatcher } from './fetch.js';

export interface PushOptions {
  resolver: Resolver;
  /** Push only these platforms of an index (default: everything). */
  platforms?: string[];
  /** Parallel blob uploads (default 3). */
  maxConcurrentUploads?: number;
  onProgress?: (ev: Event) => void;
}

/** Pushes the local image `local` (default: ref) to ref. Returns the pushed root digest. */
export async function pushImage(svc: Services, ctx: Ctx, ref: string, local: string | undefined, opts: PushOptions): Promise<{ name: string; digest: string }> {
  const name = canonicalName(ref);
  const img = await svc.images.get(ctx, local ? canonicalNameOrSelf(local) : name);
  const pusher = await opts.resolver.pusher(ctx, name);
  const onProgress = (ev: ProgressEvent) => opts.onProgress?.({ ref: ev.ref, state: ev.state === 'downloading' ? 'uploading' : ev.state, offset: ev.offset, total: ev.total });
  try {
    await pushContent(ctx, pusher, img.target, svc.content, {
      platforms: opts.platforms?.length ? platformMatcher({ platforms: opts.platforms }) : undefined,
      limit: opts.maxConcurrentUploads ?? 3,
      onProgress,
    });
  } catch (err) {
    // content the image names is missing here (a fetch of some platforms only)
    if (isNotFound(err) && err instanceof DistError && !err.hint) {
      throw withHint(err, 'the image is not complete in this store, as dist images check shows: fetch all its platforms first, with dist fetch --all-platforms');
    }
    throw err;
  }
  return { name, digest: img.target.digest };
}

/** Image names are stored canonical; accept a short name too. */
export function canonicalNameOrSelf(name: string): string {
  try {
    return canonicalName(name);
  } catch {
    return name;
  }
}
