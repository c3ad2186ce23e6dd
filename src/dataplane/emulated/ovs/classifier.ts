// OVS's tuple-space search classifier (lib/classifier.c, in its essentials). A table keeps
// one subtable per match shape (the set of key words and masks its flows use); a subtable is
// a hash map from the masked key to the flows with that key. A lookup visits subtables in
// order of their highest priority and stops as soon as the best flow found outranks every
// remaining subtable, so its cost depends on the number of shapes, not of flows.

import { IntMap } from '../../../common/intmap.js';
import type { Match } from './match.js';
import { Rule, type RuleSpec } from './rule.js';

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

/**
 * A flow as a bucket holds it: its Rule, or only its shared spec while it has no life of its
 * own on this bridge (no packet has hit it, no timeout): the creation time is then kept in the
 * map beside it. A big cloud's switches hold millions of flows no packet of a run ever hits,
 * and a Rule object each was the most of what they cost. A spec identifies its flow within a
 * subtable (equal specs have equal match and priority), so callers hold and remove flows by it.
 */
type Entry = Rule | RuleSpec;

const specOf = (e: Entry): RuleSpec => (e instanceof Rule ? e.spec : e);

class Subtable {
  readonly idx: number[];
  readonly mask: number[];
  /**
   * Flows by masked-key hash: one entry, or (for flows of equal key at several priorities, or
   * a hash collision) an array of Rules sorted by descending priority. Most keys hold one flow, and
   * storing it directly saves an array per flow.
   */
  readonly buckets = new IntMap<Entry | Rule[]>();
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

  /** The single entry of bucket `hash` as a Rule, made and kept in its place when it was a spec. */
  live(hash: number, e: Entry): Rule {
    if (e instanceof Rule) return e;
    const r = this.view(hash, e);
    this.buckets.set(hash, r, r.created);
    return r;
  }

  /** A Rule to read (not to change) for an entry, without keeping it. */
  private view(hash: number, e: Entry): Rule {
    if (e instanceof Rule) return e;
    const r = new Rule(e);
    r.created = this.buckets.extra(hash);
    return r;
  }

  private put(hash: number, rule: Rule): void {
    this.buckets.set(hash, rule.bare ? rule.spec : rule, rule.created);
  }

  /**
   * Inserts; returns the flow it replaced (same match and priority), if any, whose counters the
   * new one takes over when `carry` (OpenFlow 1.3).
   */
  insert(rule: Rule, carry = false): Rule | undefined {
    const cur = this.buckets.get(rule.hash);
    if (cur === undefined) {
      this.put(rule.hash, rule);
    } else {
      const bucket = Array.isArray(cur) ? cur : [this.view(rule.hash, cur)];
      let at = bucket.length;
      for (let i = 0; i < bucket.length; i++) {
        const r = bucket[i];
        if (r.priority === rule.priority && r.match.sameAs(rule.match)) {
          if (carry) rule.carryCounters(r);
          bucket[i] = rule;
          if (bucket.length === 1) this.put(rule.hash, rule);
          return r;
        }
        if (r.priority < rule.priority && at === bucket.length) at = i;
      }
      bucket.splice(at, 0, rule);
      this.buckets.set(rule.hash, bucket);
    }
    this.added(rule.priority);
    return undefined;
  }

  /**
   * Inserts a flow that has no life of its own yet as its spec and creation time, where its
   * bucket is empty (most flows: no Rule is made for them); false, leaving all as it was,
   * where the bucket holds a flow (the same one to replace, or one of another priority).
   */
  insertBare(spec: RuleSpec, created: number): boolean {
    if (this.buckets.get(spec.hash) !== undefined) return false;
    this.buckets.set(spec.hash, spec, created);
    this.added(spec.priority);
    return true;
  }

  private added(priority: number): void {
    this.count++;
    this.priorities.set(priority, (this.priorities.get(priority) ?? 0) + 1);
    if (priority > this.maxPriority) this.maxPriority = priority;
  }

  /** Removes the flow of `spec`; false when it is not here. */
  remove(spec: RuleSpec): boolean {
    const cur = this.buckets.get(spec.hash);
    if (cur === undefined) return false;
    if (Array.isArray(cur)) {
      const i = cur.findIndex((r) => r.spec === spec);
      if (i < 0) return false;
      cur.splice(i, 1);
      if (cur.length === 1) this.put(spec.hash, cur[0]);
    } else {
      if (specOf(cur) !== spec) return false;
      this.buckets.delete(spec.hash);
    }
    this.count--;
    const n = (this.priorities.get(spec.priority) ?? 1) - 1;
    if (n === 0) {
      this.priorities.delete(spec.priority);
      if (spec.priority === this.maxPriority) {
        let max = -1;
        for (const p of this.priorities.keys()) if (p > max) max = p;
        this.maxPriority = max;
      }
    } else this.priorities.set(spec.priority, n);
    return true;
  }

  /** The flow of this match and priority, as a Rule kept in its place (callers may refresh it). */
  find(match: Match, priority: number, hash: number): Rule | undefined {
    const cur = this.buckets.get(hash);
    if (cur === undefined) return undefined;
    if (!Array.isArray(cur)) return cur.priority === priority && cur.match.sameAs(match) ? this.live(hash, cur) : undefined;
    return cur.find((r) => r.priority === priority && r.match.sameAs(match));
  }

  /** Every flow, to read or remove: a flow without a Rule of its own is given one that is not kept. */
  *rules(): IterableIterator<Rule> {
    for (const b of this.buckets.values()) {
      if (Array.isArray(b)) yield* b;
      else yield this.view(b.hash, b);
    }
  }
}

export class FlowTable {
  private readonly byShape = new Map<string, Subtable>();
  /** Subtables by descending maxPriority (re-sorted lazily after a change). */
  private order: Subtable[] = [];
  private dirty = false;
  count = 0;

  insert(rule: Rule, carry = false): Rule | undefined {
    const st = this.subtable(rule.match);
    const before = st.maxPriority;
    const old = st.insert(rule, carry);
    if (!old) this.count++;
    if (st.maxPriority !== before) this.dirty = true;
    return old;
  }

  /** `Subtable.insertBare` in the flow's subtable. */
  insertBare(spec: RuleSpec, created: number): boolean {
    const st = this.subtable(spec.match);
    const before = st.maxPriority;
    if (!st.insertBare(spec, created)) return false;
    this.count++;
    if (st.maxPriority !== before) this.dirty = true;
    return true;
  }

  private subtable(match: Match): Subtable {
    let st = this.byShape.get(match.shapeKey);
    if (!st) {
      st = new Subtable(match);
      this.byShape.set(match.shapeKey, st);
      this.order.push(st);
    }
    return st;
  }

  remove(spec: RuleSpec): boolean {
    const st = this.byShape.get(spec.match.shapeKey);
    if (!st) return false;
    const before = st.maxPriority;
    if (!st.remove(spec)) return false;
    this.count--;
    if (st.count === 0) {
      this.byShape.delete(spec.match.shapeKey);
      this.order.splice(this.order.indexOf(st), 1);
    } else if (st.maxPriority !== before) this.dirty = true;
    return true;
  }

  find(match: Match, priority: number, hash: number): Rule | undefined {
    return this.byShape.get(match.shapeKey)?.find(match, priority, hash);
  }

  /** The highest-priority flow matching key `w`, as a Rule kept in its place (a hit counts on it). */
  lookup(w: Int32Array): Rule | undefined {
    if (this.dirty) {
      this.order.sort((a, b) => b.maxPriority - a.maxPriority);
      this.dirty = false;
    }
    let best: Entry | undefined;
    let bestSt: Subtable | undefined;
    let bestHash = 0;
    const order = this.order;
    for (let s = 0; s < order.length; s++) {
      const st = order[s];
      if (best !== undefined && best.priority >= st.maxPriority) break;
      const hash = st.hashKey(w);
      const bucket = st.buckets.get(hash);
      if (bucket === undefined) continue;
      if (!Array.isArray(bucket)) {
        if ((best === undefined || bucket.priority > best.priority) && bucket.match.matches(w)) (best = bucket), (bestSt = st), (bestHash = hash);
        continue;
      }
      for (let i = 0; i < bucket.length; i++) {
        const r = bucket[i];
        if (best !== undefined && r.priority <= best.priority) break;
        if (r.match.matches(w)) {
          best = r;
          bestSt = undefined;
          break;
        }
      }
    }
    return best === undefined || best instanceof Rule ? best : bestSt!.live(bestHash, best);
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
  /** Specs by cookie: a flow is kept by its spec (see Entry), so is its place here. */
  private byCookie?: Map<bigint, Set<RuleSpec>>;
  count = 0;

  table(n: number): FlowTable {
    let t = this.tables[n];
    if (!t) {
      t = new FlowTable();
      this.tables[n] = t;
    }
    return t;
  }

  /**
   * Inserts; returns the flow it replaced, whose counters the new one takes over when `carry`.
   * The classifier may keep only `rule.spec` (see Entry): `find` gives the flow back as a Rule.
   */
  insert(rule: Rule, carry = false): Rule | undefined {
    const old = this.table(rule.table).insert(rule, carry);
    if (old) this.unindex(old.spec);
    else this.count++;
    if (this.byCookie) this.index(this.byCookie, rule.spec);
    return old;
  }

  /** A new flow as its spec and creation time (`Subtable.insertBare`); false where a Rule must be inserted instead. */
  insertBare(spec: RuleSpec, created: number): boolean {
    if (!this.table(spec.table).insertBare(spec, created)) return false;
    this.count++;
    if (this.byCookie) this.index(this.byCookie, spec);
    return true;
  }

  /** Removes the flow `rule` is (or has the spec of). */
  remove(rule: Rule | RuleSpec): boolean {
    const spec = rule instanceof Rule ? rule.spec : rule;
    const t = this.tables[spec.table];
    if (!t || !t.remove(spec)) return false;
    this.count--;
    this.unindex(spec);
    return true;
  }

  private index(byCookie: Map<bigint, Set<RuleSpec>>, spec: RuleSpec): void {
    let set = byCookie.get(spec.cookie);
    if (!set) {
      set = new Set();
      byCookie.set(spec.cookie, set);
    }
    set.add(spec);
  }

  private unindex(spec: RuleSpec): void {
    const set = this.byCookie?.get(spec.cookie);
    if (set) {
      set.delete(spec);
      if (set.size === 0) this.byCookie!.delete(spec.cookie);
    }
  }

  lookup(table: number, w: Int32Array): Rule | undefined {
    const t = this.tables[table];
    return t === undefined ? undefined : t.lookup(w);
  }

  find(table: number, match: Match, priority: number, hash: number): Rule | undefined {
    return this.tables[table]?.find(match, priority, hash);
  }

  /** The flows of a cookie, as Rules kept in their places. */
  withCookie(cookie: bigint): Rule[] {
    if (!this.byCookie) {
      this.byCookie = new Map();
      for (const r of this.rules()) this.index(this.byCookie, r.spec);
    }
    return [...(this.byCookie.get(cookie) ?? [])].map((s) => this.find(s.table, s.match, s.priority, s.hash)!);
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
