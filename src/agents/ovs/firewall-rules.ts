// Security group rules as the iptables firewall sees them, and their iptables arguments,
// after Neutron's iptables_firewall.py (`_generate_plain_rule_args`,
// `_generate_ipset_rule_args`, `_protocol_arg`, `_port_arg`, `_ip_prefix_arg`) and the
// server's provider rules (`securitygroups_rpc_base._add_ingress_dhcp_rule`).

import ipaddr from 'ipaddr.js';
import type { SecurityGroupRuleInfo } from '../../rpc/messages.js';
import { isIpv4 } from '../../host/ip.js';

export type Direction = 'ingress' | 'egress';
export type Ethertype = 'IPv4' | 'IPv6';

/**
 * One rule in the agent's form (the dict the server sends with `security_group_info_for_devices`):
 * the remote prefix already turned into `source_ip_prefix` (ingress) or `dest_ip_prefix` (egress).
 */
export interface FwRule {
  direction: Direction;
  ethertype: Ethertype;
  protocol?: string;
  port_range_min?: number;
  port_range_max?: number;
  source_port_range_min?: number;
  source_port_range_max?: number;
  source_ip_prefix?: string;
  dest_ip_prefix?: string;
  remote_group_id?: string;
  stateful?: boolean;
}

/** `firewall.DIRECTION_IP_PREFIX`: the side of the packet a rule's remote end is on. */
export const DIRECTION_IP_PREFIX = { ingress: 'source_ip_prefix', egress: 'dest_ip_prefix' } as const;
/** `IPSET_DIRECTION`: the `--match-set` flag per direction. */
export const IPSET_DIRECTION = { ingress: 'src', egress: 'dst' } as const;

/** The server's rule_dict: only the fields that are set, the remote prefix as the normalized CIDR. */
export function agentRule(r: SecurityGroupRuleInfo): FwRule {
  const out: FwRule = { direction: r.direction, ethertype: r.ethertype };
  const stateful = (r as { stateful?: boolean }).stateful;
  out.stateful = stateful ?? true;
  if (r.protocol != null) out.protocol = String(r.protocol);
  if (r.port_range_min != null) out.port_range_min = r.port_range_min;
  if (r.port_range_max != null) out.port_range_max = r.port_range_max;
  if (r.remote_ip_prefix != null) out[DIRECTION_IP_PREFIX[r.direction]] = networkCidr(r.remote_ip_prefix);
  if (r.remote_group_id != null) out.remote_group_id = r.remote_group_id;
  return out;
}

/**
 * The server's provider rules for one port (`_add_ingress_dhcp_rule`): DHCP replies
 * (udp 67 -> 68) may reach the port's own IPv4 addresses and the broadcast address.
 * (The IPv6 ones only matter to ip6tables, which dvrnet does not write.)
 */
export function ingressDhcpRules(fixedIps: readonly string[]): FwRule[] {
  const dests = [...fixedIps.filter((ip) => isIpv4(ip)).map((ip) => `${ip}/32`), '255.255.255.255/32'];
  return dests.map((d) => ({
    direction: 'ingress',
    ethertype: 'IPv4',
    protocol: 'udp',
    port_range_min: 68,
    port_range_max: 68,
    source_port_range_min: 67,
    source_port_range_max: 67,
    dest_ip_prefix: d,
  }));
}

// neutron_lib.constants.IPTABLES_PROTOCOL_NAME_MAP: what `-p` is given for a rule's protocol.
const PROTOCOL_NAME_MAP: Record<string, string | null> = {
  'ipv6-encap': 'ipv6', icmpv6: 'ipv6-icmp', pgm: '113', '0': null,
  '1': 'icmp', '2': 'igmp', '3': 'ggp', '4': 'ipencap', '5': 'st', '6': 'tcp', '8': 'egp', '9': 'igp',
  '12': 'pup', '17': 'udp', '20': 'hmp', '22': 'xns-idp', '27': 'rdp', '29': 'iso-tp4', '33': 'dccp',
  '36': 'xtp', '37': 'ddp', '38': 'idpr-cmtp', '41': 'ipv6', '43': 'ipv6-route', '44': 'ipv6-frag',
  '45': 'idrp', '46': 'rsvp', '47': 'gre', '50': 'esp', '51': 'ah', '57': 'skip', '58': 'ipv6-icmp',
  '59': 'ipv6-nonxt', '60': 'ipv6-opts', '73': 'rspf', '81': 'vmtp', '88': 'eigrp', '89': 'ospf',
  '93': 'ax.25', '94': 'ipip', '97': 'etherip', '98': 'encap', '103': 'pim', '108': 'ipcomp',
  '112': 'vrrp', '115': 'l2tp', '124': 'isis', '132': 'sctp', '133': 'fc', '135': 'mobility-header',
  '136': 'udplite', '137': 'mpls-in-ip', '138': 'manet', '139': 'hip', '140': 'shim6', '141': 'wesp',
  '142': 'rohc',
};
// IPTABLES_PROTOCOL_MAP: iptables loads the protocol's match module when ports are given.
const PROTOCOL_MODULE: Record<string, string> = { dccp: 'dccp', icmp: 'icmp', 'ipv6-icmp': 'icmp6', sctp: 'sctp', tcp: 'tcp', udp: 'udp' };
// SG_PORT_PROTO_NAMES and IPTABLES_MULTIPORT_ONLY_PROTOCOLS.
const PORT_PROTOCOLS = new Set(['dccp', 'sctp', 'tcp', 'udp', 'udplite']);
const MULTIPORT_ONLY = new Set(['udplite']);

/** `_iptables_protocol_name`: undefined for "any protocol" (no `-p`). */
export function iptablesProtocolName(protocol: string | undefined): string | undefined {
  if (!protocol || protocol === '0') return undefined;
  const mapped = PROTOCOL_NAME_MAP[protocol];
  return mapped === undefined ? protocol : (mapped ?? undefined);
}

function protocolArg(protocol: string | undefined, isPort: boolean): string[] {
  const name = iptablesProtocolName(protocol);
  if (!name) return [];
  const args = ['-p', name];
  if (isPort && PROTOCOL_MODULE[name]) args.push('-m', PROTOCOL_MODULE[name]);
  return args;
}

function portArg(direction: 'sport' | 'dport', protocol: string | undefined, min?: number, max?: number): string[] {
  if (min == null) return [];
  const name = iptablesProtocolName(protocol);
  if (name === 'icmp' || name === 'ipv6-icmp') {
    // For ICMP the port range carries the type and code.
    const flag = name === 'ipv6-icmp' ? '--icmpv6-type' : '--icmp-type';
    return [flag, max != null ? `${min}/${max}` : `${min}`];
  }
  if (name && PORT_PROTOCOLS.has(name)) {
    if (min === max) return MULTIPORT_ONLY.has(name) ? ['-m', 'multiport', `--${direction}s`, `${min}`] : [`--${direction}`, `${min}`];
    return ['-m', 'multiport', `--${direction}s`, `${min}:${max}`];
  }
  return [];
}

function protocolAndPortArgs(r: FwRule): string[] {
  const isPort = r.source_port_range_min != null || r.port_range_min != null;
  return [
    ...protocolArg(r.protocol, isPort),
    ...portArg('sport', r.protocol, r.source_port_range_min, r.source_port_range_max),
    ...portArg('dport', r.protocol, r.port_range_min, r.port_range_max),
  ];
}

/** `_ip_prefix_arg`: an address becomes a /32 (/128); a /0 is no constraint and is left out. */
function ipPrefixArg(flag: 's' | 'd', prefix: string | undefined): string[] {
  if (!prefix) return [];
  if (!prefix.includes('/')) return [`-${flag}`, ipToCidr(prefix)];
  if (prefix.endsWith('/0')) return [];
  return [`-${flag}`, prefix];
}

/** `_generate_plain_rule_args`, in iptables-save's order: source, destination, protocol, ports, target. */
export function plainRuleArgs(r: FwRule): string {
  return [...ipPrefixArg('s', r.source_ip_prefix), ...ipPrefixArg('d', r.dest_ip_prefix), ...protocolAndPortArgs(r), '-j RETURN'].join(' ');
}

/** `_generate_ipset_rule_args`: the remote group's members matched through its ipset. */
export function ipsetRuleArgs(r: FwRule, setName: string): string {
  return [...protocolAndPortArgs(r), '-m set', '--match-set', setName, IPSET_DIRECTION[r.direction], '-j RETURN'].join(' ');
}

// ------------------------------------------------------------------------------- addresses

/** `common.utils.ip_to_cidr` without a prefix: the address or network as netaddr prints it (`10.0.0.5/32`). */
export function ipToCidr(ip: string): string {
  const [addr, len] = ip.split('/');
  const p = ipaddr.parse(addr);
  return `${p.toString()}/${len ?? (p.kind() === 'ipv4' ? 32 : 128)}`;
}

/** `str(netaddr.IPNetwork(x).cidr)`: the network of an address or CIDR (`10.0.0.5/24` -> `10.0.0.0/24`). */
export function networkCidr(x: string): string {
  const [addr, lenText] = x.split('/');
  const p = ipaddr.parse(addr);
  const bits = p.kind() === 'ipv4' ? 32 : 128;
  const len = lenText === undefined ? bits : Number(lenText);
  if (!Number.isInteger(len) || len < 0 || len > bits) throw new Error(`Bad prefix length in "${x}"`);
  const bytes = p.toByteArray();
  let keep = len;
  for (let i = 0; i < bytes.length; i++) {
    const k = Math.max(0, Math.min(8, keep));
    bytes[i] &= k === 0 ? 0 : (0xff << (8 - k)) & 0xff;
    keep -= 8;
  }
  return `${ipaddr.fromByteArray(bytes).toString()}/${len}`;
}

/** Ethertype of an address or CIDR. */
export function ethertypeOf(x: string): Ethertype {
  return x.includes(':') ? 'IPv6' : 'IPv4';
}

