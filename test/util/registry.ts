/**
 * Starts the real CNCF distribution registry (Debian's /usr/bin/docker-registry)
 * on a free loopback port with its own temp storage and config:
 *   - plain (no auth),
 *   - htpasswd Basic auth (bcrypt entries made by `htpasswd -B`),
 *   - token auth against a token server (see registry-token.ts).
 * Waits for /v2/ to answer; stop() kills it and removes its directory.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { tempDir } from './tmp.js';
import { startTokenServer, type TokenServer, type TokenServerOptions } from './registry-token.js';
import { createResolver, type DockerResolver } from '../../src/remotes/docker/index.js';

const run = promisify(execFile);

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export function registryAvailable(): boolean {
  return existsSync(REGISTRY_BIN);
}

export interface RegistryOptions {
  /** Basic auth users (htpasswd -B). */
  htpasswd?: Record<string, string>;
  /** Token auth: a token server is started with these options (dir is provided). */
  token?: Omit<TokenServerOptions, 'dir'>;
}

export interface Registry {
  /** "127.0.0.1:PORT" */
  host: string;
  url: string;
  dir: string;
  tokenServer?: TokenServer;
  /** Registry stderr/stdout so far (for failure messages). */
  logs(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, child: ChildProcess, logs: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  child.once('exit', () => { exited = true; });
  while (Date.now() < deadline) {
    if (exited) throw new Error(`docker-registry exited early:\n${logs()}`);
    try {
      const res = await request(`${url}/v2/`, { method: 'GET' });
      await res.body.dump();
      if (res.statusCode === 200 || res.statusCode === 401) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not become ready:\n${logs()}`);
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const { dir, cleanup } = await tempDir('dist-registry-');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  await mkdir(join(dir, 'data'));
  let auth = '';
  let tokenServer: TokenServer | undefined;
  if (opts.htpasswd) {
    const file = join(dir, 'htpasswd');
    const lines: string[] = [];
    for (const [user, pass] of Object.entries(opts.htpasswd)) {
      const { stdout } = await run('htpasswd', ['-nbB', '-C', '4', user, pass]);
      lines.push(stdout.trim());
    }
    await writeFile(file, lines.join('\n') + '\n');
    auth = `auth:\n  htpasswd:\n    realm: dist-test\n    path: ${file}\n`;
  } else if (opts.token) {
    tokenServer = await startTokenServer({ ...opts.token, dir });
    auth = `auth:\n  token:\n    realm: ${tokenServer.realm}\n    service: ${tokenServer.service}\n    issuer: ${tokenServer.issuer}\n    rootcertbundle: ${tokenServer.certFile}\n`;
  }
  const config = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: ${host}
  secret: ${randomBytes(16).toString('hex')}
${auth}`;
  const configFile = join(dir, 'config.yml');
  await writeFile(configFile, config);
  let out = '';
  const child = spawn(REGISTRY_BIN, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' } });
  const collect = (d: Buffer) => { if (out.length < 256 * 1024) out += d.toString(); };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const logs = () => out;
  const url = `http://${host}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    await tokenServer?.stop();
    await cleanup();
  };
  try {
    await waitReady(url, child, logs);
  } catch (err) {
    await stop();
    throw err;
  }
  return { host, url, dir, tokenServer, logs, stop };
}

/** A resolver for a test registry: plain HTTP, no hosts.d, quick retries. */
export function testResolver(): DockerResolver {
  return createResolver({ plainHTTP: true, hostsDir: [], retry: { baseDelayMs: 10 } });
}
