// neutron net-create / net-list / net-show / net-update / net-delete.

import type { OptionSpec } from '../core/args.js';
import type { Row } from '../core/format.js';
import { DESCRIPTION, NAME, TENANT_ID, resourceCommands } from '../core/resource.js';

const PROVIDER: OptionSpec[] = [
  { flags: ['--provider:network_type'], attr: 'provider:network_type', kind: 'string', metavar: '<network_type>', help: 'the physical mechanism (flat, vlan, gre, vxlan)' },
  { flags: ['--provider:physical_network'], attr: 'provider:physical_network', kind: 'string', metavar: '<physical_network_name>', help: 'the physical network (flat, vlan)' },
  { flags: ['--provider:segmentation_id'], attr: 'provider:segmentation_id', kind: 'int', metavar: '<segmentation_id>', help: 'VLAN id, GRE key or VXLAN VNI' },
];

const COMMON: OptionSpec[] = [
  { flags: ['--admin-state-down'], attr: 'admin_state_up', kind: 'flag', value: false, help: 'set admin state up to false' },
  { flags: ['--shared'], attr: 'shared', kind: 'flag', value: true, help: 'shared by all projects' },
  { flags: ['--router:external'], attr: 'router:external', kind: 'flag', value: true, help: 'an external network (for router gateways and floating IPs)' },
  DESCRIPTION,
];

export const networkCommands = resourceCommands({
  resource: 'network',
  collection: 'networks',
  prefix: 'net',
  listColumns: ['id', 'name', 'subnets'],
  // neutronclient shows each subnet as "<id> <cidr>".
  async listRows(rows, s) {
    if (!rows.some((r) => Array.isArray(r.subnets) && r.subnets.length)) return rows.map((r) => ({ ...r, subnets: [] }));
    const subnets = (await s.neutron('GET', '/subnets?fields=id&fields=cidr')).subnets as Row[];
    const cidr = new Map(subnets.map((x) => [x.id, x.cidr]));
    return rows.map((r) => ({ ...r, subnets: ((r.subnets as string[]) ?? []).map((id) => ({ id, cidr: cidr.get(id) ?? null })) }));
  },
  listCells: { subnets: (v) => (v as Row[]).map((x) => `${x.id} ${x.cidr ?? ''}`.trim()).join('\n') },
  create: {
    positionals: ['NAME'],
    options: [TENANT_ID, ...COMMON, ...PROVIDER],
    async build(p, body) {
      body.name = p.positionals[0];
    },
  },
  update: {
    options: [NAME, DESCRIPTION, { flags: ['--admin-state-up'], attr: 'admin_state_up', kind: 'string', metavar: '{True,False}', help: 'admin state' }],
    async build(p, body) {
      if (typeof body.admin_state_up === 'string') body.admin_state_up = /^true$/i.test(body.admin_state_up);
    },
  },
});
