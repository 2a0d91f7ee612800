/**
 * loader: our containerd API v1 .proto files, loaded with @grpc/proto-loader
 * into grpc-js service definitions (server) and client constructors.
 *
 * The .proto files live in src/api/proto (not compiled by tsc) and are found
 * at run time from the package root, whether this module runs from build/ or
 * from src/. DIST_PROTO_DIR overrides the location.
 *
 * Decoded message shape (the LOADER_OPTIONS below; see messages.ts for types):
 * - field names exactly as in the .proto (snake_case: `created_at`);
 * - int64/uint64 fields are decimal strings when received; when sending, give
 *   a string or a number (bigint is NOT accepted: use `int64(x)`);
 * - enums are their value names when received ('STAT', 'COMMITTED'); a name or
 *   a number is accepted when sending;
 * - bytes are Buffers; unset scalars are their defaults, unset messages null,
 *   unset repeated [] and maps {};
 * - google.protobuf.Timestamp is {seconds: string, nanos: number} (timestamp.ts);
 * - google.protobuf.Any is {type_url, value: Buffer} (any.ts).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { packageRoot } from '../../internal/pkgroot.js';

/** Every .proto file we serve or consume, relative to protoDir(). */
export const PROTO_FILES = [
  'containerd/types/descriptor.proto',
  'containerd/types/mount.proto',
  'containerd/types/platform.proto',
  'containerd/services/content/v1/content.proto',
  'containerd/services/images/v1/images.proto',
  'containerd/services/namespaces/v1/namespaces.proto',
  'containerd/services/leases/v1/leases.proto',
  'containerd/services/snapshots/v1/snapshots.proto',
  'containerd/services/diff/v1/diff.proto',
  'containerd/services/containers/v1/containers.proto',
  'containerd/services/version/v1/version.proto',
  'containerd/services/introspection/v1/introspection.proto',
  'containerd/services/events/v1/events.proto',
  'containerd/events/container.proto',
  'containerd/events/content.proto',
  'containerd/events/image.proto',
  'containerd/events/namespace.proto',
  'containerd/events/snapshot.proto',
  'containerd/events/task.proto',
  'google/rpc/status.proto',
  'grpc/health/v1/health.proto',
] as const;

/** Fully qualified names of every service in PROTO_FILES. */
export const SERVICE_NAMES = [
  'containerd.services.content.v1.Content',
  'containerd.services.images.v1.Images',
  'containerd.services.namespaces.v1.Namespaces',
  'containerd.services.leases.v1.Leases',
  'containerd.services.snapshots.v1.Snapshots',
  'containerd.services.diff.v1.Diff',
  'containerd.services.containers.v1.Containers',
  'containerd.services.version.v1.Version',
  'containerd.services.introspection.v1.Introspection',
  'containerd.services.events.v1.Events',
  'grpc.health.v1.Health',
] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export const LOADER_OPTIONS: Readonly<protoLoader.Options> = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
});

/** Directory holding our .proto tree (DIST_PROTO_DIR overrides). */
export function protoDir(): string {
  const env = process.env.DIST_PROTO_DIR;
  if (env) return resolve(env);
  return join(packageRoot(), 'src', 'api', 'proto');
}

let definition: protoLoader.PackageDefinition | undefined;
let pkg: ApiPackage | undefined;

/** The proto-loader package definition of all PROTO_FILES (cached). */
export function loadPackageDefinition(): protoLoader.PackageDefinition {
  if (definition) return definition;
  const dir = protoDir();
  if (!existsSync(join(dir, PROTO_FILES[0]))) {
    throw new Error(`containerd API protos not found under ${dir} (set DIST_PROTO_DIR)`);
  }
  definition = protoLoader.loadSync([...PROTO_FILES], { ...LOADER_OPTIONS, includeDirs: [dir] });
  return definition;
}

type Svc = grpc.ServiceClientConstructor;

/** The loaded package object, typed down to the service constructors. */
export interface ApiPackage {
  containerd: {
    services: {
      content: { v1: { Content: Svc } };
      images: { v1: { Images: Svc } };
      namespaces: { v1: { Namespaces: Svc } };
      leases: { v1: { Leases: Svc } };
      snapshots: { v1: { Snapshots: Svc } };
      diff: { v1: { Diff: Svc } };
      containers: { v1: { Containers: Svc } };
      version: { v1: { Version: Svc } };
      introspection: { v1: { Introspection: Svc } };
      events: { v1: { Events: Svc } };
    };
    types: grpc.GrpcObject;
    events: grpc.GrpcObject;
  };
  grpc: { health: { v1: { Health: Svc } } };
}

/** grpc.loadPackageDefinition of our protos (cached). */
export function loadServices(): ApiPackage {
  if (!pkg) pkg = grpc.loadPackageDefinition(loadPackageDefinition()) as unknown as ApiPackage;
  return pkg;
}

/** Shorthand: `services.content.v1.Content`, `services.health.v1.Health`. */
export const services = {
  get content() { return loadServices().containerd.services.content; },
  get images() { return loadServices().containerd.services.images; },
  get namespaces() { return loadServices().containerd.services.namespaces; },
  get leases() { return loadServices().containerd.services.leases; },
  get snapshots() { return loadServices().containerd.services.snapshots; },
  get diff() { return loadServices().containerd.services.diff; },
  get containers() { return loadServices().containerd.services.containers; },
  get version() { return loadServices().containerd.services.version; },
  get introspection() { return loadServices().containerd.services.introspection; },
  get events() { return loadServices().containerd.services.events; },
  get health() { return loadServices().grpc.health; },
};

/** The client constructor of a service by its full name. */
export function clientConstructor(name: ServiceName): Svc {
  let o: any = loadServices();
  for (const part of name.split('.')) o = o?.[part];
  if (typeof o !== 'function') throw new Error(`service ${name} not loaded`);
  return o as Svc;
}

/** The grpc-js service definition (for Server.addService) of a service. */
export function serviceDefinition(name: ServiceName): grpc.ServiceDefinition {
  return clientConstructor(name).service;
}

/** Serializer/deserializer of a message type by full name ("containerd.types.Descriptor"). */
export function messageType<T extends object = any>(fullName: string): protoLoader.MessageTypeDefinition<T, T> {
  const def = loadPackageDefinition()[fullName] as unknown as protoLoader.MessageTypeDefinition<T, T> | undefined;
  if (!def || def.format !== 'Protocol Buffer 3 DescriptorProto') throw new Error(`message type ${fullName} not loaded`);
  return def;
}

/** int64 value for sending: proto-loader takes decimal strings, not bigint. */
export function int64(v: bigint | number | string): string {
  return typeof v === 'string' ? v : typeof v === 'bigint' ? v.toString() : String(Math.trunc(v));
}
