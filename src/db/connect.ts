// Opens the database named by `[database] connection` and brings its schema up to date.
// SQLite (better-sqlite3) is the embedded default; PostgreSQL (pg) is the same code across
// machines. Callers get a Kysely instance and never see which one it is, except through
// `dialect`, which the few dialect-specific spots (conflict detection) consult.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type CompiledQuery, type Migration, type MigrationProvider } from 'kysely';
import type { Database } from './schema.js';
import * as m001 from './migrations/001_l2_core.js';
import * as m002 from './migrations/002_l3_dvr.js';
import * as m003 from './migrations/003_port_indexes.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Db {
  kysely: Kysely<Database>;
  dialect: Dialect;
  /**
   * Run a compiled select and get its rows as arrays, in the order of its select list:
   * what the hot list paths use, since building an object per row costs twice as much
   * (better-sqlite3's raw mode, pg's rowMode 'array'). Outside any transaction.
   */
  arrays(query: CompiledQuery): Promise<unknown[][]>;
  close(): Promise<void>;
}

/** All migrations, in order. A new one is appended here; applied ones are never edited. */
const MIGRATIONS: Record<string, Migration> = {
  '001_l2_core': m001,
  '002_l3_dvr': m002,
  '003_port_indexes': m003,
};

class StaticProvider implements MigrationProvider {
  async getMigrations() {
    return MIGRATIONS;
  }
}

export async function migrate(kysely: Kysely<Database>): Promise<void> {
  const { error, results } = await new Migrator({ db: kysely, provider: new StaticProvider() }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? error}`);
  }
}

/**
 * `sqlite:///relative/path`, `sqlite:////absolute/path`, `sqlite://` (in memory, tests only),
 * `postgresql://user:pass@host/db` (also `postgresql+psycopg2://`, as in neutron.conf files).
 */
export async function openDatabase(connection: string): Promise<Db> {
  let db: Db;
  if (connection.startsWith('sqlite:')) {
    const path = connection.replace(/^sqlite:\/\/\/?/, '');
    const file = path === '' ? ':memory:' : path;
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const sqlite = new SQLite(file);
    // WAL + NORMAL: crash-safe (no corruption), a power loss may drop the last commits.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: statementCache(sqlite) }) });
    const raw = new Map<string, SQLite.Statement>();
    db = {
      kysely,
      dialect: 'sqlite',
      // A statement of its own per SQL text: raw mode is a property of the statement.
      async arrays(q) {
        let stmt = raw.get(q.sql);
        if (!stmt) {
          stmt = sqlite.prepare(q.sql).raw(true);
          if (raw.size > 64) raw.clear();
          raw.set(q.sql, stmt);
        }
        return stmt.all(...(q.parameters as unknown[])) as unknown[][];
      },
      close: () => kysely.destroy(),
    };
  } else if (/^postgres(ql)?(\+\w+)?:\/\//.test(connection)) {
    const url = connection.replace(/^postgres(ql)?(\+\w+)?:/, 'postgresql:');
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    // bigint columns (segment ids, IP numbers) fit in a JS number: parse them as such.
    pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    db = {
      kysely,
      dialect: 'postgres',
      async arrays(q) {
        return (await pool.query({ text: q.sql, values: q.parameters as unknown[], rowMode: 'array' })).rows;
      },
      close: () => kysely.destroy(),
    };
  } else {
    throw new Error(`unsupported database connection '${connection}': use sqlite:///path or postgresql://...`);
  }
  await migrate(db.kysely);
  return db;
}

/**
 * better-sqlite3 compiles a statement on every prepare(); Kysely prepares each query it
 * runs. The API's queries repeat with other parameters, so compiled statements are kept
 * by SQL text (a bounded map: the oldest go first).
 */
function statementCache(db: SQLite.Database, max = 512) {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => db.close(),
    prepare(sql: string) {
      let stmt = cache.get(sql);
      if (stmt) {
        cache.delete(sql);
        cache.set(sql, stmt);
        return stmt;
      }
      stmt = db.prepare(sql);
      cache.set(sql, stmt);
      if (cache.size > max) cache.delete(cache.keys().next().value!);
      return stmt;
    },
  };
}

/** True when `err` is a unique/primary-key violation: a concurrent writer took the value first. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** Errors after which the whole transaction may simply be run again. */
export function isRetriable(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return isUniqueViolation(err) || code === '40001' || code === '40P01' || code === 'SQLITE_BUSY';
}
