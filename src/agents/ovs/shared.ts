// Values the OVS agents of one process share by content: in an emulated cloud a thousand
// hosts hear the same member lists and l2population entries, and keeping one copy of each
// saves the memory and lets what is built from them (memoized by identity) be built once.

import type { FdbEntries } from '../../rpc/messages.js';

/**
 * Values by content for as long as anything holds them: a cloud coming up passes through
 * thousands of member lists, and a bounded memo would forget the one its hosts share.
 */
export class ContentMemo<T extends object> {
  private readonly refs = new Map<string, WeakRef<T>>();
  private readonly gone = new FinalizationRegistry<string>((key) => {
    if (this.refs.get(key)?.deref() === undefined) this.refs.delete(key);
  });

  get(key: string, make: () => T): T {
    const have = this.refs.get(key)?.deref();
    if (have) return have;
    const out = make();
    this.refs.set(key, new WeakRef(out));
    this.gone.register(out, key);
    return out;
  }
}

type PeerList = FdbEntries[string]['ports'][string];
const peerLists = new ContentMemo<PeerList>();
/**
 * The list held for a frozen list seen before, and its peer: on the in-process bus a host's
 * full FDB is the server's frozen lists, the same arrays for every host (the server keeps a
 * host's list while it is unchanged, views.ts), so one content key serves them all. Only
 * frozen lists: a cast's additions make a new array per host, and an entry each was a weak
 * map growing by a host per cast.
 */
const seen = new WeakMap<PeerList, { ip: string; held: PeerList }>();

/** The list `internPeerList` holds for this frozen list of this peer, if it was given it before. */
export function heldPeerList(ip: string, list: PeerList): PeerList | undefined {
  const s = seen.get(list);
  return s?.ip === ip ? s.held : undefined;
}

/**
 * A peer's l2population entry list, the same array for the same peer and entries: the flows
 * of a peer are memoized on it (flows.ts), so equal lists of different hosts share them.
 */
export function internPeerList(ip: string, list: PeerList): PeerList {
  const known = heldPeerList(ip, list);
  if (known) return known;
  let key = ip;
  for (const [mac, addr] of list) key += ` ${mac}|${addr}`;
  const held = peerLists.get(key, () => list);
  if (Object.isFrozen(list)) seen.set(list, { ip, held });
  return held;
}
