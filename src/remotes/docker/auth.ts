/**
 * Registry authorization (containerd's docker authorizer, auth/ package).
 *
 * The flow: a request without credentials gets 401 with one or more
 * WWW-Authenticate challenges. For `Bearer realm=…,service=…,scope=…` a
 * token is fetched from the realm (anonymous GET; with credentials an
 * OAuth2 POST form, falling back to GET with Basic on 400/401/404/405 like
 * containerd) and the request is retried once with it. For `Basic` the
 * configured credentials are sent. Per host the scheme is remembered, so
 * later requests are authorized up front; bearer tokens are cached per
 * host + scope set until shortly before `expires_in` runs out.
 */
import type { Dispatcher } from 'undici';
import { undici } from './undici.js';
import { invalidArgument, unavailable, canceled } from '../../errdefs/index.js';
import { RegistryError, readCapped, redactUrl } from './errors.js';

export interface Credentials {
  /** Empty username with a password means: password is an identity/refresh token. */
  username: string;
  password: string;
}

/** Looks up credentials for a registry host ("host[:port]" as in the request URL). */
export type CredentialsFn = (host: string) => Credentials | undefined | Promise<Credentials | undefined>;

export interface Challenge {
  /** Lower-case scheme: "bearer", "basic", … */
  scheme: string;
  /** Lower-case parameter names; values unquoted. */
  params: Record<string, string>;
}

// --- WWW-Authenticate parsing (RFC 7235: 1#challenge, auth-params with token or quoted-string values)

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

function isTokenChar(c: string | undefined): boolean {
  return c !== undefined && TOKEN_CHAR.test(c);
}

/**
 * Parses one or more WWW-Authenticate header values. A value may hold
 * several challenges (`Bearer realm="x", scope="a b", Basic realm="y"`);
 * quoted values may contain commas and backslash escapes. Unknown junk is
 * skipped rather than failing. Order is kept.
 */
export function parseChallenges(values: string | string[] | undefined): Challenge[] {
  const list = values === undefined ? [] : Array.isArray(values) ? values : [values];
  const out: Challenge[] = [];
  for (const v of list) parseOne(v, out);
  return out;
}

function parseOne(s: string, out: Challenge[]): void {
  let i = 0;
  const n = s.length;
  const skipWs = () => { while (i < n && (s[i] === ' ' || s[i] === '\t')) i++; };
  const readToken = () => { const st = i; while (i < n && isTokenChar(s[i])) i++; return s.slice(st, i); };
  const readQuoted = () => {
    // at the opening quote
    i++;
    let v = '';
    while (i < n && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < n) i++;
      v += s[i];
      i++;
    }
    i++; // closing quote (or end)
    return v;
  };
  while (i < n) {
    skipWs();
    if (s[i] === ',') { i++; continue; }
    const scheme = readToken();
    if (!scheme) { i++; continue; } // junk character
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    // params: name = value, separated by commas; a token not followed by '=' starts the next challenge
    for (;;) {
      skipWs();
      while (s[i] === ',') { i++; skipWs(); }
      if (i >= n) break;
      const start = i;
      const key = readToken();
      if (!key) { i++; continue; }
      skipWs();
      if (s[i] !== '=') { i = start; break; } // next challenge's scheme
      i++;
      if (s[i] === '=') { // token68 padding ("abc==") — not an auth-param: skip it
        while (s[i] === '=') i++;
        continue;
      }
      skipWs();
      const value = s[i] === '"' ? readQuoted() : readToken();
      ch.params[key.toLowerCase()] = value;
    }
  }
}

// --- token fetching

export interface TokenResponse {
  token: string;
  /** Seconds; 60 when the server gave none (the spec's default). */
  expiresIn: number;
  refreshToken?: string;
}

interface TokenRequest {
  realm: string;
  service?: string;
  scopes: string[];
  creds?: Credentials;
  dispatcher: Dispatcher;
  headers: Record<string, string>;
  signal?: AbortSignal;
}

async function httpToken(method: 'GET' | 'POST', tr: TokenRequest): Promise<TokenResponse> {
  const url = new URL(tr.realm);
  const headers: Record<string, string> = { ...tr.headers, accept: 'application/json' };
  let body: string | undefined;
  if (method === 'GET') {
    if (tr.service) url.searchParams.append('service', tr.service);
    for (const s of tr.scopes) url.searchParams.append('scope', s);
    if (tr.creds && tr.creds.password) {
      headers.authorization = 'Basic ' + Buffer.from(`${tr.creds.username}:${tr.creds.password}`).toString('base64');
    }
  } else {
    const form = new URLSearchParams();
    if (tr.scopes.length) form.set('scope', tr.scopes.join(' '));
    if (tr.service) form.set('service', tr.service);
    form.set('client_id', 'dist');
    if (!tr.creds!.username) {
      form.set('grant_type', 'refresh_token');
      form.set('refresh_token', tr.creds!.password);
    } else {
      form.set('grant_type', 'password');
      form.set('username', tr.creds!.username);
      form.set('password', tr.creds!.password);
    }
    body = form.toString();
    headers['content-type'] = 'application/x-www-form-urlencoded; charset=utf-8';
  }
  let res: Dispatcher.ResponseData;
  try {
    res = await undici().request(url, { method, headers, body, dispatcher: tr.dispatcher, signal: tr.signal });
  } catch (err) {
    if (tr.signal?.aborted) throw canceled(`fetching token from ${redactUrl(tr.realm)}`, err);
    throw unavailable(`failed to fetch token from ${redactUrl(tr.realm)}: ${(err as Error).message}`, err);
  }
  if (res.statusCode < 200 || res.statusCode >= 300) {
    const b = await readCapped(res.body);
    throw new RegistryError({
      method, url: url.toString(), status: res.statusCode, body: b,
      context: `failed to fetch ${tr.creds ? '' : 'anonymous '}token from ${url.host}`,
    });
  }
  const text = Buffer.from(await readCapped(res.body, 1 << 20)).toString('utf8');
  let v: any;
  try {
    v = JSON.parse(text);
  } catch {
    throw invalidArgument(`token response from ${redactUrl(tr.realm)} is not JSON`);
  }
  const token = (typeof v.access_token === 'string' && v.access_token) || (typeof v.token === 'string' && v.token) || '';
  if (!token) throw invalidArgument(`authorization server ${url.host} did not include a token in the response`);
  const expiresIn = typeof v.expires_in === 'number' && v.expires_in > 0 ? v.expires_in : 60;
  return { token, expiresIn, refreshToken: typeof v.refresh_token === 'string' ? v.refresh_token : undefined };
}

/**
 * Fetches a bearer token: OAuth2 POST when a secret is configured (falling
 * back to GET + Basic on 400/401/404/405), anonymous GET otherwise.
 */
export async function fetchToken(tr: TokenRequest): Promise<TokenResponse> {
  if (tr.creds && tr.creds.password) {
    try {
      return await httpToken('POST', tr);
    } catch (err) {
      if (err instanceof RegistryError && [400, 401, 404, 405].includes(err.status) && (err.status !== 405 || tr.creds.username)) {
        return httpToken('GET', tr);
      }
      throw err;
    }
  }
  return httpToken('GET', tr);
}

// --- the authorizer

interface CachedToken {
  value: Promise<string>;
  /** ms epoch after which the token is not used. */
  expiresAt: number;
}

type Handler =
  | { scheme: 'basic'; header: string }
  | {
    scheme: 'bearer';
    realm: string;
    service?: string;
    creds?: Credentials;
    dispatcher: Dispatcher;
    tokens: Map<string, CachedToken>;
  };

export interface AuthorizerOptions {
  credentials?: CredentialsFn;
  /** Headers sent to token endpoints (User-Agent). */
  headers?: Record<string, string>;
  /** Fraction of expires_in after which a token is refreshed (default 0.9). */
  refreshFraction?: number;
}

/** Statistics, for tests and debugging. */
export interface AuthorizerStats {
  tokenFetches: number;
}

export class Authorizer {
  private readonly handlers = new Map<string, Handler>();
  private readonly opts: AuthorizerOptions;
  readonly stats: AuthorizerStats = { tokenFetches: 0 };

  constructor(opts: AuthorizerOptions = {}) {
    this.opts = opts;
  }

  /** The Authorization header value for a request to host with these scopes (undefined: none known yet). */
  async authorize(host: string, scopes: string[], signal?: AbortSignal): Promise<string | undefined> {
    const h = this.handlers.get(host);
    if (!h) return undefined;
    if (h.scheme === 'basic') return h.header;
    const key = scopeKey(scopes);
    const now = Date.now();
    let cached = h.tokens.get(key);
    if (!cached || cached.expiresAt <= now) {
      const entry: CachedToken = { value: Promise.resolve(''), expiresAt: Number.POSITIVE_INFINITY };
      // shared by concurrent callers, so not tied to one caller's signal (agent timeouts bound it)
      entry.value = (async () => {
        this.stats.tokenFetches++;
        const t = await fetchToken({
          realm: h.realm, service: h.service, scopes: normalizeScopes(scopes), creds: h.creds,
          dispatcher: h.dispatcher, headers: this.opts.headers ?? {},
        });
        entry.expiresAt = Date.now() + t.expiresIn * 1000 * (this.opts.refreshFraction ?? 0.9);
        return t.token;
      })();
      // a failed fetch is not cached
      entry.value.catch(() => { if (h.tokens.get(key) === entry) h.tokens.delete(key); });
      h.tokens.set(key, entry);
      cached = entry;
    }
    return `Bearer ${await withSignal(cached.value, signal)}`;
  }

  /**
   * Handles a 401: sets up (or refreshes) the host's handler from the
   * challenges. Returns the scopes to retry with, or undefined when the
   * challenge cannot be answered (no supported scheme, no credentials for
   * Basic). `sent` is the Authorization header the failed request carried.
   */
  async handleChallenge(
    host: string, wwwAuthenticate: string | string[] | undefined, scopes: string[],
    sent: string | undefined, dispatcher: Dispatcher,
  ): Promise<string[] | undefined> {
    const challenges = parseChallenges(wwwAuthenticate);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      const realm = bearer.params.realm;
      if (!realm) throw invalidArgument(`registry ${host}: bearer challenge without realm`);
      let realmUrl: URL;
      try { realmUrl = new URL(realm); } catch { throw invalidArgument(`registry ${host}: invalid token realm ${JSON.stringify(realm)}`); }
      if (realmUrl.protocol !== 'https:' && realmUrl.protocol !== 'http:') throw invalidArgument(`registry ${host}: unsupported token realm ${realm}`);
      const retryScopes = normalizeScopes([...scopes, ...(bearer.params.scope ? bearer.params.scope.split(' ') : [])]);
      const prev = this.handlers.get(host);
      if (prev && prev.scheme === 'bearer' && prev.realm === realmUrl.toString() && prev.service === bearer.params.service) {
        // token rejected (expired or too narrow): drop the cached ones for these scopes
        if (sent) {
          prev.tokens.delete(scopeKey(scopes));
          prev.tokens.delete(scopeKey(retryScopes));
        }
        return retryScopes;
      }
      const creds = await this.opts.credentials?.(host);
      this.handlers.set(host, {
        scheme: 'bearer', realm: realmUrl.toString(), service: bearer.params.service, creds,
        dispatcher, tokens: new Map(),
      });
      return retryScopes;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      const creds = await this.opts.credentials?.(host);
      if (!creds || !creds.username || !creds.password) return undefined;
      const header = 'Basic ' + Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
      if (sent === header) return undefined; // the same credentials were just refused
      this.handlers.set(host, { scheme: 'basic', header });
      return normalizeScopes(scopes);
    }
    return undefined;
  }

  /** Forgets everything known about host (scheme, tokens). */
  forget(host: string): void {
    this.handlers.delete(host);
  }
}

/** Waits for p unless signal aborts first (Canceled). */
function withSignal<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(canceled('waiting for a token: canceled', signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(canceled('waiting for a token: canceled', signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Sorted, de-duplicated scopes. */
export function normalizeScopes(scopes: string[]): string[] {
  return [...new Set(scopes.filter((s) => s !== ''))].sort();
}

function scopeKey(scopes: string[]): string {
  return normalizeScopes(scopes).join(' ');
}

/** `repository:<path>:pull` or `…:pull,push`. */
export function repositoryScope(repository: string, push: boolean): string {
  return `repository:${repository}:${push ? 'pull,push' : 'pull'}`;
}
