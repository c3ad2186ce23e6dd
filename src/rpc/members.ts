// A security group's member addresses on the wire: whole (`member_ips`), or as a change
// since the server's last announcement of the group (`member_changes`) with the digest of
// the set it leads to. A group of ten thousand ports announced whole to a thousand hosts is
// over a hundred megabytes per port; the change is a few addresses. The digest lets an agent
// whose list went its own way (a fetch that raced with the change, a second server) notice
// and fetch the group again.

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

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
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
