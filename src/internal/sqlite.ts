/**
 * sqlite: better-sqlite3. Its JavaScript is imported (so the CLI's bundle and
 * startup snapshot hold it, compiled); its native addon is loaded on first
 * use, by path: a V8 startup snapshot (src/internal/snapshot.ts) cannot hold
 * an addon, commands that never open a database do not pay for it, and the
 * `bindings` lookup better-sqlite3 would make (a stack trace and a dozen
 * stats to find its own folder) is skipped. Should the addon not be where
 * better-sqlite3's own build puts it, that lookup runs as usual.
 */
import BetterSqlite3 from 'better-sqlite3';
import { createRequire } from 'node:module';

export type SqliteDatabase = BetterSqlite3.Database;
export type SqliteStatement = BetterSqlite3.Statement;
export type SqliteOptions = BetterSqlite3.Options;

const ADDON = 'better-sqlite3/build/Release/better_sqlite3.node';

/** The addon object, or null: let better-sqlite3 find it. */
let addon: object | null | undefined;

function nativeBinding(): object | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(ADDON) as object;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
      addon = null;
    }
  }
  return addon;
}

/** new Database(file, opts) of better-sqlite3. */
export function openSqlite(file: string, opts?: SqliteOptions): SqliteDatabase {
  const binding = nativeBinding();
  return new BetterSqlite3(file, binding ? { ...opts, nativeBinding: binding as unknown as string } : opts);
}
