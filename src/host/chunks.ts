// Arrays joined from immutable chunks, remembered by identity.
//
// A host's flows and neighbours are unordered arrays (state.ts), and a big host's are tens
// of thousands long: one per peer per network. Builders make them from pieces that stay the
// same object while their content does (one network's entries of one peer, one subnet's
// neighbours). `joinChunks` flattens such pieces into the plain array the state holds and
// remembers which pieces it was made of, so `diff` and `validate` can skip every piece the
// previous state shares by identity and look only at the pieces that changed: a pass then
// costs what changed, not what the host holds. The state stays a plain JSON-safe value; an
// array not made here is one chunk of itself.

const registry = new WeakMap<readonly unknown[], ReadonlyArray<readonly unknown[]>>();

/** The chunks an array was joined from (itself, if it was not joined here). */
export function chunksOf<T>(arr: readonly T[]): ReadonlyArray<readonly T[]> {
  return (registry.get(arr) as ReadonlyArray<readonly T[]> | undefined) ?? [arr];
}

/**
 * One array of every chunk's elements, in order. Chunks that were themselves joined count as
 * their own chunks; empty ones are dropped; a single part left is returned as it is (the
 * composer merging a bridge that one fragment fills: no copy of its flows per pass). `last`,
 * an array joined before, is returned itself when it was joined from the very same chunks (a
 * builder's previous result: the whole array then stays the same object).
 */
export function joinChunks<T>(parts: ReadonlyArray<readonly T[]>, last?: readonly T[]): T[] {
  let only: readonly T[] | undefined;
  let filled = 0;
  for (const p of parts) if (p.length) (only = p), filled++;
  if (filled === 1) return only as T[];
  const chunks: Array<readonly T[]> = [];
  let total = 0;
  for (const p of parts) {
    if (!p.length) continue;
    const joined = registry.get(p) as ReadonlyArray<readonly T[]> | undefined;
    if (!joined) {
      chunks.push(p); // a plain array is its own chunk (no [p] per part: br-tun has one per peer per network)
      total += p.length;
      continue;
    }
    for (const c of joined) {
      chunks.push(c);
      total += c.length;
    }
  }
  return joinFlat(chunks, total, last);
}

/**
 * `joinChunks` for parts known to be plain arrays (none joined here): a builder with a chunk
 * per peer per network (br-tun) saves looking each one up. The parts array is kept as given.
 */
export function joinLeaves<T>(parts: ReadonlyArray<readonly T[]>, last?: readonly T[]): T[] {
  let total = 0;
  let empty = false;
  for (const p of parts) (total += p.length), (empty ||= p.length === 0);
  return joinFlat(empty ? parts.filter((p) => p.length > 0) : parts, total, last);
}

function joinFlat<T>(chunks: ReadonlyArray<readonly T[]>, total: number, last?: readonly T[]): T[] {
  if (chunks.length === 0) return [];
  if (chunks.length === 1) return chunks[0] as T[];
  if (last) {
    const was = registry.get(last);
    if (was && was.length === chunks.length && was.every((c, i) => c === chunks[i])) return last as T[];
  }
  const out = new Array<T>(total);
  let i = 0;
  for (const c of chunks) for (let k = 0; k < c.length; k++) out[i++] = c[k];
  registry.set(out, chunks);
  return out;
}

/**
 * The elements of `cur` and `des` outside the chunks both share by identity: what a diff of
 * two such arrays needs to look at. Both sides have no duplicates (validated), so an element
 * in a shared chunk cannot appear in a changed one.
 */
export function changedParts<T>(cur: readonly T[], des: readonly T[]): { cur: readonly T[]; des: readonly T[] } {
  if (cur === des) return { cur: [], des: [] };
  const cc = chunksOf(cur);
  const dc = chunksOf(des);
  if (cc.length === 1 && dc.length === 1) return { cur, des };
  // Builders keep their chunks in order: skip the common head and tail by identity, and
  // index only the chunks between (usually one or two: br-tun has a chunk per peer per network).
  let start = 0;
  let endC = cc.length;
  let endD = dc.length;
  while (start < endC && start < endD && cc[start] === dc[start]) start++;
  while (endC > start && endD > start && cc[endC - 1] === dc[endD - 1]) endC--, endD--;
  const midC = cc.slice(start, endC);
  const midD = dc.slice(start, endD);
  const inDes = new Set<readonly T[]>(midD);
  const inCur = new Set<readonly T[]>(midC);
  const flat = (cs: ReadonlyArray<readonly T[]>, other: Set<readonly T[]>) => {
    const out: T[] = [];
    for (const c of cs) if (!other.has(c)) for (let k = 0; k < c.length; k++) out.push(c[k]);
    return out;
  };
  return { cur: flat(midC, inDes), des: flat(midD, inCur) };
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

  constructor(
    private readonly keyOf: (x: T) => string,
    private readonly size = 64,
  ) {}

  get count(): number {
    return this.where.size;
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
      return true;
    }
    let last = this.blocks[this.blocks.length - 1];
    if (!last || (last.draft ?? last.items).length >= this.size) this.blocks.push((last = { items: [], draft: [] }));
    draft(last).push(x);
    this.where.set(key, last);
    return true;
  }

  delete(key: string): boolean {
    const block = this.where.get(key);
    if (!block) return false;
    this.where.delete(key);
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
