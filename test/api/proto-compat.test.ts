// Our .proto files must be wire-identical to containerd 1.6's: same services,
// methods, streaming kinds, message and enum names, field names, numbers,
// types, labels (repeated/map) and oneofs. Compared after protobufjs resolved
// both trees; containerd's originals come from the Debian Go sources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import protobuf from 'protobufjs';
import { PROTO_FILES, SERVICE_NAMES, protoDir } from '../../src/api/grpc/loader.js';

const GOCODE = '/usr/share/gocode/src';
const CTRD = 'github.com/containerd/containerd/api';
const THEIR_INCLUDES = [GOCODE, `${GOCODE}/github.com/gogo/protobuf`, `${GOCODE}/github.com/gogo/googleapis`, '/usr/include'];
const THEIR_FILES = [
  `${CTRD}/types/descriptor.proto`,
  `${CTRD}/types/mount.proto`,
  `${CTRD}/types/platform.proto`,
  `${CTRD}/services/content/v1/content.proto`,
  `${CTRD}/services/images/v1/images.proto`,
  `${CTRD}/services/namespaces/v1/namespace.proto`,
  `${CTRD}/services/leases/v1/leases.proto`,
  `${CTRD}/services/snapshots/v1/snapshots.proto`,
  `${CTRD}/services/diff/v1/diff.proto`,
  `${CTRD}/services/containers/v1/containers.proto`,
  `${CTRD}/services/version/v1/version.proto`,
  `${CTRD}/services/introspection/v1/introspection.proto`,
  `${CTRD}/services/events/v1/events.proto`,
  `${CTRD}/events/container.proto`,
  `${CTRD}/events/content.proto`,
  `${CTRD}/events/image.proto`,
  `${CTRD}/events/namespace.proto`,
  `${CTRD}/events/snapshot.proto`,
  `${CTRD}/events/task.proto`,
  'google/rpc/status.proto',
];
// grpc-go ships the canonical health.proto among its Debian "missing sources".
const HEALTH = `${GOCODE}/google.golang.org/grpc/debian/missing-sources/grpc/grpc-proto/master/grpc/health/v1/health.proto`;

function loadRoot(files: string[], includes: string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (isAbsolute(target)) return target;
    for (const dir of includes) {
      const p = join(dir, target);
      if (existsSync(p)) return p;
    }
    return target; // google/protobuf/* are bundled with protobufjs
  };
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  return root;
}

/** Namespaces that only carry codegen options or descriptor machinery. */
const IGNORED = /^\.(gogoproto|containerd\.plugin|google\.protobuf)(\.|$)/;

function collect(ns: protobuf.NamespaceBase, out: Map<string, protobuf.ReflectionObject>): void {
  for (const obj of ns.nestedArray) {
    if (IGNORED.test(obj.fullName)) continue;
    if (obj instanceof protobuf.Type || obj instanceof protobuf.Enum || obj instanceof protobuf.Service) out.set(obj.fullName, obj);
    if (obj instanceof protobuf.Namespace || obj instanceof protobuf.Type || obj instanceof protobuf.Service) collect(obj as protobuf.NamespaceBase, out);
  }
}

function describeField(f: protobuf.Field): Record<string, unknown> {
  f.resolve();
  const type = f.resolvedType ? f.resolvedType.fullName : f.type;
  return {
    name: f.name,
    id: f.id,
    type,
    repeated: f.repeated,
    map: f.map,
    keyType: f.map ? (f as unknown as protobuf.MapField).keyType : undefined,
    oneof: f.partOf?.name,
  };
}

function describe(obj: protobuf.ReflectionObject): unknown {
  if (obj instanceof protobuf.Service) {
    return obj.methodsArray
      .map((m) => {
        m.resolve();
        return {
          name: m.name,
          request: m.resolvedRequestType?.fullName,
          response: m.resolvedResponseType?.fullName,
          requestStream: !!m.requestStream,
          responseStream: !!m.responseStream,
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }
  if (obj instanceof protobuf.Type) {
    return {
      fields: obj.fieldsArray.map(describeField).sort((a, b) => (a.id as number) - (b.id as number)),
      oneofs: obj.oneofsArray.map((o) => ({ name: o.name, fields: [...o.oneof].sort() })),
    };
  }
  if (obj instanceof protobuf.Enum) {
    return Object.entries(obj.values).sort((a, b) => a[1] - b[1]);
  }
  throw new Error(`unexpected ${obj.fullName}`);
}

const haveContainerd = existsSync(join(GOCODE, CTRD, 'services/content/v1/content.proto'));
const skip = haveContainerd ? false : `containerd 1.6 Go sources missing at ${GOCODE}/${CTRD} (apt-get install golang-github-containerd-containerd-dev)`;

test('our protos load on their own', () => {
  const ours = loadRoot([...PROTO_FILES], [protoDir()]);
  for (const name of SERVICE_NAMES) assert.ok(ours.lookupService(name), name);
});

test('our protos are wire-identical to containerd 1.6 (+ grpc.health.v1)', { skip }, () => {
  const ours = loadRoot([...PROTO_FILES], [protoDir()]);
  const theirFiles = [...THEIR_FILES];
  const haveHealth = existsSync(HEALTH);
  if (haveHealth) theirFiles.push(HEALTH);
  const theirs = loadRoot(theirFiles, THEIR_INCLUDES);

  const a = new Map<string, protobuf.ReflectionObject>();
  const b = new Map<string, protobuf.ReflectionObject>();
  collect(ours, a);
  collect(theirs, b);
  if (!haveHealth) for (const k of [...a.keys()]) if (k.startsWith('.grpc.health.')) a.delete(k);

  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), 'same set of services, messages and enums');
  let services = 0;
  for (const [name, obj] of a) {
    const other = b.get(name)!;
    assert.equal(obj.constructor, other.constructor, `${name}: same kind`);
    assert.deepEqual(describe(obj), describe(other), name);
    if (obj instanceof protobuf.Service) services++;
  }
  assert.equal(services, haveHealth ? SERVICE_NAMES.length : SERVICE_NAMES.length - 1);
  // The well-known types both sides reference are protobufjs's bundled ones.
  for (const t of ['.google.protobuf.Timestamp', '.google.protobuf.Any', '.google.protobuf.FieldMask', '.google.protobuf.Empty']) {
    assert.deepEqual(describe(ours.lookupType(t)), describe(theirs.lookupType(t)), t);
  }
});

test('every message reachable from a service is defined (no dangling references)', () => {
  const ours = loadRoot([...PROTO_FILES], [protoDir()]);
  const seen = new Set<string>();
  const visit = (t: protobuf.Type | protobuf.Enum) => {
    if (seen.has(t.fullName)) return;
    seen.add(t.fullName);
    if (t instanceof protobuf.Type) for (const f of t.fieldsArray) {
      f.resolve();
      if (f.resolvedType) visit(f.resolvedType);
    }
  };
  for (const name of SERVICE_NAMES) {
    for (const m of ours.lookupService(name).methodsArray) {
      m.resolve();
      visit(m.resolvedRequestType!);
      visit(m.resolvedResponseType!);
    }
  }
  assert.ok(seen.has('.containerd.types.Descriptor'));
  assert.ok(seen.has('.google.rpc.Status'));
  assert.ok(seen.size > 80, `reached ${seen.size} types`);
});
