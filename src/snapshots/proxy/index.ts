/**
 * snapshots/proxy: one named snapshotter of a daemon, over containerd's
 * Snapshots service (containerd.services.snapshots.v1.Snapshots), as
 * containerd's snapshots/proxy. Every request names the snapshotter; the
 * namespace and lease travel in the headers from the Ctx. Mounts come back as
 * data: the caller performs them.
 */
import type * as grpc from '@grpc/grpc-js';
import { Connection, serverStreamCall, unaryCall } from '../../api/grpc/client.js';
import type { google, In, snapshots as api, types } from '../../api/grpc/messages.js';
import { timestampFromProto, timestampToProto } from '../../api/grpc/timestamp.js';
import { Code, DistError, classText, isUnknown } from '../../errdefs/index.js';
import type { Ctx } from '../../internal/context.js';
import { kindFromProto, type Info, type Mount, type SnapshotOpts, type Snapshotter, type UpdateInfo, type Usage, type WalkFunc } from '../types.js';

export const SNAPSHOTS_SERVICE = 'containerd.services.snapshots.v1.Snapshots';

export function infoFromProto(i: api.Info | null | undefined): Info {
  const info: Info = {
    // containerd's proxy reads anything but ACTIVE/VIEW as committed.
    kind: kindFromProto(i?.kind ?? 'COMMITTED') ?? 'committed',
    name: i?.name ?? '',
    labels: { ...(i?.labels ?? {}) },
    createdAt: timestampFromProto(i?.created_at) ?? 0n,
    updatedAt: timestampFromProto(i?.updated_at) ?? 0n,
  };
  if (i?.parent) info.parent = i.parent;
  return info;
}

export function infoToProto(i: UpdateInfo): In<api.Info> {
  return {
    name: i.name,
    parent: i.parent ?? '',
    kind: (i.kind ?? 'committed').toUpperCase() as api.Kind,
    labels: i.labels ?? {},
    created_at: i.createdAt !== undefined ? timestampToProto(i.createdAt) : null,
    updated_at: i.updatedAt !== undefined ? timestampToProto(i.updatedAt) : null,
  };
}

export function mountsFromProto(ms: types.Mount[] | null | undefined): Mount[] {
  return (ms ?? []).map((m) => {
    const out: Mount = { type: m.type, source: m.source, options: [...m.options] };
    if (m.target) out.target = m.target;
    return out;
  });
}

/**
 * containerd 1.6's Snapshots/List returns the snapshotter's error without
 * mapping it (gRPC Unknown), e.g. "filters: parse error: …: invalid
 * argument". The class is still at the end of the message: recover it.
 */
function reclass(err: unknown): unknown {
  if (!(err instanceof DistError) || !isUnknown(err) || err.code !== Code.Unknown) return err;
  for (const [code, text] of Object.entries(classText) as [Code, string][]) {
    if (code === Code.Unknown) continue;
    const suffix = `: ${text}`;
    if (err.detail.endsWith(suffix)) return new DistError(code, err.detail.slice(0, -suffix.length), { cause: err });
  }
  return err;
}

export class ProxySnapshotter implements Snapshotter {
  readonly client: grpc.Client;

  constructor(conn: Connection | grpc.Client, readonly name: string) {
    this.client = conn instanceof Connection ? conn.client(SNAPSHOTS_SERVICE) : conn;
  }

  private unary<Req, Res>(method: string, req: Req, ctx: Ctx): Promise<Res> {
    return unaryCall<Req, Res>(this.client, method, req, ctx);
  }

  async stat(ctx: Ctx, key: string): Promise<Info> {
    const resp = await this.unary<In<api.StatSnapshotRequest>, api.StatSnapshotResponse>('Stat', { snapshotter: this.name, key }, ctx);
    return infoFromProto(resp.info);
  }

  async update(ctx: Ctx, info: UpdateInfo, fieldpaths: string[] = []): Promise<Info> {
    const resp = await this.unary<In<api.UpdateSnapshotRequest>, api.UpdateSnapshotResponse>(
      'Update',
      { snapshotter: this.name, info: infoToProto(info), update_mask: { paths: fieldpaths } },
      ctx,
    );
    return infoFromProto(resp.info);
  }

  async usage(ctx: Ctx, key: string): Promise<Usage> {
    const resp = await this.unary<In<api.UsageRequest>, api.UsageResponse>('Usage', { snapshotter: this.name, key }, ctx);
    return { size: Number(resp.size), inodes: Number(resp.inodes) };
  }

  async mounts(ctx: Ctx, key: string): Promise<Mount[]> {
    const resp = await this.unary<In<api.MountsRequest>, api.MountsResponse>('Mounts', { snapshotter: this.name, key }, ctx);
    return mountsFromProto(resp.mounts);
  }

  async prepare(ctx: Ctx, key: string, parent?: string, opts: SnapshotOpts = {}): Promise<Mount[]> {
    const resp = await this.unary<In<api.PrepareSnapshotRequest>, api.PrepareSnapshotResponse>(
      'Prepare',
      { snapshotter: this.name, key, parent: parent ?? '', labels: opts.labels ?? {} },
      ctx,
    );
    return mountsFromProto(resp.mounts);
  }

  async view(ctx: Ctx, key: string, parent?: string, opts: SnapshotOpts = {}): Promise<Mount[]> {
    const resp = await this.unary<In<api.ViewSnapshotRequest>, api.ViewSnapshotResponse>(
      'View',
      { snapshotter: this.name, key, parent: parent ?? '', labels: opts.labels ?? {} },
      ctx,
    );
    return mountsFromProto(resp.mounts);
  }

  async commit(ctx: Ctx, name: string, key: string, opts: SnapshotOpts = {}): Promise<void> {
    await this.unary<In<api.CommitSnapshotRequest>, google.Empty>('Commit', { snapshotter: this.name, name, key, labels: opts.labels ?? {} }, ctx);
  }

  async remove(ctx: Ctx, key: string): Promise<void> {
    await this.unary<In<api.RemoveSnapshotRequest>, google.Empty>('Remove', { snapshotter: this.name, key }, ctx);
  }

  async walk(ctx: Ctx, fn: WalkFunc, filters: string[] = []): Promise<void> {
    const stream = serverStreamCall<In<api.ListSnapshotsRequest>, api.ListSnapshotsResponse>(this.client, 'List', { snapshotter: this.name, filters }, ctx);
    let inFn = false;
    try {
      for await (const msg of stream) {
        for (const i of msg.info) {
          inFn = true;
          await fn(infoFromProto(i));
          inFn = false;
        }
      }
    } catch (err) {
      throw inFn ? err : reclass(err);
    }
  }

  async cleanup(ctx: Ctx): Promise<void> {
    await this.unary<In<api.CleanupRequest>, google.Empty>('Cleanup', { snapshotter: this.name }, ctx);
  }

  /** Nothing to release: the connection belongs to the caller. */
  async close(): Promise<void> {}
}
