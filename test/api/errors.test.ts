import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, status } from '@grpc/grpc-js';
import * as errdefs from '../../src/errdefs/index.js';
import { Code, DistError, codeOf } from '../../src/errdefs/index.js';
import { fromGRPC, isServiceError, serviceError, toGRPC } from '../../src/api/grpc/errors.js';

// errdefs class → (constructor, gRPC code), as containerd's errdefs/grpc.go.
const classes: Array<[Code, (m: string) => DistError, status]> = [
  [Code.InvalidArgument, errdefs.invalidArgument, status.INVALID_ARGUMENT],
  [Code.NotFound, errdefs.notFound, status.NOT_FOUND],
  [Code.AlreadyExists, errdefs.alreadyExists, status.ALREADY_EXISTS],
  [Code.FailedPrecondition, errdefs.failedPrecondition, status.FAILED_PRECONDITION],
  [Code.Unavailable, errdefs.unavailable, status.UNAVAILABLE],
  [Code.NotImplemented, errdefs.notImplemented, status.UNIMPLEMENTED],
  [Code.Canceled, errdefs.canceled, status.CANCELLED],
  [Code.DeadlineExceeded, errdefs.deadlineExceeded, status.DEADLINE_EXCEEDED],
  [Code.Unknown, errdefs.unknown, status.UNKNOWN],
];

for (const [code, make, grpcCode] of classes) {
  test(`${code}: toGRPC → ${status[grpcCode]} → fromGRPC round trip`, () => {
    const err = make('image "docker.io/x:1"');
    const st = toGRPC(err);
    assert.equal(st.code, grpcCode);
    assert.equal(st.details, err.message, 'message is containerd form "<detail>: <class>"');
    assert.ok(st.details.endsWith(`: ${errdefs.classText[code]}`));
    assert.ok(st.metadata instanceof Metadata);

    const back = fromGRPC(st);
    assert.ok(back instanceof DistError);
    assert.equal(back.code, code);
    assert.equal(codeOf(back), code);
    assert.equal(back.detail, 'image "docker.io/x:1"', 'class suffix stripped from the detail');
    assert.equal(back.message, err.message, 'message not doubled');
    assert.equal(back.cause, st);
  });
}

test('toGRPC: class found through cause chains and node errors', () => {
  const wrapped = new Error('outer', { cause: errdefs.notFound('blob sha256:abc') });
  assert.equal(toGRPC(wrapped).code, status.NOT_FOUND);
  assert.equal(toGRPC(wrapped).details, 'outer');
  const enoent = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
  assert.equal(toGRPC(enoent).code, status.NOT_FOUND);
  const abort = new DOMException('This operation was aborted', 'AbortError');
  assert.equal(toGRPC(abort).code, status.CANCELLED);
});

test('toGRPC: unclassified errors are Unknown with their message; gRPC errors pass through', () => {
  const st = toGRPC(new TypeError('boom'));
  assert.equal(st.code, status.UNKNOWN);
  assert.equal(st.details, 'boom');
  assert.equal(toGRPC('plain string').details, 'plain string');
  const already = serviceError(status.RESOURCE_EXHAUSTED, 'too big');
  assert.equal(toGRPC(already), already);
  assert.ok(isServiceError(already));
  assert.ok(!isServiceError(errdefs.notFound('x')));
});

test('fromGRPC: bare class text gives an empty detail; foreign messages are kept', () => {
  const e1 = fromGRPC(serviceError(status.NOT_FOUND, 'not found'));
  assert.equal(e1.code, Code.NotFound);
  assert.equal(e1.detail, '');
  assert.equal(e1.message, 'not found');

  // Server messages without the suffix get it appended once.
  const e2 = fromGRPC(serviceError(status.ALREADY_EXISTS, 'content sha256:1 exists'));
  assert.equal(e2.code, Code.AlreadyExists);
  assert.equal(e2.message, 'content sha256:1 exists: already exists');

  // Context errors use Go's texts.
  const e3 = fromGRPC(serviceError(status.CANCELLED, 'context canceled'));
  assert.equal(e3.code, Code.Canceled);
  assert.equal(e3.message, 'context canceled');

  // Codes without an errdefs class become Unknown, message kept.
  const e4 = fromGRPC(serviceError(status.INTERNAL, 'stream reset'));
  assert.equal(e4.code, Code.Unknown);
  assert.equal(e4.detail, 'stream reset');
  assert.ok(errdefs.isUnknown(e4));

  // Non-gRPC errors are Unknown too.
  assert.equal(fromGRPC(new Error('socket hang up')).code, Code.Unknown);
});

test('fromGRPC(toGRPC(x)) is stable over repeated hops', () => {
  let e: DistError = errdefs.failedPrecondition('namespace "x" must be empty, but it still has blobs');
  for (let i = 0; i < 3; i++) e = fromGRPC(toGRPC(e));
  assert.equal(e.message, 'namespace "x" must be empty, but it still has blobs: failed precondition');
  assert.ok(errdefs.isFailedPrecondition(e));
});
