// The rule tables of one namespace: chains with their rules and policies, and the checks
// the kernel makes when a table is replaced (jumps resolve to user chains, no loops,
// targets and matches only reached from hooks that allow them).

import type { CompiledRule, Counters } from './rule.js';
import { BUILTIN_CHAINS, type NfHook, type NfTable } from './types.js';

export type Policy = 'ACCEPT' | 'DROP';

export interface Chain {
  name: string;
  builtin: boolean;
  /** Built-in chains only. */
  policy: Policy;
  policyCounters: Counters;
  rules: CompiledRule[];
}

export interface TableState {
  name: NfTable;
  chains: Map<string, Chain>;
  /** Resolved jump targets, rebuilt at each commit. */
  links: Map<CompiledRule, Chain>;
}

export class CommitError extends Error {
  constructor(
    message: string,
    readonly rule?: CompiledRule,
  ) {
    super(message);
  }
}

export function newTable(name: NfTable): TableState {
  const chains = new Map<string, Chain>();
  for (const c of BUILTIN_CHAINS[name]) {
    chains.set(c, { name: c, builtin: true, policy: 'ACCEPT', policyCounters: { pkts: 0, bytes: 0 }, rules: [] });
  }
  return { name, chains, links: new Map() };
}

/** A copy to stage changes on; rules are shared (they are immutable but for counters). */
export function cloneTable(t: TableState): TableState {
  const chains = new Map<string, Chain>();
  for (const [n, c] of t.chains) chains.set(n, { ...c, rules: [...c.rules] });
  return { name: t.name, chains, links: new Map() };
}

/** What iptables-restore does at `*table` without --noflush: empty built-ins, no user chains. */
export function flushedTable(t: TableState): TableState {
  const out = cloneTable(t);
  for (const [n, c] of [...out.chains]) {
    if (c.builtin) c.rules = [];
    else out.chains.delete(n);
  }
  return out;
}

export function referencesTo(t: TableState, chain: string): number {
  let n = 0;
  for (const c of t.chains.values()) {
    for (const r of c.rules) if (r.target.kind === 'jump' && r.target.chain === chain) n++;
  }
  return n;
}

/**
 * Validates a staged table and resolves its jumps. Throws CommitError naming the rule
 * (its `line` tells the caller where it came from).
 */
export function commitTable(t: TableState): void {
  const links = new Map<CompiledRule, Chain>();
  for (const c of t.chains.values()) {
    for (const r of c.rules) {
      if (r.target.kind !== 'jump') continue;
      const to = t.chains.get(r.target.chain);
      if (!to) throw new CommitError(`chain "${r.target.chain}" does not exist (target of a rule in ${c.name})`, r);
      if (to.builtin) throw new CommitError(`cannot jump to built-in chain "${to.name}"`, r);
      links.set(r, to);
    }
  }
  // Walk from every hook: loops are refused (ELOOP), restricted targets checked per hook.
  for (const hook of BUILTIN_CHAINS[t.name]) {
    const start = t.chains.get(hook)!;
    const onPath = new Set<Chain>();
    const done = new Set<Chain>();
    const walk = (c: Chain, via: string[]): void => {
      if (done.has(c)) return;
      onPath.add(c);
      for (const r of c.rules) {
        for (const re of r.restrict) {
          if (!re.hooks.includes(hook as NfHook)) {
            const path = [...via, c.name].join(' -> ');
            throw new CommitError(`${re.what} cannot be used from ${hook} (reached through ${path}); valid in ${re.hooks.join(', ')}`, r);
          }
        }
        const to = links.get(r);
        if (to && onPath.has(to)) {
          throw new CommitError(`loop through chain "${to.name}" (${[...via, c.name, to.name].join(' -> ')})`, r);
        }
        if (to) walk(to, [...via, c.name]);
      }
      onPath.delete(c);
      done.add(c);
    };
    walk(start, []);
  }
  t.links = links;
}

/** One table in iptables-save format; rule counters as `[pkts:bytes]` prefixes when asked. */
export function saveTable(t: TableState, counters: boolean): string[] {
  const out = [`*${t.name}`];
  const builtins = BUILTIN_CHAINS[t.name].map((n) => t.chains.get(n)!);
  const users = [...t.chains.values()].filter((c) => !c.builtin).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const c of builtins) out.push(`:${c.name} ${c.policy} [${c.policyCounters.pkts}:${c.policyCounters.bytes}]`);
  for (const c of users) out.push(`:${c.name} - [0:0]`);
  for (const c of [...builtins, ...users]) {
    for (const r of c.rules) {
      const line = `-A ${c.name}${r.spec ? ' ' + r.spec : ''}`;
      out.push(counters ? `[${r.counters.pkts}:${r.counters.bytes}] ${line}` : line);
    }
  }
  out.push('COMMIT');
  return out;
}
