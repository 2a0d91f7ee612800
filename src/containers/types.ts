/**
 * containers: the container record (metadata only: no processes here) and
 * its store, per namespace (containerd's containers package). A record names
 * its runtime, OCI spec, image and root filesystem snapshot; dist keeps them
 * so that containerd clients can create, list and label containers.
 */
import type { Ctx } from '../internal/context.js';
import type { Timestamp } from '../internal/time.js';

/** google.protobuf.Any: message name or URL plus encoded bytes. */
export interface AnyValue {
  typeUrl: string;
  value: Uint8Array;
}

export interface RuntimeInfo {
  name: string;
  options?: AnyValue;
}

export interface Container {
  /** Identifier (identifiers rule); unique per namespace. */
  id: string;
  labels: Record<string, string>;
  /** Image reference the container was made from (free text). */
  image: string;
  /** Immutable after create. */
  runtime: RuntimeInfo;
  /** The OCI runtime spec; required. */
  spec?: AnyValue;
  /** Snapshotter of snapshotKey; required when snapshotKey is set; immutable after create. */
  snapshotter: string;
  snapshotKey: string;
  createdAt: Timestamp;
  updatedAt: Timestamp;
  /** Client-defined extension data by key. */
  extensions: Record<string, AnyValue>;
}

/** What create/update read (timestamps are the store's). */
export type ContainerInput = Pick<Container, 'id'> & Partial<Omit<Container, 'id' | 'createdAt' | 'updatedAt'>>;

export interface ContainerStore {
  /** NotFound when absent. */
  get(ctx: Ctx, id: string): Promise<Container>;
  /** Containers matching any filter (fields: id, image, runtime.name, labels.*). */
  list(ctx: Ctx, filters?: string[]): Promise<Container[]>;
  /** AlreadyExists for a taken id; InvalidArgument when it fails validation. */
  create(ctx: Ctx, c: ContainerInput): Promise<Container>;
  /**
   * Field paths: labels, labels.<k>, extensions, extensions.<k>, spec, image,
   * snapshotkey. None: replace labels, spec, extensions, image and snapshot
   * key, and fail when snapshotter or runtime name differ (immutable).
   */
  update(ctx: Ctx, c: ContainerInput, fieldpaths?: string[]): Promise<Container>;
  /** NotFound when absent. */
  delete(ctx: Ctx, id: string): Promise<void>;
}
