// Compiles one iptables rule specification (the words after `-A CHAIN`) into matcher
// closures and a target, once, when the rules are restored: packets never re-parse text.
//
// Options are claimed the way iptables' getopt merge does: core options first, then the
// most recently loaded match module that knows the option (`-p tcp` loads the tcp match
// implicitly, as iptables does), then the target's options. Anything not claimed is an
// error naming the word, never ignored.

import type { Frame } from '../packet.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../packet.js';
import { ifaceMatches, inNet, parseIfacePattern, parseIpv4, parseIpv4Net, type IfacePattern } from './addr.js';
import type { CtRef } from './conntrack.js';
import type { Ipset, Ipsets } from './ipset.js';
import { quoteWord } from './tokenize.js';
import type { NfContext, NfHook, NfTable, RejectInfo } from './types.js';

export class RuleError extends Error {
  constructor(
    message: string,
    readonly token?: string,
  ) {
    super(message);
    this.name = 'RuleError';
  }
}

/** What a matcher sees of a packet. */
export interface PacketView {
  frame: Frame;
  hook: NfHook;
  ctx: NfContext;
  mark: number;
  ct?: CtRef;
  /** Numeric forms of frame.ip.src/dst, filled on first use; reset when NAT rewrites the frame. */
  srcN?: number;
  dstN?: number;
}

function srcNum(p: PacketView): number {
  return p.srcN ?? (p.srcN = parseIpv4(p.frame.ip!.src) ?? 0);
}

function dstNum(p: PacketView): number {
  return p.dstN ?? (p.dstN = parseIpv4(p.frame.ip!.dst) ?? 0);
}

export type Matcher = (p: PacketView) => boolean;

export interface NatRange {
  ip: string;
  ports?: [number, number];
}

export type Target =
  /** NONE: a rule without -j only counts packets and falls through. */
  | { kind: 'ACCEPT' | 'DROP' | 'RETURN' | 'CHECKSUM' | 'NONE' }
  | { kind: 'REJECT'; reject: RejectInfo }
  | { kind: 'jump'; chain: string; goto: boolean }
  | { kind: 'SNAT' | 'DNAT'; to: NatRange }
  | { kind: 'MASQUERADE' | 'REDIRECT'; ports?: [number, number] }
  /** mark = (mark & and) ^ xor covers --set-xmark, --set-mark, --and/--or/--xor-mark. */
  | { kind: 'MARK'; and: number; xor: number }
  | { kind: 'CONNMARK'; op: 'set'; and: number; xor: number }
  | { kind: 'CONNMARK'; op: 'save' | 'restore'; nfmask: number; ctmask: number }
  | { kind: 'CT'; zone?: number; notrack: boolean }
  | { kind: 'LOG'; prefix: string };

export interface Counters {
  pkts: number;
  bytes: number;
}

export interface CompiledRule {
  /** The rule as written after `-A CHAIN`, normalised to single spaces and quoted words. */
  spec: string;
  matches: Matcher[];
  target: Target;
  /** Name shown in traces: ACCEPT, DNAT, or the chain jumped to. */
  targetName: string;
  counters: Counters;
  /** Hooks the target or a match may be used from (checked through jumps at COMMIT). */
  restrict: { hooks: readonly NfHook[]; what: string }[];
  /** ipsets this rule references (they cannot be destroyed while it exists). */
  sets: string[];
  /** Line of the restore input that created the rule, for errors found at COMMIT. */
  line?: number;
  /** Cached `-A CHAIN spec` and the chain name it was built for. */
  text?: string;
  textChain?: string;
}

interface OptUse {
  name: string;
  args: string[];
  neg: boolean;
}

interface RuleCtx {
  table: NfTable;
  chain: string;
  ipsets: Ipsets;
  proto?: number;
  protoNeg: boolean;
  restrict: { hooks: readonly NfHook[]; what: string }[];
  sets: string[];
}

interface OptDef {
  args: number;
  neg?: boolean;
  /** Canonical name (for long/short aliases). */
  as?: string;
}

interface ModuleDef {
  options: Record<string, OptDef>;
  build(uses: OptUse[], r: RuleCtx): Matcher[];
}

// ---------------------------------------------------------------------------------------
// Value parsers

export const PROTOCOLS: Record<string, number> = {
  all: 0,
  ip: 0,
  icmp: 1,
  igmp: 2,
  tcp: 6,
  udp: 17,
  gre: 47,
  esp: 50,
  ah: 51,
  'ipv6-icmp': 58,
  icmpv6: 58,
  ospf: 89,
  vrrp: 112,
  sctp: 132,
  udplite: 136,
};

function parseProto(text: string): number {
  const t = text.toLowerCase();
  if (t in PROTOCOLS) return PROTOCOLS[t];
  if (/^\d+$/.test(t) && Number(t) <= 255) return Number(t);
  throw new RuleError(`unknown protocol "${text}"`, text);
}

function parsePort(text: string, whole: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535) {
    throw new RuleError(`invalid port "${whole}" (only numeric ports are supported)`, whole);
  }
  return Number(text);
}

/** `80`, `1000:2000`, `:1023`, `1024:` */
function parsePortRange(text: string): [number, number] {
  const i = text.indexOf(':');
  if (i < 0) {
    const p = parsePort(text, text);
    return [p, p];
  }
  const lo = i === 0 ? 0 : parsePort(text.slice(0, i), text);
  const hi = i === text.length - 1 ? 65535 : parsePort(text.slice(i + 1), text);
  if (lo > hi) throw new RuleError(`invalid port range "${text}"`, text);
  return [lo, hi];
}

/** `--to-ports 9697` or `8000-8010` (NAT targets use a dash). */
function parseNatPorts(text: string): [number, number] {
  const [a, b, ...rest] = text.split('-');
  if (rest.length) throw new RuleError(`invalid port range "${text}"`, text);
  const lo = parsePort(a, text);
  const hi = b === undefined ? lo : parsePort(b, text);
  if (lo > hi) throw new RuleError(`invalid port range "${text}"`, text);
  return [lo, hi];
}

function parseU32(text: string): number {
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(text)) throw new RuleError(`invalid number "${text}"`, text);
  const v = Number(text);
  if (v > 0xffffffff) throw new RuleError(`number out of range "${text}"`, text);
  return v >>> 0;
}

/** `value[/mask]`, mask defaulting to all ones. */
function parseValueMask(text: string): { value: number; mask: number } {
  const [v, m, ...rest] = text.split('/');
  if (rest.length) throw new RuleError(`invalid value/mask "${text}"`, text);
  return { value: parseU32(v), mask: m === undefined ? 0xffffffff : parseU32(m) };
}

const ICMP_TYPES: Record<string, [number, number?]> = {
  any: [255],
  'echo-reply': [0],
  pong: [0],
  'destination-unreachable': [3],
  'network-unreachable': [3, 0],
  'host-unreachable': [3, 1],
  'protocol-unreachable': [3, 2],
  'port-unreachable': [3, 3],
  'fragmentation-needed': [3, 4],
  'source-route-failed': [3, 5],
  'network-unknown': [3, 6],
  'host-unknown': [3, 7],
  'network-prohibited': [3, 9],
  'host-prohibited': [3, 10],
  'TOS-network-unreachable': [3, 11],
  'TOS-host-unreachable': [3, 12],
  'communication-prohibited': [3, 13],
  'host-precedence-violation': [3, 14],
  'precedence-cutoff': [3, 15],
  'source-quench': [4],
  redirect: [5],
  'network-redirect': [5, 0],
  'host-redirect': [5, 1],
  'TOS-network-redirect': [5, 2],
  'TOS-host-redirect': [5, 3],
  'echo-request': [8],
  ping: [8],
  'router-advertisement': [9],
  'router-solicitation': [10],
  'time-exceeded': [11],
  'ttl-exceeded': [11],
  'ttl-zero-during-transit': [11, 0],
  'ttl-zero-during-reassembly': [11, 1],
  'parameter-problem': [12],
  'ip-header-bad': [12, 0],
  'required-option-missing': [12, 1],
  'timestamp-request': [13],
  'timestamp-reply': [14],
  'address-mask-request': [17],
  'address-mask-reply': [18],
};

function parseIcmpType(text: string): { type: number; code?: number } {
  if (text in ICMP_TYPES) {
    const [type, code] = ICMP_TYPES[text];
    return { type, code };
  }
  const m = /^(\d{1,3})(?:\/(\d{1,3}))?$/.exec(text);
  if (!m || Number(m[1]) > 255 || (m[2] !== undefined && Number(m[2]) > 255)) {
    throw new RuleError(`invalid ICMP type "${text}"`, text);
  }
  return { type: Number(m[1]), code: m[2] === undefined ? undefined : Number(m[2]) };
}

const REJECT_WITH: Record<string, RejectInfo> = {};
for (const [names, code] of [
  [['icmp-net-unreachable', 'net-unreach'], 0],
  [['icmp-host-unreachable', 'host-unreach'], 1],
  [['icmp-proto-unreachable', 'proto-unreach'], 2],
  [['icmp-port-unreachable', 'port-unreach'], 3],
  [['icmp-net-prohibited', 'net-prohib'], 9],
  [['icmp-host-prohibited', 'host-prohib'], 10],
  [['icmp-admin-prohibited', 'admin-prohib'], 13],
] as const) {
  for (const n of names) REJECT_WITH[n] = { with: names[0], icmp: { type: 3, code } };
}
REJECT_WITH['tcp-reset'] = { with: 'tcp-reset', tcpReset: true };

const CT_STATES = ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED', 'SNAT', 'DNAT'] as const;
type CtStateName = (typeof CT_STATES)[number];

function parseStates(text: string, allowed: readonly CtStateName[]): Set<CtStateName> {
  const out = new Set<CtStateName>();
  for (const s of text.split(',')) {
    if (!(allowed as readonly string[]).includes(s)) throw new RuleError(`unsupported state "${s}"`, s);
    out.add(s as CtStateName);
  }
  return out;
}

function packetHasState(p: PacketView, s: CtStateName): boolean {
  const ct = p.ct;
  switch (s) {
    case 'SNAT':
      return !!ct?.entry?.srcNat;
    case 'DNAT':
      return !!ct?.entry?.dstNat;
    default:
      // No conntrack attachment yet (raw table) reads as INVALID, as in the kernel.
      return (ct?.state ?? 'INVALID') === s;
  }
}

// ---------------------------------------------------------------------------------------
// Match modules

function one(uses: OptUse[], name: string): OptUse | undefined {
  const all = uses.filter((u) => u.name === name);
  if (all.length > 1) throw new RuleError(`option "${name}" given twice`, name);
  return all[0];
}

function requireProto(r: RuleCtx, module: string, protos: number[]): void {
  if (r.proto === undefined || r.protoNeg || !protos.includes(r.proto)) {
    throw new RuleError(`match "${module}" needs -p ${protos.map((p) => protoName(p)).join('|')}`, module);
  }
}

function protoName(n: number): string {
  return Object.keys(PROTOCOLS).find((k) => PROTOCOLS[k] === n && k !== 'ip') ?? String(n);
}

function l4Ports(f: Frame): { sport: number; dport: number } | undefined {
  const l4 = f.l4;
  return l4 && l4.kind !== 'icmp' ? l4 : undefined;
}

function portMatchers(uses: OptUse[]): Matcher[] {
  const out: Matcher[] = [];
  for (const [opt, field] of [
    ['--sport', 'sport'],
    ['--dport', 'dport'],
  ] as const) {
    const u = one(uses, opt);
    if (!u) continue;
    const [lo, hi] = parsePortRange(u.args[0]);
    const neg = u.neg;
    out.push((p) => {
      const l4 = l4Ports(p.frame);
      if (!l4) return false;
      const v = l4[field];
      return (v >= lo && v <= hi) !== neg;
    });
  }
  return out;
}

const TCP_FLAG_BITS: Record<string, number> = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16, URG: 32, ALL: 63, NONE: 0 };

function parseTcpFlags(text: string): number {
  let v = 0;
  for (const f of text.split(',')) {
    if (!(f in TCP_FLAG_BITS)) throw new RuleError(`unknown TCP flag "${f}"`, f);
    v |= TCP_FLAG_BITS[f];
  }
  return v;
}

function tcpFlagBits(f: Frame): number {
  if (f.l4?.kind !== 'tcp') return 0;
  const fl = f.l4.flags;
  return (fl.fin ? 1 : 0) | (fl.syn ? 2 : 0) | (fl.rst ? 4 : 0) | (fl.ack ? 16 : 0);
}

const PORT_OPTS: Record<string, OptDef> = {
  '--sport': { args: 1, neg: true },
  '--source-port': { args: 1, neg: true, as: '--sport' },
  '--dport': { args: 1, neg: true },
  '--destination-port': { args: 1, neg: true, as: '--dport' },
};

const MODULES: Record<string, ModuleDef> = {
  tcp: {
    options: {
      ...PORT_OPTS,
      '--syn': { args: 0, neg: true },
      '--tcp-flags': { args: 2, neg: true },
    },
    build(uses, r) {
      requireProto(r, 'tcp', [IPPROTO_TCP]);
      const out = portMatchers(uses);
      const syn = one(uses, '--syn');
      const flags = one(uses, '--tcp-flags');
      if (syn && flags) throw new RuleError('--syn and --tcp-flags cannot be combined', '--syn');
      const spec = syn
        ? { mask: TCP_FLAG_BITS.SYN | TCP_FLAG_BITS.ACK | TCP_FLAG_BITS.RST | TCP_FLAG_BITS.FIN, comp: TCP_FLAG_BITS.SYN, neg: syn.neg }
        : flags
          ? { mask: parseTcpFlags(flags.args[0]), comp: parseTcpFlags(flags.args[1]), neg: flags.neg }
          : undefined;
      if (spec) out.push((p) => p.frame.l4?.kind === 'tcp' && ((tcpFlagBits(p.frame) & spec.mask) === spec.comp) !== spec.neg);
      return out;
    },
  },
  udp: {
    options: { ...PORT_OPTS },
    build(uses, r) {
      requireProto(r, 'udp', [IPPROTO_UDP]);
      return portMatchers(uses);
    },
  },
  icmp: {
    options: { '--icmp-type': { args: 1, neg: true } },
    build(uses, r) {
      requireProto(r, 'icmp', [IPPROTO_ICMP]);
      const u = one(uses, '--icmp-type');
      if (!u) return [];
      const { type, code } = parseIcmpType(u.args[0]);
      const neg = u.neg;
      return [
        (p) => {
          const l4 = p.frame.l4;
          if (l4?.kind !== 'icmp') return false;
          const hit = type === 255 || (l4.type === type && (code === undefined || l4.code === code));
          return hit !== neg;
        },
      ];
    },
  },
  multiport: {
    options: {
      '--sports': { args: 1, neg: true },
      '--source-ports': { args: 1, neg: true, as: '--sports' },
      '--dports': { args: 1, neg: true },
      '--destination-ports': { args: 1, neg: true, as: '--dports' },
      '--ports': { args: 1, neg: true },
    },
    build(uses, r) {
      requireProto(r, 'multiport', [IPPROTO_TCP, IPPROTO_UDP, 132, 136]);
      const given = ['--sports', '--dports', '--ports'].filter((o) => one(uses, o));
      if (given.length !== 1) throw new RuleError('multiport needs exactly one of --sports, --dports, --ports', 'multiport');
      const u = one(uses, given[0])!;
      const ranges = u.args[0].split(',').map(parsePortRange);
      const slots = ranges.reduce((n, [lo, hi]) => n + (lo === hi ? 1 : 2), 0);
      if (slots > 15) throw new RuleError(`too many ports in "${u.args[0]}" (15 at most)`, u.args[0]);
      const inAny = (v: number) => ranges.some(([lo, hi]) => v >= lo && v <= hi);
      const neg = u.neg;
      const which = given[0];
      return [
        (p) => {
          const l4 = l4Ports(p.frame);
          if (!l4) return false;
          const hit =
            which === '--sports' ? inAny(l4.sport) : which === '--dports' ? inAny(l4.dport) : inAny(l4.sport) || inAny(l4.dport);
          return hit !== neg;
        },
      ];
    },
  },
  state: {
    options: { '--state': { args: 1, neg: true } },
    build(uses) {
      const u = one(uses, '--state');
      if (!u) throw new RuleError('match "state" needs --state', 'state');
      const states = [...parseStates(u.args[0], ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED'])];
      const neg = u.neg;
      return [(p) => states.some((s) => packetHasState(p, s)) !== neg];
    },
  },
  conntrack: {
    options: { '--ctstate': { args: 1, neg: true } },
    build(uses) {
      const u = one(uses, '--ctstate');
      if (!u) throw new RuleError('match "conntrack" needs --ctstate (other conntrack options are not supported)', 'conntrack');
      const states = [...parseStates(u.args[0], CT_STATES)];
      const neg = u.neg;
      return [(p) => states.some((s) => packetHasState(p, s)) !== neg];
    },
  },
  physdev: {
    options: {
      '--physdev-in': { args: 1, neg: true },
      '--physdev-out': { args: 1, neg: true },
      '--physdev-is-in': { args: 0, neg: true },
      '--physdev-is-out': { args: 0, neg: true },
      '--physdev-is-bridged': { args: 0, neg: true },
    },
    build(uses) {
      const pin = one(uses, '--physdev-in');
      const pout = one(uses, '--physdev-out');
      const isIn = one(uses, '--physdev-is-in');
      const isOut = one(uses, '--physdev-is-out');
      const bridged = one(uses, '--physdev-is-bridged');
      if (!pin && !pout && !isIn && !isOut && !bridged) throw new RuleError('match "physdev" needs an option', 'physdev');
      const inPat = pin && parseIfacePattern(pin.args[0]);
      const outPat = pout && parseIfacePattern(pout.args[0]);
      // Follows xt_physdev.c physdev_mt(), including its corner cases.
      return [
        (p) => {
          const c = p.ctx;
          if (!(c.bridged || c.physIn || c.physOut)) {
            // Not bridged: only options that are all negated can match.
            return [bridged, isIn, isOut, pin, pout].every((u) => !u || u.neg);
          }
          const outdev = c.physOut;
          const indev = c.physIn;
          if (bridged && !!outdev === bridged.neg) return false;
          if (isIn && !indev !== isIn.neg) return false;
          if (isOut && !outdev !== isOut.neg) return false;
          if (pin && indev) {
            if (ifaceMatches(indev, inPat as IfacePattern) === pin.neg) return false;
          }
          if (!pout) return true;
          if (!outdev) return false;
          return ifaceMatches(outdev, outPat as IfacePattern) !== pout.neg;
        },
      ];
    },
  },
  set: {
    options: {
      '--match-set': { args: 2, neg: true },
      '--set': { args: 2, neg: true, as: '--match-set' },
    },
    build(uses, r) {
      const u = one(uses, '--match-set');
      if (!u) throw new RuleError('match "set" needs --match-set', 'set');
      const [name, flags] = u.args;
      const set: Ipset | undefined = r.ipsets.get(name);
      if (!set) throw new RuleError(`Set ${name} doesn't exist`, name);
      const dims = flags.split(',');
      if (!dims.every((d) => d === 'src' || d === 'dst')) throw new RuleError(`invalid set flags "${flags}"`, flags);
      r.sets.push(name);
      // hash:ip and hash:net have one dimension: only the first flag counts.
      const useSrc = dims[0] === 'src';
      const neg = u.neg;
      return [(p) => set.has(useSrc ? p.frame.ip!.src : p.frame.ip!.dst) !== neg];
    },
  },
  mac: {
    options: { '--mac-source': { args: 1, neg: true } },
    build(uses, r) {
      const u = one(uses, '--mac-source');
      if (!u) throw new RuleError('match "mac" needs --mac-source', 'mac');
      const mac = u.args[0].toLowerCase();
      if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) throw new RuleError(`invalid MAC "${u.args[0]}"`, u.args[0]);
      r.restrict.push({ hooks: ['PREROUTING', 'INPUT', 'FORWARD'], what: 'mac match' });
      const neg = u.neg;
      return [(p) => (p.frame.eth.src.toLowerCase() === mac) !== neg];
    },
  },
  comment: {
    options: { '--comment': { args: 1 } },
    build(uses) {
      const u = one(uses, '--comment');
      if (!u) throw new RuleError('match "comment" needs --comment', 'comment');
      if (u.args[0].length > 255) throw new RuleError('comment longer than 255 characters', '--comment');
      return [];
    },
  },
  mark: {
    options: { '--mark': { args: 1, neg: true } },
    build(uses) {
      const u = one(uses, '--mark');
      if (!u) throw new RuleError('match "mark" needs --mark', 'mark');
      const { value, mask } = parseValueMask(u.args[0]);
      const neg = u.neg;
      return [(p) => (((p.mark & mask) >>> 0) === value) !== neg];
    },
  },
  connmark: {
    options: { '--mark': { args: 1, neg: true } },
    build(uses) {
      const u = one(uses, '--mark');
      if (!u) throw new RuleError('match "connmark" needs --mark', 'connmark');
      const { value, mask } = parseValueMask(u.args[0]);
      const neg = u.neg;
      // No conntrack entry: no match, even negated (xt_connmark).
      return [(p) => !!p.ct?.entry && (((p.ct.entry.mark & mask) >>> 0) === value) !== neg];
    },
  },
  addrtype: {
    options: { '--src-type': { args: 1, neg: true }, '--dst-type': { args: 1, neg: true } },
    build(uses) {
      const out: Matcher[] = [];
      for (const [opt, field] of [
        ['--src-type', 'src'],
        ['--dst-type', 'dst'],
      ] as const) {
        const u = one(uses, opt);
        if (!u) continue;
        const types = u.args[0].split(',');
        for (const t of types) {
          if (t !== 'LOCAL' && t !== 'MULTICAST') throw new RuleError(`unsupported address type "${t}"`, t);
        }
        const neg = u.neg;
        out.push((p) => {
          const ip = p.frame.ip![field];
          const hit = types.some((t) =>
            t === 'LOCAL' ? !!p.ctx.ownAddresses?.(ip) : ((parseIpv4(ip) ?? 0) >>> 28) === 0xe,
          );
          return hit !== neg;
        });
      }
      if (!out.length) throw new RuleError('match "addrtype" needs --src-type or --dst-type', 'addrtype');
      return out;
    },
  },
};

// ---------------------------------------------------------------------------------------
// Targets

interface TargetDef {
  options: Record<string, OptDef>;
  tables?: readonly NfTable[];
  hooks?: readonly NfHook[];
  build(uses: OptUse[], r: RuleCtx): Target;
}

function natTo(text: string, r: RuleCtx, opt: string): NatRange {
  const m = /^([0-9.]+)(?::(.+))?$/.exec(text);
  const ipText = m?.[1];
  if (!m || parseIpv4(ipText!) === undefined) {
    throw new RuleError(`unsupported ${opt} "${text}" (one IPv4 address, optional :port or :port-port)`, text);
  }
  const ports = m[2] === undefined ? undefined : parseNatPorts(m[2]);
  if (ports && (r.protoNeg || (r.proto !== IPPROTO_TCP && r.proto !== IPPROTO_UDP))) {
    throw new RuleError(`${opt} with a port needs -p tcp or -p udp`, text);
  }
  return { ip: ipText!, ports };
}

function toPorts(uses: OptUse[], r: RuleCtx): [number, number] | undefined {
  const u = one(uses, '--to-ports');
  if (!u) return undefined;
  if (r.protoNeg || (r.proto !== IPPROTO_TCP && r.proto !== IPPROTO_UDP)) {
    throw new RuleError('--to-ports needs -p tcp or -p udp', '--to-ports');
  }
  return parseNatPorts(u.args[0]);
}

const MARK_OPTS = ['--set-xmark', '--set-mark', '--and-mark', '--or-mark', '--xor-mark'];

/** Turns one MARK-style option into (and, xor). */
function markOp(u: OptUse): { and: number; xor: number } {
  const arg = u.args[0];
  switch (u.name) {
    case '--set-xmark': {
      const { value, mask } = parseValueMask(arg);
      return { and: ~mask >>> 0, xor: value };
    }
    case '--set-mark': {
      const { value, mask } = parseValueMask(arg);
      return { and: ~(mask | value) >>> 0, xor: value };
    }
    case '--and-mark':
      return { and: parseU32(arg), xor: 0 };
    case '--or-mark': {
      const v = parseU32(arg);
      return { and: ~v >>> 0, xor: v };
    }
    default:
      return { and: 0xffffffff, xor: parseU32(arg) };
  }
}

const TARGETS: Record<string, TargetDef> = {
  ACCEPT: { options: {}, build: () => ({ kind: 'ACCEPT' }) },
  DROP: { options: {}, build: () => ({ kind: 'DROP' }) },
  RETURN: { options: {}, build: () => ({ kind: 'RETURN' }) },
  REJECT: {
    options: { '--reject-with': { args: 1 } },
    tables: ['filter'],
    hooks: ['INPUT', 'FORWARD', 'OUTPUT'],
    build(uses, r) {
      const u = one(uses, '--reject-with');
      const w = u ? u.args[0] : 'icmp-port-unreachable';
      const info = REJECT_WITH[w];
      if (!info) throw new RuleError(`unsupported --reject-with "${w}"`, w);
      if (info.tcpReset && (r.proto !== IPPROTO_TCP || r.protoNeg)) {
        throw new RuleError('--reject-with tcp-reset needs -p tcp', w);
      }
      return { kind: 'REJECT', reject: info };
    },
  },
  SNAT: {
    options: { '--to-source': { args: 1 }, '--to': { args: 1, as: '--to-source' }, '--random': { args: 0 }, '--random-fully': { args: 0 }, '--persistent': { args: 0 } },
    tables: ['nat'],
    hooks: ['POSTROUTING', 'INPUT'],
    build(uses, r) {
      const u = one(uses, '--to-source');
      if (!u) throw new RuleError('SNAT needs --to-source', 'SNAT');
      // --random/--random-fully only change how a clashing port is picked.
      return { kind: 'SNAT', to: natTo(u.args[0], r, '--to-source') };
    },
  },
  DNAT: {
    options: { '--to-destination': { args: 1 }, '--to': { args: 1, as: '--to-destination' }, '--random': { args: 0 }, '--persistent': { args: 0 } },
    tables: ['nat'],
    hooks: ['PREROUTING', 'OUTPUT'],
    build(uses, r) {
      const u = one(uses, '--to-destination');
      if (!u) throw new RuleError('DNAT needs --to-destination', 'DNAT');
      return { kind: 'DNAT', to: natTo(u.args[0], r, '--to-destination') };
    },
  },
  MASQUERADE: {
    options: { '--to-ports': { args: 1 }, '--random': { args: 0 }, '--random-fully': { args: 0 } },
    tables: ['nat'],
    hooks: ['POSTROUTING'],
    build: (uses, r) => ({ kind: 'MASQUERADE', ports: toPorts(uses, r) }),
  },
  REDIRECT: {
    options: { '--to-ports': { args: 1 }, '--random': { args: 0 } },
    tables: ['nat'],
    hooks: ['PREROUTING', 'OUTPUT'],
    build: (uses, r) => ({ kind: 'REDIRECT', ports: toPorts(uses, r) }),
  },
  MARK: {
    options: Object.fromEntries(MARK_OPTS.map((o) => [o, { args: 1 }])),
    build(uses) {
      const given = uses.filter((u) => MARK_OPTS.includes(u.name));
      if (given.length !== 1) throw new RuleError('MARK needs exactly one of ' + MARK_OPTS.join(', '), 'MARK');
      return { kind: 'MARK', ...markOp(given[0]) };
    },
  },
  CONNMARK: {
    options: {
      '--set-xmark': { args: 1 },
      '--set-mark': { args: 1 },
      '--save-mark': { args: 0 },
      '--restore-mark': { args: 0 },
      '--nfmask': { args: 1 },
      '--ctmask': { args: 1 },
      '--mask': { args: 1 },
    },
    build(uses) {
      const ops = uses.filter((u) => ['--set-xmark', '--set-mark', '--save-mark', '--restore-mark'].includes(u.name));
      if (ops.length !== 1) throw new RuleError('CONNMARK needs exactly one of --set-xmark, --set-mark, --save-mark, --restore-mark', 'CONNMARK');
      const op = ops[0];
      if (op.name === '--set-xmark' || op.name === '--set-mark') {
        for (const m of ['--nfmask', '--ctmask', '--mask']) {
          if (one(uses, m)) throw new RuleError(`${m} cannot be used with ${op.name}`, m);
        }
        return { kind: 'CONNMARK', op: 'set', ...markOp(op) };
      }
      const mask = one(uses, '--mask');
      const nf = one(uses, '--nfmask');
      const ct = one(uses, '--ctmask');
      if (mask && (nf || ct)) throw new RuleError('--mask cannot be combined with --nfmask/--ctmask', '--mask');
      const all = mask ? parseU32(mask.args[0]) : 0xffffffff;
      return {
        kind: 'CONNMARK',
        op: op.name === '--save-mark' ? 'save' : 'restore',
        nfmask: nf ? parseU32(nf.args[0]) : all,
        ctmask: ct ? parseU32(ct.args[0]) : all,
      };
    },
  },
  CT: {
    options: { '--zone': { args: 1 }, '--notrack': { args: 0 } },
    tables: ['raw'],
    build(uses) {
      const zone = one(uses, '--zone');
      const notrack = one(uses, '--notrack');
      if (!zone && !notrack) throw new RuleError('CT needs --zone or --notrack (other CT options are not supported)', 'CT');
      if (zone && notrack) throw new RuleError('CT --zone and --notrack cannot be combined', '--zone');
      let z: number | undefined;
      if (zone) {
        if (!/^\d+$/.test(zone.args[0]) || Number(zone.args[0]) > 65535) {
          throw new RuleError(`unsupported zone "${zone.args[0]}" (a number 0-65535)`, zone.args[0]);
        }
        z = Number(zone.args[0]);
      }
      return { kind: 'CT', zone: z, notrack: !!notrack };
    },
  },
  NOTRACK: { options: {}, tables: ['raw'], build: () => ({ kind: 'CT', notrack: true }) },
  CHECKSUM: {
    options: { '--checksum-fill': { args: 0 } },
    tables: ['mangle'],
    build(uses) {
      if (!one(uses, '--checksum-fill')) throw new RuleError('CHECKSUM needs --checksum-fill', 'CHECKSUM');
      // Frames carry no checksums: a recorded no-op.
      return { kind: 'CHECKSUM' };
    },
  },
  LOG: {
    options: { '--log-prefix': { args: 1 }, '--log-level': { args: 1 } },
    build: (uses) => ({ kind: 'LOG', prefix: one(uses, '--log-prefix')?.args[0] ?? '' }),
  },
};

// ---------------------------------------------------------------------------------------
// The rule compiler

const CORE: Record<string, OptDef> = {
  '-s': { args: 1, neg: true },
  '--source': { args: 1, neg: true, as: '-s' },
  '--src': { args: 1, neg: true, as: '-s' },
  '-d': { args: 1, neg: true },
  '--destination': { args: 1, neg: true, as: '-d' },
  '--dst': { args: 1, neg: true, as: '-d' },
  '-i': { args: 1, neg: true },
  '--in-interface': { args: 1, neg: true, as: '-i' },
  '-o': { args: 1, neg: true },
  '--out-interface': { args: 1, neg: true, as: '-o' },
  '-p': { args: 1, neg: true },
  '--protocol': { args: 1, neg: true, as: '-p' },
  '-m': { args: 1 },
  '--match': { args: 1, as: '-m' },
  '-j': { args: 1 },
  '--jump': { args: 1, as: '-j' },
  '-g': { args: 1 },
  '--goto': { args: 1, as: '-g' },
  '-c': { args: 2 },
  '--set-counters': { args: 2, as: '-c' },
};

const IMPLICIT_MODULE: Record<number, string> = { [IPPROTO_TCP]: 'tcp', [IPPROTO_UDP]: 'udp', [IPPROTO_ICMP]: 'icmp' };

export interface RuleEnv {
  table: NfTable;
  chain: string;
  ipsets: Ipsets;
  /** Names of the table's chains after this command (for telling targets from chains). */
  isUserChain(name: string): boolean;
  isBuiltinChain(name: string): boolean;
}

/** Compiles the words of a rule (without `-A CHAIN`). Throws RuleError naming the bad word. */
export function compileRule(words: string[], env: RuleEnv): CompiledRule {
  const r: RuleCtx = { table: env.table, chain: env.chain, ipsets: env.ipsets, protoNeg: false, restrict: [], sets: [] };
  const loaded: { name: string; def: ModuleDef; uses: OptUse[] }[] = [];
  const matches: Matcher[] = [];
  let targetName: string | undefined;
  let isGoto = false;
  let targetDef: TargetDef | undefined;
  const targetUses: OptUse[] = [];
  const core: OptUse[] = [];
  let counters: Counters = { pkts: 0, bytes: 0 };

  let i = 0;
  while (i < words.length) {
    let neg = false;
    let w = words[i];
    if (w === '!') {
      neg = true;
      w = words[++i];
      if (w === undefined) throw new RuleError('"!" at the end of the rule', '!');
    }
    if (!w.startsWith('-')) throw new RuleError(`unexpected word "${w}"`, w);

    let owner: 'core' | 'target' | { name: string; def: ModuleDef; uses: OptUse[] } | undefined;
    let def: OptDef | undefined = CORE[w];
    if (def) owner = 'core';
    if (!owner && targetDef && targetDef.options[w]) {
      owner = 'target';
      def = targetDef.options[w];
    }
    if (!owner) {
      for (let k = loaded.length - 1; k >= 0; k--) {
        if (loaded[k].def.options[w]) {
          owner = loaded[k];
          def = loaded[k].def.options[w];
          break;
        }
      }
    }
    if (!owner && r.proto !== undefined && !r.protoNeg && IMPLICIT_MODULE[r.proto]) {
      const name = IMPLICIT_MODULE[r.proto];
      const m = MODULES[name];
      if (m.options[w] && !loaded.some((l) => l.name === name)) {
        owner = { name, def: m, uses: [] };
        loaded.push(owner);
        def = m.options[w];
      }
    }
    if (!owner || !def) throw new RuleError(`unsupported option "${w}"`, w);
    if (neg && !def.neg) throw new RuleError(`option "${w}" cannot be negated with "!"`, w);
    const args = words.slice(i + 1, i + 1 + def.args);
    if (args.length < def.args || args.some((a) => a === '!')) {
      throw new RuleError(`option "${w}" needs ${def.args} argument${def.args > 1 ? 's' : ''}`, w);
    }
    i += 1 + def.args;
    const use: OptUse = { name: def.as ?? w, args, neg };

    if (owner === 'target') {
      targetUses.push(use);
      continue;
    }
    if (owner !== 'core') {
      owner.uses.push(use);
      continue;
    }
    switch (use.name) {
      case '-m': {
        const name = args[0];
        const m = MODULES[name];
        if (!m) throw new RuleError(`unsupported match module "${name}"`, name);
        loaded.push({ name, def: m, uses: [] });
        break;
      }
      case '-j':
      case '-g': {
        if (targetName !== undefined) throw new RuleError(`second target "${args[0]}"`, args[0]);
        targetName = args[0];
        isGoto = use.name === '-g';
        targetDef = isGoto ? undefined : TARGETS[targetName];
        if (!targetDef && !isGoto && !env.isUserChain(targetName) && /^[A-Z]+$/.test(targetName) && !env.isBuiltinChain(targetName)) {
          throw new RuleError(`unsupported target "${targetName}"`, targetName);
        }
        break;
      }
      case '-c':
        counters = { pkts: parseCounter(args[0]), bytes: parseCounter(args[1]) };
        break;
      case '-p':
        if (core.some((c) => c.name === '-p')) throw new RuleError('option "-p" given twice', w);
        r.proto = parseProto(args[0]);
        r.protoNeg = neg;
        core.push(use);
        break;
      default:
        if (core.some((c) => c.name === use.name)) throw new RuleError(`option "${use.name}" given twice`, w);
        core.push(use);
    }
  }

  // Core matches, cheapest first would change nothing observable; keep the written order.
  for (const u of core) matches.push(coreMatcher(u, env));
  for (const l of loaded) matches.push(...l.def.build(l.uses, r));

  let target: Target;
  if (targetName === undefined) {
    if (targetUses.length) throw new RuleError(`option "${targetUses[0].name}" without a target`, targetUses[0].name);
    target = { kind: 'NONE' };
    targetName = '';
  } else if (targetDef) {
    if (targetDef.tables && !targetDef.tables.includes(env.table)) {
      throw new RuleError(`target ${targetName} is only valid in the ${targetDef.tables.join('/')} table`, targetName);
    }
    target = targetDef.build(targetUses, r);
    if (targetDef.hooks) r.restrict.push({ hooks: targetDef.hooks, what: `${targetName} target` });
  } else {
    if (env.isBuiltinChain(targetName)) throw new RuleError(`cannot jump to built-in chain "${targetName}"`, targetName);
    target = { kind: 'jump', chain: targetName, goto: isGoto };
  }

  return {
    spec: words.map(quoteWord).join(' '),
    matches,
    target,
    targetName: targetName ?? '',
    counters,
    restrict: r.restrict,
    sets: r.sets,
  };
}

function parseCounter(t: string): number {
  if (!/^\d+$/.test(t)) throw new RuleError(`invalid counter "${t}"`, t);
  return Number(t);
}

function coreMatcher(u: OptUse, env: RuleEnv): Matcher {
  const neg = u.neg;
  const a = u.args[0];
  switch (u.name) {
    case '-s':
    case '-d': {
      if (a.includes(',')) throw new RuleError(`address lists are not supported: "${a}"`, a);
      const net = parseIpv4Net(a);
      if (!net) throw new RuleError(`invalid IPv4 address "${a}"`, a);
      const get = u.name === '-s' ? srcNum : dstNum;
      return (p) => inNet(get(p), net) !== neg;
    }
    case '-i':
    case '-o': {
      const bad = u.name === '-i' ? ['OUTPUT', 'POSTROUTING'] : ['PREROUTING', 'INPUT'];
      if (bad.includes(env.chain)) throw new RuleError(`Can't use ${u.name} with ${env.chain}`, u.name);
      const pat = parseIfacePattern(a);
      const field = u.name === '-i' ? 'in' : 'out';
      return (p) => ifaceMatches(p.ctx[field], pat) !== neg;
    }
    case '-p': {
      const proto = parseProto(a);
      if (proto === 0) {
        if (neg) throw new RuleError('"! -p all" matches nothing', a);
        return () => true;
      }
      return (p) => (p.frame.ip!.proto === proto) !== neg;
    }
  }
  throw new RuleError(`unsupported option "${u.name}"`, u.name);
}
