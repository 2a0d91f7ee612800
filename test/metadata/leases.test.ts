import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { writeBlob } from '../../src/content/helpers.js';
import { fromBytes } from '../../src/digest/index.js';
import { isAlreadyExists, isInvalidArgument, isNotFound, isNotImplemented } from '../../src/errdefs/index.js';
import * as identifiers from '../../src/identifiers/index.js';
import { now } from '../../src/internal/time.js';
import { LABEL_EXPIRE } from '../../src/leases/types.js';
import { assertBetween, rejectsWith } from '../content/testsuite.js';
import { BAD_FILTERS, BAD_IDENTIFIERS, GOOD_IDENTIFIERS, digestOf, withEmbedded } from './fixtures-meta.js';

const ctx = { namespace: 'leases-test' };

test('leases: create with id, random id, labels, expire label; duplicate is AlreadyExists', () =>
  withEmbedded(async ({ leases }) => {
    const t0 = now();
    const l1 = await leases.create(ctx, { id: 'l1' });
    const t1 = now();
    assert.equal(l1.id, 'l1');
    assert.deepEqual(l1.labels, {});
    assertBetween(l1.createdAt, t0, t1, 'createdAt');

    const expire = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const l2 = await leases.create(ctx, { labels: { a: 'b', [LABEL_EXPIRE]: expire } });
    assert.ok(identifiers.isValid(l2.id), `random id ${l2.id} is a valid identifier`);
    assert.deepEqual(l2.labels, { a: 'b', [LABEL_EXPIRE]: expire });
    const l3 = await leases.create(ctx);
    assert.notEqual(l3.id, l2.id, 'random ids differ');

    await rejectsWith(leases.create(ctx, { id: 'l1' }), isAlreadyExists, 'duplicate id', /lease "l1": already exists/);
    await rejectsWith(leases.create(ctx, { id: 'big', labels: { k: 'v'.repeat(5000) } }), isInvalidArgument, 'oversized label');

    const listed = await leases.list(ctx);
    assert.deepEqual(listed.map((l) => l.id).sort(), [l1.id, l2.id, l3.id].sort());
    const got = listed.find((l) => l.id === 'l1')!;
    assert.equal(got.createdAt, l1.createdAt, 'createdAt persisted with ns precision');
    assert.deepEqual(listed.find((l) => l.id === l2.id)!.labels, l2.labels);
  }));

test('leases: per namespace; the same id may exist in two namespaces', () =>
  withEmbedded(async ({ leases }) => {
    await leases.create({ namespace: 'a' }, { id: 'same' });
    await leases.create({ namespace: 'b' }, { id: 'same', labels: { in: 'b' } });
    assert.deepEqual((await leases.list({ namespace: 'a' })).map((l) => l.labels), [{}]);
    assert.deepEqual((await leases.list({ namespace: 'b' })).map((l) => l.labels), [{ in: 'b' }]);
    assert.deepEqual(await leases.list({ namespace: 'c' }), []);
    await leases.delete({ namespace: 'a' }, { id: 'same' });
    assert.deepEqual(await leases.list({ namespace: 'a' }), []);
    assert.equal((await leases.list({ namespace: 'b' })).length, 1);
    await rejectsWith(leases.delete({ namespace: 'c' }, { id: 'same' }), isNotFound, 'delete in another namespace');
  }));

test('leases: list with filters id==, labels."k"==v, labels.k, OR; bad filters', () =>
  withEmbedded(async ({ leases }) => {
    await leases.create(ctx, { id: 'one', labels: { 'containerd.io/gc.flat': 'x', team: 'a' } });
    await leases.create(ctx, { id: 'two', labels: { team: 'b' } });
    await leases.create(ctx, { id: 'three' });
    const ids = async (...f: string[]) => (await leases.list(ctx, f)).map((l) => l.id).sort();
    assert.deepEqual(await ids(), ['one', 'three', 'two']);
    assert.deepEqual(await ids('id==two'), ['two']);
    assert.deepEqual(await ids('labels."containerd.io/gc.flat"==x'), ['one']);
    assert.deepEqual(await ids('labels."containerd.io/gc.flat"'), ['one']);
    assert.deepEqual(await ids('labels.team'), ['one', 'two']);
    assert.deepEqual(await ids('labels.team==b'), ['two']);
    assert.deepEqual(await ids('labels.team!=b'), ['one', 'three']);
    assert.deepEqual(await ids('id~=^t'), ['three', 'two']);
    assert.deepEqual(await ids('id==one', 'id==three'), ['one', 'three']);
    assert.deepEqual(await ids('id~=^t,labels.team'), ['two']);
    assert.deepEqual(await ids('id==nope'), []);
    for (const bad of BAD_FILTERS) await rejectsWith(leases.list(ctx, [bad]), isInvalidArgument, `bad filter ${bad}`);
  }));

test('leases: any non-empty id is accepted (containerd does not validate lease ids)', () =>
  withEmbedded(async ({ leases }) => {
    // ctr images mount names its lease after the target path.
    const ids = [...GOOD_IDENTIFIERS, ...BAD_IDENTIFIERS.filter((s) => s !== ''), '/tmp/mnt'];
    for (const id of ids) assert.equal((await leases.create(ctx, { id })).id, id);
    assert.equal((await leases.list(ctx)).length, ids.length);
  }));

test('leases: delete; unknown lease is NotFound everywhere', () =>
  withEmbedded(async ({ leases }) => {
    await leases.create(ctx, { id: 'gone' });
    await leases.addResource(ctx, { id: 'gone' }, { type: 'ingests', id: 'x' });
    await leases.delete(ctx, { id: 'gone' });
    assert.deepEqual(await leases.list(ctx), []);
    await rejectsWith(leases.delete(ctx, { id: 'gone' }), isNotFound, 'delete twice', /lease "gone": not found/);
    await rejectsWith(leases.listResources(ctx, { id: 'gone' }), isNotFound, 'listResources');
    await rejectsWith(leases.addResource(ctx, { id: 'gone' }, { type: 'ingests', id: 'x' }), isNotFound, 'addResource');
    await rejectsWith(leases.deleteResource(ctx, { id: 'gone' }, { type: 'ingests', id: 'x' }), isNotFound, 'deleteResource');
    // Recreated, it starts with no resources.
    await leases.create(ctx, { id: 'gone' });
    assert.deepEqual(await leases.listResources(ctx, { id: 'gone' }), []);
  }));

test('leases: add/delete/list resources; type and id validation', () =>
  withEmbedded(async ({ leases }) => {
    const l = await leases.create(ctx, { id: 'res' });
    const d = digestOf('b');
    await leases.addResource(ctx, l, { type: 'content', id: d });
    await leases.addResource(ctx, l, { type: 'content', id: d }); // idempotent
    await leases.addResource(ctx, l, { type: 'ingests', id: 'some-ref' });
    await leases.addResource(ctx, l, { type: 'snapshots/overlayfs', id: 'sha256:layer-key' });
    await leases.addResource(ctx, l, { type: 'snapshots/native', id: 'k' });
    assert.deepEqual(await leases.listResources(ctx, l), [
      { type: 'content', id: d },
      { type: 'ingests', id: 'some-ref' },
      { type: 'snapshots/native', id: 'k' },
      { type: 'snapshots/overlayfs', id: 'sha256:layer-key' },
    ]);

    await rejectsWith(leases.addResource(ctx, l, { type: 'foo', id: 'x' }), isNotImplemented, 'unknown type', /resource type foo not supported yet: not implemented/);
    await rejectsWith(leases.addResource(ctx, l, { type: 'snapshots', id: 'x' }), isInvalidArgument, 'snapshots without snapshotter');
    await rejectsWith(leases.addResource(ctx, l, { type: 'snapshots/a/b', id: 'x' }), isInvalidArgument, 'snapshots with two names');
    await rejectsWith(leases.addResource(ctx, l, { type: 'content', id: 'sha256:nothex' }), isInvalidArgument, 'bad content digest');
    await rejectsWith(leases.addResource(ctx, l, { type: 'content', id: 'not-a-digest' }), isInvalidArgument, 'content id without algorithm');
    await rejectsWith(leases.addResource(ctx, l, { type: 'content/x', id: d }), isInvalidArgument, 'content with a sub-type');
    await rejectsWith(leases.addResource(ctx, l, { type: 'ingests/x', id: 'r' }), isInvalidArgument, 'ingests with a sub-type');
    await rejectsWith(leases.deleteResource(ctx, l, { type: 'foo', id: 'x' }), isNotImplemented, 'delete of an unknown type');
    assert.equal((await leases.listResources(ctx, l)).length, 4, 'failed adds changed nothing');

    await leases.deleteResource(ctx, l, { type: 'content', id: d });
    await leases.deleteResource(ctx, l, { type: 'snapshots/native', id: 'k' });
    await leases.deleteResource(ctx, l, { type: 'ingests', id: 'never-added' }); // no-op
    assert.deepEqual(await leases.listResources(ctx, l), [
      { type: 'ingests', id: 'some-ref' },
      { type: 'snapshots/overlayfs', id: 'sha256:layer-key' },
    ]);
    // Resources are per lease.
    const other = await leases.create(ctx, { id: 'other' });
    assert.deepEqual(await leases.listResources(ctx, other), []);
  }));

test('leases: writes under ctx.lease show up as resources (ingest while writing, content after commit)', () =>
  withEmbedded(async ({ leases, content }) => {
    const l = await leases.create(ctx, { id: 'pull' });
    const lctx = { ...ctx, lease: l.id };
    const data = Buffer.from('leased content');
    const d = fromBytes(data);
    const w = await content.writer(lctx, { ref: 'layer-1', desc: { digest: d, size: data.length } });
    assert.deepEqual(await leases.listResources(ctx, l), [{ type: 'ingests', id: 'layer-1' }]);
    await w.write(data);
    await w.commit(lctx, data.length, d);
    assert.deepEqual(await leases.listResources(ctx, l), [{ type: 'content', id: d }]);
    // writeBlob of present content under another lease: AlreadyExists swallowed, content leased.
    const l2 = await leases.create(ctx, { id: 'second' });
    await writeBlob({ ...ctx, lease: l2.id }, content, 'layer-1-again', Readable.from([data]), { digest: d, size: data.length });
    assert.deepEqual(await leases.listResources(ctx, l2), [{ type: 'content', id: d }]);
    // Writes without a lease are nobody's.
    const l3 = await leases.create(ctx, { id: 'third' });
    await writeBlob(ctx, content, 'no-lease', Readable.from([Buffer.from('free')]), {});
    assert.deepEqual(await leases.listResources(ctx, l3), []);
    // A lease of another namespace is not found.
    await rejectsWith(content.writer({ namespace: 'elsewhere', lease: 'pull' }, { ref: 'x' }), isNotFound, 'lease of another namespace');
  }));
