// Emulated dataplane benchmark: end-to-end packets per second for the DVR east-west path
// between two emulated hosts (VM -> tap -> qbr (iptables via bridge-nf) -> qvb/qvo -> br-int
// -> qrouter (routing, TTL, permanent neighbour) -> br-int -> br-tun (DVR MAC rewrite, l2pop)
// -> VXLAN over the tunnel network -> br-tun -> br-int (DVR ingress rewrite) -> qvo/qvb ->
// qbr -> tap -> VM), with 100, 10,000 and 100,000 flows in each OVS bridge, and the heap
// cost of flows. Steps are not recorded while measuring (deliveries and drops still are).
//
// Run: npm run bench:dataplane. The last line is one JSON object:
//   {"flows": [100, 10000, 100000], "pps": [...], "mb_per_100k_flows": ...}

import v8 from 'node:v8';
import vm from 'node:vm';
import { buildTestbed, VM2, type Testbed } from '../src/dataplane/emulated/testbed.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const FLOWS = [100, 10_000, 100_000];
const DPORT = 7000;

function flowCount(tb: Testbed): number {
  let max = 0;
  for (const h of tb.world.hosts.values()) for (const b of h.vswitch.bridges.values()) max = Math.max(max, b.model.flowCount);
  return max;
}

let baseFlows: number | undefined;

/** A testbed whose busiest bridge holds about `n` flows. */
function testbedWith(n: number): Testbed {
  baseFlows ??= flowCount(buildTestbed());
  return buildTestbed({ fillerFlows: Math.max(0, n - baseFlows) });
}

/** CPU seconds of this process (the machine may be shared: wall time would count others' work). */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function measure(n: number): { pps: number; flows: number; usPerPacket: number } {
  const tb = testbedWith(n);
  const w = tb.world;
  const flows = flowCount(tb);
  tb.states = {}; // the desired states are not part of the dataplane's working set
  const vm2 = w.host(VM2.host).ns(VM2.name);
  let received = 0;
  vm2.udp.set(DPORT, () => received++);
  // Warm up with tracing on (ARP, MAC learning, conntrack), then check the path works.
  const first = w.send({ host: 'compute1', ns: 'vm1' }, { proto: 'udp', dst: VM2.ip, sport: 40000, dport: DPORT, data: 'warm-up' });
  if (received !== 1) throw new Error(`East-west path broken: ${JSON.stringify(first.dropped.map((d) => d.reason))}`);
  w.tracing = false;
  const send = () => w.send({ host: 'compute1', ns: 'vm1' }, { proto: 'udp', dst: VM2.ip, sport: 40000, dport: DPORT, data: 'x' });
  for (let i = 0; i < 5000; i++) send();
  gc();
  // Best of several rounds: the least disturbed one is the cost of the path itself.
  let best = Infinity;
  let total = 0;
  received = 0;
  for (let round = 0; round < 7; round++) {
    const c0 = cpuSeconds();
    let count = 0;
    do {
      for (let i = 0; i < 1000; i++) send();
      count += 1000;
    } while (cpuSeconds() - c0 < 0.4);
    best = Math.min(best, (cpuSeconds() - c0) / count);
    total += count;
  }
  if (received !== total) throw new Error(`Lost packets: sent ${total}, received ${received}`);
  return { pps: Math.round(1 / best), flows, usPerPacket: best * 1e6 };
}

function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** Heap held per 100,000 flows in one bridge (the flows' share of a world, states dropped). */
function memoryPer100k(): number {
  let keep: Testbed['world'] | undefined;
  const before = heapMb();
  keep = buildTestbed().world;
  const small = heapMb();
  keep = undefined;
  keep = buildTestbed({ fillerFlows: 100_000 }).world;
  const big = heapMb();
  let bridges = 0;
  for (const h of keep.hosts.values()) bridges += h.vswitch.bridges.size;
  void before;
  keep = undefined;
  return (big - small) / bridges;
}

const results = FLOWS.map((n) => {
  const r = measure(n);
  console.log(`${String(r.flows).padStart(7)} flows in the busiest bridge: ${r.pps.toLocaleString('en-US').padStart(8)} packets per CPU second (${r.usPerPacket.toFixed(1)} us per end-to-end packet)`);
  return r;
});
const mb = memoryPer100k();
console.log(`memory: ${mb.toFixed(1)} MB per 100,000 flows in a bridge`);
console.log(`cost at ${FLOWS[2]} flows / cost at ${FLOWS[0]} flows: ${(results[0].pps / results[2].pps).toFixed(2)}`);
console.log(JSON.stringify({ flows: FLOWS, pps: results.map((r) => r.pps), mb_per_100k_flows: Math.round(mb * 10) / 10 }));
