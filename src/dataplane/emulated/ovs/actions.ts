// OpenFlow actions in ovs-ofctl syntax (ovs-actions(7)): parsed once into small objects the
// bridge executes without re-reading text. Every action keeps its canonical text for
// dump-flows. The consistency checks mirror OVS's ofpacts_check: a write to a field whose
// prerequisites the flow's match does not guarantee (arp_op without `arp`, vlan_vid without
// a VLAN) is refused, as ovs-ofctl refuses it.

import { cached } from '../../../common/cache.js';
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
  fieldToWords,
  onesBig,
  type FieldDef,
  type Prereq,
} from './fields.js';
import { OFPP, portName } from './match.js';
import { formatMacBig, hex, parseIntBig, parseIpv4Big, parseMacBig } from './values.js';
import { parseLearn, type LearnSpec } from './learn.js';

export interface Subfield {
  field: FieldDef;
  ofs: number;
  nbits: number;
}

export type Action =
  /**
   * `name`: the port was named, and is looked up when the packet leaves (the same parse then
   * serves every bridge that has a port of that name, whatever its number there).
   */
  | { kind: 'output'; port: number; name?: string; text: string }
  | { kind: 'output_reg'; src: Subfield; text: string }
  | { kind: 'resubmit'; port: number | undefined; table: number | undefined; text: string }
  | { kind: 'goto_table'; table: number; text: string }
  | { kind: 'mod_vlan_vid'; vid: number; text: string }
  | { kind: 'strip_vlan'; text: string }
  | { kind: 'push_vlan'; ethertype: number; text: string }
  | { kind: 'set'; dst: Subfield; value: bigint; words: Array<[number, number, number]>; text: string }
  | { kind: 'move'; src: Subfield; dst: Subfield; text: string; copyWords?: Array<[number, number]> }
  | { kind: 'dec_ttl'; text: string }
  | { kind: 'learn'; spec: LearnSpec; text: string };

/** What the parser needs from the bridge: port names -> OpenFlow port numbers. */
export interface ParseContext {
  portNumber?: (name: string) => number | undefined;
  /** Given, an output to a named port keeps the name (checked to exist) instead of its number. */
  portKnown?: (name: string) => boolean;
}

/** What the flow guarantees about the packet while its actions run (ofpacts_check's view). */
export interface FlowFacts {
  ethType?: number;
  nwProto?: number;
  vlan: boolean | undefined; // undefined: unknown
  table: number;
}

export function prereqOk(p: Prereq, ethType: number | undefined, proto: number | undefined): boolean {
  const ip = ethType === ETH_TYPE_IPV4;
  const ip6 = ethType === ETH_TYPE_IPV6;
  switch (p) {
    case 'none':
      return true;
    case 'ip':
      return ip;
    case 'arp':
      return ethType === ETH_TYPE_ARP || ethType === ETH_TYPE_RARP;
    case 'ip_or_arp':
      return ip || ethType === ETH_TYPE_ARP || ethType === ETH_TYPE_RARP;
    case 'tcp':
      return (ip || ip6) && proto === IPPROTO_TCP;
    case 'udp':
      return (ip || ip6) && proto === IPPROTO_UDP;
    case 'icmp':
      return ip && proto === IPPROTO_ICMP;
    case 'icmpv6':
      return ip6 && proto === IPPROTO_ICMPV6;
    case 'icmp_any':
      return (ip && proto === IPPROTO_ICMP) || (ip6 && proto === IPPROTO_ICMPV6);
    case 'l4':
      return (
        (ip && (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_SCTP || proto === IPPROTO_ICMP)) ||
        (ip6 && (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_SCTP || proto === IPPROTO_ICMPV6))
      );
  }
}

const PREREQ_TEXT: Record<Prereq, string> = {
  none: '',
  ip: 'ip',
  arp: 'arp',
  ip_or_arp: 'ip or arp',
  tcp: 'tcp',
  udp: 'udp',
  icmp: 'icmp',
  icmp_any: 'icmp or icmp6',
  icmpv6: 'icmp6',
  l4: 'tcp, udp, sctp or icmp',
};
export function prereqText(p: Prereq): string {
  return PREREQ_TEXT[p];
}

/** Splits at commas that are not inside parentheses. */
export function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() !== '' || out.length > 0) out.push(cur.trim());
  return out;
}

const SUBFIELD = /^([A-Za-z_][A-Za-z0-9_]*)\[(?:(\d+)(?:\.\.(\d+))?)?\]$/;

/** `NXM_NX_REG0[0..15]`, `NXM_OF_ETH_SRC[]`, `reg1[3]`; throws naming the token when malformed. */
export function parseSubfield(text: string, flow: string): Subfield {
  const m = SUBFIELD.exec(text.trim());
  if (!m) throw new OvsFlowError(flow, text, 'expected a field reference like NXM_NX_REG0[] or NXM_NX_REG0[0..15]');
  const field = fieldByName(m[1]);
  if (!field) throw new OvsFlowError(flow, m[1], 'unknown field');
  if (m[2] === undefined) return { field, ofs: 0, nbits: field.bits };
  const start = Number(m[2]);
  const end = m[3] === undefined ? start : Number(m[3]);
  if (end < start || end >= field.bits)
    throw new OvsFlowError(flow, text, `bit range outside the ${field.bits}-bit field ${m[1]}`);
  return { field, ofs: start, nbits: end - start + 1 };
}

export function subfieldText(s: Subfield): string {
  if (s.ofs === 0 && s.nbits === s.field.bits) return `${s.field.nxm}[]`;
  if (s.nbits === 1) return `${s.field.nxm}[${s.ofs}]`;
  return `${s.field.nxm}[${s.ofs}..${s.ofs + s.nbits - 1}]`;
}

/** The reserved port names a flow may use, in either case. */
const SPECIAL_PORTS = new Map<string, number>(
  (['IN_PORT', 'LOCAL', 'NORMAL', 'FLOOD', 'ALL', 'NONE'] as const).flatMap((n) => [
    [n, OFPP[n]],
    [n.toLowerCase(), OFPP[n]],
  ]),
);

/** Every reserved name: the special ports, and those the model does not support (never a bridge port's name). */
const RESERVED_PORTS = new Set([...SPECIAL_PORTS.keys(), ...['CONTROLLER', 'TABLE', 'ANY'].flatMap((n) => [n, n.toLowerCase()])]);

/** Port argument of output/resubmit: number, special name, or a bridge port name. */
export function parsePort(text: string, flow: string, ctx: ParseContext, what = 'port'): number {
  const t = text.trim();
  const special = SPECIAL_PORTS.get(t);
  if (special !== undefined) return special;
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (n > 0xffff) throw new OvsFlowError(flow, t, `${what} number out of range`);
    return n;
  }
  const n = ctx.portNumber?.(t);
  if (n === undefined) throw new OvsFlowError(flow, t, `invalid or unknown ${what}`);
  return n;
}

function fits(value: bigint, nbits: number): boolean {
  return value >= 0n && value <= onesBig(nbits);
}

export function makeSet(dst: Subfield, value: bigint, text: string): Action {
  const mask = onesBig(dst.nbits) << BigInt(dst.ofs);
  return { kind: 'set', dst, value, words: fieldToWords(dst.field, value << BigInt(dst.ofs), mask), text };
}

export function loadText(value: bigint, dst: Subfield): string {
  return `load:${value === 0n ? '0' : hex(value)}->${subfieldText(dst)}`;
}

function makeMove(src: Subfield, dst: Subfield, text: string): Action {
  // Whole-field copies between fields of identical layout (MACs, IPs) move words directly.
  let copyWords: Array<[number, number]> | undefined;
  if (
    src.ofs === 0 &&
    dst.ofs === 0 &&
    src.nbits === src.field.bits &&
    dst.nbits === dst.field.bits &&
    src.field.bits === dst.field.bits &&
    src.field.offset === 0 &&
    dst.field.offset === 0 &&
    (src.field.bits === 32 || src.field.words.length === 2)
  ) {
    copyWords = src.field.words.map((w, i) => [w, dst.field.words[i]] as [number, number]);
  }
  return { kind: 'move', src, dst, text, copyWords };
}

/** Parses a field value in the field's own notation (MAC, dotted quad, integer, port). */
export function parseFieldValue(fd: FieldDef, text: string, flow: string, ctx: ParseContext): bigint {
  let v: bigint | undefined;
  switch (fd.format) {
    case 'mac':
      v = parseMacBig(text);
      break;
    case 'ipv4':
      v = parseIpv4Big(text);
      break;
    case 'port':
      v = BigInt(parsePort(text, flow, ctx, 'port for in_port'));
      break;
    default:
      v = parseIntBig(text);
  }
  if (v === undefined) throw new OvsFlowError(flow, text, `invalid value for ${fd.name}`);
  return v;
}

function checkWrite(dst: Subfield, facts: FlowFacts, flow: string, token: string): void {
  if (!dst.field.writable) throw new OvsFlowError(flow, token, `field ${dst.field.name} is read-only`);
  checkRead(dst, facts, flow, token);
  if (dst.field.name === 'vlan_vid' && facts.vlan !== true)
    throw new OvsFlowError(flow, token, 'vlan_vid can only be set on a packet known to carry a VLAN tag (match dl_vlan or push one first)');
}

export function checkLearnRead(s: Subfield, facts: FlowFacts, flow: string, token: string): void {
  checkRead(s, facts, flow, token);
}

function checkRead(s: Subfield, facts: FlowFacts, flow: string, token: string): void {
  if (!prereqOk(s.field.prereq, facts.ethType, facts.nwProto))
    throw new OvsFlowError(flow, token, `${s.field.name} lacks its prerequisite: the flow must match ${prereqText(s.field.prereq)}`);
}

function afterWrite(a: Action, facts: FlowFacts): void {
  if (a.kind === 'set' && a.dst.field.words[0] === W.VLAN_TCI && a.dst.field.name === 'vlan_tci') {
    const mask = onesBig(a.dst.nbits) << BigInt(a.dst.ofs);
    if (mask & BigInt(VLAN_CFI)) facts.vlan = ((a.value << BigInt(a.dst.ofs)) & BigInt(VLAN_CFI)) !== 0n;
  }
  if (a.kind === 'move' && a.dst.field.name === 'vlan_tci') facts.vlan = undefined;
}

/** Parses the text after `actions=`; `facts` is updated as VLAN actions change what is known. */
export function parseActions(text: string, flow: string, ctx: ParseContext, facts: FlowFacts): Action[] {
  const items = text.trim() === '' ? [] : splitTop(text);
  const out: Action[] = [];
  let sawDrop = false;
  let sawGoto = false;
  let sawWriteMetadata = false;
  for (const raw of items) {
    const item = raw.trim();
    if (item === '') throw new OvsFlowError(flow, raw, 'empty action');
    if (sawGoto) throw new OvsFlowError(flow, item, 'goto_table must be the last instruction');
    if (item === 'drop') {
      sawDrop = true;
      continue;
    }
    const a = parseAction(item, flow, ctx, facts);
    if (a.kind === 'goto_table') sawGoto = true;
    else if (a.kind === 'set' && a.text.startsWith('write_metadata')) sawWriteMetadata = true;
    else if (sawWriteMetadata) throw new OvsFlowError(flow, item, 'write_metadata may only be followed by goto_table');
    out.push(a);
    afterWrite(a, facts);
  }
  if (sawDrop && out.length > 0) throw new OvsFlowError(flow, 'drop', '"drop" must not be accompanied by any other action or instruction');
  return internActions(out);
}

// Action lists are immutable once parsed and repeat across flows (`strip_vlan,output:5`):
// sharing one array per distinct list keeps large flow tables small. A long list (a host's
// flood flow, an output per tunnel of a network) is that host's own and changes as peers
// come and go: kept here, every version would stay.
const ACTION_LISTS = new Map<string, Action[]>();
export const SHARED_TEXT_MAX = 1024;

export function internActions(actions: Action[]): Action[] {
  if (actions.length > 16) return actions;
  const key = actionsText(actions);
  if (key.length > SHARED_TEXT_MAX) return actions;
  return cached(ACTION_LISTS, key, 1_000_000, () => actions);
}

function parseAction(item: string, flow: string, ctx: ParseContext, facts: FlowFacts): Action {
  const colon = item.indexOf(':');
  const paren = item.indexOf('(');
  let name: string;
  let arg: string | undefined;
  let parenArg: string | undefined;
  if (paren >= 0 && (colon < 0 || paren < colon)) {
    if (!item.endsWith(')')) throw new OvsFlowError(flow, item, 'unbalanced parentheses');
    name = item.slice(0, paren);
    parenArg = item.slice(paren + 1, -1);
  } else if (colon >= 0) {
    name = item.slice(0, colon);
    arg = item.slice(colon + 1);
  } else name = item;


  switch (name) {
    case 'output': {
      if (parenArg !== undefined) throw new OvsFlowError(flow, item, 'output(...) with options (max_len) is not supported');
      const a = need(arg, name, flow, item);
      if (a.includes('[')) {
        const src = parseSubfield(a, flow);
        checkRead(src, facts, flow, item);
        return { kind: 'output_reg', src, text: `output:${subfieldText(src)}` };
      }
      return namedOutput(a, flow, item, ctx) ?? outputAction(parsePort(a, flow, ctx), flow, item);
    }
    case 'resubmit': {
      if (parenArg !== undefined) {
        const parts = parenArg.split(',');
        if (parts.length > 2) throw new OvsFlowError(flow, item, 'resubmit with ct is not supported');
        const port = parts[0].trim() === '' ? undefined : parsePort(parts[0], flow, ctx);
        const t = parts[1]?.trim() ?? '';
        const table = t === '' ? undefined : parseTable(t, flow, item);
        if (port === undefined && table === undefined) throw new OvsFlowError(flow, item, 'resubmit needs a port or a table');
        const p = port === undefined || port === OFPP.IN_PORT ? undefined : port;
        return {
          kind: 'resubmit',
          port: p,
          table,
          text: table === undefined ? `resubmit:${portName(p!)}` : `resubmit(${p === undefined ? '' : portName(p)},${table})`,
        };
      }
      const port = parsePort(need(arg, name, flow, item), flow, ctx);
      return { kind: 'resubmit', port: port === OFPP.IN_PORT ? undefined : port, table: undefined, text: `resubmit:${portName(port)}` };
    }
    case 'goto_table': {
      const table = parseTable(need(arg, name, flow, item), flow, item);
      if (table <= facts.table) throw new OvsFlowError(flow, item, `goto_table must go to a later table than ${facts.table}`);
      return { kind: 'goto_table', table, text: `goto_table:${table}` };
    }
    case 'mod_vlan_vid': {
      const v = parseIntBig(need(arg, name, flow, item));
      if (v === undefined || v > 4095n) throw new OvsFlowError(flow, item, 'not a valid VLAN VID');
      facts.vlan = true;
      return { kind: 'mod_vlan_vid', vid: Number(v), text: `mod_vlan_vid:${v}` };
    }
    case 'strip_vlan':
    case 'pop_vlan':
      if (arg !== undefined || parenArg !== undefined) throw new OvsFlowError(flow, item, `${name} takes no argument`);
      facts.vlan = false;
      return { kind: 'strip_vlan', text: name };
    case 'push_vlan': {
      const v = parseIntBig(need(arg, name, flow, item));
      if (v !== 0x8100n) throw new OvsFlowError(flow, item, 'only push_vlan:0x8100 (802.1Q) is supported');
      facts.vlan = true;
      return { kind: 'push_vlan', ethertype: 0x8100, text: 'push_vlan:0x8100' };
    }
    case 'mod_dl_src':
    case 'mod_dl_dst': {
      const fd = fieldByName(name === 'mod_dl_src' ? 'dl_src' : 'dl_dst')!;
      const v = parseMacBig(need(arg, name, flow, item));
      if (v === undefined) throw new OvsFlowError(flow, item, 'invalid MAC address');
      return makeSet({ field: fd, ofs: 0, nbits: 48 }, v, `${name}:${formatMacBig(v)}`);
    }
    case 'mod_nw_src':
    case 'mod_nw_dst':
    case 'mod_tp_src':
    case 'mod_tp_dst':
    case 'mod_nw_ttl': {
      const fd = fieldByName(
        { mod_nw_src: 'nw_src', mod_nw_dst: 'nw_dst', mod_tp_src: 'tp_src', mod_tp_dst: 'tp_dst', mod_nw_ttl: 'nw_ttl' }[name],
      )!;
      const dst = { field: fd, ofs: 0, nbits: fd.bits };
      checkWrite(dst, facts, flow, item);
      const v = parseFieldValue(fd, need(arg, name, flow, item), flow, ctx);
      if (!fits(v, fd.bits)) throw new OvsFlowError(flow, item, `value does not fit into ${fd.bits} bits`);
      return makeSet(dst, v, `${name}:${fd.format === 'ipv4' ? need(arg, name, flow, item) : v}`);
    }
    case 'set_field': {
      const a = need(arg, name, flow, item);
      const arrow = a.lastIndexOf('->');
      if (arrow < 0) throw new OvsFlowError(flow, item, 'set_field needs VALUE->FIELD');
      const fname = a.slice(arrow + 2).trim();
      const fd = fieldByName(fname);
      if (!fd) throw new OvsFlowError(flow, fname, 'unknown field');
      let valueText = a.slice(0, arrow).trim();
      let maskText: string | undefined;
      const slash = valueText.indexOf('/');
      if (slash >= 0) {
        maskText = valueText.slice(slash + 1);
        valueText = valueText.slice(0, slash);
      }
      let value = parseFieldValue(fd, valueText, flow, ctx);
      if (fd.name === 'vlan_vid') {
        // The OXM value carries the "VLAN present" bit; the VID is the low 12 bits.
        if (value > 0x1fffn) throw new OvsFlowError(flow, item, 'not a valid VLAN VID');
        value &= 0xfffn;
      }
      if (!fits(value, fd.bits)) throw new OvsFlowError(flow, item, `value does not fit into ${fd.bits} bits`);
      let dst: Subfield = { field: fd, ofs: 0, nbits: fd.bits };
      if (maskText !== undefined) {
        const mask = parseFieldValue(fd, maskText, flow, ctx);
        // Only contiguous masks become a bit range (ovs-ofctl prints them as load:...[a..b]).
        if (mask === 0n) throw new OvsFlowError(flow, item, 'zero mask');
        let ofs = 0;
        while (((mask >> BigInt(ofs)) & 1n) === 0n) ofs++;
        let nbits = 0;
        while (((mask >> BigInt(ofs + nbits)) & 1n) === 1n) nbits++;
        if (mask >> BigInt(ofs + nbits) !== 0n) throw new OvsFlowError(flow, item, 'only contiguous set_field masks are supported');
        if ((value & ~mask) !== 0n) throw new OvsFlowError(flow, item, 'value has bits outside the mask');
        dst = { field: fd, ofs, nbits };
        value >>= BigInt(ofs);
      }
      checkWrite(dst, facts, flow, item);
      return makeSet(dst, value, `set_field:${a}`);
    }
    case 'load': {
      const a = need(arg, name, flow, item);
      const arrow = a.indexOf('->');
      if (arrow < 0) throw new OvsFlowError(flow, item, 'load needs VALUE->FIELD[]');
      const dst = parseSubfield(a.slice(arrow + 2), flow);
      const v = parseIntBig(a.slice(0, arrow).trim());
      if (v === undefined) throw new OvsFlowError(flow, item, 'load value must be an integer (decimal or 0x-hex)');
      if (!fits(v, dst.nbits)) throw new OvsFlowError(flow, item, `value ${v} does not fit into ${dst.nbits} bits`);
      checkWrite(dst, facts, flow, item);
      return makeSet(dst, v, loadText(v, dst));
    }
    case 'move': {
      const a = need(arg, name, flow, item);
      const arrow = a.indexOf('->');
      if (arrow < 0) throw new OvsFlowError(flow, item, 'move needs SRC[]->DST[]');
      const src = parseSubfield(a.slice(0, arrow), flow);
      const dst = parseSubfield(a.slice(arrow + 2), flow);
      if (src.nbits !== dst.nbits)
        throw new OvsFlowError(flow, item, `source field is ${src.nbits} bits wide but destination is ${dst.nbits} bits wide`);
      checkRead(src, facts, flow, item);
      checkWrite(dst, facts, flow, item);
      return makeMove(src, dst, `move:${subfieldText(src)}->${subfieldText(dst)}`);
    }
    case 'set_tunnel':
    case 'set_tunnel64': {
      const v = parseIntBig(need(arg, name, flow, item));
      if (v === undefined || !fits(v, name === 'set_tunnel' ? 32 : 64)) throw new OvsFlowError(flow, item, 'invalid tunnel id');
      const fd = fieldByName('tun_id')!;
      return makeSet({ field: fd, ofs: 0, nbits: 64 }, v, `${v > 0xffffffffn ? 'set_tunnel64' : 'set_tunnel'}:${hex(v)}`);
    }
    case 'write_metadata': {
      const a = need(arg, name, flow, item);
      const [vt, mt] = a.split('/');
      const v = parseIntBig(vt);
      const m = mt === undefined ? onesBig(64) : parseIntBig(mt);
      if (v === undefined || m === undefined || !fits(v, 64) || !fits(m, 64)) throw new OvsFlowError(flow, item, 'invalid metadata value');
      const fd = fieldByName('metadata')!;
      const act = makeSet({ field: fd, ofs: 0, nbits: 64 }, v & m, `write_metadata:${a}`);
      if (act.kind === 'set') act.words = fieldToWords(fd, v, m);
      return act;
    }
    case 'dec_ttl':
      if (parenArg !== undefined || arg !== undefined) throw new OvsFlowError(flow, item, 'dec_ttl with controller ids is not supported');
      if (!prereqOk('ip', facts.ethType, facts.nwProto)) throw new OvsFlowError(flow, item, 'dec_ttl needs a flow that matches ip');
      return { kind: 'dec_ttl', text: 'dec_ttl' };
    case 'learn': {
      if (parenArg === undefined) throw new OvsFlowError(flow, item, 'learn needs (...)');
      const spec = parseLearn(parenArg, flow, ctx, facts);
      return { kind: 'learn', spec, text: `learn(${spec.text})` };
    }
    default:
      if (arg === undefined && parenArg === undefined) {
        // A bare port (number, special name or port name) means output to it.
        if (/^\d+$/.test(name) || /^(IN_PORT|in_port|LOCAL|local|NORMAL|normal|FLOOD|flood|ALL|all)$/.test(name))
          return outputAction(parsePort(name, flow, ctx), flow, item);
        const named = namedOutput(name, flow, item, ctx);
        if (named) return named;
        const n = ctx.portNumber?.(name);
        if (n !== undefined) return outputAction(n, flow, item);
      }
      throw new OvsFlowError(flow, item, `unsupported action '${name}'`);
  }
}

function need(arg: string | undefined, name: string, flow: string, item: string): string {
  if (arg === undefined || arg === '') throw new OvsFlowError(flow, item, `${name} needs an argument`);
  return arg;
}

/** An output to a port by name, when the context keeps names (not numbers, specials or unknown ports). */
function namedOutput(text: string, flow: string, item: string, ctx: ParseContext): Action | undefined {
  const name = text.trim();
  if (!ctx.portKnown || /^\d+$/.test(name) || RESERVED_PORTS.has(name)) return undefined;
  if (!ctx.portKnown(name)) throw new OvsFlowError(flow, name, 'invalid or unknown port');
  return cached(NAMED_OUTPUTS, name, 100_000, () => ({ kind: 'output', port: 0, name, text: `output:${name}` }));
}
/** One action object per named output (immutable): a host's flood flows list every tunnel of a network. */
const NAMED_OUTPUTS = new Map<string, Action>();

function outputAction(port: number, flow: string, item: string): Action {
  if (port === OFPP.NONE || port === OFPP.CONTROLLER || port === OFPP.TABLE || (port > OFPP.MAX && port < OFPP.IN_PORT))
    throw new OvsFlowError(flow, item, 'output to this port is not supported');
  const text = port === OFPP.IN_PORT || port >= OFPP.NORMAL ? portName(port) : `output:${port}`;
  return { kind: 'output', port, text };
}

function parseTable(t: string, flow: string, item: string): number {
  if (!/^\d+$/.test(t.trim())) throw new OvsFlowError(flow, item, 'table must be a number');
  const n = Number(t);
  if (n > 254) throw new OvsFlowError(flow, item, `${n}: unknown table`);
  return n;
}

export function actionsText(actions: Action[]): string {
  return actions.length === 0 ? 'drop' : actions.map((a) => a.text).join(',');
}

