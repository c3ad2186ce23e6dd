// A network namespace: its devices, addresses, routing policy, neighbour tables, sysctls,
// netfilter state and listening sockets. Configuration methods mirror `ip` commands and fail
// like them (quoting the offending input); packet processing is in stack.ts.

import { intToIp, ipToInt, parseCidr, parseIfAddr, type Cidr } from '../addr.js';
import type { Frame, Mac } from '../packet.js';
import { Device, type IfAddr } from './device.js';
import type { EmulatedHost } from './host.js';
import { neighText, type Neighbour } from './neigh.js';
import { Netfilter } from '../netfilter/index.js';
import type { IpSet, IptablesTable } from '../../../host/state.js';
import { cached } from '../../../common/cache.js';
import { Rib, RT_TABLE_MAIN, routeText, type Route, type RouteType, type Rule } from './routing.js';

/** A datagram or segment handed to a local socket. */
export interface SocketMessage {
  ns: Namespace;
  dev: Device;
  frame: Frame;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  data: unknown;
  pkt: number;
}

export type UdpHandler = (msg: SocketMessage) => void;
/** A TCP server: given the request data of an established connection, returns the response data. */
export type TcpHandler = (msg: SocketMessage) => unknown;
/** A raw handler for an IP protocol or a UDP port owned by the kernel (VXLAN, GRE). */
export type IpHandler = (frame: Frame, dev: Device, pkt: number) => void;

export interface RouteSpec {
  dst: string; // '10.0.0.0/24' | 'default'
  via?: string;
  dev?: string;
  table?: number;
  metric?: number;
  src?: string;
  type?: RouteType;
}

export interface RuleSpec {
  priority: number;
  from?: string;
  to?: string;
  iif?: string;
  oif?: string;
  fwmark?: string | number;
  table: number;
}

export class Namespace {
  devices = new Map<string, Device>();
  /** Local addresses (as numbers) -> the device holding them. */
  local = new Map<number, Device>();
  rib: Rib;
  ipForward = false;
  proxyArpAll = false;
  bridgeNfCallIptables = false;
  /** Every sysctl set, as written (read back by the driver). */
  sysctls = new Map<string, string>();
  /** iptables-restore input per table and ipsets, as last applied (what the host state reads back). */
  iptablesText: Partial<Record<IptablesTable, string>> = {};
  ipsetState: Record<string, IpSet> = {};
  /** Created by the first iptables/ipset change; until then hooks are skipped (no rules, no conntrack). */
  netfilter?: Netfilter;
  udp = new Map<number, UdpHandler>();
  /** Packet sockets bound to a UDP port (a DHCP client before it has an address): see frames before IP. */
  packetUdp = new Map<number, UdpHandler>();
  tcp = new Map<number, TcpHandler>();
  /** Kernel-owned receivers: UDP ports (VXLAN 4789) and IP protocols (GRE 47). */
  udpKernel = new Map<number, IpHandler>();
  protoKernel = new Map<number, IpHandler>();
  /** TCP client connections waiting for an answer, by local port. */
  tcpClients = new Map<number, { request: unknown; onResponse?: (data: unknown) => void }>();
  nextEphemeral = 40000;
  lo: Device;
  /** An instance's stack (a VM behind a tap) or an `ip netns` namespace. */
  kind: 'netns' | 'instance' = 'netns';

  /** Callbacks netfilter asks for (`-m addrtype`, REDIRECT, MASQUERADE), made once per namespace. */
  readonly ownAddresses = (ip: string): boolean => this.isLocal(ipToInt(ip));
  readonly primaryAddress = (dev: string): string | undefined => {
    const a = this.devices.get(dev)?.addrs[0];
    return a ? intToIp(a.ip) : undefined;
  };

  constructor(
    public host: EmulatedHost,
    /** '' for the host's root namespace. */
    public name: string,
  ) {
    this.rib = new Rib((ip) => this.isLocal(ip));
    this.lo = new Device('lo', 'loopback', '00:00:00:00:00:00', this);
    this.lo.up = true;
    this.devices.set('lo', this.lo);
    this.addAddrTo(this.lo, '127.0.0.1/8');
  }

  get label(): string {
    return this.name || '(root)';
  }

  isLocal(ip: number): boolean {
    return this.local.has(ip) || (ip >>> 24) === 127;
  }

  device(name: string): Device {
    const d = this.devices.get(name);
    if (!d) throw new Error(`Cannot find device '${name}'${this.name ? ` in namespace '${this.name}'` : ''}`);
    return d;
  }

  attach(dev: Device): void {
    if (this.devices.has(dev.name)) throw new Error(`RTNETLINK answers: File exists (device '${dev.name}'${this.name ? ` in namespace '${this.name}'` : ''})`);
    dev.ns = this;
    this.devices.set(dev.name, dev);
  }

  /** Takes a device out of this namespace (deleted or moved): its addresses and routes go with it. */
  detach(dev: Device): void {
    for (const a of [...dev.addrs]) this.delAddrFrom(dev, a.text);
    for (const t of this.rib.tables.values()) t.delWhere((r) => r.dev === dev);
    dev.neigh.clear();
    this.devices.delete(dev.name);
    const prefix = `net.ipv4.conf.${dev.name.replace(/\./g, '/')}.`;
    for (const k of [...this.sysctls.keys()]) if (k.startsWith(prefix)) this.sysctls.delete(k);
  }

  // --- ip addr -------------------------------------------------------------------------

  addAddr(devName: string, cidr: string): void {
    this.addAddrTo(this.device(devName), cidr);
  }

  addAddrTo(dev: Device, cidr: string): void {
    const { ip, len } = parseIfAddr(cidr);
    const text = `${intToIp(ip)}/${len}`;
    if (dev.addrs.some((a) => a.text === text)) throw new Error(`RTNETLINK answers: File exists (address '${cidr}' on ${dev.name})`);
    const subnet = parseCidr(text);
    const a: IfAddr = { ip, len, subnet, text };
    dev.addrs.push(a);
    this.local.set(ip, dev);
    // The kernel's connected route (proto kernel scope link src <ip>); /32 has none.
    if (len < 32 && dev.kind !== 'loopback') {
      const main = this.rib.table(RT_TABLE_MAIN);
      if (!main.routes().some((r) => r.proto === 'kernel' && r.dev === dev && r.dst.net === subnet.net && r.dst.len === len)) {
        main.add({ dst: subnet, type: 'unicast', dev, src: ip, metric: 0, table: RT_TABLE_MAIN, proto: 'kernel', scope: 'link' });
      }
    }
  }

  delAddr(devName: string, cidr: string): void {
    this.delAddrFrom(this.device(devName), cidr);
  }

  delAddrFrom(dev: Device, cidr: string): void {
    const { ip, len } = parseIfAddr(cidr);
    const text = `${intToIp(ip)}/${len}`;
    const i = dev.addrs.findIndex((a) => a.text === text);
    if (i < 0) throw new Error(`RTNETLINK answers: Cannot assign requested address ('${cidr}' is not on ${dev.name})`);
    const [a] = dev.addrs.splice(i, 1);
    if (this.local.get(ip) === dev) this.local.delete(ip);
    if (!dev.addrs.some((x) => x.subnet.net === a.subnet.net && x.len === a.len)) {
      this.rib.table(RT_TABLE_MAIN).delWhere((r) => r.proto === 'kernel' && r.dev === dev && r.dst.net === a.subnet.net && r.dst.len === a.len);
    }
  }

  // --- ip route / ip rule --------------------------------------------------------------

  addRoute(spec: RouteSpec): Route {
    const route = this.makeRoute(spec);
    this.rib.table(route.table).add(route);
    return route;
  }

  /** `ip route replace`: the route with the same table, destination and metric is replaced. */
  replaceRoute(spec: RouteSpec): Route {
    const route = this.makeRoute(spec);
    const t = this.rib.table(route.table);
    while (t.del({ dst: route.dst, metric: route.metric })) {
      /* removed the one(s) with that key */
    }
    t.add(route);
    return route;
  }

  delRoute(spec: RouteSpec): void {
    const r = this.makeRoute(spec, false);
    const t = this.rib.tables.get(r.table);
    if (!t?.del(r)) throw new Error(`RTNETLINK answers: No such process (route '${describeRouteSpec(spec)}')`);
  }

  private makeRoute(spec: RouteSpec, validate = true): Route {
    const type = spec.type ?? 'unicast';
    let dst: Cidr;
    try {
      dst = parseCidr(spec.dst);
    } catch {
      throw new Error(`Invalid route destination '${spec.dst}' in '${describeRouteSpec(spec)}'`);
    }
    if (dst.len < 32 && spec.dst !== 'default' && ipToInt(spec.dst.split('/')[0]) !== dst.net) {
      throw new Error(`Invalid prefix for given prefix length in route '${describeRouteSpec(spec)}'`);
    }
    const table = spec.table ?? RT_TABLE_MAIN;
    const via = spec.via !== undefined ? ipToInt(spec.via) : undefined;
    let dev = spec.dev !== undefined ? this.device(spec.dev) : undefined;
    if (type === 'unicast' && validate) {
      if (via !== undefined) {
        // The gateway must be on a connected subnet (Linux: "Nexthop has invalid gateway").
        const onLink = [...this.devices.values()].find((d) => (!dev || d === dev) && d.addrs.some((a) => a.len < 32 && ((via & a.subnet.mask) >>> 0) === a.subnet.net));
        if (!onLink) throw new Error(`RTNETLINK answers: Nexthop has invalid gateway (route '${describeRouteSpec(spec)}')`);
        dev = dev ?? onLink;
      } else if (!dev) throw new Error(`Route '${describeRouteSpec(spec)}' needs a device or a gateway`);
    }
    return {
      dst,
      type,
      dev,
      via,
      src: spec.src !== undefined ? ipToInt(spec.src) : undefined,
      metric: spec.metric ?? 0,
      table,
      proto: 'static',
      scope: via === undefined ? 'link' : 'global',
    };
  }

  addRule(spec: RuleSpec): void {
    this.rib.addRule(this.makeRule(spec));
  }

  delRule(spec: RuleSpec): void {
    if (!this.rib.delRule(this.makeRule(spec))) throw new Error(`RTNETLINK answers: No such file or directory (rule priority ${spec.priority} lookup ${spec.table})`);
  }

  private makeRule(spec: RuleSpec): Rule {
    const r: Rule = { priority: spec.priority, table: spec.table };
    if (!Number.isInteger(spec.priority) || spec.priority < 0 || spec.priority > 0xffffffff) throw new Error(`Invalid rule priority '${spec.priority}'`);
    if (spec.from && spec.from !== 'all') {
      r.from = parseCidr(spec.from);
      r.fromText = spec.from;
    }
    if (spec.to && spec.to !== 'all') {
      r.to = parseCidr(spec.to);
      r.toText = spec.to;
    }
    if (spec.iif) r.iif = spec.iif;
    if (spec.oif) r.oif = spec.oif;
    if (spec.fwmark !== undefined) {
      const text = String(spec.fwmark);
      const [v, m] = text.split('/');
      const value = Number(v);
      const mask = m === undefined ? 0xffffffff : Number(m);
      if (!Number.isFinite(value) || !Number.isFinite(mask)) throw new Error(`Invalid fwmark '${text}'`);
      r.fwmark = { value: value >>> 0, mask: mask >>> 0 };
    }
    return r;
  }

  // --- ip neigh ------------------------------------------------------------------------

  addNeigh(devName: string, ip: string, mac: Mac, state: 'PERMANENT' | 'REACHABLE' = 'PERMANENT'): void {
    const dev = this.device(devName);
    const n = ipToInt(ip);
    const prev = dev.neigh.get(n);
    if (state === 'PERMANENT' && !prev?.pending?.length) {
      dev.neigh.set(n, permanentEntry(n, mac.toLowerCase()));
      return;
    }
    const entry: Neighbour = { ip: n, mac: mac.toLowerCase(), state, updated: this.host.engine.now, managed: true };
    dev.neigh.set(n, entry);
    if (prev?.pending?.length) (entry.pending = prev.pending), this.host.stack.flushPending(dev, entry);
  }

  delNeigh(devName: string, ip: string): void {
    const dev = this.device(devName);
    if (!dev.neigh.delete(ipToInt(ip))) throw new Error(`RTNETLINK answers: No such file or directory (neighbour ${ip} dev ${devName})`);
  }

  neighbours(): string[] {
    const out: string[] = [];
    for (const d of this.devices.values()) for (const n of d.neigh.values()) out.push(neighText(n, d.name));
    return out;
  }

  // --- iptables / ipset ---------------------------------------------------------------

  /** The namespace's netfilter state, created on first use with the world's clock. */
  nf(): Netfilter {
    if (!this.netfilter) {
      const engine = this.host.engine;
      this.netfilter = new Netfilter({ clock: () => engine.now });
    }
    return this.netfilter;
  }

  /** `iptables-restore [--noflush]` in this namespace. */
  iptablesRestore(text: string, opts: { noflush?: boolean } = {}): void {
    this.nf().restore(text, opts);
  }

  /** `ipset restore` in this namespace. */
  ipsetRestore(text: string): void {
    this.nf().ipset.restore(text);
  }

  ipsetUpdate(name: string, del: readonly string[], add: readonly string[]): void {
    this.nf().ipset.update(name, del, add);
  }

  // --- sysctl --------------------------------------------------------------------------

  setSysctl(key: string, value: string | number | boolean): void {
    const v = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
    const on = v === '1';
    const m = /^net\.ipv4\.conf\.([^.]+)\.(.+)$/.exec(key);
    if (key === 'net.ipv4.ip_forward' || key === 'net.ipv4.conf.all.forwarding') this.ipForward = on;
    else if (key === 'net.bridge.bridge-nf-call-iptables') this.bridgeNfCallIptables = on;
    else if (m && m[2] === 'proxy_arp') {
      if (m[1] === 'all') this.proxyArpAll = on;
      else if (m[1] !== 'default') this.device(m[1].replace(/\//g, '.')).proxyArp = on;
    }
    this.sysctls.set(key, v);
  }

  /** Routes of a table as `ip route show table N` text. */
  routesText(table = RT_TABLE_MAIN): string[] {
    return (this.rib.tables.get(table)?.routes() ?? []).map(routeText);
  }

  newEphemeralPort(): number {
    const p = this.nextEphemeral++;
    if (this.nextEphemeral > 60999) this.nextEphemeral = 40000;
    return p;
  }
}

function describeRouteSpec(s: RouteSpec): string {
  const parts = [s.type && s.type !== 'unicast' ? s.type : '', s.dst];
  if (s.via) parts.push('via', s.via);
  if (s.dev) parts.push('dev', s.dev);
  if (s.table !== undefined) parts.push('table', String(s.table));
  if (s.metric) parts.push('metric', String(s.metric));
  return parts.filter(Boolean).join(' ');
}

/**
 * A permanent entry written by `ip neigh replace`: never changed by the stack afterwards (ARP
 * does not override it, nothing queues on it), so the hosts of a world share one object per
 * address and MAC (every host's router holds an entry for each port of its subnets).
 */
function permanentEntry(ip: number, mac: Mac): Neighbour {
  return cached(PERMANENT, `${ip} ${mac}`, 1_000_000, () => ({ ip, mac, state: 'PERMANENT', updated: 0, managed: true }));
}
const PERMANENT = new Map<string, Neighbour>();
