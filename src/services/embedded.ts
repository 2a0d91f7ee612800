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
import type { Services } from './types.js';

export interface Embedded extends Services {
  readonly root: string;
  readonly db: MetadataDB;
  readonly content: MetaContentStore;
  readonly namespaces: MetaNamespaceStore;
  readonly leases: MetaLeaseManager;
  readonly images: MetaImageStore;
}

export async function openEmbedded(root: string): Promise<Embedded> {
  const db = MetadataDB.open(root);
  const backend = await LocalStore.open(join(root, 'content'));
  const content = new MetaContentStore(db, backend);
  return {
    root,
    location: root,
    db,
    content,
    namespaces: new MetaNamespaceStore(db),
    leases: new MetaLeaseManager(db),
    images: new MetaImageStore(db),
    async close() {
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
