import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { writeBlob } from '../../src/content/helpers.js';
import { isAlreadyExists, isFailedPrecondition, isInvalidArgument, isNotFound } from '../../src/errdefs/index.js';
import { BAD_IDENTIFIERS, GOOD_IDENTIFIERS, digestOf, withEmbedded } from './fixtures-meta.js';
import { rejectsWith } from '../content/testsuite.js';

const IMG = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: digestOf('a'), size: 100 };

test('namespaces: create, list, labels, duplicate', () =>
  withEmbedded(async ({ namespaces }) => {
    assert.deepEqual(await namespaces.list({}), []);
    await namespaces.create({}, 'ns1', { a: 'b', 'containerd.io/defaults/snapshotter': 'overlayfs' });
    await namespaces.create({}, 'ns0');
    assert.deepEqual(await namespaces.list({}), ['ns0', 'ns1'], 'sorted');
    assert.deepEqual(await namespaces.labels({}, 'ns1'), { a: 'b', 'containerd.io/defaults/snapshotter': 'overlayfs' });
    assert.deepEqual(await namespaces.labels({}, 'ns0'), {});
    await rejectsWith(namespaces.create({}, 'ns1'), isAlreadyExists, 'duplicate create', /namespace ns1: already exists/);
    assert.deepEqual(await namespaces.labels({}, 'ns1'), { a: 'b', 'containerd.io/defaults/snapshotter': 'overlayfs' }, 'duplicate create changed nothing');
    // Labels of an unknown namespace: none, no error (containerd 1.6), and it is not created.
    assert.deepEqual(await namespaces.labels({}, 'unknown'), {});
    assert.deepEqual(await namespaces.list({}), ['ns0', 'ns1']);
    // Oversized labels are InvalidArgument.
    await rejectsWith(namespaces.create({}, 'big', { k: 'v'.repeat(5000) }), isInvalidArgument, 'oversized label');
    assert.ok(!(await namespaces.list({})).includes('big'));
  }));

test('namespaces: setLabel sets, overwrites, clears with "" and creates the namespace', () =>
  withEmbedded(async ({ namespaces }) => {
    await namespaces.create({}, 'ns', { keep: '1' });
    await namespaces.setLabel({}, 'ns', 'k', 'v');
    assert.deepEqual(await namespaces.labels({}, 'ns'), { keep: '1', k: 'v' });
    await namespaces.setLabel({}, 'ns', 'k', 'v2');
    assert.deepEqual(await namespaces.labels({}, 'ns'), { keep: '1', k: 'v2' });
    await namespaces.setLabel({}, 'ns', 'k', '');
    assert.deepEqual(await namespaces.labels({}, 'ns'), { keep: '1' });
    await namespaces.setLabel({}, 'ns', 'never-set', '');
    assert.deepEqual(await namespaces.labels({}, 'ns'), { keep: '1' });
    await namespaces.setLabel({}, 'fresh', 'x', 'y');
    assert.deepEqual(await namespaces.list({}), ['fresh', 'ns']);
    assert.deepEqual(await namespaces.labels({}, 'fresh'), { x: 'y' });
    await rejectsWith(namespaces.setLabel({}, 'ns', 'k', 'v'.repeat(5000)), isInvalidArgument, 'oversized label');
  }));

test('namespaces: writes in a namespace create it', () =>
  withEmbedded(async ({ namespaces, content, leases, images }) => {
    await writeBlob({ namespace: 'by-content' }, content, 'r', Readable.from([Buffer.from('x')]), {});
    await leases.create({ namespace: 'by-lease' });
    await images.create({ namespace: 'by-image' }, { name: 'img', target: IMG });
    assert.deepEqual(await namespaces.list({}), ['by-content', 'by-image', 'by-lease']);
  }));

test('namespaces: delete refuses a namespace that holds images or blobs, naming them; then NotFound', () =>
  withEmbedded(async ({ namespaces, content, images, leases }) => {
    const ctx = { namespace: 'full' };
    await images.create(ctx, { name: 'docker.io/library/x:1', target: IMG });
    const data = Buffer.from('blob');
    const d = (await import('../../src/digest/index.js')).fromBytes(data);
    await writeBlob(ctx, content, 'r', Readable.from([data]), { digest: d });
    await leases.create(ctx, { id: 'l' });
    await rejectsWith(namespaces.delete({}, 'full'), isFailedPrecondition, 'delete with images and blobs',
      /^namespace "full" must be empty, but it still has images, blobs: failed precondition$/);
    await images.delete(ctx, 'docker.io/library/x:1');
    await rejectsWith(namespaces.delete({}, 'full'), isFailedPrecondition, 'delete with blobs',
      /^namespace "full" must be empty, but it still has blobs: failed precondition$/);
    await images.create(ctx, { name: 'again', target: IMG });
    await content.delete(ctx, d);
    await rejectsWith(namespaces.delete({}, 'full'), isFailedPrecondition, 'delete with images',
      /^namespace "full" must be empty, but it still has images: failed precondition$/);
    await images.delete(ctx, 'again');
    assert.deepEqual(await namespaces.list({}), ['full']);
    // Leases (and ingests) do not keep a namespace alive; they go with it.
    await namespaces.delete({}, 'full');
    assert.deepEqual(await namespaces.list({}), []);
    assert.deepEqual(await namespaces.labels({}, 'full'), {});
    await rejectsWith(namespaces.delete({}, 'full'), isNotFound, 'delete twice', /namespace "full": not found/);
    await rejectsWith(namespaces.delete({}, 'never'), isNotFound, 'delete unknown');
    assert.deepEqual(await leases.list(ctx), [], 'leases of a deleted namespace are gone');
  }));

test('namespaces: delete drops the leases and ingests of the namespace', () =>
  withEmbedded(async ({ namespaces, content, leases }) => {
    const ctx = { namespace: 'tmp' };
    await leases.create(ctx, { id: 'l1' });
    const w = await content.writer({ ...ctx, lease: 'l1' }, { ref: 'ing' });
    await w.write(Buffer.from('abc'));
    await w.close();
    await namespaces.delete({}, 'tmp');
    assert.deepEqual(await leases.list(ctx), []);
    await rejectsWith(content.status(ctx, 'ing'), isNotFound, 'ingest of a deleted namespace');
  }));

test('namespaces: every bad identifier is InvalidArgument, every good one works', () =>
  withEmbedded(async ({ namespaces, leases, images, content }) => {
    for (const bad of BAD_IDENTIFIERS) {
      const what = JSON.stringify(bad);
      await rejectsWith(namespaces.create({}, bad), isInvalidArgument, `create ${what}`);
      await rejectsWith(namespaces.labels({}, bad), isInvalidArgument, `labels ${what}`);
      await rejectsWith(namespaces.setLabel({}, bad, 'k', 'v'), isInvalidArgument, `setLabel ${what}`);
      await rejectsWith(namespaces.delete({}, bad), isInvalidArgument, `delete ${what}`);
      if (bad !== '') {
        // As the namespace of a call (an empty one is FailedPrecondition: "namespace is required").
        await rejectsWith(leases.list({ namespace: bad }), isInvalidArgument, `leases in ns ${what}`);
        await rejectsWith(images.list({ namespace: bad }), isInvalidArgument, `images in ns ${what}`);
        await rejectsWith(content.listStatuses({ namespace: bad }), isInvalidArgument, `content in ns ${what}`);
      }
    }
    assert.deepEqual(await namespaces.list({}), []);
    await rejectsWith(images.list({}), isFailedPrecondition, 'no namespace', /namespace is required/);
    for (const good of GOOD_IDENTIFIERS) await namespaces.create({}, good);
    assert.deepEqual((await namespaces.list({})).sort(), [...GOOD_IDENTIFIERS].sort());
  }));
