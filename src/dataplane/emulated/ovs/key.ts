// Frame <-> flow key. The key is the packet as the pipeline works on it (actions rewrite key
// words); a Frame is rebuilt from it when the packet is output or a trace step is recorded.
// Parts of the Frame the flow key does not model (payload, ICMP id/seq, TCP flags, tunnel
// encapsulation of an already-encapsulated packet) are carried over from the input frame.

import * as packet from '../packet.js';
import type { Frame, Icmp, Tcp, Udp } from '../packet.js';
import * as fields from './fields.js';
import * as values from './values.js';

// Module-local copies: under a CommonJS-style transform (tsx) every use of an imported binding
// goes through a getter, which is measurable on this per-packet path.
const { ETH_TYPE_ARP, ETH_TYPE_IPV4 } = packet;
const { N_WORDS, VLAN_CFI, VLAN_VID_MASK } = fields;
const W = { ...fields.W };
const { ipNum, ipTextOf, macHi, macLo, macNum, macText } = values;

/** Fills `into` (zeroed first) or a new key with the packet's fields. */
export function frameToKey(frame: Frame, inPort: number, tunId: bigint | number | undefined, into?: Int32Array): Int32Array {
  const w = into ?? new Int32Array(N_WORDS);
  if (into) w.fill(0);
  w[W.IN_PORT] = inPort;
  let n = macNum(frame.eth.src);
  w[W.ETH_SRC_HI] = macHi(n);
  w[W.ETH_SRC_LO] = macLo(n);
  n = macNum(frame.eth.dst);
  w[W.ETH_DST_HI] = macHi(n);
  w[W.ETH_DST_LO] = macLo(n);
  w[W.ETH_TYPE] = frame.eth.type;
  if (frame.vlan !== undefined) w[W.VLAN_TCI] = VLAN_CFI | (frame.vlan & VLAN_VID_MASK);
  if (frame.arp && frame.eth.type === ETH_TYPE_ARP) {
    const a = frame.arp;
    w[W.NW_PROTO] = a.op;
    w[W.NW_SRC] = ipNum(a.spa);
    w[W.NW_DST] = ipNum(a.tpa);
    n = macNum(a.sha);
    w[W.ARP_SHA_HI] = macHi(n);
    w[W.ARP_SHA_LO] = macLo(n);
    n = macNum(a.tha);
    w[W.ARP_THA_HI] = macHi(n);
    w[W.ARP_THA_LO] = macLo(n);
  } else if (frame.ip && frame.eth.type === ETH_TYPE_IPV4) {
    const ip = frame.ip;
    w[W.NW_SRC] = ipNum(ip.src);
    w[W.NW_DST] = ipNum(ip.dst);
    w[W.NW_PROTO] = ip.proto;
    w[W.NW_TTL] = ip.ttl;
    const l4 = frame.l4;
    if (l4) {
      if (l4.kind === 'icmp') {
        w[W.TP_SRC] = l4.type;
        w[W.TP_DST] = l4.code;
      } else {
        w[W.TP_SRC] = l4.sport;
        w[W.TP_DST] = l4.dport;
      }
    }
  }
  if (typeof tunId === 'number') {
    w[W.TUN_ID_HI] = Math.floor(tunId / 2 ** 32) | 0;
    w[W.TUN_ID_LO] = tunId % 2 ** 32 | 0;
  } else if (tunId !== undefined) {
    const t = tunId;
    w[W.TUN_ID_HI] = Number((t >> 32n) & 0xffffffffn) | 0;
    w[W.TUN_ID_LO] = Number(t & 0xffffffffn) | 0;
  }
  return w;
}

/** Rebuilds a Frame from key words, taking what the key does not model from `base`. */
export function keyToFrame(w: Int32Array, base: Frame): Frame {
  const type = w[W.ETH_TYPE];
  const out: Frame = {
    eth: { src: macText(w[W.ETH_SRC_HI], w[W.ETH_SRC_LO]), dst: macText(w[W.ETH_DST_HI], w[W.ETH_DST_LO]), type },
  };
  const tci = w[W.VLAN_TCI];
  if (tci & VLAN_CFI) out.vlan = tci & VLAN_VID_MASK;
  if (type === ETH_TYPE_ARP && base.arp) {
    out.arp = {
      op: (w[W.NW_PROTO] & 0xffff) as 1 | 2,
      sha: macText(w[W.ARP_SHA_HI], w[W.ARP_SHA_LO]),
      spa: ipTextOf(w[W.NW_SRC]),
      tha: macText(w[W.ARP_THA_HI], w[W.ARP_THA_LO]),
      tpa: ipTextOf(w[W.NW_DST]),
    };
  } else if (base.arp) out.arp = base.arp;
  if (type === ETH_TYPE_IPV4 && base.ip) {
    out.ip = { src: ipTextOf(w[W.NW_SRC]), dst: ipTextOf(w[W.NW_DST]), ttl: w[W.NW_TTL] & 0xff, proto: base.ip.proto };
    const l4 = base.l4;
    if (l4) {
      const a = w[W.TP_SRC] & 0xffff;
      const b = w[W.TP_DST] & 0xffff;
      if (l4.kind === 'icmp') out.l4 = a === l4.type && b === l4.code ? l4 : ({ ...l4, type: a & 0xff, code: b & 0xff } as Icmp);
      else out.l4 = a === l4.sport && b === l4.dport ? l4 : ({ ...l4, sport: a, dport: b } as Tcp | Udp);
    }
  } else {
    if (base.ip) out.ip = base.ip;
    if (base.l4) out.l4 = base.l4;
  }
  if (base.encap) out.encap = base.encap;
  if (base.data !== undefined) out.data = base.data;
  return out;
}

/** The tun_id of a key: a number when it fits (VNIs always do), else a bigint. */
export function keyTunId(w: Int32Array): number | bigint {
  const hi = w[W.TUN_ID_HI] >>> 0;
  const lo = w[W.TUN_ID_LO] >>> 0;
  if (hi < 0x200000) return hi * 2 ** 32 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** Nominal wire length for byte counters: Ethernet minimum 60 bytes (no FCS), +4 per VLAN tag. */
export function frameBytes(f: Frame): number {
  let n = 14;
  if (f.arp) n += 28;
  else if (f.ip) {
    n += 20;
    if (f.l4) n += f.l4.kind === 'tcp' ? 20 : 8;
    if (typeof f.data === 'string') n += f.data.length;
    else if (f.data instanceof Uint8Array) n += f.data.length;
  }
  if (f.encap) n += frameBytes(f.encap.inner) + (f.encap.kind === 'vxlan' ? 8 : 4);
  return Math.max(n, 60);
}
