/**
 * daemon: distd's composition root. Opens the root (one daemon per root: a
 * pid lock file), the stores, the snapshotters and the event exchange, serves
 * every containerd API v1 service on a unix socket, and stops gracefully:
 * stop accepting calls, end event subscriptions, drain in-flight calls (up to
 * the shutdown timeout, then cancel them), then close the database.
 *
 * Usable in-process (tests) as well as from main.ts.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { chown } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { invalidArgument, isNotFound } from '../../errdefs/index.js';
import { Exchange } from '../../events/exchange.js';
import type { Applier } from '../../diff/types.js';
import { WalkingDiff } from '../../diff/walking.js';
import { GCScheduler } from '../../gc/scheduler.js';
import { MetaContainerStore } from '../../metadata/containers.js';
import type { MetaSnapshotter } from '../../metadata/snapshots.js';
import { hostArch, hostOS } from '../../platforms/index.js';
import { openEmbedded, type Embedded } from '../../services/embedded.js';
import type { HandlerOptions, ServiceImpl } from '../../api/grpc/handlers.js';
import { serviceDefinition, type ServiceName } from '../../api/grpc/loader.js';
import { NAMESPACE_HEADER } from '../../api/grpc/metadata.js';
import { createServer, listenUnix, type RunningServer } from '../../api/grpc/server.js';
import { containersService } from '../../api/services/containers.js';
import { contentService } from '../../api/services/content.js';
import { diffService } from '../../api/services/diff.js';
import { eventsService } from '../../api/services/events.js';
import { HealthService } from '../../api/services/health.js';
import { imagesService } from '../../api/services/images.js';
import { introspectionService, type PluginInfo } from '../../api/services/introspection.js';
import { leasesService } from '../../api/services/leases.js';
import { namespacesService } from '../../api/services/namespaces.js';
import { snapshotsService } from '../../api/services/snapshots.js';
import { buildVersion, versionService } from '../../api/services/version.js';
import { lockPath, type DaemonConfig } from './config.js';
import { acquireLock, type Lock } from './lock.js';
import { silent, type Logger } from './log.js';

export interface Daemon {
  readonly config: DaemonConfig;
  /** unix:///abs/path.sock */
  readonly address: string;
  /** Absolute socket path. */
  readonly path: string;
  /** Stable per root (introspection Server). */
  readonly uuid: string;
  readonly services: Embedded;
  readonly events: Exchange;
  readonly health: HealthService;
  /** Snapshotters that loaded, and why the others did not. */
  readonly snapshotters: ReadonlyMap<string, MetaSnapshotter>;
  readonly snapshotterErrors: ReadonlyMap<string, Error>;
  /** Graceful stop (idempotent); resolves once the database is closed and the lock released. */
  stop(): Promise<void>;
}

/** The server UUID stored under root (created once). */
export function serverUUID(root: string): string {
  const p = join(root, 'uuid');
  try {
    const u = readFileSync(p, 'utf8').trim();
    if (/^[0-9a-f-]{36}$/i.test(u)) return u;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const u = randomUUID();
  writeFileSync(p, u + '\n', { mode: 0o644 });
  return u;
}

const GRPC_SERVICES: Record<string, string> = {
  containers: 'containers-service',
  content: 'content-service',
  diff: 'diff-service',
  events: 'exchange',
  images: 'images-service',
  leases: 'leases-service',
  namespaces: 'namespaces-service',
  snapshots: 'snapshots-service',
  introspection: 'introspection-service',
  version: '',
  healthcheck: '',
};

/** The plugin list `ctr plugins ls` shows, with containerd's types and ids. */
export function pluginList(root: string, loaded: ReadonlyMap<string, unknown>, failed: ReadonlyMap<string, Error>, differ: boolean): PluginInfo[] {
  const platform = { os: hostOS(), architecture: hostArch() };
  const out: PluginInfo[] = [
    { type: 'io.containerd.content.v1', id: 'content', exports: { root: join(root, 'content') } },
  ];
  for (const [name, err] of [...[...loaded.keys()].map((n) => [n, undefined] as const), ...failed.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const p: PluginInfo = { type: 'io.containerd.snapshotter.v1', id: name, platforms: [platform], exports: { root: join(root, 'snapshots', name) } };
    if (err) p.init_err = { code: 2, message: `${err.message}: skip plugin` };
    out.push(p);
  }
  out.push(
    { type: 'io.containerd.metadata.v1', id: 'sqlite', requires: ['io.containerd.content.v1', 'io.containerd.snapshotter.v1'], exports: { path: join(root, 'metadata.db') } },
    { type: 'io.containerd.differ.v1', id: 'walking', requires: ['io.containerd.metadata.v1'], platforms: [platform], ...(differ ? {} : { init_err: { code: 12, message: 'layer applier not available: skip plugin' } }) },
    { type: 'io.containerd.event.v1', id: 'exchange' },
    { type: 'io.containerd.gc.v1', id: 'scheduler', requires: ['io.containerd.metadata.v1'] },
    { type: 'io.containerd.lease.v1', id: 'manager', requires: ['io.containerd.metadata.v1'] },
  );
  for (const id of ['containers-service', 'content-service', 'diff-service', 'images-service', 'leases-service', 'namespaces-service', 'snapshots-service']) {
    out.push({ type: 'io.containerd.service.v1', id, requires: ['io.containerd.metadata.v1'] });
  }
  for (const [id, req] of Object.entries(GRPC_SERVICES)) {
    out.push({ type: 'io.containerd.grpc.v1', id, requires: req ? ['io.containerd.service.v1'] : [] });
  }
  return out;
}

/** Logs every call at debug (method, namespace, status, duration). */
function instrument(name: ServiceName, impl: ServiceImpl, log: Logger): ServiceImpl {
  if (!log.enabled('debug')) return impl;
  const def = serviceDefinition(name);
  const short = name.replace(/^containerd\.services\./, '');
  const out: ServiceImpl = {};
  for (const [method, fn] of Object.entries(impl)) {
    const d = def[method];
    const label = `${short}/${method}`;
    const ns = (call: { metadata: grpc.Metadata }) => call.metadata.get(NAMESPACE_HEADER)[0]?.toString();
    if (d && !d.requestStream && !d.responseStream) {
      out[method] = ((call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const t0 = performance.now();
        (fn as grpc.handleUnaryCall<unknown, unknown>)(call, (err, res) => {
          log.debug('call', { method: label, ns: ns(call), code: err ? grpc.status[(err as grpc.ServiceError).code ?? 2] : 'OK', ms: Math.round(performance.now() - t0) });
          cb(err, res);
        });
      }) as grpc.UntypedHandleCall;
    } else {
      out[method] = ((call: grpc.ServerWritableStream<unknown, unknown>) => {
        const t0 = performance.now();
        let logged = false;
        const done = (code: string) => {
          if (logged) return;
          logged = true;
          log.debug('call', { method: label, ns: ns(call), code, ms: Math.round(performance.now() - t0) });
        };
        call.once('finish', () => done('OK'));
        call.once('cancelled', () => done('CANCELLED'));
        (fn as (c: unknown) => void)(call);
      }) as grpc.UntypedHandleCall;
    }
  }
  return out;
}

export async function startDaemon(config: DaemonConfig, log: Logger = silent): Promise<Daemon> {
  const root = config.root;
  mkdirSync(root, { recursive: true, mode: 0o711 });
  mkdirSync(config.state, { recursive: true, mode: 0o711 });
  const lock: Lock = acquireLock(lockPath(root), `root ${root}`);
  let svc: Embedded | undefined;
  let scheduler: GCScheduler | undefined;
  try {
    svc = await openEmbedded(root, { gc: 'off' });
    const s = svc;
    const uuid = serverUUID(root);
    scheduler = new GCScheduler(s.db, s.gc, {
      deletionThreshold: config.gc.deletionThreshold,
      delayMs: config.gc.scheduleDelayMs,
      onResult: (r) => {
        const removed = r.content.items.length + r.blobs.items.length + r.snapshots.items.length + r.ingests.items.length + r.leases.items.length;
        if (removed) log.info('garbage collected', { content: r.content.items.length, blobs: r.blobs.items.length, snapshots: r.snapshots.items.length, ingests: r.ingests.items.length, leases: r.leases.items.length, ms: Math.round(r.durationMs) });
        else log.debug('garbage collection: nothing to remove', { ms: Math.round(r.durationMs) });
      },
      onError: (err) => log.error('garbage collection failed', { error: err }),
    });
    const gcs = scheduler;
    const collect = () => gcs.runNow();

    // Snapshotters: open each enabled one now, so failures show in `plugins ls`.
    const loaded = new Map<string, MetaSnapshotter>();
    const failed = new Map<string, Error>();
    for (const name of config.snapshotters) {
      try {
        loaded.set(name, await s.snapshotter(name));
      } catch (err) {
        failed.set(name, err as Error);
        log.warn('snapshotter not loaded', { snapshotter: name, error: err });
      }
    }
    const snapshotter = async (name: string) => {
      const sn = loaded.get(name);
      if (!sn) throw invalidArgument(`snapshotter not loaded: ${name}`);
      return sn;
    };

    const exchange = new Exchange();
    const containers = new MetaContainerStore(s.db);
    let differ = false;
    const applier: Promise<Applier | undefined> = import('../../diff/local.js')
      .then((m) => {
        differ = true;
        return new m.LocalApplier(s.content) as Applier;
      })
      .catch((err) => {
        log.warn('diff applier not available: Diff/Apply answers Unimplemented', { error: err });
        return undefined;
      });
    await applier;

    const onError: HandlerOptions['onError'] = (err, status) => {
      if (status.code === grpc.status.UNKNOWN) log.error('call failed', { error: err, stack: (err as Error)?.stack?.split('\n').slice(1, 4).join(' | ') });
    };
    const health = new HealthService();
    const uuidVal = uuid;
    const impls: [ServiceName, ServiceImpl][] = [
      ['containerd.services.content.v1.Content', contentService(s.content, { publisher: exchange, onError, onWriteError: (ref, err) => log.debug('write failed', { ref, error: err }) })],
      ['containerd.services.images.v1.Images', imagesService(s.images, { publisher: exchange, collect, onError })],
      ['containerd.services.namespaces.v1.Namespaces', namespacesService(s.namespaces, { publisher: exchange, onError })],
      ['containerd.services.leases.v1.Leases', leasesService(s.leases, { collect, onError })],
      ['containerd.services.snapshots.v1.Snapshots', snapshotsService(snapshotter, { publisher: exchange, defaultSnapshotter: config.defaultSnapshotter, namespaces: s.namespaces, onError })],
      ['containerd.services.containers.v1.Containers', containersService(containers, { publisher: exchange, onError })],
      ['containerd.services.diff.v1.Diff', diffService({ applier, comparer: new WalkingDiff(s.content), onError })],
      ['containerd.services.events.v1.Events', eventsService(exchange, { onError })],
      ['containerd.services.version.v1.Version', versionService(buildVersion())],
      ['containerd.services.introspection.v1.Introspection', introspectionService({ uuid: uuidVal, plugins: () => pluginList(root, loaded, failed, differ) })],
      ['grpc.health.v1.Health', health.impl()],
    ];
    for (const [name] of impls) health.setStatus(name, 'SERVING');

    const server = createServer({
      grpcOptions: {
        'grpc.max_receive_message_length': config.maxRecvMessageSize,
        'grpc.max_send_message_length': config.maxSendMessageSize,
      },
    });
    for (const [name, impl] of impls) server.addService(serviceDefinition(name), instrument(name, impl, log));
    let running: RunningServer;
    try {
      running = await listenUnix(server, config.address, { gid: config.gid });
      if (config.uid !== undefined) await chown(running.path, config.uid, config.gid ?? -1);
    } catch (err) {
      server.forceShutdown();
      throw err;
    }
    log.info('serving', { address: running.path, root, uuid, version: buildVersion().version, snapshotters: [...loaded.keys()].join(',') });

    let stopping: Promise<void> | undefined;
    return {
      config,
      address: running.address,
      path: running.path,
      uuid,
      services: s,
      events: exchange,
      health,
      snapshotters: loaded,
      snapshotterErrors: failed,
      stop() {
        stopping ??= (async () => {
          log.info('stopping: draining in-flight calls', { timeoutMs: config.shutdownTimeoutMs });
          health.shutdown();
          exchange.close();
          await running.stop(config.shutdownTimeoutMs);
          gcs.close();
          await s.close().catch((err) => log.error('closing stores failed', { error: err }));
          lock.release();
          log.info('stopped');
        })();
        return stopping;
      },
    };
  } catch (err) {
    scheduler?.close();
    await svc?.close().catch(() => undefined);
    lock.release();
    throw err;
  }
}
