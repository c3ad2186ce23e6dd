// neutron port-create / port-list / port-show / port-update / port-delete.

import type { OptionSpec } from '../core/args.js';
import { pyJson, type Row } from '../core/format.js';
import type { Session } from '../core/session.js';
import { DESCRIPTION, NAME, TENANT_ID, findId, resourceCommands } from '../core/resource.js';

const SHARED: OptionSpec[] = [
  NAME,
  DESCRIPTION,
  { flags: ['--fixed-ip'], kind: 'kvmulti', metavar: 'subnet_id=SUBNET,ip_address=IP_ADDR', help: 'a fixed IP (repeatable; subnet by name or id)' },
  { flags: ['--device-id'], attr: 'device_id', kind: 'string', metavar: 'DEVICE_ID', help: 'device id' },
  { flags: ['--device-owner'], attr: 'device_owner', kind: 'string', metavar: 'DEVICE_OWNER', help: 'device owner' },
  { flags: ['--security-group'], kind: 'multi', metavar: 'SECURITY_GROUP', help: 'a security group (repeatable, name or id)' },
  { flags: ['--no-security-groups'], kind: 'flag', help: 'no security groups' },
  { flags: ['--allowed-address-pair'], attr: 'allowed_address_pairs', kind: 'kvmulti', metavar: 'ip_address=IP_ADDR[,mac_address=MAC]', help: 'an allowed address pair (repeatable)' },
  { flags: ['--binding:host_id'], attr: 'binding:host_id', kind: 'string', metavar: 'HOST', help: 'host to bind to (admin only)' },
];

async function common(p: { options: Map<string, unknown> }, body: Row, s: Session) {
  const ips = p.options.get('--fixed-ip') as Array<Record<string, string>> | undefined;
  if (ips)
    body.fixed_ips = await Promise.all(
      ips.map(async (ip) => (ip.subnet_id ? { ...ip, subnet_id: await findId(s, 'subnets', 'subnet', ip.subnet_id) } : ip)),
    );
  const groups = p.options.get('--security-group') as string[] | undefined;
  if (groups) body.security_groups = await Promise.all(groups.map((g) => findId(s, 'security_groups', 'security_group', g)));
  if (p.options.has('--no-security-groups')) body.security_groups = [];
}

export const portCommands = resourceCommands({
  resource: 'port',
  collection: 'ports',
  prefix: 'port',
  listColumns: ['id', 'name', 'mac_address', 'fixed_ips'],
  listCells: { fixed_ips: (v) => ((v as Row[]) ?? []).map(pyJson).join('\n') },
  create: {
    positionals: ['NETWORK'],
    options: [
      TENANT_ID,
      ...SHARED,
      { flags: ['--mac-address'], attr: 'mac_address', kind: 'string', metavar: 'MAC_ADDRESS', help: 'MAC address' },
      { flags: ['--admin-state-down'], attr: 'admin_state_up', kind: 'flag', value: false, help: 'set admin state up to false' },
    ],
    async build(p, body, s) {
      body.network_id = await findId(s, 'networks', 'network', p.positionals[0]);
      await common(p, body, s);
    },
  },
  update: { options: SHARED, build: common },
});
