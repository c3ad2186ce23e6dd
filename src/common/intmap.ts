// A map from 32-bit integers to values in flat arrays (open addressing, linear probing).
//
// For tables with millions of entries across a process whose keys are already integers (an
// emulated switch's flows by the hash of their match, a device's neighbours by address): a
// `Map` entry costs about 60 bytes there, this one 16 bytes per slot at 37-75% load. `undefined`
// marks an empty slot, so it is not a value the map can hold. Each entry may keep a number
// beside its value (`extra`): what would otherwise take an object per entry (the classifier
// keeps a flow's creation time there until the flow needs an object of its own). Only numbers
// other than 0 are kept, in a `Map` by key: an emulated clock stands at 0 through a cloud's
// boot, and a column beside the keys made on the first other number gave a thousand hosts'
// big tables theirs in one burst (the first port added after a ping).
//
// Plain arrays (V8 keeps int32 keys and doubles unboxed in them), not typed arrays: a typed
// array of more than 64 bytes has its memory outside V8's heap, and V8 answers a burst of such
// allocations with collections of its own ("external memory pressure"). A thousand emulated
// hosts growing or first stamping their tables together paid seconds of those; the first port
// added after a ping took 2-4 s at 400 hosts, most of it in this map's allocations.

const NO_KEYS: number[] = [];

export class IntMap<V> {
  private keys: number[];
  private vals: Array<V | undefined>;
  private extras?: Map<number, number>;
  private shift: number;
  private count = 0;

  /** Empty until the first set: most of an emulated host's devices never hold a neighbour. */
  constructor() {
    this.keys = NO_KEYS;
    this.vals = [];
    this.shift = 32;
  }

  get size(): number {
    return this.count;
  }

  /** Fibonacci hashing: the top bits of key * 2^32/phi, so near keys land apart. */
  private home(key: number): number {
    return Math.imul(key, 0x9e3779b1) >>> this.shift;
  }

  private slot(key: number): number {
    const { keys, vals } = this;
    if (keys.length === 0) return 0; // vals[0] is undefined: not found
    const mask = keys.length - 1;
    let i = this.home(key);
    while (vals[i] !== undefined && keys[i] !== key) i = (i + 1) & mask;
    return i;
  }

  get(key: number): V | undefined {
    return this.vals[this.slot(key | 0)];
  }

  has(key: number): boolean {
    return this.vals[this.slot(key | 0)] !== undefined;
  }

  /** The number kept with the entry of `key` (0 when none was given, NaN when there is no entry). */
  extra(key: number): number {
    key |= 0;
    return this.vals[this.slot(key)] === undefined ? NaN : (this.extras?.get(key) ?? 0);
  }

  /** Sets the value (and the number kept with it: 0 unless given). */
  set(key: number, value: V, extra = 0): this {
    if (value === undefined) throw new TypeError('IntMap cannot hold undefined');
    key |= 0;
    let i = this.slot(key);
    if (this.vals[i] === undefined) {
      if ((this.count + 1) * 4 > this.keys.length * 3) {
        this.resize(Math.max(8, this.keys.length * 2));
        i = this.slot(key);
      }
      this.keys[i] = key;
      this.count++;
    }
    this.vals[i] = value;
    if (extra !== 0) (this.extras ??= new Map()).set(key, extra);
    else this.extras?.delete(key);
    return this;
  }

  delete(key: number): boolean {
    key |= 0;
    let hole = this.slot(key);
    const { keys, vals } = this;
    if (vals[hole] === undefined) return false;
    this.extras?.delete(key);
    const mask = keys.length - 1;
    // Backward-shift deletion: pull up each later entry of the run whose home the hole now cuts it off from.
    for (let j = (hole + 1) & mask; vals[j] !== undefined; j = (j + 1) & mask) {
      if (((j - this.home(keys[j])) & mask) >= ((j - hole) & mask)) {
        keys[hole] = keys[j];
        vals[hole] = vals[j];
        hole = j;
      }
    }
    vals[hole] = undefined;
    this.count--;
    if (keys.length > 8 && this.count * 8 < keys.length) this.resize(keys.length / 2);
    return true;
  }

  clear(): void {
    this.keys = NO_KEYS;
    this.extras = undefined;
    this.vals = [];
    this.shift = 32;
    this.count = 0;
  }

  /** The values, in no particular order (not insertion order, as a Map's). */
  *values(): IterableIterator<V> {
    const vals = this.vals;
    for (let i = 0; i < vals.length; i++) if (vals[i] !== undefined) yield vals[i] as V;
  }

  private resize(cap: number): void {
    const { keys, vals } = this;
    this.keys = new Array<number>(cap).fill(0);
    this.vals = new Array<V | undefined>(cap).fill(undefined);
    this.shift = 32 - Math.log2(cap);
    for (let i = 0; i < keys.length; i++) {
      const v = vals[i];
      if (v !== undefined) {
        const k = this.slot(keys[i]);
        this.keys[k] = keys[i];
        this.vals[k] = v;
      }
    }
  }
}
