// What the L3 agent puts on its host, computed from the server's view of the routers it
// hosts: Neutron's DvrLocalRouter (qrouter-, fip-) and DvrEdgeRouter (snat-), and for
// centralized routers its LegacyRouter (legacy.ts), as one pure function of (routers, ARP
// tables, allocations). Nothing here remembers anything: the agent calls it on every
// resync with the whole picture.
import { createHash } from 'node:crypto';
import { ipv4ToInt, isIpv4 } from '../../host/ip.js';
import {
  fipGatewayDevice,
  fipNamespace,
  fipRouterTable,
  fipToRouterDevice,
  FIP_RT_TBL,
  METADATA_IP,
  routerGatewayDevice,
  routerInterfaceDevice,
  routerNamespace,
  routerToFipDevice,
  ROUTER_INTERFACE_PREFIX,
  snatDevice,
  snatNamespace,
  snatRedirectTable,
} from '../../host/names.js';
import type { Items } from '../../host/chunks.js';
import type { HostState, Neighbour } from '../../host/state.js';
import type { FloatingIpInfo, PortInfo, RouterInfo } from '../../rpc/messages.js';
import { pairEnds } from './allocator.js';
import { Fragment, type NamespaceNeighbours } from './fragment.js';
import { IptablesManager } from './iptables.js';
import { buildLegacyRouter } from './legacy.js';

/** Neutron's `metadata_access_mark` and `external_ingress_mark` with ROUTER_MARK_MASK. */
export const METADATA_ACCESS_MARK = '0x1';
export const EXTERNAL_INGRESS_MARK = '0x2';
export const ROUTER_MARK_MASK = '0xffff';

export type FipStatus = 'ACTIVE' | 'DOWN' | 'ERROR';

export interface L3BuildInput {
  host: string;
  mode: 'dvr' | 'dvr_snat';
  integrationBridge: string;
  /** The metadata proxy of every router (`enable_metadata_proxy`), or none. */
  metadata?: { port: number; upstream: string };
  routers: RouterInfo[];
  /** Neighbour entries of a subnet (`get_ports_by_subnet`: its bound ports and the SNAT port), IPv4, each address once. */
  arp: (subnetId: string) => Iterable<{ ip: string; mac: string }>;
  /**
   * The same entries as permanent neighbours on `dev`, as a list of chunks that stay the same
   * objects while unchanged (host/chunks.ts), when the caller keeps them so; preferred over `arp`.
   */
  neighbours?: (subnetId: string, dev: string) => Items<Neighbour>;
  /** This host's fg port on an external network, if the server has one. */
  fgPort: (externalNetworkId: string) => PortInfo | null;
  /** The rfp/fpr /31 of a router (`a.b.c.d/31`, stable per router). */
  linkLocal: (routerId: string) => string;
  /** The `ip rule` priority of a floating IP (stable per floating IP). */
  fipPriority: (fip: FloatingIpInfo) => number;
}

export interface L3BuildOutput {
  state: HostState;
  /** Per router, the status each of its floating IPs on this host should have. */
  fipStatuses: Map<string, Record<string, FipStatus>>;
  /** Routers that got an rfp/fpr link (their link-local /31 stays allocated). */
  linkedRouters: Set<string>;
  /** Floating IPs that got an `ip rule` (their priority stays allocated). */
  ruledFips: Set<string>;
  counts: { routers: number; interfaces: number; ex_gw_ports: number; floating_ips: number };
  /** With `neighbours`: where the routers' neighbour chunks came from (an ARP-only pass rejoins them). */
  neighbourSources?: NamespaceNeighbours[];
  /**
   * Addresses others may have cached with another MAC: floating IPs proxied on fg-, qg-'s
   * addresses (Neutron sends a gratuitous ARP for each when it adds it: send_ip_addr_adv_notif).
   */
  announce: Announcement[];
}

export interface Announcement {
  ns: string;
  dev: string;
  ip: string;
}

export const cidrOf = (ip: { ip_address: string; prefixlen: number }) => `${ip.ip_address}/${ip.prefixlen}`;
export const v4 = (p: PortInfo) => p.fixed_ips.filter((f) => isIpv4(f.ip_address));

/** `192.168.1.1/24` -> `192.168.1.0/24`: how `ip rule` shows a `from` prefix. */
export function networkOf(ip: string, prefixlen: number): string {
  const mask = prefixlen === 0 ? 0 : (0xffffffff << (32 - prefixlen)) >>> 0;
  const n = (ipv4ToInt(ip) & mask) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.')}/${prefixlen}`;
}

function inSubnet(ip: string, cidr: string): boolean {
  const [net, len] = cidr.split('/');
  if (!isIpv4(ip) || !isIpv4(net)) return false;
  return networkOf(ip, Number(len)) === networkOf(net, Number(len));
}

/**
 * A veth end's MAC: the kernel would pick a random one; the state spells it out so both
 * sides' permanent neighbour entries can name it. Locally administered, from the device
 * name and router id, so every resync and every restart gives the same one.
 */
export function vethMac(device: string, routerId: string): string {
  const h = createHash('sha1').update(`${device}/${routerId}`).digest();
  h[0] = (h[0] & 0xfc) | 0x02;
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The central SNAT port serving an interface port's subnet (Neutron's get_snat_port_for_internal_port). */
function snatPortFor(r: RouterInfo, port: PortInfo): PortInfo | undefined {
  const subnets = new Set(port.fixed_ips.map((f) => f.subnet_id));
  return r._snat_router_interfaces.find((s) => s.fixed_ips.some((f) => subnets.has(f.subnet_id)));
}

/** Namespace sysctls of Neutron's `Namespace.create()`. */
export function baseSysctls(f: Fragment, ns: string) {
  f.sysctl(ns, 'net.ipv4.ip_forward', 1);
  f.sysctl(ns, 'net.ipv4.conf.all.arp_ignore', 1);
  f.sysctl(ns, 'net.ipv4.conf.all.arp_announce', 2);
}

/** Extra routes (`router['routes']`) through the device whose subnet holds the next hop. */
export function extraRoutes(f: Fragment, ns: string, r: RouterInfo, devices: Array<{ dev: string; port: PortInfo }>) {
  for (const route of r.routes) {
    const via = devices.find((d) => d.port.fixed_ips.some((ip) => inSubnet(route.nexthop, cidrOf(ip))));
    if (!via || !isIpv4(route.nexthop)) continue; // `ip route replace` would refuse it: nothing on-link reaches the next hop
    f.route(ns, { dst: route.destination, via: route.nexthop, dev: via.dev });
  }
}

/** Metadata: haproxy on 9697 behind a REDIRECT of 169.254.169.254:80 arriving on any qr- (every qrouter-, distributed or not). */
export function routerMetadata(f: Fragment, ipt: IptablesManager, ns: string, routerId: string, metadata: L3BuildInput['metadata']) {
  ipt.mangle.addRule('PREROUTING', `-d ${METADATA_IP}/32 -i ${ROUTER_INTERFACE_PREFIX}+ -p tcp -m tcp --dport 80 -j MARK --set-xmark ${METADATA_ACCESS_MARK}/${ROUTER_MARK_MASK}`);
  ipt.filter.addChain('scope').addRule('FORWARD', '-j $scope').addRule('scope', `-m mark --mark ${METADATA_ACCESS_MARK}/${ROUTER_MARK_MASK} -j DROP`);
  if (metadata) {
    ipt.filter.addRule('INPUT', `-m mark --mark ${METADATA_ACCESS_MARK}/${ROUTER_MARK_MASK} -j ACCEPT`);
    ipt.filter.addRule('INPUT', `-p tcp -m tcp --dport ${metadata.port} -j DROP`);
    ipt.nat.addRule('PREROUTING', `-d ${METADATA_IP}/32 -i ${ROUTER_INTERFACE_PREFIX}+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports ${metadata.port}`);
    f.metadataProxy({ id: routerId, namespace: ns, listen_ip: '0.0.0.0', listen_port: metadata.port, upstream: metadata.upstream, router_id: routerId });
  }
}

export function buildL3(input: L3BuildInput): L3BuildOutput {
  const f = new Fragment();
  const out: L3BuildOutput = {
    state: undefined as unknown as HostState,
    fipStatuses: new Map(),
    linkedRouters: new Set(),
    ruledFips: new Set(),
    announce: [],
    counts: { routers: 0, interfaces: 0, ex_gw_ports: 0, floating_ips: 0 },
  };
  const br = input.integrationBridge;
  /** fip namespaces made so far, by external network. */
  const fipNs = new Map<string, { ns: string; fg: string; gateways: string[]; tables: IptablesManager }>();

  for (const r of [...input.routers].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (!r.admin_state_up) continue;
    if (!r.distributed) {
      // A centralized router lives whole on the host it is scheduled to (legacy.ts).
      if (input.mode !== 'dvr_snat' || r.gw_port_host !== input.host) continue;
      const lr = buildLegacyRouter(f, r, { integrationBridge: br, metadata: input.metadata });
      out.announce.push(...lr.announce);
      out.counts.routers++;
      out.counts.interfaces += lr.interfaces;
      out.counts.ex_gw_ports += lr.exGwPorts;
      out.counts.floating_ips += lr.floatingIps;
      if (Object.keys(lr.fipStatuses).length) out.fipStatuses.set(r.id, lr.fipStatuses);
      continue;
    }
    out.counts.routers++;
    const qrouter = routerNamespace(r.id);
    f.namespace(qrouter);
    baseSysctls(f, qrouter);
    const ipt = new IptablesManager();
    const gw = r.gw_port;

    // Interfaces: the same qr- (IP and MAC) on every host, permanent ARP for the subnet.
    const qrs: Array<{ dev: string; port: PortInfo }> = [];
    for (const p of r._interfaces) {
      const dev = routerInterfaceDevice(p.id);
      f.internalPort({ bridge: br, name: dev, namespace: qrouter, mac: p.mac_address, mtu: p.mtu, addresses: p.fixed_ips.map(cidrOf), portId: p.id });
      qrs.push({ dev, port: p });
      out.counts.interfaces++;
      // One subnet's table holds each address once, and a port's subnets are distinct.
      for (const s of new Set(p.subnets.map((x) => x.id))) {
        if (input.neighbours) f.neighbourChunks(qrouter, input.neighbours(s, dev), { subnet: s, dev });
        else f.neighboursOfDevice(qrouter, dev, input.arp(s));
      }
      // Fixed-IP-only traffic goes to the subnet's central SNAT port (neutron-reference 1.4).
      const sn = gw ? snatPortFor(r, p) : undefined;
      const gwIp = sn ? v4(sn)[0] : undefined;
      if (gwIp) {
        for (const ip of v4(p)) {
          const table = snatRedirectTable(ip.ip_address);
          f.route(qrouter, { dst: 'default', via: gwIp.ip_address, dev, table });
          f.rule(qrouter, { priority: table, from: networkOf(ip.ip_address, ip.prefixlen), table });
        }
        f.sysctl(qrouter, `net.ipv4.conf.${dev}.send_redirects`, 0);
      }
    }
    if (gw) f.sysctl(qrouter, 'net.ipv4.conf.all.send_redirects', 0);
    extraRoutes(f, qrouter, r, qrs);

    routerMetadata(f, ipt, qrouter, r.id, input.metadata);

    // Floating IPs of ports on this host: fip namespace, rfp/fpr, table 16, DNAT/SNAT.
    const fips = r._floatingips.filter((x) => x.host === input.host && isIpv4(x.floating_ip_address) && isIpv4(x.fixed_ip_address));
    const statuses: Record<string, FipStatus> = {};
    if (fips.length) out.fipStatuses.set(r.id, statuses);
    const fg = gw && fips.length ? input.fgPort(gw.network_id) : null;
    if (fips.length && (!gw || !fg || !v4(fg).length)) {
      for (const x of fips) statuses[x.id] = 'ERROR'; // no gateway port to reach the outside from this host
    } else if (gw && fg && fips.length) {
      const ext = ensureFipNamespace(f, fipNs, br, gw.network_id, fg);
      const rfp = routerToFipDevice(r.id);
      const fpr = fipToRouterDevice(r.id);
      const pair = input.linkLocal(r.id);
      out.linkedRouters.add(r.id);
      const ends = pairEnds(pair);
      const rfpMac = vethMac(rfp, r.id);
      const fprMac = vethMac(fpr, r.id);
      const mtu = gw.mtu || undefined;
      f.link(qrouter, { kind: 'veth', name: rfp, mac: rfpMac, up: true, addresses: [`${ends.rfp}/31`], peer: fpr, peer_namespace: ext.ns, ...(mtu ? { mtu } : {}) });
      f.link(ext.ns, { kind: 'veth', name: fpr, mac: fprMac, up: true, addresses: [`${ends.fpr}/31`], peer: rfp, peer_namespace: qrouter, ...(mtu ? { mtu } : {}) });
      f.neighbour(qrouter, { dev: rfp, ip: ends.fpr, lladdr: fprMac, nud: 'permanent' });
      f.neighbour(ext.ns, { dev: fpr, ip: ends.rfp, lladdr: rfpMac, nud: 'permanent' });
      f.route(qrouter, { dst: 'default', via: ends.fpr, dev: rfp, table: FIP_RT_TBL });
      // fip side: the router's own table, entered from its fpr-, leaves by the external gateway.
      const table = fipRouterTable(ends.fpr);
      for (const g of ext.gateways) f.route(ext.ns, { dst: 'default', via: g, dev: ext.fg, table });
      f.rule(ext.ns, { priority: table, iif: fpr, table });
      for (const x of fips) {
        const prio = input.fipPriority(x);
        out.ruledFips.add(x.floating_ip_address);
        out.announce.push({ ns: ext.ns, dev: ext.fg, ip: x.floating_ip_address });
        f.rule(qrouter, { priority: prio, from: x.fixed_ip_address, table: FIP_RT_TBL });
        f.route(ext.ns, { dst: `${x.floating_ip_address}/32`, via: ends.rfp, dev: fpr });
        ipt.nat.addRule('PREROUTING', `-d ${x.floating_ip_address}/32 -i ${rfp} -j DNAT --to-destination ${x.fixed_ip_address}`);
        ipt.nat.addRule('float-snat', `-s ${x.fixed_ip_address}/32 -j SNAT --to-source ${x.floating_ip_address} --random-fully`);
        statuses[x.id] = 'ACTIVE';
        out.counts.floating_ips++;
      }
      // DvrLocalRouter._handle_router_snat_rules: only with rfp- and floating IPs.
      ipt.nat.addRule('snat', '-j $float-snat');
      ipt.nat.addRule('POSTROUTING', `! -o ${rfp} -m conntrack ! --ctstate DNAT -j ACCEPT`);
    }
    f.iptables(qrouter, ipt.texts());

    // The central SNAT of this router, if this host is its dvr_snat host.
    if (gw && input.mode === 'dvr_snat' && r.gw_port_host === input.host) {
      out.counts.ex_gw_ports++;
      out.announce.push(...buildSnat(f, br, r, gw));
    }
  }
  for (const ext of fipNs.values()) f.iptables(ext.ns, ext.tables.texts());
  out.state = f.state();
  if (input.neighbours) out.neighbourSources = f.neighbourSources();
  return out;
}

function ensureFipNamespace(
  f: Fragment,
  made: Map<string, { ns: string; fg: string; gateways: string[]; tables: IptablesManager }>,
  br: string,
  networkId: string,
  fg: PortInfo,
) {
  const have = made.get(networkId);
  if (have) return have;
  const ns = fipNamespace(networkId);
  const dev = fipGatewayDevice(fg.id);
  f.namespace(ns);
  baseSysctls(f, ns);
  f.sysctl(ns, 'net.ipv4.ip_nonlocal_bind', 1);
  f.internalPort({ bridge: br, name: dev, namespace: ns, mac: fg.mac_address, mtu: fg.mtu, addresses: fg.fixed_ips.map(cidrOf), portId: fg.id });
  f.sysctl(ns, `net.ipv4.conf.${dev}.proxy_arp`, 1);
  const tables = new IptablesManager();
  tables.raw.addRule('PREROUTING', '-j CT --notrack');
  const gateways = fg.subnets.filter((s) => s.gateway_ip && isIpv4(s.gateway_ip)).map((s) => s.gateway_ip!);
  const entry = { ns, fg: dev, gateways, tables };
  made.set(networkId, entry);
  return entry;
}

/** snat-<router>: sg- per interface subnet, qg- on the external network, SNAT to the gateway IP; returns the sg- and qg- addresses to announce. */
function buildSnat(f: Fragment, br: string, r: RouterInfo, gw: PortInfo): Announcement[] {
  const ns = snatNamespace(r.id);
  f.namespace(ns);
  baseSysctls(f, ns);
  f.sysctl(ns, 'net.ipv4.ip_nonlocal_bind', 0);
  f.sysctl(ns, 'net.netfilter.nf_conntrack_tcp_loose', 0);
  const sgs: Array<{ dev: string; port: PortInfo }> = [];
  for (const sp of r._snat_router_interfaces) {
    const dev = snatDevice(sp.id);
    f.internalPort({ bridge: br, name: dev, namespace: ns, mac: sp.mac_address, mtu: sp.mtu, addresses: sp.fixed_ips.map(cidrOf), portId: sp.id });
    sgs.push({ dev, port: sp });
  }
  const qg = plugGateway(f, br, ns, gw);
  extraRoutes(f, ns, r, sgs);

  const ipt = new IptablesManager();
  ipt.nat.addRule('snat', '-j $float-snat');
  ipt.mangle.addChain('mark').addRule('PREROUTING', '-j $mark');
  gatewayNatRules(ipt, qg, gw, r.enable_snat);
  f.iptables(ns, ipt.texts());
  // RouterInfo._internal_network_added and external_gateway_added announce each address.
  return [...sgs.flatMap(({ dev, port }) => v4(port).map((a) => ({ ns, dev, ip: a.ip_address }))), ...v4(gw).map((a) => ({ ns, dev: qg, ip: a.ip_address }))];
}

/** qg- on the integration bridge with the gateway port's addresses (and `extra` ones), default via each subnet's gateway. */
export function plugGateway(f: Fragment, br: string, ns: string, gw: PortInfo, extra: string[] = []): string {
  const qg = routerGatewayDevice(gw.id);
  f.internalPort({ bridge: br, name: qg, namespace: ns, mac: gw.mac_address, mtu: gw.mtu, addresses: [...gw.fixed_ips.map(cidrOf), ...extra], portId: gw.id });
  for (const s of gw.subnets) if (s.gateway_ip && isIpv4(s.gateway_ip)) f.route(ns, { dst: 'default', via: s.gateway_ip, dev: qg });
  return qg;
}

/**
 * RouterInfo._add_snat_rules for the namespace holding qg-: SNAT of what leaves by qg- to
 * the gateway address, no SNAT of what stays inside unless DNATed, and replies to DNATed
 * internal traffic (hairpin to a floating IP) SNATed so they come back through the router.
 * The `snat` -> `$float-snat` jump and the mangle `mark` chain are the caller's.
 */
export function gatewayNatRules(ipt: IptablesManager, qg: string, gw: PortInfo, enableSnat: boolean) {
  const gwIp = v4(gw)[0]?.ip_address;
  if (!gwIp) return;
  if (enableSnat) ipt.nat.addRule('snat', `-o ${qg} -j SNAT --to-source ${gwIp} --random-fully`);
  ipt.nat.addRule('POSTROUTING', `! -o ${qg} -m conntrack ! --ctstate DNAT -j ACCEPT`);
  ipt.nat.addRule('snat', `-m mark ! --mark ${EXTERNAL_INGRESS_MARK}/${ROUTER_MARK_MASK} -m conntrack --ctstate DNAT -j SNAT --to-source ${gwIp} --random-fully`);
  ipt.mangle.addRule('mark', `-i ${qg} -j MARK --set-xmark ${EXTERNAL_INGRESS_MARK}/${ROUTER_MARK_MASK}`);
}
