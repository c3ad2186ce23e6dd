// A multiset of 32-bit hashes in one array (open addressing, linear probing). A plain array
// (V8 keeps int32s unboxed in it), not a typed one: typed arrays beyond 64 bytes live outside
// V8's heap, and a burst of them (a thousand hosts growing their bags together) makes V8
// collect for "external memory pressure" (common/intmap.ts).
//
// What `validate` keeps per unordered collection to check the next state's changes for
// duplicates: a big host holds tens of thousands of flows and neighbours, and a `Set` of their
// key strings cost about 40 bytes per element on every host (the key strings of per-host
// neighbours included). A hash costs 8 to 20 bytes; two keys with one hash are told apart
// by the caller, who looks at the keys themselves when `has` says yes. Hash 0 marks an empty
// slot and counts as 1.

export class HashBag {
  private slots: number[];
  private used = 0;

  constructor(capacity = 16) {
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    this.slots = new Array<number>(cap).fill(0);
  }

  get size(): number {
    return this.used;
  }

  has(hash: number): boolean {
    const h = hash | 0 || 1;
    const { slots } = this;
    const mask = slots.length - 1;
    for (let i = h & mask; slots[i] !== 0; i = (i + 1) & mask) if (slots[i] === h) return true;
    return false;
  }

  /** Adds one occurrence (a hash may be held several times: distinct keys can share it). */
  add(hash: number): void {
    if ((this.used + 1) * 4 > this.slots.length * 3) this.resize(this.slots.length * 2);
    this.put(hash | 0 || 1);
    this.used++;
  }

  /** Removes one occurrence; false when there was none. */
  delete(hash: number): boolean {
    const h = hash | 0 || 1;
    const { slots } = this;
    const mask = slots.length - 1;
    let i = h & mask;
    while (slots[i] !== h) {
      if (slots[i] === 0) return false;
      i = (i + 1) & mask;
    }
    // Backward-shift deletion: move up each later entry of the run that the hole now separates from its home slot.
    let hole = i;
    for (let j = (i + 1) & mask; slots[j] !== 0; j = (j + 1) & mask) {
      const home = slots[j] & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        slots[hole] = slots[j];
        hole = j;
      }
    }
    slots[hole] = 0;
    this.used--;
    if (this.slots.length > 16 && this.used * 8 < this.slots.length) this.resize(this.slots.length / 2);
    return true;
  }

  private put(h: number): void {
    const { slots } = this;
    const mask = slots.length - 1;
    let i = h & mask;
    while (slots[i] !== 0) i = (i + 1) & mask;
    slots[i] = h;
  }

  private resize(cap: number): void {
    const old = this.slots;
    this.slots = new Array<number>(cap).fill(0);
    for (let i = 0; i < old.length; i++) if (old[i] !== 0) this.put(old[i]);
  }
}

/** A 32-bit hash of a string (FNV-1a, then murmur3's finaliser to spread the low bits the table indexes by). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
