/**
 * services: the set of stores a client works with. The CLI and the daemon
 * only see this interface: `openEmbedded(root)` serves it from a local root,
 * `connect(address)` (src/services/remote.ts) from any containerd-compatible
 * daemon over gRPC.
 */
import type { Store as ContentStore } from '../content/types.js';
import type { Applier } from '../diff/types.js';
import type { ImageStore } from '../images/image.js';
import type { Ctx } from '../internal/context.js';
import { expiresIn, type LeaseManager } from '../leases/types.js';
import type { NamespaceStore } from '../namespaces/types.js';
import type { Snapshotter } from '../snapshots/types.js';

export interface Services {
  readonly content: ContentStore;
  readonly namespaces: NamespaceStore;
  readonly leases: LeaseManager;
  readonly images: ImageStore;
  /** A snapshotter by name ("native", "overlayfs"); InvalidArgument "snapshotter not loaded: X" otherwise. */
  snapshotter(name: string): Promise<Snapshotter>;
  /** Applies layers onto snapshot mounts (locally, or by the daemon's Diff service). */
  readonly diff: Applier;
  /** Where the services live, for messages: a root directory or a socket address. */
  readonly location: string;
  close(): Promise<void>;
}

/** Runs fn under a fresh lease that is deleted afterwards (containerd's WithLease). */
export async function withLease<T>(svc: Services, ctx: Ctx, fn: (ctx: Ctx) => Promise<T>, opts: { expire?: number } = {}): Promise<T> {
  if (ctx.lease) return fn(ctx);
  const expireMs = opts.expire ?? 24 * 3600 * 1000;
  const lease = await svc.leases.create(ctx, { labels: expiresIn(expireMs) });
  try {
    return await fn({ ...ctx, lease: lease.id });
  } finally {
    await svc.leases.delete({ namespace: ctx.namespace }, lease).catch(() => undefined);
  }
}

/**
 * The snapshotter to use: explicit name, else env CONTAINERD_SNAPSHOTTER, else
 * the namespace label containerd.io/defaults/snapshotter, else the platform
 * default (overlayfs, as containerd).
 */
export async function resolveSnapshotter(svc: Services, ctx: Ctx, name?: string): Promise<string> {
  if (name) return name;
  if (process.env.CONTAINERD_SNAPSHOTTER) return process.env.CONTAINERD_SNAPSHOTTER;
  if (ctx.namespace) {
    const labels = await svc.namespaces.labels(ctx, ctx.namespace).catch(() => ({}) as Record<string, string>);
    const l = labels['containerd.io/defaults/snapshotter'];
    if (l) return l;
  }
  return DEFAULT_SNAPSHOTTER;
}

export const DEFAULT_SNAPSHOTTER = 'overlayfs';
