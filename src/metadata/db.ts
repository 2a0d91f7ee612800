/**
 * metadata/db: the embedded transactional database (SQLite through
 * better-sqlite3: ACID, crash-safe with WAL + synchronous=FULL), one file
 * `metadata.db` under the root. The schema is versioned (PRAGMA user_version)
 * and upgraded by ordered migrations at open.
 *
 * Every write goes through `tx()` (BEGIN IMMEDIATE): SQLite's write lock is
 * the one lock shared by writers and the garbage collector, across processes.
 * Timestamps are stored as TEXT (bigint ns) to keep nanosecond precision.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openSqlite, type SqliteDatabase, type SqliteStatement } from '../internal/sqlite.js';

type DB = SqliteDatabase;

const MIGRATIONS: ((db: DB) => void)[] = [
  // v1: namespaces, content, ingests, leases, images
  (db) => db.exec(`
    CREATE TABLE namespaces (
      name TEXT PRIMARY KEY,
      labels TEXT NOT NULL DEFAULT '{}',
      created_at TEXT NOT NULL
    );
    CREATE TABLE content (
      ns TEXT NOT NULL,
      digest TEXT NOT NULL,
      size INTEGER NOT NULL,
      labels TEXT NOT NULL DEFAULT '{}',
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      PRIMARY KEY (ns, digest)
    ) WITHOUT ROWID;
    CREATE INDEX content_digest ON content(digest);
    CREATE TABLE ingests (
      ns TEXT NOT NULL,
      ref TEXT NOT NULL,
      bref TEXT NOT NULL,
      expected TEXT NOT NULL DEFAULT '',
      expires_at TEXT,
      PRIMARY KEY (ns, ref)
    ) WITHOUT ROWID;
    CREATE TABLE leases (
      ns TEXT NOT NULL,
      id TEXT NOT NULL,
      labels TEXT NOT NULL DEFAULT '{}',
      created_at TEXT NOT NULL,
      PRIMARY KEY (ns, id)
    ) WITHOUT ROWID;
    CREATE TABLE lease_resources (
      ns TEXT NOT NULL,
      lease TEXT NOT NULL,
      type TEXT NOT NULL,
      id TEXT NOT NULL,
      PRIMARY KEY (ns, lease, type, id)
    ) WITHOUT ROWID;
    CREATE INDEX lease_resources_obj ON lease_resources(ns, type, id);
    CREATE TABLE images (
      ns TEXT NOT NULL,
      name TEXT NOT NULL,
      target TEXT NOT NULL,
      labels TEXT NOT NULL DEFAULT '{}',
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      PRIMARY KEY (ns, name)
    ) WITHOUT ROWID;
    CREATE TABLE gc_state (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL
    ) WITHOUT ROWID;
  `),
  // v2: snapshots and containers (namespaced records over the snapshotters)
  (db) => db.exec(`
    CREATE TABLE snapshots (
      ns TEXT NOT NULL,
      snapshotter TEXT NOT NULL,
      key TEXT NOT NULL,
      bkey TEXT NOT NULL,
      parent TEXT NOT NULL DEFAULT '',
      kind TEXT NOT NULL,
      labels TEXT NOT NULL DEFAULT '{}',
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      PRIMARY KEY (ns, snapshotter, key)
    ) WITHOUT ROWID;
    CREATE INDEX snapshots_parent ON snapshots(ns, snapshotter, parent);
    CREATE TABLE containers (
      ns TEXT NOT NULL,
      id TEXT NOT NULL,
      record TEXT NOT NULL,
      labels TEXT NOT NULL DEFAULT '{}',
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      PRIMARY KEY (ns, id)
    ) WITHOUT ROWID;
  `),
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export class MetadataDB {
  readonly db: DB;
  /** Bumped by every deletion; the GC scheduler watches it. */
  private deletions = 0;
  private readonly listeners = new Set<(kind: string) => void>();
  private readonly stmts = new Map<string, SqliteStatement>();

  private constructor(readonly path: string, db: DB) {
    this.db = db;
  }

  /** Opens (creating and migrating) root/metadata.db. */
  static open(root: string, opts: { readonly?: boolean } = {}): MetadataDB {
    mkdirSync(root, { recursive: true });
    const path = join(root, 'metadata.db');
    const db = openSqlite(path, { readonly: opts.readonly ?? false, timeout: 30_000 });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    const m = new MetadataDB(path, db);
    if (!opts.readonly) m.migrate();
    return m;
  }

  /**
   * Brings the schema up to SCHEMA_VERSION, one migration per write
   * transaction. The version is read again under the write lock: processes
   * opening a new root at the same time (two first pulls) migrate it once.
   */
  private migrate(): void {
    const version = () => {
      const v = this.db.pragma('user_version', { simple: true }) as number;
      if (v > SCHEMA_VERSION) throw new Error(`metadata.db schema version ${v} is newer than this dist (${SCHEMA_VERSION}); upgrade dist`);
      return v;
    };
    while (version() < SCHEMA_VERSION) {
      this.db.transaction(() => {
        const v = version();
        if (v >= SCHEMA_VERSION) return; // another process migrated meanwhile
        MIGRATIONS[v](this.db);
        this.db.pragma(`user_version = ${v + 1}`);
      }).immediate();
    }
  }

  /** A prepared statement, cached by its SQL text. */
  stmt(sql: string): SqliteStatement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** Runs fn in a write transaction (BEGIN IMMEDIATE); nested calls join the outer one. */
  tx<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    return this.db.transaction(fn).immediate();
  }

  /** Runs fn in a read transaction (consistent snapshot). */
  read<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    return this.db.transaction(fn).deferred();
  }

  /** Records a deletion of `kind` (content, image, lease, snapshot…) for the GC scheduler. */
  markDirty(kind: string): void {
    this.deletions++;
    for (const l of this.listeners) l(kind);
  }

  get deletionCount(): number {
    return this.deletions;
  }

  onDirty(fn: (kind: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Creates the namespace row if missing (any write into a namespace creates it, as in containerd). */
  ensureNamespace(ns: string, at: bigint): void {
    this.stmt('INSERT OR IGNORE INTO namespaces(name, labels, created_at) VALUES (?, ?, ?)').run(ns, '{}', at.toString());
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

export function parseLabels(s: string | null | undefined): Record<string, string> {
  if (!s) return {};
  return JSON.parse(s) as Record<string, string>;
}
