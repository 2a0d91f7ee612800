/**
 * namespaces: isolation of metadata (images, content visibility, leases,
 * snapshots, containers). Names follow src/identifiers.
 */
import type { Ctx } from '../internal/context.js';

export interface NamespaceStore {
  /** AlreadyExists when present; InvalidArgument for a bad name. */
  create(ctx: Ctx, name: string, labels?: Record<string, string>): Promise<void>;
  /** Labels of a namespace; an unknown namespace has none (no error, like containerd 1.6). */
  labels(ctx: Ctx, name: string): Promise<Record<string, string>>;
  /** Sets (value non-empty) or clears (value '') one label; creates the namespace if needed. */
  setLabel(ctx: Ctx, name: string, key: string, value: string): Promise<void>;
  list(ctx: Ctx): Promise<string[]>;
  /** FailedPrecondition while it holds images, blobs, containers or snapshots; NotFound when absent. */
  delete(ctx: Ctx, name: string): Promise<void>;
}
