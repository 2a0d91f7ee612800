/**
 * src/archive/paths: Go's path.Clean (with its allocation-free fast path for
 * names that are already clean), Join, Split, and fs.RootPath's resolution.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clean, join, rootPath, split } from '../../src/archive/paths.js';

// Go's path.Clean test table (path/path_test.go), the cases that matter for tar names
const cleanCases: Array<[string, string]> = [
  ['', '.'],
  ['abc', 'abc'],
  ['abc/def', 'abc/def'],
  ['a/b/c', 'a/b/c'],
  ['.', '.'],
  ['..', '..'],
  ['../..', '../..'],
  ['../../abc', '../../abc'],
  ['/abc', '/abc'],
  ['/', '/'],
  ['abc/', 'abc'],
  ['abc/def/', 'abc/def'],
  ['/abc/', '/abc'],
  ['.../', '...'],
  ['abc//def//ghi', 'abc/def/ghi'],
  ['//abc', '/abc'],
  ['///abc', '/abc'],
  ['//abc//', '/abc'],
  ['abc//', 'abc'],
  ['abc/./def', 'abc/def'],
  ['/./abc/def', '/abc/def'],
  ['abc/.', 'abc'],
  ['abc/def/ghi/../jkl', 'abc/def/jkl'],
  ['abc/def/../ghi/../jkl', 'abc/jkl'],
  ['abc/def/..', 'abc'],
  ['abc/def/../..', '.'],
  ['/abc/def/../..', '/'],
  ['abc/def/../../..', '..'],
  ['/abc/def/../../..', '/'],
  ['abc/def/../../../ghi/jkl/../../../mno', '../../mno'],
  ['abc/./../def', 'def'],
  ['abc//./../def', 'def'],
  ['abc/../../././../def', '../../def'],
  ['.a/..b/...', '.a/..b/...'],
  ['./etc/passwd', 'etc/passwd'],
];

test('clean matches Go path.Clean', () => {
  for (const [in_, want] of cleanCases) assert.equal(clean(in_), want, JSON.stringify(in_));
});

test('clean: the fast path agrees with the element-wise algorithm on random names', () => {
  const slow = (p: string): string => clean(`${p}/`.replace(/^\/$/, '/')); // a trailing slash forces the slow path
  const alphabet = ['a', '.', '/', 'b', '..', '.a'];
  let seed = 1;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 20000; i++) {
    let s = '';
    for (let j = rnd(9); j > 0; j--) s += alphabet[rnd(alphabet.length)];
    if (s === '') continue;
    assert.equal(clean(s), slow(s), JSON.stringify(s));
  }
});

test('join and split as Go filepath', () => {
  assert.equal(join('/', 'a', '', '../b'), '/b');
  assert.equal(join('', ''), '');
  assert.deepEqual(split('a/b/c'), ['a/b/', 'c']);
  assert.deepEqual(split('c'), ['', 'c']);
});

test('rootPath: links resolve inside the root; .. cannot climb out', async () => {
  const links = new Map([
    ['/var/run', '/run'],
    ['/up', '../../..'],
    ['/loop', '/loop'],
  ]);
  const lookup = (p: string): string | null => links.get(p) ?? null;
  assert.equal(await rootPath('var/run/x', lookup), '/run/x');
  assert.equal(await rootPath('up/etc/passwd', lookup), '/etc/passwd');
  assert.equal(await rootPath('../../a', lookup), '/a');
  await assert.rejects(rootPath('loop/x', lookup), /too many links/);
});
