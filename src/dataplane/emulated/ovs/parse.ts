// The flow syntax of `ovs-ofctl add-flow` / `del-flows` (ovs-ofctl(8) "Flow Syntax",
// ovs-fields(7)). Where ovs-ofctl would quietly drop a match field whose prerequisite is
// missing (`nw_src=...` without `ip`, which then matches every packet) or let a repeated
// field override an earlier one, we refuse the flow: in an agent either is a bug.

import { parseActions, prereqOk, prereqText, type Action, type FlowFacts, type ParseContext } from './actions.js';
import { OvsFlowError } from './errors.js';
import {
  ETH_TYPE_ARP,
  ETH_TYPE_IPV4,
  ETH_TYPE_IPV6,
  ETH_TYPE_RARP,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  VLAN_CFI,
  W,
  fieldByName,
  onesBig,
  type FieldDef,
} from './fields.js';
import { MatchBuilder, type Match } from './match.js';
import { parseFieldValue } from './actions.js';
import { parseIntBig, parseIpv4Big } from './values.js';

export const OFP_DEFAULT_PRIORITY = 32768;

export interface ParsedFlow {
  text: string;
  table: number;
  tableGiven: boolean;
  priority: number;
  priorityGiven: boolean;
  cookie: bigint;
  /** Only in del-flows specs: `cookie=V/M`. */
  cookieMask?: bigint;
  idleTimeout: number;
  hardTimeout: number;
  importance: number;
  /** `reset_counts`: a replaced flow's counters are cleared (OpenFlow 1.3 keeps them otherwise). */
  resetCounts: boolean;
  match: Match;
  /** Absent in del-flows specs. */
  actions?: Action[];
}

const SHORTHANDS: Record<string, [number, number?]> = {
  ip: [ETH_TYPE_IPV4],
  ipv6: [ETH_TYPE_IPV6],
  arp: [ETH_TYPE_ARP],
  rarp: [ETH_TYPE_RARP],
  icmp: [ETH_TYPE_IPV4, IPPROTO_ICMP],
  tcp: [ETH_TYPE_IPV4, IPPROTO_TCP],
  udp: [ETH_TYPE_IPV4, IPPROTO_UDP],
  sctp: [ETH_TYPE_IPV4, IPPROTO_SCTP],
  icmp6: [ETH_TYPE_IPV6, IPPROTO_ICMPV6],
  tcp6: [ETH_TYPE_IPV6, IPPROTO_TCP],
  udp6: [ETH_TYPE_IPV6, IPPROTO_UDP],
};

// Match fields that exist in OVS but that this model does not carry: refused by name so the
// error says so instead of "unknown field".
const UNMODELLED = /^(ipv6_|nd_|ct_|conj_id|recirc_id|dp_hash|pkt_mark|skb_priority|nw_tos|nw_ecn|ip_dscp|ip_ecn|ip_frag|nw_frag|tcp_flags|mpls|tun_(src|dst|flags|gbp|metadata)|xreg|xxreg|actset_output|packet_type|dl_vlan_pcp|vlan_pcp|in_port_oxm|ipv6_label)/;

// Module-level helpers, not closures: parseFlow runs once per flow, 100,000s of times.
function add(flow: string, ok: boolean, token: string): void {
  if (!ok) throw new OvsFlowError(flow, token, 'contradicts another match field of this flow');
}

function num(flow: string, token: string, v: string, max: number): number {
  const n = /^\d{1,9}$/.test(v) ? Number(v) : parseIntBig(v);
  if (n === undefined || n > max) throw new OvsFlowError(flow, token, 'invalid number');
  return Number(n);
}

function splitMask(text: string): [string, string | undefined] {
  const slash = text.indexOf('/');
  return slash < 0 ? [text, undefined] : [text.slice(0, slash), text.slice(slash + 1)];
}

function parseMask(fd: FieldDef, maskText: string, flow: string, token: string, ctx: ParseContext): bigint {
  if (fd.format === 'ipv4' && /^\d{1,2}$/.test(maskText)) {
    const len = Number(maskText);
    if (len > 32) throw new OvsFlowError(flow, token, 'prefix length out of range');
    return len === 0 ? 0n : (onesBig(len) << BigInt(32 - len)) & onesBig(32);
  }
  if (fd.format === 'ipv4') {
    const m = parseIpv4Big(maskText);
    if (m === undefined) throw new OvsFlowError(flow, token, 'invalid IPv4 mask');
    return m;
  }
  return parseFieldValue(fd, maskText, flow, ctx);
}

/**
 * Parses one flow. `mode` 'add' requires `actions=`; 'spec' (del-flows, dump filters) forbids
 * it and allows a cookie mask and `table=255`/no table for "all tables".
 */
export function parseFlow(text: string, ctx: ParseContext = {}, mode: 'add' | 'spec' = 'add'): ParsedFlow {
  const flow = text.trim();
  const am = /(^|[\s,])actions=/.exec(flow);
  let matchPart = flow;
  let actionsPart: string | undefined;
  if (am) {
    matchPart = flow.slice(0, am.index);
    actionsPart = flow.slice(am.index + am[0].length);
  }
  if (mode === 'add' && actionsPart === undefined) throw new OvsFlowError(flow, flow, 'must specify an action (actions=...)');
  if (mode === 'spec' && actionsPart !== undefined) throw new OvsFlowError(flow, 'actions=', 'actions are not allowed here');

  const pf: ParsedFlow = {
    text: flow,
    table: 0,
    tableGiven: false,
    priority: OFP_DEFAULT_PRIORITY,
    priorityGiven: false,
    cookie: 0n,
    idleTimeout: 0,
    hardTimeout: 0,
    importance: 0,
    resetCounts: false,
    match: undefined as unknown as Match,
  };
  const b = MatchBuilder.shared();
  const usedFields: Array<[FieldDef, string]> = [];
  const seen = new Set<string>();

  for (const token of matchPart.split(/[\s,]+/).filter((t) => t !== '')) {
    const eq = token.indexOf('=');
    const name = eq < 0 ? token : token.slice(0, eq);
    const value = eq < 0 ? undefined : token.slice(eq + 1);
    // Repeating a shorthand is harmless (contradictions are caught below); a repeated field
    // would silently override the first in ovs-ofctl.
    if (seen.has(name) && !(name in SHORTHANDS)) throw new OvsFlowError(flow, token, `${name} given twice`);
    seen.add(name);
    if (value === undefined && name === 'reset_counts') {
      pf.resetCounts = true;
      continue;
    }
    if (value === undefined) {
      const sh = SHORTHANDS[name];
      if (!sh) throw new OvsFlowError(flow, token, `unknown keyword or shorthand '${name}'`);
      add(flow, b.addField(fieldByName('dl_type')!, BigInt(sh[0]), 0xffffn), token);
      if (sh[1] !== undefined) add(flow, b.addWords([[W.NW_PROTO, 0xff, sh[1]]]), token);
      continue;
    }
    switch (name) {
      case 'table':
        pf.table = num(flow, token, value, mode === 'spec' ? 255 : 254);
        pf.tableGiven = pf.table !== 255;
        continue;
      case 'priority':
        pf.priority = num(flow, token, value, 65535);
        pf.priorityGiven = true;
        continue;
      case 'cookie': {
        const [v, m] = splitMask(value);
        const big = parseIntBig(v);
        if (big === undefined || big > onesBig(64)) throw new OvsFlowError(flow, token, 'invalid cookie');
        pf.cookie = big;
        if (m !== undefined) {
          if (mode === 'add') throw new OvsFlowError(flow, token, 'flow additions cannot use a cookie mask');
          const mask = m === '-1' ? onesBig(64) : parseIntBig(m);
          if (mask === undefined || mask > onesBig(64)) throw new OvsFlowError(flow, token, 'invalid cookie mask');
          pf.cookieMask = mask;
        } else if (mode === 'spec') pf.cookieMask = onesBig(64);
        continue;
      }
      case 'idle_timeout':
        pf.idleTimeout = num(flow, token, value, 65535);
        continue;
      case 'hard_timeout':
        pf.hardTimeout = num(flow, token, value, 65535);
        continue;
      case 'importance':
        pf.importance = num(flow, token, value, 65535);
        continue;
      case 'dl_vlan': {
        // OpenFlow 1.0 semantics: a VID on a tagged packet; 0xffff = no 802.1Q header.
        const v = num(flow, token, value, 0xffff);
        if (v === 0xffff) add(flow, b.addWords([[W.VLAN_TCI, 0xffff, 0]]), token);
        else if (v > 4095) throw new OvsFlowError(flow, token, 'not a valid VLAN VID');
        else add(flow, b.addWords([[W.VLAN_TCI, VLAN_CFI | 0xfff, VLAN_CFI | v]]), token);
        continue;
      }
      case 'vlan_vid':
      case 'OXM_OF_VLAN_VID': {
        // OXM semantics: the value includes the "present" bit 0x1000 (vlan_vid=5 matches
        // untagged packets, as in OVS).
        const [v, m] = splitMask(value);
        const vv = num(flow, token, v, 0x1fff);
        const mm = m === undefined ? 0x1fff : num(flow, token, m, 0x1fff);
        add(flow, b.addWords([[W.VLAN_TCI, mm, vv & mm]]), token);
        continue;
      }
    }
    const fd = fieldByName(name);
    if (!fd) {
      if (UNMODELLED.test(name)) throw new OvsFlowError(flow, token, `match field '${name}' is not supported by this model`);
      throw new OvsFlowError(flow, token, `unknown match field '${name}'`);
    }
    const [vt, mt] = splitMask(value);
    if (mt !== undefined && !fd.maskable) throw new OvsFlowError(flow, token, `${fd.name} cannot be masked`);
    const v = parseFieldValue(fd, vt, flow, ctx);
    const mask = mt === undefined ? onesBig(fd.bits) : parseMask(fd, mt, flow, token, ctx);
    if (v > onesBig(fd.bits) || mask > onesBig(fd.bits)) throw new OvsFlowError(flow, token, `value does not fit into ${fd.bits} bits`);
    add(flow, b.addField(fd, v & mask, mask), token);
    usedFields.push([fd, token]);
  }

  const ethType = b.exact(W.ETH_TYPE, 0xffff);
  const nwProto = b.exact(W.NW_PROTO, 0xff);
  for (const [fd, token] of usedFields) {
    // nw_src/nw_dst/nw_proto double as arp_spa/arp_tpa/arp_op with `arp` (OpenFlow 1.0).
    const p = fd.name === 'nw_src' || fd.name === 'nw_dst' || fd.name === 'nw_proto' ? 'ip_or_arp' : fd.prereq;
    if (!prereqOk(p, ethType, nwProto))
      throw new OvsFlowError(flow, token, `${fd.name} needs the flow to match ${prereqText(p)} (ovs-ofctl would silently drop it)`);
  }
  pf.match = b.build();
  if (actionsPart !== undefined) {
    const tci = b.exact(W.VLAN_TCI, VLAN_CFI);
    const facts: FlowFacts = {
      ethType,
      nwProto: ethType === ETH_TYPE_IPV4 || ethType === ETH_TYPE_IPV6 ? nwProto : undefined,
      vlan: tci === undefined ? undefined : tci !== 0,
      table: pf.table,
    };
    pf.actions = parseActions(actionsPart, flow, ctx, facts);
  }
  return pf;
}
