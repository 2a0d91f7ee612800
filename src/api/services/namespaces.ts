/**
 * containerd.services.namespaces.v1.Namespaces over a NamespaceStore
 * (containerd's services/namespaces/local.go). Not a namespaced service: the
 * namespace header is ignored except as the namespace of published events.
 * Get of an unknown namespace answers empty labels (containerd 1.6).
 * Publishes /namespaces/create, /namespaces/update, /namespaces/delete.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import type { Publisher } from '../../events/types.js';
import { Topics } from '../../events/types.js';
import type { Ctx } from '../../internal/context.js';
import type { NamespaceStore } from '../../namespaces/types.js';
import { serviceError } from '../grpc/errors.js';
import { unary, type HandlerOptions, type ServiceImpl } from '../grpc/handlers.js';
import type { google, namespaces } from '../grpc/messages.js';
import { labelsOut, maskPaths } from './convert.js';

export interface NamespacesServiceOptions extends HandlerOptions {
  publisher?: Publisher;
}

export function namespacesService(store: NamespaceStore, opts: NamespacesServiceOptions = {}): ServiceImpl {
  const h: HandlerOptions = { onError: opts.onError, namespaced: false };
  // Events go to the caller's namespace, or to the namespace acted on when no header was sent.
  const publish = (ctx: Ctx, name: string, topic: string, type: string, event: object) =>
    opts.publisher?.publish({ ...ctx, namespace: ctx.namespace ?? name }, topic, event, `containerd.events.${type}`);

  return {
    Get: unary<namespaces.GetNamespaceRequest, namespaces.GetNamespaceResponse>(async (req, ctx) => ({
      namespace: { name: req.name, labels: labelsOut(await store.labels(ctx, req.name)) },
    }), h),

    List: unary<namespaces.ListNamespacesRequest, namespaces.ListNamespacesResponse>(async (_req, ctx) => {
      const out: namespaces.Namespace[] = [];
      for (const name of await store.list(ctx)) out.push({ name, labels: labelsOut(await store.labels(ctx, name)) });
      return { namespaces: out };
    }, h),

    Create: unary<namespaces.CreateNamespaceRequest, namespaces.CreateNamespaceResponse>(async (req, ctx) => {
      const name = req.namespace?.name ?? '';
      const labels = { ...(req.namespace?.labels ?? {}) };
      await store.create(ctx, name, labels);
      await publish(ctx, name, Topics.NamespaceCreate, 'NamespaceCreate', { name, labels });
      return { namespace: { name, labels } };
    }, h),

    Update: unary<namespaces.UpdateNamespaceRequest, namespaces.UpdateNamespaceResponse>(async (req, ctx) => {
      const name = req.namespace?.name ?? '';
      const labels = req.namespace?.labels ?? {};
      const paths = maskPaths(req.update_mask);
      if (paths.length > 0) {
        for (const p of paths) {
          if (!p.startsWith('labels.')) throw serviceError(grpcStatus.INVALID_ARGUMENT, `cannot update ${JSON.stringify(p)} field`);
        }
        for (const p of paths) {
          const key = p.slice('labels.'.length);
          await store.setLabel(ctx, name, key, labels[key] ?? '');
        }
      } else {
        // Full replace: clear the current labels, then set the given ones.
        for (const k of Object.keys(await store.labels(ctx, name))) await store.setLabel(ctx, name, k, '');
        for (const [k, v] of Object.entries(labels)) await store.setLabel(ctx, name, k, v);
      }
      await publish(ctx, name, Topics.NamespaceUpdate, 'NamespaceUpdate', { name, labels: { ...labels } });
      return { namespace: { name, labels: labelsOut(await store.labels(ctx, name)) } };
    }, h),

    Delete: unary<namespaces.DeleteNamespaceRequest, google.Empty>(async (req, ctx) => {
      await store.delete(ctx, req.name);
      // containerd publishes the delete in the deleted namespace.
      await opts.publisher?.publish({ ...ctx, namespace: req.name }, Topics.NamespaceDelete, { name: req.name }, 'containerd.events.NamespaceDelete');
      return {};
    }, h),
  };
}
