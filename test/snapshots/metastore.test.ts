import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../util/tmp.js';
import { isFailedPrecondition, isInvalidArgument, isNotFound, isAlreadyExists, isCanceled } from '../../src/errdefs/index.js';
import { MetaStore } from '../../src/snapshots/storage/index.js';
import { kindFromProto, kindString, kindToProto, parseKind, filterInheritedLabels } from '../../src/snapshots/types.js';

const ctx = {};

test('kinds: proto numbers, names and parsing', () => {
  assert.equal(kindToProto('view'), 1);
  assert.equal(kindToProto('active'), 2);
  assert.equal(kindToProto('committed'), 3);
  assert.equal(kindFromProto(0), undefined);
  assert.equal(kindFromProto(3), 'committed');
  assert.equal(kindFromProto('VIEW'), 'view');
  assert.equal(parseKind('Active'), 'active');
  assert.equal(parseKind('nope'), undefined);
  assert.equal(kindString('committed'), 'Committed');
  assert.equal(kindString(undefined), 'Unknown');
  assert.deepEqual(filterInheritedLabels({ 'containerd.io/snapshot/x': '1', 'containerd.io/snapshot.ref': 'r', other: '2' }), {
    'containerd.io/snapshot/x': '1',
    'containerd.io/snapshot.ref': 'r',
  });
});

test('metastore: parent chains nearest first, commit keeps the id, usage recorded', async () => {
  const { dir, cleanup } = await tempDir();
  const ms = MetaStore.open(join(dir, 'metadata.db'));
  try {
    const a = await ms.update(ctx, (tx) => tx.createSnapshot('active', 'a'));
    assert.deepEqual(a.parentIds, []);
    const id = await ms.update(ctx, (tx) => tx.commitActive('a', 'c1', { size: 4096, inodes: 2 }));
    assert.equal(id, a.id);
    await ms.update(ctx, (tx) => tx.createSnapshot('active', 'b', 'c1'));
    const c2 = await ms.update(ctx, (tx) => tx.commitActive('b', 'c2', { size: 0, inodes: 1 }));
    const v = await ms.update(ctx, (tx) => tx.createSnapshot('view', 'v', 'c2', { labels: { l: '1' } }));
    assert.deepEqual(v.parentIds, [c2, a.id]);
    assert.deepEqual(ms.view((tx) => tx.getSnapshot('v')), v);
    const got = ms.view((tx) => tx.getInfo('c1'));
    assert.equal(got.id, a.id);
    assert.deepEqual(got.usage, { size: 4096, inodes: 2 });
    assert.equal(got.info.kind, 'committed');
    assert.equal(ms.view((tx) => tx.getInfo('v')).info.parent, 'c2');
    assert.deepEqual(ms.view((tx) => tx.listInfo()).map((i) => i.name), ['c1', 'c2', 'v']);
    assert.deepEqual([...ms.view((tx) => tx.idMap()).values()].sort(), ['c1', 'c2', 'v']);
    assert.throws(() => ms.view((tx) => tx.getSnapshot('c1')), isFailedPrecondition);
    assert.throws(() => ms.view((tx) => tx.createSnapshot('active', 'x')), isFailedPrecondition, 'read transactions cannot write');
    await assert.rejects(ms.update(ctx, (tx) => tx.createSnapshot('committed', 'x')), isInvalidArgument);
    await assert.rejects(ms.update(ctx, (tx) => tx.createSnapshot('active', '')), isInvalidArgument);
    await assert.rejects(ms.update(ctx, (tx) => tx.createSnapshot('active', 'x', 'v')), isInvalidArgument);
    await assert.rejects(ms.update(ctx, (tx) => tx.createSnapshot('active', 'x', 'nope')), isNotFound);
    await assert.rejects(ms.update(ctx, (tx) => tx.createSnapshot('active', 'c1')), isAlreadyExists);
    await assert.rejects(ms.update(ctx, (tx) => tx.remove('c2')), isFailedPrecondition);
  } finally {
    await ms.close();
    await cleanup();
  }
});

test('metastore: a throwing update rolls back; readers never see uncommitted writes; updates serialize', async () => {
  const { dir, cleanup } = await tempDir();
  const ms = MetaStore.open(join(dir, 'metadata.db'));
  try {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const order: string[] = [];
    const first = ms.update(ctx, async (tx) => {
      tx.createSnapshot('active', 'pending');
      order.push('first:start');
      await gate;
      order.push('first:end');
      throw new Error('abort the transaction');
    });
    const second = ms.update(ctx, (tx) => {
      order.push('second');
      return tx.createSnapshot('active', 'pending');
    });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(ms.view((tx) => tx.exists('pending')), false, 'uncommitted row is invisible');
    release();
    await assert.rejects(first, /abort the transaction/);
    await second;
    assert.deepEqual(order, ['first:start', 'first:end', 'second']);
    assert.equal(ms.view((tx) => tx.getInfo('pending')).info.kind, 'active');

    const ac = new AbortController();
    ac.abort();
    await assert.rejects(ms.update({ signal: ac.signal }, () => undefined), isCanceled);
  } finally {
    await ms.close();
    await ms.close();
    await cleanup();
  }
});

test('metastore: labels and field paths; times in ns', async () => {
  const { dir, cleanup } = await tempDir();
  const ms = MetaStore.open(join(dir, 'metadata.db'));
  try {
    await ms.update(ctx, (tx) => tx.createSnapshot('active', 'a', undefined, { labels: { a: '1', b: '2', empty: '' } }));
    const before = ms.view((tx) => tx.getInfo('a')).info;
    assert.deepEqual(before.labels, { a: '1', b: '2' });
    assert.equal(before.createdAt, before.updatedAt);
    assert.ok(before.createdAt > 1_600_000_000_000_000_000n);
    const up = await ms.update(ctx, (tx) => tx.updateInfo({ name: 'a', labels: { a: 'x', c: '3' } }, ['labels.a', 'labels.b']));
    assert.deepEqual(up.labels, { a: 'x' });
    assert.ok(up.updatedAt > before.updatedAt);
    assert.equal(up.createdAt, before.createdAt);
    assert.deepEqual(ms.view((tx) => tx.getInfo('a')).info, up);
    const all = await ms.update(ctx, (tx) => tx.updateInfo({ name: 'a', labels: { z: '9' } }));
    assert.deepEqual(all.labels, { z: '9' });
    await assert.rejects(ms.update(ctx, (tx) => tx.updateInfo({ name: 'a', labels: {} }, ['kind'])), isInvalidArgument);
    await assert.rejects(ms.update(ctx, (tx) => tx.updateInfo({ name: 'nope', labels: {} })), isNotFound);
  } finally {
    await ms.close();
    await cleanup();
  }
});
