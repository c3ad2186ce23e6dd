// Address helpers for netfilter: IPv4 addresses as unsigned 32-bit numbers so that rule
// matching is a mask-and-compare, and interface-name patterns with iptables' `+` wildcard.

/** Parses a dotted quad into an unsigned 32-bit number; undefined when it is not one. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n >>> 0;
}

export function formatIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function prefixMask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

export interface Ipv4Net {
  addr: number; // already masked
  mask: number;
  len: number;
}

/**
 * Parses `a.b.c.d`, `a.b.c.d/len` or `a.b.c.d/m.m.m.m` (iptables accepts all three).
 * Returns undefined for anything else, so callers can quote the input in their error.
 */
export function parseIpv4Net(text: string): Ipv4Net | undefined {
  const slash = text.indexOf('/');
  const ip = parseIpv4(slash < 0 ? text : text.slice(0, slash));
  if (ip === undefined) return undefined;
  let len = 32;
  if (slash >= 0) {
    const m = text.slice(slash + 1);
    if (/^\d{1,2}$/.test(m)) {
      len = Number(m);
      if (len > 32) return undefined;
    } else {
      const dotted = parseIpv4(m);
      if (dotted === undefined) return undefined;
      // Only contiguous masks are meaningful as prefixes.
      const inv = ~dotted >>> 0;
      if ((inv & (inv + 1)) !== 0) return undefined;
      len = 32 - Math.log2(inv + 1);
    }
  }
  const mask = prefixMask(len);
  return { addr: (ip & mask) >>> 0, mask, len };
}

export function inNet(ip: number, net: Ipv4Net): boolean {
  return ((ip & net.mask) >>> 0) === net.addr;
}

/**
 * An interface name as iptables compares it: exact, or a prefix when it ends in `+`
 * (`qr-+` matches every qr- device; a lone `+` matches any name).
 */
export type IfacePattern = { exact: string } | { prefix: string };

export function parseIfacePattern(text: string): IfacePattern {
  return text.endsWith('+') ? { prefix: text.slice(0, -1) } : { exact: text };
}

export function ifaceMatches(name: string | undefined, p: IfacePattern): boolean {
  const n = name ?? '';
  return 'exact' in p ? n === p.exact : n.startsWith(p.prefix);
}
