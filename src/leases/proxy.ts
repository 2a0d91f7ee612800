/**
 * leases/proxy: the lease manager over containerd's Leases service
 * (containerd.services.leases.v1.Leases), as containerd's leases/proxy.
 */
import type * as grpc from '@grpc/grpc-js';
import { Connection, unaryCall } from '../api/grpc/client.js';
import type { google, In, leases as api } from '../api/grpc/messages.js';
import { timestampFromProto } from '../api/grpc/timestamp.js';
import type { Ctx } from '../internal/context.js';
import type { Lease, LeaseManager, Resource } from './types.js';

export const LEASES_SERVICE = 'containerd.services.leases.v1.Leases';

export function leaseFromProto(l: api.Lease | null | undefined): Lease {
  return { id: l?.id ?? '', createdAt: timestampFromProto(l?.created_at) ?? 0n, labels: { ...(l?.labels ?? {}) } };
}

export class ProxyLeaseManager implements LeaseManager {
  readonly client: grpc.Client;

  constructor(conn: Connection | grpc.Client) {
    this.client = conn instanceof Connection ? conn.client(LEASES_SERVICE) : conn;
  }

  /** An empty id lets the daemon pick a random one. */
  async create(ctx: Ctx, opts: { id?: string; labels?: Record<string, string> } = {}): Promise<Lease> {
    const resp = await unaryCall<In<api.CreateRequest>, api.CreateResponse>(this.client, 'Create', { id: opts.id ?? '', labels: opts.labels ?? {} }, ctx);
    return leaseFromProto(resp.lease);
  }

  async delete(ctx: Ctx, lease: { id: string }, opts: { sync?: boolean } = {}): Promise<void> {
    await unaryCall<In<api.DeleteRequest>, google.Empty>(this.client, 'Delete', { id: lease.id, sync: opts.sync ?? false }, ctx);
  }

  async list(ctx: Ctx, filters: string[] = []): Promise<Lease[]> {
    const resp = await unaryCall<In<api.ListRequest>, api.ListResponse>(this.client, 'List', { filters }, ctx);
    return resp.leases.map(leaseFromProto);
  }

  async addResource(ctx: Ctx, lease: { id: string }, r: Resource): Promise<void> {
    await unaryCall<In<api.AddResourceRequest>, google.Empty>(this.client, 'AddResource', { id: lease.id, resource: { id: r.id, type: r.type } }, ctx);
  }

  async deleteResource(ctx: Ctx, lease: { id: string }, r: Resource): Promise<void> {
    await unaryCall<In<api.DeleteResourceRequest>, google.Empty>(this.client, 'DeleteResource', { id: lease.id, resource: { id: r.id, type: r.type } }, ctx);
  }

  async listResources(ctx: Ctx, lease: { id: string }): Promise<Resource[]> {
    const resp = await unaryCall<In<api.ListResourcesRequest>, api.ListResourcesResponse>(this.client, 'ListResources', { id: lease.id }, ctx);
    return resp.resources.map((r) => ({ id: r.id, type: r.type }));
  }
}
