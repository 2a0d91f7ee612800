/**
 * services/embedded: every store opened directly on a local root, no daemon.
 *
 * Root layout: metadata.db (the metadata database), content/ (the shared
 * blob store), snapshots/<name>/ (snapshotters).
 */
import { join } from 'node:path';
import { LocalStore } from '../content/local/store.js';
import { MetaContentStore } from '../metadata/content.js';
import { MetadataDB } from '../metadata/db.js';
import { MetaImageStore } from '../metadata/images.js';
import { MetaLeaseManager } from '../metadata/leases.js';
import { MetaNamespaceStore } from '../metadata/namespaces.js';
import { LocalApplier } from '../diff/local.js';
import { invalidArgument } from '../errdefs/index.js';
import { GarbageCollector } from '../gc/index.js';
import { GCScheduler } from '../gc/scheduler.js';
import { MetaSnapshotter } from '../metadata/snapshots.js';
import { NativeSnapshotter } from '../snapshots/native/index.js';
import { OverlaySnapshotter } from '../snapshots/overlay/index.js';
import type { Snapshotter } from '../snapshots/types.js';
import type { Services } from './types.js';

/** The snapshotters an embedded root offers, by containerd's names. */
export const SNAPSHOTTERS: Record<string, (root: string) => Promise<Snapshotter>> = {
  native: (root) => NativeSnapshotter.open(root),
  overlayfs: (root) => OverlaySnapshotter.open(root),
};

export interface Embedded extends Services {
  readonly root: string;
  readonly db: MetadataDB;
  readonly content: MetaContentStore;
  readonly namespaces: MetaNamespaceStore;
  readonly leases: MetaLeaseManager;
  readonly images: MetaImageStore;
  snapshotter(name: string): Promise<MetaSnapshotter>;
  readonly gc: GarbageCollector;
  readonly gcScheduler: GCScheduler;
}

export interface EmbeddedOptions {
  /**
   * Collect garbage after deletions: 'on-close' (default, for short-lived
   * CLI processes: one collection at close if anything was deleted) or
   * 'scheduled' (long-lived daemons: shortly after deletions).
   */
  gc?: 'on-close' | 'scheduled' | 'off';
}

export async function openEmbedded(root: string, opts: EmbeddedOptions = {}): Promise<Embedded> {
  const db = MetadataDB.open(root);
  const backend = await LocalStore.open(join(root, 'content'));
  const content = new MetaContentStore(db, backend);
  const snapshotters = new Map<string, Promise<MetaSnapshotter>>();
  const snapshotter = (name: string): Promise<MetaSnapshotter> => {
    let s = snapshotters.get(name);
    if (!s) {
      const open = SNAPSHOTTERS[name];
      if (!open) return Promise.reject(invalidArgument(`snapshotter not loaded: ${name}`));
      s = open(join(root, 'snapshots', name)).then((b) => new MetaSnapshotter(db, name, b));
      s.catch(() => snapshotters.delete(name));
      snapshotters.set(name, s);
    }
    return s;
  };
  const gc = new GarbageCollector(db, backend, async (name) => (SNAPSHOTTERS[name] ? (await snapshotter(name).catch(() => undefined))?.backend : undefined));
  const mode = opts.gc ?? 'on-close';
  const gcScheduler = new GCScheduler(db, gc, { delayMs: mode === 'scheduled' ? 100 : Infinity });
  const images = new MetaImageStore(db);
  const leases = new MetaLeaseManager(db);
  images.collector = leases.collector = (ctx) => gc.collect(ctx);
  return {
    root,
    location: root,
    db,
    content,
    namespaces: new MetaNamespaceStore(db),
    leases,
    images,
    snapshotter,
    diff: new LocalApplier(content),
    gc,
    gcScheduler,
    async close() {
      if (mode !== 'off' && gcScheduler.isDirty) await gcScheduler.runNow().catch(() => undefined);
      gcScheduler.close();
      for (const s of snapshotters.values()) await (await s.catch(() => undefined))?.close();
      db.close();
    },
  };
}

/** The default root: $DIST_ROOT, else /var/lib/dist for root, else $XDG_DATA_HOME/dist (~/.local/share/dist). */
export function defaultRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DIST_ROOT) return env.DIST_ROOT;
  if (process.getuid?.() === 0) return '/var/lib/dist';
  const xdg = env.XDG_DATA_HOME || join(env.HOME ?? '/tmp', '.local', 'share');
  return join(xdg, 'dist');
}
