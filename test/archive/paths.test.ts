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

test('join of two elements (its fast path) equals joining the non-empty ones and cleaning', () => {
  const pieces = ['', '/', '//', 'a', '/a', 'a/', '/a/', '.', '..', './b', 'a//b', '../..', '/..', 'c/.'];
  for (const a of pieces) {
    for (const b of pieces) {
      const parts = [a, b].filter((e) => e !== '');
      assert.equal(join(a, b), parts.length === 0 ? '' : clean(parts.join('/')), JSON.stringify([a, b]));
    }
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
  assert.throws(() => rootPath('loop/x', lookup), /too many links/);
  await assert.rejects(async () => rootPath('loop/x', async (p) => lookup(p)), /too many links/);
});

/** continuity's fs.RootPath as written there (recursive walkLinks), the reference for the fold in paths.ts. */
function goRootPath(path: string, lookup: (p: string) => string | null): string {
  if (path === '') return '/';
  const walked = { n: 0 };
  const walkLink = (p: string): [string, boolean] => {
    if (walked.n > 255) throw new Error('too many links');
    p = join('/', p);
    if (p === '/') return [p, false];
    const t = lookup(p);
    if (t === null) return [p, false];
    walked.n++;
    return [t, true];
  };
  const walkLinks = (p: string): string => {
    const [dir, file] = split(p);
    if (dir === '') return walkLink(file)[0];
    if (file === '') return dir === '/' ? dir : walkLinks(dir.slice(0, -1));
    const newdir = walkLinks(dir);
    const [np, islink] = walkLink(join(newdir, file));
    if (!islink || np.startsWith('/')) return np;
    return join(newdir, np);
  };
  for (;;) {
    const before = walked.n;
    let np = walkLinks(path);
    path = np;
    if (before === walked.n) {
      np = join('/', np);
      if (path === np) return np;
      path = np;
    }
  }
}

test('rootPath equals continuity\'s recursive algorithm on random trees, sync and async lookups', async () => {
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const names = ['a', 'b', 'c', '.', '..', ''];
  const rpath = (max: number) => {
    const els: string[] = [];
    for (let j = 1 + rnd(max); j > 0; j--) els.push(names[rnd(names.length)]!);
    return (rnd(3) === 0 ? '/' : '') + els.join('/') + (rnd(5) === 0 ? '/' : '');
  };
  for (let i = 0; i < 3000; i++) {
    const links = new Map<string, string>();
    for (let k = rnd(5); k > 0; k--) {
      const at = join('/', rpath(3));
      if (at !== '/') links.set(at, rpath(4));
    }
    const lookup = (p: string): string | null => links.get(p) ?? null;
    const path = rpath(5);
    let want: string | Error;
    try {
      want = goRootPath(path, lookup);
    } catch (err) {
      want = err as Error;
    }
    const what = `${JSON.stringify(path)} with ${JSON.stringify([...links])}`;
    if (want instanceof Error) {
      assert.throws(() => rootPath(path, lookup), /too many links/, what);
      await assert.rejects(async () => rootPath(path, async (p) => lookup(p)), /too many links/, what);
      continue;
    }
    assert.equal(rootPath(path, lookup), want, what);
    // a lookup that answers asynchronously from the third call on
    let calls = 0;
    assert.equal(await rootPath(path, (p) => (++calls > 2 ? Promise.resolve(lookup(p)) : lookup(p))), want, what);
  }
});
