// Output as neutronclient (cliff) prints it: `Field | Value` tables for one resource, column
// tables for lists (prettytable, left aligned, multi-line cells), and the machine formats
// `-f json` and `-f value`, with `-c COLUMN` choosing columns.

import { UsageError } from './args.js';

export type Row = Record<string, unknown>;
export type Format = 'table' | 'json' | 'value';

export function outputFormat(f: string | undefined): Format {
  if (f === undefined || f === 'table') return 'table';
  if (f === 'json' || f === 'value') return f;
  throw new UsageError(`argument -f/--format: invalid choice: '${f}' (choose from 'table', 'json', 'value')`);
}

/** Python's json.dumps spacing (", " and ": "), which neutronclient's cells show. */
export function pyJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pyJson).join(', ')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.entries(v as Row)
      .map(([k, x]) => `${JSON.stringify(k)}: ${pyJson(x)}`)
      .join(', ')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** Python's json.dumps(v, indent=n): one item per line, "," at line ends (neutronclient's json_indent). */
export function pyJsonIndent(v: unknown, indent: number, level = 0): string {
  const pad = (k: number) => ' '.repeat(indent * k);
  if (Array.isArray(v)) return v.length ? `[\n${v.map((x) => pad(level + 1) + pyJsonIndent(x, indent, level + 1)).join(',\n')}\n${pad(level)}]` : '[]';
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Row);
    return entries.length
      ? `{\n${entries.map(([k, x]) => `${pad(level + 1)}${JSON.stringify(k)}: ${pyJsonIndent(x, indent, level + 1)}`).join(',\n')}\n${pad(level)}}`
      : '{}';
  }
  return JSON.stringify(v) ?? 'null';
}

/** Python's repr of a JSON value, as `-f value` prints lists and dicts. */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object')
    return `{${Object.entries(v as Row)
      .map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`)
      .join(', ')}}`;
  return String(v);
}

/** A cell as neutronclient shows it: lists one item per line, dicts as JSON (indented when the command sets json_indent), null empty. */
export function cell(v: unknown, indent?: number): string {
  const json = (x: unknown) => (indent ? pyJsonIndent(x, indent) : pyJson(x));
  if (v === null || v === undefined) return '';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' && x !== null ? json(x) : cell(x))).join('\n');
  if (typeof v === 'object') return json(v);
  return String(v);
}

/** A scalar for `-f value`: strings bare, the rest as Python prints them. */
function valueCell(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : pyRepr(v);
}

/** prettytable with every column left aligned, as cliff configures it. */
export function table(headers: string[], rows: string[][]): string {
  const split = rows.map((r) => r.map((c) => c.split('\n')));
  const widths = headers.map((h, i) => Math.max(h.length, ...split.map((r) => Math.max(...r[i].map((l) => l.length)))));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  const out = [rule, line(headers), rule];
  for (const r of split) {
    const height = Math.max(1, ...r.map((c) => c.length));
    for (let k = 0; k < height; k++) out.push(line(r.map((c) => c[k] ?? '')));
  }
  out.push(rule);
  return out.join('\n');
}

const pick = (columns: string[], available: string[]) => {
  if (columns.length === 0) return available;
  const unknown = columns.filter((c) => !available.includes(c));
  if (unknown.length) throw new UsageError(`No recognized column names in ${JSON.stringify(unknown)}. Recognized columns are ${JSON.stringify(available)}.`);
  return columns;
};

/** One resource: fields sorted by name, as neutronclient's show/create. */
export function formatOne(obj: Row, format: Format, columns: string[], cells: Record<string, (v: unknown) => string> = {}): string {
  const fields = pick(columns, Object.keys(obj).sort());
  if (format === 'json') return JSON.stringify(Object.fromEntries(fields.map((f) => [f, obj[f]])), null, 2);
  if (format === 'value') return fields.map((f) => valueCell(obj[f])).join('\n');
  return table(['Field', 'Value'], fields.map((f) => [f, (cells[f] ?? cell)(obj[f])]));
}

/** A list: one row per item; `cells` formats columns that need more than cell(). Empty lists print nothing. */
export function formatList(rows: Row[], columns: string[], format: Format, chosen: string[], cells: Record<string, (v: unknown, row: Row) => string> = {}): string {
  const cols = pick(chosen, columns);
  if (format === 'json') return JSON.stringify(rows.map((r) => Object.fromEntries(cols.map((c) => [c, r[c] ?? null]))), null, 2);
  if (rows.length === 0) return '';
  if (format === 'value') return rows.map((r) => cols.map((c) => valueCell(r[c])).join(' ')).join('\n');
  return table(cols, rows.map((r) => cols.map((c) => (cells[c] ? cells[c](r[c], r) : cell(r[c])))));
}
