// One OpenFlow flow as the bridge holds it: what the flow is (its spec: match, priority,
// cookie, compiled actions, timeouts, text) and its life on this bridge (counters, times).
// The spec is immutable and shared: an emulated cloud of N hosts installs most flows (a
// peer's unicast and ARP responder entries) on many bridges from one parse, and a spec per
// bridge was most of what a big cloud's switches held.

import type { Action } from './actions.js';
import { actionsText } from './actions.js';
import { hashMatch } from './classifier.js';
import type { Match } from './match.js';
import { hex } from './values.js';

export interface RuleInit {
  table: number;
  priority: number;
  cookie: bigint;
  match: Match;
  actions: Action[];
  idleTimeout?: number;
  hardTimeout?: number;
  importance?: number;
  /** The flow text as written; generated from the parts when absent (learned flows). */
  text?: string;
  learned?: boolean;
  /** For learned flows: the values their actions were built from (see learn.ts). */
  learnSig?: number[];
}

/** What a flow is; never changed once made (a learn() refresh with other actions makes a new one). */
export class RuleSpec {
  readonly table: number;
  readonly priority: number;
  readonly cookie: bigint;
  readonly match: Match;
  readonly actions: Action[];
  readonly idleTimeout: number;
  readonly hardTimeout: number;
  readonly importance: number;
  readonly learned: boolean;
  readonly learnSig?: number[];
  /** Hash of the masked key, the rule's bucket in its subtable. */
  readonly hash: number;
  readonly written?: string;
  private generated?: string;

  constructor(init: RuleInit) {
    this.table = init.table;
    this.priority = init.priority;
    this.cookie = init.cookie;
    this.match = init.match;
    this.actions = init.actions;
    this.idleTimeout = init.idleTimeout ?? 0;
    this.hardTimeout = init.hardTimeout ?? 0;
    this.importance = init.importance ?? 0;
    this.learned = init.learned ?? false;
    if (init.learnSig) this.learnSig = init.learnSig;
    this.written = init.text;
    this.hash = hashMatch(init.match);
  }

  /** `table=20, priority=1,cookie=0x..,vlan_tci=..,dl_dst=.. actions=...` (ovs-ofctl dump-flows layout, no counters). */
  get canonical(): string {
    if (this.generated === undefined) {
      const m = this.match.toString();
      const head = [`table=${this.table}`, `priority=${this.priority}`];
      if (this.cookie !== 0n) head.push(`cookie=${hex(this.cookie)}`);
      if (this.idleTimeout) head.push(`idle_timeout=${this.idleTimeout}`);
      if (this.hardTimeout) head.push(`hard_timeout=${this.hardTimeout}`);
      this.generated = `${head.join(',')}${m ? ',' + m : ''},actions=${actionsText(this.actions)}`;
    }
    return this.generated;
  }
}

/** What a rule has lived through on its bridge, made when it is first hit or given a timeout. */
interface RuleLife {
  nPackets: number;
  nBytes: number;
  modified: number;
  used: number;
}

export class Rule {
  spec: RuleSpec;
  /** Milliseconds on the bridge clock. */
  created = 0;
  /**
   * Counters, and the times the timeouts read; absent while all are 0. A big cloud's emulated
   * switches hold millions of rules (a host's unicast and ARP responder flows for every port
   * of its networks), most of which no packet of a run ever hits.
   */
  private life?: RuleLife;

  constructor(init: RuleInit | RuleSpec) {
    this.spec = init instanceof RuleSpec ? init : new RuleSpec(init);
  }

  /** Nothing has happened to it on its bridge yet (no packet, no timeout): its spec and creation time say all of it. */
  get bare(): boolean {
    return this.life === undefined;
  }

  /** A packet of `bytes` matched; `now` given, the idle timeout counts from it. */
  count(bytes: number, now?: number): void {
    const l = this.lived();
    l.nPackets++;
    l.nBytes += bytes;
    if (now !== undefined) l.used = now;
  }

  /** Installed (or refreshed, `used` false: only the hard timeout restarts) at `now`. */
  stamp(now: number, used = true): void {
    const l = this.lived();
    l.modified = now;
    if (used) l.used = now;
  }

  /** The counters of the flow this one replaces (OpenFlow 1.3 keeps them). */
  carryCounters(old: Rule): void {
    if (!old.life) return;
    const l = this.lived();
    l.nPackets = old.life.nPackets;
    l.nBytes = old.life.nBytes;
  }

  private lived(): RuleLife {
    return (this.life ??= { nPackets: 0, nBytes: 0, modified: 0, used: 0 });
  }
  get nPackets(): number {
    return this.life?.nPackets ?? 0;
  }
  get nBytes(): number {
    return this.life?.nBytes ?? 0;
  }
  get modified(): number {
    return this.life?.modified ?? 0;
  }
  get used(): number {
    return this.life?.used ?? 0;
  }

  get table(): number {
    return this.spec.table;
  }
  get priority(): number {
    return this.spec.priority;
  }
  get cookie(): bigint {
    return this.spec.cookie;
  }
  get match(): Match {
    return this.spec.match;
  }
  get actions(): Action[] {
    return this.spec.actions;
  }
  get idleTimeout(): number {
    return this.spec.idleTimeout;
  }
  get hardTimeout(): number {
    return this.spec.hardTimeout;
  }
  get importance(): number {
    return this.spec.importance;
  }
  get learned(): boolean {
    return this.spec.learned;
  }
  get learnSig(): number[] | undefined {
    return this.spec.learnSig;
  }
  get hash(): number {
    return this.spec.hash;
  }

  /** The flow's text: as the agent wrote it, else in dump-flows form. */
  get text(): string {
    return this.spec.written ?? this.spec.canonical;
  }

  get canonical(): string {
    return this.spec.canonical;
  }

  /** True when both have the same actions (compared by text: only on add/learn, never per packet). */
  sameActions(o: Rule | Action[]): boolean {
    const a = Array.isArray(o) ? o : o.actions;
    const mine = this.spec.actions;
    if (a === mine) return true;
    if (a.length !== mine.length) return false;
    return actionsText(a) === actionsText(mine);
  }
}
