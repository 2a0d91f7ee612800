/**
 * identifiers: containerd's rule for namespace, lease, snapshot-free names:
 * `^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`, at most 76 characters.
 */
import { invalidArgument } from '../errdefs/index.js';

export const MAX_LENGTH = 76;
const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$/;

/** Throws InvalidArgument unless `s` is a valid identifier. */
export function validate(s: string): void {
  if (s === '') throw invalidArgument('identifier must not be empty');
  if (s.length > MAX_LENGTH) throw invalidArgument(`identifier ${JSON.stringify(s)} greater than maximum length (${MAX_LENGTH} characters)`);
  if (!IDENTIFIER.test(s)) throw invalidArgument(`identifier ${JSON.stringify(s)} must match ${IDENTIFIER.source}`);
}

export function isValid(s: string): boolean {
  return s !== '' && s.length <= MAX_LENGTH && IDENTIFIER.test(s);
}
