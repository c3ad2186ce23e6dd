// RPC transport benchmark: calls/s and casts/s at concurrency 1 and 32, with p50/p99 latency.
//   npm run bench:rpc [-- --url amqp://guest:guest@127.0.0.1:5672/] [--calls 2000] [--casts 5000]
// One server and one client transport on the same bus or broker; the payload is a typical
// agent message (a device-details request of about 300 bytes). Call latency is the round trip;
// cast latency runs from cast() to the handler seeing the message, and casts/s counts until the
// last one has arrived. Prints a table, then, as the LAST line, one JSON object.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { transportFromUrl, type Transport } from '../src/rpc/index.js';
import { redact } from '../src/rpc/url.js';
import { percentile } from './lib/stats.js';

interface Phase {
  kind: 'call' | 'cast';
  concurrency: number;
  n: number;
  ops_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
}

const USAGE = 'usage: npm run bench:rpc -- [--url inproc://|amqp://user:pass@host:5672/] [--calls 2000] [--casts 5000]';

async function main(): Promise<number> {
  let url: string;
  let calls: number;
  let casts: number;
  try {
    const { values } = parseArgs({
      args: process.argv.slice(2),
      options: { url: { type: 'string', default: 'inproc://bench' }, calls: { type: 'string', default: '2000' }, casts: { type: 'string', default: '5000' } },
      strict: true,
    });
    url = values.url;
    calls = positive('--calls', values.calls);
    casts = positive('--casts', values.casts);
  } catch (e) {
    console.error(`bench:rpc: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }

  const opts = { exchange: 'dvrnet_bench', queueExpiresMs: 60_000 };
  const server = transportFromUrl(url, opts);
  const client = transportFromUrl(url, opts);
  const topic = `bench.${randomBytes(3).toString('hex')}`;
  const arrived = new Map<number, number>();
  let onArrival: (() => void) | null = null;
  await server.serve(topic, {
    get_device_details: (a: { device: string }) => ({ device: a.device, port_id: a.device, network_id: 'n1', segmentation_id: 1001, network_type: 'vxlan', admin_state_up: true, fixed_ips: [{ subnet_id: 's1', ip_address: '192.168.1.10' }], device_owner: 'compute:nova', mac_address: 'fa:16:3e:00:00:01' }),
    port_update: (a: { seq: number }) => {
      arrived.set(a.seq, performance.now());
      onArrival?.();
    },
  });
  const request = (i: number) => ({ device: `tap${i.toString(16).padStart(8, '0')}-00`, agent_id: 'ovs-agent-compute1', host: 'compute1', context: { request_id: `req-${randomBytes(8).toString('hex')}`, project_id: null, is_admin: true } });

  try {
    // Warm up: connections, JIT, queue declarations.
    await run(200, 8, (i) => client.call(topic, 'get_device_details', request(i)));
    const phases: Phase[] = [];
    for (const c of [1, 32]) phases.push(await callPhase(client, topic, calls, c, request));
    let seq = 0;
    for (const c of [1, 32]) {
      arrived.clear();
      const base = seq;
      const sent = new Map<number, number>();
      const t0 = performance.now();
      const errors = await run(casts, c, (i) => {
        const s = base + i;
        sent.set(s, performance.now());
        return client.cast(topic, 'port_update', { seq: s, port: request(i) });
      });
      seq += casts;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${arrived.size} of ${casts - errors} casts arrived within 30 s`)), 30_000);
        const check = () => {
          if (arrived.size >= casts - errors) {
            clearTimeout(timer);
            onArrival = null;
            resolve();
          }
        };
        onArrival = check;
        check();
      });
      const wall = Math.max(...arrived.values()) - t0;
      const lat = [...arrived].map(([s, t]) => t - (sent.get(s) ?? t));
      phases.push({ kind: 'cast', concurrency: c, n: casts, ops_s: (arrived.size * 1000) / wall, p50_ms: percentile(lat, 50), p99_ms: percentile(lat, 99), errors });
    }

    console.log(`RPC benchmark over ${redact(url)} (topic ${topic})\n`);
    console.log('kind  conc      n     ops/s   p50 ms   p99 ms  errors');
    for (const p of phases) {
      console.log(`${p.kind.padEnd(5)} ${String(p.concurrency).padStart(4)} ${String(p.n).padStart(6)} ${p.ops_s.toFixed(0).padStart(9)} ${p.p50_ms.toFixed(3).padStart(8)} ${p.p99_ms.toFixed(3).padStart(8)} ${String(p.errors).padStart(7)}`);
    }
    const summary: Record<string, unknown> = { url: redact(url), transport: url.startsWith('inproc') ? 'inproc' : 'amqp' };
    for (const p of phases) {
      const k = `${p.kind}_c${p.concurrency}`;
      summary[`${p.kind}s_s_c${p.concurrency}`] = Math.round(p.ops_s);
      summary[`${k}_p50_ms`] = round3(p.p50_ms);
      summary[`${k}_p99_ms`] = round3(p.p99_ms);
    }
    summary.errors = phases.reduce((a, p) => a + p.errors, 0);
    console.log(JSON.stringify(summary));
    return summary.errors === 0 ? 0 : 1;
  } finally {
    await Promise.all([client.close(), server.close()]);
  }
}

async function callPhase(t: Transport, topic: string, n: number, c: number, request: (i: number) => unknown): Promise<Phase> {
  const lat: number[] = [];
  const t0 = performance.now();
  const errors = await run(n, c, async (i) => {
    const s = performance.now();
    await t.call(topic, 'get_device_details', request(i), { timeoutMs: 30_000 });
    lat.push(performance.now() - s);
  });
  const wall = performance.now() - t0;
  return { kind: 'call', concurrency: c, n, ops_s: (lat.length * 1000) / wall, p50_ms: percentile(lat, 50), p99_ms: percentile(lat, 99), errors };
}

/** Runs op(0..n-1) with `c` workers; returns the number of failures (the first is printed). */
async function run(n: number, c: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) {
        const i = next++;
        try {
          await op(i);
        } catch (e) {
          if (errors++ === 0) console.error(`bench:rpc: ${(e as Error).message}`);
        }
      }
    }),
  );
  return errors;
}

function positive(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} ${JSON.stringify(v)}: expected a positive integer`);
  return n;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`bench:rpc: ${(e as Error).stack ?? e}`);
    console.log(JSON.stringify({ errors: 1, error: (e as Error).message }));
    process.exit(1);
  },
);
