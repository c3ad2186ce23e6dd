// Prints the trace of a packet through the hand-written DVR testbed:
//   tsx src/dataplane/emulated/trace-demo.ts [east-west|floating-ip] [--json] [--compact]
// east-west: VM1 (compute1, 192.168.1.11) pings VM2 (compute2, 192.168.2.11), scenario 4.3;
// floating-ip: the external router pings VM1's floating IP 203.0.113.102, scenario 4.2.
// The first exchange (ARP, MAC learning) is done before the traced one unless --cold.

import { renderTrace, traceToJson } from '../../trace/render.js';
import { buildTestbed, EXTERNAL, VM2 } from './testbed.js';

const args = process.argv.slice(2);
const which = args.find((a) => !a.startsWith('--')) ?? 'east-west';
if (which !== 'east-west' && which !== 'floating-ip') {
  console.error(`Unknown walk '${which}': use east-west or floating-ip`);
  process.exit(2);
}
const { world } = buildTestbed({ floatingIp: which === 'floating-ip' });
const run = () => (which === 'east-west' ? world.ping({ host: 'compute1', ns: 'vm1' }, VM2.ip) : world.ping({ host: 'router' }, EXTERNAL.floatingIp));
if (!args.includes('--cold')) run();
const rec = run();
console.log(args.includes('--json') ? traceToJson(rec) : renderTrace(rec, { compact: args.includes('--compact') }));
