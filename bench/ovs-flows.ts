// The OVS agent's flow build after one l2population change, per host: what every host of a
// network pays when a port comes up elsewhere. compute1's agent as shipped (etc/), ten VXLAN
// networks with P peers each (a host of the convergence benchmark's cloud at N = P hosts),
// then 1000 casts of one new port each, one network after the other; planFlows is timed
// after each (median and mean).
// Prints one JSON line.
//   npm run bench:ovs-flows [-- --peers 200,1000]
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { applyFdb, ovsSettings } from '../src/agents/ovs/agent.js';
import { planFlows, type LocalNetwork, type OvsPlan } from '../src/agents/ovs/flows.js';
import { loadOvsAgentConfig } from '../src/config/load.js';
import { FLOODING_ENTRY, type FdbEntries } from '../src/rpc/messages.js';

/** compute1's agent as the shipped scenario configures it (the all-in-one cloud's too). */
const ETC = join(import.meta.dirname, '../etc');
const SETTINGS = ovsSettings(loadOvsAgentConfig([join(ETC, 'neutron.conf'), join(ETC, 'openvswitch_agent.ini'), join(ETC, 'compute1', 'openvswitch_agent.ini')], { warn: () => {} }));

const CHANGES = 1000;
const hex2 = (n: number) => (n & 255).toString(16).padStart(2, '0');
const peerIp = (h: number) => `10.1.${h >> 8}.${h & 255}`;

function measure(peers: number): { median_us: number; mean_us: number; br_tun_flows: number } {
  const settings = SETTINGS;
  const nets: LocalNetwork[] = Array.from({ length: 10 }, (_, k) => ({ id: `net${k}`, lvid: 100 + k, network_type: 'vxlan', physical_network: null, segmentation_id: 100 + k }));
  const fdb: FdbEntries = {};
  for (const n of nets) {
    const ports: FdbEntries[string]['ports'] = {};
    for (let h = 2; h < peers + 2; h++) ports[peerIp(h)] = [FLOODING_ENTRY, [`fa:16:3e:${hex2(n.lvid)}:${hex2(h >> 8)}:${hex2(h)}`, `172.${n.lvid - 84}.${h >> 8}.${h & 255}`]];
    fdb[n.id] = { network_type: 'vxlan', segment_id: n.segmentation_id!, ports };
  }
  const plan: OvsPlan = { settings, ports: [], networks: nets, fdb, dvrMac: 'fa:16:3f:00:00:01', remoteDvrMacs: [], physicalBridges: [] };
  let flows = planFlows(plan);
  const times: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const n = nets[i % nets.length];
    const at = peerIp(2 + ((i * 7) % peers));
    applyFdb(plan.fdb, { [n.id]: { network_type: 'vxlan', segment_id: n.segmentation_id!, ports: { [at]: [[`fa:16:3e:77:${hex2(i >> 8)}:${hex2(i)}`, `172.${n.lvid - 84}.200.${i & 255}`]] } } }, true);
    const t0 = performance.now();
    flows = planFlows(plan);
    times.push(performance.now() - t0);
  }
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  times.sort((a, b) => a - b);
  return { median_us: Math.round(times[times.length >> 1] * 1000), mean_us: Math.round(mean * 1000), br_tun_flows: flows.bridges['br-tun'].length };
}

const USAGE = 'usage: npm run bench:ovs-flows [-- --peers 200,1000]';
let peerCounts: number[];
try {
  const { values } = parseArgs({ options: { peers: { type: 'string', default: '200,1000' } }, strict: true });
  peerCounts = values.peers!.split(',').map(Number);
  if (!peerCounts.every((p) => Number.isInteger(p) && p >= 1)) throw new Error(`--peers takes positive integers separated by commas, got '${values.peers}'`);
} catch (e) {
  console.error(`bench:ovs-flows: ${(e as Error).message}\n${USAGE}`);
  process.exit(2);
}
const result: Record<string, unknown> = {};
for (const p of peerCounts) {
  const r = measure(p);
  console.log(`${p} peers per network: planFlows after one FDB change, median ${r.median_us} us, mean ${r.mean_us} us (br-tun ${r.br_tun_flows} flows)`);
  result[`peers_${p}_median_us`] = r.median_us;
  result[`peers_${p}_mean_us`] = r.mean_us;
}
console.log(JSON.stringify(result));
