/**
 * digest: OCI content digests ("<alg>:<hex>"). sha256 and sha512 are
 * supported (the algorithms the OCI image spec registers).
 */
import { createHash, type Hash } from 'node:crypto';
import { invalidArgument } from '../errdefs/index.js';

const HEX_LEN: Record<string, number> = { sha256: 64, sha512: 128 };
export const Canonical = 'sha256';

export interface Parsed { algorithm: string; hex: string }

/** Validates and splits a digest; InvalidArgument with the reason otherwise. */
export function parse(d: string): Parsed {
  const i = d.indexOf(':');
  if (i <= 0) throw invalidArgument(`invalid digest ${JSON.stringify(d)}: missing algorithm`);
  const algorithm = d.slice(0, i);
  const hex = d.slice(i + 1);
  const len = HEX_LEN[algorithm];
  if (len === undefined) throw invalidArgument(`invalid digest ${JSON.stringify(d)}: unsupported digest algorithm`);
  if (hex.length !== len || !/^[a-f0-9]+$/.test(hex)) throw invalidArgument(`invalid digest ${JSON.stringify(d)}: invalid checksum digest format`);
  return { algorithm, hex };
}

export function validate(d: string): string {
  parse(d);
  return d;
}

export function isValid(d: string): boolean {
  try { parse(d); return true; } catch { return false; }
}

export function hasher(algorithm = Canonical): Hash {
  if (!(algorithm in HEX_LEN)) throw invalidArgument(`unsupported digest algorithm ${algorithm}`);
  return createHash(algorithm);
}

/** Digest of an in-memory buffer or string. */
export function fromBytes(data: Uint8Array | string, algorithm = Canonical): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** A short form for display: first 12 hex chars. */
export function short(d: string): string {
  const i = d.indexOf(':');
  return i < 0 ? d.slice(0, 12) : d.slice(i + 1, i + 13);
}
