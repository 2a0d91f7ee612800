/**
 * containerd.services.leases.v1.Leases over a LeaseManager (containerd's
 * services/leases/service.go): Create (random id when none), Delete (sync:
 * GC before the reply), List, AddResource, DeleteResource, ListResources.
 */
import type { Ctx } from '../../internal/context.js';
import type { Lease, LeaseManager } from '../../leases/types.js';
import { unary, type HandlerOptions, type ServiceImpl } from '../grpc/handlers.js';
import type { google, leases } from '../grpc/messages.js';
import { labelsOut, ts } from './convert.js';

export interface LeasesServiceOptions extends HandlerOptions {
  /** Runs a garbage collection (Delete with sync); without it the manager's own sync delete is used. */
  collect?: (ctx: Ctx) => Promise<unknown>;
}

export function leaseToProto(l: Lease): leases.Lease {
  return { id: l.id, created_at: ts(l.createdAt), labels: labelsOut(l.labels) };
}

export function leasesService(lm: LeaseManager, opts: LeasesServiceOptions = {}): ServiceImpl {
  const h: HandlerOptions = { onError: opts.onError };
  const resource = (r: leases.Resource | null) => ({ id: r?.id ?? '', type: r?.type ?? '' });
  return {
    Create: unary<leases.CreateRequest, leases.CreateResponse>(async (req, ctx) => {
      const lease = await lm.create(ctx, { ...(req.id ? { id: req.id } : {}), labels: { ...(req.labels ?? {}) } });
      return { lease: leaseToProto(lease) };
    }, h),

    Delete: unary<leases.DeleteRequest, google.Empty>(async (req, ctx) => {
      await lm.delete(ctx, { id: req.id }, { sync: req.sync && !opts.collect });
      if (req.sync && opts.collect) await opts.collect(ctx);
      return {};
    }, h),

    List: unary<leases.ListRequest, leases.ListResponse>(async (req, ctx) => ({ leases: (await lm.list(ctx, req.filters ?? [])).map(leaseToProto) }), h),

    AddResource: unary<leases.AddResourceRequest, google.Empty>(async (req, ctx) => {
      await lm.addResource(ctx, { id: req.id }, resource(req.resource));
      return {};
    }, h),

    DeleteResource: unary<leases.DeleteResourceRequest, google.Empty>(async (req, ctx) => {
      await lm.deleteResource(ctx, { id: req.id }, resource(req.resource));
      return {};
    }, h),

    ListResources: unary<leases.ListResourcesRequest, leases.ListResourcesResponse>(async (req, ctx) => ({
      resources: (await lm.listResources(ctx, { id: req.id })).map((r) => ({ id: r.id, type: r.type })),
    }), h),
  };
}
