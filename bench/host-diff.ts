// Cost of diff on a large host: 100,000 flows (50,000 each on br-int and br-tun) plus 200
// router namespaces, when one flow changed. Three cases: two independent values (what a
// driver's read-back gives), a desired state derived with the pure builders (structure
// shared), and no change at all. Prints one JSON line.
//   npx tsx bench/host-diff.ts
import { addFlows, addInternalPort, addNamespace, addNeighbour, addRoute, diff, flow, sampleNetworkHost, type Flow, type HostState } from '../src/host/index.js';

const FLOWS_PER_BRIDGE = 50_000;
const ROUTERS = 200;

function bigHost(): HostState {
  let s = sampleNetworkHost();
  for (const bridge of ['br-int', 'br-tun']) {
    const flows: Flow[] = [];
    for (let i = 0; i < FLOWS_PER_BRIDGE; i++) {
      flows.push(flow({ table: i % 40, priority: 1 + (i % 7), cookie: 0x1000 + (i % 500), match: `dl_vlan=${i % 4000},dl_dst=fa:16:3e:${hex(i >> 16)}:${hex(i >> 8)}:${hex(i)}`, actions: `strip_vlan,set_tunnel:0x${(i % 5000).toString(16)},output:${2 + (i % 30)}` }));
    }
    s = addFlows(s, bridge, flows);
  }
  for (let r = 0; r < ROUTERS; r++) {
    const ns = `qrouter-${r.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;
    const qr = `qr-${r.toString(16).padStart(8, '0')}-00`;
    s = addNamespace(s, ns);
    s = addInternalPort(s, 'br-int', qr, { namespace: ns, tag: 1 + r, mac: `fa:16:3e:00:${hex(r >> 8)}:${hex(r)}`, addresses: [`10.${r >> 8}.${r & 255}.1/24`] });
    s = addRoute(s, ns, { dst: '10.200.0.0/16', via: `10.${r >> 8}.${r & 255}.2`, dev: qr });
    for (let n = 0; n < 20; n++) s = addNeighbour(s, ns, { dev: qr, ip: `10.${r >> 8}.${r & 255}.${10 + n}`, lladdr: `fa:16:3e:${hex(r)}:00:${hex(n)}` });
  }
  return s;
}

function hex(n: number): string {
  return (n & 255).toString(16).padStart(2, '0');
}

function median(fn: () => unknown, runs = 9): number {
  fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[runs >> 1] * 100) / 100;
}

const current = bigHost();
const totalFlows = Object.values(current.ovs.bridges).reduce((n, b) => n + b.flows.length, 0);

// Independent values: the desired state is a separate copy with one flow's actions changed.
const independent: HostState = JSON.parse(JSON.stringify(current));
const parsedFlows = independent.ovs.bridges['br-int'].flows as Flow[]; // parsed JSON: a plain array
const target = parsedFlows[FLOWS_PER_BRIDGE / 2];
parsedFlows[FLOWS_PER_BRIDGE / 2] = { ...target, actions: 'drop' };
const opsIndependent = diff(current, independent);

// Shared structure: what an agent deriving the new state with the builders produces.
const shared = addFlows(current, 'br-int', [{ ...target, actions: 'drop' }]);
const opsShared = diff(current, shared);

const unchanged: HostState = JSON.parse(JSON.stringify(current));

const check = (ops: ReturnType<typeof diff>) => ops.length === 1 && ops[0].op === 'flows.update' && ops[0].modify.length === 1 && ops[0].add.length === 0 && ops[0].delete.length === 0;
if (!check(opsIndependent) || !check(opsShared) || diff(current, unchanged).length !== 0) {
  throw new Error('diff did not find exactly the one changed flow');
}

console.log(
  JSON.stringify({
    flows: totalFlows,
    namespaces: Object.keys(current.namespaces).length,
    diff_one_flow_ms: median(() => diff(current, independent)),
    diff_one_flow_shared_ms: median(() => diff(current, shared)),
    diff_unchanged_copy_ms: median(() => diff(current, unchanged)),
    ops: opsIndependent.length,
  }),
);
