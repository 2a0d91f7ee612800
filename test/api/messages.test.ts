// messages.ts is hand-written; keep it in step with the .proto files: every
// interface names a real message and lists its fields in proto order, with a
// TS type of the right kind (int64 → Int64, repeated → [], map → Record,
// message → "| null", enum → a string union).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { PROTO_FILES, protoDir } from '../../src/api/grpc/loader.js';
import { packageRoot } from '../../src/internal/pkgroot.js';
import { MESSAGE_PACKAGES } from '../../src/api/grpc/messages.js';

function parseDecls(text: string): Map<string, Map<string, Array<[string, string]>>> {
  const out = new Map<string, Map<string, Array<[string, string]>>>();
  const nsRe = /export declare namespace (\w+) \{([\s\S]*?)\n\}/g;
  for (const ns of text.matchAll(nsRe)) {
    const ifaces = new Map<string, Array<[string, string]>>();
    for (const m of ns[2].matchAll(/interface (\w+) \{([^}]*)\}/g)) {
      const fields = [...m[2].matchAll(/^\s*(\w+): ([^;]+);/gm)].map((f) => [f[1], f[2].trim()] as [string, string]);
      ifaces.set(m[1], fields);
    }
    out.set(ns[1], ifaces);
  }
  return out;
}

function expectedKind(f: protobuf.Field): RegExp {
  f.resolve();
  if (f.map) return /^Record<string, /;
  if (f.repeated) return /\[\]$/;
  if (f.resolvedType instanceof protobuf.Type) return /\| null$/;
  if (f.resolvedType instanceof protobuf.Enum) return /^[A-Z]\w+$/;
  switch (f.type) {
    case 'int64': case 'uint64': case 'sint64': case 'fixed64': case 'sfixed64': return /^Int64$/;
    case 'string': return /^string$/;
    case 'bool': return /^boolean$/;
    case 'bytes': return /^Buffer$/;
    default: return /^number$/;
  }
}

test('messages.ts interfaces match the .proto messages field by field', () => {
  const root = new protobuf.Root();
  root.resolvePath = (_o, t) => (t.startsWith('google/protobuf/') ? t : join(protoDir(), t));
  root.loadSync([...PROTO_FILES], { keepCase: true });
  root.resolveAll();
  const decls = parseDecls(readFileSync(join(packageRoot(), 'src/api/grpc/messages.ts'), 'utf8'));
  assert.deepEqual([...decls.keys()].sort(), Object.keys(MESSAGE_PACKAGES).sort());
  let checked = 0;
  for (const [ns, ifaces] of decls) {
    for (const [name, fields] of ifaces) {
      const pkgs = MESSAGE_PACKAGES[ns as keyof typeof MESSAGE_PACKAGES];
      const type = pkgs.map((p) => root.lookup(`${p}.${name}`)).find((t) => t instanceof protobuf.Type) as protobuf.Type | undefined;
      assert.ok(type, `${ns}.${name} is a message in ${pkgs.join(' or ')}`);
      const protoFields = [...type.fieldsArray].sort((a, b) => a.id - b.id);
      assert.deepEqual(fields.map((f) => f[0]), protoFields.map((f) => f.name), `${ns}.${name}: field names in order`);
      protoFields.forEach((pf, i) => assert.match(fields[i][1], expectedKind(pf), `${ns}.${name}.${pf.name}`));
      checked++;
    }
  }
  assert.ok(checked > 90, `checked ${checked} interfaces`);
});
