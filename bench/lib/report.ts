// Turns phase results into the human table and the flat metrics of the final JSON line.
import type { PhaseResult } from './phases.js';
import { median } from './stats.js';

export type Metrics = Record<string, number>;

const SINGLE_OPS = new Set(['subnet_create', 'subnet_delete', 'net_delete_last']);

/**
 * Flat metric names: `<phase>_ops_s`, `<phase>_p50_ms`, ... ; port creation is keyed by its
 * concurrency (`port_create_ops_s_c1`, `port_create_p99_ms_c16`), and `port_create_p50/95/99_ms`
 * without suffix are those of the concurrent phase; a one-request phase gives `<phase>_ms`.
 */
export function metricsOf(phases: PhaseResult[], concurrency: number): Metrics {
  const m: Metrics = {};
  for (const p of phases) {
    if (SINGLE_OPS.has(p.key)) {
      m[`${p.key}_ms`] = round(p.p50_ms, 3);
      continue;
    }
    const c = /^port_create_(c\d+)$/.exec(p.key);
    const name = (stat: string) => (c ? `port_create_${stat}_${c[1]}` : `${p.key}_${stat}`);
    m[name('ops_s')] = round(p.ops_s, 2);
    m[name('p50_ms')] = round(p.p50_ms, 3);
    m[name('p95_ms')] = round(p.p95_ms, 3);
    m[name('p99_ms')] = round(p.p99_ms, 3);
    // Operations per second of server CPU: what one core sustains, whatever else the machine runs.
    if (p.server_cpu_ms !== undefined && p.server_cpu_ms > 0) m[name('ops_per_server_cpu_s')] = round((p.n * 1000) / p.server_cpu_ms, 1);
    if (c && c[1] === `c${concurrency}` && concurrency > 1) {
      m.port_create_p50_ms = m[name('p50_ms')];
      m.port_create_p95_ms = m[name('p95_ms')];
      m.port_create_p99_ms = m[name('p99_ms')];
    }
  }
  return m;
}

/** Per-metric median over runs (metrics missing from a run are skipped for that run). */
export function medianMetrics(runs: Metrics[]): Metrics {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r)))];
  const out: Metrics = {};
  for (const k of keys) out[k] = round(median(runs.map((r) => r[k]).filter((x) => x !== undefined)), 3);
  return out;
}

export function table(phases: PhaseResult[]): string {
  const rows = [['phase', 'n', 'conc', 'ops/s', 'p50 ms', 'p95 ms', 'p99 ms', 'errors', 'srv cpu ms/op']];
  for (const p of phases) {
    const single = p.n <= 1;
    rows.push([
      p.label,
      String(p.n),
      String(p.concurrency),
      fmt(p.ops_s, 2),
      fmt(p.p50_ms, 2),
      single ? '' : fmt(p.p95_ms, 2),
      single ? '' : fmt(p.p99_ms, 2),
      String(p.errors),
      p.server_cpu_ms === undefined ? '' : fmt(p.server_cpu_ms / Math.max(p.n, 1), 3),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r, ri) => {
      const line = r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
      return ri === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

function fmt(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

function round(x: number, digits: number): number {
  return Number.isFinite(x) ? Number(x.toFixed(digits)) : NaN;
}
