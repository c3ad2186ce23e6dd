// Runs n operations with at most `concurrency` in flight and times each one.
import { performance } from 'node:perf_hooks';

export interface PoolResult<T> {
  results: T[];
  latencies: number[];
  wallMs: number;
}

/**
 * `latencyOf` lets an operation report its own latency (the HTTP client stops the clock at the
 * last byte, before parsing JSON on the client's CPU); otherwise the whole call is timed.
 */
export async function runPool<T>(
  n: number,
  concurrency: number,
  op: (i: number) => Promise<T>,
  latencyOf?: (result: T) => number | undefined,
): Promise<PoolResult<T>> {
  const results = new Array<T>(n);
  const latencies = new Array<number>(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const t0 = performance.now();
      results[i] = await op(i);
      latencies[i] = latencyOf?.(results[i]) ?? performance.now() - t0;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker));
  return { results, latencies, wallMs: performance.now() - t0 };
}
