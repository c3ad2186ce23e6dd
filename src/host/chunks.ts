// Unordered collections held as the immutable chunks they were built from.
//
// A host's flows and neighbours are unordered collections (state.ts), and a big host's are
// tens of thousands long: one per peer per network. Builders make them from pieces that stay
// the same object while their content does (one network's entries of one peer, one subnet's
// neighbours). `joinChunks` puts such pieces together as a `ChunkList`, a tree of the pieces
// themselves, never copied into one flat array: a pass that changed one peer's flows makes a
// new list of a network's pieces and a new list of the bridge's networks, not a new array of
// every flow. `diff` and `validate` skip every piece the previous state shares by identity
// and look only at the pieces that changed (`changedParts`): a pass then costs what changed,
// not what the host holds. A list is JSON as the flat array of its elements (`toJSON`); a
// state read back or parsed holds plain arrays, which are one chunk of themselves.

/** An unordered collection: a plain array, or a `ChunkList` of arrays and lists. */
export type Items<T> = readonly T[] | ChunkList<T>;

/** The elements of a collection as one array (the array itself when it is one): for the few that need it whole. */
export function itemsOf<T>(x: Items<T>): readonly T[] {
  return isChunkList(x) ? x.toArray() : x;
}

export const isChunkList = <T>(x: Items<T>): x is ChunkList<T> => x instanceof ChunkList;

/** Immutable: built once from its parts (none empty, at least two), never changed. */
export class ChunkList<T> implements Iterable<T> {
  readonly length: number;
  /**
   * What `validate` learned of the list (its elements' key hashes), kept on the list: in a
   * weak map, a thousand hosts' lists of every pass stayed as entries until a full collection.
   * (Private: two lists of the same elements are equal whatever was learned of them.)
   */
  #validated: unknown;
  get validated(): unknown {
    return this.#validated;
  }
  set validated(v: unknown) {
    this.#validated = v;
  }

  constructor(readonly parts: ReadonlyArray<Items<T>>) {
    let n = 0;
    for (const p of parts) n += p.length;
    this.length = n;
  }

  /** Every element, in order: a new array each time (what wants them all is rare). */
  toArray(): T[] {
    const out = new Array<T>(this.length);
    let i = 0;
    for (const l of leaves(this.parts)) for (let k = 0; k < l.length; k++) out[i++] = l[k];
    return out;
  }

  [Symbol.iterator](): Iterator<T> {
    return this.toArray()[Symbol.iterator]();
  }

  /** JSON is the flat array: a saved state reads back as plain arrays. */
  toJSON(): T[] {
    return this.toArray();
  }
}

/**
 * The parts together, in order; empty ones dropped; a single part left is returned as it is
 * (the composer merging a bridge that one fragment fills: nothing new). `last`, a list joined
 * before, is returned itself when it was joined from the very same parts (a builder's previous
 * result: the whole list then stays the same object). Parts that are lists stay lists (a tree):
 * a network's flows change as one part of the bridge's.
 */
export function joinChunks<T>(parts: ReadonlyArray<Items<T>>, last?: Items<T>): Items<T> {
  let only: Items<T> | undefined;
  let filled = 0;
  for (const p of parts) if (p.length) (only = p), filled++;
  if (filled === 0) return [];
  if (filled === 1) return only!;
  const kept = filled === parts.length ? parts : parts.filter((p) => p.length > 0);
  if (last && isChunkList(last) && last.parts.length === kept.length && last.parts.every((c, i) => c === kept[i])) return last;
  return new ChunkList(kept === parts ? parts.slice() : kept);
}

/**
 * The elements of `cur` and `des` outside the parts both share by identity: what a diff of
 * two such collections needs to look at. Both sides have no duplicates (validated), so an
 * element in a shared part cannot appear in a changed one. Lists are compared level by level:
 * one network's list changed in a bridge's is opened, the bridge's other networks are not.
 */
export function changedParts<T>(cur: Items<T>, des: Items<T>): { cur: readonly T[]; des: readonly T[] } {
  if (cur === des) return { cur: [], des: [] };
  if (!isChunkList(cur) && !isChunkList(des)) return { cur, des };
  // A pass asks twice for the same two lists (validate, then diff, in one call): the last few
  // answers are kept, not one per list for as long as the list lives (every host's last one).
  for (const had of lastParts) if (had?.des === des && had.cur === cur) return had.parts as { cur: readonly T[]; des: readonly T[] };
  const outC: T[] = [];
  const outD: T[] = [];
  compare(cur, des, outC, outD);
  let parts = { cur: outC as readonly T[], des: outD as readonly T[] };
  if (outC.length && outD.length) {
    // A changed chunk keeps most of its elements as the same objects (builders share them): an
    // element on both sides is the same entry, left out before anyone makes its key. Builders
    // also keep their order (one entry added to a table's last block, one replaced in place):
    // the common head and tail go by identity, and only what lies between needs sets.
    let head = 0;
    let endC = outC.length;
    let endD = outD.length;
    while (head < endC && head < endD && outC[head] === outD[head]) head++;
    while (endC > head && endD > head && outC[endC - 1] === outD[endD - 1]) endC--, endD--;
    const midC = head === 0 && endC === outC.length ? outC : outC.slice(head, endC);
    const midD = head === 0 && endD === outD.length ? outD : outD.slice(head, endD);
    if (midC.length && midD.length) {
      const inC = new Set(midC);
      const inD = new Set(midD);
      parts = { cur: midC.filter((x) => !inD.has(x)), des: midD.filter((x) => !inC.has(x)) };
    } else parts = { cur: midC, des: midD };
  }
  lastParts[nextPart] = { cur, des, parts };
  nextPart = (nextPart + 1) % lastParts.length;
  return parts;
}
/** The last answers, a ring: more than the collections one pass validates and diffs. */
const lastParts = new Array<{ cur: object; des: object; parts: { cur: readonly unknown[]; des: readonly unknown[] } } | undefined>(16).fill(undefined);
let nextPart = 0;

function compare<T>(cur: Items<T>, des: Items<T>, outC: T[], outD: T[]): void {
  if (cur === des) return;
  const cc = isChunkList(cur) ? cur.parts : [cur];
  const dc = isChunkList(des) ? des.parts : [des];
  // Builders keep their parts in order: skip the common head and tail by identity.
  let start = 0;
  let endC = cc.length;
  let endD = dc.length;
  while (start < endC && start < endD && cc[start] === dc[start]) start++;
  while (endC > start && endD > start && cc[endC - 1] === dc[endD - 1]) endC--, endD--;
  // One part for one part (the usual change: one network's, one peer's): the same place, look inside.
  if (endC - start === 1 && endD - start === 1 && (isChunkList(cc[start]) || isChunkList(dc[start])) && (cc.length > 1 || dc.length > 1)) {
    compare(cc[start], dc[start], outC, outD);
    return;
  }
  // Otherwise the leaves between, less those on both sides.
  const leavesC = leaves(cc.slice(start, endC));
  const leavesD = leaves(dc.slice(start, endD));
  const inD = new Set<readonly T[]>(leavesD);
  const inC = new Set<readonly T[]>(leavesC);
  for (const c of leavesC) if (!inD.has(c)) for (let k = 0; k < c.length; k++) outC.push(c[k]);
  for (const d of leavesD) if (!inC.has(d)) for (let k = 0; k < d.length; k++) outD.push(d[k]);
}

/** The plain arrays a list is made of, in order. */
export function leaves<T>(parts: ReadonlyArray<Items<T>>): Array<readonly T[]> {
  const out: Array<readonly T[]> = [];
  const walk = (l: Items<T>) => {
    if (isChunkList(l)) for (const p of l.parts) walk(p);
    else out.push(l);
  };
  for (const p of parts) walk(p);
  return out;
}

/**
 * A keyed collection kept as chunks of at most `size` elements: adding, replacing or deleting
 * one element makes one new chunk, every other chunk stays the same object. What a builder
 * holds for a table that changes one entry at a time (a router's neighbours, thousands).
 * Changes between two `chunks()` go to a working copy of each block they touch, made once:
 * a burst of adds (a cloud coming up) copies the last block once per pass, not once per add.
 */
export class ChunkedTable<T> {
  private blocks: Array<Block<T>> = [];
  private readonly where = new Map<string, Block<T>>();
  private changes = 0;

  constructor(
    private readonly keyOf: (x: T) => string,
    private readonly size = 64,
  ) {}

  get count(): number {
    return this.where.size;
  }

  /** Grows with every change: what a reader that made something of the chunks compares to know they are the same. */
  get version(): number {
    return this.changes;
  }

  /** The element of `key`, if any. */
  get(key: string): T | undefined {
    const block = this.where.get(key);
    return block && (block.draft ?? block.items).find((y) => this.keyOf(y) === key);
  }

  /** Adds or replaces the element of its key; false when it was there already as an equal value. */
  set(x: T, same: (a: T, b: T) => boolean = (a, b) => a === b): boolean {
    const key = this.keyOf(x);
    const block = this.where.get(key);
    if (block) {
      const items = block.draft ?? block.items;
      const i = items.findIndex((y) => this.keyOf(y) === key);
      if (same(items[i], x)) return false;
      draft(block)[i] = x;
      this.changes++;
      return true;
    }
    let last = this.blocks[this.blocks.length - 1];
    if (!last || (last.draft ?? last.items).length >= this.size) this.blocks.push((last = { items: [], draft: [] }));
    draft(last).push(x);
    this.where.set(key, last);
    this.changes++;
    return true;
  }

  delete(key: string): boolean {
    const block = this.where.get(key);
    if (!block) return false;
    this.where.delete(key);
    this.changes++;
    const items = draft(block);
    items.splice(
      items.findIndex((y) => this.keyOf(y) === key),
      1,
    );
    return true;
  }

  /** The chunks, in a stable order; the same objects for the blocks that did not change. */
  chunks(): ReadonlyArray<readonly T[]> {
    let emptied = false;
    for (const b of this.blocks) {
      if (!b.draft) continue;
      b.items = b.draft;
      b.draft = undefined;
      emptied ||= b.items.length === 0;
    }
    if (emptied) this.blocks = this.blocks.filter((b) => b.items.length > 0);
    return this.blocks.map((b) => b.items);
  }
}

/** A block's elements as last handed out (never changed after), and its working copy while it changes. */
interface Block<T> {
  items: readonly T[];
  draft?: T[];
}

const draft = <T>(b: Block<T>): T[] => (b.draft ??= b.items.slice());
