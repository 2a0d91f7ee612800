/**
 * messages: TypeScript shapes of the API messages as the loader decodes them
 * (LOADER_OPTIONS in loader.ts): snake_case fields, int64 as decimal strings,
 * enums as value names, bytes as Buffer, unset message fields null, unset
 * repeated [] and maps {}. One namespace per proto package, one interface per
 * message, same names as the .proto (test/api/messages.test.ts keeps the
 * field lists in step with the .proto files).
 *
 * For sending, wrap a type in `In<…>`: every field optional (the serializer
 * fills defaults). int64 values are strings here too; convert with int64().
 */
import type { ProtoTimestamp } from './timestamp.js';

/** int64/uint64 on the wire: a decimal string. */
export type Int64 = string;
export type Timestamp = ProtoTimestamp;

/** What a message looks like when sent: all fields optional, recursively. */
export type In<T> = T extends Buffer
  ? Buffer | Uint8Array
  : T extends ReadonlyArray<infer U>
    ? ReadonlyArray<In<U>>
    : T extends object
      ? { [K in keyof T]?: In<T[K]> | null }
      : T;

export declare namespace google {
  interface Empty {}
  interface Any {
    type_url: string;
    value: Buffer;
  }
  interface FieldMask {
    paths: string[];
  }
  interface Status {
    code: number;
    message: string;
    details: Any[];
  }
}

export declare namespace types {
  interface Descriptor {
    media_type: string;
    digest: string;
    size: Int64;
    annotations: Record<string, string>;
  }
  interface Mount {
    type: string;
    source: string;
    target: string;
    options: string[];
  }
  interface Platform {
    os: string;
    architecture: string;
    variant: string;
  }
}

export declare namespace content {
  type WriteAction = 'STAT' | 'WRITE' | 'COMMIT';
  interface Info {
    digest: string;
    size: Int64;
    created_at: Timestamp | null;
    updated_at: Timestamp | null;
    labels: Record<string, string>;
  }
  interface InfoRequest {
    digest: string;
  }
  interface InfoResponse {
    info: Info | null;
  }
  interface UpdateRequest {
    info: Info | null;
    update_mask: google.FieldMask | null;
  }
  interface UpdateResponse {
    info: Info | null;
  }
  interface ListContentRequest {
    filters: string[];
  }
  interface ListContentResponse {
    info: Info[];
  }
  interface DeleteContentRequest {
    digest: string;
  }
  interface ReadContentRequest {
    digest: string;
    offset: Int64;
    size: Int64;
  }
  interface ReadContentResponse {
    offset: Int64;
    data: Buffer;
  }
  interface Status {
    started_at: Timestamp | null;
    updated_at: Timestamp | null;
    ref: string;
    offset: Int64;
    total: Int64;
    expected: string;
  }
  interface StatusRequest {
    ref: string;
  }
  interface StatusResponse {
    status: Status | null;
  }
  interface ListStatusesRequest {
    filters: string[];
  }
  interface ListStatusesResponse {
    statuses: Status[];
  }
  interface WriteContentRequest {
    action: WriteAction;
    ref: string;
    total: Int64;
    expected: string;
    offset: Int64;
    data: Buffer;
    labels: Record<string, string>;
  }
  interface WriteContentResponse {
    action: WriteAction;
    started_at: Timestamp | null;
    updated_at: Timestamp | null;
    offset: Int64;
    total: Int64;
    digest: string;
  }
  interface AbortRequest {
    ref: string;
  }
}

export declare namespace images {
  interface Image {
    name: string;
    labels: Record<string, string>;
    target: types.Descriptor | null;
    created_at: Timestamp | null;
    updated_at: Timestamp | null;
  }
  interface GetImageRequest {
    name: string;
  }
  interface GetImageResponse {
    image: Image | null;
  }
  interface CreateImageRequest {
    image: Image | null;
  }
  interface CreateImageResponse {
    image: Image | null;
  }
  interface UpdateImageRequest {
    image: Image | null;
    update_mask: google.FieldMask | null;
  }
  interface UpdateImageResponse {
    image: Image | null;
  }
  interface ListImagesRequest {
    filters: string[];
  }
  interface ListImagesResponse {
    images: Image[];
  }
  interface DeleteImageRequest {
    name: string;
    sync: boolean;
  }
  // Event payloads (declared in this package upstream).
  interface ImageCreate {
    name: string;
    labels: Record<string, string>;
  }
  interface ImageUpdate {
    name: string;
    labels: Record<string, string>;
  }
  interface ImageDelete {
    name: string;
  }
}

export declare namespace namespaces {
  interface Namespace {
    name: string;
    labels: Record<string, string>;
  }
  interface GetNamespaceRequest {
    name: string;
  }
  interface GetNamespaceResponse {
    namespace: Namespace | null;
  }
  interface ListNamespacesRequest {
    filter: string;
  }
  interface ListNamespacesResponse {
    namespaces: Namespace[];
  }
  interface CreateNamespaceRequest {
    namespace: Namespace | null;
  }
  interface CreateNamespaceResponse {
    namespace: Namespace | null;
  }
  interface UpdateNamespaceRequest {
    namespace: Namespace | null;
    update_mask: google.FieldMask | null;
  }
  interface UpdateNamespaceResponse {
    namespace: Namespace | null;
  }
  interface DeleteNamespaceRequest {
    name: string;
  }
}

export declare namespace leases {
  interface Lease {
    id: string;
    created_at: Timestamp | null;
    labels: Record<string, string>;
  }
  interface CreateRequest {
    id: string;
    labels: Record<string, string>;
  }
  interface CreateResponse {
    lease: Lease | null;
  }
  interface DeleteRequest {
    id: string;
    sync: boolean;
  }
  interface ListRequest {
    filters: string[];
  }
  interface ListResponse {
    leases: Lease[];
  }
  interface Resource {
    id: string;
    type: string;
  }
  interface AddResourceRequest {
    id: string;
    resource: Resource | null;
  }
  interface DeleteResourceRequest {
    id: string;
    resource: Resource | null;
  }
  interface ListResourcesRequest {
    id: string;
  }
  interface ListResourcesResponse {
    resources: Resource[];
  }
}

export declare namespace snapshots {
  type Kind = 'UNKNOWN' | 'VIEW' | 'ACTIVE' | 'COMMITTED';
  interface PrepareSnapshotRequest {
    snapshotter: string;
    key: string;
    parent: string;
    labels: Record<string, string>;
  }
  interface PrepareSnapshotResponse {
    mounts: types.Mount[];
  }
  interface ViewSnapshotRequest {
    snapshotter: string;
    key: string;
    parent: string;
    labels: Record<string, string>;
  }
  interface ViewSnapshotResponse {
    mounts: types.Mount[];
  }
  interface MountsRequest {
    snapshotter: string;
    key: string;
  }
  interface MountsResponse {
    mounts: types.Mount[];
  }
  interface RemoveSnapshotRequest {
    snapshotter: string;
    key: string;
  }
  interface CommitSnapshotRequest {
    snapshotter: string;
    name: string;
    key: string;
    labels: Record<string, string>;
  }
  interface StatSnapshotRequest {
    snapshotter: string;
    key: string;
  }
  interface Info {
    name: string;
    parent: string;
    kind: Kind;
    created_at: Timestamp | null;
    updated_at: Timestamp | null;
    labels: Record<string, string>;
  }
  interface StatSnapshotResponse {
    info: Info | null;
  }
  interface UpdateSnapshotRequest {
    snapshotter: string;
    info: Info | null;
    update_mask: google.FieldMask | null;
  }
  interface UpdateSnapshotResponse {
    info: Info | null;
  }
  interface ListSnapshotsRequest {
    snapshotter: string;
    filters: string[];
  }
  interface ListSnapshotsResponse {
    info: Info[];
  }
  interface UsageRequest {
    snapshotter: string;
    key: string;
  }
  interface UsageResponse {
    size: Int64;
    inodes: Int64;
  }
  interface CleanupRequest {
    snapshotter: string;
  }
}

export declare namespace diff {
  interface ApplyRequest {
    diff: types.Descriptor | null;
    mounts: types.Mount[];
    payloads: Record<string, google.Any>;
  }
  interface ApplyResponse {
    applied: types.Descriptor | null;
  }
  interface DiffRequest {
    left: types.Mount[];
    right: types.Mount[];
    media_type: string;
    ref: string;
    labels: Record<string, string>;
  }
  interface DiffResponse {
    diff: types.Descriptor | null;
  }
}

export declare namespace containers {
  interface Runtime {
    name: string;
    options: google.Any | null;
  }
  interface Container {
    id: string;
    labels: Record<string, string>;
    image: string;
    runtime: Runtime | null;
    spec: google.Any | null;
    snapshotter: string;
    snapshot_key: string;
    created_at: Timestamp | null;
    updated_at: Timestamp | null;
    extensions: Record<string, google.Any>;
  }
  interface GetContainerRequest {
    id: string;
  }
  interface GetContainerResponse {
    container: Container | null;
  }
  interface ListContainersRequest {
    filters: string[];
  }
  interface ListContainersResponse {
    containers: Container[];
  }
  interface CreateContainerRequest {
    container: Container | null;
  }
  interface CreateContainerResponse {
    container: Container | null;
  }
  interface UpdateContainerRequest {
    container: Container | null;
    update_mask: google.FieldMask | null;
  }
  interface UpdateContainerResponse {
    container: Container | null;
  }
  interface DeleteContainerRequest {
    id: string;
  }
  interface ListContainerMessage {
    container: Container | null;
  }
}

export declare namespace version {
  interface VersionResponse {
    version: string;
    revision: string;
  }
}

export declare namespace introspection {
  interface Plugin {
    type: string;
    id: string;
    requires: string[];
    platforms: types.Platform[];
    exports: Record<string, string>;
    capabilities: string[];
    init_err: google.Status | null;
  }
  interface PluginsRequest {
    filters: string[];
  }
  interface PluginsResponse {
    plugins: Plugin[];
  }
  interface ServerResponse {
    uuid: string;
  }
}

export declare namespace events {
  interface PublishRequest {
    topic: string;
    event: google.Any | null;
  }
  interface ForwardRequest {
    envelope: Envelope | null;
  }
  interface SubscribeRequest {
    filters: string[];
  }
  interface Envelope {
    timestamp: Timestamp | null;
    namespace: string;
    topic: string;
    event: google.Any | null;
  }
  // Event payloads of package containerd.events (content, namespaces, snapshots).
  interface ContentDelete {
    digest: string;
  }
  interface NamespaceCreate {
    name: string;
    labels: Record<string, string>;
  }
  interface NamespaceUpdate {
    name: string;
    labels: Record<string, string>;
  }
  interface NamespaceDelete {
    name: string;
  }
  interface SnapshotPrepare {
    key: string;
    parent: string;
  }
  interface SnapshotCommit {
    key: string;
    name: string;
  }
  interface SnapshotRemove {
    key: string;
  }
}

export declare namespace health {
  type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
  interface HealthCheckRequest {
    service: string;
  }
  interface HealthCheckResponse {
    status: ServingStatus;
  }
}

/** Package of each namespace above, for test/api/messages.test.ts. */
export const MESSAGE_PACKAGES = {
  google: ['google.protobuf', 'google.rpc'],
  types: ['containerd.types'],
  content: ['containerd.services.content.v1'],
  images: ['containerd.services.images.v1'],
  namespaces: ['containerd.services.namespaces.v1'],
  leases: ['containerd.services.leases.v1'],
  snapshots: ['containerd.services.snapshots.v1'],
  diff: ['containerd.services.diff.v1'],
  containers: ['containerd.services.containers.v1', 'containerd.services.containers.v1.Container'],
  version: ['containerd.services.version.v1'],
  introspection: ['containerd.services.introspection.v1'],
  events: ['containerd.services.events.v1', 'containerd.events'],
  health: ['grpc.health.v1'],
} as const;
