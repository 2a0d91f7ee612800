import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Metadata } from '@grpc/grpc-js';
import { isCanceled, isFailedPrecondition, isInvalidArgument } from '../../src/errdefs/index.js';
import {
  LEASE_HEADER,
  NAMESPACE_HEADER,
  ctxFromCall,
  leaseFromMetadata,
  metadataFromCtx,
  namespaceFromMetadata,
  requireNamespace,
} from '../../src/api/grpc/metadata.js';

function md(headers: Record<string, string>): Metadata {
  const m = new Metadata();
  for (const [k, v] of Object.entries(headers)) m.set(k, v);
  return m;
}

function fakeCall(headers: Record<string, string>) {
  return Object.assign(new EventEmitter(), { metadata: md(headers), cancelled: false });
}

test('header names are containerd\'s', () => {
  assert.equal(NAMESPACE_HEADER, 'containerd-namespace');
  assert.equal(LEASE_HEADER, 'containerd-lease');
});

test('requireNamespace: missing or empty → FailedPrecondition "namespace is required"', () => {
  for (const h of [{}, { [NAMESPACE_HEADER]: '' }] as Record<string, string>[]) {
    assert.throws(() => requireNamespace(md(h)), (err: Error) => {
      assert.ok(isFailedPrecondition(err));
      assert.equal(err.message, 'namespace is required: failed precondition');
      return true;
    });
  }
});

test('requireNamespace: invalid identifier → InvalidArgument "namespace validation: …"', () => {
  for (const bad of ['-x', 'a..b', 'has space', 'a/b', 'x'.repeat(77)]) {
    assert.throws(() => requireNamespace(md({ [NAMESPACE_HEADER]: bad })), (err: Error) => {
      assert.ok(isInvalidArgument(err), bad);
      assert.match(err.message, /^namespace validation: identifier .*: invalid argument$/);
      assert.ok(!err.message.includes('invalid argument: invalid argument'));
      return true;
    });
  }
  assert.equal(requireNamespace(md({ [NAMESPACE_HEADER]: 'k8s.io' })), 'k8s.io');
  assert.equal(requireNamespace(md({ [NAMESPACE_HEADER]: 'x'.repeat(76) })), 'x'.repeat(76));
});

test('ctxFromCall: namespace, lease and signal', () => {
  const call = fakeCall({ [NAMESPACE_HEADER]: 'default', [LEASE_HEADER]: 'lease-1' });
  const ctx = ctxFromCall(call);
  assert.equal(ctx.namespace, 'default');
  assert.equal(ctx.lease, 'lease-1');
  assert.equal(ctx.signal!.aborted, false);
  call.emit('cancelled', 'cancelled');
  assert.equal(ctx.signal!.aborted, true);
  assert.ok(isCanceled(ctx.signal!.reason));
});

test('ctxFromCall: already-cancelled call gives an aborted signal', () => {
  const call = Object.assign(fakeCall({ [NAMESPACE_HEADER]: 'default' }), { cancelled: true });
  assert.equal(ctxFromCall(call).signal!.aborted, true);
});

test('ctxFromCall: namespaced calls need the header; non-namespaced ones do not', () => {
  assert.throws(() => ctxFromCall(fakeCall({})), (e: Error) => isFailedPrecondition(e));
  const ctx = ctxFromCall(fakeCall({ [LEASE_HEADER]: 'l' }), { namespaced: false });
  assert.equal(ctx.namespace, undefined);
  assert.equal(ctx.lease, 'l');
  assert.equal(ctxFromCall(fakeCall({ [NAMESPACE_HEADER]: 'ns1' }), { namespaced: false }).namespace, 'ns1');
  // An invalid header is simply ignored where no namespace is needed.
  assert.equal(ctxFromCall(fakeCall({ [NAMESPACE_HEADER]: 'bad name' }), { namespaced: false }).namespace, undefined);
});

test('metadataFromCtx writes both headers, only when set', () => {
  const m = metadataFromCtx({ namespace: 'n1', lease: 'L' });
  assert.deepEqual(m.get(NAMESPACE_HEADER), ['n1']);
  assert.deepEqual(m.get(LEASE_HEADER), ['L']);
  assert.equal(namespaceFromMetadata(m), 'n1');
  assert.equal(leaseFromMetadata(m), 'L');
  const empty = metadataFromCtx({});
  assert.deepEqual(empty.get(NAMESPACE_HEADER), []);
  assert.deepEqual(empty.get(LEASE_HEADER), []);
});
