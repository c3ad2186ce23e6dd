// The packet as OVS's classifier sees it (its `struct flow`): a fixed array of 32-bit words,
// one or two per header field, plus the match fields of `ovs-fields(7)` described as views
// onto those words. Keeping the lookup key numeric lets a table hash a masked key without
// building strings per packet; 48- and 64-bit fields (MACs, tun_id, metadata) take two
// words, high word first.

import { ETH_TYPE_ARP, ETH_TYPE_IPV4, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../packet.js';

export const ETH_TYPE_IPV6 = 0x86dd;
export const ETH_TYPE_RARP = 0x8035;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_SCTP = 132;

/** Word indices of the flow key. */
export const W = {
  IN_PORT: 0,
  ETH_SRC_HI: 1,
  ETH_SRC_LO: 2,
  ETH_DST_HI: 3,
  ETH_DST_LO: 4,
  ETH_TYPE: 5,
  VLAN_TCI: 6,
  NW_SRC: 7, // IPv4 source or ARP SPA (OVS stores both in nw_src)
  NW_DST: 8, // IPv4 destination or ARP TPA
  NW_PROTO: 9, // IP protocol or ARP opcode
  NW_TTL: 10,
  TP_SRC: 11, // TCP/UDP source port, ICMP type
  TP_DST: 12, // TCP/UDP destination port, ICMP code
  ARP_SHA_HI: 13,
  ARP_SHA_LO: 14,
  ARP_THA_HI: 15,
  ARP_THA_LO: 16,
  TUN_ID_HI: 17,
  TUN_ID_LO: 18,
  METADATA_HI: 19,
  METADATA_LO: 20,
  REG0: 21,
} as const;
export const N_WORDS = W.REG0 + 8;

export const VLAN_CFI = 0x1000;
export const VLAN_VID_MASK = 0x0fff;

/** What a field needs the packet to be before it can be matched or written (OVS prerequisites). */
export type Prereq = 'none' | 'ip' | 'arp' | 'ip_or_arp' | 'tcp' | 'udp' | 'icmp' | 'icmp_any' | 'icmpv6' | 'l4';

export type FieldFormat = 'mac' | 'ipv4' | 'dec' | 'hex' | 'port';

export interface FieldDef {
  /** Canonical name as `ovs-ofctl dump-flows` prints it in matches. */
  name: string;
  /** Every accepted spelling: ovs-ofctl names, NXM/OXM names. */
  names: string[];
  /** NXM/OXM name used when we print `load:`/`move:` actions. */
  nxm: string;
  bits: number;
  /** Word indices, most significant first (two words only for fields wider than 32 bits). */
  words: number[];
  /** Bit offset inside the (single) word. */
  offset: number;
  format: FieldFormat;
  prereq: Prereq;
  maskable: boolean;
  writable: boolean;
}

function f(
  name: string,
  names: string[],
  nxm: string,
  bits: number,
  words: number[],
  format: FieldFormat,
  prereq: Prereq,
  opts: { offset?: number; maskable?: boolean; writable?: boolean } = {},
): FieldDef {
  return {
    name,
    names: [name, ...names],
    nxm,
    bits,
    words,
    offset: opts.offset ?? 0,
    format,
    prereq,
    maskable: opts.maskable ?? true,
    writable: opts.writable ?? true,
  };
}

export const FIELDS: FieldDef[] = [
  f('in_port', ['NXM_OF_IN_PORT'], 'NXM_OF_IN_PORT', 16, [W.IN_PORT], 'port', 'none', { maskable: false }),
  f('dl_src', ['eth_src', 'NXM_OF_ETH_SRC', 'OXM_OF_ETH_SRC'], 'NXM_OF_ETH_SRC', 48, [W.ETH_SRC_HI, W.ETH_SRC_LO], 'mac', 'none'),
  f('dl_dst', ['eth_dst', 'NXM_OF_ETH_DST', 'OXM_OF_ETH_DST'], 'NXM_OF_ETH_DST', 48, [W.ETH_DST_HI, W.ETH_DST_LO], 'mac', 'none'),
  f('dl_type', ['eth_type', 'NXM_OF_ETH_TYPE', 'OXM_OF_ETH_TYPE'], 'NXM_OF_ETH_TYPE', 16, [W.ETH_TYPE], 'hex', 'none', {
    maskable: false,
    writable: false,
  }),
  f('vlan_tci', ['NXM_OF_VLAN_TCI'], 'NXM_OF_VLAN_TCI', 16, [W.VLAN_TCI], 'hex', 'none'),
  // OXM vlan_vid. As a match (parse.ts) its value carries the "present" bit 0x1000; written
  // by set_field/load/move it is the 12-bit VID of a packet that must already be tagged.
  f('vlan_vid', ['OXM_OF_VLAN_VID'], 'OXM_OF_VLAN_VID', 12, [W.VLAN_TCI], 'hex', 'none'),
  f('nw_src', ['ip_src', 'NXM_OF_IP_SRC', 'OXM_OF_IPV4_SRC', 'ipv4_src'], 'NXM_OF_IP_SRC', 32, [W.NW_SRC], 'ipv4', 'ip'),
  f('nw_dst', ['ip_dst', 'NXM_OF_IP_DST', 'OXM_OF_IPV4_DST', 'ipv4_dst'], 'NXM_OF_IP_DST', 32, [W.NW_DST], 'ipv4', 'ip'),
  f('nw_proto', ['ip_proto', 'NXM_OF_IP_PROTO', 'OXM_OF_IP_PROTO'], 'NXM_OF_IP_PROTO', 8, [W.NW_PROTO], 'dec', 'ip', {
    maskable: false,
    writable: false,
  }),
  f('nw_ttl', ['NXM_NX_IP_TTL'], 'NXM_NX_IP_TTL', 8, [W.NW_TTL], 'dec', 'ip', { maskable: false }),
  f('arp_op', ['NXM_OF_ARP_OP', 'OXM_OF_ARP_OP'], 'NXM_OF_ARP_OP', 16, [W.NW_PROTO], 'dec', 'arp', { maskable: false }),
  f('arp_spa', ['NXM_OF_ARP_SPA', 'OXM_OF_ARP_SPA'], 'NXM_OF_ARP_SPA', 32, [W.NW_SRC], 'ipv4', 'arp'),
  f('arp_tpa', ['NXM_OF_ARP_TPA', 'OXM_OF_ARP_TPA'], 'NXM_OF_ARP_TPA', 32, [W.NW_DST], 'ipv4', 'arp'),
  f('arp_sha', ['NXM_NX_ARP_SHA', 'OXM_OF_ARP_SHA'], 'NXM_NX_ARP_SHA', 48, [W.ARP_SHA_HI, W.ARP_SHA_LO], 'mac', 'arp'),
  f('arp_tha', ['NXM_NX_ARP_THA', 'OXM_OF_ARP_THA'], 'NXM_NX_ARP_THA', 48, [W.ARP_THA_HI, W.ARP_THA_LO], 'mac', 'arp'),
  f('tp_src', [], 'NXM_OF_TCP_SRC', 16, [W.TP_SRC], 'dec', 'l4'),
  f('tp_dst', [], 'NXM_OF_TCP_DST', 16, [W.TP_DST], 'dec', 'l4'),
  f('tcp_src', ['NXM_OF_TCP_SRC', 'OXM_OF_TCP_SRC'], 'NXM_OF_TCP_SRC', 16, [W.TP_SRC], 'dec', 'tcp'),
  f('tcp_dst', ['NXM_OF_TCP_DST', 'OXM_OF_TCP_DST'], 'NXM_OF_TCP_DST', 16, [W.TP_DST], 'dec', 'tcp'),
  f('udp_src', ['NXM_OF_UDP_SRC', 'OXM_OF_UDP_SRC'], 'NXM_OF_UDP_SRC', 16, [W.TP_SRC], 'dec', 'udp'),
  f('udp_dst', ['NXM_OF_UDP_DST', 'OXM_OF_UDP_DST'], 'NXM_OF_UDP_DST', 16, [W.TP_DST], 'dec', 'udp'),
  // ovs-ofctl also reads icmp_type/icmp_code as the ICMPv6 fields in an icmp6 flow.
  f('icmp_type', ['NXM_OF_ICMP_TYPE', 'OXM_OF_ICMPV4_TYPE'], 'NXM_OF_ICMP_TYPE', 8, [W.TP_SRC], 'dec', 'icmp_any', { maskable: false }),
  f('icmp_code', ['NXM_OF_ICMP_CODE', 'OXM_OF_ICMPV4_CODE'], 'NXM_OF_ICMP_CODE', 8, [W.TP_DST], 'dec', 'icmp_any', { maskable: false }),
  f('icmpv6_type', ['NXM_NX_ICMPV6_TYPE', 'OXM_OF_ICMPV6_TYPE'], 'NXM_NX_ICMPV6_TYPE', 8, [W.TP_SRC], 'dec', 'icmpv6', {
    maskable: false,
  }),
  f('icmpv6_code', ['NXM_NX_ICMPV6_CODE', 'OXM_OF_ICMPV6_CODE'], 'NXM_NX_ICMPV6_CODE', 8, [W.TP_DST], 'dec', 'icmpv6', {
    maskable: false,
  }),
  f('tun_id', ['tunnel_id', 'NXM_NX_TUN_ID', 'OXM_OF_TUNNEL_ID'], 'NXM_NX_TUN_ID', 64, [W.TUN_ID_HI, W.TUN_ID_LO], 'hex', 'none'),
  f('metadata', ['OXM_OF_METADATA'], 'OXM_OF_METADATA', 64, [W.METADATA_HI, W.METADATA_LO], 'hex', 'none'),
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => f(`reg${i}`, [`NXM_NX_REG${i}`], `NXM_NX_REG${i}`, 32, [W.REG0 + i], 'hex', 'none')),
];

const byName = new Map<string, FieldDef>();
for (const fd of FIELDS) for (const n of fd.names) byName.set(n.toLowerCase(), fd);

/** A field by any of its names (case-insensitive, as OVS accepts). */
export function fieldByName(name: string): FieldDef | undefined {
  return byName.get(name.toLowerCase());
}

export const FIELD = {
  inPort: fieldByName('in_port')!,
  ethSrc: fieldByName('dl_src')!,
  ethDst: fieldByName('dl_dst')!,
  ethType: fieldByName('dl_type')!,
  vlanTci: fieldByName('vlan_tci')!,
  vlanVid: fieldByName('vlan_vid')!,
  nwSrc: fieldByName('nw_src')!,
  nwDst: fieldByName('nw_dst')!,
  nwTtl: fieldByName('nw_ttl')!,
  arpOp: fieldByName('arp_op')!,
  arpSpa: fieldByName('arp_spa')!,
  arpTpa: fieldByName('arp_tpa')!,
  arpSha: fieldByName('arp_sha')!,
  arpTha: fieldByName('arp_tha')!,
  tunId: fieldByName('tun_id')!,
  metadata: fieldByName('metadata')!,
};

/** All-ones of `bits` (bits <= 64) as a bigint. */
export function onesBig(bits: number): bigint {
  return (1n << BigInt(bits)) - 1n;
}

/** Reads a whole field from a key as a bigint (slow path: parsing, learn, bit-range moves). */
export function readField(w: Int32Array, fd: FieldDef): bigint {
  if (fd.words.length === 2) return (BigInt(w[fd.words[0]] >>> 0) << 32n) | BigInt(w[fd.words[1]] >>> 0);
  return BigInt(w[fd.words[0]] >>> fd.offset) & onesBig(fd.bits);
}

/** Writes `value` into the bits of `fd` selected by `mask` (both field-relative bigints). */
export function writeField(w: Int32Array, fd: FieldDef, value: bigint, mask: bigint = onesBig(fd.bits)): void {
  if (fd.words.length === 2) {
    const hiMask = Number((mask >> 32n) & 0xffffffffn);
    const loMask = Number(mask & 0xffffffffn);
    const hiVal = Number((value >> 32n) & 0xffffffffn);
    const loVal = Number(value & 0xffffffffn);
    w[fd.words[0]] = (w[fd.words[0]] & ~hiMask) | (hiVal & hiMask);
    w[fd.words[1]] = (w[fd.words[1]] & ~loMask) | (loVal & loMask);
    return;
  }
  const m = Number(mask & onesBig(fd.bits)) * 2 ** fd.offset;
  const v = Number(value & onesBig(fd.bits)) * 2 ** fd.offset;
  const i = fd.words[0];
  w[i] = (w[i] & ~(m | 0)) | (v & m);
}

/** The (word, mask, value) triples a masked field match contributes to a flow's match. */
export function fieldToWords(fd: FieldDef, value: bigint, mask: bigint): Array<[number, number, number]> {
  if (fd.words.length === 2) {
    const hiMask = Number((mask >> 32n) & 0xffffffffn) | 0;
    const loMask = Number(mask & 0xffffffffn) | 0;
    return [
      [fd.words[0], hiMask, Number((value >> 32n) & 0xffffffffn) & hiMask],
      [fd.words[1], loMask, Number(value & 0xffffffffn) & loMask],
    ];
  }
  const m = (Number(mask & onesBig(fd.bits)) * 2 ** fd.offset) | 0;
  const v = (Number(value & onesBig(fd.bits)) * 2 ** fd.offset) & m;
  return [[fd.words[0], m, v]];
}

export { ETH_TYPE_ARP, ETH_TYPE_IPV4, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP };
