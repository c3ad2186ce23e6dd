// Text <-> number conversions for field values as ovs-ofctl writes them (MACs, dotted quads,
// decimal or 0x-hex integers), with caches for the per-packet Frame <-> key conversions.

import { intToIp } from '../addr.js';

const TWO32 = 2 ** 32;

/** Parses `aa:bb:cc:dd:ee:ff` (any case) to a bigint, or undefined when it is not a MAC. */
export function parseMacBig(text: string): bigint | undefined {
  if (text.length === 17 && /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) return BigInt(`0x${text.replace(/:/g, '')}`);
  if (!/^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){5}$/.test(text)) return undefined;
  let v = 0n;
  for (const p of text.split(':')) v = (v << 8n) | BigInt(parseInt(p, 16));
  return v;
}

export function formatMacBig(v: bigint): string {
  const out: string[] = [];
  for (let i = 5; i >= 0; i--) out.push(Number((v >> BigInt(i * 8)) & 0xffn).toString(16).padStart(2, '0'));
  return out.join(':');
}

export function parseIpv4Big(text: string): bigint | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  let v = 0n;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return undefined;
    v = (v << 8n) | BigInt(o);
  }
  return v;
}

/** Decimal or 0x-hex unsigned integer, as OVS accepts for numeric fields. */
export function parseIntBig(text: string): bigint | undefined {
  if (/^0x[0-9a-fA-F]+$/.test(text)) return BigInt(text);
  if (/^\d+$/.test(text)) return BigInt(text);
  return undefined;
}

export function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

// ---- per-packet caches: a simulation has a bounded set of MACs and addresses in use ----

const macToNum = new Map<string, number>();
const numToMac = new Map<number, string>();
const ipCache = new Map<string, number>();
const ipText = new Map<number, string>();
const CACHE_MAX = 200_000;

/** MAC text -> 48-bit value as a double (exact below 2^53). */
export function macNum(mac: string): number {
  let n = macToNum.get(mac);
  if (n !== undefined) return n;
  const b = parseMacBig(mac);
  if (b === undefined) throw new Error(`Invalid MAC address '${mac}' in frame`);
  n = Number(b);
  if (macToNum.size >= CACHE_MAX) macToNum.clear();
  macToNum.set(mac, n);
  return n;
}

export function macText(hi: number, lo: number): string {
  const n = (hi & 0xffff) * TWO32 + (lo >>> 0);
  let s = numToMac.get(n);
  if (s !== undefined) return s;
  s = formatMacBig(BigInt(n));
  if (numToMac.size >= CACHE_MAX) numToMac.clear();
  numToMac.set(n, s);
  return s;
}

export function macHi(n: number): number {
  return Math.floor(n / TWO32) | 0;
}

export function macLo(n: number): number {
  return n % TWO32 | 0;
}

export function ipNum(ip: string): number {
  let n = ipCache.get(ip);
  if (n !== undefined) return n;
  const b = parseIpv4Big(ip);
  if (b === undefined) throw new Error(`Invalid IPv4 address '${ip}' in frame`);
  n = Number(b) | 0;
  if (ipCache.size >= CACHE_MAX) ipCache.clear();
  ipCache.set(ip, n);
  return n;
}

export function ipTextOf(n: number): string {
  let s = ipText.get(n);
  if (s !== undefined) return s;
  s = intToIp(n >>> 0);
  if (ipText.size >= CACHE_MAX) ipText.clear();
  ipText.set(n, s);
  return s;
}
