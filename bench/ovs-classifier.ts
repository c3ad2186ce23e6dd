// Micro-benchmark of the OVS model's classifier and pipeline: lookup cost with 100, 10,000
// and 100,000 flows in a table (it should stay nearly flat: tuple-space search costs per
// shape, not per flow), and one packet through a 5-table br-int-like pipeline (DVR ingress:
// tables 0, 1, 59, 61, 60) with that many flows in each of tables 1 and 60. Prints one JSON line last. Run: npx tsx bench/ovs-classifier.ts

import { OvsBridge } from '../src/dataplane/emulated/ovs/index.js';
import { frameToKey } from '../src/dataplane/emulated/ovs/key.js';
import type { Frame } from '../src/dataplane/emulated/packet.js';

const SIZES = [100, 10_000, 100_000];

function mac(i: number): string {
  const h = (n: number) => (n & 255).toString(16).padStart(2, '0');
  return `fa:16:3e:${h(i >> 16)}:${h(i >> 8)}:${h(i)}`;
}

function build(n: number): OvsBridge {
  const b = new OvsBridge('br-int');
  b.addPort('patch-tun');
  b.addPort('qvo-a', { tag: 1 });
  b.addPort('qvo-b', { tag: 1 });
  const flows = [
    'table=0,priority=0,actions=resubmit(,59)',
    'table=0,priority=65535,dl_vlan=4095,actions=drop',
    'table=0,priority=2,in_port=1,dl_src=fa:16:3f:00:00:0b,actions=resubmit(,1)',
    'table=1,priority=1,actions=drop',
    'table=59,priority=0,actions=resubmit(,61)',
    'table=61,priority=0,actions=resubmit(,60)',
    'table=60,priority=3,actions=NORMAL',
    // A few more shapes, as the OVS agent's tables have.
    'table=60,priority=90,dl_vlan=4094,actions=drop',
    'table=60,priority=50,ip,nw_dst=192.168.0.0/16,actions=drop',
    'table=60,priority=40,in_port=2,dl_src=fa:16:3e:ff:ff:ff,actions=drop',
    'table=60,priority=30,arp,arp_tpa=192.168.1.1,actions=drop',
  ];
  // DVR's per-port flows, one per (VLAN, MAC), in table 1 (gateway MAC rewrite) and table 60
  // (direct delivery): n flows in each of the two tables.
  for (let i = 0; i < n; i++) {
    flows.push(`table=1,priority=20,dl_vlan=${1 + (i % 4000)},dl_dst=${mac(i)},actions=mod_dl_src:fa:16:3e:00:00:aa,resubmit(,59)`);
    flows.push(`table=60,priority=20,dl_vlan=${1 + (i % 4000)},dl_dst=${mac(i)},actions=strip_vlan,output:2`);
  }
  b.addFlows(flows);
  return b;
}

/** Best of 5 rounds: the machine is shared, and the minimum is the least disturbed figure. */
function timeNs(iterations: number, fn: () => void): number {
  for (let i = 0; i < Math.min(iterations, 20_000); i++) fn(); // warm up
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / iterations);
  }
  return best;
}

const lookupNs: number[] = [];
const packetNs: number[] = [];
const packetTracedNs: number[] = [];
const shapes: number[] = [];
let heapPer100k = 0;

for (const n of SIZES) {
  global.gc?.();
  const before = process.memoryUsage().heapUsed;
  const b = build(n);
  global.gc?.();
  const after = process.memoryUsage().heapUsed;
  if (n === 100_000) heapPer100k = (after - before) / 2 ** 20;
  shapes.push(b.flows.table(60).shapes);
  // The packet hits the last-added per-port flow in table 60.
  const last = n - 1;
  const frame: Frame = {
    eth: { src: 'fa:16:3f:00:00:0b', dst: mac(last), type: 0x0800 },
    vlan: 1 + (last % 4000),
    ip: { src: '10.0.1.5', dst: '10.0.0.11', ttl: 63, proto: 1 },
    l4: { kind: 'icmp', type: 8, code: 0 },
  };
  const w = frameToKey(frame, 1, undefined);
  const table = b.flows.table(60);
  const hit = table.lookup(w);
  if (!hit || hit.priority !== 20) throw new Error('benchmark packet does not hit its flow');
  lookupNs.push(timeNs(300_000, () => table.lookup(w)));
  const probe = b.process(frame, 'patch-tun');
  if (probe.outputs.length !== 1 || probe.steps.length !== 5) throw new Error(`unexpected pipeline: ${JSON.stringify(probe.steps.map((s) => s.table))}`);
  packetNs.push(timeNs(100_000, () => b.process(frame, 'patch-tun', { trace: false })));
  packetTracedNs.push(timeNs(50_000, () => b.process(frame, 'patch-tun')));
}

const r = (xs: number[]) => xs.map((x) => Math.round(x));
console.log(
  JSON.stringify({
    flows: SIZES,
    table60_shapes: shapes,
    lookup_ns: r(lookupNs),
    packet_5_tables_ns: r(packetNs),
    packet_5_tables_traced_ns: r(packetTracedNs),
    lookup_ratio_100k_vs_100: +(lookupNs[2] / lookupNs[0]).toFixed(2),
    mb_per_100k_flows: global.gc ? +(heapPer100k / 2).toFixed(1) : null, // 2 x 100k flows were built
  }),
);
