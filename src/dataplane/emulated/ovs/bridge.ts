// One Open vSwitch bridge: ports with OpenFlow numbers and VLAN tags, flow tables, the NORMAL
// learning switch, and the translation of a packet through the pipeline from table 0 (OVS's
// ofproto-dpif-xlate, in its essentials). Actions run in order on one working copy of the
// packet; `output` emits a copy of the packet as it is at that moment.

import type { Frame } from '../packet.js';
import { SHARED_TEXT_MAX, parseActions, type Action } from './actions.js';
import { Classifier, N_TABLES, hashMatch } from './classifier.js';
import { OvsFlowError, OvsPortError } from './errors.js';
import * as fields from './fields.js';
import * as key from './key.js';
import { learnFrom, learnedActions, sameSig, type LearnSpec } from './learn.js';
import * as match from './match.js';
import { MacLearningTable, type MacTableEntry } from './normal.js';
import { reuseOutputs } from './outputs.js';
import { parseFlow, type ParsedFlow } from './parse.js';
import { Rule, RuleSpec } from './rule.js';
import * as values from './values.js';

// Module-local copies of what the per-packet path uses (see key.ts for why).
const { N_WORDS, VLAN_CFI, VLAN_VID_MASK, onesBig, readField, writeField } = fields;
const W = { ...fields.W };
const OFPP = { ...match.OFPP };
const { portName } = match;
const { frameBytes, frameToKey, keyToFrame, keyTunId } = key;
const { hex, macText } = values;

/** OVS's limits on resubmit recursion and on resubmits per packet. */
export const MAX_DEPTH = 64;
export const MAX_RESUBMITS = 4096;

export interface OvsPort {
  name: string;
  ofport: number;
  /** Access port VLAN (`tag=N`); absent = trunk. */
  tag?: number;
  /** Trunk port's allowed VLANs (`trunks=...`); absent/empty = all. */
  trunks?: number[];
}

export interface AddPortOptions {
  tag?: number;
  trunks?: number[];
  /** `ofport_request`: a specific OpenFlow port number. */
  ofport?: number;
}

export interface OvsOutput {
  port: string;
  ofport: number;
  frame: Frame;
  /** tun_id of the packet at output (set_tunnel, or kept from a tunnel input), when non-zero. */
  tunId?: bigint | number;
}

export interface OvsStep {
  bridge: string;
  table: number;
  /** Resubmit/goto nesting: 0 for the table 0 lookup. */
  depth: number;
  kind: 'flow' | 'miss' | 'error';
  priority?: number;
  /** Hex text (`0x1f`), JSON-safe. */
  cookie?: string;
  /** The flow as written (or, for learned flows, in dump-flows form). */
  flow?: string;
  /**
   * The packet as this flow hands it on: after its actions, or, when it resubmits/goes to
   * another table, as it is at that moment (the next steps then show the nested tables).
   */
  frame: Frame;
  /** When actions after a resubmit changed the packet further: the packet at the flow's end. */
  frameAtEnd?: Frame;
  tunId?: bigint | number;
  /** Ports this flow's own actions output to (NORMAL's choice included). */
  outputs: string[];
  /** What else happened: NORMAL decisions, skipped outputs, learned flows, limits. */
  notes?: string[];
}

export interface ProcessOptions {
  /** tun_id for a packet arriving on a tunnel port. */
  tunId?: bigint | number;
  /** Record steps (default true); off for benchmarks. */
  trace?: boolean;
}

export interface ProcessResult {
  outputs: OvsOutput[];
  steps: OvsStep[];
  /** Set when translation failed (recursion limit...): the packet is dropped as OVS drops it. */
  error?: string;
}

export interface DumpedFlow {
  table: number;
  priority: number;
  cookie: bigint;
  match: string;
  actions: string;
  nPackets: number;
  nBytes: number;
  idleTimeout: number;
  hardTimeout: number;
  learned: boolean;
  /** As written (or generated for learned flows). */
  text: string;
  /** ovs-ofctl dump-flows line: ` cookie=0x1, duration=..s, table=0, n_packets=.., ...`. */
  dump: string;
}

interface ExecState {
  /** A resubmit/goto_table ran: the step's frame was taken at that moment. */
  handedOff: boolean;
  /** The packet may have changed after the hand-off. */
  changedAfter: boolean;
}

interface Xlate {
  w: Int32Array;
  base: Frame;
  bytes: number;
  outputs: OvsOutput[];
  steps: OvsStep[] | undefined;
  resubmits: number;
  error?: string;
  now: number;
}

/**
 * Parsed flows by text, shared across the bridges of a process. An emulated cloud of N hosts
 * writes most flows (unicast to a peer, ARP responder entries) on many hosts with the same
 * text; a parse (match and actions, immutable once built; counters live in each bridge's
 * Rule) then costs its time and memory once. A hit is reused only where the port names it
 * resolved to numbers resolve the same way on the asking bridge, and the ports it outputs to
 * exist there. Outputs keep the port's name, looked up when a packet leaves: a peer's unicast
 * flow outputs to the tunnel named after the peer, whose number differs from host to host,
 * and a number per host made a parse (and a rule spec) per host. OVS keeps the number; the two
 * differ only for a flow left behind while its port is deleted and added again under another
 * number, which the agents never do (they rewrite a re-created port's flows).
 */
const PARSED = new Map<string, Parse[]>();
/**
 * A parse as the bridges share it: the port names it resolved to numbers, those whose presence
 * it asked about, and its rule spec once a bridge installs it (made once for them all: a weak
 * map from parse to spec cost a lookup per flow and host).
 */
interface Parse {
  readonly flow: ParsedFlow;
  readonly ports: ReadonlyArray<[string, number | undefined]>;
  readonly named: readonly string[];
  spec?: RuleSpec;
}
const PARSED_MAX = 1_000_000;
/** Numberings remembered per text (hosts that plugged the same ports in another order). */
const VARIANTS_MAX = 4;
/** Long flows a bridge keeps its last parse of (a flood flow per network). */
const LONG_FLOWS_MAX = 1024;
/** Where a flow's text turns from what it matches to what it does (as `renderFlow` writes it). */
const ACTIONS = ',actions=';

/** A long flow's last parse on a bridge (parseLong), and the bridge's count of deleted ports then. */
interface LongFlow {
  actions: string;
  flow: ParsedFlow;
  ports: ReadonlyArray<[string, number | undefined]>;
  gone: number;
}

/** A parse's rule spec (one per shared parse: Parse.spec; another cookie makes its own). */
function specOf(pf: ParsedFlow, cookie = pf.cookie): RuleSpec {
  return new RuleSpec({
    table: pf.table,
    priority: pf.priority,
    cookie,
    match: pf.match,
    actions: pf.actions!,
    idleTimeout: pf.idleTimeout,
    hardTimeout: pf.hardTimeout,
    importance: pf.importance,
    text: pf.text,
  });
}

export class OvsBridge {
  readonly name: string;
  readonly flows = new Classifier();
  readonly macTable: MacLearningTable;
  private readonly portsByName = new Map<string, OvsPort>();
  private readonly portsByNum = new Map<number, OvsPort>();
  /** Sorted by ofport: flood order. */
  private portList: OvsPort[] = [];
  private nextOfport = 1;
  private readonly clock: () => number;
  private readonly resolve = { portNumber: (n: string) => this.portNumber(n) };

  constructor(name: string, opts: { clock?: () => number; macAgingMs?: number } = {}) {
    this.name = name;
    this.clock = opts.clock ?? Date.now;
    this.macTable = new MacLearningTable(opts.macAgingMs);
    // Every OVS bridge has an internal port named after it, OpenFlow port LOCAL.
    this.insertPort({ name, ofport: OFPP.LOCAL });
  }

  // ---- ports ----

  addPort(name: string, opts: AddPortOptions = {}): OvsPort {
    if (this.portsByName.has(name)) throw new OvsPortError(`Port '${name}' already exists on bridge ${this.name}`);
    if (opts.tag !== undefined && (opts.tag < 0 || opts.tag > 4095)) throw new OvsPortError(`Invalid tag ${opts.tag} for port '${name}'`);
    let ofport = opts.ofport;
    if (ofport !== undefined) {
      if (ofport < 1 || ofport >= OFPP.MAX) throw new OvsPortError(`Invalid ofport ${ofport} for port '${name}'`);
      if (this.portsByNum.has(ofport)) throw new OvsPortError(`ofport ${ofport} is already used on bridge ${this.name}`);
    } else {
      // OVS hands out numbers upwards and does not reuse a freed one until it wraps.
      while (this.portsByNum.has(this.nextOfport)) this.nextOfport++;
      ofport = this.nextOfport++;
    }
    const port: OvsPort = { name, ofport };
    if (opts.tag !== undefined) port.tag = opts.tag;
    if (opts.trunks?.length) port.trunks = [...opts.trunks];
    this.insertPort(port);
    return port;
  }

  /** Changes a port's VLAN tag (`ovs-vsctl set Port X tag=N`), or removes it with undefined. */
  setPortTag(name: string, tag: number | undefined): void {
    const p = this.port(name);
    if (!p) throw new OvsPortError(`No port '${name}' on bridge ${this.name}`);
    if (tag === undefined) delete p.tag;
    else p.tag = tag;
    this.macTable.flushPort(p.ofport);
  }

  delPort(name: string): void {
    const p = this.portsByName.get(name);
    if (!p || p.ofport === OFPP.LOCAL) throw new OvsPortError(`No port '${name}' on bridge ${this.name}`);
    this.portsByName.delete(name);
    this.portsByNum.delete(p.ofport);
    this.portsGone++;
    this.portList.splice(this.portList.indexOf(p), 1);
    this.macTable.flushPort(p.ofport);
  }

  port(name: string): OvsPort | undefined {
    return this.portsByName.get(name) ?? (name === 'LOCAL' ? this.portsByNum.get(OFPP.LOCAL) : undefined);
  }

  portByNumber(ofport: number): OvsPort | undefined {
    return this.portsByNum.get(ofport);
  }

  ports(): OvsPort[] {
    return [...this.portList];
  }

  portNumber(name: string): number | undefined {
    return this.port(name)?.ofport;
  }

  private insertPort(p: OvsPort): void {
    this.portsByName.set(p.name, p);
    this.portsByNum.set(p.ofport, p);
    // In place (a bridge gets a tunnel port per peer host: a sort per port was the square of
    // the ports per bridge); new numbers are mostly the highest but LOCAL's.
    const list = this.portList;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid].ofport < p.ofport) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, p);
  }

  // ---- flows ----

  /**
   * Parses a flow against this bridge's port names without installing it. A parse is shared
   * with every bridge that gives the port names it resolved the same numbers (see PARSED).
   */
  parseFlow(text: string): ParsedFlow {
    return this.parse(text).flow;
  }

  private parse(text: string): Parse {
    if (text.length > SHARED_TEXT_MAX) return { flow: this.parseLong(text), ports: [], named: [] };
    let variants = PARSED.get(text);
    if (variants) for (const v of variants) if (this.resolvesAs(v)) return v;
    const v: Parse = this.parseResolving(text);
    if (!variants) {
      if (PARSED.size >= PARSED_MAX) PARSED.clear();
      PARSED.set(text, (variants = []));
    }
    if (variants.length >= VARIANTS_MAX) variants.shift();
    variants.push(v);
    return v;
  }

  /** A shared parse holds here when its port names give the same numbers and the ports it names exist (plain loops: this runs per flow and host). */
  private resolvesAs(v: Parse): boolean {
    if (!this.numbersHold(v.ports)) return false;
    for (let i = 0; i < v.named.length; i++) if (this.port(v.named[i]) === undefined) return false;
    return true;
  }

  /** Every port name resolves here to the number a parse resolved it to. */
  private numbersHold(ports: ReadonlyArray<[string, number | undefined]>): boolean {
    for (let i = 0; i < ports.length; i++) if (this.portNumber(ports[i][0]) !== ports[i][1]) return false;
    return true;
  }

  /** A full parse, with the port names it resolved to numbers and those it asked about. */
  private parseResolving(text: string): { flow: ParsedFlow; ports: Array<[string, number | undefined]>; named: string[] } {
    const ports: Array<[string, number | undefined]> = [];
    const named: string[] = [];
    const portNumber = (name: string) => {
      const n = this.portNumber(name);
      ports.push([name, n]);
      return n;
    };
    const portKnown = (name: string) => {
      named.push(name);
      return this.port(name) !== undefined;
    };
    return { flow: parseFlow(text, { portNumber, portKnown }, 'add'), ports, named };
  }

  /** Long flows as last parsed here, by their text up to `actions=` (table, priority, cookie, match). */
  private readonly longFlows = new Map<string, LongFlow>();
  /** Ports deleted so far: a long flow's outputs kept from a parse made since then still name ports that are here. */
  private portsGone = 0;

  /**
   * A long flow is one host's own (a flood flow): not shared, and each version would stay. Its
   * last version on this bridge is kept instead, for the next one to reuse (outputs.ts).
   */
  private parseLong(text: string): ParsedFlow {
    const flowText = text.trim();
    const at = flowText.indexOf(ACTIONS);
    if (at < 0) return this.parseResolving(text).flow; // refused, in the parser's words
    const head = flowText.slice(0, at);
    const actions = flowText.slice(at + ACTIONS.length);
    const last = this.longFlows.get(head);
    const again = last && this.reuseLast(flowText, actions, last);
    if (again) {
      this.longFlows.set(head, { actions, flow: again, ports: last.ports, gone: this.portsGone });
      return again;
    }
    const { flow, ports } = this.parseResolving(text);
    if (this.longFlows.size >= LONG_FLOWS_MAX) this.longFlows.clear();
    this.longFlows.set(head, { actions, flow, ports, gone: this.portsGone });
    return flow;
  }

  /**
   * The last parse of a long flow with the same text up to its actions, the actions that
   * changed parsed anew; undefined where a port name resolves otherwise now, or where only a
   * full parse does (which also gives any error its own words).
   */
  private reuseLast(flowText: string, actionsText: string, last: LongFlow): ParsedFlow | undefined {
    if (!this.numbersHold(last.ports)) return undefined;
    const ctx = { portNumber: (name: string) => this.portNumber(name), portKnown: (name: string) => this.port(name) !== undefined };
    let actions: Action[] | undefined;
    try {
      actions = reuseOutputs(last.actions, last.flow.actions!, actionsText, (items) => parseActions(items.join(','), flowText, ctx, { vlan: undefined, table: last.flow.table }));
    } catch {
      return undefined;
    }
    if (!actions) return undefined;
    // The outputs kept name ports that must still be here (OVS refuses a flow naming a missing
    // one); the new ones were checked by their parse, and where no port went since the last
    // parse the kept ones are (a flood flow names a thousand tunnels).
    if (last.gone !== this.portsGone && actions.some((a) => a.kind === 'output' && a.name !== undefined && !this.port(a.name))) return undefined;
    return { ...last.flow, text: flowText, actions };
  }

  /** Adds one flow; returns it as the bridge keeps it. */
  addFlow(text: string): Rule {
    const spec = this.install(this.parse(text));
    return this.flows.find(spec.table, spec.match, spec.priority, spec.hash)!;
  }

  /** Adds flows; all are parsed first, so one bad flow leaves the bridge unchanged. */
  addFlows(texts: string[]): void {
    const parsed = texts.map((t) => this.parse(t));
    for (const p of parsed) this.install(p);
  }

  private install(p: Parse, cookie?: bigint): RuleSpec {
    const pf = p.flow;
    const spec = cookie === undefined || cookie === pf.cookie ? (p.spec ??= specOf(pf)) : specOf(pf, cookie);
    const now = this.clock();
    // Whole milliseconds; the times a timeout reads only where one is set.
    const created = Math.floor(now);
    // A new flow without timeouts is its spec and time alone (classifier.ts): no Rule to make.
    if (!pf.idleTimeout && !pf.hardTimeout && this.flows.insertBare(spec, created)) return spec;
    const rule = new Rule(spec);
    rule.created = created;
    if (pf.idleTimeout || pf.hardTimeout) rule.stamp(now);
    // OpenFlow 1.3: a replaced flow's counters carry over unless reset_counts is given.
    this.flows.insert(rule, !pf.resetCounts);
    return rule.spec;
  }

  /**
   * `ovs-ofctl del-flows` with a spec: `cookie=0x5/-1`, `table=21`, match fields (non-strict:
   * every flow at least as specific), or with `--strict ` in front: same match and priority.
   * An empty spec deletes every flow. Returns the number deleted.
   */
  delFlows(spec = ''): number {
    let text = spec.trim();
    let strict = false;
    if (text.startsWith('--strict')) {
      strict = true;
      text = text.slice('--strict'.length).trim();
    }
    const pf = parseFlow(text, this.resolve, 'spec');
    const victims: Rule[] = [];
    const candidates = strict
      ? this.strictMatches(pf)
      : pf.cookieMask === onesBig(64)
        ? this.flows.withCookie(pf.cookie)
        : [...this.flows.rules(pf.tableGiven ? pf.table : undefined)];
    for (const r of candidates) {
      if (pf.tableGiven && r.table !== pf.table) continue;
      if (pf.cookieMask !== undefined && (r.cookie & pf.cookieMask) !== (pf.cookie & pf.cookieMask)) continue;
      if (strict) {
        if (r.priority !== pf.priority || !r.match.sameAs(pf.match)) continue;
      } else if (!r.match.isWithin(pf.match)) continue;
      victims.push(r);
    }
    for (const r of victims) this.flows.remove(r);
    return victims.length;
  }

  /** The flows of exactly this match and priority: in its table, or in every table when none is given. */
  private strictMatches(pf: ParsedFlow): Rule[] {
    const hash = hashMatch(pf.match);
    const out: Rule[] = [];
    for (let t = pf.tableGiven ? pf.table : 0; t <= (pf.tableGiven ? pf.table : N_TABLES - 1); t++) {
      const r = this.flows.find(t, pf.match, pf.priority, hash);
      if (r) out.push(r);
    }
    return out;
  }

  /**
   * Makes the flows carrying `cookie` exactly `texts` (an agent's "replace my flows"):
   * flows not in `texts` go, new ones come, unchanged ones keep their counters. Texts without
   * a cookie get this one; a text with another cookie is an error. Atomic: all texts are
   * parsed before anything changes.
   */
  replaceFlowsByCookie(cookie: bigint | number, texts: string[]): { added: number; deleted: number; kept: number } {
    const c = BigInt(cookie);
    const parsed = texts.map((t) => {
      const p = this.parse(t);
      if (/(^|[\s,])cookie=/.test(t.split('actions=')[0]) && p.flow.cookie !== c)
        throw new OvsFlowError(p.flow.text, `cookie=${hex(p.flow.cookie)}`, `cookie differs from the replaced cookie ${hex(c)}`);
      return p;
    });
    // By spec: the flows as the classifier keeps them (see classifier.ts Entry).
    const old = new Set(this.flows.withCookie(c).map((r) => r.spec));
    let added = 0;
    let kept = 0;
    for (const p of parsed) {
      const pf = p.flow;
      const existing = this.flows.find(pf.table, pf.match, pf.priority, hashMatch(pf.match));
      if (
        existing &&
        existing.cookie === c &&
        existing.sameActions(pf.actions!) &&
        existing.idleTimeout === pf.idleTimeout &&
        existing.hardTimeout === pf.hardTimeout
      ) {
        old.delete(existing.spec);
        kept++;
        continue;
      }
      old.delete(this.install(p, c));
      if (existing) old.delete(existing.spec);
      added++;
    }
    for (const r of old) this.flows.remove(r);
    return { added, deleted: old.size, kept };
  }

  /** Every flow (expired ones removed first), by table then descending priority. */
  dumpFlows(filter?: { table?: number; cookie?: bigint | number }): DumpedFlow[] {
    const now = this.clock();
    this.expire(now);
    const out: DumpedFlow[] = [];
    const rules =
      filter?.cookie !== undefined ? this.flows.withCookie(BigInt(filter.cookie)) : [...this.flows.rules(filter?.table)];
    for (const r of rules) {
      if (filter?.table !== undefined && r.table !== filter.table) continue;
      const match = r.match.toString();
      // As OVS prints them: an output kept by port name shows the port's number here.
      const actions = r.actions.length ? r.actions.map((a) => (a.kind === 'output' && a.name !== undefined ? `output:${this.portNumber(a.name) ?? a.name}` : a.text)).join(',') : 'drop';
      const secs = ((now - r.created) / 1000).toFixed(3);
      const timeouts = `${r.idleTimeout ? `idle_timeout=${r.idleTimeout}, ` : ''}${r.hardTimeout ? `hard_timeout=${r.hardTimeout}, ` : ''}`;
      out.push({
        table: r.table,
        priority: r.priority,
        cookie: r.cookie,
        match,
        actions,
        nPackets: r.nPackets,
        nBytes: r.nBytes,
        idleTimeout: r.idleTimeout,
        hardTimeout: r.hardTimeout,
        learned: r.learned,
        text: r.text,
        dump: ` cookie=${hex(r.cookie)}, duration=${secs}s, table=${r.table}, n_packets=${r.nPackets}, n_bytes=${r.nBytes}, ${timeouts}priority=${r.priority}${match ? ',' + match : ''} actions=${actions}`,
      });
    }
    return out.sort((a, b) => a.table - b.table || b.priority - a.priority || a.match.localeCompare(b.match));
  }

  /** `ovs-ofctl dump-flows` text. */
  /** The text of every flow written to the bridge (not learned), as written: what a driver reads back, without formatting dumps. */
  writtenFlows(): string[] {
    this.expire();
    const out: string[] = [];
    for (const r of this.flows.rules()) if (!r.learned) out.push(r.text);
    return out;
  }

  dumpFlowsText(filter?: { table?: number; cookie?: bigint | number }): string {
    return this.dumpFlows(filter)
      .map((f) => f.dump)
      .join('\n');
  }

  get flowCount(): number {
    return this.flows.count;
  }

  /** Removes flows whose idle or hard timeout has passed. */
  expire(now = this.clock()): number {
    const dead: Rule[] = [];
    for (const r of this.flows.rules()) if (isExpired(r, now)) dead.push(r);
    for (const r of dead) this.flows.remove(r);
    return dead.length;
  }

  /** `ovs-appctl fdb/show`, port numbers replaced by names. */
  fdb(): Array<MacTableEntry & { portName: string }> {
    return this.macTable
      .entries(this.clock())
      .map((e) => ({ ...e, portName: this.portsByNum.get(e.port)?.name ?? String(e.port) }));
  }

  // ---- packets ----

  /** Runs `frame`, received on port `inPortName`, through the pipeline from table 0. */
  process(frame: Frame, inPortName: string, opts: ProcessOptions = {}): ProcessResult {
    const inPort = this.port(inPortName);
    if (!inPort) throw new OvsPortError(`No port '${inPortName}' on bridge ${this.name}`);
    // One key array per bridge, reused: process() runs to completion without re-entering
    // this bridge (patch ports are crossed by the caller after it returns).
    const scratch = this.busy ? undefined : this.scratch;
    this.busy = true;
    try {
      return this.run(frame, opts, frameToKey(frame, inPort.ofport, opts.tunId, scratch));
    } finally {
      if (scratch) this.busy = false;
    }
  }

  private readonly scratch = new Int32Array(N_WORDS);
  private busy = false;

  private run(frame: Frame, opts: ProcessOptions, w: Int32Array): ProcessResult {
    const x: Xlate = {
      w,
      base: frame,
      bytes: frameBytes(frame),
      outputs: [],
      steps: opts.trace === false ? undefined : [],
      resubmits: 0,
      now: -1,
    };
    this.lookupAndRun(x, 0, 0, undefined);
    if (x.error !== undefined) return { outputs: [], steps: x.steps ?? [], error: x.error };
    return { outputs: x.outputs, steps: x.steps ?? [] };
  }

  private now(x: Xlate): number {
    if (x.now < 0) x.now = this.clock();
    return x.now;
  }

  private lookupAndRun(x: Xlate, table: number, depth: number, lookupInPort: number | undefined): void {
    const w = x.w;
    let savedInPort = 0;
    if (lookupInPort !== undefined) {
      savedInPort = w[W.IN_PORT];
      w[W.IN_PORT] = lookupInPort;
    }
    let rule = this.flows.lookup(table, w);
    while (rule !== undefined && (rule.idleTimeout !== 0 || rule.hardTimeout !== 0) && isExpired(rule, this.now(x))) {
      this.flows.remove(rule);
      rule = this.flows.lookup(table, w);
    }
    // The in_port given to resubmit is for the lookup only (ovs-actions(7)).
    if (lookupInPort !== undefined) w[W.IN_PORT] = savedInPort;
    if (rule === undefined) {
      if (x.steps) x.steps.push({ bridge: this.name, table, depth, kind: 'miss', frame: keyToFrame(w, x.base), outputs: [], notes: ['table miss: drop'] });
      return;
    }
    rule.count(x.bytes + ((w[W.VLAN_TCI] & VLAN_CFI) !== 0 && x.base.vlan === undefined ? 4 : 0), rule.idleTimeout !== 0 ? this.now(x) : undefined);
    let step: OvsStep | undefined;
    if (x.steps) {
      step = {
        bridge: this.name,
        table,
        depth,
        kind: 'flow',
        priority: rule.priority,
        cookie: hex(rule.cookie),
        flow: rule.text,
        frame: x.base,
        outputs: [],
      };
      x.steps.push(step);
    }
    const st: ExecState = { handedOff: false, changedAfter: false };
    this.execute(x, rule.actions, table, depth, step, st);
    if (step) {
      if (!st.handedOff) step.frame = keyToFrame(w, x.base);
      else if (st.changedAfter) step.frameAtEnd = keyToFrame(w, x.base);
      const t = keyTunId(w);
      if (t !== 0) step.tunId = t;
    }
  }

  /** Callers test `step` first, so that untraced packets build no strings. */
  private note(step: OvsStep, text: string): void {
    (step.notes ??= []).push(text);
  }

  private fail(x: Xlate, table: number, depth: number, message: string): void {
    if (x.error !== undefined) return;
    x.error = message;
    if (x.steps) x.steps.push({ bridge: this.name, table, depth, kind: 'error', frame: keyToFrame(x.w, x.base), outputs: [], notes: [message] });
  }

  private execute(x: Xlate, actions: Action[], table: number, depth: number, step: OvsStep | undefined, st: ExecState): void {
    const w = x.w;
    for (let i = 0; i < actions.length; i++) {
      if (x.error !== undefined) return;
      const a = actions[i];
      if (st.handedOff && a.kind !== 'output' && a.kind !== 'output_reg' && a.kind !== 'learn') st.changedAfter = true;
      switch (a.kind) {
        case 'set': {
          const ws = a.words;
          for (let k = 0; k < ws.length; k++) {
            const t = ws[k];
            w[t[0]] = (w[t[0]] & ~t[1]) | t[2];
          }
          break;
        }
        case 'output':
          this.output(x, a.name === undefined ? a.port : (this.portsByName.get(a.name)?.ofport ?? OFPP.NONE), step);
          break;
        case 'output_reg': {
          const port = Number((readField(w, a.src.field) >> BigInt(a.src.ofs)) & onesBig(a.src.nbits));
          this.output(x, port, step);
          break;
        }
        case 'resubmit':
        case 'goto_table': {
          if (depth + 1 >= MAX_DEPTH) {
            this.fail(x, table, depth, `over max translation depth ${MAX_DEPTH} (resubmit loop?)`);
            return;
          }
          if (++x.resubmits > MAX_RESUBMITS) {
            this.fail(x, table, depth, `over ${MAX_RESUBMITS} resubmit actions on bridge ${this.name}`);
            return;
          }
          if (step && !st.handedOff) {
            step.frame = keyToFrame(w, x.base);
            st.handedOff = true;
          }
          if (a.kind === 'goto_table') this.lookupAndRun(x, a.table, depth + 1, undefined);
          else this.lookupAndRun(x, a.table ?? table, depth + 1, a.port);
          break;
        }
        case 'mod_vlan_vid': {
          const tci = w[W.VLAN_TCI];
          w[W.VLAN_TCI] = tci & VLAN_CFI ? (tci & ~VLAN_VID_MASK) | a.vid : VLAN_CFI | a.vid;
          break;
        }
        case 'strip_vlan':
          w[W.VLAN_TCI] = 0;
          break;
        case 'push_vlan':
          if (w[W.VLAN_TCI] & VLAN_CFI) {
            this.fail(x, table, depth, 'push_vlan on a packet that already has a VLAN tag: double tagging (QinQ) is not modelled');
            return;
          }
          w[W.VLAN_TCI] = VLAN_CFI;
          break;
        case 'move':
          if (a.copyWords) for (const [s, d] of a.copyWords) w[d] = w[s];
          else {
            const v = (readField(w, a.src.field) >> BigInt(a.src.ofs)) & onesBig(a.src.nbits);
            writeField(w, a.dst.field, v << BigInt(a.dst.ofs), onesBig(a.dst.nbits) << BigInt(a.dst.ofs));
          }
          break;
        case 'dec_ttl': {
          const ttl = w[W.NW_TTL] & 0xff;
          if (ttl <= 1) {
            // OVS sends a packet-in (OFPR_INVALID_TTL) and stops this action list; an outer
            // resubmit level carries on.
            if (step) this.note(step, `dec_ttl: TTL ${ttl} would expire; packet-in to controller (none connected), rest of this flow's actions skipped`);
            return;
          }
          w[W.NW_TTL] = ttl - 1;
          break;
        }
        case 'learn':
          this.learn(x, a.spec, step);
          break;
      }
    }
  }

  private output(x: Xlate, port: number, step: OvsStep | undefined): void {
    const inPort = x.w[W.IN_PORT];
    switch (port) {
      case OFPP.NORMAL:
        this.normal(x, step);
        return;
      case OFPP.FLOOD:
      case OFPP.ALL:
        for (const p of this.portList) if (p.ofport !== inPort) this.emit(x, p, step);
        return;
      case OFPP.IN_PORT: {
        const p = this.portsByNum.get(inPort);
        if (p) this.emit(x, p, step);
        else if (step) this.note(step, `output to IN_PORT ${inPort}: no such port`);
        return;
      }
    }
    if (port === inPort) {
      if (step) this.note(step, `skipping output to input port ${portName(port)} (use in_port/IN_PORT to hairpin)`);
      return;
    }
    const p = this.portsByNum.get(port);
    if (!p) {
      if (step) this.note(step, `output to nonexistent port ${port}: no-op`);
      return;
    }
    this.emit(x, p, step);
  }

  private emit(x: Xlate, p: OvsPort, step: OvsStep | undefined): void {
    const out: OvsOutput = { port: p.name, ofport: p.ofport, frame: keyToFrame(x.w, x.base) };
    const t = keyTunId(x.w);
    if (t !== 0) out.tunId = t;
    x.outputs.push(out);
    if (step) step.outputs.push(p.name);
  }

  /** The NORMAL action: VLAN input processing, MAC learning, forwarding or flooding. */
  private normal(x: Xlate, step: OvsStep | undefined): void {
    const w = x.w;
    const inNum = w[W.IN_PORT];
    const inPort = this.portsByNum.get(inNum);
    if (!inPort) {
      if (step) this.note(step, `NORMAL: input port ${inNum} unknown, dropping`);
      return;
    }
    const tci = w[W.VLAN_TCI];
    const vid = tci & VLAN_CFI ? tci & VLAN_VID_MASK : 0;
    let vlan: number;
    if (inPort.tag !== undefined) {
      if (vid !== 0) {
        if (step) this.note(step, `NORMAL: dropping VLAN ${vid} tagged packet received on port ${inPort.name} configured as VLAN ${inPort.tag} access port`);
        return;
      }
      vlan = inPort.tag;
    } else {
      if (inPort.trunks && !inPort.trunks.includes(vid)) {
        if (step) this.note(step, `NORMAL: dropping VLAN ${vid} packet received on trunk port ${inPort.name} not carrying it`);
        return;
      }
      vlan = vid;
    }
    const dstHi = w[W.ETH_DST_HI] & 0xffff;
    const dstLo = w[W.ETH_DST_LO] >>> 0;
    // 01:80:c2:00:00:0x: IEEE reserved (STP, LACP...), never forwarded without forward-bpdu.
    if (dstHi === 0x0180 && (dstLo & 0xfffffff0) >>> 0 === 0xc2000000) {
      if (step) this.note(step, 'NORMAL: dropping packet to reserved multicast address');
      return;
    }
    const now = this.now(x);
    const srcHi = w[W.ETH_SRC_HI] & 0xffff;
    if ((srcHi & 0x0100) === 0) {
      const src = srcHi * 2 ** 32 + (w[W.ETH_SRC_LO] >>> 0);
      if (this.macTable.learn(vlan, src, inNum, now) && step) this.note(step, `NORMAL: learned ${macText(srcHi, w[W.ETH_SRC_LO])} on port ${inPort.name} in VLAN ${vlan}`);
    }
    if ((dstHi & 0x0100) === 0) {
      const port = this.macTable.lookup(vlan, dstHi * 2 ** 32 + dstLo, now);
      if (port !== undefined) {
        if (port === inNum) {
          if (step) this.note(step, `NORMAL: destination learned on input port ${inPort.name}, dropping`);
          return;
        }
        const p = this.portsByNum.get(port);
        if (p) {
          if (step) this.note(step, `NORMAL: forwarding to learned port ${p.name} (VLAN ${vlan})`);
          this.normalOut(x, p, vlan, step);
          return;
        }
      }
    }
    if (step) this.note(step, `NORMAL: flooding in VLAN ${vlan}`);
    for (const p of this.portList) {
      if (p.ofport === inNum) continue;
      if (p.tag !== undefined ? p.tag === vlan : !p.trunks || p.trunks.includes(vlan)) this.normalOut(x, p, vlan, step);
    }
  }

  /** NORMAL's per-port VLAN output processing; the working packet itself is left as it was. */
  private normalOut(x: Xlate, p: OvsPort, vlan: number, step: OvsStep | undefined): void {
    const w = x.w;
    const saved = w[W.VLAN_TCI];
    w[W.VLAN_TCI] = p.tag !== undefined || vlan === 0 ? 0 : VLAN_CFI | vlan;
    this.emit(x, p, step);
    w[W.VLAN_TCI] = saved;
  }

  private learn(x: Xlate, spec: LearnSpec, step: OvsStep | undefined): void {
    const learned = learnFrom(spec, x.w);
    const now = this.now(x);
    const existing = this.flows.find(spec.table, learned.match, spec.priority, hashMatch(learned.match));
    if (existing && existing.learned && existing.cookie === spec.cookie && sameSig(existing.learnSig, learned.sig)) {
      // Re-learning an identical flow refreshes it: the hard timeout counts from now.
      existing.stamp(now, false);
      return;
    }
    const rule = new Rule({
      table: spec.table,
      priority: spec.priority,
      cookie: spec.cookie,
      match: learned.match,
      actions: learnedActions(spec, learned.sig),
      idleTimeout: spec.idleTimeout,
      hardTimeout: spec.hardTimeout,
      learned: true,
      learnSig: learned.sig,
    });
    rule.created = now;
    rule.stamp(now);
    if (existing) rule.carryCounters(existing);
    this.flows.insert(rule);
    if (step) this.note(step, `learned: ${rule.canonical}`);
  }
}

function isExpired(r: Rule, now: number): boolean {
  return (r.hardTimeout !== 0 && now - r.modified >= r.hardTimeout * 1000) || (r.idleTimeout !== 0 && now - r.used >= r.idleTimeout * 1000);
}

