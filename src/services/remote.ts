/**
 * services/remote: every store served by a containerd-compatible daemon
 * (containerd 1.6, distd) over its gRPC API v1 on a unix socket.
 *
 * One Connection carries every service; close() closes it. The Ctx of each
 * call gives the namespace and lease headers and the cancellation.
 */
import { statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { Connection, unaryCall, type ConnectionOptions } from '../api/grpc/client.js';
import type { diff as diffapi, In, introspection } from '../api/grpc/messages.js';
import { socketPath } from '../api/grpc/server.js';
import { ProxyContentStore } from '../content/proxy/store.js';
import type { Descriptor } from '../content/types.js';
import type { Applier } from '../diff/types.js';
import { failedPrecondition, invalidArgument, isNotImplemented, unavailable } from '../errdefs/index.js';
import { descriptorFromProto, descriptorToProto, ProxyImageStore } from '../images/proxy.js';
import type { Ctx } from '../internal/context.js';
import type { Mount } from '../mount/types.js';
import { ProxyLeaseManager } from '../leases/proxy.js';
import { ProxyNamespaceStore } from '../namespaces/proxy.js';
import { ProxySnapshotter } from '../snapshots/proxy/index.js';
import type { Services } from './types.js';

export interface Remote extends Services {
  readonly content: ProxyContentStore;
  readonly namespaces: ProxyNamespaceStore;
  readonly leases: ProxyLeaseManager;
  readonly images: ProxyImageStore;
  snapshotter(name: string): Promise<ProxySnapshotter>;
  readonly diff: RemoteApplier;
  /** The channel every service uses (for services not wrapped here). */
  readonly connection: Connection;
}

export interface ConnectOptions extends ConnectionOptions {
  /** How long to wait for the socket to accept the connection (default 10 s, as containerd's client). */
  timeoutMs?: number;
}

const SNAPSHOTTER_PLUGIN = 'io.containerd.snapshotter.v1';

/**
 * Connects to the daemon at address ("/path.sock", "unix:///path.sock").
 * Unavailable when nothing answers there.
 */
export async function connect(address: string, opts: ConnectOptions = {}): Promise<Remote> {
  const path = socketPath(address);
  // The CLI prints `hint` after the message.
  const dialError = (why: string, cause?: unknown) =>
    Object.assign(unavailable(`failed to dial ${JSON.stringify(path)}: ${why}`, cause), { hint: 'is the daemon running there?' });
  try {
    if (!statSync(path).isSocket()) throw dialError('not a socket');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw dialError('no such file or directory', err);
    throw err;
  }
  // A stale socket (nobody listening) would otherwise keep grpc retrying until the timeout.
  const probe = await new Promise<NodeJS.ErrnoException | undefined>((res) => {
    const sock = createConnection(path);
    sock.once('connect', () => { sock.destroy(); res(undefined); });
    sock.once('error', (e) => res(e));
  });
  if (probe) throw dialError(probe.code === 'ECONNREFUSED' ? 'connection refused' : probe.message, probe);
  const connection = new Connection(address, opts);
  try {
    await connection.ready(opts.timeoutMs ?? 10_000);
  } catch (err) {
    connection.close();
    throw dialError(err instanceof Error ? err.message : String(err), err);
  }

  const snapshotters = new Map<string, Promise<ProxySnapshotter>>();
  const snapshotter = (name: string): Promise<ProxySnapshotter> => {
    let s = snapshotters.get(name);
    if (!s) {
      s = checkSnapshotter(connection, name).then(() => new ProxySnapshotter(connection, name));
      s.catch(() => snapshotters.delete(name));
      snapshotters.set(name, s);
    }
    return s;
  };

  let closed = false;
  return {
    location: address,
    connection,
    content: new ProxyContentStore(connection),
    namespaces: new ProxyNamespaceStore(connection),
    leases: new ProxyLeaseManager(connection),
    images: new ProxyImageStore(connection),
    snapshotter,
    diff: new RemoteApplier(connection),
    async close() {
      if (closed) return;
      closed = true;
      connection.close();
    },
  };
}

/**
 * InvalidArgument "snapshotter not loaded: X" unless the daemon lists the
 * snapshotter plugin (loaded without error). A daemon without the
 * Introspection service is trusted: its Snapshots calls will tell.
 */
async function checkSnapshotter(connection: Connection, name: string): Promise<void> {
  if (!name) throw invalidArgument('snapshotter name must not be empty');
  let resp: introspection.PluginsResponse;
  try {
    resp = await unaryCall<In<introspection.PluginsRequest>, introspection.PluginsResponse>(
      connection.client('containerd.services.introspection.v1.Introspection'),
      'Plugins',
      { filters: [`type==${SNAPSHOTTER_PLUGIN}`] },
    );
  } catch (err) {
    if (isNotImplemented(err)) return;
    throw err;
  }
  const p = resp.plugins.find((x) => x.type === SNAPSHOTTER_PLUGIN && x.id === name);
  if (!p || (p.init_err && p.init_err.code !== 0)) throw invalidArgument(`snapshotter not loaded: ${name}`);
}

/**
 * Layers applied by the daemon (containerd.services.diff.v1.Diff/Apply): it
 * reads the layer from its content store, decompresses it and applies it
 * onto the mounts (which must be valid on the daemon's host).
 */
export class RemoteApplier implements Applier {
  constructor(private readonly connection: Connection) {}

  async apply(ctx: Ctx, desc: Descriptor, mounts: Mount[], opts: { expectedDiffID?: string } = {}): Promise<Descriptor> {
    const resp = await unaryCall<In<diffapi.ApplyRequest>, diffapi.ApplyResponse>(
      this.connection.client('containerd.services.diff.v1.Diff'),
      'Apply',
      {
        diff: descriptorToProto(desc),
        mounts: mounts.map((m) => ({ type: m.type, source: m.source, target: m.target ?? '', options: m.options })),
      },
      ctx,
    );
    const applied = descriptorFromProto(resp.applied);
    if (opts.expectedDiffID && applied.digest !== opts.expectedDiffID) {
      throw failedPrecondition(`applied layer ${desc.digest}: diffID ${applied.digest}, expected ${opts.expectedDiffID}`);
    }
    return applied;
  }
}
