/**
 * A test token server for docker-registry's `auth: token:` mode: an RSA key
 * and self-signed certificate made with openssl (the registry trusts the
 * certificate through `rootcertbundle`), RS256 JWTs signed with node:crypto
 * and carrying the certificate in the `x5c` header.
 *
 * GET /token?service=…&scope=…(&scope=…) with optional Basic credentials,
 * and POST /token (OAuth2 password / refresh_token form) when allowPost.
 * A policy decides which actions each (user, repository) gets.
 */
import { createServer, type Server, type IncomingMessage } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { createPrivateKey, sign, randomUUID, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

const run = promisify(execFile);

export interface TokenScope { type: string; name: string; actions: string[] }

/** user is undefined for anonymous requests. Returns the granted actions. */
export type TokenPolicy = (user: string | undefined, scope: TokenScope) => string[];

export interface TokenServerOptions {
  dir: string;
  users?: Record<string, string>;
  policy?: TokenPolicy;
  service?: string;
  issuer?: string;
  expiresIn?: number;
  /** Serve POST (OAuth2 form); otherwise POST gets 404 and clients fall back to GET. */
  allowPost?: boolean;
}

export interface TokenRequestLog { method: string; user?: string; scopes: string[]; status: number }

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate file for the registry's rootcertbundle. */
  certFile: string;
  requests: TokenRequestLog[];
  stop(): Promise<void>;
}

/** Default policy: anonymous may pull repositories under "public/"; known users get what they ask. */
export const defaultPolicy: TokenPolicy = (user, scope) => {
  if (scope.type !== 'repository') return [];
  if (user) return scope.actions;
  return scope.name.startsWith('public/') ? scope.actions.filter((a) => a === 'pull') : [];
};

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

export function parseScope(s: string): TokenScope | undefined {
  // repository:<name>:<actions>; names may not contain ':' (ports are not part of repo names)
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return { type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',').filter(Boolean) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const c of req) s += c;
  return s;
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const keyFile = join(opts.dir, 'token.key');
  const certFile = join(opts.dir, 'token.crt');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '2', '-subj', '/CN=dist-test-token-issuer']);
  const key: KeyObject = createPrivateKey(await readFile(keyFile));
  const certPem = await readFile(certFile, 'utf8');
  const certDerB64 = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  const service = opts.service ?? 'dist-test-registry';
  const issuer = opts.issuer ?? 'dist-test-issuer';
  const policy = opts.policy ?? defaultPolicy;
  const users = opts.users ?? {};
  const requests: TokenRequestLog[] = [];

  const issue = (user: string | undefined, scopes: string[]) => {
    const access = scopes.map(parseScope).filter((s): s is TokenScope => !!s)
      .map((s) => ({ type: s.type, name: s.name, actions: policy(user, s) }));
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDerB64] };
    const claims = {
      iss: issuer, sub: user ?? '', aud: service, exp: now + (opts.expiresIn ?? 300), nbf: now - 10, iat: now,
      jti: randomUUID(), access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = sign('RSA-SHA256', Buffer.from(input), key);
    return `${input}.${b64url(sig)}`;
  };

  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body: unknown, log: Omit<TokenRequestLog, 'status'>) => {
      requests.push({ ...log, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token') return send(404, { error: 'not found' }, { method: req.method!, scopes: [] });
    let user: string | undefined;
    let scopes: string[];
    if (req.method === 'GET') {
      scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      const auth = req.headers.authorization;
      if (auth) {
        const m = /^Basic (.+)$/i.exec(auth);
        const dec = m ? Buffer.from(m[1]!, 'base64').toString() : '';
        const i = dec.indexOf(':');
        const u = dec.slice(0, i);
        if (i < 0 || users[u] === undefined || users[u] !== dec.slice(i + 1)) {
          return send(401, { details: 'invalid credentials' }, { method: 'GET', user: u, scopes });
        }
        user = u;
      }
    } else if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      if (!opts.allowPost) return send(404, { error: 'POST not supported' }, { method: 'POST', scopes });
      const u = form.get('username') ?? '';
      if (form.get('grant_type') !== 'password' || users[u] === undefined || users[u] !== form.get('password')) {
        return send(401, { error: 'invalid_grant' }, { method: 'POST', user: u, scopes });
      }
      user = u;
    } else {
      return send(405, { error: 'method not allowed' }, { method: req.method!, scopes: [] });
    }
    const token = issue(user, scopes);
    const body = req.method === 'POST'
      ? { access_token: token, expires_in: opts.expiresIn ?? 300 }
      : { token, expires_in: opts.expiresIn ?? 300, issued_at: new Date().toISOString() };
    send(200, body, { method: req.method, user, scopes });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    requests,
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
