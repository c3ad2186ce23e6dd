// OVS's tuple-space search classifier (lib/classifier.c, in its essentials). A table keeps
// one subtable per match shape (the set of key words and masks its flows use); a subtable is
// a hash map from the masked key to the flows with that key. A lookup visits subtables in
// order of their highest priority and stops as soon as the best flow found outranks every
// remaining subtable, so its cost depends on the number of shapes, not of flows.

import type { Match } from './match.js';
import type { Rule } from './rule.js';

export const N_TABLES = 255; // 0..254; OpenFlow reserves 255 for "all tables"

function mix(h: number, v: number): number {
  let k = Math.imul(v, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Hash of a flow's own (already masked) values; equals `Subtable.hashKey` of matching packets. */
export function hashMatch(m: Match): number {
  let h = m.idx.length;
  for (let k = 0; k < m.val.length; k++) h = mix(h, m.val[k]);
  return finish(h);
}

class Subtable {
  readonly idx: number[];
  readonly mask: number[];
  /**
   * Flows by masked-key hash: one Rule, or (for flows of equal key at several priorities, or
   * a hash collision) an array sorted by descending priority. Most keys hold one flow, and
   * storing it directly saves an array per flow.
   */
  readonly buckets = new Map<number, Rule | Rule[]>();
  /** How many flows at each priority, to keep `maxPriority` exact across deletions. */
  private readonly priorities = new Map<number, number>();
  count = 0;
  maxPriority = -1;

  constructor(m: Match) {
    this.idx = m.idx;
    this.mask = m.mask;
  }

  hashKey(w: Int32Array): number {
    const { idx, mask } = this;
    let h = idx.length;
    for (let k = 0; k < idx.length; k++) h = mix(h, w[idx[k]] & mask[k]);
    return finish(h);
  }

  /** Inserts; returns the flow it replaced (same match and priority), if any. */
  insert(rule: Rule): Rule | undefined {
    const cur = this.buckets.get(rule.hash);
    if (cur === undefined) {
      this.buckets.set(rule.hash, rule);
    } else {
      const bucket = Array.isArray(cur) ? cur : [cur];
      let at = bucket.length;
      for (let i = 0; i < bucket.length; i++) {
        const r = bucket[i];
        if (r.priority === rule.priority && r.match.sameAs(rule.match)) {
          bucket[i] = rule;
          this.buckets.set(rule.hash, bucket.length === 1 ? rule : bucket);
          return r;
        }
        if (r.priority < rule.priority && at === bucket.length) at = i;
      }
      bucket.splice(at, 0, rule);
      this.buckets.set(rule.hash, bucket);
    }
    this.count++;
    this.priorities.set(rule.priority, (this.priorities.get(rule.priority) ?? 0) + 1);
    if (rule.priority > this.maxPriority) this.maxPriority = rule.priority;
    return undefined;
  }

  remove(rule: Rule): boolean {
    const cur = this.buckets.get(rule.hash);
    if (cur === undefined) return false;
    if (Array.isArray(cur)) {
      const i = cur.indexOf(rule);
      if (i < 0) return false;
      cur.splice(i, 1);
      if (cur.length === 1) this.buckets.set(rule.hash, cur[0]);
    } else {
      if (cur !== rule) return false;
      this.buckets.delete(rule.hash);
    }
    this.count--;
    const n = (this.priorities.get(rule.priority) ?? 1) - 1;
    if (n === 0) {
      this.priorities.delete(rule.priority);
      if (rule.priority === this.maxPriority) {
        let max = -1;
        for (const p of this.priorities.keys()) if (p > max) max = p;
        this.maxPriority = max;
      }
    } else this.priorities.set(rule.priority, n);
    return true;
  }

  find(match: Match, priority: number, hash: number): Rule | undefined {
    const cur = this.buckets.get(hash);
    if (cur === undefined) return undefined;
    if (!Array.isArray(cur)) return cur.priority === priority && cur.match.sameAs(match) ? cur : undefined;
    return cur.find((r) => r.priority === priority && r.match.sameAs(match));
  }

  *rules(): IterableIterator<Rule> {
    for (const b of this.buckets.values()) {
      if (Array.isArray(b)) yield* b;
      else yield b;
    }
  }
}

export class FlowTable {
  private readonly byShape = new Map<string, Subtable>();
  /** Subtables by descending maxPriority (re-sorted lazily after a change). */
  private order: Subtable[] = [];
  private dirty = false;
  count = 0;

  insert(rule: Rule): Rule | undefined {
    let st = this.byShape.get(rule.match.shapeKey);
    if (!st) {
      st = new Subtable(rule.match);
      this.byShape.set(rule.match.shapeKey, st);
      this.order.push(st);
    }
    const before = st.maxPriority;
    const old = st.insert(rule);
    if (!old) this.count++;
    if (st.maxPriority !== before) this.dirty = true;
    return old;
  }

  remove(rule: Rule): boolean {
    const st = this.byShape.get(rule.match.shapeKey);
    if (!st) return false;
    const before = st.maxPriority;
    if (!st.remove(rule)) return false;
    this.count--;
    if (st.count === 0) {
      this.byShape.delete(rule.match.shapeKey);
      this.order.splice(this.order.indexOf(st), 1);
    } else if (st.maxPriority !== before) this.dirty = true;
    return true;
  }

  find(match: Match, priority: number, hash: number): Rule | undefined {
    return this.byShape.get(match.shapeKey)?.find(match, priority, hash);
  }

  /** The highest-priority flow matching key `w`. */
  lookup(w: Int32Array): Rule | undefined {
    if (this.dirty) {
      this.order.sort((a, b) => b.maxPriority - a.maxPriority);
      this.dirty = false;
    }
    let best: Rule | undefined;
    const order = this.order;
    for (let s = 0; s < order.length; s++) {
      const st = order[s];
      if (best !== undefined && best.priority >= st.maxPriority) break;
      const bucket = st.buckets.get(st.hashKey(w));
      if (bucket === undefined) continue;
      if (!Array.isArray(bucket)) {
        if ((best === undefined || bucket.priority > best.priority) && bucket.match.matches(w)) best = bucket;
        continue;
      }
      for (let i = 0; i < bucket.length; i++) {
        const r = bucket[i];
        if (best !== undefined && r.priority <= best.priority) break;
        if (r.match.matches(w)) {
          best = r;
          break;
        }
      }
    }
    return best;
  }

  /** Number of subtables (shapes): the per-lookup cost driver. */
  get shapes(): number {
    return this.order.length;
  }

  *rules(): IterableIterator<Rule> {
    for (const st of this.order) yield* st.rules();
  }
}

/**
 * All tables of a bridge, plus an index by cookie (agents replace and delete by cookie),
 * made on the first such request: a bridge written only by matches (the host-state drivers)
 * never pays an entry per flow for it.
 */
export class Classifier {
  readonly tables: Array<FlowTable | undefined> = new Array(N_TABLES);
  private byCookie?: Map<bigint, Set<Rule>>;
  count = 0;

  table(n: number): FlowTable {
    let t = this.tables[n];
    if (!t) {
      t = new FlowTable();
      this.tables[n] = t;
    }
    return t;
  }

  insert(rule: Rule): Rule | undefined {
    const old = this.table(rule.table).insert(rule);
    if (old) this.unindex(old);
    else this.count++;
    if (this.byCookie) this.index(this.byCookie, rule);
    return old;
  }

  remove(rule: Rule): boolean {
    const t = this.tables[rule.table];
    if (!t || !t.remove(rule)) return false;
    this.count--;
    this.unindex(rule);
    return true;
  }

  private index(byCookie: Map<bigint, Set<Rule>>, rule: Rule): void {
    let set = byCookie.get(rule.cookie);
    if (!set) {
      set = new Set();
      byCookie.set(rule.cookie, set);
    }
    set.add(rule);
  }

  private unindex(rule: Rule): void {
    const set = this.byCookie?.get(rule.cookie);
    if (set) {
      set.delete(rule);
      if (set.size === 0) this.byCookie!.delete(rule.cookie);
    }
  }

  lookup(table: number, w: Int32Array): Rule | undefined {
    const t = this.tables[table];
    return t === undefined ? undefined : t.lookup(w);
  }

  find(table: number, match: Match, priority: number, hash: number): Rule | undefined {
    return this.tables[table]?.find(match, priority, hash);
  }

  withCookie(cookie: bigint): Rule[] {
    if (!this.byCookie) {
      this.byCookie = new Map();
      for (const r of this.rules()) this.index(this.byCookie, r);
    }
    return [...(this.byCookie.get(cookie) ?? [])];
  }

  /** Rules of one table, or of all tables in table order. */
  *rules(table?: number): IterableIterator<Rule> {
    if (table !== undefined) {
      const t = this.tables[table];
      if (t) yield* t.rules();
      return;
    }
    for (const t of this.tables) if (t) yield* t.rules();
  }
}
