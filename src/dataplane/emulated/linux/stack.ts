// The IPv4 stack of a namespace, following the kernel's path through netfilter hooks:
//
//   receive -> PREROUTING -> routing decision -> INPUT -> local socket
//                                             -> FORWARD (TTL-1) -> POSTROUTING -> neighbour -> device
//   local socket -> routing -> OUTPUT -> POSTROUTING -> neighbour -> device
//
// plus ARP (answers for local addresses, proxy ARP, neighbour learning and the queue of
// packets waiting for resolution) and the ICMP the kernel generates itself (echo replies,
// time exceeded, unreachables, REJECT).

import { intToIp, ipToInt } from '../addr.js';
import {
  BROADCAST_MAC,
  clone,
  ETH_TYPE_ARP,
  ETH_TYPE_IPV4,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  isMulticastMac,
  ZERO_MAC,
  type Encap,
  type Frame,
  type Icmp,
  type Tcp,
  type Udp,
} from '../packet.js';
import type { Device } from './device.js';
import type { EmulatedHost } from './host.js';
import type { Namespace, SocketMessage } from './namespace.js';
import { neighText, UNRES_QLEN, type Neighbour } from './neigh.js';
import type { HookContext, HookName } from './nf.js';
import type { NfStep } from '../netfilter/types.js';
import { routeText, ruleText, tableName, type Route } from './routing.js';

const LIMITED_BROADCAST = 0xffffffff;

/** What a local application asks the stack to send. */
export interface IpSendSpec {
  dst: string;
  src?: string;
  ttl?: number;
  l4?: Icmp | Tcp | Udp;
  /** IP protocol when there is no `l4` (GRE). */
  proto?: number;
  /** A tunnel payload (the vswitch's VXLAN/GRE encapsulation). */
  encap?: Encap;
  data?: unknown;
  /** Bind to a device (SO_BINDTODEVICE): the route lookup uses it as oif. */
  oif?: string;
}

const REJECT_CODES: Record<string, number> = {
  'icmp-net-unreachable': 0,
  'icmp-host-unreachable': 1,
  'icmp-proto-unreachable': 2,
  'icmp-port-unreachable': 3,
  'icmp-net-prohibited': 9,
  'icmp-host-prohibited': 10,
  'icmp-admin-prohibited': 13,
};

export class IpStack {
  constructor(private host: EmulatedHost) {}

  // --- receive -------------------------------------------------------------------------

  /** A frame reached the IP layer of `dev`'s namespace. */
  input(dev: Device, frame: Frame, pkt: number, preroutingDone = false): void {
    const ns = dev.ns;
    if (frame.vlan !== undefined) return this.host.drop(ns, dev, frame, pkt, `VLAN ${frame.vlan} tagged frame on untagged device ${dev.name}`);
    const dst = frame.eth.dst;
    if (dst !== dev.mac && !isMulticastMac(dst) && dev.kind !== 'loopback') {
      return this.host.drop(ns, dev, frame, pkt, `destination MAC ${dst} is not ${dev.name}'s ${dev.mac} (PACKET_OTHERHOST)`);
    }
    if (frame.eth.type === ETH_TYPE_ARP && frame.arp) return this.arpInput(dev, frame, pkt);
    if (frame.eth.type === ETH_TYPE_IPV4 && frame.ip) {
      // Packet sockets (a DHCP client's) see frames before the IP layer and netfilter.
      if (frame.l4?.kind === 'udp' && ns.packetUdp.size) {
        const h = ns.packetUdp.get(frame.l4.dport);
        if (h) return this.toSocket(h, dev, frame, pkt, `packet socket udp:${frame.l4.dport}`);
      }
      return this.ipInput(dev, frame, pkt, preroutingDone);
    }
    this.host.drop(ns, dev, frame, pkt, `unhandled ethertype 0x${frame.eth.type.toString(16)}`);
  }

  private arpInput(dev: Device, frame: Frame, pkt: number): void {
    const ns = dev.ns;
    const arp = frame.arp!;
    const tpa = ipToInt(arp.tpa);
    const spa = ipToInt(arp.spa);
    if (arp.op === 1) {
      if (ns.local.has(tpa)) {
        if (spa !== 0) this.learn(dev, spa, arp.sha, true, pkt, frame);
        return this.arpReply(dev, frame, pkt, `${arp.tpa} is a local address of ${ns.label}`);
      }
      if ((dev.proxyArp || ns.proxyArpAll) && ns.ipForward) {
        const r = ns.rib.lookup({ src: spa, dst: tpa, iif: dev.name });
        if (r.kind === 'route' && r.route.dev !== dev) {
          if (spa !== 0) this.learn(dev, spa, arp.sha, true, pkt, frame);
          return this.arpReply(dev, frame, pkt, `proxy_arp on ${dev.name}: ${arp.tpa} routed via ${r.route.dev?.name} (${routeText(r.route)})`);
        }
      }
      if (spa !== 0) this.learn(dev, spa, arp.sha, false, pkt, frame);
      // Every host of a segment hears each who-has (a thousand hosts: a million for the underlay
      // ARP of one flood): no reason text unless a record keeps it.
      if (this.host.engine.tracer.active) this.host.drop(ns, dev, frame, pkt, `ARP who-has ${arp.tpa}: not a local address${dev.proxyArp || ns.proxyArpAll ? ' and not proxied' : ''}`);
      return;
    }
    // Replies (and gratuitous ARP) update an entry that exists; unsolicited ones create
    // nothing (arp_accept=0).
    const n = dev.neigh.get(spa);
    this.host.deliver(ns, dev, frame, pkt, n && n.state !== 'PERMANENT' ? 'arp' : `arp (ignored: ${n ? 'permanent entry' : 'no entry to update'})`);
    this.learn(dev, spa, arp.sha, false, pkt, frame);
  }

  /** Records `ip -> mac` on `dev`; returns whether an entry was created or changed. */
  private learn(dev: Device, ip: number, mac: string, create: boolean, pkt: number, frame: Frame): boolean {
    const n = dev.neigh.get(ip);
    if (n?.state === 'PERMANENT') return false;
    if (!n && !create) return false;
    const now = this.host.engine.now;
    const entry: Neighbour = n ?? { ip, state: 'STALE', updated: now };
    const changed = entry.mac !== mac || entry.state === 'INCOMPLETE' || entry.state === 'FAILED';
    entry.mac = mac;
    entry.state = n ? 'REACHABLE' : 'STALE';
    entry.updated = now;
    if (!n) dev.neigh.set(ip, entry);
    if (changed && this.host.engine.tracer.steps) {
      this.host.step(dev.ns, { pkt, dev: dev.name, kind: 'neigh', rule: neighText(entry, dev.name), action: `learned ${intToIp(ip)} is-at ${mac}`, before: frame });
    }
    if (entry.pending?.length) this.flushPending(dev, entry);
    return changed;
  }

  private arpReply(dev: Device, req: Frame, pkt: number, why: string): void {
    const arp = req.arp!;
    const reply: Frame = {
      eth: { src: dev.mac, dst: arp.sha, type: ETH_TYPE_ARP },
      arp: { op: 2, sha: dev.mac, spa: arp.tpa, tha: arp.sha, tpa: arp.spa },
    };
    const rp = this.host.engine.tracer.newPacket(`ARP reply ${arp.tpa} is-at ${dev.mac}`, pkt);
    if (this.host.engine.tracer.steps) this.host.step(dev.ns, { pkt: rp, dev: dev.name, kind: 'arp', rule: why, action: `reply ${arp.tpa} is-at ${dev.mac}`, before: req, after: reply });
    this.host.xmit(dev, reply, rp);
  }

  private ipInput(dev: Device, frame: Frame, pkt: number, preroutingDone: boolean): void {
    const ns = dev.ns;
    let f = frame;
    if (!preroutingDone) {
      const r = this.hook(ns, 'PREROUTING', f, dev.name, undefined, pkt, dev);
      if (!r) return;
      f = r;
    }
    const dst = ipToInt(f.ip!.dst);
    if (this.isLocalDst(ns, dst, dev)) return this.localIn(dev, f, pkt);
    if (!ns.ipForward) return this.host.drop(ns, dev, f, pkt, `${f.ip!.dst} is not local and net.ipv4.ip_forward=0`);
    if (isMulticastMac(f.eth.dst)) return this.host.drop(ns, dev, f, pkt, `link-layer broadcast for ${f.ip!.dst} is not forwarded`);
    const res = ns.rib.lookup({ src: ipToInt(f.ip!.src), dst, iif: dev.name, mark: f.meta?.mark });
    if (res.kind !== 'route') {
      if (this.host.engine.tracer.steps) this.host.step(ns, { pkt, dev: dev.name, kind: 'route', rule: res.kind === 'error' && res.route ? routeText(res.route) : undefined, action: `no route to ${f.ip!.dst}: ${res.kind === 'error' ? res.error : 'local'}`, before: f });
      if (res.kind === 'error' && res.error !== 'blackhole') this.icmpError(ns, f, 3, res.error === 'prohibit' ? 13 : 0, dev, pkt);
      else this.host.drop(ns, dev, f, pkt, `blackhole route to ${f.ip!.dst}`);
      return;
    }
    this.forward(dev, f, res.route, pkt, ruleText(res.rule));
  }

  private isLocalDst(ns: Namespace, dst: number, dev: Device): boolean {
    if (ns.local.has(dst) || dst === LIMITED_BROADCAST) return true;
    for (const a of dev.addrs) if (a.len < 31 && (dst | a.subnet.mask) >>> 0 === LIMITED_BROADCAST && ((dst & a.subnet.mask) >>> 0) === a.subnet.net) return true;
    return (dst >>> 24) === 127;
  }

  private forward(inDev: Device, f: Frame, route: Route, pkt: number, rule: string): void {
    const ns = inDev.ns;
    const outDev = route.dev!;
    if (f.ip!.ttl <= 1) {
      if (this.host.engine.tracer.steps) this.host.step(ns, { pkt, dev: inDev.name, kind: 'route', table: tableName(route.table), rule: routeText(route), action: `TTL ${f.ip!.ttl} expires in transit`, before: f });
      return this.icmpError(ns, f, 11, 0, inDev, pkt);
    }
    const g = clone(f);
    g.ip!.ttl = f.ip!.ttl - 1;
    if (this.host.engine.tracer.steps) {
      this.host.step(ns, { pkt, dev: inDev.name, kind: 'route', table: tableName(route.table), rule: `${rule} | ${routeText(route)}`, action: `forward to ${outDev.name}${route.via !== undefined ? ` via ${intToIp(route.via)}` : ''}, TTL ${f.ip!.ttl}->${g.ip!.ttl}`, before: f, after: g });
    }
    const r = this.hook(ns, 'FORWARD', g, inDev.name, outDev.name, pkt, inDev);
    if (!r) return;
    this.postrouting(outDev, route.via ?? ipToInt(r.ip!.dst), r, pkt, inDev.name);
  }

  // --- local delivery ------------------------------------------------------------------

  private localIn(dev: Device, frame: Frame, pkt: number): void {
    const ns = dev.ns;
    const f = this.hook(ns, 'INPUT', frame, dev.name, undefined, pkt, dev);
    if (!f) return;
    const ip = f.ip!;
    const l4 = f.l4;
    if (ip.proto === IPPROTO_ICMP && l4?.kind === 'icmp') {
      if (l4.type === 8) {
        if (ipToInt(ip.dst) === LIMITED_BROADCAST) return this.host.drop(ns, dev, f, pkt, 'echo to broadcast ignored (icmp_echo_ignore_broadcasts=1)');
        this.host.deliver(ns, dev, f, pkt, 'icmp echo');
        const rp = this.host.engine.tracer.newPacket(`ICMP echo reply from ${ns.label}`, pkt);
        if (this.host.engine.tracer.steps) this.host.step(ns, { pkt: rp, dev: dev.name, kind: 'icmp', action: `echo reply ${ip.dst} -> ${ip.src}`, before: f });
        this.send(ns, { src: ip.dst, dst: ip.src, l4: { kind: 'icmp', type: 0, code: 0, id: l4.id, seq: l4.seq }, data: f.data }, rp);
        return;
      }
      return this.host.deliver(ns, dev, f, pkt, `icmp type ${l4.type} code ${l4.code}`);
    }
    if (ip.proto === IPPROTO_UDP && l4?.kind === 'udp') {
      const k = ns.udpKernel.get(l4.dport);
      if (k) return k(f, dev, pkt);
      const h = ns.udp.get(l4.dport);
      if (h) return this.toSocket(h, dev, f, pkt, `udp:${l4.dport}`);
      if (ipToInt(ip.dst) === LIMITED_BROADCAST || isMulticastMac(f.eth.dst)) return this.host.drop(ns, dev, f, pkt, `no socket on udp:${l4.dport} (broadcast: no error sent)`);
      if (this.host.engine.tracer.steps) this.host.step(ns, { pkt, dev: dev.name, kind: 'deliver', action: `no socket on udp:${l4.dport}`, before: f });
      return this.icmpError(ns, f, 3, 3, dev, pkt);
    }
    if (ip.proto === IPPROTO_TCP && l4?.kind === 'tcp') return this.tcpInput(dev, f, l4, pkt);
    const k = ns.protoKernel.get(ip.proto);
    if (k) return k(f, dev, pkt);
    this.icmpError(ns, f, 3, 2, dev, pkt);
  }

  private toSocket(h: (m: SocketMessage) => void, dev: Device, f: Frame, pkt: number, to: string): void {
    const l4 = f.l4 as Udp;
    this.host.deliver(dev.ns, dev, f, pkt, to);
    h({ ns: dev.ns, dev, frame: f, src: f.ip!.src, dst: f.ip!.dst, sport: l4.sport, dport: l4.dport, data: f.data, pkt });
  }

  /**
   * Just enough TCP for a request/response: SYN -> SYN/ACK -> ACK+request -> ACK+response.
   * No sequence numbers or retransmission; conntrack sees the states a real exchange has.
   */
  private tcpInput(dev: Device, f: Frame, tcp: Tcp, pkt: number): void {
    const ns = dev.ns;
    const ip = f.ip!;
    const reply = (flags: Tcp['flags'], data: unknown, what: string) => {
      const rp = this.host.engine.tracer.newPacket(`TCP ${what} from ${ns.label}`, pkt);
      if (this.host.engine.tracer.steps) this.host.step(ns, { pkt: rp, dev: dev.name, kind: 'app', action: `tcp ${ip.dst}:${tcp.dport} answers ${what}`, before: f });
      this.send(ns, { src: ip.dst, dst: ip.src, l4: { kind: 'tcp', sport: tcp.dport, dport: tcp.sport, flags }, data }, rp);
    };
    const client = ns.tcpClients.get(tcp.dport);
    if (client) {
      this.host.deliver(ns, dev, f, pkt, `tcp client :${tcp.dport}`);
      if (tcp.flags.rst) {
        ns.tcpClients.delete(tcp.dport);
        return;
      }
      if (tcp.flags.syn && tcp.flags.ack) return reply({ ack: true }, client.request, 'ACK with the request');
      if (f.data !== undefined) {
        ns.tcpClients.delete(tcp.dport);
        client.onResponse?.(f.data);
      }
      return;
    }
    const server = ns.tcp.get(tcp.dport);
    if (!server) {
      if (tcp.flags.rst) return this.host.drop(ns, dev, f, pkt, `RST to closed port ${tcp.dport}`);
      this.host.deliver(ns, dev, f, pkt, `tcp:${tcp.dport} closed`);
      return reply({ rst: true, ack: true }, undefined, 'RST (port closed)');
    }
    this.host.deliver(ns, dev, f, pkt, `tcp:${tcp.dport}`);
    if (tcp.flags.syn && !tcp.flags.ack) return reply({ syn: true, ack: true }, undefined, 'SYN/ACK');
    if (f.data !== undefined) {
      const response = server({ ns, dev, frame: f, src: ip.src, dst: ip.dst, sport: tcp.sport, dport: tcp.dport, data: f.data, pkt });
      return reply({ ack: true, fin: true }, response, 'the response');
    }
  }

  // --- send ----------------------------------------------------------------------------

  /** A locally generated packet: routing, OUTPUT, POSTROUTING, neighbour, device. */
  send(ns: Namespace, spec: IpSendSpec, pkt: number): void {
    const dst = ipToInt(spec.dst);
    const proto = spec.l4 ? (spec.l4.kind === 'icmp' ? IPPROTO_ICMP : spec.l4.kind === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP) : (spec.proto ?? 0);
    const res = ns.rib.lookup({ src: spec.src !== undefined ? ipToInt(spec.src) : undefined, dst, iif: 'lo', oif: spec.oif });
    const draft: Frame = { eth: { src: ZERO_MAC, dst: ZERO_MAC, type: ETH_TYPE_IPV4 }, ip: { src: spec.src ?? '0.0.0.0', dst: spec.dst, ttl: spec.ttl ?? 64, proto } };
    if (spec.l4) draft.l4 = spec.l4;
    if (spec.encap) draft.encap = spec.encap;
    if (spec.data !== undefined) draft.data = spec.data;
    if (res.kind === 'local') {
      draft.ip!.src = spec.src ?? spec.dst;
      if (this.host.engine.tracer.steps) this.host.step(ns, { pkt, dev: 'lo', kind: 'route', table: 'local', rule: ruleText(res.rule), action: `${spec.dst} is local: loopback`, before: draft });
      const f = this.hook(ns, 'OUTPUT', draft, undefined, 'lo', pkt);
      if (!f) return;
      const g = this.hook(ns, 'POSTROUTING', f, undefined, 'lo', pkt);
      if (!g) return;
      return this.host.xmit(ns.lo, g, pkt);
    }
    if (res.kind === 'error') {
      if (this.host.engine.tracer.steps) this.host.step(ns, { pkt, kind: 'route', action: `connect/sendto ${spec.dst}: network is unreachable (${res.error})`, before: draft });
      return this.host.drop(ns, undefined, draft, pkt, `no route to ${spec.dst}`);
    }
    const route = res.route;
    const outDev = route.dev!;
    if (spec.src === undefined) {
      const src = route.src ?? outDev.sourceFor(route.via ?? dst)?.ip;
      if (src === undefined) return this.host.drop(ns, outDev, draft, pkt, `no source address on ${outDev.name} for ${spec.dst}`);
      draft.ip!.src = intToIp(src);
    }
    if (this.host.engine.tracer.steps) {
      this.host.step(ns, { pkt, dev: outDev.name, kind: 'route', table: tableName(route.table), rule: `${ruleText(res.rule)} | ${routeText(route)}`, action: `send via ${outDev.name}${route.via !== undefined ? ` gw ${intToIp(route.via)}` : ''}`, before: draft });
    }
    let f = this.hook(ns, 'OUTPUT', draft, undefined, outDev.name, pkt);
    if (!f) return;
    let out = outDev;
    let nexthop = route.via ?? dst;
    if (f.ip!.dst !== draft.ip!.dst) {
      // OUTPUT DNAT changed the destination: route again (ip_route_me_harder).
      const again = ns.rib.lookup({ src: ipToInt(f.ip!.src), dst: ipToInt(f.ip!.dst), iif: 'lo' });
      if (again.kind === 'local') return this.host.xmit(ns.lo, f, pkt);
      if (again.kind !== 'route') return this.host.drop(ns, outDev, f, pkt, `no route to ${f.ip!.dst} after OUTPUT DNAT`);
      out = again.route.dev!;
      nexthop = again.route.via ?? ipToInt(f.ip!.dst);
    }
    this.postrouting(out, nexthop, f, pkt);
  }

  /** Sends a ready IPv4 frame on a device without routing or netfilter (a packet socket). */
  sendRaw(dev: Device, frame: Frame, pkt: number): void {
    const f = frame.eth.src === ZERO_MAC ? { ...frame, eth: { ...frame.eth, src: dev.mac } } : frame;
    this.host.xmit(dev, f, pkt);
  }

  private postrouting(out: Device, nexthop: number, frame: Frame, pkt: number, inName?: string): void {
    const ns = out.ns;
    const f = this.hook(ns, 'POSTROUTING', frame, inName, out.name, pkt, out);
    if (!f) return;
    this.neighOutput(out, nexthop, f, pkt);
  }

  /** Resolves the next hop's MAC (or queues the packet behind an ARP request) and sends. */
  neighOutput(dev: Device, nexthop: number, frame: Frame, pkt: number): void {
    const ns = dev.ns;
    if (dev.kind === 'loopback') return this.host.xmit(dev, frame, pkt);
    if (nexthop === LIMITED_BROADCAST || dev.addrs.some((a) => a.len < 31 && (nexthop | a.subnet.mask) >>> 0 === LIMITED_BROADCAST && ((nexthop & a.subnet.mask) >>> 0) === a.subnet.net)) {
      return this.host.xmit(dev, withEth(frame, dev.mac, BROADCAST_MAC), pkt);
    }
    let n = dev.neigh.get(nexthop);
    if (n && n.mac && (n.state === 'PERMANENT' || n.state === 'REACHABLE' || n.state === 'STALE')) {
      const g = withEth(frame, dev.mac, n.mac);
      if (this.host.engine.tracer.steps) this.host.step(ns, { pkt, dev: dev.name, kind: 'neigh', rule: neighText(n, dev.name), action: `next hop ${intToIp(nexthop)} is-at ${n.mac}`, before: frame, after: g });
      return this.host.xmit(dev, g, pkt);
    }
    const probe = !n || n.state === 'FAILED';
    if (!n) {
      n = { ip: nexthop, state: 'INCOMPLETE', updated: this.host.engine.now };
      dev.neigh.set(nexthop, n);
    } else if (n.state === 'FAILED') n.state = 'INCOMPLETE';
    const entry = n;
    const pending = (entry.pending ??= []);
    if (pending.length >= UNRES_QLEN) {
      const old = pending.shift()!;
      this.host.drop(ns, dev, old.frame, old.pkt, `unresolved queue for ${intToIp(nexthop)} full (unres_qlen ${UNRES_QLEN})`);
    }
    pending.push({ frame, pkt });
    if (this.host.engine.tracer.steps) this.host.step(ns, { pkt, dev: dev.name, kind: 'neigh', rule: neighText(entry, dev.name), action: `next hop ${intToIp(nexthop)} unresolved: packet queued${probe ? ', ARP request sent' : ''}`, before: frame });
    if (!probe) return;
    const src = frame.ip && ns.local.get(ipToInt(frame.ip.src)) === dev ? frame.ip.src : dev.sourceFor(nexthop) ? intToIp(dev.sourceFor(nexthop)!.ip) : '0.0.0.0';
    const req: Frame = {
      eth: { src: dev.mac, dst: BROADCAST_MAC, type: ETH_TYPE_ARP },
      arp: { op: 1, sha: dev.mac, spa: src, tha: ZERO_MAC, tpa: intToIp(nexthop) },
    };
    const rp = this.host.engine.tracer.newPacket(`ARP who-has ${intToIp(nexthop)} tell ${src}`, pkt);
    this.host.xmit(dev, req, rp);
    this.host.engine.watchUnresolved(() => {
      if (entry.state !== 'INCOMPLETE') return;
      entry.state = 'FAILED';
      for (const p of entry.pending?.splice(0) ?? []) this.host.drop(ns, dev, p.frame, p.pkt, `no ARP reply for ${intToIp(nexthop)} on ${dev.name}`);
    });
  }

  flushPending(dev: Device, n: Neighbour): void {
    for (const p of n.pending?.splice(0) ?? []) {
      const g = withEth(p.frame, dev.mac, n.mac!);
      if (this.host.engine.tracer.steps) this.host.step(dev.ns, { pkt: p.pkt, dev: dev.name, kind: 'neigh', rule: neighText(n, dev.name), action: `resolved ${intToIp(n.ip)} is-at ${n.mac}: queued packet sent`, before: p.frame, after: g });
      this.host.xmit(dev, g, p.pkt);
    }
  }

  // --- ICMP errors ---------------------------------------------------------------------

  /** icmp_send(): an error about `orig` back to its source, as the kernel builds it. */
  icmpError(ns: Namespace, orig: Frame, type: number, code: number, inDev: Device | undefined, pkt: number): void {
    const ip = orig.ip!;
    const why = `${type === 11 ? 'time exceeded' : 'destination unreachable'} (type ${type} code ${code})`;
    if (orig.l4?.kind === 'icmp' && orig.l4.type !== 8 && orig.l4.type !== 0) return this.host.drop(ns, inDev, orig, pkt, `${why}: no ICMP error about an ICMP error`);
    if (ip.src === '0.0.0.0' || isMulticastMac(orig.eth.dst)) return this.host.drop(ns, inDev, orig, pkt, `${why}: not sent for broadcast or unspecified source`);
    this.host.drop(ns, inDev, orig, pkt, why);
    const local = ns.local.has(ipToInt(ip.dst));
    const rp = this.host.engine.tracer.newPacket(`ICMP ${why} from ${ns.label}`, pkt);
    const quoted = { eth: orig.eth, ip: orig.ip, l4: orig.l4 } as Frame;
    if (this.host.engine.tracer.steps) this.host.step(ns, { pkt: rp, dev: inDev?.name, kind: 'icmp', action: `send ${why} to ${ip.src}`, before: orig });
    this.send(ns, { src: local ? ip.dst : undefined, dst: ip.src, l4: { kind: 'icmp', type, code, quoted } }, rp);
  }

  /** A REJECT target's answer: an ICMP error or a TCP reset. */
  private reject(ns: Namespace, orig: Frame, spec: string, inDev: Device | undefined, pkt: number): void {
    if (spec === 'tcp-reset' && orig.l4?.kind === 'tcp') {
      const rp = this.host.engine.tracer.newPacket(`TCP reset from REJECT in ${ns.label}`, pkt);
      this.send(ns, { src: orig.ip!.dst, dst: orig.ip!.src, l4: { kind: 'tcp', sport: orig.l4.dport, dport: orig.l4.sport, flags: { rst: true, ack: true } } }, rp);
      return;
    }
    this.icmpError(ns, orig, 3, REJECT_CODES[spec] ?? 3, inDev, pkt);
  }

  // --- netfilter -----------------------------------------------------------------------

  /**
   * Runs one netfilter hook. Returns the (possibly NATed) frame carrying the packet's
   * conntrack attachment and mark in `meta`, or undefined when the packet was dropped or
   * rejected. Namespaces without iptables state skip hooks entirely.
   */
  hook(ns: Namespace, name: HookName, frame: Frame, inName: string | undefined, outName: string | undefined, pkt: number, dev?: Device, physIn?: string, physOut?: string): Frame | undefined {
    const nf = ns.netfilter;
    if (!nf) return frame;
    const meta = frame.meta;
    // One object shape for every call (the hook runs several times per packet).
    const ctx: HookContext = {
      in: inName,
      out: outName,
      physIn,
      physOut,
      bridged: physIn !== undefined || physOut !== undefined,
      ownAddresses: ns.ownAddresses,
      primaryAddress: ns.primaryAddress,
      mark: meta?.mark ?? 0,
      ct: meta?.ct as HookContext['ct'],
    };
    const r = nf.hook(name, frame, ctx);
    const verdict = r.verdict;
    const changed = r.frame !== frame && !sameHeaders(frame, r.frame);
    if (this.host.engine.tracer.steps && (r.steps.length || verdict !== 'accept' || changed)) {
      this.host.step(ns, {
        pkt,
        dev: dev?.name ?? inName ?? outName,
        kind: 'netfilter',
        table: name,
        rule: decidingRule(r.steps),
        action: `${name}${ctx.bridged ? ' (bridged)' : ''}: ${verdict.toUpperCase()}${changed ? ` (${natSummary(frame, r.frame)})` : ''}`,
        before: frame,
        after: changed ? r.frame : undefined,
        detail: r.steps,
      });
    }
    if (verdict === 'accept') {
      // The skb state rides on the frame until it leaves through a device (see xmit).
      const out = r.frame;
      out.meta = { mark: r.mark, ct: r.ct };
      return out;
    }
    if (verdict === 'reject') {
      this.reject(ns, stripMeta(frame), r.reject?.with ?? 'icmp-port-unreachable', dev, pkt);
      return undefined;
    }
    this.host.drop(ns, dev, frame, pkt, `netfilter ${name}: ${verdict.toUpperCase()}${r.steps.length ? ` by '${decidingRule(r.steps)}'` : ''}`);
    return undefined;
  }
}

function sameHeaders(a: Frame, b: Frame): boolean {
  return (
    a.eth.src === b.eth.src &&
    a.eth.dst === b.eth.dst &&
    a.ip?.src === b.ip?.src &&
    a.ip?.dst === b.ip?.dst &&
    a.ip?.ttl === b.ip?.ttl &&
    (a.l4 === b.l4 || (a.l4?.kind !== 'icmp' && b.l4?.kind !== 'icmp' && a.l4?.sport === b.l4?.sport && a.l4?.dport === b.l4?.dport))
  );
}

export function stripMeta(f: Frame): Frame {
  if (!f.meta) return f;
  const g = { ...f };
  delete g.meta;
  return g;
}

export function primaryAddr(dev: Device): string | undefined {
  const a = dev.addrs[0];
  return a ? intToIp(a.ip) : undefined;
}

function withEth(f: Frame, src: string, dst: string): Frame {
  const g = clone(f);
  g.eth.src = src;
  g.eth.dst = dst;
  return g;
}

/** The rule that decided: the last one the walk through the chains matched. */
function decidingRule(steps: NfStep[]): string | undefined {
  return steps.length ? steps[steps.length - 1].rule : undefined;
}

function natSummary(a: Frame, b: Frame): string {
  const parts: string[] = [];
  if (a.ip && b.ip) {
    if (a.ip.src !== b.ip.src) parts.push(`src ${a.ip.src}->${b.ip.src}`);
    if (a.ip.dst !== b.ip.dst) parts.push(`dst ${a.ip.dst}->${b.ip.dst}`);
  }
  const pa = a.l4 && a.l4.kind !== 'icmp' ? a.l4 : undefined;
  const pb = b.l4 && b.l4.kind !== 'icmp' ? b.l4 : undefined;
  if (pa && pb) {
    if (pa.sport !== pb.sport) parts.push(`sport ${pa.sport}->${pb.sport}`);
    if (pa.dport !== pb.dport) parts.push(`dport ${pa.dport}->${pb.dport}`);
  }
  return parts.join(', ') || 'rewritten';
}
