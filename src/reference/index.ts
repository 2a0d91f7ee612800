/**
 * reference: image references, two flavours (containerd's reference and
 * reference/docker packages).
 *
 * 1. Docker references: `[domain/]path[:tag][@digest]` with docker's
 *    normalisation (`redis` → `docker.io/library/redis`). The grammar:
 *      domain    := component ('.' component)* (':' port)?   component: [a-zA-Z0-9] with inner '-'
 *      path      := pcomp ('/' pcomp)*                       pcomp: [a-z0-9]+ joined by '.', '_', '__' or '-'+
 *      tag       := [\w][\w.-]{0,127}
 *      digest    := algorithm ':' hex (validated by src/digest)
 *    The first '/'-separated part is a domain only when it contains '.' or
 *    ':' or is `localhost`; otherwise the domain is docker.io (and a
 *    one-component docker.io path gets the `library/` prefix).
 *    `domain/path` must not exceed 255 characters.
 *
 * 2. Spec (containerd's reference.Spec): a schema-less `locator[:object]`
 *    where the locator is `host/path` and the object is `tag`, `tag@digest`
 *    or `@digest`. The docker resolver works on Specs: it needs a host and
 *    does no normalisation (callers normalise with parseNormalizedNamed first).
 *
 * Every failure is InvalidArgument naming the input and the reason.
 */
import { posix } from 'node:path';
import { invalidArgument } from '../errdefs/index.js';
import { parse as parseDigest } from '../digest/index.js';

export const NAME_TOTAL_LENGTH_MAX = 255;
export const TAG_LENGTH_MAX = 128;
export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
export const OFFICIAL_REPO_PREFIX = 'library';
export const DEFAULT_TAG = 'latest';

/** A parsed docker reference. domain is '' only for parse() of an unqualified name. */
export interface Reference {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_SHAPE_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;

function bad(s: string, reason: string): Error {
  return invalidArgument(`invalid reference ${JSON.stringify(s)}: ${reason}`);
}

function checkTag(s: string, tag: string): void {
  if (tag === '') throw bad(s, 'invalid reference format: empty tag');
  if (tag.length > TAG_LENGTH_MAX) throw bad(s, `invalid tag format: tag must not be more than ${TAG_LENGTH_MAX} characters`);
  if (!TAG_RE.test(tag)) throw bad(s, `invalid tag format: ${JSON.stringify(tag)} (allowed: [A-Za-z0-9_.-], not starting with '.' or '-')`);
}

function checkDigest(s: string, d: string): void {
  if (!DIGEST_SHAPE_RE.test(d)) throw bad(s, `invalid digest format: ${JSON.stringify(d)}`);
  try {
    parseDigest(d);
  } catch (err) {
    throw bad(s, `invalid digest format: ${(err as Error).message.replace(/: invalid argument$/, '')}`);
  }
}

function checkPath(s: string, path: string): void {
  if (path === '') throw bad(s, 'repository name must have at least one component');
  for (const comp of path.split('/')) {
    if (PATH_COMPONENT_RE.test(comp)) continue;
    if (PATH_COMPONENT_RE.test(comp.toLowerCase())) throw bad(s, 'repository name must be lowercase');
    if (comp === '') throw bad(s, 'invalid reference format: empty path component');
    throw bad(s, `invalid reference format: invalid path component ${JSON.stringify(comp)} (allowed: [a-z0-9] separated by '.', '_', '__' or '-')`);
  }
}

/** Splits `rest` (a name with optional tag/digest) into [name, tag, digest]. */
function splitTagDigest(s: string, rest: string): [string, string | undefined, string | undefined] {
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    checkDigest(s, digest);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    checkTag(s, tag);
  }
  return [rest, tag, digest];
}

/** docker's domain split: the first component is a domain only if it looks like one. */
function splitDockerDomain(name: string): [string, string] {
  const i = name.indexOf('/');
  let domain: string;
  let rest: string;
  if (i === -1 || (!/[.:]/.test(name.slice(0, i)) && name.slice(0, i) !== 'localhost')) {
    domain = DEFAULT_DOMAIN;
    rest = name;
  } else {
    domain = name.slice(0, i);
    rest = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !rest.includes('/')) rest = `${OFFICIAL_REPO_PREFIX}/${rest}`;
  return [domain, rest];
}

function build(s: string, domain: string, path: string, tag?: string, digest?: string): Reference {
  if (domain !== '' && !DOMAIN_RE.test(domain)) throw bad(s, `invalid reference format: invalid domain ${JSON.stringify(domain)}`);
  checkPath(s, path);
  const full = domain ? `${domain}/${path}` : path;
  if (full.length > NAME_TOTAL_LENGTH_MAX) throw bad(s, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  const ref: Reference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

function checkCommon(s: string): void {
  if (s === '') throw bad(s, 'repository name must have at least one component');
  if (IDENTIFIER_RE.test(s)) throw bad(s, 'cannot specify 64-byte hexadecimal strings');
  if (/[\s]/.test(s)) throw bad(s, 'invalid reference format: contains whitespace');
}

/**
 * Parses a docker reference and normalises it: docker.io domain and
 * `library/` prefix added when missing. No default tag is added (see
 * withDefaultTag / parseDockerRef).
 */
export function parseNormalizedNamed(s: string): Reference {
  checkCommon(s);
  const [domain, remainder] = splitDockerDomain(s);
  const [path, tag, digest] = splitTagDigest(s, remainder);
  return build(s, domain, path, tag, digest);
}

/**
 * Parses without normalisation (docker's reference.Parse): a first
 * component that looks like a domain becomes the domain, otherwise domain is ''.
 */
export function parse(s: string): Reference {
  checkCommon(s);
  const [name, tag, digest] = splitTagDigest(s, s);
  const i = name.indexOf('/');
  if (i > 0 && (/[.:]/.test(name.slice(0, i)) || name.slice(0, i) === 'localhost')) {
    return build(s, name.slice(0, i), name.slice(i + 1), tag, digest);
  }
  return build(s, '', name, tag, digest);
}

/**
 * containerd's ParseDockerRef: normalised; a tag is dropped when a digest is
 * present; `latest` is added when neither is.
 */
export function parseDockerRef(s: string): Reference {
  const ref = parseNormalizedNamed(s);
  if (ref.digest !== undefined) return { domain: ref.domain, path: ref.path, digest: ref.digest };
  return withDefaultTag(ref);
}

/** `domain/path`. */
export function name(ref: Reference): string {
  return ref.domain ? `${ref.domain}/${ref.path}` : ref.path;
}

/** Canonical string: `domain/path[:tag][@digest]` (both kept when both are set). */
export function toString(ref: Reference): string {
  let s = name(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

function familiar(ref: Reference): Reference {
  if (ref.domain !== DEFAULT_DOMAIN) return ref;
  const parts = ref.path.split('/');
  const path = parts.length === 2 && parts[0] === OFFICIAL_REPO_PREFIX ? parts[1]! : ref.path;
  return { ...ref, domain: '', path };
}

/** The short name docker shows: `redis`, `user/app`, `quay.io/x/y`. */
export function familiarName(ref: Reference): string {
  return name(familiar(ref));
}

/** familiarName plus tag/digest. */
export function familiarString(ref: Reference): string {
  return toString(familiar(ref));
}

/** True when neither tag nor digest is set. */
export function isNameOnly(ref: Reference): boolean {
  return ref.tag === undefined && ref.digest === undefined;
}

/** Adds the `latest` tag when the reference has neither tag nor digest. */
export function withDefaultTag(ref: Reference): Reference {
  return isNameOnly(ref) ? { ...ref, tag: DEFAULT_TAG } : ref;
}

/** Replaces the tag (validated). */
export function withTag(ref: Reference, tag: string): Reference {
  checkTag(toString({ ...ref, tag }), tag);
  return { ...ref, tag };
}

/** Replaces the digest (validated). */
export function withDigest(ref: Reference, digest: string): Reference {
  checkDigest(toString({ ...ref, digest }), digest);
  return { ...ref, digest };
}

/** Name only (tag and digest removed). */
export function trimNamed(ref: Reference): Reference {
  return { domain: ref.domain, path: ref.path };
}

// ---------------------------------------------------------------------------
// containerd's reference.Spec

/** containerd's Spec: `locator` is host/path, `object` is tag, tag@digest or @digest. */
export interface Spec {
  locator: string;
  object: string;
}

/**
 * Parses a Spec (containerd's reference.Parse): requires a host; the object
 * starts at the first ':' or '@' after the host (a leading ':' is dropped).
 * The object's digest is not validated here (see specDigest).
 */
export function parseSpec(s: string): Spec {
  if (s.includes('://')) throw invalidArgument(`invalid reference ${JSON.stringify(s)}: must not contain a scheme`);
  if (/[\s?#]/.test(s)) throw invalidArgument(`invalid reference ${JSON.stringify(s)}: invalid character`);
  const slash = s.indexOf('/');
  const host = slash < 0 ? s : s.slice(0, slash);
  let path = slash < 0 ? '' : s.slice(slash);
  if (host === '') throw invalidArgument(`invalid reference ${JSON.stringify(s)}: hostname required`);
  if (host.includes('@')) throw invalidArgument(`invalid reference ${JSON.stringify(s)}: hostname must not contain '@'`);
  const colon = host.lastIndexOf(':');
  if (colon >= 0 && !host.startsWith('[') && !/^[0-9]*$/.test(host.slice(colon + 1))) {
    throw invalidArgument(`invalid reference ${JSON.stringify(s)}: invalid port ${JSON.stringify(host.slice(colon))} after host`);
  }
  let object = '';
  const m = /[:@]/.exec(path);
  if (m) {
    object = path.slice(m.index);
    if (object.startsWith(':')) object = object.slice(1);
    path = path.slice(0, m.index);
  }
  const locator = posix.join(host, path).replace(/\/+$/, '');
  return { locator, object };
}

/** The host part of the locator. */
export function specHostname(spec: Spec): string {
  const i = spec.locator.indexOf('/');
  return i < 0 ? spec.locator : spec.locator.slice(0, i);
}

/** The repository path (locator without host). */
export function specRepository(spec: Spec): string {
  const host = specHostname(spec);
  return spec.locator.slice(host.length + 1);
}

/** Splits an object into tag and digest ('' when absent). The tag keeps no '@'. */
export function splitObject(object: string): { tag: string; digest: string } {
  const i = object.indexOf('@');
  if (i < 0) return { tag: object, digest: '' };
  return { tag: object.slice(0, i), digest: object.slice(i + 1) };
}

/** The digest part of the object ('' when absent), unvalidated. */
export function specDigest(spec: Spec): string {
  return splitObject(spec.object).digest;
}

/** The Spec's normalised string. */
export function specString(spec: Spec): string {
  if (spec.object === '') return spec.locator;
  if (spec.object.startsWith('@')) return spec.locator + spec.object;
  return `${spec.locator}:${spec.object}`;
}
