import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAlreadyExists, isInvalidArgument, isNotFound } from '../../src/errdefs/index.js';
import type { Descriptor } from '../../src/content/types.js';
import { now } from '../../src/internal/time.js';
import { assertBetween, rejectsWith } from '../content/testsuite.js';
import { BAD_FILTERS, digestOf, withEmbedded } from './fixtures-meta.js';

const ctx = { namespace: 'images-test' };
const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const target = (c: string, size = 500, mediaType = INDEX): Descriptor => ({ mediaType, digest: digestOf(c), size });

test('images: create, get, duplicate, timestamps', () =>
  withEmbedded(async ({ images }) => {
    const t0 = now();
    const img = await images.create(ctx, { name: 'docker.io/library/redis:7', target: target('a'), labels: { k: 'v' } });
    const t1 = now();
    assert.equal(img.name, 'docker.io/library/redis:7');
    assert.deepEqual(img.target, target('a'));
    assert.deepEqual(img.labels, { k: 'v' });
    assertBetween(img.createdAt, t0, t1, 'createdAt');
    assert.equal(img.updatedAt, img.createdAt);
    assert.deepEqual(await images.get(ctx, 'docker.io/library/redis:7'), img, 'get returns what create returned');
    await rejectsWith(images.create(ctx, { name: 'docker.io/library/redis:7', target: target('b') }), isAlreadyExists, 'duplicate',
      /image "docker.io\/library\/redis:7": already exists/);
    assert.deepEqual((await images.get(ctx, 'docker.io/library/redis:7')).target, target('a'), 'duplicate create changed nothing');
    await rejectsWith(images.get(ctx, 'docker.io/library/nope:1'), isNotFound, 'get unknown', /image "docker.io\/library\/nope:1": not found/);
    await rejectsWith(images.get({ namespace: 'other' }, 'docker.io/library/redis:7'), isNotFound, 'get in another namespace');
    // Target annotations, urls and platform are kept.
    const rich: Descriptor = { ...target('c'), annotations: { 'org.opencontainers.image.ref.name': '1' }, urls: ['https://x'], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } };
    const r = await images.create(ctx, { name: 'rich', target: rich });
    assert.deepEqual(r.target, rich);
    assert.deepEqual((await images.get(ctx, 'rich')).target, rich);
  }));

test('images: create validation is InvalidArgument (name, digest, size, media type, labels)', () =>
  withEmbedded(async ({ images }) => {
    const cases: [string, Parameters<typeof images.create>[1]][] = [
      ['empty name', { name: '', target: target('a') }],
      ['bad digest', { name: 'x', target: { mediaType: INDEX, digest: 'sha256:xyz', size: 1 } }],
      ['digest without algorithm', { name: 'x', target: { mediaType: INDEX, digest: 'abc', size: 1 } }],
      ['size 0', { name: 'x', target: target('a', 0) }],
      ['negative size', { name: 'x', target: target('a', -1) }],
      ['no media type', { name: 'x', target: { mediaType: '', digest: digestOf('a'), size: 1 } }],
      ['oversized label', { name: 'x', target: target('a'), labels: { k: 'v'.repeat(5000) } }],
    ];
    for (const [what, img] of cases) await rejectsWith(images.create(ctx, img), isInvalidArgument, what);
    assert.deepEqual(await images.list(ctx), [], 'nothing created');
  }));

test('images: list with filters name==, name~=, labels.k==v, labels.k, target.digest==, target.mediatype==, OR; bad filters', () =>
  withEmbedded(async ({ images }) => {
    await images.create(ctx, { name: 'docker.io/library/redis:7', target: target('a'), labels: { env: 'prod', 'containerd.io/gc.root': 'x' } });
    await images.create(ctx, { name: 'docker.io/library/nginx:1', target: target('b', 300, MANIFEST), labels: { env: 'dev' } });
    await images.create(ctx, { name: 'quay.io/x/y:latest', target: target('a') });
    await images.create({ namespace: 'other' }, { name: 'docker.io/library/redis:7', target: target('a') });
    const names = async (...f: string[]) => (await images.list(ctx, f)).map((i) => i.name);
    assert.deepEqual(await names(), ['docker.io/library/nginx:1', 'docker.io/library/redis:7', 'quay.io/x/y:latest'], 'sorted by name, one namespace');
    assert.deepEqual(await names('name==docker.io/library/redis:7'), ['docker.io/library/redis:7']);
    assert.deepEqual(await names('name~=^docker.io/'), ['docker.io/library/nginx:1', 'docker.io/library/redis:7']);
    assert.deepEqual(await names('name~=redis|quay'), ['docker.io/library/redis:7', 'quay.io/x/y:latest']);
    assert.deepEqual(await names('labels.env==prod'), ['docker.io/library/redis:7']);
    assert.deepEqual(await names('labels.env'), ['docker.io/library/nginx:1', 'docker.io/library/redis:7']);
    assert.deepEqual(await names('labels."containerd.io/gc.root"'), ['docker.io/library/redis:7']);
    assert.deepEqual(await names(`target.digest==${digestOf('a')}`), ['docker.io/library/redis:7', 'quay.io/x/y:latest']);
    assert.deepEqual(await names(`target.mediatype==${MANIFEST}`), ['docker.io/library/nginx:1']);
    assert.deepEqual(await names('name==quay.io/x/y:latest', 'labels.env==dev'), ['docker.io/library/nginx:1', 'quay.io/x/y:latest'], 'OR');
    assert.deepEqual(await names(`target.digest==${digestOf('a')},labels.env==prod`), ['docker.io/library/redis:7'], 'AND');
    assert.deepEqual(await names('name==nope'), []);
    assert.deepEqual(await names('labels.env!=prod'), ['docker.io/library/nginx:1', 'quay.io/x/y:latest']);
    for (const bad of BAD_FILTERS) await rejectsWith(images.list(ctx, [bad]), isInvalidArgument, `bad filter ${bad}`);
  }));

test('images: update with field paths labels.x, labels, target, annotations.x; full replace', () =>
  withEmbedded(async ({ images }) => {
    const name = 'docker.io/library/app:1';
    const created = await images.create(ctx, { name, target: target('a'), labels: { a: '1', b: '2' } });

    let t0 = now();
    let u = await images.update(ctx, { name, labels: { b: '20', c: '3', a: 'ignored' } }, ['labels.b', 'labels.c']);
    let t1 = now();
    assert.deepEqual(u.labels, { a: '1', b: '20', c: '3' });
    assert.deepEqual(u.target, target('a'), 'target untouched');
    assert.equal(u.createdAt, created.createdAt, 'createdAt kept');
    assertBetween(u.updatedAt, t0, t1, 'updatedAt');
    assert.deepEqual(await images.get(ctx, name), u, 'get agrees with update');

    // labels.k absent from the update deletes k.
    u = await images.update(ctx, { name, labels: {} }, ['labels.c']);
    assert.deepEqual(u.labels, { a: '1', b: '20' });

    // target: replaced as a unit, labels kept.
    u = await images.update(ctx, { name, target: target('d', 42, MANIFEST), labels: { zz: 'no' } }, ['target']);
    assert.deepEqual(u.target, target('d', 42, MANIFEST));
    assert.deepEqual(u.labels, { a: '1', b: '20' });

    // annotations.k of the target.
    u = await images.update(ctx, { name, target: { ...target('x'), annotations: { ann: 'v' } } }, ['annotations.ann']);
    assert.deepEqual(u.target, { ...target('d', 42, MANIFEST), annotations: { ann: 'v' } });

    // labels: all replaced.
    u = await images.update(ctx, { name, labels: { only: 'one' } }, ['labels']);
    assert.deepEqual(u.labels, { only: 'one' });

    // No field paths: labels and target replaced.
    t0 = now();
    u = await images.update(ctx, { name, target: target('e'), labels: { fresh: 'y' } });
    t1 = now();
    assert.deepEqual(u.labels, { fresh: 'y' });
    assert.deepEqual(u.target, target('e'));
    assertBetween(u.updatedAt, t0, t1, 'updatedAt after full replace');
    assert.equal(u.createdAt, created.createdAt);
    assert.deepEqual(await images.get(ctx, name), u);
  }));

test('images: update errors: NotFound, unknown field path, invalid target, empty name', () =>
  withEmbedded(async ({ images }) => {
    const name = 'img';
    const before = await images.create(ctx, { name, target: target('a'), labels: { k: 'v' } });
    await rejectsWith(images.update(ctx, { name: 'nope', labels: {} }), isNotFound, 'update unknown', /image "nope": not found/);
    await rejectsWith(images.update({ namespace: 'other' }, { name, labels: {} }), isNotFound, 'update in another namespace');
    await rejectsWith(images.update(ctx, { name: '', labels: {} }), isInvalidArgument, 'empty name');
    await rejectsWith(images.update(ctx, { name, labels: {} }, ['name']), isInvalidArgument, 'field path name', /cannot update "name" field/);
    await rejectsWith(images.update(ctx, { name, labels: {} }, ['createdat']), isInvalidArgument, 'field path createdat');
    await rejectsWith(images.update(ctx, { name, target: { mediaType: INDEX, digest: 'sha256:bad', size: 1 } }, ['target']), isInvalidArgument, 'bad digest');
    await rejectsWith(images.update(ctx, { name, target: target('b', 0) }, ['target']), isInvalidArgument, 'size 0');
    await rejectsWith(images.update(ctx, { name, target: { ...target('b'), mediaType: '' } }), isInvalidArgument, 'no media type (full replace)');
    await rejectsWith(images.update(ctx, { name }, ['target']), isInvalidArgument, 'target path without a target');
    await rejectsWith(images.update(ctx, { name, labels: { k: 'v'.repeat(5000) } }, ['labels.k']), isInvalidArgument, 'oversized label');
    assert.deepEqual(await images.get(ctx, name), before, 'failed updates changed nothing');
  }));

test('images: delete, then NotFound', () =>
  withEmbedded(async ({ images }) => {
    await images.create(ctx, { name: 'a', target: target('a') });
    await images.create(ctx, { name: 'b', target: target('a') });
    await images.create({ namespace: 'other' }, { name: 'a', target: target('a') });
    await images.delete(ctx, 'a');
    await rejectsWith(images.get(ctx, 'a'), isNotFound, 'get after delete');
    await rejectsWith(images.delete(ctx, 'a'), isNotFound, 'delete twice', /image "a": not found/);
    assert.deepEqual((await images.list(ctx)).map((i) => i.name), ['b']);
    assert.equal((await images.get({ namespace: 'other' }, 'a')).name, 'a', 'other namespace untouched');
    // The name can be used again.
    const again = await images.create(ctx, { name: 'a', target: target('f') });
    assert.deepEqual((await images.get(ctx, 'a')).target, again.target);
  }));
