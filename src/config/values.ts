// Value syntax of oslo.config types (oslo_config/types.py) and of the Neutron option formats
// built on them (ranges, mappings, MACs). Each parser returns a reason string on bad input;
// the caller turns it into a ConfigError naming file, section and option.
import { isIP } from 'node:net';

const TRUE_VALUES = new Set(['true', '1', 'on', 'yes']);
const FALSE_VALUES = new Set(['false', '0', 'off', 'no']);

export function parseBool(s: string): boolean | undefined {
  const v = s.trim().toLowerCase();
  if (TRUE_VALUES.has(v)) return true;
  if (FALSE_VALUES.has(v)) return false;
  return undefined;
}

/** A decimal integer (optional sign), as Python's int() takes it; undefined otherwise. */
export function parseInteger(s: string): number | undefined {
  const v = s.trim();
  if (!/^[+-]?\d+$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** oslo ListOpt: comma separated, items trimmed, a trailing comma ignored; empty items dropped. */
export function parseList(s: string): string[] {
  const v = s.trim().replace(/,+$/, '');
  if (!v) return [];
  return v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

/** Why `value` does not fit `spec` (see OptionSpec in known.ts), or undefined when it does. */
export function checkSpec(spec: string, value: string): string | undefined {
  if (spec === 'bool') {
    return parseBool(value) === undefined ? 'not a boolean (use true/false, yes/no, on/off, 1/0)' : undefined;
  }
  if (spec === 'port') return checkInt(value, 0, 65535, 'not a port number (0-65535)');
  if (spec === 'int' || spec.startsWith('int:')) {
    const [, lo, hi] = spec.split(':');
    return checkInt(value, lo ? Number(lo) : undefined, hi ? Number(hi) : undefined);
  }
  if (spec === 'float') {
    const v = value.trim();
    return v !== '' && Number.isFinite(Number(v)) ? undefined : 'not a number';
  }
  if (spec.startsWith('choice:')) {
    const choices = spec.slice('choice:'.length).split('|');
    return choices.includes(value) ? undefined : `must be one of: ${choices.join(', ')}`;
  }
  return undefined;
}

export function checkInt(value: string, min?: number, max?: number, what = 'not an integer'): string | undefined {
  const n = parseInteger(value);
  if (n === undefined) return what;
  if (min !== undefined && n < min) return `must be at least ${min}`;
  if (max !== undefined && n > max) return `must be at most ${max}`;
  return undefined;
}

/** "MIN:MAX" with both ends inside [lo, hi] (Neutron's tunnel id / VNI / VLAN ranges). */
export function parseRange(item: string, lo: number, hi: number, what: string): [number, number] | string {
  const parts = item.split(':');
  if (parts.length !== 2) return `'${item}' is not a range of the form MIN:MAX`;
  const a = parseInteger(parts[0]);
  const b = parseInteger(parts[1]);
  if (a === undefined || b === undefined) return `'${item}': range ends must be integers`;
  for (const n of [a, b]) {
    if (n < lo || n > hi) return `'${item}': ${n} is not a valid ${what} (valid: ${lo}-${hi})`;
  }
  if (a > b) return `'${item}': range start ${a} is greater than range end ${b}`;
  return [a, b];
}

/**
 * Neutron's MAC_PATTERN for base_mac: six hex octets, and the first octet even (a unicast
 * address: the multicast bit is the low bit of the first octet).
 */
export function checkBaseMac(mac: string): string | undefined {
  if (!/^[0-9a-fA-F][aceACE02468](:[0-9a-fA-F]{2}){5}$/.test(mac)) {
    return 'not a unicast MAC address of the form xx:xx:xx:xx:xx:xx (first octet even)';
  }
  return undefined;
}

/**
 * The fixed prefix of a base MAC: the first 3 octets, and the 4th too when it is not 00
 * (Neutron randomises the rest). Two base MACs can collide when one prefix starts the other.
 */
export function baseMacPrefix(mac: string): string[] {
  const octets = mac.toLowerCase().split(':');
  return octets[3] === '00' ? octets.slice(0, 3) : octets.slice(0, 4);
}

export function macPrefixesOverlap(a: string, b: string): boolean {
  const pa = baseMacPrefix(a);
  const pb = baseMacPrefix(b);
  const n = Math.min(pa.length, pb.length);
  return pa.slice(0, n).join(':') === pb.slice(0, n).join(':');
}

/** oslo HostAddress: an IPv4/IPv6 address or a host name (RFC 1123 labels). */
export function checkHostAddress(s: string): string | undefined {
  if (isIP(s)) return undefined;
  const label = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
  if (s.length > 0 && s.length <= 253 && s.replace(/\.$/, '').split('.').every((l) => label.test(l))) {
    return undefined;
  }
  return 'not an IP address or host name';
}

export function checkIpAddress(s: string): string | undefined {
  return isIP(s) ? undefined : 'not an IP address';
}

/**
 * Neutron's parse_mappings ("key:value" items; keys unique, values unique): e.g.
 * bridge_mappings = vlan:br-vlan,external:br-ex.
 */
export function parseMappings(items: string[], what: string): Array<[string, string]> | string {
  const out: Array<[string, string]> = [];
  for (const item of items) {
    const parts = item.split(':');
    if (parts.length !== 2) return `invalid mapping '${item}' (expected ${what})`;
    const key = parts[0].trim();
    const value = parts[1].trim();
    if (!key) return `missing key in mapping '${item}'`;
    if (!value) return `missing value in mapping '${item}'`;
    if (out.some(([k]) => k === key)) return `key '${key}' in mapping '${item}' is not unique`;
    if (out.some(([, v]) => v === value)) return `value '${value}' in mapping '${item}' is not unique`;
    out.push([key, value]);
  }
  return out;
}
