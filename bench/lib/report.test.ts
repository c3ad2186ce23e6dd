import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runPool } from './pool.js';
import { metricsOf, medianMetrics } from './report.js';
import { percentile, summarize } from './stats.js';

test('percentiles interpolate between closest ranks', () => {
  const xs = [5, 1, 4, 2, 3];
  assert.equal(percentile(xs, 50), 3);
  assert.equal(percentile(xs, 0), 1);
  assert.equal(percentile(xs, 100), 5);
  assert.equal(percentile(xs, 95), 4.8);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test('the pool never exceeds its concurrency and times every operation', async () => {
  let inFlight = 0;
  let peak = 0;
  const r = await runPool(40, 16, async (i) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((res) => setTimeout(res, 2));
    inFlight--;
    return i * 2;
  });
  assert.equal(peak, 16);
  assert.deepEqual(r.results, Array.from({ length: 40 }, (_, i) => i * 2));
  assert.equal(r.latencies.length, 40);
  assert.ok(r.latencies.every((l) => l >= 1));
});

test('metric names: the JSON keys the issue asks for', () => {
  const phase = (key: string, concurrency: number, p99: number) => ({
    key,
    label: key,
    ...summarize([1, 2, 3, p99], 100, concurrency, 0),
  });
  const m = metricsOf(
    [phase('net_create', 1, 4), phase('port_create_c1', 1, 5), phase('port_create_c16', 16, 90), phase('port_list', 1, 7), phase('subnet_create', 1, 4)],
    16,
  );
  for (const k of ['net_create_ops_s', 'port_create_ops_s_c1', 'port_create_ops_s_c16', 'port_create_p99_ms', 'port_list_p50_ms', 'port_list_p99_ms']) {
    assert.ok(k in m, k);
  }
  assert.equal(m.port_create_p99_ms, m.port_create_p99_ms_c16);
  assert.equal(m.net_create_ops_s, 40);
  assert.ok('subnet_create_ms' in m);
  assert.deepEqual(medianMetrics([{ a: 1 }, { a: 5 }, { a: 3 }]), { a: 3 });
});
