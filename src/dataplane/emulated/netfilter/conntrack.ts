// Connection tracking, modelled on nf_conntrack: each connection is one entry with an
// original and a reply tuple, both hashed, in a zone. NAT is recorded by rewriting the
// reply tuple (what nf_nat does), so that "apply NAT to this packet" is always "make the
// packet's tuple the inverse of the other direction's tuple" in either direction.
//
// Time is virtual (seconds) so tests can expire entries deterministically.

import type { Frame } from '../packet.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../packet.js';

export type CtState = 'NEW' | 'ESTABLISHED' | 'RELATED' | 'INVALID' | 'UNTRACKED';
export type CtDir = 'original' | 'reply';
export type NatManip = 'src' | 'dst';

/**
 * A connection tuple. For ICMP queries `sport` holds the ICMP id and `dport` the ICMP
 * type (8 echo request in the original tuple, 0 echo reply in the reply tuple), as the
 * kernel's tuple keeps id and type.
 */
export interface CtTuple {
  src: string;
  dst: string;
  proto: number;
  sport: number;
  dport: number;
}

export type TcpCtState =
  | 'SYN_SENT'
  | 'SYN_RECV'
  | 'ESTABLISHED'
  | 'FIN_WAIT'
  | 'TIME_WAIT'
  | 'CLOSE';

export interface CtEntry {
  readonly id: number;
  readonly zone: number;
  readonly orig: CtTuple;
  /** formatTuple(orig), for traces. */
  readonly origText: string;
  /** The tuple replies carry; NAT rewrites it. */
  reply: CtTuple;
  seenReply: boolean;
  /** IPS_SRC_NAT / IPS_DST_NAT: what `--ctstate SNAT|DNAT` tests. */
  srcNat: boolean;
  dstNat: boolean;
  /** The nat table has decided this manip (a binding, possibly a null one). */
  natDone: { src: boolean; dst: boolean };
  tcp?: { state: TcpCtState; fin: [boolean, boolean] };
  /** connmark (CONNMARK / -m connmark). */
  mark: number;
  expires: number;
}

/** The conntrack attachment of one packet (skb->_nfct plus ctinfo). */
export interface CtRef {
  state: CtState;
  zone: number;
  entry?: CtEntry;
  dir?: CtDir;
  /** This packet created the entry (it disappears if the packet is dropped, as unconfirmed entries do). */
  created?: boolean;
}

export interface ConntrackOptions {
  /** Seconds; defaults to a virtual clock that only `advance` moves. */
  clock?: () => number;
  /** net.netfilter.nf_conntrack_tcp_loose (kernel default 1: pick up mid-stream ACKs). */
  tcpLoose?: boolean;
}

/** Kernel default timeouts (seconds), nf_conntrack_*_timeout_* sysctls. */
export const CT_TIMEOUTS = {
  tcp: { SYN_SENT: 120, SYN_RECV: 60, ESTABLISHED: 432000, FIN_WAIT: 120, TIME_WAIT: 120, CLOSE: 10 },
  udp: 30,
  udpStream: 120,
  icmp: 30,
  generic: 600,
};

/** ICMP query types and their replies; only these are tracked as connections. */
const ICMP_INVERSE: Record<number, number> = { 8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17 };
const ICMP_REQUESTS = new Set([8, 13, 15, 17]);
/** ICMP errors carry the header of the packet they answer: RELATED to its connection. */
export const ICMP_ERROR_TYPES = new Set([3, 4, 5, 11, 12]);

export function invert(t: CtTuple): CtTuple {
  const dport = t.proto === IPPROTO_ICMP ? (ICMP_INVERSE[t.dport] ?? t.dport) : t.sport;
  const sport = t.proto === IPPROTO_ICMP ? t.sport : t.dport;
  return { src: t.dst, dst: t.src, proto: t.proto, sport, dport };
}

function key(zone: number, t: CtTuple): string {
  return `${zone}|${t.proto}|${t.src}|${t.sport}|${t.dst}|${t.dport}`;
}

/** The tuple of a frame, or undefined when conntrack cannot track it (not IPv4, untrackable ICMP). */
export function tupleOf(f: Frame): CtTuple | undefined {
  const ip = f.ip;
  if (!ip) return undefined;
  const l4 = f.l4;
  if (ip.proto === IPPROTO_TCP || ip.proto === IPPROTO_UDP) {
    if (!l4 || l4.kind === 'icmp') return undefined;
    return { src: ip.src, dst: ip.dst, proto: ip.proto, sport: l4.sport, dport: l4.dport };
  }
  if (ip.proto === IPPROTO_ICMP) {
    if (!l4 || l4.kind !== 'icmp' || ICMP_INVERSE[l4.type] === undefined) return undefined;
    return { src: ip.src, dst: ip.dst, proto: ip.proto, sport: l4.id ?? 0, dport: l4.type };
  }
  return { src: ip.src, dst: ip.dst, proto: ip.proto, sport: 0, dport: 0 };
}

export function formatTuple(t: CtTuple): string {
  if (t.proto === IPPROTO_ICMP) return `src=${t.src} dst=${t.dst} type=${t.dport} id=${t.sport}`;
  if (t.proto === IPPROTO_TCP || t.proto === IPPROTO_UDP) {
    return `src=${t.src} dst=${t.dst} sport=${t.sport} dport=${t.dport}`;
  }
  return `src=${t.src} dst=${t.dst}`;
}

const PROTO_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp' };

export interface CtDeleteFilter {
  zone?: number;
  proto?: number;
  /** Matches the original source (conntrack -D -s). */
  src?: string;
  /** Matches the original destination (conntrack -D -d). */
  dst?: string;
  /** Matches the source or destination of either tuple. */
  addr?: string;
}

/** The conntrack table of one network namespace; zones keep identical tuples apart. */
export class Conntrack {
  private byKey = new Map<string, { entry: CtEntry; dir: CtDir }>();
  /**
   * Tuples as packets look after NAT (inverse of the other direction's tuple), used only
   * when a hook is entered without the packet's CtRef (see NfContext.ct).
   */
  private byNatKey = new Map<string, { entry: CtEntry; dir: CtDir }>();
  private all = new Set<CtEntry>();
  private nextId = 1;
  private offset = 0;
  private clock?: () => number;
  tcpLoose: boolean;

  constructor(opts: ConntrackOptions = {}) {
    this.clock = opts.clock;
    this.tcpLoose = opts.tcpLoose ?? true;
  }

  now(): number {
    return (this.clock ? this.clock() : 0) + this.offset;
  }

  /** Moves virtual time forward and expires what timed out. */
  advance(seconds: number): void {
    this.offset += seconds;
    this.gc();
  }

  get size(): number {
    this.gc();
    return this.all.size;
  }

  entries(): CtEntry[] {
    this.gc();
    return [...this.all];
  }

  flush(): void {
    this.byKey.clear();
    this.byNatKey.clear();
    this.all.clear();
  }

  /** `conntrack -D` with filters; returns how many entries went. */
  delete(filter: CtDeleteFilter = {}): number {
    let n = 0;
    for (const e of [...this.all]) {
      if (filter.zone !== undefined && e.zone !== filter.zone) continue;
      if (filter.proto !== undefined && e.orig.proto !== filter.proto) continue;
      if (filter.src !== undefined && e.orig.src !== filter.src) continue;
      if (filter.dst !== undefined && e.orig.dst !== filter.dst) continue;
      if (filter.addr !== undefined) {
        const a = filter.addr;
        if (![e.orig.src, e.orig.dst, e.reply.src, e.reply.dst].includes(a)) continue;
      }
      this.remove(e);
      n++;
    }
    return n;
  }

  /** An entry by one of its tuples (either direction), if live. */
  find(zone: number, t: CtTuple): { entry: CtEntry; dir: CtDir } | undefined {
    const hit = this.byKey.get(key(zone, t));
    if (hit && hit.entry.expires <= this.now()) {
      this.remove(hit.entry);
      return undefined;
    }
    return hit;
  }

  /** Lines like `conntrack -L` prints. */
  list(): string[] {
    return this.entries().map((e) => this.format(e));
  }

  format(e: CtEntry): string {
    const proto = PROTO_NAMES[e.orig.proto] ?? 'unknown';
    const ttl = Math.max(0, Math.round(e.expires - this.now()));
    const parts = [`${proto.padEnd(8)} ${e.orig.proto} ${ttl}`];
    if (e.tcp) parts.push(e.tcp.state);
    parts.push(formatTuple(e.orig));
    if (!e.seenReply) parts.push('[UNREPLIED]');
    parts.push(formatTuple(e.reply));
    parts.push(`mark=${e.mark}`);
    if (e.zone) parts.push(`zone=${e.zone}`);
    return parts.join(' ');
  }

  /**
   * nf_conntrack_in: finds or creates the connection of a packet and updates its state.
   * `postNat` also tries the post-NAT forms of the tuples (for a hook entered without the
   * packet's CtRef after NAT already changed it).
   */
  track(frame: Frame, zone: number, postNat = false): CtRef {
    const ip = frame.ip;
    if (!ip) return { state: 'INVALID', zone };
    const l4 = frame.l4;
    if (ip.proto === IPPROTO_ICMP && l4?.kind === 'icmp' && ICMP_ERROR_TYPES.has(l4.type)) {
      return this.related(frame, zone);
    }
    const t = tupleOf(frame);
    if (!t) return { state: 'INVALID', zone };
    let hit = this.find(zone, t);
    if (!hit && postNat) {
      const h = this.byNatKey.get(key(zone, t));
      if (h && h.entry.expires > this.now()) hit = h;
    }
    if (hit) {
      const { entry, dir } = hit;
      // A new SYN on a closed connection reopens it (tcp_packet: "Reopened connection").
      if (entry.tcp && dir === 'original' && isPureSyn(frame) && (entry.tcp.state === 'TIME_WAIT' || entry.tcp.state === 'CLOSE')) {
        this.remove(entry);
        return this.create(frame, zone, t);
      }
      this.update(entry, dir, frame);
      const state: CtState = dir === 'reply' || entry.seenReply ? 'ESTABLISHED' : 'NEW';
      return { state, zone, entry, dir };
    }
    return this.create(frame, zone, t);
  }

  private related(frame: Frame, zone: number): CtRef {
    const inner = frame.l4?.kind === 'icmp' ? frame.l4.quoted : undefined;
    const t = inner ? tupleOf(inner) : undefined;
    if (!t) return { state: 'INVALID', zone };
    const hit = this.find(zone, invert(t));
    if (!hit) return { state: 'INVALID', zone };
    return { state: 'RELATED', zone, entry: hit.entry, dir: hit.dir };
  }

  private create(frame: Frame, zone: number, t: CtTuple): CtRef {
    let tcp: CtEntry['tcp'];
    if (t.proto === IPPROTO_TCP) {
      const flags = frame.l4?.kind === 'tcp' ? frame.l4.flags : {};
      if (flags.syn && !flags.ack && !flags.rst && !flags.fin) tcp = { state: 'SYN_SENT', fin: [false, false] };
      else if (this.tcpLoose && flags.ack && !flags.syn && !flags.rst && !flags.fin) {
        tcp = { state: 'ESTABLISHED', fin: [false, false] }; // mid-stream pickup
      } else return { state: 'INVALID', zone };
    }
    if (t.proto === IPPROTO_ICMP && !ICMP_REQUESTS.has(t.dport)) return { state: 'INVALID', zone };
    const entry: CtEntry = {
      id: this.nextId++,
      zone,
      orig: t,
      origText: formatTuple(t),
      reply: invert(t),
      seenReply: false,
      srcNat: false,
      dstNat: false,
      natDone: { src: false, dst: false },
      tcp,
      mark: 0,
      expires: 0,
    };
    entry.expires = this.now() + this.timeout(entry);
    this.all.add(entry);
    this.index(entry);
    return { state: 'NEW', zone, entry, dir: 'original', created: true };
  }

  private update(entry: CtEntry, dir: CtDir, frame: Frame): void {
    if (dir === 'reply') entry.seenReply = true;
    const tcp = entry.tcp;
    if (tcp && frame.l4?.kind === 'tcp') {
      const f = frame.l4.flags;
      const d = dir === 'original' ? 0 : 1;
      if (f.rst) tcp.state = 'CLOSE';
      else if (f.fin) {
        tcp.fin[d] = true;
        tcp.state = tcp.fin[0] && tcp.fin[1] ? 'TIME_WAIT' : 'FIN_WAIT';
      } else if (tcp.state === 'SYN_SENT' && dir === 'reply' && f.syn && f.ack) tcp.state = 'SYN_RECV';
      else if (tcp.state === 'SYN_RECV' && dir === 'original' && f.ack && !f.syn) tcp.state = 'ESTABLISHED';
    }
    entry.expires = this.now() + this.timeout(entry);
  }

  private timeout(e: CtEntry): number {
    if (e.tcp) return CT_TIMEOUTS.tcp[e.tcp.state];
    if (e.orig.proto === IPPROTO_UDP) return e.seenReply ? CT_TIMEOUTS.udpStream : CT_TIMEOUTS.udp;
    if (e.orig.proto === IPPROTO_ICMP) return CT_TIMEOUTS.icmp;
    return CT_TIMEOUTS.generic;
  }

  /**
   * Records a NAT binding decided by the nat table: the reply tuple's destination (for
   * SNAT) or source (for DNAT) becomes the new address. For SNAT the source port is kept
   * when the resulting reply tuple is free, otherwise the first free port of the range
   * (the kernel's nf_nat_used_tuple / get_unique_tuple).
   */
  bindNat(e: CtEntry, manip: NatManip, ip: string, ports?: [number, number]): void {
    const hasPorts = e.orig.proto === IPPROTO_TCP || e.orig.proto === IPPROTO_UDP || e.orig.proto === IPPROTO_ICMP;
    this.unindex(e);
    const r = { ...e.reply };
    if (manip === 'dst') {
      r.src = ip;
      if (ports && hasPorts && e.orig.proto !== IPPROTO_ICMP) r.sport = ports[0];
      e.dstNat = true;
    } else {
      r.dst = ip;
      if (hasPorts) {
        // For ICMP the id plays the port's role (reply tuple's sport holds it).
        const cur = e.orig.proto === IPPROTO_ICMP ? r.sport : r.dport;
        const [lo, hi] = ports ?? defaultPortRange(cur);
        const set = (p: number) => (e.orig.proto === IPPROTO_ICMP ? (r.sport = p) : (r.dport = p));
        const within = cur >= lo && cur <= hi;
        set(within ? cur : lo);
        if (!this.free(e.zone, r)) {
          for (let p = lo; p <= hi; p++) {
            set(p);
            if (this.free(e.zone, r)) break;
          }
        }
      }
      e.srcNat = true;
    }
    e.reply = r;
    this.index(e);
  }

  private free(zone: number, reply: CtTuple): boolean {
    return !this.byKey.has(key(zone, reply)) && !this.byKey.has(key(zone, invert(reply)));
  }

  private index(e: CtEntry): void {
    this.byKey.set(key(e.zone, e.orig), { entry: e, dir: 'original' });
    this.byKey.set(key(e.zone, e.reply), { entry: e, dir: 'reply' });
    this.byNatKey.set(key(e.zone, invert(e.reply)), { entry: e, dir: 'original' });
    this.byNatKey.set(key(e.zone, invert(e.orig)), { entry: e, dir: 'reply' });
  }

  private unindex(e: CtEntry): void {
    for (const [map, t] of [
      [this.byKey, e.orig],
      [this.byKey, e.reply],
      [this.byNatKey, invert(e.reply)],
      [this.byNatKey, invert(e.orig)],
    ] as const) {
      const k = key(e.zone, t);
      if (map.get(k)?.entry === e) map.delete(k);
    }
  }

  remove(e: CtEntry): void {
    if (!this.all.delete(e)) return;
    this.unindex(e);
  }

  private gc(): void {
    const now = this.now();
    for (const e of this.all) if (e.expires <= now) this.remove(e);
  }
}

function isPureSyn(f: Frame): boolean {
  return f.l4?.kind === 'tcp' && !!f.l4.flags.syn && !f.l4.flags.ack;
}

/** nf_nat's default source-port ranges: keep privileged ports privileged. */
function defaultPortRange(port: number): [number, number] {
  if (port < 512) return [1, 511];
  if (port < 1024) return [600, 1023];
  return [1024, 65535];
}
