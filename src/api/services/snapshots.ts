/**
 * containerd.services.snapshots.v1.Snapshots over named snapshotters
 * (containerd's services/snapshots/service.go). Every request names its
 * snapshotter; an unknown name fails InvalidArgument "snapshotter not
 * loaded: X". An empty name (containerd: InvalidArgument "snapshotter
 * argument missing") resolves here like clients do: the namespace label
 * containerd.io/defaults/snapshotter, else the daemon's default.
 * Publishes /snapshot/prepare, /snapshot/commit and /snapshot/remove.
 */
import type { ServerWritableStream } from '@grpc/grpc-js';
import { invalidArgument, notImplemented } from '../../errdefs/index.js';
import type { Publisher } from '../../events/types.js';
import { Topics } from '../../events/types.js';
import type { Ctx } from '../../internal/context.js';
import type { NamespaceStore } from '../../namespaces/types.js';
import { kindFromProto, type Info, type Kind, type Snapshotter } from '../../snapshots/types.js';
import { send, serverStream, unary, type HandlerOptions, type ServiceImpl } from '../grpc/handlers.js';
import type { google, snapshots } from '../grpc/messages.js';
import { none } from './content.js';
import { fromTs, int64, labelsOut, maskPaths, mountToProto, ts } from './convert.js';

export const LIST_BATCH = 100;
/** Namespace label naming the namespace's default snapshotter. */
export const LABEL_DEFAULT_SNAPSHOTTER = 'containerd.io/defaults/snapshotter';

export interface SnapshotsServiceOptions extends HandlerOptions {
  publisher?: Publisher;
  /** Used for requests without a snapshotter name (after the namespace label). */
  defaultSnapshotter?: string;
  /** Reads the namespace label for requests without a snapshotter name. */
  namespaces?: NamespaceStore;
}

const KIND_OUT: Record<Kind, snapshots.Kind> = { view: 'VIEW', active: 'ACTIVE', committed: 'COMMITTED' };

export function snapshotInfoToProto(i: Info): snapshots.Info {
  return { name: i.name, parent: i.parent ?? '', kind: KIND_OUT[i.kind], created_at: ts(i.createdAt), updated_at: ts(i.updatedAt), labels: labelsOut(i.labels) };
}

export function snapshotInfoFromProto(i: snapshots.Info | null | undefined): Info {
  const out: Info = {
    name: i?.name ?? '',
    kind: kindFromProto(i?.kind ?? 'UNKNOWN') ?? 'committed',
    labels: { ...(i?.labels ?? {}) },
    createdAt: fromTs(i?.created_at),
    updatedAt: fromTs(i?.updated_at),
  };
  if (i?.parent) out.parent = i.parent;
  return out;
}

/**
 * The Snapshots service. `snapshotter(name)` returns a loaded snapshotter or
 * throws InvalidArgument "snapshotter not loaded: <name>".
 */
export function snapshotsService(snapshotter: (name: string) => Promise<Snapshotter>, opts: SnapshotsServiceOptions = {}): ServiceImpl {
  const h: HandlerOptions = { onError: opts.onError };
  const get = async (ctx: Ctx, name: string): Promise<Snapshotter> => {
    if (!name) {
      if (opts.namespaces && ctx.namespace) {
        const labels = await opts.namespaces.labels(ctx, ctx.namespace).catch(() => ({}) as Record<string, string>);
        name = labels[LABEL_DEFAULT_SNAPSHOTTER] ?? '';
      }
      name ||= opts.defaultSnapshotter ?? '';
      if (!name) throw invalidArgument('snapshotter argument missing');
    }
    return snapshotter(name);
  };
  const publish = (ctx: Ctx, topic: string, type: string, event: object) => opts.publisher?.publish(ctx, topic, event, `containerd.events.${type}`);
  const labelOpts = (labels: Record<string, string> | undefined) => (labels && Object.keys(labels).length ? { labels: { ...labels } } : undefined);

  return {
    Prepare: unary<snapshots.PrepareSnapshotRequest, snapshots.PrepareSnapshotResponse>(async (req, ctx) => {
      const sn = await get(ctx, req.snapshotter);
      const mounts = await sn.prepare(ctx, req.key, req.parent || undefined, labelOpts(req.labels));
      await publish(ctx, Topics.SnapshotPrepare, 'SnapshotPrepare', { key: req.key, parent: req.parent });
      return { mounts: mounts.map(mountToProto) };
    }, h),

    View: unary<snapshots.ViewSnapshotRequest, snapshots.ViewSnapshotResponse>(async (req, ctx) => {
      const sn = await get(ctx, req.snapshotter);
      const mounts = await sn.view(ctx, req.key, req.parent || undefined, labelOpts(req.labels));
      return { mounts: mounts.map(mountToProto) };
    }, h),

    Mounts: unary<snapshots.MountsRequest, snapshots.MountsResponse>(async (req, ctx) => {
      const sn = await get(ctx, req.snapshotter);
      return { mounts: (await sn.mounts(ctx, req.key)).map(mountToProto) };
    }, h),

    Commit: unary<snapshots.CommitSnapshotRequest, google.Empty>(async (req, ctx) => {
      const sn = await get(ctx, req.snapshotter);
      await sn.commit(ctx, req.name, req.key, labelOpts(req.labels));
      await publish(ctx, Topics.SnapshotCommit, 'SnapshotCommit', { key: req.key, name: req.name });
      return {};
    }, h),

    Remove: unary<snapshots.RemoveSnapshotRequest, google.Empty>(async (req, ctx) => {
      const sn = await get(ctx, req.snapshotter);
      await sn.remove(ctx, req.key);
      await publish(ctx, Topics.SnapshotRemove, 'SnapshotRemove', { key: req.key });
      return {};
    }, h),

    Stat: unary<snapshots.StatSnapshotRequest, snapshots.StatSnapshotResponse>(async (req, ctx) => {
      const sn = await get(ctx, req.snapshotter);
      return { info: snapshotInfoToProto(await sn.stat(ctx, req.key)) };
    }, h),

    Update: unary<snapshots.UpdateSnapshotRequest, snapshots.UpdateSnapshotResponse>(async (req, ctx) => {
      const sn = await get(ctx, req.snapshotter);
      const info = await sn.update(ctx, snapshotInfoFromProto(req.info), maskPaths(req.update_mask));
      return { info: snapshotInfoToProto(info) };
    }, h),

    List: serverStream<snapshots.ListSnapshotsRequest, snapshots.ListSnapshotsResponse>(async (req, ctx, call) => {
      const sn = await get(ctx, req.snapshotter);
      let batch: snapshots.Info[] = [];
      const flush = async () => {
        const info = batch;
        batch = [];
        await send(call as ServerWritableStream<unknown, unknown>, { info }, ctx.signal);
      };
      await sn.walk(ctx, async (info) => {
        batch.push(snapshotInfoToProto(info));
        if (batch.length >= LIST_BATCH) await flush();
      }, req.filters ?? []);
      if (batch.length) await flush();
      return none();
    }, h),

    Usage: unary<snapshots.UsageRequest, snapshots.UsageResponse>(async (req, ctx) => {
      const sn = await get(ctx, req.snapshotter);
      const u = await sn.usage(ctx, req.key);
      return { size: int64(u.size), inodes: int64(u.inodes) };
    }, h),

    Cleanup: unary<snapshots.CleanupRequest, google.Empty>(async (req, ctx) => {
      const sn = await get(ctx, req.snapshotter);
      if (!sn.cleanup) throw notImplemented('snapshotter does not implement Cleanup method');
      await sn.cleanup(ctx);
      return {};
    }, h),
  };
}
