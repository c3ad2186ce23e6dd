// neutron subnet-create / subnet-list / subnet-show / subnet-update / subnet-delete.

import { UsageError, type OptionSpec } from '../core/args.js';
import { pyJson, type Row } from '../core/format.js';
import { DESCRIPTION, NAME, TENANT_ID, findId, resourceCommands } from '../core/resource.js';

const SHARED: OptionSpec[] = [
  NAME,
  DESCRIPTION,
  { flags: ['--gateway'], attr: 'gateway_ip', kind: 'string', metavar: 'GATEWAY_IP', help: 'gateway IP (default: the first address)' },
  { flags: ['--no-gateway'], kind: 'flag', help: 'no gateway' },
  { flags: ['--allocation-pool'], attr: 'allocation_pools', kind: 'kvmulti', metavar: 'start=IP_ADDR,end=IP_ADDR', help: 'an allocation pool (repeatable)' },
  { flags: ['--host-route'], attr: 'host_routes', kind: 'kvmulti', metavar: 'destination=CIDR,nexthop=IP_ADDR', help: 'a host route (repeatable)' },
  { flags: ['--dns-nameserver'], attr: 'dns_nameservers', kind: 'multi', metavar: 'DNS_NAMESERVER', help: 'a DNS server (repeatable)' },
  { flags: ['--disable-dhcp'], attr: 'enable_dhcp', kind: 'flag', value: false, help: 'disable DHCP' },
  { flags: ['--enable-dhcp'], attr: 'enable_dhcp', kind: 'flag', value: true, help: 'enable DHCP' },
];

function gateway(p: { options: Map<string, unknown> }, body: Row) {
  if (p.options.has('--no-gateway')) {
    if (p.options.has('--gateway')) throw new UsageError('argument --no-gateway: not allowed with argument --gateway');
    body.gateway_ip = null;
  }
}

export const subnetCommands = resourceCommands({
  resource: 'subnet',
  collection: 'subnets',
  prefix: 'subnet',
  listColumns: ['id', 'name', 'cidr', 'allocation_pools'],
  listCells: { allocation_pools: (v) => ((v as Row[]) ?? []).map(pyJson).join('\n') },
  create: {
    positionals: ['NETWORK', 'CIDR'],
    options: [
      TENANT_ID,
      ...SHARED,
      { flags: ['--ip-version'], attr: 'ip_version', kind: 'int', metavar: '{4,6}', help: 'IP version (default 4)' },
      { flags: ['--ipv6-ra-mode'], attr: 'ipv6_ra_mode', kind: 'string', metavar: 'MODE', help: 'IPv6 RA mode' },
      { flags: ['--ipv6-address-mode'], attr: 'ipv6_address_mode', kind: 'string', metavar: 'MODE', help: 'IPv6 address mode' },
    ],
    async build(p, body, s) {
      body.network_id = await findId(s, 'networks', 'network', p.positionals[0]);
      body.cidr = p.positionals[1];
      body.ip_version ??= 4;
      gateway(p, body);
    },
  },
  update: { options: SHARED, build: async (p, body) => gateway(p, body) },
});
