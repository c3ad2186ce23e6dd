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
}

export function clone(f: Frame): Frame {
  return structuredClone(f);
}
