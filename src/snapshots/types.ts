/**
 * Snapshotters: containerd's model for allocating, snapshotting and mounting
 * filesystem changesets.
 *
 * Lifecycle. A snapshot is a filesystem state with a parent; the empty
 * parent ("" / undefined) is an empty directory. There are three kinds:
 *
 * - `active`: created by `prepare(key, parent)`. The returned mounts give a
 *   writable tree that starts with the content of `parent`; changes are
 *   captured relative to it. `commit(name, key)` turns those changes into a
 *   committed snapshot `name` (same parent) and removes `key`.
 * - `view`: created by `view(key, parent)`. Read-only mounts of `parent`;
 *   can never be committed (FailedPrecondition). Remove it when done.
 * - `committed`: created only by `commit`. Immutable; the only kind that can
 *   be a parent (`prepare`/`view` on a non-committed parent: InvalidArgument).
 *
 * Active/view snapshots never become committed and vice versa: commit creates
 * a new entry. Keys and names share one key space: `prepare`/`view`/`commit`
 * onto an existing key fail with AlreadyExists. Any snapshot may be removed,
 * except one that is the parent of another (FailedPrecondition). Unknown keys
 * give NotFound; `mounts` works only on active and view snapshots.
 *
 * Only labels are mutable (`update` with field paths `labels`, `labels.<k>`;
 * anything else: InvalidArgument). A label set to "" is removed.
 *
 * Snapshotters here are namespace-agnostic: the metadata layer wraps them and
 * maps namespaced keys onto backend keys (containerd's metadata/snapshot.go).
 */
import type { Ctx } from '../internal/context.js';
import type { Timestamp } from '../internal/time.js';
import type { Mount } from '../mount/types.js';

export type { Mount };

export type Kind = 'view' | 'active' | 'committed';

/** containerd's proto enum snapshots.v1.Kind (and snapshots.Kind in Go). */
export const KindProto = {
  UNKNOWN: 0,
  VIEW: 1,
  ACTIVE: 2,
  COMMITTED: 3,
} as const;

const kindToNum: Record<Kind, number> = { view: 1, active: 2, committed: 3 };
const numToKind: Record<number, Kind> = { 1: 'view', 2: 'active', 3: 'committed' };

/** Kind → proto enum number (VIEW=1, ACTIVE=2, COMMITTED=3). */
export function kindToProto(k: Kind): number {
  return kindToNum[k];
}

/** Proto enum number (or its name, e.g. "ACTIVE") → Kind; undefined for UNKNOWN/others. */
export function kindFromProto(n: number | string): Kind | undefined {
  if (typeof n === 'string') return parseKind(n);
  return numToKind[n];
}

/** Case-insensitive parse of "view" / "active" / "committed"; undefined otherwise (Go's KindUnknown). */
export function parseKind(s: string): Kind | undefined {
  const l = s.toLowerCase();
  return l === 'view' || l === 'active' || l === 'committed' ? l : undefined;
}

/** Go's Kind.String(): "View", "Active", "Committed" (as ctr prints it). */
export function kindString(k: Kind | undefined): string {
  switch (k) {
    case 'view': return 'View';
    case 'active': return 'Active';
    case 'committed': return 'Committed';
    default: return 'Unknown';
  }
}

export interface Info {
  kind: Kind;
  /** Key (active/view) or name (committed). */
  name: string;
  /** Name of the committed parent; undefined for none. */
  parent?: string;
  labels: Record<string, string>;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

/** Resources used by the snapshot itself, excluding its parents. */
export interface Usage {
  /** Bytes allocated (st_blocks × 512 over unique inodes). */
  size: number;
  inodes: number;
}

/** Options at creation (prepare/view/commit). */
export interface SnapshotOpts {
  /** Labels of the new snapshot; commit does not inherit the active's labels. */
  labels?: Record<string, string>;
}

/** What `update` reads: the name plus the new labels. Other fields are ignored. */
export type UpdateInfo = Pick<Info, 'name'> & Partial<Omit<Info, 'name'>>;

export type WalkFunc = (info: Info) => void | Promise<void>;

export interface Snapshotter {
  /** Info of an active, view or committed snapshot. NotFound when missing. */
  stat(ctx: Ctx, key: string): Promise<Info>;
  /**
   * Updates labels. No field paths: replace all labels. Paths: `labels`
   * (replace all), `labels.<k>` (set/remove one). Other paths: InvalidArgument.
   * Sets updatedAt; returns the stored info.
   */
  update(ctx: Ctx, info: UpdateInfo, fieldpaths?: string[]): Promise<Info>;
  /** Usage of the snapshot itself: measured for active ones, stored at commit for committed ones. */
  usage(ctx: Ctx, key: string): Promise<Usage>;
  /** Mounts of an active or view snapshot (FailedPrecondition for committed). */
  mounts(ctx: Ctx, key: string): Promise<Mount[]>;
  /** Creates an active snapshot on top of committed `parent`. */
  prepare(ctx: Ctx, key: string, parent?: string, opts?: SnapshotOpts): Promise<Mount[]>;
  /** Creates a read-only view of committed `parent`. */
  view(ctx: Ctx, key: string, parent?: string, opts?: SnapshotOpts): Promise<Mount[]>;
  /** Commits active `key` as `name` (same parent); `key` is gone afterwards. */
  commit(ctx: Ctx, name: string, key: string, opts?: SnapshotOpts): Promise<void>;
  /** Removes a snapshot of any kind; FailedPrecondition while it has children. */
  remove(ctx: Ctx, key: string): Promise<void>;
  /**
   * Calls fn for every snapshot matching any of the filters (none: all).
   * Fields: `kind`, `name`, `parent`, `labels.<k>`. fn may call other methods.
   */
  walk(ctx: Ctx, fn: WalkFunc, filters?: string[]): Promise<void>;
  /** Removes disk resources left by removed or abandoned snapshots. */
  cleanup?(ctx: Ctx): Promise<void>;
  /** Releases resources; calling it again is a no-op. */
  close(): Promise<void>;
}

/** Key prefix of snapshots used for layer extraction (containerd's UnpackKeyPrefix). */
export const UNPACK_KEY_PREFIX = 'extract';
const INHERITED_LABELS_PREFIX = 'containerd.io/snapshot/';
const LABEL_SNAPSHOT_REF = 'containerd.io/snapshot.ref';

/** Keeps only labels a snapshotter inherits: `containerd.io/snapshot/*` and `containerd.io/snapshot.ref`. */
export function filterInheritedLabels(labels: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!labels) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (k === LABEL_SNAPSHOT_REF || k.startsWith(INHERITED_LABELS_PREFIX)) out[k] = v;
  }
  return out;
}
