/**
 * config: distd's TOML configuration, in containerd's spirit:
 *
 *   version = 2
 *   root = "/var/lib/dist"            # persistent data (metadata.db, content, snapshots)
 *   state = "/run/dist"               # runtime state (socket dir, pid/lock)
 *   default_snapshotter = "overlayfs" # for requests without a snapshotter name
 *   snapshotters = ["native", "overlayfs"]
 *   shutdown_timeout = "10s"          # drain time for in-flight calls on SIGTERM
 *
 *   [grpc]
 *   address = "/run/dist/distd.sock"
 *   uid = 0                           # owner of the socket
 *   gid = 0                           # group owning the socket (mode 0660)
 *   max_recv_message_size = 16777216
 *   max_send_message_size = 16777216
 *
 *   [gc]
 *   deletion_threshold = 0            # deletions before a collection is scheduled
 *   schedule_delay = "100ms"          # wait after the triggering deletion
 *
 *   [debug]
 *   level = "info"                    # trace, debug, info, warn, error
 *
 * Command-line flags override the file; unknown keys are errors (a typo
 * should not silently fall back to a default).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parseLevel, type Level } from './log.js';

export interface DaemonConfig {
  root: string;
  state: string;
  /** Socket path (or unix:// address). */
  address: string;
  /** Owner and group of the socket; unset: the daemon's. */
  uid?: number;
  gid?: number;
  maxRecvMessageSize: number;
  maxSendMessageSize: number;
  defaultSnapshotter: string;
  snapshotters: string[];
  shutdownTimeoutMs: number;
  gc: { deletionThreshold: number; scheduleDelayMs: number };
  logLevel: Level;
}

export const DEFAULT_ROOT = '/var/lib/dist';
export const DEFAULT_STATE = '/run/dist';
export const DEFAULT_ADDRESS = '/run/dist/distd.sock';
export const DEFAULT_CONFIG = '/etc/dist/distd.toml';

export function defaultConfig(): DaemonConfig {
  return {
    root: DEFAULT_ROOT,
    state: DEFAULT_STATE,
    address: DEFAULT_ADDRESS,
    maxRecvMessageSize: 16 << 20,
    maxSendMessageSize: 16 << 20,
    defaultSnapshotter: 'overlayfs',
    snapshotters: ['native', 'overlayfs'],
    shutdownTimeoutMs: 10_000,
    gc: { deletionThreshold: 0, scheduleDelayMs: 100 },
    logLevel: 'info',
  };
}

/** Go-style durations: "100ms", "10s", "1m30s", "250us"; a bare number is seconds. */
export function parseDuration(v: unknown, key: string): number {
  if (typeof v === 'number' || typeof v === 'bigint') return Number(v) * 1000;
  if (typeof v !== 'string') throw new Error(`${key}: expected a duration string like "10s"`);
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let ms = 0;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(v))) {
    ms += Number(m[1]) * unit[m[2]];
    pos = re.lastIndex;
  }
  if (v === '' || pos !== v.length) throw new Error(`${key}: invalid duration ${JSON.stringify(v)}`);
  return ms;
}

type Table = Record<string, unknown>;

function str(t: Table, k: string, path: string): string | undefined {
  const v = t[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new Error(`${path}${k}: expected a string`);
  return v;
}

function int(t: Table, k: string, path: string): number | undefined {
  const v = t[k];
  if (v === undefined) return undefined;
  if ((typeof v !== 'number' && typeof v !== 'bigint') || !Number.isInteger(Number(v)) || Number(v) < 0) throw new Error(`${path}${k}: expected a non-negative integer`);
  return Number(v);
}

function checkKeys(t: Table, allowed: string[], path: string): void {
  for (const k of Object.keys(t)) if (!allowed.includes(k)) throw new Error(`unknown config key ${path}${k}`);
}

function table(t: Table, k: string): Table {
  const v = t[k];
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${k}: expected a table`);
  return v as Table;
}

/** Applies a parsed TOML document onto cfg (in place); throws with the offending key. */
export function applyToml(cfg: DaemonConfig, doc: Table): DaemonConfig {
  checkKeys(doc, ['version', 'root', 'state', 'default_snapshotter', 'snapshotters', 'shutdown_timeout', 'grpc', 'gc', 'debug'], '');
  const version = int(doc, 'version', '');
  if (version !== undefined && version !== 1 && version !== 2) throw new Error(`version: unsupported config version ${version}`);
  cfg.root = str(doc, 'root', '') ?? cfg.root;
  cfg.state = str(doc, 'state', '') ?? cfg.state;
  cfg.defaultSnapshotter = str(doc, 'default_snapshotter', '') ?? cfg.defaultSnapshotter;
  if (doc.snapshotters !== undefined) {
    if (!Array.isArray(doc.snapshotters) || !doc.snapshotters.every((s) => typeof s === 'string')) throw new Error('snapshotters: expected an array of names');
    cfg.snapshotters = [...(doc.snapshotters as string[])];
  }
  if (doc.shutdown_timeout !== undefined) cfg.shutdownTimeoutMs = parseDuration(doc.shutdown_timeout, 'shutdown_timeout');
  const grpc = table(doc, 'grpc');
  checkKeys(grpc, ['address', 'gid', 'uid', 'max_recv_message_size', 'max_send_message_size'], 'grpc.');
  cfg.address = str(grpc, 'address', 'grpc.') ?? cfg.address;
  cfg.uid = int(grpc, 'uid', 'grpc.') ?? cfg.uid;
  cfg.gid = int(grpc, 'gid', 'grpc.') ?? cfg.gid;
  cfg.maxRecvMessageSize = int(grpc, 'max_recv_message_size', 'grpc.') ?? cfg.maxRecvMessageSize;
  cfg.maxSendMessageSize = int(grpc, 'max_send_message_size', 'grpc.') ?? cfg.maxSendMessageSize;
  const gc = table(doc, 'gc');
  checkKeys(gc, ['deletion_threshold', 'schedule_delay', 'pause_threshold', 'mutation_threshold', 'startup_delay'], 'gc.');
  cfg.gc.deletionThreshold = int(gc, 'deletion_threshold', 'gc.') ?? cfg.gc.deletionThreshold;
  if (gc.schedule_delay !== undefined) cfg.gc.scheduleDelayMs = parseDuration(gc.schedule_delay, 'gc.schedule_delay');
  const debug = table(doc, 'debug');
  checkKeys(debug, ['level', 'format'], 'debug.');
  const level = str(debug, 'level', 'debug.');
  if (level) cfg.logLevel = parseLevel(level);
  return cfg;
}

/** Reads and applies a TOML file; errors name the file. */
export function loadConfigFile(cfg: DaemonConfig, file: string): DaemonConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`config ${file}: ${(err as Error).message}`);
  }
  try {
    return applyToml(cfg, parseToml(text) as Table);
  } catch (err) {
    throw new Error(`config ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** The lock file guarding a root against a second daemon. */
export function lockPath(root: string): string {
  return join(root, 'distd.lock');
}
