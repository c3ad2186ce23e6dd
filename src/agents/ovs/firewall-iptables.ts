// One iptables table as Neutron's iptables_manager keeps it in memory (IptablesTable):
// wrapped chains (`<binary>-<name[:11]>`), unwrapped shared chains (`neutron-filter-top`),
// rules with `$chain` jump targets wrapped, comments placed where iptables-save prints
// them, "top" rules ahead of the others. `render` gives the table as iptables-save shows it
// once Neutron's restore has run: built-in chains, then every user chain sorted, each
// chain's rules in Neutron's order (top rules first), an exact duplicate kept only at its
// last place (iptables_manager's `_weed_out_duplicates`).

import { MAX_CHAIN_LEN, MAX_CHAIN_LEN_WRAP } from '../../host/names.js';
import type { IptablesTable } from '../../host/state.js';

/** `iptables_manager.get_chain_name`: wrapped names are cut to 11, others to 28. */
export function chainName(name: string, wrap: boolean): string {
  return name.slice(0, wrap ? MAX_CHAIN_LEN_WRAP : MAX_CHAIN_LEN);
}

/**
 * `iptables_manager.comment_rule`: iptables-save prints the comment match just before the
 * jump, so Neutron writes it there (first when the rule is only a jump).
 */
export function commentRule(rule: string, comment?: string): string {
  if (!comment) return rule;
  const c = `-m comment --comment "${comment}"`;
  if (rule.startsWith('-j')) return `${c} ${rule}`;
  const j = rule.indexOf(' -j ');
  if (j < 0) return `${rule} ${c}`;
  return `${rule.slice(0, j)} ${c} ${rule.slice(j + 1)}`;
}

interface TableRule {
  /** The full chain name the rule is appended to. */
  chain: string;
  /** `-A <chain> ...` */
  line: string;
  top: boolean;
}

const BUILTINS: Record<IptablesTable, string[]> = {
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};

export class WrappedTable {
  private readonly wrapped = new Set<string>();
  private readonly unwrapped = new Set<string>();
  private readonly rules: TableRule[] = [];

  constructor(
    readonly table: IptablesTable,
    /** The binary name cut to 16, e.g. `neutron-openvswi`. */
    readonly wrapName: string,
  ) {}

  addChain(name: string, wrap = true): void {
    (wrap ? this.wrapped : this.unwrapped).add(chainName(name, wrap));
  }

  /** `add_rule`: `rule` without `-A <chain>`; `$name` words become wrapped chain names. */
  addRule(chain: string, rule: string, o: { wrap?: boolean; top?: boolean; comment?: string } = {}): void {
    const wrap = o.wrap ?? true;
    const c = chainName(chain, wrap);
    if (wrap && !this.wrapped.has(c)) throw new Error(`Unknown chain "${c}" in table ${this.table} (rule "${rule}")`);
    const body = rule.includes('$')
      ? rule
          .split(' ')
          // `_wrap_target_chain`: always the wrapped name (`wrap` only sets the cut).
          .map((w) => (w.startsWith('$') ? `${this.wrapName}-${chainName(w.slice(1), wrap)}` : w))
          .join(' ')
      : rule;
    const full = wrap ? `${this.wrapName}-${c}` : c;
    this.rules.push({ chain: full, line: commentRule(`-A ${full} ${body}`.trim(), o.comment), top: o.top ?? false });
  }

  /** The table as iptables-restore input (and as iptables-save prints it back). */
  render(): string {
    const builtins = BUILTINS[this.table];
    const user = [...[...this.unwrapped].filter((c) => !builtins.includes(c)), ...[...this.wrapped].map((c) => `${this.wrapName}-${c}`)].sort(byCodePoint);
    const order = [...builtins, ...user];
    // Later duplicates win, as iptables_manager weeds them from the end.
    const lastAt = new Map<string, number>();
    this.rules.forEach((r, i) => lastAt.set(r.line, i));
    const kept = this.rules.filter((r, i) => lastAt.get(r.line) === i);
    const byChain = new Map<string, TableRule[]>(order.map((c) => [c, []]));
    for (const r of kept) {
      const list = byChain.get(r.chain);
      if (!list) throw new Error(`Rule "${r.line}" is in chain ${r.chain}, which table ${this.table} does not declare`);
      list.push(r);
    }
    const lines = [`*${this.table}`];
    for (const c of builtins) lines.push(`:${c} ACCEPT [0:0]`);
    for (const c of user) lines.push(`:${c} - [0:0]`);
    for (const c of order) {
      const rs = byChain.get(c)!;
      for (const r of rs) if (r.top) lines.push(r.line);
      for (const r of rs) if (!r.top) lines.push(r.line);
    }
    lines.push('COMMIT');
    return lines.join('\n') + '\n';
  }
}

/** Python's `sorted` on str (code points), independent of the locale. */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
