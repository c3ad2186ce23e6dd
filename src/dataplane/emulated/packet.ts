// The packet as the emulated dataplane moves it: parsed headers, not bytes. Every model
// (OVS, Linux bridge, routing, netfilter) reads and rewrites these fields, and the trace
// records copies of them before and after each hop. Frames are treated as immutable
// values: a hop that changes a header returns a new Frame (use `clone`).

export type Mac = string; // lowercase, colon separated: 'fa:16:3e:00:00:01'
export type Ipv4 = string; // dotted quad: '192.168.1.11'

export const ETH_TYPE_IPV4 = 0x0800;
export const ETH_TYPE_ARP = 0x0806;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_GRE = 47;
export const VXLAN_PORT = 4789;
export const BROADCAST_MAC: Mac = 'ff:ff:ff:ff:ff:ff';
/** An ARP request's target hardware address, and a frame's MAC before the neighbour layer fills it. */
export const ZERO_MAC: Mac = '00:00:00:00:00:00';

export interface Arp {
  op: 1 | 2; // 1 request, 2 reply
  sha: Mac;
  spa: Ipv4;
  tha: Mac;
  tpa: Ipv4;
}

export interface Ipv4Header {
  src: Ipv4;
  dst: Ipv4;
  ttl: number;
  proto: number; // IPPROTO_*
}

export interface Icmp {
  kind: 'icmp';
  type: number; // 8 echo request, 0 echo reply, 3 unreachable, 11 time exceeded
  code: number;
  id?: number;
  seq?: number;
  /** For ICMP errors: the headers of the packet that caused it (what conntrack RELATED needs). */
  quoted?: Frame;
}

export interface Tcp {
  kind: 'tcp';
  sport: number;
  dport: number;
  flags: { syn?: boolean; ack?: boolean; fin?: boolean; rst?: boolean };
}

export interface Udp {
  kind: 'udp';
  sport: number;
  dport: number;
}

/** Tunnel encapsulation carried by an outer IPv4 packet (VXLAN over UDP 4789, or GRE). */
export type Encap = { kind: 'vxlan'; vni: number; inner: Frame } | { kind: 'gre'; key: number; inner: Frame };

export interface Frame {
  eth: { src: Mac; dst: Mac; type: number };
  /** 802.1Q VLAN id when the frame carries one tag. */
  vlan?: number;
  arp?: Arp;
  ip?: Ipv4Header;
  l4?: Icmp | Tcp | Udp;
  encap?: Encap;
  /** Application data (a DHCP message object, an HTTP request text...), opaque to the network. */
  data?: unknown;
  /**
   * Kernel metadata that travels with the packet inside one namespace but is never on the
   * wire (the skb mark set by iptables MARK and matched by `ip rule fwmark`/`-m mark`).
   * `ct` is the packet's conntrack attachment between the hooks of one namespace (opaque
   * here; the netfilter model defines it). Scrubbed when the frame leaves through a device.
   */
  meta?: { mark?: number; ct?: unknown };
}

/**
 * A copy of a frame's headers, to rewrite before handing the new frame on. Hand-written
 * rather than `structuredClone` because every hop of every packet may call it (the
 * benchmark's budget is a few microseconds per hop). `data` is an application payload that
 * the network never changes, so it is shared, not copied; an encapsulated inner frame and an
 * ICMP error's quoted frame are copied.
 */
export function clone(f: Frame): Frame {
  const c: Frame = { eth: { src: f.eth.src, dst: f.eth.dst, type: f.eth.type } };
  if (f.vlan !== undefined) c.vlan = f.vlan;
  if (f.arp) c.arp = { op: f.arp.op, sha: f.arp.sha, spa: f.arp.spa, tha: f.arp.tha, tpa: f.arp.tpa };
  if (f.ip) c.ip = { src: f.ip.src, dst: f.ip.dst, ttl: f.ip.ttl, proto: f.ip.proto };
  if (f.l4) c.l4 = cloneL4(f.l4);
  if (f.encap) {
    c.encap =
      f.encap.kind === 'vxlan'
        ? { kind: 'vxlan', vni: f.encap.vni, inner: clone(f.encap.inner) }
        : { kind: 'gre', key: f.encap.key, inner: clone(f.encap.inner) };
  }
  if (f.data !== undefined) c.data = f.data;
  if (f.meta) c.meta = { ...f.meta };
  return c;
}

function cloneL4(l4: Icmp | Tcp | Udp): Icmp | Tcp | Udp {
  switch (l4.kind) {
    case 'udp':
      return { kind: 'udp', sport: l4.sport, dport: l4.dport };
    case 'tcp':
      return { kind: 'tcp', sport: l4.sport, dport: l4.dport, flags: { ...l4.flags } };
    case 'icmp': {
      const c: Icmp = { kind: 'icmp', type: l4.type, code: l4.code };
      if (l4.id !== undefined) c.id = l4.id;
      if (l4.seq !== undefined) c.seq = l4.seq;
      if (l4.quoted) c.quoted = clone(l4.quoted);
      return c;
    }
  }
}

export function isBroadcastMac(mac: Mac): boolean {
  return mac === BROADCAST_MAC;
}

/** Group bit set (broadcast or multicast): such frames are flooded, never learned as a destination. */
export function isMulticastMac(mac: Mac): boolean {
  return (parseInt(mac.slice(0, 2), 16) & 1) === 1;
}
