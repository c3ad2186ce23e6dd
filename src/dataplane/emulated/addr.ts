// IPv4 addresses as unsigned 32-bit numbers, and prefixes (CIDRs), for routing, ARP and
// tunnel lookups. Frames carry dotted quads (readable in traces); the models convert at the
// point of lookup.

export interface Cidr {
  /** Network address (host bits cleared), unsigned. */
  net: number;
  len: number;
  mask: number;
}

const cache = new Map<string, number>();

/** Parses a dotted quad; throws quoting the text when it is not one. */
export function ipToInt(ip: string): number {
  const hit = cache.get(ip);
  if (hit !== undefined) return hit;
  const parts = ip.split('.');
  if (parts.length !== 4) throw new Error(`Invalid IPv4 address '${ip}'`);
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) throw new Error(`Invalid IPv4 address '${ip}'`);
    const v = Number(p);
    if (v > 255) throw new Error(`Invalid IPv4 address '${ip}'`);
    n = n * 256 + v;
  }
  // Addresses repeat endlessly in a simulation (a few per host); the cache keeps parsing off
  // the per-packet path without growing beyond the addresses actually in use.
  if (cache.size < 100_000) cache.set(ip, n);
  return n;
}

export function intToIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function isIpv4(text: string): boolean {
  try {
    ipToInt(text);
    return true;
  } catch {
    return false;
  }
}

export function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** `10.0.0.0/24`, `10.0.0.5` (= /32) or `default` (= 0.0.0.0/0). Host bits are cleared. */
export function parseCidr(text: string): Cidr {
  if (text === 'default' || text === 'any') return { net: 0, len: 0, mask: 0 };
  const slash = text.indexOf('/');
  const ip = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? '32' : text.slice(slash + 1);
  if (!/^\d{1,2}$/.test(lenText) || Number(lenText) > 32) throw new Error(`Invalid IPv4 prefix '${text}'`);
  const len = Number(lenText);
  let addr: number;
  try {
    addr = ipToInt(ip);
  } catch {
    throw new Error(`Invalid IPv4 prefix '${text}'`);
  }
  const mask = maskOf(len);
  return { net: (addr & mask) >>> 0, len, mask };
}

export function cidrText(c: Cidr): string {
  return c.len === 0 ? 'default' : c.len === 32 ? intToIp(c.net) : `${intToIp(c.net)}/${c.len}`;
}

export function inCidr(ip: number, c: Cidr): boolean {
  return ((ip & c.mask) >>> 0) === c.net;
}

/** `192.168.1.1/24` -> address and prefix length, keeping the host bits. */
export function parseIfAddr(text: string): { ip: number; len: number } {
  const slash = text.indexOf('/');
  if (slash < 0) throw new Error(`Invalid interface address '${text}': expected address/prefixlen`);
  const c = parseCidr(text); // validates
  return { ip: ipToInt(text.slice(0, slash)), len: c.len };
}

/** Deterministic MAC from a seed text, in the OpenStack range fa:16:3e (for devices built without one). */
export function macFromSeed(seed: string, prefix = 'fa:16:3e'): string {
  let h = 2166136261;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  h >>>= 0;
  const b = [(h >>> 16) & 255, (h >>> 8) & 255, h & 255].map((x) => x.toString(16).padStart(2, '0'));
  return `${prefix}:${b.join(':')}`;
}

export function normalizeMac(mac: string): string {
  const m = mac.toLowerCase();
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(m)) throw new Error(`Invalid MAC address '${mac}'`);
  return m;
}
