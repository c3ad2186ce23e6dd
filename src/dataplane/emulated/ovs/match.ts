// A flow's match as OVS's classifier holds it: a sparse list of (key word, mask, value),
// sorted by word. Its "shape" (the words and masks, without values) decides which subtable
// of the tuple-space classifier the flow lives in.

import { ETH_TYPE_ARP, ETH_TYPE_IPV4, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../packet.js';
import {
  ETH_TYPE_IPV6,
  ETH_TYPE_RARP,
  FIELDS,
  IPPROTO_ICMPV6,
  N_WORDS,
  VLAN_CFI,
  W,
  fieldToWords,
  type FieldDef,
} from './fields.js';
import { formatMacBig, hex, ipTextOf } from './values.js';

// Shapes are few (tens per bridge) and shared by all bridges: interning them keeps 100,000
// flows from carrying 100,000 copies of the same arrays and key string.
const SHAPES = new Map<string, { idx: number[]; mask: number[]; key: string }>();

export class Match {
  /** Word indices with a non-zero mask, ascending. */
  readonly idx: number[];
  readonly mask: number[];
  readonly val: number[];
  /** Identifies the shape: equal strings <=> same subtable. */
  readonly shapeKey: string;

  constructor(idx: number[], mask: number[], val: number[], shapeKey?: string) {
    this.idx = idx;
    this.mask = mask;
    this.val = val;
    this.shapeKey = shapeKey ?? Match.shapeKeyOf(idx, mask);
  }

  static shapeKeyOf(idx: number[], mask: number[]): string {
    return idx.map((i, k) => `${i}:${mask[k]}`).join(',');
  }

  /** From dense per-word masks and values. Flows of one shape share its idx/mask arrays. */
  static fromWords(masks: Int32Array, values: Int32Array): Match {
    let idx: number[] = [];
    let mask: number[] = [];
    const val: number[] = [];
    for (let i = 0; i < N_WORDS; i++) {
      if (masks[i] !== 0) {
        idx.push(i);
        mask.push(masks[i]);
        val.push(values[i] & masks[i]);
      }
    }
    const key = Match.shapeKeyOf(idx, mask);
    let shape = SHAPES.get(key);
    if (!shape) {
      shape = { idx, mask, key };
      SHAPES.set(key, shape);
    }
    idx = shape.idx;
    mask = shape.mask;
    return new Match(idx, mask, val, shape.key);
  }

  /** Mask and value of one word (0/0 when the word is wildcarded). */
  word(i: number): [number, number] {
    const k = this.idx.indexOf(i);
    return k < 0 ? [0, 0] : [this.mask[k], this.val[k]];
  }

  matches(w: Int32Array): boolean {
    const { idx, mask, val } = this;
    for (let k = 0; k < idx.length; k++) if ((w[idx[k]] & mask[k]) !== val[k]) return false;
    return true;
  }

  sameAs(o: Match): boolean {
    if (o.shapeKey !== this.shapeKey) return false;
    for (let k = 0; k < this.val.length; k++) if (this.val[k] !== o.val[k]) return false;
    return true;
  }

  /** True when every packet this match accepts is also accepted by `wider` (del-flows non-strict). */
  isWithin(wider: Match): boolean {
    for (let k = 0; k < wider.idx.length; k++) {
      const [m, v] = this.word(wider.idx[k]);
      const wm = wider.mask[k];
      if ((m & wm) !== wm || (v & wm) !== wider.val[k]) return false;
    }
    return true;
  }

  /** ovs-ofctl style text, e.g. `arp,dl_vlan=5,arp_tpa=10.0.0.3` (what dump-flows prints). */
  toString(): string {
    return formatMatch(this);
  }
}

/** Accumulates field constraints, refusing two that contradict each other. */
export class MatchBuilder {
  readonly masks = new Int32Array(N_WORDS);
  readonly values = new Int32Array(N_WORDS);
  private static instance?: MatchBuilder;

  /** A cleared builder reused across flows (parsing is synchronous and not re-entered). */
  static shared(): MatchBuilder {
    const b = (MatchBuilder.instance ??= new MatchBuilder());
    b.masks.fill(0);
    b.values.fill(0);
    return b;
  }

  /** Adds constraint; returns false when it contradicts one already present. */
  addWords(triples: Array<[number, number, number]>): boolean {
    for (const [i, m, v] of triples) {
      const common = this.masks[i] & m;
      if ((this.values[i] & common) !== (v & common)) return false;
    }
    for (const [i, m, v] of triples) {
      this.values[i] = (this.values[i] & ~m) | (v & m);
      this.masks[i] |= m;
    }
    return true;
  }

  addField(fd: FieldDef, value: bigint, mask: bigint): boolean {
    return this.addWords(fieldToWords(fd, value, mask));
  }

  /** The value of the bits `bits` of word `i` when all of them are matched exactly. */
  exact(i: number, bits: number): number | undefined {
    return (this.masks[i] & bits) === bits ? this.values[i] & bits : undefined;
  }

  build(): Match {
    // nw_proto (8 bits) and arp_op (16 bits) share a word whose upper byte is always zero in
    // a packet key: one canonical mask keeps `arp,nw_proto=1` and `arp,arp_op=1` (or `tcp` and
    // `ip,nw_proto=6`) the same flow, as they are in OVS.
    if ((this.masks[W.NW_PROTO] & 0xff) === 0xff) this.masks[W.NW_PROTO] = 0xffff;
    return Match.fromWords(this.masks, this.values);
  }
}

// ---- formatting (dump-flows text, learned flows) ----

function fieldMaskValue(m: Match, fd: FieldDef): { mask: bigint; value: bigint } {
  let mask = 0n;
  let value = 0n;
  for (const wi of fd.words) {
    const [wm, wv] = m.word(wi);
    mask = (mask << 32n) | BigInt(wm >>> 0);
    value = (value << 32n) | BigInt(wv >>> 0);
  }
  if (fd.words.length === 1) {
    const ones = (1n << BigInt(fd.bits)) - 1n;
    mask = (mask >> BigInt(fd.offset)) & ones;
    value = (value >> BigInt(fd.offset)) & ones;
  }
  return { mask, value };
}

function formatValue(fd: FieldDef, value: bigint, mask: bigint): string {
  const full = (1n << BigInt(fd.bits)) - 1n;
  const exact = mask === full;
  switch (fd.format) {
    case 'mac':
      return exact ? formatMacBig(value) : `${formatMacBig(value)}/${formatMacBig(mask)}`;
    case 'ipv4': {
      const text = ipTextOf(Number(value) | 0);
      if (exact) return text;
      const inv = ~Number(mask) >>> 0;
      const isPrefix = (inv & (inv + 1)) === 0;
      if (isPrefix) return `${text}/${32 - Math.log2(inv + 1)}`;
      return `${text}/${ipTextOf(Number(mask) | 0)}`;
    }
    case 'port':
      return portName(Number(value));
    case 'dec':
      return exact ? value.toString() : `${hex(value)}/${hex(mask)}`;
    case 'hex':
      return exact ? hex(value) : `${hex(value)}/${hex(mask)}`;
  }
}

export function portName(n: number): string {
  return SPECIAL_PORT_NAMES.get(n) ?? String(n);
}

export const OFPP = {
  MAX: 0xff00,
  IN_PORT: 0xfff8,
  TABLE: 0xfff9,
  NORMAL: 0xfffa,
  FLOOD: 0xfffb,
  ALL: 0xfffc,
  CONTROLLER: 0xfffd,
  LOCAL: 0xfffe,
  NONE: 0xffff,
} as const;

const SPECIAL_PORT_NAMES = new Map<number, string>([
  [OFPP.IN_PORT, 'IN_PORT'],
  [OFPP.NORMAL, 'NORMAL'],
  [OFPP.FLOOD, 'FLOOD'],
  [OFPP.ALL, 'ALL'],
  [OFPP.LOCAL, 'LOCAL'],
  [OFPP.NONE, 'NONE'],
]);

const fd = (n: string) => FIELDS.find((x) => x.name === n)!;
const ORDER = {
  ip: ['nw_src', 'nw_dst', 'nw_proto', 'nw_ttl', 'tp_src', 'tp_dst'],
  arp: ['arp_spa', 'arp_tpa', 'arp_op', 'arp_sha', 'arp_tha'],
};

/** Prints a match the way ovs-ofctl does (shorthands for dl_type/nw_proto, names by protocol). */
export function formatMatch(m: Match): string {
  const parts: string[] = [];
  const [etm, etv] = m.word(W.ETH_TYPE);
  const [npm, npv] = m.word(W.NW_PROTO);
  const ethType = etm ? etv : undefined;
  const proto = npm ? npv : undefined;
  for (const reg of FIELDS.filter((x) => /^reg\d$/.test(x.name))) {
    const { mask, value } = fieldMaskValue(m, reg);
    if (mask) parts.push(`${reg.name}=${formatValue(reg, value, mask)}`);
  }
  for (const name of ['tun_id', 'metadata', 'in_port']) {
    const f = fd(name);
    const { mask, value } = fieldMaskValue(m, f);
    if (mask) parts.push(`${name}=${formatValue(f, value, mask)}`);
  }
  const [vm, vv] = m.word(W.VLAN_TCI);
  if (vm) {
    if (vm === 0x1fff && vv & VLAN_CFI) parts.push(`dl_vlan=${vv & 0xfff}`);
    else if ((vm & 0xffff) === 0xffff && vv & VLAN_CFI) parts.push(`dl_vlan=${vv & 0xfff}`, `dl_vlan_pcp=${(vv >> 13) & 7}`);
    else if ((vm & 0xffff) === 0xffff && vv === 0) parts.push('vlan_tci=0x0000');
    else parts.push(`vlan_tci=0x${(vv & 0xffff).toString(16).padStart(4, '0')}/0x${(vm & 0xffff).toString(16).padStart(4, '0')}`);
  }
  for (const name of ['dl_src', 'dl_dst']) {
    const f = fd(name);
    const { mask, value } = fieldMaskValue(m, f);
    if (mask) parts.push(`${name}=${formatValue(f, value, mask)}`);
  }
  let l3: string[] = [];
  let shorthand: string | undefined;
  if (ethType === ETH_TYPE_IPV4) {
    shorthand = proto === IPPROTO_ICMP ? 'icmp' : proto === IPPROTO_TCP ? 'tcp' : proto === IPPROTO_UDP ? 'udp' : 'ip';
    l3 = ORDER.ip.filter((n) => !(shorthand !== 'ip' && n === 'nw_proto'));
    if (shorthand === 'icmp') l3 = l3.map((n) => (n === 'tp_src' ? 'icmp_type' : n === 'tp_dst' ? 'icmp_code' : n));
  } else if (ethType === ETH_TYPE_ARP || ethType === ETH_TYPE_RARP) {
    shorthand = ethType === ETH_TYPE_ARP ? 'arp' : 'rarp';
    l3 = ORDER.arp;
  } else if (ethType === ETH_TYPE_IPV6) {
    shorthand = proto === IPPROTO_ICMPV6 ? 'icmp6' : 'ipv6';
    l3 = shorthand === 'icmp6' ? ['icmpv6_type', 'icmpv6_code'] : ['nw_proto'];
  } else if (ethType !== undefined) parts.push(`dl_type=0x${ethType.toString(16).padStart(4, '0')}`);
  if (shorthand) parts.unshift(shorthand);
  for (const name of l3) {
    const f = fd(name);
    const { mask, value } = fieldMaskValue(m, f);
    if (mask) parts.push(`${name === 'icmpv6_type' ? 'icmp_type' : name === 'icmpv6_code' ? 'icmp_code' : name}=${formatValue(f, value, mask)}`);
  }
  return parts.join(',');
}
