// One transaction per API call that changes rows. Concurrent writers on PostgreSQL may
// collide on a unique key (two requests picking the same free address or segment); such a
// transaction is run again from the start, as Neutron's DB retry decorator does.

import type { Transaction } from 'kysely';
import { sql } from 'kysely';
import { type Db, isRetriable } from './connect.js';
import type { Database } from './schema.js';

export type Tx = Transaction<Database>;

const MAX_RETRIES = 20;

const commitHooks = new WeakMap<Tx, Array<() => Promise<void>>>();

/**
 * Run `fn` once the transaction `tx` has committed (Neutron's postcommit): notifications of
 * what the transaction changed. A transaction that fails or is retried runs none of its hooks.
 */
export function afterCommit(tx: Tx, fn: () => Promise<void>): void {
  const list = commitHooks.get(tx);
  if (list) list.push(fn);
  else commitHooks.set(tx, [fn]);
}

export async function inTransaction<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    let current: Tx | undefined;
    try {
      const result = await db.kysely.transaction().execute((tx) => {
        current = tx;
        return fn(tx);
      });
      for (const hook of commitHooks.get(current!) ?? []) await hook();
      return result;
    } catch (err) {
      if (attempt >= MAX_RETRIES || !isRetriable(err)) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)));
    }
  }
}

/**
 * Serialise writers of one allocation domain (a network's addresses, the segment pool) for
 * the rest of the transaction. SQLite already runs one transaction at a time; PostgreSQL
 * takes a transaction-scoped advisory lock, so concurrent creators queue instead of racing.
 */
export async function lockDomain(db: Db, tx: Tx, domain: string): Promise<void> {
  if (db.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${domain}))`.execute(tx);
}

/**
 * The lowest integer in [min, max] not yet taken in `table.column` among rows matching
 * `scope`, or undefined when the range is full. Walks the index from `min` and stops at the
 * first gap, so the cost grows with the taken prefix of the range, not with its size.
 */
export async function lowestFree(
  tx: Tx,
  table: 'ml2_segment_allocations' | 'ipallocations',
  column: 'segmentation_id' | 'ip_num',
  scope: Record<string, string>,
  min: number,
  max: number,
): Promise<number | undefined> {
  const t = sql.table(table);
  const c = sql.ref(column);
  const scopeSql = (alias: string) =>
    sql.join(
      Object.entries(scope).map(([k, v]) => sql`${sql.ref(`${alias}.${k}`)} = ${v}`),
      sql` and `,
    );
  // Usually the taken part of the range is dense from its start: one counted index range
  // scan tells, and the answer is the next number. Only a range with holes needs the walk.
  const stats = await sql<{ n: number; top: number | null; low: number | null }>`
    select count(*) as n, max(${c}) as top, min(${c}) as low from ${t} a
    where ${scopeSql('a')} and ${c} >= ${min} and ${c} <= ${max}`.execute(tx);
  const { n, top, low } = stats.rows[0];
  if (Number(n) === 0 || Number(low) > min) return min;
  if (Number(n) === Number(top) - min + 1) return Number(top) < max ? Number(top) + 1 : undefined;
  const ac = sql.ref(`a.${column}`);
  const bc = sql.ref(`b.${column}`);
  const r = await sql<{ c: number }>`
    select ${ac} + 1 as c from ${t} a
    where ${scopeSql('a')} and ${ac} >= ${min} and ${ac} < ${max}
      and not exists (select 1 from ${t} b where ${scopeSql('b')} and ${bc} = ${ac} + 1)
    order by ${ac} limit 1`.execute(tx);
  return r.rows.length ? Number(r.rows[0].c) : undefined;
}
