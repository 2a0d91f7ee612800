/**
 * The HTTP core shared by resolver, fetcher and pusher: one `send()` that
 * adds headers and authorization, answers auth challenges (one retry),
 * retries transient failures with backoff, and optionally follows redirects.
 *
 * Retried (only when the request body can be replayed: none or a buffer):
 *   - connection errors (reset, refused, timeouts, DNS hiccups),
 *   - 408, 429, 500, 502, 503, 504 — honouring Retry-After (seconds or an
 *     HTTP date), capped at retry.maxRetryAfterMs.
 * Redirects (GET/HEAD only, at most 10) never carry the registry's
 * Authorization to another origin.
 *
 * The returned response's body must be consumed or destroyed by the caller.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { undici } from './undici.js';
import type { IncomingHttpHeaders } from 'node:http';
import { canceled, deadlineExceeded, unavailable, invalidArgument, withHint } from '../../errdefs/index.js';
import { parseChallenges, type Authorizer } from './auth.js';
import type { RegistryHost } from './hosts.js';
import { RegistryError, dropBody, readCapped, redactUrl } from './errors.js';

export interface RetryOptions {
  /** Retries after the first attempt (default 4). */
  retries?: number;
  /** First backoff delay (default 250 ms), doubled per retry with jitter. */
  baseDelayMs?: number;
  /** Backoff cap (default 8 s). */
  maxDelayMs?: number;
  /** Longest Retry-After honoured (default 30 s); longer values wait this long. */
  maxRetryAfterMs?: number;
}

export interface SendRequest {
  method: string;
  host: RegistryHost;
  /** Absolute path (with query) on host. */
  path?: string;
  /** Full URL instead of host+path (upload locations); authorized only on host's origin. */
  url?: string;
  headers?: Record<string, string>;
  /** A buffer is replayable (retries possible); a stream is sent once. */
  body?: Uint8Array | Readable;
  /** Token scopes for this request. */
  scopes: string[];
  followRedirects?: boolean;
  /** Disable retries even for a replayable request. */
  noRetry?: boolean;
  signal?: AbortSignal;
}

export interface SendResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable & { dump?(opts?: { limit?: number }): Promise<void> };
  /** The final URL (after redirects). */
  url: string;
  method: string;
  /** Whether the request carried credentials (an Authorization header). */
  authorized?: boolean;
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CLOSED',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/** What a TLS client sees when the server answers its hello in plain HTTP. */
const PLAIN_HTTP_ANSWER = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);

function errCode(err: unknown): string | undefined {
  for (let e: any = err, d = 0; e && d < 5; e = e.cause, d++) if (typeof e.code === 'string') return e.code;
  return undefined;
}

export function isTransientNetworkError(err: unknown): boolean {
  const c = errCode(err);
  return c !== undefined && TRANSIENT_CODES.has(c);
}

/** Wraps a transport-level error (connect, socket, timeout) into an errdefs class. */
export function transportError(what: string, err: unknown, signal?: AbortSignal): Error {
  if (signal?.aborted) return canceled(`${what}: canceled`, signal.reason ?? err);
  const c = errCode(err);
  const msg = `${what}: ${(err as Error)?.message ?? String(err)}${c && !String((err as Error)?.message).includes(c) ? ` (${c})` : ''}`;
  if (c && TIMEOUT_CODES.has(c)) return deadlineExceeded(msg, err);
  return unavailable(msg, err);
}

/** Milliseconds from a Retry-After value (seconds or HTTP date); undefined if absent/invalid. */
export function parseRetryAfter(v: string | string[] | undefined, now = Date.now()): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  if (/^\s*\d+\s*$/.test(s)) return parseInt(s, 10) * 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

export function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Drains (or drops) a response body we don't need. */
export async function discard(res: SendResponse): Promise<void> {
  try {
    if (typeof res.body.dump === 'function') await res.body.dump({ limit: 64 * 1024 });
    else dropBody(res.body);
  } catch {
    dropBody(res.body);
  }
}

export interface TransportOptions {
  authorizer: Authorizer;
  headers?: Record<string, string>;
  retry?: RetryOptions;
}

export class Transport {
  readonly authorizer: Authorizer;
  private readonly headers: Record<string, string>;
  private readonly retry: Required<RetryOptions>;

  constructor(opts: TransportOptions) {
    this.authorizer = opts.authorizer;
    this.headers = opts.headers ?? {};
    this.retry = {
      retries: opts.retry?.retries ?? 4,
      baseDelayMs: opts.retry?.baseDelayMs ?? 250,
      maxDelayMs: opts.retry?.maxDelayMs ?? 8_000,
      maxRetryAfterMs: opts.retry?.maxRetryAfterMs ?? 30_000,
    };
  }

  private backoff(attempt: number): number {
    const d = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** attempt);
    return d / 2 + Math.random() * (d / 2);
  }

  private async wait(ms: number, signal?: AbortSignal, what = 'retry'): Promise<void> {
    try {
      await sleep(ms, undefined, { signal });
    } catch (err) {
      throw canceled(`${what}: canceled`, signal?.reason ?? err);
    }
  }

  async send(req: SendRequest): Promise<SendResponse> {
    const { host, signal } = req;
    let origin = `${host.scheme}://${host.host}`;
    let url = req.url ?? `${origin}${req.path ?? '/'}`;
    let method = req.method;
    let body = req.body;
    let scopes = req.scopes;
    const replayable = (b: unknown) => b === undefined || b instanceof Uint8Array;
    let attempt = 0;
    let authRetried = false;
    let redirects = 0;
    let crossOrigin = new URL(url).origin !== new URL(origin).origin;

    for (;;) {
      if (signal?.aborted) throw canceled(`${method} ${redactUrl(url)}: canceled`, signal.reason);
      const headers: Record<string, string> = { ...this.headers };
      for (const [k, v] of Object.entries(host.header)) headers[k.toLowerCase()] = v.join(', ');
      for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
      const authHost = new URL(url).host;
      if (!crossOrigin) {
        const a = await this.authorizer.authorize(authHost, scopes, signal);
        if (a) headers.authorization = a;
      }
      if (body instanceof Uint8Array) headers['content-length'] = String(body.byteLength);
      const canRetry = !req.noRetry && replayable(body);

      let res: Dispatcher.ResponseData;
      try {
        res = await undici().request(url, {
          method: method as Dispatcher.HttpMethod,
          headers,
          body: body as any,
          dispatcher: host.dispatcher,
          signal,
        });
      } catch (err) {
        if (signal?.aborted) throw canceled(`${method} ${redactUrl(url)}: canceled`, signal.reason ?? err);
        const u = new URL(url);
        if (host.httpFallback && PLAIN_HTTP_ANSWER.has(errCode(err) ?? '') && replayable(body) && u.protocol === 'https:' && u.host === host.host) {
          // a loopback registry that speaks plain HTTP: it and this request go on over http
          host.scheme = 'http';
          host.dispatcher = host.httpFallback;
          u.protocol = 'http:';
          url = u.toString();
          origin = `http://${host.host}`;
          continue;
        }
        if (canRetry && attempt < this.retry.retries && isTransientNetworkError(err)) {
          await this.wait(this.backoff(attempt++), signal, `${method} ${redactUrl(url)}`);
          continue;
        }
        throw transportError(`${method} ${redactUrl(url)}`, err, signal);
      }
      const out: SendResponse = { status: res.statusCode, headers: res.headers, body: res.body as any, url, method, authorized: !!headers.authorization };

      if (out.status === 401 && !crossOrigin && !authRetried && canRetry) {
        const retryScopes = await this.authorizer.handleChallenge(
          authHost, res.headers['www-authenticate'], scopes, headers.authorization, host.dispatcher,
        );
        if (retryScopes) {
          await discard(out);
          authRetried = true;
          scopes = retryScopes;
          continue;
        }
      }
      if (out.status === 405 && method === 'HEAD' && url.includes('/manifests/')) {
        // some registries refuse HEAD on manifests
        await discard(out);
        method = 'GET';
        continue;
      }
      if (RETRY_STATUS.has(out.status) && canRetry && attempt < this.retry.retries) {
        const ra = parseRetryAfter(res.headers['retry-after']);
        const delay = ra !== undefined ? Math.min(ra, this.retry.maxRetryAfterMs) : this.backoff(attempt);
        attempt++;
        await discard(out);
        await this.wait(delay, signal, `${method} ${redactUrl(url)}`);
        continue;
      }
      if (req.followRedirects && [301, 302, 303, 307, 308].includes(out.status) && (method === 'GET' || method === 'HEAD')) {
        const loc = header(res.headers, 'location');
        if (loc) {
          await discard(out);
          if (++redirects > 10) throw invalidArgument(`${req.method} ${redactUrl(req.url ?? origin + (req.path ?? ''))}: stopped after 10 redirects`);
          const next = new URL(loc, url);
          if (next.protocol !== 'http:' && next.protocol !== 'https:') throw invalidArgument(`redirect to unsupported URL ${redactUrl(next.toString())}`);
          url = next.toString();
          crossOrigin = crossOrigin || next.origin !== new URL(origin).origin;
          continue;
        }
      }
      return out;
    }
  }
}

/** Builds a RegistryError from a response (reads ≤ 64 KiB of its body). */
export async function responseError(res: SendResponse, context?: string): Promise<RegistryError> {
  const body = await readCapped(res.body);
  let ctx = context;
  if (!ctx && (res.status === 401 || res.status === 403)) ctx = `authorization failed for registry ${new URL(res.url).host}`;
  let serverMessage: string | undefined;
  if (res.status === 401 || res.status === 403) {
    // HEAD answers have no body: the challenge's error is all the server says
    const e = parseChallenges(res.headers['www-authenticate']).find((c) => c.params.error)?.params.error;
    if (e) serverMessage = e;
  }
  const err = new RegistryError({ method: res.method, url: res.url, status: res.status, body, context: ctx, serverMessage });
  if (res.status === 401 || res.status === 403) {
    withHint(err, !res.authorized
      ? 'the registry wants credentials: --user USER:PASS, or an entry in ~/.docker/config.json'
      : res.status === 401
        ? 'the registry refused these credentials: check --user or the entry in ~/.docker/config.json'
        : 'these credentials may not do this on that repository');
  }
  return err;
}
