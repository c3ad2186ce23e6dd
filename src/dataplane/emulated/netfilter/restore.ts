// iptables-restore input: `*table` blocks of chain declarations and commands, each ended
// by COMMIT. Every table is staged on a copy and checked at COMMIT; the whole input is
// applied only if all of it is valid, so a bad line leaves the namespace unchanged.
//
// Without --noflush a table named in the input loses its rules and user chains first;
// with --noflush the commands apply to what is there, and declaring an existing user
// chain (`:name - [0:0]`) flushes it, as iptables-restore -n does.

import type { Ipsets } from './ipset.js';
import { compileRule, RuleError, type CompiledRule, type RuleEnv } from './rule.js';
import {
  cloneTable,
  CommitError,
  commitTable,
  flushedTable,
  referencesTo,
  type Chain,
  type Policy,
  type TableState,
} from './tables.js';
import { tokenize, TokenizeError } from './tokenize.js';
import { TABLES, type NfTable } from './types.js';

export class IptablesRestoreError extends Error {
  constructor(
    readonly reason: string,
    readonly line: number,
    readonly text: string,
    readonly token?: string,
  ) {
    super(`iptables-restore: line ${line}: ${reason}: ${text}`);
    this.name = 'IptablesRestoreError';
  }
}

export interface RestoreOptions {
  /** iptables-restore -n: keep what is there and only apply the commands. */
  noflush?: boolean;
  /** iptables-restore -c: take `[pkts:bytes]` counters from the input. */
  counters?: boolean;
}

const MAX_CHAIN_NAME = 28;
const RESERVED = new Set(['ACCEPT', 'DROP', 'RETURN', 'QUEUE', 'REJECT']);

/** Parses and stages `text`; returns the new state of each table it names. */
export function restoreTables(
  text: string,
  current: Record<NfTable, TableState>,
  ipsets: Ipsets,
  opts: RestoreOptions = {},
): Map<NfTable, TableState> {
  const result = new Map<NfTable, TableState>();
  // Rules compiled from this input (older rules carry line numbers of older inputs).
  const fresh = new Set<CompiledRule>();
  let table: TableState | undefined;
  let tableLine = 0;
  const lines = text.split('\n');

  for (let n = 1; n <= lines.length; n++) {
    const raw = lines[n - 1];
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fail = (reason: string, token?: string): never => {
      throw new IptablesRestoreError(reason, n, line, token);
    };

    if (line.startsWith('*')) {
      if (table) fail(`table "${table.name}" opened at line ${tableLine} has no COMMIT`);
      const name = line.slice(1).trim();
      if (!(TABLES as readonly string[]).includes(name)) fail(`unsupported table "${name}"`, name);
      const base = result.get(name as NfTable) ?? current[name as NfTable];
      table = opts.noflush ? cloneTable(base) : flushedTable(base);
      tableLine = n;
      continue;
    }
    if (line === 'COMMIT') {
      if (!table) fail('COMMIT outside a table');
      try {
        commitTable(table!);
      } catch (e) {
        if (e instanceof CommitError) {
          const where = e.rule && fresh.has(e.rule) ? e.rule.line : undefined;
          if (where !== undefined) throw new IptablesRestoreError(e.message, where, lines[where - 1].trim());
          fail(e.rule ? `${e.message} (rule: ${e.rule.spec})` : e.message);
        }
        throw e;
      }
      result.set(table!.name, table!);
      table = undefined;
      continue;
    }
    if (!table) fail('command outside a table (no "*table" line before it)');
    const t = table!;

    try {
      if (line.startsWith(':')) {
        declareChain(t, line, opts);
        continue;
      }
      let body = line;
      let counters: { pkts: number; bytes: number } | undefined;
      const cm = /^\[(\d+):(\d+)\]\s+(.*)$/.exec(line);
      if (cm) {
        body = cm[3];
        if (opts.counters) counters = { pkts: Number(cm[1]), bytes: Number(cm[2]) };
      }
      command(t, tokenize(body), ipsets, n, counters, fresh);
    } catch (e) {
      if (e instanceof RuleError) fail(e.message, e.token);
      if (e instanceof TokenizeError) fail(e.message);
      throw e;
    }
  }
  if (table) {
    throw new IptablesRestoreError(`COMMIT expected for table "${table.name}"`, tableLine, `*${table.name}`);
  }
  return result;
}

function declareChain(t: TableState, line: string, opts: RestoreOptions): void {
  const m = /^:(\S+)\s+(\S+)(?:\s+\[(\d+):(\d+)\])?\s*$/.exec(line);
  if (!m) throw new RuleError('malformed chain declaration (":NAME POLICY [pkts:bytes]")');
  const [, name, policy, p, b] = m;
  const existing = t.chains.get(name);
  if (existing?.builtin) {
    if (policy !== 'ACCEPT' && policy !== 'DROP') throw new RuleError(`invalid policy "${policy}" for built-in chain ${name}`, policy);
    existing.policy = policy;
    if (opts.counters && p !== undefined) existing.policyCounters = { pkts: Number(p), bytes: Number(b) };
    return;
  }
  if (policy !== '-') throw new RuleError(`user chain "${name}" cannot have a policy ("${policy}")`, policy);
  checkChainName(name);
  if (existing) existing.rules = []; // -n: re-declaring a user chain flushes it
  else t.chains.set(name, newUserChain(name));
}

function newUserChain(name: string): Chain {
  return { name, builtin: false, policy: 'ACCEPT', policyCounters: { pkts: 0, bytes: 0 }, rules: [] };
}

function checkChainName(name: string): void {
  if (name.length > MAX_CHAIN_NAME) throw new RuleError(`chain name "${name}" is longer than ${MAX_CHAIN_NAME} characters`, name);
  if (name.startsWith('-') || name.startsWith('!') || RESERVED.has(name)) throw new RuleError(`invalid chain name "${name}"`, name);
}

function chainOf(t: TableState, name: string | undefined, cmd: string): Chain {
  if (name === undefined) throw new RuleError(`${cmd} needs a chain name`, cmd);
  const c = t.chains.get(name);
  if (!c) throw new RuleError(`chain "${name}" does not exist in table ${t.name}`, name);
  return c;
}

function index(text: string | undefined, max: number, what: string): number {
  if (text === undefined || !/^\d+$/.test(text) || Number(text) < 1) throw new RuleError(`invalid rule number "${text}"`, text);
  const i = Number(text);
  if (i > max) throw new RuleError(`index of ${what} too big: ${i}`, text);
  return i - 1;
}

const ALIASES: Record<string, string> = {
  '--append': '-A',
  '--insert': '-I',
  '--delete': '-D',
  '--replace': '-R',
  '--new-chain': '-N',
  '--new': '-N',
  '--delete-chain': '-X',
  '--flush': '-F',
  '--zero': '-Z',
  '--policy': '-P',
  '--rename-chain': '-E',
};

function command(
  t: TableState,
  words: string[],
  ipsets: Ipsets,
  line: number,
  counters: { pkts: number; bytes: number } | undefined,
  fresh: Set<CompiledRule>,
): void {
  const cmd = ALIASES[words[0]] ?? words[0];
  const env: RuleEnv = {
    table: t.name,
    chain: words[1] ?? '',
    ipsets,
    isUserChain: (n) => t.chains.get(n)?.builtin === false,
    isBuiltinChain: (n) => t.chains.get(n)?.builtin === true,
  };
  const compile = (spec: string[]): CompiledRule => {
    const r = compileRule(spec, env);
    r.line = line;
    if (counters) r.counters = counters;
    fresh.add(r);
    return r;
  };
  switch (cmd) {
    case '-A': {
      const c = chainOf(t, words[1], cmd);
      c.rules.push(compile(words.slice(2)));
      return;
    }
    case '-I': {
      const c = chainOf(t, words[1], cmd);
      let at = 0;
      let spec = words.slice(2);
      if (spec.length && /^\d+$/.test(spec[0])) {
        at = index(spec[0], c.rules.length + 1, 'insertion');
        spec = spec.slice(1);
      }
      c.rules.splice(at, 0, compile(spec));
      return;
    }
    case '-R': {
      const c = chainOf(t, words[1], cmd);
      const at = index(words[2], c.rules.length, 'replacement');
      c.rules[at] = compile(words.slice(3));
      return;
    }
    case '-D': {
      const c = chainOf(t, words[1], cmd);
      if (words.length === 3 && /^\d+$/.test(words[2])) {
        c.rules.splice(index(words[2], c.rules.length, 'deletion'), 1);
        return;
      }
      const spec = compile(words.slice(2)).spec;
      const at = c.rules.findIndex((r) => r.spec === spec);
      if (at < 0) throw new RuleError(`no rule "${spec}" in chain ${c.name} to delete`, words[2]);
      c.rules.splice(at, 1);
      return;
    }
    case '-N': {
      const name = words[1];
      if (name === undefined) throw new RuleError('-N needs a chain name', cmd);
      if (words.length > 2) throw new RuleError(`unexpected word "${words[2]}"`, words[2]);
      checkChainName(name);
      if (t.chains.has(name)) throw new RuleError(`chain "${name}" already exists`, name);
      t.chains.set(name, newUserChain(name));
      return;
    }
    case '-X': {
      const names = words[1] === undefined ? [...t.chains.values()].filter((c) => !c.builtin).map((c) => c.name) : [words[1]];
      for (const name of names) {
        const c = chainOf(t, name, cmd);
        if (c.builtin) throw new RuleError(`cannot delete built-in chain "${name}"`, name);
        if (c.rules.length) throw new RuleError(`chain "${name}" is not empty`, name);
      }
      for (const name of names) {
        t.chains.delete(name);
        if (referencesTo(t, name)) throw new RuleError(`chain "${name}" is still referenced`, name);
      }
      return;
    }
    case '-F': {
      const cs = words[1] === undefined ? [...t.chains.values()] : [chainOf(t, words[1], cmd)];
      for (const c of cs) c.rules = [];
      return;
    }
    case '-Z': {
      const cs = words[1] === undefined ? [...t.chains.values()] : [chainOf(t, words[1], cmd)];
      for (const c of cs) {
        c.policyCounters = { pkts: 0, bytes: 0 };
        c.rules = c.rules.map((r) => ({ ...r, counters: { pkts: 0, bytes: 0 } }));
      }
      return;
    }
    case '-P': {
      const c = chainOf(t, words[1], cmd);
      const p = words[2];
      if (!c.builtin) throw new RuleError(`user chain "${c.name}" has no policy`, c.name);
      if (p !== 'ACCEPT' && p !== 'DROP') throw new RuleError(`invalid policy "${p}"`, p);
      c.policy = p as Policy;
      return;
    }
    case '-E': {
      const c = chainOf(t, words[1], cmd);
      const to = words[2];
      if (to === undefined) throw new RuleError('-E needs a new name', cmd);
      if (c.builtin) throw new RuleError(`cannot rename built-in chain "${c.name}"`, c.name);
      checkChainName(to);
      if (t.chains.has(to)) throw new RuleError(`chain "${to}" already exists`, to);
      // Jumps follow the chain under its new name, as the kernel's jumps are by position.
      t.chains.delete(c.name);
      const old = c.name;
      c.name = to;
      t.chains.set(to, c);
      for (const ch of t.chains.values()) {
        ch.rules = ch.rules.map((r) => {
          if (r.target.kind !== 'jump' || r.target.chain !== old) return r;
          const flag = r.target.goto ? '-g' : '-j';
          return { ...r, target: { ...r.target, chain: to }, targetName: to, spec: r.spec.replace(`${flag} ${old}`, `${flag} ${to}`) };
        });
      }
      return;
    }
    default:
      throw new RuleError(`unsupported command "${words[0]}"`, words[0]);
  }
}
