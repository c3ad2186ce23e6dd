// ipset: named sets of addresses that `-m set --match-set` consults. Neutron's OVS hybrid
// firewall keeps one `hash:net` set per (remote security group, ethertype), filled with
// `ipset restore -exist` and replaced atomically with `swap` (ipset_manager.py).
//
// Like the real `ipset restore`, lines are applied one by one and the first error stops the
// restore (earlier lines stay applied); the error quotes the line and its number.

import ipaddr from 'ipaddr.js';
import { parseIpv4, formatIpv4, prefixMask } from './addr.js';

export type IpsetType = 'hash:ip' | 'hash:net';
export type IpsetFamily = 'inet' | 'inet6';

export class IpsetError extends Error {
  constructor(
    message: string,
    readonly line?: number,
    readonly text?: string,
  ) {
    super(line !== undefined ? `ipset restore: line ${line}: ${message}: ${text}` : message);
    this.name = 'IpsetError';
  }
}

type Key = number | bigint;

/** A member in canonical form: the network (or address) and its prefix length. */
interface Member {
  key: bigint; // network address, masked
  len: number;
}

/** The content of a set; `swap` exchanges contents, leaving rules bound to the names. */
interface IpsetData {
  type: IpsetType;
  family: IpsetFamily;
  hashsize: number;
  maxelem: number;
  /**
   * prefix length -> networks of that length (kernel hash:net keeps one lookup per cidr).
   * Keys are numbers for inet (cheap per-packet lookups), bigints for inet6.
   */
  byLen: Map<number, Set<Key>>;
  /** prefix lengths present, longest first. */
  lens: number[];
  size: number;
}

const BITS: Record<IpsetFamily, number> = { inet: 32, inet6: 128 };

function parseAddr(text: string, family: IpsetFamily): bigint | undefined {
  if (family === 'inet') {
    const n = parseIpv4(text);
    return n === undefined ? undefined : BigInt(n);
  }
  if (!ipaddr.IPv6.isValid(text)) return undefined;
  let v = 0n;
  for (const b of ipaddr.IPv6.parse(text).toByteArray()) v = (v << 8n) | BigInt(b);
  return v;
}

function formatAddr(v: bigint, family: IpsetFamily): string {
  if (family === 'inet') return formatIpv4(Number(v));
  const bytes: number[] = [];
  for (let i = 15; i >= 0; i--) bytes.push(Number((v >> BigInt(i * 8)) & 255n));
  return ipaddr.fromByteArray(bytes).toString();
}

function maskOf(len: number, family: IpsetFamily): bigint {
  const bits = BigInt(BITS[family]);
  return len === 0 ? 0n : ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(len))) - 1n);
}

export class Ipset {
  constructor(
    readonly name: string,
    public data: IpsetData,
  ) {}

  get type(): IpsetType {
    return this.data.type;
  }
  get family(): IpsetFamily {
    return this.data.family;
  }
  get size(): number {
    return this.data.size;
  }

  /** Membership of one address (what the kernel's set match does). */
  has(ip: string): boolean {
    const d = this.data;
    if (d.family === 'inet') {
      // Fast path: IPv4 packets are what the emulated dataplane carries.
      const n = parseIpv4(ip);
      if (n === undefined) return false;
      for (const len of d.lens) {
        if (d.byLen.get(len)!.has((n & prefixMask(len)) >>> 0)) return true;
      }
      return false;
    }
    const v = parseAddr(ip, d.family);
    if (v === undefined) return false;
    for (const len of d.lens) if (d.byLen.get(len)!.has(v & maskOf(len, d.family))) return true;
    return false;
  }

  /** Members as `ipset save` prints them, in address order. */
  members(): string[] {
    const d = this.data;
    const full = BITS[d.family];
    const all: { key: bigint; len: number }[] = [];
    for (const [len, keys] of d.byLen) for (const k of keys) all.push({ key: BigInt(k), len });
    all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.len - b.len));
    return all.map((m) => (m.len === full ? formatAddr(m.key, d.family) : `${formatAddr(m.key, d.family)}/${m.len}`));
  }
}

function emptyData(type: IpsetType, family: IpsetFamily, hashsize: number, maxelem: number): IpsetData {
  return { type, family, hashsize, maxelem, byLen: new Map(), lens: [], size: 0 };
}

/** The ipsets of one network namespace. */
export class Ipsets {
  private sets = new Map<string, Ipset>();
  /** Set by the owning Netfilter: a set that rules reference cannot be destroyed. */
  inUse: (name: string) => boolean = () => false;

  get(name: string): Ipset | undefined {
    return this.sets.get(name);
  }

  names(): string[] {
    return [...this.sets.keys()];
  }

  /** Whether `ip` is a member of set `name`; an unknown set is an error, not a silent miss. */
  has(name: string, ip: string): boolean {
    const s = this.sets.get(name);
    if (!s) throw new IpsetError(`The set with the given name does not exist: ${name}`);
    return s.has(ip);
  }

  /** Applies `ipset restore` input. `exist` is the `-exist` command-line flag. */
  restore(text: string, opts: { exist?: boolean } = {}): void {
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i].trim();
      if (raw === '' || raw.startsWith('#')) continue;
      try {
        this.command(raw, opts.exist ?? false);
      } catch (e) {
        if (e instanceof IpsetError && e.line === undefined) throw new IpsetError(e.message, i + 1, raw);
        throw e;
      }
    }
  }

  /**
   * Deletes then adds members of one set, as `ipset restore` of `del`/`add` lines does (a
   * member change reaches every host of a group: no text to make and parse per host).
   */
  update(name: string, del: readonly string[], add: readonly string[]): void {
    for (const m of del) this.del(name, m, false, []);
    for (const m of add) this.add(name, m, false, []);
  }

  /** One ipset command, as on the `ipset` command line without the program name. */
  command(line: string, exist = false): void {
    const words: string[] = [];
    for (const w of line.split(/\s+/).filter((x) => x !== '')) {
      if (w === '-exist' || w === '-!') exist = true;
      else if (w.startsWith('-') && !/^-[NADFXWE]$/.test(w)) throw new IpsetError(`unsupported option "${w}"`);
      else words.push(w);
    }
    const [cmd, ...args] = words;
    switch (cmd) {
      case 'create':
      case 'n':
      case '-N':
        return this.create(args, exist);
      case 'add':
      case 'a':
      case '-A':
        return this.add(need(args, 0, 'set name'), need(args, 1, 'entry'), exist, args.slice(2));
      case 'del':
      case 'd':
      case '-D':
        return this.del(need(args, 0, 'set name'), need(args, 1, 'entry'), exist, args.slice(2));
      case 'flush':
      case 'f':
      case '-F':
        return this.flush(args[0]);
      case 'destroy':
      case 'x':
      case '-X':
        return this.destroy(args[0]);
      case 'swap':
      case 'w':
      case '-W':
        return this.swap(need(args, 0, 'from set'), need(args, 1, 'to set'));
      case 'rename':
      case 'e':
      case '-E':
        return this.rename(need(args, 0, 'from set'), need(args, 1, 'to set'));
      default:
        throw new IpsetError(`unsupported command "${cmd}"`);
    }
  }

  private create(args: string[], exist: boolean): void {
    const name = need(args, 0, 'set name');
    const type = need(args, 1, 'set type');
    if (type !== 'hash:ip' && type !== 'hash:net') throw new IpsetError(`unsupported set type "${type}"`);
    let family: IpsetFamily = 'inet';
    let hashsize = 1024;
    let maxelem = 65536;
    for (let i = 2; i < args.length; i += 2) {
      const opt = args[i];
      const val = args[i + 1];
      if (val === undefined) throw new IpsetError(`option "${opt}" needs a value`);
      switch (opt) {
        case 'family':
          if (val !== 'inet' && val !== 'inet6') throw new IpsetError(`unsupported family "${val}"`);
          family = val;
          break;
        case 'hashsize':
          hashsize = positive(opt, val);
          break;
        case 'maxelem':
          maxelem = positive(opt, val);
          break;
        case 'bucketsize':
        case 'initval':
          // Hash-table tuning that `ipset save` prints; no effect on membership.
          break;
        default:
          throw new IpsetError(`unsupported create option "${opt}"`);
      }
    }
    if (name.length > 31) throw new IpsetError(`set name "${name}" is longer than 31 characters`);
    const existing = this.sets.get(name);
    if (existing) {
      if (exist && existing.type === type && existing.family === family) return;
      throw new IpsetError(`Set cannot be created: set with the same name already exists: ${name}`);
    }
    this.sets.set(name, new Ipset(name, emptyData(type, family, hashsize, maxelem)));
  }

  private mustGet(name: string): Ipset {
    const s = this.sets.get(name);
    if (!s) throw new IpsetError(`The set with the given name does not exist: ${name}`);
    return s;
  }

  private entries(set: Ipset, entry: string, extra: string[]): Member[] {
    if (extra.length) throw new IpsetError(`unsupported entry option "${extra[0]}"`);
    const d = set.data;
    const full = BITS[d.family];
    if (entry.includes('-')) throw new IpsetError(`unsupported address range "${entry}"`);
    const slash = entry.indexOf('/');
    const addr = parseAddr(slash < 0 ? entry : entry.slice(0, slash), d.family);
    const lenText = slash < 0 ? String(full) : entry.slice(slash + 1);
    const len = /^\d{1,3}$/.test(lenText) ? Number(lenText) : NaN;
    if (addr === undefined || !(len >= 0 && len <= full)) {
      throw new IpsetError(`invalid ${d.family} entry "${entry}"`);
    }
    if (d.type === 'hash:net') {
      if (len === 0) throw new IpsetError(`hash:net cannot hold a /0 network: "${entry}"`);
      return [{ key: addr & maskOf(len, d.family), len }];
    }
    // hash:ip stores single addresses; a network is expanded into its addresses.
    if (len === full) return [{ key: addr, len: full }];
    const count = 1n << BigInt(full - len);
    if (count > BigInt(d.maxelem)) throw new IpsetError(`entry "${entry}" expands beyond maxelem`);
    const base = addr & maskOf(len, d.family);
    const out: Member[] = [];
    for (let i = 0n; i < count; i++) out.push({ key: base + i, len: full });
    return out;
  }

  private add(name: string, entry: string, exist: boolean, extra: string[]): void {
    const set = this.mustGet(name);
    const d = set.data;
    for (const m of this.entries(set, entry, extra)) {
      const key = toKey(m.key, d.family);
      let bucket = d.byLen.get(m.len);
      if (bucket?.has(key)) {
        if (exist) continue;
        throw new IpsetError(`Element cannot be added to the set: it's already added: ${name} ${entry}`);
      }
      if (d.size >= d.maxelem) throw new IpsetError(`Hash is full, cannot add more elements: ${name}`);
      if (!bucket) {
        bucket = new Set();
        d.byLen.set(m.len, bucket);
        d.lens = [...d.byLen.keys()].sort((a, b) => b - a);
      }
      bucket.add(key);
      d.size++;
    }
  }

  private del(name: string, entry: string, exist: boolean, extra: string[]): void {
    const set = this.mustGet(name);
    const d = set.data;
    for (const m of this.entries(set, entry, extra)) {
      const key = toKey(m.key, d.family);
      const bucket = d.byLen.get(m.len);
      if (!bucket?.has(key)) {
        if (exist) continue;
        throw new IpsetError(`Element cannot be deleted from the set: it's not added: ${name} ${entry}`);
      }
      bucket.delete(key);
      d.size--;
      if (bucket.size === 0) {
        d.byLen.delete(m.len);
        d.lens = [...d.byLen.keys()].sort((a, b) => b - a);
      }
    }
  }

  flush(name?: string): void {
    const targets = name === undefined ? [...this.sets.values()] : [this.mustGet(name)];
    for (const s of targets) s.data = emptyData(s.data.type, s.data.family, s.data.hashsize, s.data.maxelem);
  }

  destroy(name?: string): void {
    const targets = name === undefined ? [...this.sets.keys()] : [this.mustGet(name).name];
    for (const n of targets) {
      if (this.inUse(n)) throw new IpsetError(`Set cannot be destroyed: it is in use by a kernel component: ${n}`);
    }
    for (const n of targets) this.sets.delete(n);
  }

  /** Exchanges the contents of two sets: rules that name `a` now see what `b` held. */
  swap(a: string, b: string): void {
    const sa = this.mustGet(a);
    const sb = this.mustGet(b);
    if (sa.type !== sb.type || sa.family !== sb.family) {
      throw new IpsetError(`The sets cannot be swapped: their type does not match: ${a} ${b}`);
    }
    [sa.data, sb.data] = [sb.data, sa.data];
  }

  private rename(from: string, to: string): void {
    const s = this.mustGet(from);
    if (this.sets.has(to)) throw new IpsetError(`Set cannot be renamed: a set with the new name already exists: ${to}`);
    if (this.inUse(from)) throw new IpsetError(`Set cannot be renamed: it is in use by a kernel component: ${from}`);
    this.sets.delete(from);
    this.sets.set(to, new Ipset(to, s.data));
  }

  /** `ipset save` output, sets in name order. */
  save(): string {
    const out: string[] = [];
    for (const name of [...this.sets.keys()].sort()) {
      const s = this.sets.get(name)!;
      const d = s.data;
      out.push(`create ${name} ${d.type} family ${d.family} hashsize ${d.hashsize} maxelem ${d.maxelem}`);
      for (const m of s.members()) out.push(`add ${name} ${m}`);
    }
    return out.join('\n') + (out.length ? '\n' : '');
  }
}

function toKey(v: bigint, family: IpsetFamily): Key {
  return family === 'inet' ? Number(v) : v;
}

function need(args: string[], i: number, what: string): string {
  const v = args[i];
  if (v === undefined) throw new IpsetError(`missing ${what}`);
  return v;
}

function positive(opt: string, val: string): number {
  if (!/^\d+$/.test(val) || Number(val) === 0) throw new IpsetError(`invalid value "${val}" for ${opt}`);
  return Number(val);
}
