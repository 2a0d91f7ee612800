/**
 * Helpers for distd's tests: an in-process daemon on a temp root/socket,
 * the real `ctr` 1.6 against it, and a monolithic pusher to a local registry.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { defaultConfig, type DaemonConfig } from '../../src/cmd/distd/config.js';
import { startDaemon, type Daemon } from '../../src/cmd/distd/daemon.js';
import { createLogger, silent } from '../../src/cmd/distd/log.js';
import { tempDir } from '../util/tmp.js';

export const CTR = '/usr/bin/ctr';
export const ctrAvailable = () => existsSync(CTR) && process.getuid?.() === 0;

export interface TestDaemon {
  daemon: Daemon;
  dir: string;
  sock: string;
  stop(): Promise<void>;
}

/** distd in this process on a fresh temp root; DISTD_TEST_LOG=debug shows its log. */
export async function startTestDaemon(over: Partial<DaemonConfig> = {}): Promise<TestDaemon> {
  const t = await tempDir('distd-test-');
  const cfg: DaemonConfig = {
    ...defaultConfig(),
    root: join(t.dir, 'root'),
    state: join(t.dir, 'run'),
    address: join(t.dir, 'run', 'distd.sock'),
    shutdownTimeoutMs: 2000,
    ...over,
  };
  const level = process.env.DISTD_TEST_LOG;
  const daemon = await startDaemon(cfg, level ? createLogger(level as 'debug') : silent);
  return {
    daemon,
    dir: t.dir,
    sock: daemon.path,
    async stop() {
      await daemon.stop();
      await t.cleanup();
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; never throws for a non-zero exit. */
export function run(cmd: string, args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20, encoding: 'buffer' }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code !== 'number' && !(err as { killed?: boolean }).killed) return reject(err);
      resolve({ code: err ? Number((err as NodeJS.ErrnoException).code ?? 1) || 1 : 0, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8') });
    });
    child.stdin?.on('error', () => undefined); // EPIPE when the command exits without reading all input
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin?.end();
  });
}

/** `ctr --address SOCK [-n NS] args…`; throws with stderr on failure unless allowFail. */
export async function ctr(sock: string, args: string[], opts: { ns?: string; input?: string | Buffer; allowFail?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  const full = ['--address', sock, ...(opts.ns ? ['-n', opts.ns] : []), ...args];
  const env = { ...process.env, ...(opts.env ?? {}) };
  delete env.CONTAINERD_SNAPSHOTTER;
  delete env.CONTAINERD_NAMESPACE;
  const r = await run(CTR, full, { input: opts.input, env });
  if (r.code !== 0 && !opts.allowFail) throw new Error(`ctr ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r;
}

/**
 * Table rows of ctr's tabular output (header dropped). Tab-separated tables
 * split on tabs; space-aligned ones (tabwriter) are cut at the header's
 * column offsets. Empty cells are dropped.
 */
export function rows(stdout: string): string[][] {
  const lines = stdout.replace(/\s+$/, '').split('\n');
  // Multi-word headings count as one column.
  const header = (lines[0] ?? '').replace('CREATED AT', 'CREATED_AT');
  const body = lines.slice(1).filter((l) => l.trim() !== '');
  if (header.includes('\t')) return body.map((l) => l.split(/\t+/).map((c) => c.trim()).filter(Boolean));
  const starts: number[] = [];
  for (const m of header.matchAll(/\S+/g)) starts.push(m.index!);
  return body.map((l) =>
    starts.map((st, i) => l.slice(st, i + 1 < starts.length ? starts[i + 1] : undefined).trim()).filter(Boolean),
  );
}

/** Pushes a blob monolithically (POST then PUT ?digest=); a blob already there is skipped. */
export async function pushBlob(base: string, repo: string, digest: string, bytes: Buffer): Promise<void> {
  const head = await request(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  await head.body.dump();
  if (head.statusCode === 200) return;
  const post = await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await post.body.dump();
  if (post.statusCode !== 202) throw new Error(`POST upload: ${post.statusCode}`);
  const loc = new URL(String(post.headers.location), base);
  loc.searchParams.set('digest', digest);
  const put = await request(loc, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } });
  const text = await put.body.text();
  if (put.statusCode !== 201) throw new Error(`PUT blob ${digest}: ${put.statusCode} ${text}`);
}

export async function pushManifest(base: string, repo: string, tag: string, mediaType: string, bytes: Buffer): Promise<void> {
  const put = await request(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: bytes, headers: { 'content-type': mediaType } });
  const text = await put.body.text();
  if (put.statusCode !== 201) throw new Error(`PUT manifest ${repo}:${tag}: ${put.statusCode} ${text}`);
}
