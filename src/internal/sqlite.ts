/**
 * sqlite: better-sqlite3, required on first use rather than when this module
 * loads. It is a native addon, which a V8 startup snapshot of the CLI
 * (src/internal/snapshot.ts) cannot hold, and commands that never open a
 * database do not pay for loading it.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { createRequire } from 'node:module';

export type SqliteDatabase = BetterSqlite3.Database;
export type SqliteStatement = BetterSqlite3.Statement;
export type SqliteOptions = BetterSqlite3.Options;

let Database: typeof BetterSqlite3 | undefined;

/** new Database(file, opts) of better-sqlite3. */
export function openSqlite(file: string, opts?: SqliteOptions): SqliteDatabase {
  Database ??= createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  return new Database(file, opts);
}
