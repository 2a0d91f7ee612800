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
  const n = p.length;
  if (n === 1) return p !== '.';
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

export const MAX_SYMLINKS = 255;

export class TooManyLinksError extends Error {}

/**
 * continuity's fs.RootPath, returning the inside path ("/a/b"). Same
 * algorithm, so the same answer for every tree: directory parts are resolved
 * first, link targets are joined lexically, and passes repeat until one
 * walks no link.
 */
export async function rootPath(path: string, lookup: Lookup): Promise<string> {
  if (path === '') return '/';
  const walked = { n: 0 };
  for (;;) {
    const before = walked.n;
    let newpath = await walkLinks(path, lookup, walked);
    path = newpath;
    if (before === walked.n) {
      newpath = join('/', newpath);
      if (path === newpath) return newpath;
      path = newpath;
    }
  }
}

async function walkLink(path: string, lookup: Lookup, walked: { n: number }): Promise<[string, boolean]> {
  if (walked.n > MAX_SYMLINKS) throw invalidArgument('too many links', new TooManyLinksError('too many links'));
  path = join('/', path);
  if (path === '/') return [path, false];
  const target = await lookup(path);
  if (target === null) return [path, false];
  walked.n++;
  return [target, true];
}

async function walkLinks(path: string, lookup: Lookup, walked: { n: number }): Promise<string> {
  const [dir, file] = split(path);
  if (dir === '') return (await walkLink(file, lookup, walked))[0];
  if (file === '') {
    if (dir === '/') return dir;
    return walkLinks(dir.slice(0, -1), lookup, walked);
  }
  const newdir = await walkLinks(dir, lookup, walked);
  const [newpath, islink] = await walkLink(join(newdir, file), lookup, walked);
  if (!islink) return newpath;
  if (isAbs(newpath)) return newpath;
  return join(newdir, newpath);
}

/*
 * Byte strings: the applier and its executors carry paths as strings of one
 * char per byte (latin1), as the tar reader returns names, so names that are
 * not UTF-8 survive exactly. B() makes the Buffer fs calls and the native
 * executor take; text() the readable form for messages.
 */
export const B = (s: string): Buffer => Buffer.from(s, 'latin1');
export const text = (s: string): string => Buffer.from(s, 'latin1').toString('utf8');
