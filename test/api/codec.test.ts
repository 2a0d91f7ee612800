import { test } from 'node:test';
import assert from 'node:assert/strict';
import { now } from '../../src/internal/time.js';
import { GO_ZERO_TIME, timestampFromProto, timestampToProto } from '../../src/api/grpc/timestamp.js';
import { anyTypeName, packAny, unpackAny } from '../../src/api/grpc/any.js';
import { int64, messageType } from '../../src/api/grpc/loader.js';

test('timestamps keep nanoseconds through the wire', () => {
  const t = now();
  const ts = timestampToProto(t);
  assert.equal(typeof ts.seconds, 'string');
  assert.ok(ts.nanos >= 0 && ts.nanos < 1e9);
  const Info = messageType('containerd.services.content.v1.Info');
  const decoded = Info.deserialize(Info.serialize({ digest: 'sha256:00', size: int64(5n), created_at: ts }));
  assert.deepEqual(decoded.created_at, ts);
  assert.equal(timestampFromProto(decoded.created_at), t);
  assert.equal(decoded.updated_at, null, 'unset message field decodes as null');
  assert.equal(timestampFromProto(decoded.updated_at), undefined);
  assert.equal(decoded.size, '5', 'int64 decodes as a decimal string');
});

test('timestamps before the epoch use floor division (nanos never negative)', () => {
  assert.deepEqual(timestampToProto(-1n), { seconds: '-1', nanos: 999_999_999 });
  assert.equal(timestampFromProto({ seconds: '-1', nanos: 999_999_999 }), -1n);
  assert.deepEqual(timestampToProto(GO_ZERO_TIME), { seconds: '-62135596800', nanos: 0 });
  assert.equal(timestampFromProto({ seconds: -62135596800, nanos: 0 }), GO_ZERO_TIME);
  assert.equal(timestampFromProto({ seconds: { low: 5, high: 0 }, nanos: 1 }), 5_000_000_001n);
});

test('Any: events pack with containerd\'s bare type URL and unpack', () => {
  const any = packAny('containerd.services.images.v1.ImageCreate', { name: 'docker.io/library/x:1', labels: { a: 'b' } });
  assert.equal(any.type_url, 'containerd.services.images.v1.ImageCreate');
  const { typeName, message } = unpackAny(any);
  assert.equal(typeName, 'containerd.services.images.v1.ImageCreate');
  assert.deepEqual(message, { name: 'docker.io/library/x:1', labels: { a: 'b' } });
  assert.equal(anyTypeName({ type_url: 'type.googleapis.com/containerd.events.ContentDelete' }), 'containerd.events.ContentDelete');
  assert.throws(() => unpackAny({ type_url: 'nope.Missing', value: Buffer.alloc(0) }), /not loaded/);
});

test('enums travel as names; bytes as Buffers', () => {
  const W = messageType('containerd.services.content.v1.WriteContentRequest');
  const m = W.deserialize(W.serialize({ action: 'COMMIT', ref: 'r', data: Buffer.from('hi'), labels: { x: 'y' } }));
  assert.equal(m.action, 'COMMIT');
  assert.ok(Buffer.isBuffer(m.data));
  assert.equal(m.data.toString(), 'hi');
  assert.equal(W.deserialize(W.serialize({ action: 1 })).action, 'WRITE');
  assert.equal(int64(12345678901234n), '12345678901234');
  assert.equal(int64(7.9), '7');
});
