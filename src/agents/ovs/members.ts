// A security group's members as the OVS agent keeps them: each family sorted as ipsets list
// them, one object per content in the process. The hosts of an emulated cloud then hold the
// same objects, and a member change (rpc/members.ts) is applied, sorted and checked once per
// process rather than once per host; what the firewall makes of a list is remembered by its
// identity (firewall.ts). Callers never mutate these lists.

import { memberDigest, sortAddresses, withAddresses, type MemberChange, type MemberIps } from '../../rpc/members.js';
import { ContentMemo } from './shared.js';

/** Family lists sorted here (sortedFamily need not sort them again). */
const sortedLists = new WeakSet<readonly string[]>();
/** Sorted lists by content (as they came, and sorted): hosts that were sent, fetched or made the same thousands of addresses. */
const familiesByContent = new ContentMemo<string[]>();
/** Groups' members made here, by their two (shared) family lists. */
const groups = new WeakMap<readonly string[], WeakMap<readonly string[], MemberIps>>();
const canonicalGroups = new WeakSet<MemberIps>();
/**
 * What a change made of a group's members (null: not what the server has: fetch the group),
 * by the change object: a cast's arguments are one object for every host it goes to, so the
 * first host works it out and the others look it up (no text made of it per host).
 */
const changed = new WeakMap<MemberIps, WeakMap<MemberChange, MemberIps | null>>();
const familySets = new WeakMap<readonly string[], Set<string>>();
const digests = new WeakMap<MemberIps, string>();

/** One family's addresses in sortAddresses order, shared with every equal list. */
export function sortedFamily(list: readonly string[]): string[] {
  if (sortedLists.has(list)) return list as string[];
  return familiesByContent.get(list.join(' '), () => shared(sortAddresses(list)));
}

/** A group's members as the agent keeps them (the same object for the same content). */
export function canonicalMembers(m: MemberIps): MemberIps {
  return canonicalGroups.has(m) ? m : group(sortedFamily(m.IPv4), sortedFamily(m.IPv6));
}

function group(IPv4: string[], IPv6: string[]): MemberIps {
  let byV6 = groups.get(IPv4);
  if (!byV6) groups.set(IPv4, (byV6 = new WeakMap()));
  let g = byV6.get(IPv6);
  if (!g) {
    byV6.set(IPv6, (g = { IPv4, IPv6 }));
    canonicalGroups.add(g);
  }
  return g;
}

/** A sorted list, or the equal one already shared. */
function shared(list: string[]): string[] {
  const out = familiesByContent.get(list.join(' '), () => list);
  sortedLists.add(out);
  return out;
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
  if (!byChange) changed.set(start, (byChange = new WeakMap()));
  let out = byChange.get(change);
  if (out === undefined) {
    // Hosts that came by other histories to the same members meet here again (shared lists).
    const made = group(applyFamily(start.IPv4, change.IPv4), applyFamily(start.IPv6, change.IPv6));
    out = digestOf(made) === change.digest ? made : null;
    byChange.set(change, out);
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
  return shared(withAddresses(del.size ? list.filter((ip) => !del.has(ip)) : list, add));
}

function digestOf(m: MemberIps): string {
  let d = digests.get(m);
  if (d === undefined) digests.set(m, (d = memberDigest(m)));
  return d;
}


