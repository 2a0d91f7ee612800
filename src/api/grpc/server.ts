/**
 * server: a grpc-js Server on a unix socket, the way containerd serves its API.
 *
 * - the socket's directory is created (0711) and a stale socket file removed,
 *   but a socket another process still answers on is left alone (error);
 * - the socket is chmod'ed to 0660 (and chown'ed to `gid` when given);
 * - messages up to 16 MiB both ways (containerd's defaults);
 * - stop(): graceful tryShutdown, forceShutdown after a timeout; the socket
 *   file is removed if it is still the one we created.
 */
import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { failedPrecondition, invalidArgument } from '../../errdefs/index.js';
import { serviceDefinition, type ServiceName } from './loader.js';
import type { ServiceImpl } from './handlers.js';

/** containerd's default max gRPC message size, both directions. */
export const MAX_MESSAGE_SIZE = 16 << 20;
export const DEFAULT_SOCKET_MODE = 0o660;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

export interface ServerOptions {
  maxMessageSize?: number;
  /** Extra grpc-js server options. */
  grpcOptions?: grpc.ServerOptions;
}

/** A grpc-js Server with containerd's message-size limits. */
export function createServer(opts: ServerOptions = {}): grpc.Server {
  const max = opts.maxMessageSize ?? MAX_MESSAGE_SIZE;
  return new grpc.Server({
    'grpc.max_receive_message_length': max,
    'grpc.max_send_message_length': max,
    ...opts.grpcOptions,
  });
}

/** Registers one of our API services (by full name) on a server. */
export function addService(server: grpc.Server, name: ServiceName, impl: ServiceImpl): void {
  server.addService(serviceDefinition(name), impl);
}

/** Accepts "/abs/path.sock", "unix:///abs/path.sock", "unix:/abs/path.sock" or a relative path. */
export function socketPath(address: string): string {
  let p = address;
  if (p.startsWith('unix://')) p = p.slice('unix://'.length);
  else if (p.startsWith('unix:')) p = p.slice('unix:'.length);
  if (p === '') throw invalidArgument(`invalid unix socket address ${JSON.stringify(address)}`);
  return resolve(p);
}

/** Is something accepting connections on this unix socket? */
function answers(path: string): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

async function removeStale(path: string): Promise<void> {
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) return;
  if (!st.isSocket()) throw failedPrecondition(`${path} exists and is not a socket`);
  if (await answers(path)) throw failedPrecondition(`${path}: a server is already listening on this socket`);
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

export interface ListenOptions {
  /** Socket file mode (default 0660). */
  mode?: number;
  /** Group owner of the socket, when set. */
  gid?: number;
}

export interface RunningServer {
  server: grpc.Server;
  /** Absolute socket path. */
  path: string;
  /** The address clients dial: unix:///abs/path.sock */
  address: string;
  /** Graceful stop; forced after timeoutMs (default 10 s). Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Binds `server` to a unix socket and starts serving. */
export async function listenUnix(server: grpc.Server, address: string, opts: ListenOptions = {}): Promise<RunningServer> {
  const path = socketPath(address);
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  await removeStale(path);
  const target = `unix://${path}`;
  await new Promise<void>((res, rej) => {
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err) => (err ? rej(err) : res()));
  });
  const st = await lstat(path);
  await chmod(path, opts.mode ?? DEFAULT_SOCKET_MODE);
  if (opts.gid !== undefined) await chown(path, st.uid, opts.gid);
  let stopping: Promise<void> | undefined;
  return {
    server,
    path,
    address: target,
    stop(timeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS) {
      stopping ??= shutdown(server, timeoutMs).then(async () => {
        // Remove the socket file only if it is still ours.
        const now = await lstat(path).catch(() => undefined);
        if (now && now.ino === st.ino && now.dev === st.dev) await unlink(path).catch(() => {});
      });
      return stopping;
    },
  };
}

/** tryShutdown, then forceShutdown when it has not finished within timeoutMs. */
export function shutdown(server: grpc.Server, timeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS): Promise<void> {
  return new Promise((res) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      server.forceShutdown();
      res();
    }, timeoutMs);
    timer.unref();
    server.tryShutdown(() => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      res();
    });
  });
}

/** createServer + addService for each entry + listenUnix. */
export async function serveUnix(
  address: string,
  services: Iterable<readonly [ServiceName, ServiceImpl]>,
  opts: ServerOptions & ListenOptions = {},
): Promise<RunningServer> {
  const server = createServer(opts);
  for (const [name, impl] of services) addService(server, name, impl);
  return listenUnix(server, address, opts);
}
