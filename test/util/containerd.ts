/**
 * A private, real containerd 1.6 for tests: temp root/state/socket, the
 * plugins that cannot work here disabled (CRI, aufs, btrfs, zfs, devmapper,
 * tracing), stopped by its pid. Needs root and the Debian `containerd`
 * package; `containerdAvailable()` tells tests whether to skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './tmp.js';

export interface Containerd {
  /** Socket path of the gRPC API. */
  readonly address: string;
  readonly dir: string;
  readonly pid: number;
  /** Last lines of the daemon log (for failure messages). */
  log(lines?: number): string;
  /** SIGTERM (SIGKILL after 5 s), then removes the temp dir. */
  stop(): Promise<void>;
}

const BIN = process.env.CONTAINERD_BIN ?? 'containerd';

/** Why a real containerd cannot run here, or undefined when it can. */
export function containerdUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  const r = spawnSync(BIN, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `${BIN} not installed`;
  return undefined;
}

function config(dir: string, sock: string): string {
  const q = (s: string) => JSON.stringify(s);
  return `version = 2
root = ${q(join(dir, 'root'))}
state = ${q(join(dir, 'state'))}
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = ${q(sock)}

[ttrpc]
  address = ${q(sock + '.ttrpc')}

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = ${q(join(dir, 'opt'))}
  [plugins."io.containerd.gc.v1.scheduler"]
    startup_delay = "100ms"
`;
}

function isSocket(p: string): boolean {
  try {
    return statSync(p).isSocket();
  } catch {
    return false;
  }
}

/** Starts a daemon and waits (up to 15 s) for its socket. */
export async function startContainerd(): Promise<Containerd> {
  const { dir, cleanup } = await tempDir('containerd-');
  for (const d of ['root', 'state', 'opt']) await mkdir(join(dir, d), { recursive: true });
  const sock = join(dir, 'containerd.sock');
  const cfg = join(dir, 'config.toml');
  await writeFile(cfg, config(dir, sock));
  const logPath = join(dir, 'containerd.log');
  const fd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(BIN, ['--config', cfg], { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  let exited: number | null | undefined;
  const exitP = new Promise<void>((res) => child.once('exit', (code) => { exited = code; res(); }));
  child.once('error', () => { exited = -1; });
  const log = (lines = 20) => (existsSync(logPath) ? readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '');

  // Never leave a daemon behind when the test process ends abruptly.
  const onExit = () => { if (exited === undefined) child.kill('SIGKILL'); };
  process.once('exit', onExit);

  const stop = async () => {
    process.off('exit', onExit);
    if (exited === undefined && child.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitP;
      clearTimeout(timer);
    }
    await cleanup();
  };

  const deadline = Date.now() + 15_000;
  while (!isSocket(sock)) {
    if (exited !== undefined) {
      const l = log();
      await cleanup();
      throw new Error(`containerd exited (${exited}):\n${l}`);
    }
    if (Date.now() > deadline) {
      const l = log();
      await stop();
      throw new Error(`containerd socket ${sock} did not appear:\n${l}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { address: sock, dir, pid: child.pid!, log, stop };
}
