// A security group's member addresses on the wire: whole (`member_ips`), or as a change
// since the server's last announcement of the group (`member_changes`) with the digest of
// the set it leads to. A group of ten thousand ports announced whole to a thousand hosts is
// over a hundred megabytes per port; the change is a few addresses. The digest lets an agent
// whose list went its own way (a fetch that raced with the change, a second server) notice
// and fetch the group again.

import ipaddr from 'ipaddr.js';
import { cached } from '../common/cache.js';
import { fnv1a } from '../common/hash.js';

/** A group's members by ethertype (as security_group_info_for_devices gives them). */
export interface MemberIps {
  IPv4: string[];
  IPv6: string[];
}

/** What changed in one family: addresses that joined and that left. */
export interface FamilyChange {
  add: string[];
  del: string[];
}

/** A group's members as a change; `digest`: memberDigest of the members after it. */
export interface MemberChange {
  IPv4?: FamilyChange;
  IPv6?: FamilyChange;
  digest: string;
}

/**
 * An order-independent digest of a member set: how many addresses and the sum (mod 2^32) of
 * each one's FNV-1a hash, so the server and an agent agree whatever order they hold them in.
 */
export function memberDigest(m: MemberIps): string {
  let sum = 0;
  for (const family of [m.IPv4, m.IPv6]) for (const ip of family) sum = (sum + fnv1a(ip)) >>> 0;
  return `${m.IPv4.length + m.IPv6.length}:${sum.toString(16)}`;
}

/**
 * The change from `before` to `after`, or undefined when it says more than the members
 * themselves would (send them whole then).
 */
export function memberChange(before: { IPv4: ReadonlySet<string>; IPv6: ReadonlySet<string> }, after: MemberIps): MemberChange | undefined {
  const out: MemberChange = { digest: memberDigest(after) };
  let size = 0;
  for (const family of ['IPv4', 'IPv6'] as const) {
    const now = new Set(after[family]);
    const add = after[family].filter((ip) => !before[family].has(ip));
    const del = [...before[family]].filter((ip) => !now.has(ip));
    if (add.length || del.length) out[family] = { add, del };
    size += add.length + del.length;
  }
  return size < after.IPv4.length + after.IPv6.length ? out : undefined;
}

/**
 * The addresses in the order ipsets list them: IPv4 numerically, then IPv6, anything else
 * after by text. The server sends a group's members in it, so an agent that sorts them finds
 * them in order (and a list equal to one it holds, by its text) at the cost of a pass.
 */
export function sortAddresses(list: readonly string[]): string[] {
  const keyed = list.map((x) => [addrKey(x), x] as const);
  keyed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return keyed.map((k) => k[1]);
}

/**
 * `sorted` (in sortAddresses order) with `add` put in, as sortAddresses([...sorted, ...add])
 * orders them, each found by a binary search: a group of ten thousand members that gains one
 * costs a few keys, not ten thousand.
 */
export function withAddresses(sorted: readonly string[], add: readonly string[]): string[] {
  if (add.length > 32) return sortAddresses([...sorted, ...add]); // many: one sort costs less than many splices
  const out = sorted.slice();
  for (const x of add) {
    const k = addrKey(x);
    let lo = 0;
    let hi = out.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (addrKey(out[mid]) <= k) lo = mid + 1; // after equal keys, as a stable sort keeps them
      else hi = mid;
    }
    out.splice(lo, 0, x);
  }
  return out;
}

const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const hex2 = (n: number) => (n < 16 ? '0' : '') + n.toString(16);

/** A key per address, kept (the thousands of members of a group are sorted again and again). */
function addrKey(x: string): string {
  return cached(ADDR_KEYS, x, 200_000, () => makeKey(x));
}
const ADDR_KEYS = new Map<string, string>();

function makeKey(x: string): string {
  const [addr, len] = x.split('/');
  // Plain dotted-quad IPv4 (nearly every member) without a full parse.
  const q = DOTTED_QUAD.exec(addr);
  if (q) {
    const o = [Number(q[1]), Number(q[2]), Number(q[3]), Number(q[4])];
    if (o.every((n) => n <= 255) && q.slice(1).every((t) => t.length === 1 || t[0] !== '0')) return `0${o.map(hex2).join('')}/${(len ?? '').padStart(3, '0')}`;
  }
  if (!ipaddr.isValid(addr)) return `2${x}`;
  const bytes = ipaddr.parse(addr).toByteArray();
  return `${bytes.length === 4 ? 0 : 1}${bytes.map((b) => b.toString(16).padStart(2, '0')).join('')}/${(len ?? '').padStart(3, '0')}`;
}
