// Latency statistics of a benchmark phase.

export interface PhaseStats {
  n: number;
  concurrency: number;
  /** Operations per second over the phase's wall time (all n operations, errors included). */
  ops_s: number;
  wall_ms: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
  errors: number;
  /** The server's CPU time over the phase, when its pid is known. */
  server_cpu_ms?: number;
}

/**
 * Percentile by linear interpolation between closest ranks (numpy's default), so that p99 of
 * 50 samples lies between the two slowest instead of being the maximum.
 */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  const pos = (p / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export function median(xs: number[]): number {
  return percentile(xs.filter((x) => Number.isFinite(x)), 50);
}

export function summarize(latencies: number[], wallMs: number, concurrency: number, errors: number): PhaseStats {
  return {
    n: latencies.length,
    concurrency,
    ops_s: wallMs > 0 ? (latencies.length * 1000) / wallMs : NaN,
    wall_ms: wallMs,
    p50_ms: percentile(latencies, 50),
    p95_ms: percentile(latencies, 95),
    p99_ms: percentile(latencies, 99),
    max_ms: latencies.length ? Math.max(...latencies) : NaN,
    errors,
  };
}
