// A security group's members as the OVS agent keeps them: each family sorted as ipsets list
// them, one object per content in the process. The hosts of an emulated cloud then hold the
// same objects, and a member change (rpc/members.ts) is applied, sorted and checked once per
// process rather than once per host; what the firewall makes of a list is remembered by its
// identity (firewall.ts). Callers never mutate these lists.

import { memberDigest, type MemberChange, type MemberIps } from '../../rpc/members.js';
import { sortAddresses } from './firewall-rules.js';

/** Family lists sorted here (sortedFamily need not sort them again). */
const sortedLists = new WeakSet<readonly string[]>();
/** Sorted lists by content: hosts that fetched or were sent the same thousands of addresses. */
const sortedByContent = new Map<string, string[]>();
/** Groups' members made here, by content. */
const groupsByContent = new Map<string, MemberIps>();
const canonicalGroups = new WeakSet<MemberIps>();
/** What a change made of a group's members (null: not what the server has: fetch the group). */
const changed = new WeakMap<MemberIps, Map<string, MemberIps | null>>();
const familySets = new WeakMap<readonly string[], Set<string>>();
const digests = new WeakMap<MemberIps, string>();
const MEMO_MAX = 256;

/** One family's addresses in compareAddresses order, shared with every equal list. */
export function sortedFamily(list: readonly string[]): string[] {
  if (sortedLists.has(list)) return list as string[];
  if (list.length < 16) return sortAddresses(list);
  return remember(sortedByContent, list.join(' '), () => sorted(sortAddresses(list)));
}

/** A group's members as the agent keeps them (the same object for the same content). */
export function canonicalMembers(m: MemberIps): MemberIps {
  if (canonicalGroups.has(m)) return m;
  const make = () => {
    const out = { IPv4: sortedFamily(m.IPv4), IPv6: sortedFamily(m.IPv6) };
    canonicalGroups.add(out);
    return out;
  };
  if (m.IPv4.length + m.IPv6.length < 16) return make();
  return remember(groupsByContent, `${m.IPv4.join(' ')}|${m.IPv6.join(' ')}`, make);
}

/**
 * The members after `change`, or undefined when they are not the ones the server announced
 * (the digest differs): the agent's list went its own way and the group is fetched again.
 * Adding a present address or removing an absent one changes nothing, so a change that
 * arrives after a fetch which already saw it does no harm.
 */
export function applyMemberChange(base: MemberIps, change: MemberChange): MemberIps | undefined {
  const start = canonicalMembers(base);
  let byChange = changed.get(start);
  if (!byChange) changed.set(start, (byChange = new Map()));
  const key = JSON.stringify(change);
  let out = byChange.get(key);
  if (out === undefined) {
    const next = { IPv4: applyFamily(start.IPv4, change.IPv4), IPv6: applyFamily(start.IPv6, change.IPv6) };
    const made = next.IPv4 === start.IPv4 && next.IPv6 === start.IPv6 ? start : next;
    canonicalGroups.add(made);
    out = digestOf(made) === change.digest ? made : null;
    byChange.set(key, out);
  }
  return out ?? undefined;
}

function applyFamily(list: string[], c: { add: string[]; del: string[] } | undefined): string[] {
  if (!c || (!c.add.length && !c.del.length)) return list;
  let set = familySets.get(list);
  if (!set) familySets.set(list, (set = new Set(list)));
  const del = new Set(c.del.filter((ip) => set.has(ip)));
  const add = [...new Set(c.add.filter((ip) => !set.has(ip)))];
  if (!del.size && !add.length) return list;
  return sorted(sortAddresses([...(del.size ? list.filter((ip) => !del.has(ip)) : list), ...add]));
}

function digestOf(m: MemberIps): string {
  let d = digests.get(m);
  if (d === undefined) digests.set(m, (d = memberDigest(m)));
  return d;
}

function sorted(list: string[]): string[] {
  sortedLists.add(list);
  return list;
}

function remember<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let out = cache.get(key);
  if (out === undefined) {
    if (cache.size >= MEMO_MAX) cache.clear();
    cache.set(key, (out = make()));
  }
  return out;
}
