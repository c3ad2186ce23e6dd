// Attribute validators and converters, after neutron_lib/api/validators.py: each takes the
// raw JSON value and returns the converted value or throws "Invalid input for <attr>".
// Messages follow Neutron's so clients print what operators expect.

import ipaddr from 'ipaddr.js';
import { Faults } from '../common/errors.js';

export type Validator<T = unknown> = (value: unknown, attr: string) => T;

export const fail = (attr: string, reason: string): never => {
  throw Faults.invalidAttribute(attr, reason);
};

export const string =
  (max = 255): Validator<string> =>
  (v, attr) => {
    if (typeof v !== 'string') return fail(attr, `'${JSON.stringify(v)}' is not a valid string`);
    if (v.length > max) return fail(attr, `'${v}' exceeds maximum length of ${max}`);
    return v;
  };

/** Neutron's convert_to_boolean: true/false, "true"/"false" in any case, 0/1. */
export const bool: Validator<boolean> = (v, attr) => {
  if (typeof v === 'boolean') return v;
  if (v === 0 || v === 1) return v === 1;
  if (typeof v === 'string') {
    const s = v.toLowerCase();
    if (s === 'true' || s === '1') return true;
    if (s === 'false' || s === '0') return false;
  }
  return fail(attr, `'${typeof v === 'string' ? v : JSON.stringify(v)}' cannot be converted to boolean`);
};

export const int =
  (min?: number, max?: number): Validator<number> =>
  (v, attr) => {
    const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n)) return fail(attr, `'${JSON.stringify(v)}' is not an integer`);
    if (min !== undefined && n < min) return fail(attr, `'${n}' is too small - must be at least '${min}'`);
    if (max !== undefined && n > max) return fail(attr, `'${n}' is too large - must be no larger than '${max}'`);
    return n;
  };

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
export const uuid: Validator<string> = (v, attr) =>
  typeof v === 'string' && UUID.test(v) ? v.toLowerCase() : fail(attr, `'${String(v)}' is not a valid UUID`);

export const nullable =
  <T>(inner: Validator<T>): Validator<T | null> =>
  (v, attr) =>
    v === null ? null : inner(v, attr);

export const oneOf =
  <T extends string>(...values: T[]): Validator<T> =>
  (v, attr) =>
    values.includes(v as T) ? (v as T) : fail(attr, `'${String(v)}' is not in [${values.map((x) => `'${x}'`).join(', ')}]`);

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;
export const mac: Validator<string> = (v, attr) => {
  if (typeof v !== 'string' || !MAC.test(v)) return fail(attr, `'${String(v)}' is not a valid MAC address`);
  const m = v.toLowerCase();
  if (m === '00:00:00:00:00:00' || m === 'ff:ff:ff:ff:ff:ff' || parseInt(m.slice(0, 2), 16) & 1)
    return fail(attr, `'${v}' is not a valid MAC address`);
  return m;
};

/** A host IP address in canonical text form (IPv4 dotted quad, IPv6 compressed). */
export const ip: Validator<string> = (v, attr) => {
  if (typeof v !== 'string' || !ipaddr.isValid(v) || (v.includes('.') && !ipaddr.IPv4.isValidFourPartDecimal(v) && !v.includes(':')))
    return fail(attr, `'${String(v)}' is not a valid IP address`);
  return ipaddr.parse(v).toString();
};

/** A CIDR, returned as Neutron stores it; host bits set are refused like Neutron's validator. */
export const cidr: Validator<string> = (v, attr) => {
  if (typeof v !== 'string') return fail(attr, `'${JSON.stringify(v)}' is not a valid IP subnet`);
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try {
    parsed = ipaddr.parseCIDR(v);
  } catch {
    return fail(attr, `'${v}' is not a valid IP subnet`);
  }
  const [addr, len] = parsed;
  if (addr.kind() === 'ipv4' && !ipaddr.IPv4.isValidFourPartDecimal(v.split('/')[0]))
    return fail(attr, `'${v}' is not a valid IP subnet`);
  const net = addr.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(v) : ipaddr.IPv6.networkAddressFromCIDR(v);
  if (net.toString() !== addr.toString())
    return fail(attr, `'${v}' isn't a recognized IP subnet cidr, '${net.toString()}/${len}' is recommended`);
  return `${net.toString()}/${len}`;
};

export const list =
  <T>(item: Validator<T>, opts: { unique?: boolean } = {}): Validator<T[]> =>
  (v, attr) => {
    if (!Array.isArray(v)) return fail(attr, `'${JSON.stringify(v)}' is not a list`);
    const out = v.map((x) => item(x, attr));
    if (opts.unique) {
      const seen = new Set(out.map((x) => JSON.stringify(x)));
      if (seen.size !== out.length) return fail(attr, `Duplicate items in the list: '${v.join(', ')}'`);
    }
    return out;
  };

/** A JSON object with known keys: each key's validator, required keys listed. */
export const dict =
  <T extends Record<string, unknown>>(keys: { [K in keyof T]: Validator<T[K]> }, required: (keyof T)[] = []): Validator<T> =>
  (v, attr) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(attr, `'${JSON.stringify(v)}' is not a dictionary`);
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!(k in keys)) return fail(attr, `Unrecognized key '${k}' in ${JSON.stringify(v)}`);
    for (const k of required) if (!(k in o)) return fail(attr, `Validation of dictionary's keys failed. Expected keys: {'${required.join("', '")}'} Provided keys: {'${Object.keys(o).join("', '")}'}`);
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(o)) out[k] = keys[k as keyof T](val, attr);
    return out as T;
  };

/** Any JSON object (binding:profile). */
export const anyDict: Validator<Record<string, unknown>> = (v, attr) =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(attr, `'${JSON.stringify(v)}' is not a dictionary`);

/** For attributes dvrnet knows but does not offer yet: only null (the default) is accepted. */
export const onlyNull =
  (reason: string): Validator<null> =>
  (v, attr) =>
    v === null ? null : fail(attr, reason);
