// neutron security-group-* and security-group-rule-* commands.

import type { Row } from '../core/format.js';
import { DESCRIPTION, NAME, TENANT_ID, findId, resourceCommands } from '../core/resource.js';

/** neutronclient's "port/protocol" column: 22/tcp, 1000-2000/udp, icmp (type:8, code:0), any. */
export function protocolPort(r: Row): string | null {
  const [proto, min, max] = [r.protocol as string | null, r.port_range_min as number | null, r.port_range_max as number | null];
  if (proto === 'tcp' || proto === 'udp') {
    if (min && min === max) return `${min}/${proto}`;
    if (min) return `${min}-${max}/${proto}`;
    return proto;
  }
  if (proto === 'icmp') {
    const opts = [min !== null && min !== undefined && `type:${min}`, max !== null && max !== undefined && `code:${max}`].filter(Boolean);
    return opts.length ? `icmp (${opts.join(', ')})` : 'icmp';
  }
  return proto ?? null;
}

/** One rule in security-group-list's rules column. */
function ruleSummary(r: Row): string {
  const parts = [r.direction, r.ethertype];
  const pp = protocolPort(r);
  if (pp) parts.push(pp);
  if (r.remote_ip_prefix) parts.push(`remote_ip_prefix: ${r.remote_ip_prefix}`);
  if (r.remote_group_id) parts.push(`remote_group_id: ${r.remote_group_id}`);
  return parts.join(', ');
}

export const securityGroupCommands = resourceCommands({
  resource: 'security_group',
  collection: 'security_groups',
  prefix: 'security-group',
  noun: 'security group',
  listColumns: ['id', 'name', 'security_group_rules'],
  listCells: { security_group_rules: (v) => ((v as Row[]) ?? []).map(ruleSummary).join('\n') },
  create: {
    positionals: ['NAME'],
    options: [TENANT_ID, DESCRIPTION],
    async build(p, body) {
      body.name = p.positionals[0];
    },
  },
  update: { options: [NAME, DESCRIPTION] },
});

export const securityGroupRuleCommands = resourceCommands({
  resource: 'security_group_rule',
  collection: 'security_group_rules',
  prefix: 'security-group-rule',
  noun: 'security group rule',
  listColumns: ['id', 'security_group', 'direction', 'ethertype', 'port/protocol', 'remote'],
  async listRows(rows, s) {
    const groups = (await s.neutron('GET', '/security-groups?fields=id&fields=name')).security_groups as Row[];
    const name = (id: unknown) => (groups.find((g) => g.id === id)?.name as string) || String(id);
    return rows.map((r) => ({
      id: r.id,
      tenant_id: r.tenant_id,
      security_group: name(r.security_group_id),
      direction: r.direction,
      ethertype: r.ethertype,
      'port/protocol': protocolPort(r) ?? 'any',
      remote: r.remote_ip_prefix ? `${r.remote_ip_prefix} (CIDR)` : r.remote_group_id ? `${name(r.remote_group_id)} (group)` : 'any',
    }));
  },
  create: {
    positionals: ['SECURITY_GROUP'],
    options: [
      TENANT_ID,
      DESCRIPTION,
      { flags: ['--direction'], attr: 'direction', kind: 'string', metavar: '{ingress,egress}', help: 'direction (default ingress)' },
      { flags: ['--ethertype'], attr: 'ethertype', kind: 'string', metavar: 'ETHERTYPE', help: 'IPv4 (default) or IPv6' },
      { flags: ['--protocol'], attr: 'protocol', kind: 'string', metavar: 'PROTOCOL', help: 'protocol name or number' },
      { flags: ['--port-range-min'], attr: 'port_range_min', kind: 'int', metavar: 'PORT_RANGE_MIN', help: 'first port (ICMP type)' },
      { flags: ['--port-range-max'], attr: 'port_range_max', kind: 'int', metavar: 'PORT_RANGE_MAX', help: 'last port (ICMP code)' },
      { flags: ['--remote-ip-prefix'], attr: 'remote_ip_prefix', kind: 'string', metavar: 'REMOTE_IP_PREFIX', help: 'remote CIDR' },
      { flags: ['--remote-group-id'], kind: 'string', metavar: 'REMOTE_GROUP', help: 'remote security group (name or id)' },
    ],
    async build(p, body, s) {
      body.security_group_id = await findId(s, 'security_groups', 'security_group', p.positionals[0]);
      body.direction ??= 'ingress';
      body.ethertype ??= 'IPv4';
      const remote = p.options.get('--remote-group-id') as string | undefined;
      if (remote) body.remote_group_id = await findId(s, 'security_groups', 'security_group', remote);
    },
  },
});
