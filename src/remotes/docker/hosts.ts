/**
 * Registry hosts: where requests for a reference's host go (containerd's
 * RegistryHost and remotes/docker/config hosts.toml support).
 *
 * Without configuration a host maps to itself over https with path /v2
 * (docker.io → registry-1.docker.io); `plainHTTP` switches to http, and a
 * loopback host that answers TLS in plain HTTP is switched to http (see
 * RegistryHost.httpFallback). A hosts directory (containerd's certs.d
 * layout) can override that per host:
 *
 *   <root>/<host>/hosts.toml     (also "<host>_<port>_" and "_default")
 *     server = "https://registry.example.com"     # the fallback host, tried last
 *     ca = "ca.crt"                                # or a list; relative to the dir
 *     [host."https://mirror.example.com"]          # tried first, in file order
 *       capabilities = ["pull", "resolve"]         # default: pull, resolve, push
 *       skip_verify = true
 *       client = [["client.cert", "client.key"]]   # or "client.pem" (cert+key)
 *       header = { X-Custom = "1" }
 *       override_path = true                      # don't append /v2 to the path
 *
 * A host directory without hosts.toml contributes its *.crt files (CA) and
 * *.cert/*.key pairs (client certs), as docker's certs.d does.
 *
 * Each distinct TLS/timeout configuration gets one undici Agent; close()
 * destroys them.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { createSecureContext, rootCertificates } from 'node:tls';
import { isIP } from 'node:net';
import type { Dispatcher } from 'undici';
import { undici } from './undici.js';
import { parse as parseToml } from 'smol-toml';
import { invalidArgument } from '../../errdefs/index.js';
import { extraCerts, extraCertsDeferred } from '../../internal/extracerts.js';

export type Capability = 'pull' | 'resolve' | 'push';
export const ALL_CAPABILITIES: readonly Capability[] = ['pull', 'resolve', 'push'];

export interface RegistryHost {
  scheme: 'http' | 'https';
  /** host[:port] */
  host: string;
  /** API root path, normally "/v2". */
  path: string;
  capabilities: readonly Capability[];
  /** Extra headers for every request to this host. */
  header: Record<string, string[]>;
  dispatcher: Dispatcher;
  /**
   * A loopback registry named without configuration is tried over https
   * first; should it answer TLS in plain HTTP, requests switch to http with
   * this dispatcher (containerd's HTTP fallback for localhost; `ctr pull
   * localhost:5000/x` needs no --plain-http).
   */
  httpFallback?: Dispatcher;
}

/** Maps a reference's hostname (e.g. "docker.io") to the hosts to try, in order. */
export type RegistryHosts = (host: string) => Promise<RegistryHost[]>;

export interface Timeouts {
  /** TCP/TLS connect timeout (default 30 s). */
  connectMs?: number;
  /** Time to receive response headers (default 60 s). */
  headersMs?: number;
  /** Max idle time between body chunks (default 60 s). */
  bodyMs?: number;
}

export interface TLSOptions {
  /** Extra CA certificates (PEM), added to Node's root store. */
  ca?: string[];
  /** Client certificate and key (PEM). */
  cert?: string;
  key?: string;
  /** Don't verify the server certificate. */
  skipVerify?: boolean;
}

export interface HostOptions {
  /**
   * hosts.toml roots, searched in order. Default DEFAULT_HOSTS_DIRS; `[]`
   * disables host directories.
   */
  hostsDir?: string | string[];
  /** Use http instead of https (for all hosts, or those the predicate selects). */
  plainHTTP?: boolean | ((host: string) => boolean);
  /** TLS for hosts without their own configuration. */
  tls?: TLSOptions;
  timeouts?: Timeouts;
}

export const DEFAULT_HOSTS_DIRS = ['/etc/containerd/certs.d', '/etc/docker/certs.d'];

/** True for localhost and loopback addresses (with or without a port). */
export function isLocalhost(host: string): boolean {
  let h = host;
  if (h.startsWith('[')) h = h.slice(1, h.indexOf(']'));
  else if (h.split(':').length === 2) h = h.slice(0, h.indexOf(':'));
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1';
  return false;
}

/** True when requests for reference host refHost go to a different host (a mirror): add ?ns=. */
export function isProxy(refHost: string, host: RegistryHost): boolean {
  if (refHost === host.host) return false;
  return !(refHost === 'docker.io' && host.host === 'registry-1.docker.io');
}

/** One parsed host entry of a hosts.toml (or certs.d directory). */
export interface HostConfig {
  scheme?: 'http' | 'https';
  host?: string;
  path?: string;
  capabilities: Capability[];
  caFiles: string[];
  clientPairs: Array<[string, string | undefined]>;
  skipVerify?: boolean;
  header: Record<string, string[]>;
}

/** The directory names containerd looks up for a host, in order. */
export function hostDirNames(host: string): string[] {
  const names: string[] = [];
  const idx = host.lastIndexOf(':');
  if (idx > 0) names.push(`${host.slice(0, idx)}_${host.slice(idx + 1)}_`);
  names.push(host, '_default');
  return names;
}

async function findHostDir(roots: string[], host: string): Promise<string | undefined> {
  for (const root of roots) {
    for (const n of hostDirNames(host)) {
      const p = join(root, n);
      try {
        if ((await stat(p)).isDirectory()) return p;
      } catch (err: any) {
        if (err?.code !== 'ENOENT' && err?.code !== 'ENOTDIR') throw err;
      }
    }
  }
  return undefined;
}

function abs(p: string, base: string): string {
  return isAbsolute(p) ? p : join(base, p);
}

function asStrings(v: unknown, what: string, file: string): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw invalidArgument(`${file}: invalid ${what}: expected a string or a list of strings`);
}

function parseHostEntry(server: string | undefined, dir: string, file: string, c: Record<string, unknown>): HostConfig {
  const out: HostConfig = { capabilities: [...ALL_CAPABILITIES], caFiles: [], clientPairs: [], header: {} };
  if (server) {
    const s = /^https?:\/\//.test(server) ? server : `https://${server}`;
    let u: URL;
    try { u = new URL(s); } catch { throw invalidArgument(`${file}: unable to parse server ${JSON.stringify(server)}`); }
    out.scheme = u.protocol === 'http:' ? 'http' : 'https';
    out.host = u.host;
    let p = u.pathname.replace(/\/+$/, '');
    if (!c.override_path && !p.endsWith('/v2')) p += '/v2';
    out.path = p || '/';
  }
  if (c.capabilities !== undefined) {
    const caps = asStrings(c.capabilities, 'capabilities', file).map((x) => x.toLowerCase());
    for (const cap of caps) if (!ALL_CAPABILITIES.includes(cap as Capability)) throw invalidArgument(`${file}: unknown capability ${JSON.stringify(cap)}`);
    out.capabilities = caps as Capability[];
  }
  if (c.ca !== undefined) out.caFiles = asStrings(c.ca, 'ca', file).map((p) => abs(p, dir));
  if (c.client !== undefined) {
    const cl = c.client;
    const items = typeof cl === 'string' ? [cl] : Array.isArray(cl) ? cl : undefined;
    if (!items) throw invalidArgument(`${file}: invalid client`);
    for (const it of items) {
      if (typeof it === 'string') out.clientPairs.push([abs(it, dir), undefined]);
      else if (Array.isArray(it) && it.length === 2 && it.every((x) => typeof x === 'string')) out.clientPairs.push([abs(it[0], dir), abs(it[1], dir)]);
      else throw invalidArgument(`${file}: invalid client pair ${JSON.stringify(it)}`);
    }
  }
  if (c.skip_verify !== undefined) {
    if (typeof c.skip_verify !== 'boolean') throw invalidArgument(`${file}: skip_verify must be a boolean`);
    out.skipVerify = c.skip_verify;
  }
  if (c.header !== undefined) {
    if (typeof c.header !== 'object' || c.header === null || Array.isArray(c.header)) throw invalidArgument(`${file}: invalid header table`);
    for (const [k, v] of Object.entries(c.header)) out.header[k] = asStrings(v, `header ${k}`, file);
  }
  return out;
}

/** Parses a hosts.toml text (exported for tests). Mirrors first, the server last. */
export function parseHostsToml(text: string, dir: string, file = join(dir, 'hosts.toml')): HostConfig[] {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw invalidArgument(`${file}: ${(err as Error).message.split('\n')[0]}`, err);
  }
  const hosts: HostConfig[] = [];
  const table = doc.host;
  if (table !== undefined) {
    if (typeof table !== 'object' || table === null) throw invalidArgument(`${file}: invalid host table`);
    for (const [name, cfg] of Object.entries(table as Record<string, unknown>)) {
      hosts.push(parseHostEntry(name, dir, file, (cfg ?? {}) as Record<string, unknown>));
    }
  }
  const server = typeof doc.server === 'string' ? doc.server : undefined;
  hosts.push(parseHostEntry(server, dir, file, doc));
  return hosts;
}

async function loadCertFiles(dir: string): Promise<HostConfig[]> {
  const out: HostConfig = { capabilities: [...ALL_CAPABILITIES], caFiles: [], clientPairs: [], header: {} };
  const names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
  for (const n of names) {
    if (n.endsWith('.crt')) out.caFiles.push(join(dir, n));
    if (n.endsWith('.cert')) {
      const key = n.slice(0, -5) + '.key';
      out.clientPairs.push([join(dir, n), names.includes(key) ? join(dir, key) : undefined]);
    }
  }
  return [out];
}

async function loadHostDir(dir: string): Promise<HostConfig[]> {
  const file = join(dir, 'hosts.toml');
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch (err: any) {
    if (err?.code !== 'ENOENT') throw err;
  }
  if (text.trim() === '') return loadCertFiles(dir);
  return parseHostsToml(text, dir, file);
}

/**
 * The trusted roots for a TLS connection with extra CAs `ca`: Node's default
 * store (its bundled roots and NODE_EXTRA_CA_CERTS) plus `ca`; undefined when
 * that is Node's default store itself.
 */
function trustedRoots(ca: string[] = []): string[] | undefined {
  if (!ca.length && !extraCertsDeferred()) return undefined;
  return [...rootCertificates, ...extraCerts(), ...ca];
}

/** tls.connect options for `tls`; the context (roots, client pair) is built once per call. */
function tlsConnectOptions(tls: TLSOptions): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const ca = trustedRoots(tls.ca);
  if (ca || tls.cert) o.secureContext = createSecureContext({ ca, cert: tls.cert, key: tls.cert ? tls.key ?? tls.cert : undefined });
  if (tls.skipVerify) o.rejectUnauthorized = false;
  return o;
}

/** The dispatcher factory: one Agent per distinct configuration. */
export class AgentPool {
  private readonly agents = new Map<string, Dispatcher>();
  constructor(private readonly timeouts: Timeouts = {}) {}

  get(tls: TLSOptions): Dispatcher {
    const { Agent, buildConnector } = undici();
    const key = JSON.stringify([tls.ca ?? null, tls.cert ?? null, tls.key ?? null, !!tls.skipVerify]);
    let a = this.agents.get(key);
    if (!a) {
      const base = { timeout: this.timeouts.connectMs ?? 30_000 };
      // Parsing a few hundred roots takes ~40 ms: the TLS context is built on
      // the agent's first https connection and shared by all of them.
      const plain = buildConnector(base);
      let secure: ReturnType<typeof buildConnector> | undefined;
      const connect: ReturnType<typeof buildConnector> = (o, cb) => {
        if (o.protocol !== 'https:') return plain(o, cb);
        try {
          secure ??= buildConnector({ ...base, ...tlsConnectOptions(tls) });
        } catch (err) {
          return cb(err as Error, null); // a CA or client pair OpenSSL refuses
        }
        return secure(o, cb);
      };
      const opts = {
        connect,
        headersTimeout: this.timeouts.headersMs ?? 60_000,
        bodyTimeout: this.timeouts.bodyMs ?? 60_000,
        keepAliveTimeout: 4_000,
      };
      const env = process.env;
      const proxied = env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy;
      // Through a proxy, both TLS legs trust what Node would (a proxy's CA
      // often is what NODE_EXTRA_CA_CERTS names); their contexts are built now.
      a = proxied
        ? new (undici().EnvHttpProxyAgent)({ ...opts, requestTls: tlsConnectOptions(tls), proxyTls: tlsConnectOptions({}) } as any)
        : new Agent(opts as any);
      this.agents.set(key, a);
    }
    return a;
  }

  async close(): Promise<void> {
    const all = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(all.map((a) => a.destroy().catch(() => undefined)));
  }
}

async function tlsFor(cfg: HostConfig, base: TLSOptions): Promise<TLSOptions> {
  const tls: TLSOptions = { ...base, ca: [...(base.ca ?? [])] };
  for (const f of cfg.caFiles) {
    try {
      tls.ca!.push(await readFile(f, 'utf8'));
    } catch (err) {
      throw invalidArgument(`unable to read CA cert ${JSON.stringify(f)}: ${(err as Error).message}`, err);
    }
  }
  if (cfg.clientPairs.length) {
    // Node takes one identity per connection: the first pair wins.
    const [certFile, keyFile] = cfg.clientPairs[0]!;
    try {
      tls.cert = await readFile(certFile, 'utf8');
      tls.key = keyFile ? await readFile(keyFile, 'utf8') : tls.cert;
    } catch (err) {
      throw invalidArgument(`unable to read client certificate: ${(err as Error).message}`, err);
    }
  }
  if (cfg.skipVerify !== undefined) tls.skipVerify = cfg.skipVerify;
  return tls;
}

export interface ConfiguredHosts {
  hosts: RegistryHosts;
  close(): Promise<void>;
}

/** Builds RegistryHosts from options and host directories (cached per host). */
export function configureHosts(opts: HostOptions = {}): ConfiguredHosts {
  const pool = new AgentPool(opts.timeouts);
  const roots = opts.hostsDir === undefined ? DEFAULT_HOSTS_DIRS : typeof opts.hostsDir === 'string' ? [opts.hostsDir] : opts.hostsDir;
  const plain = (h: string) => (typeof opts.plainHTTP === 'function' ? opts.plainHTTP(h) : !!opts.plainHTTP);
  const cache = new Map<string, Promise<RegistryHost[]>>();

  const compute = async (host: string): Promise<RegistryHost[]> => {
    const dir = roots.length ? await findHostDir(roots, host) : undefined;
    const configs = dir ? await loadHostDir(dir) : [];
    const fallback = new Set<HostConfig>();
    if (!configs.length) configs.push({ capabilities: [...ALL_CAPABILITIES], caFiles: [], clientPairs: [], header: {} });
    const last = configs[configs.length - 1]!;
    if (!last.host) {
      // the default server for this host
      if (host === 'docker.io') {
        last.scheme = 'https';
        last.host = 'registry-1.docker.io';
      } else {
        last.host = host;
        last.scheme = plain(host) ? 'http' : 'https';
        if (last.scheme === 'https' && isLocalhost(host)) fallback.add(last);
      }
      last.path = '/v2';
      last.capabilities = [...ALL_CAPABILITIES];
    }
    const out: RegistryHost[] = [];
    for (const c of configs) {
      const tls = await tlsFor(c, opts.tls ?? {});
      out.push({
        scheme: c.scheme ?? 'https',
        host: c.host!,
        path: c.path ?? '/v2',
        capabilities: c.capabilities,
        header: c.header,
        dispatcher: pool.get(c.scheme === 'http' ? {} : tls),
        ...(fallback.has(c) ? { httpFallback: pool.get({}) } : {}),
      });
    }
    return out;
  };

  return {
    hosts: (host: string) => {
      let p = cache.get(host);
      if (!p) {
        p = compute(host);
        p.catch(() => cache.delete(host));
        cache.set(host, p);
      }
      return p;
    },
    close: () => pool.close(),
  };
}
