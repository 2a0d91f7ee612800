/**
 * Credentials from docker's client configuration (~/.docker/config.json,
 * or $DOCKER_CONFIG/config.json):
 *
 *   { "auths": { "<server>": { "auth": base64("user:pass") | "username"/"password" | "identitytoken" } },
 *     "credsStore": "<name>",            // docker-credential-<name> for every server
 *     "credHelpers": { "<host>": "<name>" } }
 *
 * Docker Hub is stored under "https://index.docker.io/v1/"; a lookup for
 * docker.io, index.docker.io or registry-1.docker.io uses that key. Other
 * servers match by host (keys may be bare hosts or URLs). A helper is run as
 * `docker-credential-<name> get` with the server on stdin; "not found" from
 * it falls back to `auths`. Identity tokens become {username: '', password:
 * token} (sent as an OAuth2 refresh token).
 */
import { readFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { invalidArgument, unavailable } from '../../errdefs/index.js';
import type { Credentials, CredentialsFn } from './auth.js';

export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';
const HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

export interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

export interface DockerConfig {
  auths?: Record<string, DockerAuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export interface DockerConfigOptions {
  /** Directory holding config.json (default $DOCKER_CONFIG, else ~/.docker). */
  configDir?: string;
  /** Environment for helpers (PATH lookup) and DOCKER_CONFIG (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Credential helper time limit (default 30 s). */
  helperTimeoutMs?: number;
}

export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || join(homedir(), '.docker');
}

/** Reads config.json; an absent file is an empty config. */
export async function loadDockerConfig(dir: string): Promise<DockerConfig> {
  const file = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err: any) {
    if (err?.code === 'ENOENT') return {};
    throw err;
  }
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' ? v : {};
  } catch (err) {
    throw invalidArgument(`${file}: invalid JSON`, err);
  }
}

/** The host part of an auths key ("https://host:5000/v1/" → "host:5000"). */
function keyHost(key: string): string {
  const k = key.includes('://') ? key : `https://${key}`;
  try { return new URL(k).host; } catch { return key; }
}

/** The server name a helper and the auths map use for a registry host. */
export function serverKey(host: string): string {
  return HUB_HOSTS.has(host) ? DOCKER_HUB_AUTH_KEY : host;
}

function fromEntry(e: DockerAuthEntry, key: string): Credentials | undefined {
  if (e.identitytoken) return { username: '', password: e.identitytoken };
  if (e.auth) {
    const dec = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i < 0) throw invalidArgument(`docker config: invalid auth for ${key}`);
    return { username: dec.slice(0, i), password: dec.slice(i + 1) };
  }
  if (e.username || e.password) return { username: e.username ?? '', password: e.password ?? '' };
  return undefined;
}

/** Looks host up in a loaded config's auths (without helpers). */
export function credentialsFromAuths(cfg: DockerConfig, host: string): Credentials | undefined {
  const auths = cfg.auths ?? {};
  const want = serverKey(host);
  if (auths[want]) return fromEntry(auths[want]!, want);
  const hub = HUB_HOSTS.has(host);
  for (const [key, e] of Object.entries(auths)) {
    const kh = keyHost(key);
    if (kh === host || (hub && HUB_HOSTS.has(kh))) {
      const c = fromEntry(e, key);
      if (c) return c;
    }
  }
  return undefined;
}

/** Runs `docker-credential-<helper> get`; undefined when it has nothing for server. */
export function runCredentialHelper(helper: string, server: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 30_000): Promise<Credentials | undefined> {
  return new Promise((resolve, reject) => {
    const prog = `docker-credential-${helper}`;
    const child = spawn(prog, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    timer.unref();
    let out = '';
    let errText = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { if (out.length < 1 << 20) out += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { if (errText.length < 1 << 16) errText += d; });
    child.on('error', (err) => { clearTimeout(timer); reject(unavailable(`credential helper ${prog}: ${err.message}`, err)); });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (sig) return reject(unavailable(`credential helper ${prog} killed by ${sig} (time limit ${timeoutMs} ms)`));
      if (code !== 0) {
        const msg = (out + errText).trim();
        if (/credentials not found/i.test(msg)) return resolve(undefined);
        return reject(unavailable(`credential helper ${prog} failed (exit ${code}): ${msg.slice(0, 200)}`));
      }
      try {
        const v = JSON.parse(out);
        const username = typeof v.Username === 'string' ? v.Username : '';
        const secret = typeof v.Secret === 'string' ? v.Secret : '';
        if (!secret && !username) return resolve(undefined);
        if (username === '<token>') return resolve({ username: '', password: secret });
        resolve({ username, password: secret });
      } catch (err) {
        reject(invalidArgument(`credential helper ${prog}: invalid output`, err));
      }
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(server);
  });
}

/**
 * A CredentialsFn backed by docker's config: helpers first (credHelpers for
 * the host, else credsStore), then auths. The config is read once per
 * returned function; results are cached per host.
 */
export function dockerCredentials(opts: DockerConfigOptions = {}): CredentialsFn {
  const env = opts.env ?? process.env;
  const dir = opts.configDir ?? dockerConfigDir(env);
  let cfg: Promise<DockerConfig> | undefined;
  const cache = new Map<string, Promise<Credentials | undefined>>();
  const lookup = async (host: string): Promise<Credentials | undefined> => {
    cfg ??= loadDockerConfig(dir);
    const c = await cfg;
    const server = serverKey(host);
    const helper = c.credHelpers?.[host] ?? c.credHelpers?.[server] ?? c.credsStore;
    if (helper) {
      const got = await runCredentialHelper(helper, server, env, opts.helperTimeoutMs);
      if (got) return got;
    }
    return credentialsFromAuths(c, host);
  };
  return (host: string) => {
    let p = cache.get(host);
    if (!p) {
      p = lookup(host);
      p.catch(() => cache.delete(host));
      cache.set(host, p);
    }
    return p;
  };
}
