// The security-group firewall of the OVS agent with Neutron's `iptables_hybrid` driver
// (iptables_firewall.OVSHybridIptablesFirewallDriver): instance ports are plugged
// tap -> qbr (Linux bridge) -> qvb/qvo veth -> br-int so that iptables can see their
// frames on the bridge (bridge-nf-call-iptables, `-m physdev`). For every filtered port the
// root namespace gets
//   - raw: the port's own conntrack zone (`-j CT --zone N`) for frames entering from qvb or tap;
//   - filter: FORWARD -> neutron-openvswi-FORWARD -> sg-chain -> i<port> (to the instance) /
//     o<port> (from it) -> s<port> (source MAC/IP anti-spoofing); stateful (RELATED,ESTABLISHED
//     return, INVALID drop), DHCP client allowed, DHCP server from the instance dropped, the
//     security groups' rules, remote groups through `NIPv4<sg>` ipsets (enable_ipset) or
//     expanded to addresses, everything else to sg-fallback (DROP).
// Pure: the whole firewall of a host from the ports on it and the server's
// `security_group_info_for_devices`; the same input gives the same text, byte for byte.

import type { SecurityGroupInfo } from '../../rpc/messages.js';
import type { IpSet } from '../../host/state.js';
import {
  OVS_AGENT_CHAIN_PREFIX,
  hybridVethBridgeEnd,
  portChain,
  securityGroupIpset,
  tapDevice,
  wrappedChain,
} from '../../host/names.js';
import { WrappedTable, commentRule as comment } from './firewall-iptables.js';
import {
  DIRECTION_IP_PREFIX,
  agentRule,
  ethertypeOf,
  ingressDhcpRules,
  ipToCidr,
  ipsetRuleArgs,
  networkCidr,
  plainRuleArgs,
  type Direction,
  type Ethertype,
  type FwRule,
} from './firewall-rules.js';
import { assignZones, zoneKey } from './firewall-zones.js';
import { sortedFamily } from './members.js';
import { sortAddresses } from '../../rpc/members.js';

export { zonesFromRaw, zoneKey, ZONE_START } from './firewall-zones.js';

/** A port as `security_group_info_for_devices` describes it (its `devices` entries). */
export type FirewallPort = SecurityGroupInfo['devices'][string];

export interface FirewallOptions {
  /** `[securitygroup] enable_ipset`: remote groups as ipsets rather than one rule per member address. */
  enableIpset: boolean;
  /** The zone map the previous call returned (or `zonesFromRaw` of the host's raw table). */
  zones?: ReadonlyMap<string, number>;
}

export interface HybridFirewall {
  /** Root namespace `*filter` table, iptables-restore text. */
  filter: string;
  /** Root namespace `*raw` table (conntrack zones). */
  raw: string;
  /** The remote groups' sets (`hash:net`), sorted by name. */
  ipsets: readonly IpSet[];
  /** Root namespace sysctls the firewall needs. */
  sysctls: Record<string, string>;
  /** Zone per port (key: `zoneKey(port id)`); pass it to the next call. */
  zones: Map<string, number>;
}

/** The binary name iptables_manager wraps chains with: `neutron-openvswitch-agent`[:16]. */
const WRAP = OVS_AGENT_CHAIN_PREFIX;
const SG_CHAIN = 'sg-chain';
const FALLBACK = 'sg-fallback';

/** iptables_comments.py: the exact texts Neutron writes. */
export const COMMENTS = {
  UNMATCH_DROP: 'Default drop rule for unmatched traffic.',
  VM_INT_SG: 'Direct traffic from the VM interface to the security group chain.',
  SG_TO_VM_SG: 'Jump to the VM specific chain.',
  INPUT_TO_SG: 'Direct incoming traffic from VM to the security group chain.',
  PAIR_ALLOW: 'Allow traffic from defined IP/MAC pairs.',
  PAIR_DROP: 'Drop traffic without an IP/MAC allow rule.',
  DHCP_CLIENT: 'Allow DHCP client traffic.',
  DHCP_SPOOF: 'Prevent DHCP Spoofing by VM.',
  UNMATCHED: 'Send unmatched traffic to the fallback chain.',
  INVALID_DROP: 'Drop packets that appear related to an existing connection (e.g. TCP ACK/FIN) but do not have an entry in conntrack.',
  ALLOW_ASSOC: 'Direct packets associated with a known session to the RETURN chain.',
  PORT_SEC_ACCEPT: 'Accept all packets when port security is disabled.',
  TRUSTED_ACCEPT: 'Accept all packets when port is trusted.',
} as const;

/** `IPTABLES_DIRECTION`: ingress (to the instance) leaves the bridge on tap, egress enters from it. */
const PHYSDEV = { ingress: 'physdev-out', egress: 'physdev-in' } as const;

/**
 * Only the sets `hybridFirewall` would make for the view's devices: with ipsets on, what a
 * member change alters while the ports and rules stay the same (the chains name the sets,
 * never their members).
 */
export function firewallIpsets(info: SecurityGroupInfo, prev?: readonly IpSet[]): readonly IpSet[] {
  // Which sets (a member update keeps the view's devices and rules objects: their rules are
  // not read again), then their members: `prev` again, or its sets, where the members are the
  // same (shared) lists.
  let byGroups = setPlans.get(info.devices);
  if (!byGroups) setPlans.set(info.devices, (byGroups = new WeakMap()));
  let plan = byGroups.get(info.security_groups);
  if (!plan) {
    const byId = new Map<string, FirewallPort>();
    for (const p of Object.values(info.devices)) byId.set(p.id, p);
    const filtered = [...byId.values()].sort((a, b) => cmp(a.id, b.id)).filter((p) => !isTrustedPort(p) && p.port_security_enabled);
    byGroups.set(info.security_groups, (plan = new SecurityGroups(info).wantedSets(filtered)));
  }
  const out = plan.map(({ name, sg, ethertype }, i) => {
    const members = ipsetMembersOf(groupMembers(info, sg, ethertype));
    return prev?.[i]?.name === name && prev[i].members === members ? prev[i] : ipsetOf(name, ethertype, members);
  });
  return prev && out.length === prev.length && out.every((x, i) => x === prev[i]) ? prev : out;
}
const setPlans = new WeakMap<object, WeakMap<object, Array<{ name: string; sg: string; ethertype: Ethertype }>>>();

/** `neutron_lib.utils.net.is_port_trusted`: the server hands such ports no security groups. */
export function isTrustedPort(p: { device_owner: string }): boolean {
  return p.device_owner.startsWith('network:');
}

/** Owners whose ports `_get_port_sg_rules` never looks at (always stateful zones). */
const DEVICE_OWNER_PREFIXES = ['network:', 'neutron:'];

/**
 * The root-namespace firewall of a compute host for `ports` (the ports plugged on the host;
 * trusted `network:*` ports and ports without port security get ACCEPT rules, no chains).
 */
export function hybridFirewall(ports: readonly FirewallPort[], info: SecurityGroupInfo, opts: FirewallOptions): HybridFirewall {
  const byId = new Map<string, FirewallPort>();
  for (const p of ports) byId.set(p.id, p);
  const all = [...byId.values()].sort((a, b) => cmp(a.id, b.id));
  const trusted = all.filter(isTrustedPort);
  const unfiltered = all.filter((p) => !isTrustedPort(p) && !p.port_security_enabled);
  const filtered = all.filter((p) => !isTrustedPort(p) && p.port_security_enabled);

  const groups = new SecurityGroups(info);
  const ipsets = opts.enableIpset ? groups.ipsets(filtered) : [];
  const ipsetNames = new Set(ipsets.map((s) => s.name));
  const zones = assignZones(
    filtered.map((p) => p.id),
    opts.zones,
    [...filtered, ...unfiltered].map((p) => p.id),
  );

  const filter = new WrappedTable('filter', WRAP);
  const raw = new WrappedTable('raw', WRAP);
  initManager(filter, raw);
  // IptablesFirewallDriver.__init__: the fallback chain.
  filter.addChain(FALLBACK);
  filter.addRule(FALLBACK, '-j DROP', { comment: COMMENTS.UNMATCH_DROP });
  // process_trusted_ports: these were added once, before any (re)build of the port chains.
  for (const p of trusted) {
    for (const dir of ['ingress', 'egress'] as const) {
      filter.addRule('FORWARD', `-m physdev --${PHYSDEV[dir]} ${tapDevice(p.id)} --physdev-is-bridged -j ACCEPT`, { comment: COMMENTS.TRUSTED_ACCEPT });
    }
  }

  // _setup_chains_apply
  filter.addChain(SG_CHAIN);
  for (const port of filtered) {
    addConntrackJump(raw, port, zones.get(zoneKey(port.id))!, groups.portIsStateful(port, opts.enableIpset));
    for (const dir of ['ingress', 'egress'] as const) {
      addPortChain(filter, port, dir);
      addRulesBySecurityGroup(filter, port, dir, groups, opts.enableIpset, ipsetNames);
    }
  }
  filter.addRule(SG_CHAIN, '-j ACCEPT');
  for (const p of unfiltered) {
    for (const dir of ['ingress', 'egress'] as const) {
      const rule = `-m physdev --${PHYSDEV[dir]} ${tapDevice(p.id)} --physdev-is-bridged -j ACCEPT`;
      filter.addRule('FORWARD', rule, { comment: COMMENTS.PORT_SEC_ACCEPT });
      if (dir === 'egress') filter.addRule('INPUT', rule, { comment: COMMENTS.PORT_SEC_ACCEPT });
    }
  }

  return {
    filter: filter.render(),
    raw: raw.render(),
    ipsets,
    sysctls: { 'net.bridge.bridge-nf-call-iptables': '1' },
    zones,
  };
}

/** IptablesManager(state_less=True): neutron-filter-top, the wrapped built-ins, `local`. */
function initManager(filter: WrappedTable, raw: WrappedTable): void {
  filter.addChain('neutron-filter-top', false);
  filter.addRule('FORWARD', '-j neutron-filter-top', { wrap: false, top: true });
  filter.addRule('OUTPUT', '-j neutron-filter-top', { wrap: false, top: true });
  filter.addChain('local');
  filter.addRule('neutron-filter-top', '-j $local', { wrap: false });
  for (const [t, chains] of [
    [filter, ['INPUT', 'OUTPUT', 'FORWARD']],
    [raw, ['PREROUTING', 'OUTPUT']],
  ] as const) {
    for (const c of chains) {
      t.addChain(c);
      t.addRule(c, `-j $${c}`, { wrap: false });
    }
  }
}

/** `_get_jump_rules`: the port's zone for frames from qvb (bridged or routed) and from tap. */
function addConntrackJump(raw: WrappedTable, port: FirewallPort, zone: number, stateful: boolean): void {
  const comment = stateful ? `Set zone for ${port.id}` : `Make ${port.id} stateless`;
  const ct = stateful ? `--zone ${zone}` : '--notrack';
  const qvb = hybridVethBridgeEnd(port.id);
  for (const match of [`-m physdev --physdev-in ${qvb}`, `-i ${qvb}`, `-m physdev --physdev-in ${tapDevice(port.id)}`]) {
    raw.addRule('PREROUTING', `${match} -m comment --comment "${comment}" -j CT ${ct}`);
  }
}

/** The short (unwrapped) name of a port's chain: `i`/`o`/`s` + port id, cut to 11. */
function shortChain(dir: Direction | 'spoof', portId: string): string {
  return portChain(dir, portId).slice(WRAP.length + 1);
}

/** `_add_chain`: the port's chain and the jumps to it through sg-chain (and INPUT for egress). */
function addPortChain(filter: WrappedTable, port: FirewallPort, dir: Direction): void {
  const chain = shortChain(dir, port.id);
  filter.addChain(chain);
  const dev = `-m physdev --${PHYSDEV[dir]} ${tapDevice(port.id)} --physdev-is-bridged`;
  // Security group chain first, ahead of unfiltered and trusted ports' ACCEPTs.
  filter.addRule('FORWARD', `${dev} -j $${SG_CHAIN}`, { top: true, comment: COMMENTS.VM_INT_SG });
  filter.addRule(SG_CHAIN, `${dev} -j $${chain}`, { comment: COMMENTS.SG_TO_VM_SG });
  if (dir === 'egress') filter.addRule('INPUT', `${dev} -j $${chain}`, { comment: COMMENTS.INPUT_TO_SG });
}

/** `_add_rules_by_security_group` for IPv4 (dvrnet writes no ip6tables). */
function addRulesBySecurityGroup(
  filter: WrappedTable,
  port: FirewallPort,
  dir: Direction,
  groups: SecurityGroups,
  enableIpset: boolean,
  ipsetNames: ReadonlySet<string>,
): void {
  // The port's own (provider) rules first, then its groups' rules, IPv4 only.
  const provider = dir === 'ingress' ? ingressDhcpRules(port.fixed_ips) : [];
  const sgRules = [...provider, ...groups.rulesForPort(port, dir, enableIpset)].filter((r) => r.ethertype === 'IPv4');
  const rules: string[] = [];
  if (dir === 'egress') addFixedEgressRules(filter, port, rules);
  rules.push(...convertRules(sgRules, enableIpset, ipsetNames));
  for (const r of rules) filter.addRule(shortChain(dir, port.id), r);
}

/** `_spoofing_rule` + `_drop_dhcp_rule` (IPv4). */
function addFixedEgressRules(filter: WrappedTable, port: FirewallPort, rules: string[]): void {
  // A DHCP client has no address yet: DISCOVER/REQUEST from 0.0.0.0 to broadcast.
  rules.push(comment('-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j RETURN', COMMENTS.DHCP_CLIENT));
  const pairs: Array<[mac: string, ip: string | undefined]> = [];
  for (const aap of port.allowed_address_pairs) {
    if (ethertypeOf(aap.ip_address) === 'IPv4') pairs.push([iptablesMac(aap.mac_address || port.mac_address), aap.ip_address]);
  }
  for (const ip of port.fixed_ips) if (ethertypeOf(ip) === 'IPv4') pairs.push([iptablesMac(port.mac_address), ip]);
  if (!port.fixed_ips.length) pairs.push([iptablesMac(port.mac_address), undefined]);
  if (pairs.length) {
    const spoof = shortChain('spoof', port.id);
    filter.addChain(spoof);
    for (const [mac, ip] of pairs) {
      const rule = ip === undefined ? `-m mac --mac-source ${mac} -j RETURN` : `-s ${ipToCidr(ip)} -m mac --mac-source ${mac} -j RETURN`;
      filter.addRule(spoof, rule, { comment: COMMENTS.PAIR_ALLOW });
    }
    filter.addRule(spoof, '-j DROP', { comment: COMMENTS.PAIR_DROP });
    rules.push(`-j $${spoof}`);
  }
  // After the source is checked: DHCP renew/rebind from the instance's address.
  rules.push(comment('-p udp -m udp --sport 68 --dport 67 -j RETURN', COMMENTS.DHCP_CLIENT));
  // The instance must not answer DHCP.
  rules.push(comment('-p udp -m udp --sport 67 --dport 68 -j DROP', COMMENTS.DHCP_SPOOF));
}

/** `_convert_sgr_to_iptables_rules`: established first, rules (deduplicated), INVALID, fallback. */
function convertRules(rules: readonly FwRule[], enableIpset: boolean, ipsetNames: ReadonlySet<string>): string[] {
  const out = [comment('-m state --state RELATED,ESTABLISHED -j RETURN', COMMENTS.ALLOW_ASSOC)];
  const seen = new Set<string>();
  for (const r of rules) {
    let args: string | undefined;
    if (enableIpset && r.remote_group_id) {
      const name = securityGroupIpset(r.remote_group_id, r.ethertype);
      // Neutron skips a rule whose set it never created.
      if (ipsetNames.has(name)) args = ipsetRuleArgs(r, name);
    } else {
      args = plainRuleArgs(r);
    }
    if (args === undefined || seen.has(args)) continue;
    seen.add(args);
    out.push(args);
  }
  out.push(comment('-m state --state INVALID -j DROP', COMMENTS.INVALID_DROP));
  out.push(comment(`-j $${FALLBACK}`, COMMENTS.UNMATCHED));
  return out;
}

/** The agent's view of the server's security group info: rules in agent form, members. */
class SecurityGroups {
  private readonly rules = new Map<string, FwRule[]>();

  constructor(private readonly info: SecurityGroupInfo) {
    for (const [sg, list] of Object.entries(info.security_groups)) {
      // The server gives rules in no particular order; by id they are stable between calls.
      this.rules.set(
        sg,
        [...list].sort((a, b) => cmp(a.id, b.id)).map(agentRule),
      );
    }
  }

  of(sg: string): FwRule[] {
    return this.rules.get(sg) ?? [];
  }

  members(sg: string, ethertype: Ethertype): string[] {
    return groupMembers(this.info, sg, ethertype);
  }

  /**
   * `_select_sg_rules_for_port`: the port's groups' rules for one direction; without ipsets
   * a remote-group rule becomes one rule per member address other than the port's own.
   */
  rulesForPort(port: FirewallPort, dir: Direction, enableIpset: boolean): FwRule[] {
    const out: FwRule[] = [];
    for (const sg of port.security_groups) {
      for (const r of this.of(sg)) {
        if (r.direction !== dir) continue;
        out.push(...(enableIpset ? [r] : this.expand(r, port)));
      }
    }
    return out;
  }

  /** `_expand_sg_rule_with_remote_ips`. */
  private expand(r: FwRule, port: FirewallPort): FwRule[] {
    if (!r.remote_group_id) return [r];
    return this.members(r.remote_group_id, r.ethertype)
      .filter((ip) => !port.fixed_ips.includes(ip))
      .map((ip) => ({ ...r, [DIRECTION_IP_PREFIX[r.direction]]: networkCidr(ip) }));
  }

  /**
   * `_get_port_sg_rules` + `_are_sg_rules_stateful`: whether the port's first group is
   * stateful (its first rule that yields anything says; no rules means stateful).
   */
  portIsStateful(port: FirewallPort, enableIpset: boolean): boolean {
    if (DEVICE_OWNER_PREFIXES.some((p) => port.device_owner.startsWith(p))) return true;
    const first = port.security_groups[0];
    if (first === undefined) return true;
    for (const r of this.of(first)) {
      if (enableIpset || this.expand(r, port).length) return r.stateful !== false;
    }
    return true;
  }

  /**
   * ipset_manager: one `hash:net` set per (remote group, ethertype) that a filtered port's
   * rules reference, holding the group's member addresses (`N<ethertype><sg id>`[:29]).
   */
  ipsets(filtered: readonly FirewallPort[]): IpSet[] {
    return this.wantedSets(filtered).map(({ name, sg, ethertype }) => ipsetOf(name, ethertype, ipsetMembersOf(this.members(sg, ethertype))));
  }

  /** The sets the ports' rules name (a remote group per ethertype), sorted by name. */
  wantedSets(filtered: readonly FirewallPort[]): Array<{ name: string; sg: string; ethertype: Ethertype }> {
    const wanted = new Map<string, { sg: string; ethertype: Ethertype }>();
    for (const port of filtered) {
      for (const sg of port.security_groups) {
        for (const r of this.of(sg)) {
          if (r.remote_group_id) wanted.set(securityGroupIpset(r.remote_group_id, r.ethertype), { sg: r.remote_group_id, ethertype: r.ethertype });
        }
      }
    }
    return [...wanted.entries()].sort(([a], [b]) => cmp(a, b)).map(([name, w]) => ({ name, ...w }));
  }
}

/** A group's member addresses of one family, sorted as ipsets list them (members.ts shares the list). */
function groupMembers(info: SecurityGroupInfo, sg: string, ethertype: Ethertype): string[] {
  return sortedFamily(info.sg_member_ips[sg]?.[ethertype] ?? []);
}

function ipsetOf(name: string, ethertype: Ethertype, members: string[]): IpSet {
  return { name, type: 'hash:net', family: ethertype === 'IPv6' ? 'inet6' : 'inet', members };
}

/** The ipset form of a sorted member list, by the list's identity (members.ts shares the lists across hosts). */
const ipsetMemberLists = new WeakMap<readonly string[], string[]>();
function ipsetMembersOf(sorted: readonly string[]): string[] {
  let out = ipsetMemberLists.get(sorted);
  if (!out) ipsetMemberLists.set(sorted, (out = ipsetMembers(sorted)));
  return out;
}

/**
 * `IpsetManager._sanitize_addresses`: a /0 becomes two /1s (hash:net cannot hold /0); the
 * rest as `ipset save` lists them: a host without its /32 (/128), a network by its address.
 */
function ipsetMembers(sorted: readonly string[]): string[] {
  // Nearly always: distinct plain IPv4 addresses, each its own member, already in order.
  if (sorted.every((a, i) => PLAIN_IPV4.test(a) && a !== sorted[i - 1])) return sorted as string[];
  const out = new Set<string>();
  for (const a of sorted) {
    const net = networkCidr(a);
    const [ip, len] = net.split('/');
    const v6 = ethertypeOf(a) === 'IPv6';
    if (len === '0') for (const half of v6 ? ['::/1', '8000::/1'] : ['0.0.0.0/1', '128.0.0.0/1']) out.add(half);
    else out.add(len === (v6 ? '128' : '32') ? ip : net);
  }
  return sortAddresses([...out]);
}

/** A dotted quad as ipset lists a host address (no leading zeros, no prefix). */
const PLAIN_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** `mac_iptables`: upper case, colon separated. */
function iptablesMac(mac: string): string {
  return mac.toUpperCase();
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The wrapped name of one of the firewall's chains, e.g. `neutron-openvswi-sg-chain`. */
export const firewallChain = (name: 'FORWARD' | 'INPUT' | 'OUTPUT' | 'local' | 'sg-chain' | 'sg-fallback'): string => wrappedChain(WRAP, name);
