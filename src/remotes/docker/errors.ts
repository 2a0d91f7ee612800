/**
 * Registry HTTP failures: one typed error carrying method, URL, status and a
 * capped body, with the distribution spec's `errors[]` parsed when present.
 *
 * Class mapping (errdefs):
 *   404                       → NotFound
 *   401, 403                  → FailedPrecondition (dist has no Unauthenticated
 *                               class; valid credentials are a precondition of
 *                               the call; test with isUnauthorized())
 *   408, 429, 5xx             → Unavailable (the transport retries these first)
 *   400, 411, 413, 414, 416, 422 → InvalidArgument
 *   405, 501                  → NotImplemented (e.g. registry without push/delete)
 *   409, 412                  → FailedPrecondition
 *   anything else             → Unknown
 */
import type { Readable } from 'node:stream';
import { Code, DistError } from '../../errdefs/index.js';

/** The largest error body kept (and read) from a response. */
export const MAX_ERROR_BODY = 64 * 1024;

/** One entry of the distribution spec's error body. */
export interface RegistryErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

export function codeForStatus(status: number): Code {
  if (status === 404) return Code.NotFound;
  if (status === 401 || status === 403) return Code.FailedPrecondition;
  if (status === 408 || status === 429 || (status >= 500 && status !== 501 && status < 600)) return Code.Unavailable;
  if (status === 405 || status === 501) return Code.NotImplemented;
  if (status === 409 || status === 412) return Code.FailedPrecondition;
  if ([400, 411, 413, 414, 416, 422].includes(status)) return Code.InvalidArgument;
  return Code.Unknown;
}

export interface RegistryErrorInit {
  method: string;
  url: string;
  status: number;
  statusText?: string;
  body?: Uint8Array;
  /** Prefix for the message (e.g. "pull access denied for 127.0.0.1:5000"). */
  context?: string;
  /** Extra server text (e.g. the auth challenge's error="…"), shown when errors[] is empty. */
  serverMessage?: string;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  408: 'Request Timeout', 409: 'Conflict', 412: 'Precondition Failed', 413: 'Payload Too Large',
  416: 'Range Not Satisfiable', 429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

export class RegistryError extends DistError {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  /** At most MAX_ERROR_BODY bytes of the response body. */
  readonly body: Uint8Array;
  /** The parsed `errors[]` (empty when the body was not the spec's JSON). */
  readonly errors: RegistryErrorEntry[];

  constructor(init: RegistryErrorInit) {
    const body = init.body ?? new Uint8Array();
    const errors = parseErrorBody(body);
    const text = init.statusText || STATUS_TEXT[init.status] || '';
    let detail = `${init.method} ${redactUrl(init.url)}: unexpected status ${init.status}${text ? ' ' + text : ''}`;
    if (errors.length) {
      detail += ': ' + errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join('; ');
    } else if (init.serverMessage) {
      detail += `: server message: ${init.serverMessage}`;
    }
    if (init.context) detail = `${init.context}: ${detail}`;
    super(codeForStatus(init.status), detail);
    this.name = 'RegistryError';
    this.method = init.method;
    this.url = init.url;
    this.status = init.status;
    this.body = body;
    this.errors = errors;
  }
}

/** Parses `{"errors":[{"code":…,"message":…,"detail":…}]}`; [] otherwise. */
export function parseErrorBody(body: Uint8Array): RegistryErrorEntry[] {
  if (!body.length) return [];
  try {
    const v = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
    if (!v || !Array.isArray(v.errors)) return [];
    return v.errors
      .filter((e: any) => e && typeof e.code === 'string')
      .map((e: any) => ({ code: e.code, message: typeof e.message === 'string' ? e.message : undefined, detail: e.detail }));
  } catch {
    return [];
  }
}

/** Reads at most `max` bytes of a body, then destroys it. Never throws. */
export async function readCapped(body: Readable | undefined, max = MAX_ERROR_BODY): Promise<Uint8Array> {
  if (!body) return new Uint8Array();
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      const take = Math.min(b.length, max - n);
      chunks.push(b.subarray(0, take));
      n += take;
      if (n >= max) break;
    }
  } catch {
    // the status is the error; a broken body adds nothing
  } finally {
    dropBody(body);
  }
  return Buffer.concat(chunks);
}

/**
 * Destroys a response body we give up on. undici reports that as an
 * 'error' (aborted) event; the no-op listener keeps it from escaping.
 */
export function dropBody(body: Readable | undefined): void {
  if (!body || body.destroyed) return;
  body.on('error', () => undefined);
  body.destroy();
}

/** True for a RegistryError (anywhere in the cause chain) with status 401 or 403. */
export function isUnauthorized(err: unknown): boolean {
  const e = findRegistryError(err);
  return e !== undefined && (e.status === 401 || e.status === 403);
}

/** The first RegistryError in a cause chain. */
export function findRegistryError(err: unknown): RegistryError | undefined {
  for (let e: any = err, depth = 0; e != null && depth < 16; e = e.cause, depth++) {
    if (e instanceof RegistryError) return e;
  }
  return undefined;
}

/** Drops userinfo and query secrets-looking parts from a URL for messages. */
export function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    url.username = '';
    url.password = '';
    // upload locations carry opaque state tokens; keep only their presence
    for (const k of ['_state', 'X-Amz-Signature', 'X-Amz-Credential', 'sig', 'token']) {
      if (url.searchParams.has(k)) url.searchParams.set(k, '…');
    }
    return url.toString().replace(/%E2%80%A6/g, '…');
  } catch {
    return u;
  }
}
