/**
 * images: the image record (a name pointing at a root descriptor) and the
 * store of records, per namespace (containerd's images.Store).
 */
import type { Descriptor } from '../content/types.js';
import type { Ctx } from '../internal/context.js';
import type { Timestamp } from '../internal/time.js';

export interface Image {
  name: string;
  labels: Record<string, string>;
  target: Descriptor;
  createdAt: Timestamp;
  updatedAt: Timestamp;
}

export interface ImageStore {
  /** NotFound when absent. */
  get(ctx: Ctx, name: string): Promise<Image>;
  /** Images matching any of the filters (fields: name, target.digest, target.mediatype, labels.*). */
  list(ctx: Ctx, filters?: string[]): Promise<Image[]>;
  /** AlreadyExists when the name is taken; InvalidArgument for an empty name or bad target. */
  create(ctx: Ctx, img: Pick<Image, 'name' | 'target'> & Partial<Image>): Promise<Image>;
  /** Field paths: labels, labels.<k>, target, annotations…; none: replace labels and target. */
  update(ctx: Ctx, img: Pick<Image, 'name'> & Partial<Image>, fieldpaths?: string[]): Promise<Image>;
  /** NotFound when absent; sync runs a garbage collection before returning. */
  delete(ctx: Ctx, name: string, opts?: { sync?: boolean }): Promise<void>;
}
