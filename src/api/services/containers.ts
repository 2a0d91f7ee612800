/**
 * containerd.services.containers.v1.Containers over a ContainerStore
 * (containerd's services/containers/local.go): Get, List, ListStream,
 * Create, Update (update_mask), Delete. Publishes /containers/create,
 * /containers/update and /containers/delete.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import type { AnyValue, Container, ContainerInput, ContainerStore } from '../../containers/types.js';
import type { Publisher } from '../../events/types.js';
import { Topics } from '../../events/types.js';
import { serviceError } from '../grpc/errors.js';
import { serverStream, unary, type HandlerOptions, type ServiceImpl } from '../grpc/handlers.js';
import type { containers, google } from '../grpc/messages.js';
import { labelsOut, maskPaths, ts } from './convert.js';

export interface ContainersServiceOptions extends HandlerOptions {
  publisher?: Publisher;
}

const anyOut = (a: AnyValue): google.Any => ({ type_url: a.typeUrl, value: Buffer.from(a.value) });
const anyIn = (a: google.Any): AnyValue => ({ typeUrl: a.type_url, value: Buffer.from(a.value ?? []) });

export function containerToProto(c: Container): containers.Container {
  return {
    id: c.id,
    labels: labelsOut(c.labels),
    image: c.image,
    runtime: { name: c.runtime.name, options: c.runtime.options ? anyOut(c.runtime.options) : null },
    spec: c.spec ? anyOut(c.spec) : null,
    snapshotter: c.snapshotter,
    snapshot_key: c.snapshotKey,
    created_at: ts(c.createdAt),
    updated_at: ts(c.updatedAt),
    extensions: Object.fromEntries(Object.entries(c.extensions).map(([k, v]) => [k, anyOut(v)])),
  };
}

export function containerFromProto(c: containers.Container | null | undefined): ContainerInput {
  const out: ContainerInput = {
    id: c?.id ?? '',
    labels: { ...(c?.labels ?? {}) },
    image: c?.image ?? '',
    runtime: { name: c?.runtime?.name ?? '', ...(c?.runtime?.options ? { options: anyIn(c.runtime.options) } : {}) },
    snapshotter: c?.snapshotter ?? '',
    snapshotKey: c?.snapshot_key ?? '',
    extensions: Object.fromEntries(Object.entries(c?.extensions ?? {}).map(([k, v]) => [k, anyIn(v)])),
  };
  if (c?.spec) out.spec = anyIn(c.spec);
  return out;
}

export function containersService(store: ContainerStore, opts: ContainersServiceOptions = {}): ServiceImpl {
  const h: HandlerOptions = { onError: opts.onError };
  const publish = (ctx: Parameters<ContainerStore['get']>[0], topic: string, type: string, event: object) =>
    opts.publisher?.publish(ctx, topic, event, `containerd.events.${type}`);
  return {
    Get: unary<containers.GetContainerRequest, containers.GetContainerResponse>(async (req, ctx) => ({ container: containerToProto(await store.get(ctx, req.id)) }), h),

    List: unary<containers.ListContainersRequest, containers.ListContainersResponse>(async (req, ctx) => ({
      containers: (await store.list(ctx, req.filters ?? [])).map(containerToProto),
    }), h),

    ListStream: serverStream<containers.ListContainersRequest, containers.ListContainerMessage>(async function* (req, ctx) {
      for (const c of await store.list(ctx, req.filters ?? [])) yield { container: containerToProto(c) };
    }, h),

    Create: unary<containers.CreateContainerRequest, containers.CreateContainerResponse>(async (req, ctx) => {
      const created = containerToProto(await store.create(ctx, containerFromProto(req.container)));
      await publish(ctx, Topics.ContainerCreate, 'ContainerCreate', { id: created.id, image: created.image, runtime: created.runtime });
      return { container: created };
    }, h),

    Update: unary<containers.UpdateContainerRequest, containers.UpdateContainerResponse>(async (req, ctx) => {
      if (!req.container?.id) throw serviceError(grpcStatus.INVALID_ARGUMENT, 'Container.ID required');
      const updated = containerToProto(await store.update(ctx, containerFromProto(req.container), maskPaths(req.update_mask)));
      await publish(ctx, Topics.ContainerUpdate, 'ContainerUpdate', { id: updated.id, image: updated.image, labels: updated.labels, snapshot_key: updated.snapshot_key });
      return { container: updated };
    }, h),

    Delete: unary<containers.DeleteContainerRequest, google.Empty>(async (req, ctx) => {
      await store.delete(ctx, req.id);
      await publish(ctx, Topics.ContainerDelete, 'ContainerDelete', { id: req.id });
      return {};
    }, h),
  };
}
