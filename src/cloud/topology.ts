// The cloud's physical layout: nodes with their roles and addresses on the management,
// tunnel, VLAN and external networks, plus the world outside (the external router EG at
// 203.0.113.1 and a host standing for the internet). The default is the scenario's
// (spec section 2): controller, network1, compute1, compute2.

import { readFileSync } from 'node:fs';

export type Role = 'controller' | 'network' | 'compute';

export interface NodeSpec {
  name: string;
  roles: Role[];
  /** Host part on the management (10.0.0.x) and tunnel (10.0.1.x) networks. */
  index: number;
}

export interface Topology {
  nodes: NodeSpec[];
  management: string; // '10.0.0.0/24'
  tunnel: string; // '10.0.1.0/24'
  external: { cidr: string; gateway: string; gatewayMac: string };
  outside: { cidr: string; router: string; host: string };
}

export function scenarioTopology(computes = 2): Topology {
  const nodes: NodeSpec[] = [
    { name: 'controller', roles: ['controller'], index: 11 },
    { name: 'network1', roles: ['network'], index: 21 },
  ];
  for (let k = 1; k <= computes; k++) nodes.push({ name: `compute${k}`, roles: ['compute'], index: 30 + k });
  return {
    nodes,
    management: '10.0.0.0/24',
    tunnel: '10.0.1.0/24',
    external: { cidr: '203.0.113.0/24', gateway: '203.0.113.1', gatewayMac: 'fa:16:3e:ee:00:01' },
    outside: { cidr: '198.51.100.0/24', router: '198.51.100.1', host: '198.51.100.10' },
  };
}

/** The address of node `index` on a network: the CIDR's base plus the index (a big cloud uses a /16). */
export function nodeAddress(cidr: string, index: number): string {
  const [base, len] = cidr.split('/');
  const n = base.split('.').reduce((a, o) => a * 256 + Number(o), 0) + index;
  if (index < 1 || index >= 2 ** (32 - Number(len)) - 1) throw new Error(`node index ${index} does not fit in ${cidr}`);
  return `${[24, 16, 8, 0].map((sh) => Math.floor(n / 2 ** sh) % 256).join('.')}/${len}`;
}

export function loadTopology(file: string): Topology {
  let t: Topology;
  try {
    t = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`topology ${file}: ${(err as Error).message}`);
  }
  if (!Array.isArray(t.nodes) || !t.nodes.length) throw new Error(`topology ${file}: "nodes" must be a non-empty list`);
  const names = new Set<string>();
  for (const n of t.nodes) {
    if (!n.name || !Array.isArray(n.roles) || typeof n.index !== 'number') throw new Error(`topology ${file}: node ${JSON.stringify(n)} needs name, roles and index`);
    if (names.has(n.name)) throw new Error(`topology ${file}: node name ${n.name} appears twice`);
    names.add(n.name);
    for (const r of n.roles) if (!['controller', 'network', 'compute'].includes(r)) throw new Error(`topology ${file}: node ${n.name} has unknown role ${r}`);
  }
  if (!t.nodes.some((n) => n.roles.includes('network'))) throw new Error(`topology ${file}: no node has the network role`);
  return { ...scenarioTopology(0), ...t };
}
