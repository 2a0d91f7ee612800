import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isInvalidArgument } from '../../src/errdefs/index.js';
import { MAX_LABEL_SIZE, applyLabelPaths, validateLabels } from '../../src/internal/fieldpaths.js';

const current = Object.freeze({ a: '1', b: '2', c: '3' }) as Record<string, string>;

test('no paths replaces all labels', () => {
  assert.deepEqual(applyLabelPaths(current, { x: '9' }, []), { labels: { x: '9' }, rest: [] });
  assert.deepEqual(applyLabelPaths(current, { x: '9' }, undefined), { labels: { x: '9' }, rest: [] });
  assert.deepEqual(applyLabelPaths(current, undefined, []), { labels: {}, rest: [] });
  // empty values are never stored
  assert.deepEqual(applyLabelPaths(current, { x: '9', y: '' }, []).labels, { x: '9' });
});

test('"labels" replaces all labels', () => {
  assert.deepEqual(applyLabelPaths(current, { x: '9', e: '' }, ['labels']), { labels: { x: '9' }, rest: [] });
  assert.deepEqual(applyLabelPaths(current, undefined, ['labels']).labels, {});
});

test('"labels.k" sets, changes or deletes one key', () => {
  const updated = { a: 'new', b: '', x: 'added', other: 'ignored' };
  const r = applyLabelPaths(current, updated, ['labels.a', 'labels.b', 'labels.x', 'labels.c2']);
  assert.deepEqual(r, { labels: { a: 'new', c: '3', x: 'added' }, rest: [] });
  // absent from updated deletes
  assert.deepEqual(applyLabelPaths(current, {}, ['labels.c']).labels, { a: '1', b: '2' });
  assert.deepEqual(applyLabelPaths(current, undefined, ['labels.c']).labels, { a: '1', b: '2' });
  // the key is everything after the first "."
  assert.deepEqual(applyLabelPaths({}, { 'containerd.io/gc.ref.content.0': 'sha256:x' }, ['labels.containerd.io/gc.ref.content.0']).labels, {
    'containerd.io/gc.ref.content.0': 'sha256:x',
  });
  // current is not modified
  assert.deepEqual(current, { a: '1', b: '2', c: '3' });
});

test('paths apply in order', () => {
  assert.deepEqual(applyLabelPaths(current, { x: '9' }, ['labels.a', 'labels']).labels, { x: '9' });
  assert.deepEqual(applyLabelPaths(current, { x: '9', a: '7' }, ['labels', 'labels.x']).labels, { x: '9', a: '7' });
  assert.deepEqual(applyLabelPaths(current, { x: '9' }, ['labels', 'labels.b']).labels, { x: '9' });
});

test('other paths are returned for the caller', () => {
  const r = applyLabelPaths(current, { a: '5' }, ['target', 'labels.a', 'annotations.x', 'labelsx', 'name']);
  assert.deepEqual(r.labels, { a: '5', b: '2', c: '3' });
  assert.deepEqual(r.rest, ['target', 'annotations.x', 'labelsx', 'name']);
  // only rest paths: labels unchanged
  assert.deepEqual(applyLabelPaths(current, {}, ['target']), { labels: { ...current }, rest: ['target'] });
});

test('another prefix applies the same rule to that map', () => {
  const paths = ['labels.a', 'annotations.k', 'target'];
  const l = applyLabelPaths(current, { a: 'L' }, paths);
  const an = applyLabelPaths({ k: 'old', j: 'keep' }, { k: 'new' }, paths, 'annotations');
  assert.deepEqual(l.labels, { a: 'L', b: '2', c: '3' });
  assert.deepEqual(an.labels, { k: 'new', j: 'keep' });
  // a path is unknown when neither call consumed it
  assert.deepEqual(l.rest.filter((p) => an.rest.includes(p)), ['target']);
  assert.deepEqual(applyLabelPaths({ k: 'v' }, { z: '1' }, ['annotations'], 'annotations').labels, { z: '1' });
});

test('validateLabels: key + value up to 4096 bytes', () => {
  assert.equal(MAX_LABEL_SIZE, 4096);
  validateLabels({});
  validateLabels({ k: 'v', [''.padEnd(10, 'k')]: ''.padEnd(4086, 'v') });
  validateLabels({ ['k'.repeat(4096)]: '' });
  for (const labels of [
    { k: 'v'.repeat(4096) },
    { ['k'.repeat(4097)]: '' },
    { ['k'.repeat(100)]: 'v'.repeat(3997) },
    { k: 'é'.repeat(2048) }, // 1 + 4096 bytes
  ]) {
    assert.throws(() => validateLabels(labels), (e: unknown) => isInvalidArgument(e));
  }
  assert.throws(
    () => validateLabels({ ['abcdefghijklmnop']: 'v'.repeat(4090) }),
    { message: 'label key and value greater than maximum size (4096 bytes), key: abcdefghij: invalid argument' },
  );
  validateLabels({ k: 'é'.repeat(2047) }); // 1 + 4094 bytes
});
