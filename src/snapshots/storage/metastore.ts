/**
 * The metastore of a local snapshotter (containerd's snapshots/storage, with
 * SQLite in place of bolt): names, kinds, parentage, labels, times and the
 * usage of committed snapshots (measured on first use), in `<root>/metadata.db`.
 *
 * Each snapshot row has a numeric id that never gets reused (AUTOINCREMENT);
 * drivers name their on-disk directory after it. Committing keeps the id, so
 * an active snapshot's directory becomes the committed one's.
 *
 * Transactions. Two connections to the WAL database:
 * - `view(fn)`: a synchronous read transaction on the reader connection; it
 *   sees committed state only, so reads never wait for writers.
 * - `update(ctx, fn)`: write transactions, serialized by an async lock and
 *   run as BEGIN IMMEDIATE … COMMIT on the writer connection. fn may await
 *   filesystem work (copying a parent, renaming directories) while the
 *   transaction stays open, like a bolt write transaction in containerd:
 *   if fn throws, everything rolls back. synchronous=FULL makes a returned
 *   update durable.
 */
import type { Ctx } from '../../internal/context.js';
import { now } from '../../internal/time.js';
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  notFound,
  throwIfAborted,
  unavailable,
} from '../../errdefs/index.js';
import type { Info, Kind, SnapshotOpts, UpdateInfo, Usage } from '../types.js';
import { applyUpdate } from './fields.js';
import { openSqlite, type SqliteDatabase, type SqliteStatement } from '../../internal/sqlite.js';

/** An active or view snapshot as a driver needs it to build mounts. */
export interface SnapshotRecord {
  id: string;
  kind: Kind;
  /** Ids of the committed parent chain, nearest parent first. */
  parentIds: string[];
}

export interface StoredInfo {
  id: string;
  info: Info;
  /** Usage recorded at commit (zero for active and view snapshots). */
  usage: Usage;
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  parent_id INTEGER REFERENCES snapshots(id),
  kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
  labels TEXT NOT NULL DEFAULT '{}',
  created TEXT NOT NULL,
  updated TEXT NOT NULL,
  size INTEGER NOT NULL DEFAULT 0,
  inodes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent_id);
`;

interface Row {
  id: number;
  key: string;
  parent_id: number | null;
  parent_key: string | null;
  kind: Kind;
  labels: string;
  created: string;
  updated: string;
  size: number;
  inodes: number;
}

const SELECT_INFO = `SELECT s.id, s.key, s.parent_id, p.key AS parent_key, s.kind, s.labels, s.created, s.updated, s.size, s.inodes
  FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id`;

/** Labels without empty values (an empty value means "unset", as in containerd). */
function cleanLabels(labels: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (labels) for (const [k, v] of Object.entries(labels)) if (v !== '' && v != null) out[k] = v;
  return out;
}

function rowToInfo(r: Row): Info {
  const info: Info = {
    kind: r.kind,
    name: r.key,
    labels: JSON.parse(r.labels) as Record<string, string>,
    createdAt: BigInt(r.created),
    updatedAt: BigInt(r.updated),
  };
  if (r.parent_key != null) info.parent = r.parent_key;
  return info;
}

function checkKey(what: string, key: string): void {
  if (typeof key !== 'string' || key === '') throw invalidArgument(`snapshot ${what} must not be empty`);
}

const statementCache = new WeakMap<SqliteDatabase, Map<string, SqliteStatement>>();

/** Operations inside one transaction (read-only ones throw on write methods). */
export class Transaction {
  constructor(private readonly db: SqliteDatabase, readonly writable: boolean) {}

  private stmt(sql: string): SqliteStatement {
    let cache = statementCache.get(this.db);
    if (!cache) statementCache.set(this.db, (cache = new Map()));
    let st = cache.get(sql);
    if (!st) cache.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  private row(key: string): Row | undefined {
    return this.stmt(`${SELECT_INFO} WHERE s.key = ?`).get(key) as Row | undefined;
  }

  private mustWrite(): void {
    if (!this.writable) throw failedPrecondition('metastore transaction is read-only');
  }

  /** Ids of the chain starting at id, id first. */
  private chain(id: number): string[] {
    const rows = this.stmt(`WITH RECURSIVE chain(id, parent_id, depth) AS (
        SELECT id, parent_id, 0 FROM snapshots WHERE id = ?
        UNION ALL
        SELECT s.id, s.parent_id, c.depth + 1 FROM snapshots s JOIN chain c ON s.id = c.parent_id
      ) SELECT id FROM chain ORDER BY depth`).pluck().all(id) as number[];
    return rows.map(String);
  }

  /** Whether any snapshot uses key (as key or name). */
  exists(key: string): boolean {
    return this.stmt('SELECT 1 FROM snapshots WHERE key = ?').get(key) !== undefined;
  }

  /** Info, id and stored usage of any snapshot. NotFound when missing. */
  getInfo(key: string): StoredInfo {
    const r = this.row(key);
    if (!r) throw notFound(`snapshot ${key} does not exist`);
    return { id: String(r.id), info: rowToInfo(r), usage: { size: r.size, inodes: r.inodes } };
  }

  /** The record of an active or view snapshot (FailedPrecondition for committed). */
  getSnapshot(key: string): SnapshotRecord {
    const r = this.row(key);
    if (!r) throw notFound(`snapshot ${key} does not exist`);
    if (r.kind !== 'active' && r.kind !== 'view') {
      throw failedPrecondition(`requested snapshot ${key} not active or view`);
    }
    return { id: String(r.id), kind: r.kind, parentIds: r.parent_id == null ? [] : this.chain(r.parent_id) };
  }

  /** Inserts an active or view snapshot on top of committed `parent`. */
  createSnapshot(kind: Kind, key: string, parent?: string, opts: SnapshotOpts = {}): SnapshotRecord {
    this.mustWrite();
    if (kind !== 'active' && kind !== 'view') {
      throw invalidArgument(`snapshot type ${kind} invalid; only snapshots of type Active or View can be created`);
    }
    checkKey('key', key);
    let parentId: number | null = null;
    if (parent) {
      const p = this.row(parent);
      if (!p) throw notFound(`missing parent "${parent}"`);
      if (p.kind !== 'committed') throw invalidArgument(`parent "${parent}" is not committed snapshot`);
      parentId = p.id;
    }
    if (this.exists(key)) throw alreadyExists(`snapshot ${key}`);
    const t = now().toString();
    const res = this.stmt('INSERT INTO snapshots (key, parent_id, kind, labels, created, updated) VALUES (?, ?, ?, ?, ?, ?)')
      .run(key, parentId, kind, JSON.stringify(cleanLabels(opts.labels)), t, t);
    return { id: String(res.lastInsertRowid), kind, parentIds: parentId == null ? [] : this.chain(parentId) };
  }

  /** Updates labels (see Snapshotter.update); returns the stored info. */
  updateInfo(info: UpdateInfo, fieldpaths?: string[]): Info {
    this.mustWrite();
    const r = this.row(info.name);
    if (!r) throw notFound(`snapshot ${info.name} does not exist`);
    const current = rowToInfo(r);
    const labels = cleanLabels(applyUpdate(current, info, fieldpaths));
    const updated = now();
    this.stmt('UPDATE snapshots SET labels = ?, updated = ? WHERE id = ?').run(JSON.stringify(labels), updated.toString(), r.id);
    return { ...current, labels, updatedAt: updated };
  }

  /** All snapshots matching the predicate, in key order. */
  listInfo(match?: (info: Info) => boolean): Info[] {
    const out: Info[] = [];
    for (const r of this.stmt(`${SELECT_INFO} ORDER BY s.key`).iterate() as IterableIterator<Row>) {
      const info = rowToInfo(r);
      if (!match || match(info)) out.push(info);
    }
    return out;
  }

  /** Removes a snapshot without children; returns its id and kind. */
  remove(key: string): { id: string; kind: Kind } {
    this.mustWrite();
    const r = this.row(key);
    if (!r) throw notFound(`snapshot ${key}`);
    if (this.stmt('SELECT 1 FROM snapshots WHERE parent_id = ? LIMIT 1').get(r.id) !== undefined) {
      throw failedPrecondition('cannot remove snapshot with child');
    }
    this.stmt('DELETE FROM snapshots WHERE id = ?').run(r.id);
    return { id: String(r.id), kind: r.kind };
  }

  /**
   * Turns active `key` into committed `name` (same id and parent, new
   * created/updated times, labels from opts only, usage recorded; undefined:
   * not measured yet, stored as -1 until setUsage).
   */
  commitActive(key: string, name: string, usage: Usage | undefined, opts: SnapshotOpts = {}): string {
    this.mustWrite();
    checkKey('name', name);
    if (this.exists(name)) throw alreadyExists(`committed snapshot ${name}`);
    const r = this.row(key);
    if (!r) throw notFound(`failed to get active snapshot "${key}"`);
    if (r.kind !== 'active') throw failedPrecondition(`snapshot "${key}" is not active`);
    const t = now().toString();
    this.stmt(`UPDATE snapshots SET key = ?, kind = 'committed', labels = ?, created = ?, updated = ?, size = ?, inodes = ? WHERE id = ?`)
      .run(name, JSON.stringify(cleanLabels(opts.labels)), t, t, usage?.size ?? -1, usage?.inodes ?? -1, r.id);
    return String(r.id);
  }

  /** Records the usage of a committed snapshot measured after its commit. */
  setUsage(id: string, usage: Usage): void {
    this.mustWrite();
    this.stmt(`UPDATE snapshots SET size = ?, inodes = ? WHERE id = ? AND kind = 'committed'`).run(usage.size, usage.inodes, Number(id));
  }

  /** id → key of every snapshot. */
  idMap(): Map<string, string> {
    const m = new Map<string, string>();
    for (const r of this.stmt('SELECT id, key FROM snapshots').iterate() as IterableIterator<{ id: number; key: string }>) {
      m.set(String(r.id), r.key);
    }
    return m;
  }
}

export class MetaStore {
  private readonly writer: SqliteDatabase;
  private readonly reader: SqliteDatabase;
  private lock: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(readonly file: string) {
    this.writer = openSqlite(file);
    try {
      this.writer.pragma('journal_mode = WAL');
      this.writer.pragma('synchronous = FULL');
      this.writer.pragma('foreign_keys = ON');
      this.writer.pragma('busy_timeout = 10000');
      const version = this.writer.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw failedPrecondition(`snapshot metadata ${file} has schema version ${version}, newer than supported ${SCHEMA_VERSION}`);
      }
      // Only a new store is written to at open: listing a store on a full disk still works.
      if (version < SCHEMA_VERSION) {
        this.writer.exec(SCHEMA);
        this.writer.pragma(`user_version = ${SCHEMA_VERSION}`);
      }
      this.reader = openSqlite(file, { readonly: true });
      this.reader.pragma('busy_timeout = 10000');
    } catch (err) {
      this.writer.close();
      throw err;
    }
  }

  /** Opens (creating if needed) the metastore at file. */
  static open(file: string): MetaStore {
    return new MetaStore(file);
  }

  private checkOpen(): void {
    if (this.closed) throw unavailable('snapshotter metadata store is closed');
  }

  /** A read transaction over committed state. fn must be synchronous. */
  view<T>(fn: (tx: Transaction) => T): T {
    this.checkOpen();
    const tx = new Transaction(this.reader, false);
    return this.reader.transaction(() => fn(tx)).deferred();
  }

  /**
   * A write transaction; waits for earlier ones. Commits when fn resolves,
   * rolls back when it throws (and rethrows).
   */
  async update<T>(ctx: Ctx, fn: (tx: Transaction) => Promise<T> | T): Promise<T> {
    throwIfAborted(ctx.signal);
    const prev = this.lock;
    let release!: () => void;
    this.lock = new Promise<void>((res) => (release = res));
    await prev;
    try {
      this.checkOpen();
      throwIfAborted(ctx.signal);
      this.writer.exec('BEGIN IMMEDIATE');
      let result: T;
      try {
        result = await fn(new Transaction(this.writer, true));
        this.writer.exec('COMMIT');
      } catch (err) {
        if (this.writer.inTransaction) this.writer.exec('ROLLBACK');
        throw err;
      }
      return result;
    } finally {
      release();
    }
  }

  /** Waits for running updates, then closes both connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    const prev = this.lock;
    let release!: () => void;
    this.lock = new Promise<void>((res) => (release = res));
    await prev;
    try {
      if (this.closed) return;
      this.closed = true;
      this.reader.close();
      this.writer.close();
    } finally {
      release();
    }
  }
}
