// One OpenFlow flow as the bridge holds it: match, priority, cookie, compiled actions,
// timeouts and counters, and its text (as written by the agent, or generated for flows
// that learn() installed).

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
}

export class Rule {
  readonly table: number;
  readonly priority: number;
  cookie: bigint;
  readonly match: Match;
  actions: Action[];
  idleTimeout: number;
  hardTimeout: number;
  importance: number;
  readonly learned: boolean;
  /** Hash of the masked key, the rule's bucket in its subtable. */
  readonly hash: number;
  /** For learned flows: the values their actions were built from (see learn.ts). */
  learnSig?: number[];
  nPackets = 0;
  nBytes = 0;
  /** Milliseconds on the bridge clock. */
  created = 0;
  modified = 0;
  used = 0;
  private written?: string;
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
    this.written = init.text;
    this.hash = hashMatch(init.match);
  }

  /** The flow's text: as the agent wrote it, else in dump-flows form. */
  get text(): string {
    return this.written ?? this.canonical;
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

  /** Replace the actions (a learn() refresh with different actions). */
  setActions(actions: Action[]): void {
    this.actions = actions;
    this.generated = undefined;
    this.written = undefined;
  }

  /** True when both have the same actions (compared by text: only on add/learn, never per packet). */
  sameActions(o: Rule | Action[]): boolean {
    const a = Array.isArray(o) ? o : o.actions;
    if (a === this.actions) return true;
    if (a.length !== this.actions.length) return false;
    return actionsText(a) === actionsText(this.actions);
  }
}
