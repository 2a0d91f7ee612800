/**
 * platforms: parsing, formatting, normalising and matching OCI platforms
 * (containerd's platforms package).
 *
 * A specifier is `os`, `arch`, `os/arch` or `os/arch/variant`; components
 * match [A-Za-z0-9_-]+ and are normalised (x86_64 → amd64, aarch64 → arm64,
 * armhf → arm/v7, macos → darwin…). A lone component is an OS when it is a
 * known OS (the host architecture is filled in), else an architecture (the
 * host OS is filled in).
 *
 * Matching compares the normalised os, architecture and variant only.
 * `only(p)` also accepts what p can run (amd64/v3 → v2, v1 and 386; arm/v7 →
 * v6, v5; arm64 → arm/v8…v5), ranking p itself first; `less` orders by that
 * preference so the best match sorts first.
 */
import { invalidArgument } from '../errdefs/index.js';
import type { Platform } from '../content/types.js';
import { isKnownArch, isKnownOS, normalizeArch, normalizeOS } from './database.js';
import { cpuVariant, hostArch, hostOS } from './host.js';

export type { Platform } from '../content/types.js';
export { normalizeArch, normalizeOS, isKnownArch, isKnownOS } from './database.js';
export { cpuVariant, hostArch, hostOS } from './host.js';

export interface Matcher {
  match(p: Platform): boolean;
}

/** A Matcher that also ranks platforms: less(a, b) when a is preferred over b. */
export interface MatchComparer extends Matcher {
  less(a: Platform, b: Platform): boolean;
}

const SPECIFIER_COMPONENT = /^[A-Za-z0-9_-]+$/;

/** Parses a specifier; InvalidArgument when malformed or unknown. */
export function parse(specifier: string): Platform {
  if (specifier.includes('*')) throw invalidArgument(`${JSON.stringify(specifier)}: wildcards not yet supported`);
  const parts = specifier.split('/');
  for (const part of parts) {
    if (!SPECIFIER_COMPONENT.test(part)) {
      throw invalidArgument(`${JSON.stringify(part)} is an invalid component of ${JSON.stringify(specifier)}: platform specifier component must match ${JSON.stringify(SPECIFIER_COMPONENT.source)}`);
    }
  }
  switch (parts.length) {
    case 1: {
      const os = normalizeOS(parts[0]);
      if (isKnownOS(os)) {
        const p: Platform = { os, architecture: hostArch() };
        if (p.architecture === 'arm' && cpuVariant() !== 'v7') setVariant(p, cpuVariant());
        return p;
      }
      let [architecture, variant] = normalizeArch(parts[0], '');
      if (architecture === 'arm' && variant === 'v7') variant = '';
      if (isKnownArch(architecture)) return withVariant({ os: hostOS(), architecture }, variant);
      throw invalidArgument(`${JSON.stringify(specifier)}: unknown operating system or architecture`);
    }
    case 2: {
      let [architecture, variant] = normalizeArch(parts[1], '');
      if (architecture === 'arm' && variant === 'v7') variant = '';
      return withVariant({ os: normalizeOS(parts[0]), architecture }, variant);
    }
    case 3: {
      let [architecture, variant] = normalizeArch(parts[1], parts[2]);
      if (architecture === 'arm64' && variant === '') variant = 'v8';
      return withVariant({ os: normalizeOS(parts[0]), architecture }, variant);
    }
  }
  throw invalidArgument(`${JSON.stringify(specifier)}: cannot parse platform specifier`);
}

function setVariant(p: Platform, v: string): void {
  if (v) p.variant = v;
}

function withVariant(p: Platform, v: string): Platform {
  setVariant(p, v);
  return p;
}

/** `os/arch[/variant]`; "unknown" when os is empty. */
export function format(p: Platform): string {
  if (!p.os) return 'unknown';
  return [p.os, p.architecture, p.variant].filter((s) => s).join('/');
}

/** Canonical os/architecture/variant (other fields kept). Empty os becomes the host OS. */
export function normalize(p: Platform): Platform {
  const out: Platform = { ...p, os: normalizeOS(p.os ?? '') };
  const [architecture, variant] = normalizeArch(p.architecture ?? '', p.variant ?? '');
  out.architecture = architecture;
  if (variant) out.variant = variant;
  else delete out.variant;
  return out;
}

/** The host's platform (containerd's DefaultSpec): variant only on ARM. */
export function defaultPlatform(): Platform {
  return withVariant({ os: hostOS(), architecture: hostArch() }, cpuVariant());
}

export function defaultString(): string {
  return format(defaultPlatform());
}

/** Matches what the host can run, preferring its own platform (containerd's Default). */
export function defaultMatcher(): MatchComparer {
  return only(defaultPlatform());
}

/** Exact matcher on the normalised os/architecture/variant. */
export function newMatcher(p: Platform): Matcher & { readonly platform: Platform; toString(): string } {
  const want = normalize(p);
  return {
    platform: want,
    match(q: Platform): boolean {
      const n = normalize(q);
      return n.os === want.os && n.architecture === want.architecture && (n.variant ?? '') === (want.variant ?? '');
    },
    toString: () => format(want),
  };
}

/** The platforms p can run, best first (containerd's platformVector). */
export function platformVector(p: Platform): Platform[] {
  const base = (architecture: string, variant?: string): Platform => {
    const q: Platform = { os: p.os, architecture };
    if (p['os.version'] !== undefined) q['os.version'] = p['os.version'];
    if (p['os.features'] !== undefined) q['os.features'] = p['os.features'];
    if (variant) q.variant = variant;
    return q;
  };
  const vector: Platform[] = [p];
  const level = (v: string | undefined) => (/^v?\d+$/.test(v ?? '') ? parseInt((v ?? '').replace(/^v/, ''), 10) : NaN);
  switch (p.architecture) {
    case 'amd64': {
      const n = level(p.variant);
      if (n > 1) for (let i = n - 1; i >= 1; i--) vector.push(base('amd64', `v${i}`));
      vector.push(base('386'));
      break;
    }
    case 'arm': {
      const n = level(p.variant);
      if (n > 5) for (let i = n - 1; i >= 5; i--) vector.push(base('arm', `v${i}`));
      break;
    }
    case 'arm64':
      vector.push(...platformVector(base('arm', p.variant || 'v8')));
      break;
  }
  return vector;
}

/**
 * Matches p and every platform p can run, preferring p (containerd's Only):
 * amd64 also matches 386; arm/v7 matches v6 and v5; arm64 matches arm/v8…v5.
 */
export function only(p: Platform): MatchComparer {
  return ordered(...platformVector(normalize(p)));
}

/** Matches p only (after normalisation): arm/v7 won't match arm/v6, amd64 won't match 386. */
export function onlyStrict(p: Platform): MatchComparer {
  return ordered(normalize(p));
}

/** Matches any of ps; earlier entries are preferred. */
export function ordered(...ps: Platform[]): MatchComparer {
  const matchers = ps.map(newMatcher);
  return {
    match: (p) => matchers.some((m) => m.match(p)),
    less(a, b) {
      for (const m of matchers) {
        const am = m.match(a);
        const bm = m.match(b);
        if (am && !bm) return true;
        if (am || bm) return false;
      }
      return false;
    },
  };
}

/** Matches any of ps, with no preference among them (matches sort before non-matches). */
export function any(...ps: Platform[]): MatchComparer {
  const matchers = ps.map(newMatcher);
  return {
    match: (p) => matchers.some((m) => m.match(p)),
    less(a, b) {
      let am = false;
      let bm = false;
      for (const m of matchers) {
        if (!am && m.match(a)) am = true;
        if (!bm && m.match(b)) bm = true;
        if (am && bm) return false;
      }
      return am && !bm;
    },
  };
}

/** Matches every platform, no ordering. */
export const all: MatchComparer = {
  match: () => true,
  less: () => false,
};

/**
 * Sorts descriptors-with-platform by preference (stable; entries without a
 * platform go last), as containerd's LimitManifests does.
 */
export function sortByPreference<T extends { platform?: Platform }>(items: T[], m: MatchComparer): T[] {
  return items
    .map((item, i) => ({ item, i }))
    .sort((x, y) => {
      const a = x.item.platform;
      const b = y.item.platform;
      if (!a && !b) return x.i - y.i;
      if (!a) return 1;
      if (!b) return -1;
      if (m.less(a, b)) return -1;
      if (m.less(b, a)) return 1;
      return x.i - y.i;
    })
    .map((e) => e.item);
}
