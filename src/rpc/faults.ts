// Fault injection shared by both transports: rules are consulted for every message a
// transport sends, so tests can prove that agents survive lost and duplicated messages.

import type { FaultRules, WireMessage } from './transport.js';

export class FaultInjector {
  private rules: FaultRules[] = [];

  inject(rules: FaultRules): () => void {
    this.rules.push(rules);
    return () => {
      this.rules = this.rules.filter((r) => r !== rules);
    };
  }

  /**
   * How many copies of a message to deliver: 0 (dropped), 1, or 2 (duplicated). `describe`
   * builds the predicates' view lazily, so there is no cost while no rules are set.
   * Every rule sees every message, so counting predicates (nth) stay exact.
   */
  copies(describe: () => WireMessage): number {
    if (this.rules.length === 0) return 1;
    const m = describe();
    let drop = false;
    let dup = false;
    for (const r of this.rules) {
      if (r.drop?.(m)) drop = true;
      if (r.duplicate?.(m)) dup = true;
    }
    return drop ? 0 : dup ? 2 : 1;
  }
}

/** The predicates' view of a message: its payload parsed again, so it is a private copy. */
export function describe(kind: WireMessage['kind'], topic: string, method: string, text: string): WireMessage {
  const parsed = JSON.parse(text) as { args?: unknown };
  return { kind, topic, method, body: kind === 'reply' ? parsed : parsed.args };
}

/** The predicates' view of a message that did not cross a process: its sealed (frozen) payload. */
export function describeSealed(kind: WireMessage['kind'], topic: string, method: string, body: unknown): WireMessage {
  return { kind, topic, method, body };
}
