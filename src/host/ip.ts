// Address parsing for validation and naming: strict forms only (dotted-quad IPv4 without
// leading zeros, IPv6 as ipaddr.js accepts it), because these strings end up verbatim in
// `ip`, `ovs-vsctl` and dnsmasq arguments.
import ipaddr from 'ipaddr.js';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(s: string): boolean {
  return IPV4.test(s);
}

export function isIpv6(s: string): boolean {
  return s.includes(':') && ipaddr.IPv6.isValid(s) && !s.includes('%');
}

export function isIp(s: string): boolean {
  return isIpv4(s) || isIpv6(s);
}

export function ipFamily(s: string): 4 | 6 | undefined {
  return isIpv4(s) ? 4 : isIpv6(s) ? 6 : undefined;
}

/** `10.0.0.1/24` or `fe80::1/64` (host bits allowed: it is an interface address). */
export function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const ip = s.slice(0, slash);
  const len = s.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(len)) return false;
  const n = Number(len);
  if (isIpv4(ip)) return n <= 32;
  if (isIpv6(ip)) return n <= 128;
  return false;
}

/** A CIDR whose host bits are all zero (a route destination, a subnet). */
export function isNetworkCidr(s: string): boolean {
  if (!isCidr(s)) return false;
  const [ip, len] = s.split('/');
  const parsed = ipaddr.parse(ip);
  const bytes = parsed.toByteArray();
  let bits = Number(len);
  for (const b of bytes) {
    const keep = bits >= 8 ? 8 : bits < 0 ? 0 : bits;
    bits -= 8;
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    if ((b & ~mask & 0xff) !== 0) return false;
  }
  return true;
}

/** The address part of a CIDR. */
export function cidrIp(cidr: string): string {
  const slash = cidr.indexOf('/');
  return slash < 0 ? cidr : cidr.slice(0, slash);
}

/** The 32-bit unsigned integer of a dotted-quad IPv4 address. */
export function ipv4ToInt(s: string): number {
  if (!isIpv4(s)) throw new Error(`Not an IPv4 address: "${s}"`);
  return s.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Lower-case colon-separated MAC, as `ip link` prints it. */
export function isMac(s: string): boolean {
  return MAC.test(s);
}
