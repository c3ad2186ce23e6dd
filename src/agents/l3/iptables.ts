// The L3 agent's iptables tables, laid out as Neutron's iptables_manager writes them for a
// router namespace: every built-in chain jumps to its wrapped twin (`neutron-l3-agent-X`),
// the agent's own chains are wrapped too, filter has `neutron-filter-top` -> `local`, and
// nat's POSTROUTING ends in `neutron-postrouting-bottom` -> `snat`. Rules name chains as
// `$chain` (wrapped) the way Neutron's callers write them.
import { iptablesText } from '../../host/build.js';
import { L3_AGENT_CHAIN_PREFIX, wrappedChain } from '../../host/names.js';
import type { IptablesTable } from '../../host/state.js';

/** Built-in chains per table, and which of them iptables_manager wraps. */
const BUILTIN: Record<IptablesTable, string[]> = {
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};
const WRAPPED: Record<IptablesTable, string[]> = {
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'OUTPUT', 'FORWARD'],
};

export const FILTER_TOP = 'neutron-filter-top';
export const POSTROUTING_BOTTOM = 'neutron-postrouting-bottom';

export const wrap = (chain: string) => wrappedChain(L3_AGENT_CHAIN_PREFIX, chain);

/** One table being filled in: `addChain('snat')`, `addRule('snat', '-j $float-snat')`. */
export class WrappedTable {
  private readonly chains = new Set<string>();
  private readonly rules = new Map<string, string[]>();
  /** Rules of the unwrapped neutron-* chains. */
  private readonly bottom: string[] = [];

  constructor(readonly table: IptablesTable) {
    for (const c of WRAPPED[table]) this.addChain(c);
    if (table === 'filter') {
      this.addChain('local');
      this.bottom.push(`-A ${FILTER_TOP} -j ${wrap('local')}`);
    }
    if (table === 'nat') {
      this.addChain('float-snat');
      this.addChain('snat');
      this.bottom.push(`-A ${POSTROUTING_BOTTOM} -m comment --comment "Perform source NAT on outgoing traffic." -j ${wrap('snat')}`);
    }
  }

  addChain(chain: string): this {
    this.chains.add(chain);
    return this;
  }

  /** Appends `-A <wrapped chain> <rule>`; `$name` in the rule is the wrapped chain `name`. */
  addRule(chain: string, rule: string): this {
    if (!this.chains.has(chain)) throw new Error(`iptables ${this.table}: rule "${rule}" for unknown chain "${chain}"`);
    const text = rule.replace(/\$([A-Za-z0-9_-]+)/g, (_m, c: string) => {
      if (!this.chains.has(c)) throw new Error(`iptables ${this.table}: rule "${rule}" jumps to unknown chain "${c}"`);
      return wrap(c);
    });
    const list = this.rules.get(chain) ?? [];
    list.push(text);
    this.rules.set(chain, list);
    return this;
  }

  /** The `iptables-restore` text: built-ins, then chains sorted as iptables-save lists them. */
  text(): string {
    const user = [...this.chains].map(wrap);
    if (this.table === 'filter') user.push(FILTER_TOP);
    if (this.table === 'nat') user.push(POSTROUTING_BOTTOM);
    user.sort();
    const decl: Array<[string, string]> = [...BUILTIN[this.table].map((c): [string, string] => [c, 'ACCEPT']), ...user.map((c): [string, string] => [c, '-'])];
    // Jumps from the built-ins first, in iptables_manager's order: filter-top before the
    // wrapped chain, the nat bottom after it.
    const lines: string[] = [];
    for (const b of BUILTIN[this.table]) {
      const top = this.table === 'filter' && b !== 'INPUT';
      if (top) lines.push(`-A ${b} -j ${FILTER_TOP}`);
      if (WRAPPED[this.table].includes(b)) lines.push(`-A ${b} -j ${wrap(b)}`);
      if (this.table === 'nat' && b === 'POSTROUTING') lines.push(`-A POSTROUTING -j ${POSTROUTING_BOTTOM}`);
    }
    lines.push(...this.bottom);
    for (const c of this.chains) for (const r of this.rules.get(c) ?? []) lines.push(`-A ${wrap(c)} ${r}`);
    return iptablesText(this.table, decl, lines);
  }
}

/** The tables of one namespace. */
export class IptablesManager {
  private readonly tables = new Map<IptablesTable, WrappedTable>();

  table(t: IptablesTable): WrappedTable {
    let x = this.tables.get(t);
    if (!x) this.tables.set(t, (x = new WrappedTable(t)));
    return x;
  }

  get filter() {
    return this.table('filter');
  }
  get nat() {
    return this.table('nat');
  }
  get mangle() {
    return this.table('mangle');
  }
  get raw() {
    return this.table('raw');
  }

  /** Text per table, for `Namespace.iptables`. */
  texts(): Partial<Record<IptablesTable, string>> {
    const out: Partial<Record<IptablesTable, string>> = {};
    for (const [t, x] of this.tables) out[t] = x.text();
    return out;
  }
}
