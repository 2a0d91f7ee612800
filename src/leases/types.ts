/**
 * leases: a lease protects the resources added to it (content, ingests,
 * snapshots) from garbage collection until it is deleted or expires
 * (label containerd.io/gc.expire, RFC 3339).
 */
import type { Ctx } from '../internal/context.js';
import { toRFC3339, type Timestamp } from '../internal/time.js';

export const LABEL_EXPIRE = 'containerd.io/gc.expire';
export const LABEL_FLAT = 'containerd.io/gc.flat';

/** The expiry label of a lease that should live ms from now: { containerd.io/gc.expire: RFC 3339, seconds }. */
export function expiresIn(ms: number): Record<string, string> {
  return { [LABEL_EXPIRE]: toRFC3339(Date.now() + ms) };
}

export interface Lease {
  id: string;
  createdAt: Timestamp;
  labels: Record<string, string>;
}

/** type: "content" (id = digest), "ingests" (id = ref), "snapshots/<snapshotter>" (id = key). */
export interface Resource {
  id: string;
  type: string;
}

export interface LeaseManager {
  /** Random id when none is given; AlreadyExists for a duplicate id. */
  create(ctx: Ctx, opts?: { id?: string; labels?: Record<string, string> }): Promise<Lease>;
  /** NotFound when absent; sync runs a garbage collection before returning. */
  delete(ctx: Ctx, lease: { id: string }, opts?: { sync?: boolean }): Promise<void>;
  list(ctx: Ctx, filters?: string[]): Promise<Lease[]>;
  addResource(ctx: Ctx, lease: { id: string }, r: Resource): Promise<void>;
  deleteResource(ctx: Ctx, lease: { id: string }, r: Resource): Promise<void>;
  listResources(ctx: Ctx, lease: { id: string }): Promise<Resource[]>;
}
