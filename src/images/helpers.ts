/**
 * Image content helpers (containerd's images/image.go): resolve an image's
 * manifest for a platform, its config, rootfs diff ids, the platforms it
 * offers, its packed size, and whether its content is all present.
 */
import { isNotFound, notFound, wrap, codeOf, invalidArgument } from '../errdefs/index.js';
import type { Ctx } from '../internal/context.js';
import type { Descriptor, Platform, Provider } from '../content/types.js';
import { normalize, sortByPreference, type MatchComparer } from '../platforms/index.js';
import { childrenHandler, ErrSkipDesc, filterPlatforms, handlers, limitManifests, walk, type Handler } from './handlers.js';
import { isConfig, isIndex, isManifest } from './mediatypes.js';
import { readImageConfig, readIndex, readManifest, type Manifest } from './manifest.js';

/**
 * The manifest of image for platform (undefined: the first manifest found).
 *
 * From an index, the matching manifests are ordered by preference and only
 * the best is considered; an entry without a platform is matched using its
 * config's os/architecture. A manifest given directly is returned as is
 * (its platform is not checked). NotFound when nothing matches ("no match
 * for platform in manifest …") or the root is not a manifest or index.
 */
export async function manifest(ctx: Ctx, provider: Provider, image: Descriptor, platform?: MatchComparer): Promise<Manifest> {
  const found: Manifest[] = [];
  let wasIndex = false;
  await walk(ctx, async (c, desc) => {
    if (isManifest(desc.mediaType)) {
      const m = await readManifest(c, provider, desc);
      if (desc.digest !== image.digest && platform) {
        if (desc.platform && !platform.match(desc.platform)) return [];
        if (!desc.platform) {
          const cfg = await readImageConfig(c, provider, m.config);
          if (!platform.match(normalize({ os: cfg.os, architecture: cfg.architecture }))) return [];
        }
      }
      found.push(m);
      return [];
    }
    if (isIndex(desc.mediaType)) {
      const idx = await readIndex(c, provider, desc);
      if (!platform) return idx.manifests;
      const descs = sortByPreference(idx.manifests.filter((d) => !d.platform || platform.match(d.platform)), platform);
      wasIndex = true;
      return descs.slice(0, 1);
    }
    throw notFound(`unexpected media type ${desc.mediaType} for ${desc.digest}`);
  }, image);
  if (found.length === 0) {
    throw notFound(wasIndex ? `no match for platform in manifest ${image.digest}` : `manifest ${image.digest}`);
  }
  return found[0];
}

/** The config descriptor of the platform's manifest. */
export async function config(ctx: Ctx, provider: Provider, image: Descriptor, platform?: MatchComparer): Promise<Descriptor> {
  return (await manifest(ctx, provider, image, platform)).config;
}

/** rootfs.diff_ids of an image config: the uncompressed layer digests, bottom first. */
export async function rootFS(ctx: Ctx, provider: Provider, configDesc: Descriptor): Promise<string[]> {
  return (await readImageConfig(ctx, provider, configDesc)).rootfs.diff_ids;
}

/** rootFS of the config of image's platform manifest. */
export async function imageRootFS(ctx: Ctx, provider: Provider, image: Descriptor, platform?: MatchComparer): Promise<string[]> {
  return rootFS(ctx, provider, await config(ctx, provider, image, platform));
}

/**
 * Platforms the image offers: those declared on index entries, else the
 * os/architecture of each config reached (normalised).
 */
export async function platforms(ctx: Ctx, provider: Provider, image: Descriptor): Promise<Platform[]> {
  const out: Platform[] = [];
  const collect: Handler = async (c, desc) => {
    if (desc.platform) {
      out.push(desc.platform);
      throw ErrSkipDesc;
    }
    if (isConfig(desc.mediaType)) {
      const cfg = await readImageConfig(c, provider, desc);
      out.push(normalize({ os: cfg.os, architecture: cfg.architecture }));
    }
    return [];
  };
  await walk(ctx, handlers(collect, childrenHandler(provider)), image);
  return out;
}

/** Total packed size of the image for platform: the root, the chosen manifest, its config and layers. */
export async function size(ctx: Ctx, provider: Provider, image: Descriptor, platform: MatchComparer): Promise<number> {
  let total = 0;
  const add: Handler = async (_c, desc) => {
    if (desc.size < 0) throw invalidArgument(`invalid size ${desc.size} in ${desc.digest} (${desc.mediaType})`);
    total += desc.size;
    return [];
  };
  await walk(ctx, handlers(add, limitManifests(filterPlatforms(childrenHandler(provider), platform), platform, 1)), image);
  return total;
}

export interface CheckResult {
  /** True when the manifest resolved; then `required` is complete. */
  available: boolean;
  /** The config and layers of the platform's manifest (or just the root when unresolvable). */
  required: Descriptor[];
  present: Descriptor[];
  missing: Descriptor[];
}

/**
 * Which content of image (for platform) the provider holds. When the
 * manifest can't be resolved for lack of content, available is false and
 * the root is reported missing; other failures throw.
 */
export async function check(ctx: Ctx, provider: Provider, image: Descriptor, platform?: MatchComparer): Promise<CheckResult> {
  let m: Manifest;
  try {
    m = await manifest(ctx, provider, image, platform);
  } catch (err) {
    if (isNotFound(err)) return { available: false, required: [image], present: [], missing: [image] };
    throw wrap(codeOf(err), `failed to check image ${image.digest}`, err);
  }
  const required = [m.config, ...m.layers];
  const present: Descriptor[] = [];
  const missing: Descriptor[] = [];
  for (const desc of required) {
    try {
      const ra = await provider.readerAt(ctx, desc);
      await ra.close();
      present.push(desc);
    } catch (err) {
      if (!isNotFound(err)) throw wrap(codeOf(err), `failed to check image ${desc.digest}`, err);
      missing.push(desc);
    }
  }
  return { available: true, required, present, missing };
}
