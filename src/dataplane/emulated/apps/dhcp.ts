// DHCP as the emulated network carries it: messages are objects in `Frame.data` (not
// bytes), exchanged over UDP 67/68 exactly where the real ones go (broadcast DISCOVER and
// REQUEST from 0.0.0.0, replies from the server's interface address to the client's MAC).
//
// The server behaves like dnsmasq as Neutron runs it: static ranges only (a client whose
// MAC is not in the hosts list gets no answer), options per subnet tag, one lease time.
// The client is what an instance's dhclient does: DISCOVER, REQUEST the offer, then
// configure the address, the default route (option 3), classless static routes (121) and
// the MTU (26).

import { cidrText, intToIp, ipToInt, maskOf, parseCidr } from '../addr.js';
import { BROADCAST_MAC, ETH_TYPE_IPV4, IPPROTO_UDP, type Frame } from '../packet.js';
import type { Namespace, SocketMessage } from '../linux/namespace.js';
import type { DhcpServer } from '../../../host/state.js';

export type DhcpMessageType = 'DISCOVER' | 'OFFER' | 'REQUEST' | 'ACK' | 'NAK';

export interface DhcpMessage {
  dhcp: DhcpMessageType;
  xid: number;
  chaddr: string;
  /** Address offered/acknowledged. */
  yiaddr?: string;
  /** Requested address (option 50) and chosen server (option 54) in a REQUEST. */
  requested?: string;
  server?: string;
  /** Options by number, values as dnsmasq would put them (texts). */
  options?: Record<number, string[]>;
}

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

/** A running dnsmasq in a namespace, listening on one interface. */
export class DhcpServerApp {
  constructor(
    private ns: Namespace,
    public config: DhcpServer,
  ) {}

  start(): void {
    const existing = this.ns.udp.get(DHCP_SERVER_PORT);
    if (existing) throw new Error(`dnsmasq ${this.config.id}: udp:${DHCP_SERVER_PORT} is already bound in namespace '${this.ns.label}'`);
    this.ns.device(this.config.interface); // must exist
    this.ns.udp.set(DHCP_SERVER_PORT, this.onMessage);
  }

  stop(): void {
    if (this.ns.udp.get(DHCP_SERVER_PORT) === this.onMessage) this.ns.udp.delete(DHCP_SERVER_PORT);
  }

  private readonly onMessage = (m: SocketMessage): void => {
    if (m.dev.name !== this.config.interface) return; // --interface
    const msg = m.data as DhcpMessage | undefined;
    if (!msg || typeof msg !== 'object' || !('dhcp' in msg)) return;
    const host = this.config.hosts.find((h) => h.mac.toLowerCase() === msg.chaddr.toLowerCase());
    if (!host) return; // static ranges: unknown clients are ignored ("no address available")
    const range = this.config.ranges.find((r) => {
      const c = parseCidr(r.cidr);
      return ((ipToInt(host.ip) & c.mask) >>> 0) === c.net;
    });
    if (!range) return;
    const self = m.dev.sourceFor(ipToInt(host.ip));
    if (!self) return;
    let type: DhcpMessageType;
    if (msg.dhcp === 'DISCOVER') type = 'OFFER';
    else if (msg.dhcp === 'REQUEST') {
      if (msg.server && msg.server !== intToIp(self.ip)) return; // the client chose another server
      type = msg.requested && msg.requested !== host.ip ? 'NAK' : 'ACK';
    } else return;
    const c = parseCidr(range.cidr);
    const options: Record<number, string[]> = {
      1: [intToIp(maskOf(c.len))],
      51: [String(this.config.lease_time)],
      54: [intToIp(self.ip)],
      12: [host.hostname],
      15: [this.config.domain],
    };
    for (const o of this.config.options) if (!o.tag || o.tag === range.tag) options[o.option] = [...o.values];
    const reply: DhcpMessage = { dhcp: type, xid: msg.xid, chaddr: msg.chaddr, options };
    if (type !== 'NAK') reply.yiaddr = host.ip;
    // dnsmasq answers an unconfigured client through a packet socket: to its MAC, from 67 to 68.
    const f: Frame = {
      eth: { src: m.dev.mac, dst: msg.chaddr, type: ETH_TYPE_IPV4 },
      ip: { src: intToIp(self.ip), dst: type === 'NAK' ? '255.255.255.255' : host.ip, ttl: 64, proto: IPPROTO_UDP },
      l4: { kind: 'udp', sport: DHCP_SERVER_PORT, dport: DHCP_CLIENT_PORT },
      data: reply,
    };
    const host_ = this.ns.host;
    const pkt = host_.engine.tracer.newPacket(`dnsmasq ${this.config.id} ${type} ${host.ip} to ${msg.chaddr}`, m.pkt);
    if (host_.engine.tracer.steps) host_.step(this.ns, { pkt, dev: m.dev.name, kind: 'app', rule: `dhcp-host=${host.mac},${host.hostname}.${this.config.domain},${host.ip} (${range.tag})`, action: `dnsmasq ${this.config.id}: DHCP${type} ${host.ip} to ${msg.chaddr}`, before: m.frame, after: f });
    host_.stack.sendRaw(m.dev, f, pkt);
  };
}

export interface DhcpLease {
  ip: string;
  cidr: string;
  router?: string;
  mtu?: number;
  routes: Array<{ dst: string; via: string }>;
  server: string;
}

/**
 * An instance's DHCP client on `dev`: sends DISCOVER and configures what the ACK says. The
 * exchange runs when the world runs; `onLease` fires with the lease.
 */
export function startDhcpClient(ns: Namespace, devName: string, onLease: (l: DhcpLease) => void, pkt: number): void {
  const dev = ns.device(devName);
  const xid = (Math.abs(hash(`${ns.host.name}/${ns.name}/${dev.mac}`)) % 0x7fffffff) + 1;
  const send = (msg: DhcpMessage, p: number) => {
    const f: Frame = {
      eth: { src: dev.mac, dst: BROADCAST_MAC, type: ETH_TYPE_IPV4 },
      ip: { src: '0.0.0.0', dst: '255.255.255.255', ttl: 64, proto: IPPROTO_UDP },
      l4: { kind: 'udp', sport: DHCP_CLIENT_PORT, dport: DHCP_SERVER_PORT },
      data: msg,
    };
    ns.host.stack.sendRaw(dev, f, p);
  };
  ns.packetUdp.set(DHCP_CLIENT_PORT, (m) => {
    const msg = m.data as DhcpMessage;
    if (!msg || msg.xid !== xid) return;
    if (msg.dhcp === 'OFFER') {
      const p = ns.host.engine.tracer.newPacket(`DHCPREQUEST ${msg.yiaddr} from ${dev.mac}`, m.pkt);
      send({ dhcp: 'REQUEST', xid, chaddr: dev.mac, requested: msg.yiaddr, server: msg.options?.[54]?.[0] }, p);
    } else if (msg.dhcp === 'ACK' && msg.yiaddr) {
      ns.packetUdp.delete(DHCP_CLIENT_PORT);
      onLease(configure(ns, devName, msg));
    } else if (msg.dhcp === 'NAK') ns.packetUdp.delete(DHCP_CLIENT_PORT);
  });
  send({ dhcp: 'DISCOVER', xid, chaddr: dev.mac }, pkt);
}

function configure(ns: Namespace, devName: string, ack: DhcpMessage): DhcpLease {
  const o = ack.options ?? {};
  const mask = o[1]?.[0] ?? '255.255.255.255';
  let len = 0;
  for (let m = ipToInt(mask); m & 0x80000000; m = (m << 1) >>> 0) len++;
  const cidr = `${ack.yiaddr}/${len}`;
  const dev = ns.device(devName);
  if (!dev.addrs.some((a) => a.text === cidr)) ns.addAddr(devName, cidr);
  const lease: DhcpLease = { ip: ack.yiaddr!, cidr, routes: [], server: o[54]?.[0] ?? '' };
  if (o[26]?.[0]) {
    lease.mtu = Number(o[26][0]);
    dev.mtu = lease.mtu;
  }
  // Option 121 (RFC 3442) takes precedence over option 3 when present.
  const classless = o[121];
  if (classless?.length) {
    for (let i = 0; i + 1 < classless.length; i += 2) {
      const dst = classless[i] === '0.0.0.0/0' ? 'default' : cidrText(parseCidr(classless[i]));
      lease.routes.push({ dst, via: classless[i + 1] });
    }
  } else if (o[3]?.[0]) lease.routes.push({ dst: 'default', via: o[3][0] });
  for (const r of lease.routes) {
    if (r.dst === 'default') lease.router = r.via;
    // A renewed lease replaces what an earlier one installed, as dhclient does.
    if (r.via === '0.0.0.0') ns.replaceRoute({ dst: r.dst, dev: devName });
    else ns.replaceRoute({ dst: r.dst, via: r.via, dev: devName });
  }
  return lease;
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}
