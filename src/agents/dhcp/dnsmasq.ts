// What Neutron's Dnsmasq driver and DeviceManager put on a network node for one network,
// as a pure function of the server's view of the network and the DHCP port:
//
// - `qdhcp-<network id>` with the DHCP port plugged as the OVS interface driver does (an
//   internal port `tap<port id[:11]>` on br-int with external_ids iface-id/attached-mac/
//   iface-status, moved into the namespace with the port's MAC, the network's MTU and the
//   port's addresses, plus 169.254.169.254/32 when metadata may be served from here), and a
//   default route via the first DHCP subnet's gateway (`_set_default_route`);
// - one dnsmasq: a static range per DHCP-enabled IPv4 subnet tagged `subnet-<id>`, a host
//   line per port address (`host-<ip with dashes>`), per-subnet options dns-server (6),
//   classless-static-route (121, and 249 for Windows) and router (3), the MTU as
//   `dhcp-option-force=26` (the network's MTU, or what `dnsmasq_config_file` forces), and
//   the other options of that file;
// - with enable_isolated_metadata and a subnet without a router (or force_metadata), a
//   metadata proxy on 169.254.169.254:80 in the namespace, tagged with the network id.

import { addAddress, addBridge, addInternalPort, addMetadataProxy, addNamespace, addDhcpServer, addRoute } from '../../host/build.js';
import { INTEGRATION_BRIDGE, METADATA_IP, dhcpNamespace, tapDevice } from '../../host/names.js';
import type { DhcpOption, DhcpServer, HostState } from '../../host/state.js';
import type { NetworkInfo, PortInfo, SubnetInfo } from '../../rpc/messages.js';
import { ROUTER_INTERFACE_OWNERS } from '../../common/constants.js';
import { ipv4ToInt } from '../../host/ip.js';

export const METADATA_CIDR = `${METADATA_IP}/32`;
export const METADATA_PORT = 80;
/** Neutron's `METADATA_V4_SUBNET`: a network with a subnet in it is a "metadata network". */
const METADATA_V4_SUBNET = { net: ipv4ToInt('169.254.0.0'), len: 16 };

export interface DnsmasqSettings {
  /** `dns_domain` (neutron.conf; default `openstacklocal`). */
  domain: string;
  /** `dhcp_lease_duration` in seconds; -1 = infinite. */
  lease_time: number;
  enable_isolated_metadata: boolean;
  force_metadata: boolean;
  enable_metadata_network: boolean;
  /** The options of `dnsmasq_config_file` that set DHCP options (`parseDnsmasqOptions`). */
  extra_options: DhcpOption[];
  /** Where the metadata proxy forwards: the metadata agent's `metadata_proxy_socket`. */
  metadata_proxy_socket: string;
  /** br-int (`[ovs] integration_bridge`). */
  integration_bridge?: string;
}

/** dnsmasq's names for the options Neutron and operators use. */
const OPTION_NAMES: Record<string, number> = {
  netmask: 1,
  router: 3,
  'dns-server': 6,
  'log-server': 7,
  hostname: 12,
  'domain-name': 15,
  mtu: 26,
  'broadcast': 28,
  'ntp-server': 42,
  'lease-time': 51,
  'domain-search': 119,
  'classless-static-route': 121,
};

/**
 * The `dhcp-option=`/`dhcp-option-force=` lines of a dnsmasq configuration file as options:
 * `26,1450`, `option:mtu,1450`, `tag:foo,option:router,10.0.0.1`. Other dnsmasq settings
 * are dnsmasq's own business and are left out.
 */
export function parseDnsmasqOptions(lines: Array<{ key: string; value?: string }>, file = 'dnsmasq_config_file'): DhcpOption[] {
  const out: DhcpOption[] = [];
  for (const { key, value } of lines) {
    if (key !== 'dhcp-option' && key !== 'dhcp-option-force') continue;
    const text = `${key}=${value ?? ''}`;
    const parts = (value ?? '').split(',').map((p) => p.trim());
    let tag: string | undefined;
    while (parts[0]?.startsWith('tag:')) {
      if (tag !== undefined) throw new Error(`${file}: '${text}': more than one tag is not supported`);
      tag = parts.shift()!.slice(4);
    }
    const head = parts.shift() ?? '';
    let option: number | undefined;
    if (/^\d+$/.test(head)) option = Number(head);
    else if (head.startsWith('option:')) option = OPTION_NAMES[head.slice(7)];
    if (option === undefined || option < 1 || option > 254) throw new Error(`${file}: '${text}': not a DHCPv4 option number or known option name: '${head}'`);
    out.push({ ...(tag !== undefined ? { tag } : {}), option, values: parts.filter((p) => p !== ''), ...(key === 'dhcp-option-force' ? { force: true } : {}) });
  }
  return out;
}

export const subnetTag = (subnetId: string) => `subnet-${subnetId}`;

/** `host-192-168-1-5`: the host name Neutron gives a port without a DNS name. */
export const hostName = (ip: string) => `host-${ip.replace(/[.:]/g, '-')}`;

/** The subnets dnsmasq serves: DHCP-enabled IPv4 ones (IPv6 is not modelled). */
export const dhcpSubnets = (net: NetworkInfo): SubnetInfo[] => net.subnets.filter((s) => s.enable_dhcp && s.ip_version === 4);

/**
 * Subnets without a router: no port of a router owns the subnet's gateway address
 * (Neutron's `get_isolated_subnets`).
 */
export function isolatedSubnets(net: NetworkInfo): ReadonlySet<string> {
  // Once per version of the network (a pass looks at every network it serves, each with
  // thousands of ports on a big cloud's network node; a port change makes a new object).
  const had = ISOLATED.get(net);
  if (had) return had;
  const routed = new Set<string>();
  const byId = new Map(net.subnets.map((s) => [s.id, s]));
  for (const p of net.ports) {
    if (!ROUTER_INTERFACE_OWNERS.includes(p.device_owner)) continue;
    for (const a of p.fixed_ips) if (byId.get(a.subnet_id)?.gateway_ip === a.ip_address) routed.add(a.subnet_id);
  }
  const isolated = new Set(net.subnets.filter((s) => !routed.has(s.id)).map((s) => s.id));
  ISOLATED.set(net, isolated);
  return isolated;
}
const ISOLATED = new WeakMap<NetworkInfo, ReadonlySet<string>>();

/** Neutron's `should_enable_metadata`: whether this network's DHCP namespace serves metadata. */
export function shouldEnableMetadata(settings: DnsmasqSettings, net: NetworkInfo): boolean {
  const subnets = dhcpSubnets(net);
  if (!subnets.length) return false;
  if (settings.force_metadata) return true;
  if (!settings.enable_isolated_metadata) return false;
  if (settings.enable_metadata_network && net.subnets.some((s) => inside(s.cidr, METADATA_V4_SUBNET))) return true;
  const isolated = isolatedSubnets(net);
  return subnets.some((s) => isolated.has(s.id));
}

/**
 * The dnsmasq for `net`, listening on the DHCP port's device: the same object for the same
 * three (a port change refetches its network alone, so the agent's other networks keep
 * theirs, and validate and diff pass over their thousands of hosts by identity).
 */
export function dnsmasqConfig(net: NetworkInfo, dhcpPort: PortInfo, settings: DnsmasqSettings): DhcpServer {
  const had = CONFIGS.get(net);
  if (had?.dhcpPort === dhcpPort && had.settings === settings) return had.server;
  const server = makeConfig(net, dhcpPort, settings);
  CONFIGS.set(net, { dhcpPort, settings, server });
  return server;
}
const CONFIGS = new WeakMap<NetworkInfo, { dhcpPort: PortInfo; settings: DnsmasqSettings; server: DhcpServer }>();

function makeConfig(net: NetworkInfo, dhcpPort: PortInfo, settings: DnsmasqSettings): DhcpServer {
  const subnets = dhcpSubnets(net);
  const served = new Set(subnets.map((s) => s.id));
  const isolated = isolatedSubnets(net);
  const dhcpIp = (subnetId: string) => dhcpPort.fixed_ips.find((f) => f.subnet_id === subnetId)?.ip_address;

  const hosts: DhcpServer['hosts'] = [];
  // By id in code-unit order (localeCompare cost more than the rest for a network of thousands of ports).
  for (const p of [...net.ports].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    for (const f of p.fixed_ips) if (served.has(f.subnet_id)) hosts.push({ mac: p.mac_address, ip: f.ip_address, hostname: hostName(f.ip_address) });
  }

  // Untagged options from the configuration file first: dnsmasq prefers an option whose tag
  // matches over an untagged one, and the emulated server lets the later one win.
  const forcedMtu = [...settings.extra_options].reverse().find((o) => o.option === 26 && !o.tag);
  const options: DhcpOption[] = settings.extra_options.filter((o) => o !== forcedMtu && !(o.option === 26 && !o.tag)).map((o) => ({ ...o, values: [...o.values] }));
  const mtu = forcedMtu ?? (net.mtu > 0 ? { option: 26, values: [String(net.mtu)], force: true } : undefined);
  if (mtu) options.unshift({ option: 26, values: [...mtu.values], force: true });

  for (const s of subnets) {
    const tag = subnetTag(s.id);
    const own = dhcpIp(s.id);
    if (s.dns_nameservers.length) options.push({ tag, option: 6, values: [...s.dns_nameservers] });
    else if (own) options.push({ tag, option: 6, values: [own] }); // dnsmasq announces itself

    let gateway = s.gateway_ip ?? undefined;
    const routes: string[] = [];
    for (const r of s.host_routes) {
      if (r.destination === '0.0.0.0/0') gateway ??= r.nexthop;
      else routes.push(r.destination, r.nexthop);
    }
    if (settings.force_metadata || (isolated.has(s.id) && settings.enable_isolated_metadata)) {
      if (own) routes.push(METADATA_CIDR, own);
    } else if (!isolated.has(s.id) && gateway) routes.push(METADATA_CIDR, gateway);
    // The network's other subnets are on the link.
    for (const o of [...subnets].reverse()) if (o.id !== s.id && o.cidr !== s.cidr) routes.unshift(o.cidr, '0.0.0.0');
    if (routes.length) {
      if (gateway) routes.push('0.0.0.0/0', gateway);
      options.push({ tag, option: 121, values: [...routes] });
      options.push({ tag, option: 249, values: [...routes] });
    }
    options.push({ tag, option: 3, values: gateway ? [gateway] : [] });
  }

  return {
    id: net.id,
    namespace: dhcpNamespace(net.id),
    interface: tapDevice(dhcpPort.id),
    domain: settings.domain,
    lease_time: settings.lease_time,
    ranges: subnets.map((s) => ({ tag: subnetTag(s.id), cidr: s.cidr })),
    hosts,
    options,
  };
}

/**
 * Adds what the DHCP agent puts on the host for `net` to `s`. `s` must already hold the
 * integration bridge (the caller decides whether its fragment defines it).
 */
export function addDhcpNetwork(s: HostState, net: NetworkInfo, dhcpPort: PortInfo, settings: DnsmasqSettings): HostState {
  const ns = dhcpNamespace(net.id);
  const dev = tapDevice(dhcpPort.id);
  const bridge = settings.integration_bridge ?? INTEGRATION_BRIDGE;
  if (!s.ovs.bridges[bridge]) s = addBridge(s, bridge);
  const metadataAddress = settings.enable_isolated_metadata || settings.force_metadata;
  s = addNamespace(s, ns);
  s = addInternalPort(s, bridge, dev, {
    namespace: ns,
    mac: dhcpPort.mac_address,
    ...(net.mtu > 0 ? { mtu: net.mtu } : {}),
    up: true,
    addresses: dhcpPort.fixed_ips.filter((f) => !f.ip_address.includes(':')).map((f) => `${f.ip_address}/${f.prefixlen}`),
    external_ids: { 'iface-id': dhcpPort.id, 'iface-status': 'active', 'attached-mac': dhcpPort.mac_address },
  });
  if (metadataAddress) s = addAddress(s, ns, dev, METADATA_CIDR);
  const gw = dhcpSubnets(net).find((x) => x.gateway_ip && dhcpPort.fixed_ips.some((f) => f.subnet_id === x.id))?.gateway_ip;
  if (gw) s = addRoute(s, ns, { dst: 'default', via: gw, dev });
  s = addDhcpServer(s, dnsmasqConfig(net, dhcpPort, settings));
  if (shouldEnableMetadata(settings, net) && metadataAddress) {
    s = addMetadataProxy(s, { id: net.id, namespace: ns, listen_ip: METADATA_IP, listen_port: METADATA_PORT, upstream: settings.metadata_proxy_socket, network_id: net.id });
  }
  return s;
}

function inside(cidr: string, outer: { net: number; len: number }): boolean {
  const [ip, len] = cidr.split('/');
  if (ip.includes(':') || Number(len) < outer.len) return false;
  const mask = outer.len === 0 ? 0 : (0xffffffff << (32 - outer.len)) >>> 0;
  return ((ipv4ToInt(ip) & mask) >>> 0) === outer.net;
}
