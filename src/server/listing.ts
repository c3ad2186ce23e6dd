// The list half of Neutron's API, in SQL: attribute filters (a repeated filter means OR),
// sort keys and directions, and keyset paging from a marker. Each service says which API
// attributes map to which columns; anything else is refused before a query is built.

import { sql, type Expression, type SqlBool, type SelectQueryBuilder } from 'kysely';
import { Faults } from '../common/errors.js';

export interface SortKey {
  key: string;
  dir: 'asc' | 'desc';
}

export interface ListQuery {
  filters: Record<string, unknown[]>;
  sort: SortKey[];
  limit?: number;
  marker?: string;
  pageReverse?: boolean;
}

export const emptyQuery = (): ListQuery => ({ filters: {}, sort: [] });

/** API attribute -> column (qualified by table alias) and how a filter value is stored. */
export interface Column {
  col: string;
  toDb?: (v: unknown) => unknown;
}
export type Columns = Record<string, Column>;

export const boolColumn = (col: string): Column => ({ col, toDb: (v) => (v ? 1 : 0) });

type AnyQB = SelectQueryBuilder<any, any, any>;

export function applyFilters(qb: AnyQB, columns: Columns, filters: Record<string, unknown[]>): AnyQB {
  for (const [attr, values] of Object.entries(filters)) {
    const c = columns[attr];
    if (!c) continue; // the service handles its special filters itself
    const vals = values.map((v) => (c.toDb ? c.toDb(v) : v));
    qb = vals.length === 1 ? qb.where(sql.ref(c.col), '=', vals[0]) : qb.where(sql.ref(c.col), 'in', vals);
  }
  return qb;
}

/**
 * Sort and page. `id` is always the last sort key so the order is total and a marker
 * names one position; page_reverse walks backwards from the marker and the caller flips
 * the page back into forward order.
 */
export function applyOrderAndPage(
  qb: AnyQB,
  columns: Columns,
  idCol: string,
  q: ListQuery,
  markerRow: Record<string, unknown> | undefined,
): AnyQB {
  const keys = q.sort.filter((s) => s.key !== 'id').map((s) => {
    const c = columns[s.key];
    if (!c) throw Faults.badRequest(`${s.key} is invalid attribute for sort_key`);
    return { col: c.col, dir: s.dir };
  });
  const idDir = q.sort.find((s) => s.key === 'id')?.dir ?? 'asc';
  keys.push({ col: idCol, dir: idDir });
  const flip = (d: 'asc' | 'desc') => (q.pageReverse ? (d === 'asc' ? 'desc' : 'asc') : d);
  if (markerRow) {
    // (k1 > m1) or (k1 = m1 and k2 > m2) or ... with > / < per direction.
    const val = (col: string) => markerRow[col.split('.').pop()!];
    const ors: Expression<SqlBool>[] = keys.map((k, i) => {
      const eqs = keys.slice(0, i).map((p) => sql<SqlBool>`${sql.ref(p.col)} = ${val(p.col)}`);
      const op = flip(k.dir) === 'asc' ? sql.raw('>') : sql.raw('<');
      return sql<SqlBool>`(${sql.join([...eqs, sql`${sql.ref(k.col)} ${op} ${val(k.col)}`], sql` and `)})`;
    });
    qb = qb.where(sql<SqlBool>`(${sql.join(ors, sql` or `)})`);
  }
  // A whole collection without sort keys comes in storage order (as Neutron's does): no
  // ORDER BY, which would make SQLite walk the id index and look every row up.
  const whole = !q.sort.length && q.limit === undefined && !markerRow;
  if (!whole) for (const k of keys) qb = qb.orderBy(sql.ref(k.col), flip(k.dir));
  if (q.limit !== undefined) qb = qb.limit(q.limit);
  return qb;
}

/**
 * The list skeleton every collection shares: `base` (the rows a context may see, columns
 * selected) with the query's filters, keyset paging from the marker (a marker the context
 * cannot see is `notFound`), the page in forward order. `narrow` adds a collection's own
 * filters. Also returns the filtered query, for collections that load child rows by it.
 */
export async function listRows<R>(
  base: AnyQB,
  columns: Columns,
  idCol: string,
  q: ListQuery,
  notFound: (id: string) => Error,
  narrow: (qb: AnyQB) => AnyQB = (qb) => qb,
  run: (qb: AnyQB) => Promise<R[]> = async (qb) => (await qb.execute()) as R[],
): Promise<{ rows: R[]; filtered: AnyQB }> {
  const filtered = narrow(applyFilters(base, columns, q.filters));
  const marker = q.marker ? await base.where(sql.ref(idCol), '=', q.marker).executeTakeFirst() : undefined;
  if (q.marker && !marker) throw notFound(q.marker);
  const rows = await run(applyOrderAndPage(filtered, columns, idCol, q, marker));
  return { rows: q.pageReverse ? rows.reverse() : rows, filtered };
}
