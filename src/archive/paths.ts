/**
 * Lexical path helpers with Go's path/filepath semantics (Clean, Join,
 * Split), and continuity's fs.RootPath: symlink resolution that treats a
 * directory as "/" — ".." cannot climb above it, absolute link targets start
 * at it, at most 255 links are followed. The file system is consulted through
 * a Lookup, so the applier can answer from what it already knows.
 *
 * Paths inside the root are "inside paths": clean, absolute, "/" is the root
 * itself. rel(inside) drops the leading slash ("" is the root).
 */
import { invalidArgument } from '../errdefs/index.js';

/** Go's path.Clean. */
export function clean(p: string): string {
  if (p === '') return '.';
  if (isClean(p)) return p;
  const rooted = p.charCodeAt(0) === 47;
  const out: string[] = [];
  for (const el of p.split('/')) {
    if (el === '' || el === '.') continue;
    if (el === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(el);
  }
  const s = out.join('/');
  if (rooted) return '/' + s;
  return s === '' ? '.' : s;
}

/**
 * Whether clean(p) === p for a non-empty p: no empty, "." or ".." element
 * and no trailing slash ("/" alone is clean). One pass, no allocation.
 */
function isClean(p: string): boolean {
  if (p === '/') return true; // compared for every name: see tar.ts's numeric
  const n = p.length;
  let start = p.charCodeAt(0) === 47 ? 1 : 0; // current element's first index
  for (let i = start; i <= n; i++) {
    if (i < n && p.charCodeAt(i) !== 47) continue;
    const len = i - start;
    if (len === 0) return false;
    if (p.charCodeAt(start) === 46 && (len === 1 || (len === 2 && p.charCodeAt(start + 1) === 46))) return false;
    start = i + 1;
  }
  return true;
}

/** Go's filepath.Join: joins the non-empty elements and cleans; "" when all are empty. */
export function join(...els: string[]): string {
  if (els.length === 2) {
    // the resolver's case: no arrays, and no doubled slash that would send
    // clean() down its slow path ("/" + "/a/b" is "/a/b")
    const a = els[0]!;
    const b = els[1]!;
    if (a === '') return b === '' ? '' : clean(b);
    if (b === '') return clean(a);
    const aSlash = a.charCodeAt(a.length - 1) === 47;
    const bSlash = b.charCodeAt(0) === 47;
    return clean(aSlash && bSlash ? a + b.slice(1) : aSlash || bSlash ? a + b : `${a}/${b}`);
  }
  const parts = els.filter((e) => e !== '');
  return parts.length === 0 ? '' : clean(parts.join('/'));
}

/** Go's filepath.Split: [dir including its trailing slash, file]. */
export function split(p: string): [string, string] {
  const i = p.lastIndexOf('/');
  return [p.slice(0, i + 1), p.slice(i + 1)];
}

export function isAbs(p: string): boolean {
  return p.charCodeAt(0) === 47;
}

/** Inside path → path relative to the root ("" for the root). */
export function rel(inside: string): string {
  return inside === '/' ? '' : inside.slice(1);
}

/** Parent of a relative path ("" for top-level names). */
export function relDir(r: string): string {
  const i = r.lastIndexOf('/');
  return i < 0 ? '' : r.slice(0, i);
}

export function relBase(r: string): string {
  return r.slice(r.lastIndexOf('/') + 1);
}

/** What a Lookup reports for an inside path: the link target, or null (not a link, or absent). */
export type LookupResult = string | null;
/** Lstat+readlink of an inside path (clean, absolute). Throws for errors other than "absent". */
export type Lookup = (inside: string) => LookupResult | Promise<LookupResult>;
/** A lookup that may not know (undefined) rather than look. */
export type KnownLookup = (inside: string) => LookupResult | undefined;

export const MAX_SYMLINKS = 255;

export class TooManyLinksError extends Error {}

/**
 * continuity's fs.RootPath, returning the inside path ("/a/b"). Same
 * algorithm, so the same answer for every tree: directory parts are resolved
 * first, link targets are joined lexically, and passes repeat until one
 * walks no link. Synchronous while the lookup answers synchronously (the
 * applier's model usually can); a Promise from the first lookup that does not.
 */
export function rootPath(path: string, lookup: Lookup): string | Promise<string>;
/** With a KnownLookup: undefined at the first lookup that does not know (the steps only read: nothing to undo). */
export function rootPath(path: string, lookup: KnownLookup): string | undefined;
export function rootPath(path: string, lookup: Lookup | KnownLookup): string | Promise<string> | undefined {
  const steps = rootPathSteps(path);
  for (let r = steps.next(); ; ) {
    if (r.done) return r.value;
    const t = lookup(r.value);
    if (t === undefined) return undefined;
    if (typeof t === 'object' && t !== null) return rootPathAsync(steps, t, lookup as Lookup);
    r = steps.next(t);
  }
}

async function rootPathAsync(steps: Generator<string, string, LookupResult>, pending: Promise<LookupResult>, lookup: Lookup): Promise<string> {
  let r = steps.next(await pending);
  while (!r.done) r = steps.next(await lookup(r.value));
  return r.value;
}

/**
 * The algorithm, yielding each inside path to look up and receiving its
 * link target (or null). continuity's recursive walkLinks over dir/file
 * splits is a left fold over the path's non-empty elements: a relative
 * path's first element is walked alone (its result, link target or not,
 * becomes the directory); every later one is joined to the directory and
 * walked, a relative link target being joined to that directory.
 */
function* rootPathSteps(path: string): Generator<string, string, LookupResult> {
  if (path === '') return '/';
  let walked = 0;
  for (;;) {
    const before = walked;
    // one pass of walkLinks
    let dir: string | null = isAbs(path) ? '/' : null;
    for (const el of path.split('/')) {
      if (el === '') continue;
      if (walked > MAX_SYMLINKS) throw invalidArgument('too many links', new TooManyLinksError('too many links'));
      const j = dir === null ? el : join(dir, el); // clean already
      const p = isAbs(j) ? j : join('/', j);
      if (p === '/') {
        dir = p;
        continue;
      }
      const target = yield p;
      if (target === null) {
        dir = p;
        continue;
      }
      walked++;
      dir = dir === null || isAbs(target) ? target : join(dir, target);
    }
    const newpath = dir ?? '/';
    if (before === walked) {
      const cleaned = join('/', newpath);
      if (newpath === cleaned) return cleaned;
      path = cleaned;
    } else {
      path = newpath;
    }
  }
}

/*
 * Byte strings: the applier and its executors carry paths as strings of one
 * char per byte (latin1), as the tar reader returns names, so names that are
 * not UTF-8 survive exactly. B() makes the Buffer fs calls and the native
 * executor take; text() the readable form for messages.
 */
export const B = (s: string): Buffer => Buffer.from(s, 'latin1');
export const text = (s: string): string => Buffer.from(s, 'latin1').toString('utf8');
