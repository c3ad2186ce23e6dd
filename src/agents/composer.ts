// One host, several writers: the OVS agent, the L3 agent, the DHCP agent, the metadata
// agent, the compute service (VIF plugging) and the host's own setup (bridges and NICs the
// operator made) each own a fragment of the host's desired state. The composer merges the
// fragments and has the driver make the host match, level-triggered: any writer may
// recompute its whole fragment at any time, and applying the same result again does nothing.
//
// Merge rules: namespaces, links, bridges, ports, ipsets, DHCP servers and metadata proxies
// are unions by name, and two fragments naming the same object merge field by field (the
// OVS agent sets the `tag` of a port the L3 agent plugged); flows, routes, rules and
// neighbours are concatenated (keeping their chunks, host/chunks.ts); one (namespace,
// iptables table) has one owner.
//
// The OVS agent only amends the system and internal ports others plug on its bridges (their
// `tag` and `other_config`, as `ovs-vsctl set Port` does): such a port that no other
// fragment names any more is left out, so unplugging a VIF never waits for the agent's next
// pass. Listeners (`onChange`) hear of every fragment set, as Neutron's OVS agent hears of
// new ports from its OVSDB monitor.

import { fnv1a } from '../common/hash.js';
import type { HostOp } from '../host/ops.js';
import { emptyHost } from '../host/build.js';
import { itemsOf, joinChunks } from '../host/chunks.js';
import { diff } from '../host/diff.js';
import { portAt } from '../host/ovs.js';
import { assertValidHost } from '../host/validate.js';
import type { HostState, Namespace, OvsBridge } from '../host/state.js';
import { DEAD_VLAN_TAG } from './ovs/constants.js';
import { nextTurn } from './turns.js';

/** What realises a host state: the emulated driver, or the real Linux one. */
export interface HostDriver {
  /** `validated`: a state that passed validation before (the one last applied), so `desired` is checked for what changed. */
  applyState(desired: HostState, validated?: HostState): HostOp[] | Promise<HostOp[]>;
  readState(): HostState | Promise<HostState>;
  /** A gratuitous ARP for `ip` from a device (optional: a driver without it announces nothing). */
  announce?(namespace: string, dev: string, ip: string): void | Promise<void>;
  /**
   * Carry out operations computed elsewhere (optional): with it the composer diffs against
   * the state it last applied instead of reading the whole host back on every pass.
   */
  apply?(ops: readonly HostOp[]): void | Promise<void>;
  /**
   * Nothing but this driver changes the host's state (the emulated dataplane: its hosts live in
   * this process, and only packets change what they learn, which a state leaves out). Then the
   * last applied state stays true until an apply fails or `forget()` is called, and the
   * composer does not read the host back on a timer.
   */
  readonly soleWriter?: boolean;
}

export interface ComposerOptions {
  /**
   * How long the last applied state is trusted as the host's (ms; default 60000, or for ever
   * with a `soleWriter` driver): after that, or after a failed apply, the next pass reads the
   * host back in full (what the periodic resync of Neutron's agents is for: anything changed
   * behind the composer's back heals).
   */
  trustMs?: number;
}

export type Owner = 'setup' | 'ovs' | 'firewall' | 'l3' | 'dhcp' | 'metadata' | 'compute';

/** How much sooner than it asked an agent's pass may start to run with the host's other agents' (ms). */
const ALIGN_MS = 20;

/** Owners whose system/internal ports only amend ports another owner plugs. */
const AMENDING: ReadonlySet<Owner> = new Set<Owner>(['ovs']);

export type FragmentListener = (owner: Owner, state: HostState) => void;

export class HostComposer {
  private readonly fragments = new Map<Owner, HostState>();
  private readonly listeners = new Set<FragmentListener>();
  private readonly merger = new FragmentMerger();
  private pending?: Promise<HostOp[]>;
  /** The pending pass has begun applying (what a request now arrives too late for). */
  private applying = false;
  private again = false;
  private held = false;
  private heldRequest = false;
  /** Passes of the host's agents waiting for a common moment (`after`), by when they run. */
  private gathers: Array<{ at: number; run: Array<() => void> }> = [];

  /**
   * Run `fn` in about `ms`, with the other agents of the host that wait for a moment at most
   * ALIGN_MS sooner: their passes then start in one timer callback and make one apply. Each
   * agent's own timer made the OVS agent's pass (FDB entries, members) and the L3 agent's (an
   * ARP entry) of one port run on different turns of the event loop, so a host validated,
   * diffed and applied twice what one port brought. (Not much sooner: an agent gathering a
   * busy burst for longer would pass more often.)
   */
  after(ms: number, fn: () => void): void {
    const now = performance.now();
    const slot = this.gathers.find((g) => g.at >= now + ms - Math.min(ms, ALIGN_MS) && g.at <= now + ms);
    if (slot) {
      slot.run.push(fn);
      return;
    }
    const g = { at: now + ms, run: [fn] };
    this.gathers.push(g);
    setTimeout(() => {
      this.gathers.splice(this.gathers.indexOf(g), 1);
      // On the host's own turn: every host's timers of a burst come due together (turns.ts).
      void nextTurn().then(() => {
        for (const f of g.run) f();
      });
    }, ms);
  }

  /** Operations applied so far (what a test or the convergence benchmark counts). */
  applied = 0;
  /** The desired state last applied in full, and when the host was last read back. */
  private last?: HostState;
  private lastReadAt = 0;

  constructor(
    readonly host: string,
    private readonly driver: HostDriver,
    private readonly opts: ComposerOptions = {},
  ) {
    this.trustMs = Math.round((opts.trustMs ?? (driver.soleWriter ? Infinity : 60_000)) * (0.75 + (fnv1a(host) % 1000) / 2000));
  }

  /**
   * The trust interval, spread by +-25% per host (a hash of its name): hosts started together
   * would otherwise all read themselves back in the same moment, once a minute.
   */
  private readonly trustMs: number;

  /** Read the host back in full on the next pass (something may have changed it). */
  forget(): void {
    this.last = undefined;
  }

  setFragment(owner: Owner, state: HostState): void {
    const before = this.fragments.get(owner);
    this.fragments.set(owner, state);
    if (before !== state) for (const l of this.listeners) l(owner, state);
  }

  /** Hear of every fragment that is set (with a new value); returns the unsubscribe. */
  onChange(listener: FragmentListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  fragment(owner: Owner): HostState | undefined {
    return this.fragments.get(owner);
  }

  /**
   * The merged desired state of every owner, or of every owner but `except` (what an agent
   * sees others plug: a merger of its own, so a pass merges only what changed since its last
   * look, not the whole host: the network node's DHCP agent looked once per port).
   */
  desired(except?: Owner): HostState {
    const entries = [...this.fragments].filter(([o]) => o !== except);
    let merger = except === undefined ? this.merger : this.mergersExcept.get(except);
    if (!merger) this.mergersExcept.set(except!, (merger = new FragmentMerger()));
    return dropOrphanAmendments(merger.merge(entries.map(([, s]) => s)), entries);
  }
  private readonly mergersExcept = new Map<Owner, FragmentMerger>();

  /**
   * Announce `ip` from a device with a gratuitous ARP (what neighbours cached may be stale),
   * once the device is wired: an OVS port the agent has not given its VLAN yet would drop it.
   */
  async announce(namespace: string, dev: string, ip: string): Promise<void> {
    this.announcements.set(`${namespace}|${dev}|${ip}`, { namespace, dev, ip });
    await this.flushAnnouncements();
  }

  private readonly announcements = new Map<string, { namespace: string; dev: string; ip: string }>();

  private async flushAnnouncements(): Promise<void> {
    const s = this.last;
    if (!s || !this.announcements.size) return;
    for (const [key, a] of [...this.announcements]) {
      const ns = s.namespaces[a.namespace];
      if (!ns?.links[a.dev]) {
        this.announcements.delete(key); // the device is gone: nothing to announce
        continue;
      }
      if (!wired(s, a.dev)) continue;
      this.announcements.delete(key);
      await Promise.resolve(this.driver.announce?.(a.namespace, a.dev, a.ip)).catch((err) => console.error(`${this.host}: gratuitous ARP for ${a.ip} on ${a.dev} failed:`, err));
    }
  }

  current(): HostState | Promise<HostState> {
    return this.driver.readState();
  }

  /**
   * Collect fragments without applying them (a host whose agents are all starting up: the
   * first one to finish must not remove what the others have not re-declared yet).
   */
  hold(): void {
    this.held = true;
    this.heldRequest = true;
  }

  /** Stop holding, and apply once what was declared meanwhile. */
  async release(): Promise<HostOp[]> {
    this.held = false;
    if (!this.heldRequest) return [];
    this.heldRequest = false;
    return this.reconcile();
  }

  /**
   * Make the host match the merged fragments. Calls coalesce: the apply starts on the host's
   * next turn (turns.ts: a turn of the event loop, after the hosts that asked before), so the
   * agents of a host that handle the same burst (an ARP entry for the L3 agent, the member
   * update for the OVS agent) make one apply, not one each; while one apply runs, further
   * requests collapse into one more pass after it.
   */
  async reconcile(): Promise<HostOp[]> {
    if (this.held) {
      this.heldRequest = true;
      return [];
    }
    if (this.pending) {
      if (this.applying) this.again = true;
      return this.pending;
    }
    this.pending = (async () => {
      try {
        await nextTurn();
        this.applying = true;
        let ops: HostOp[] = [];
        do {
          this.again = false;
          const done = await this.applyDesired(this.desired());
          this.applied += done.length;
          ops = ops.concat(done);
          await this.flushAnnouncements();
        } while (this.again);
        return ops;
      } finally {
        // Here, not in a caller: a request in between would find a pass that has ended.
        this.pending = undefined;
        this.applying = false;
      }
    })();
    return this.pending;
  }

  /**
   * One pass: diff against the state last applied while it is trusted (big hosts: reading
   * back tens of thousands of flows per pass dominated), else let the driver read the host.
   */
  private async applyDesired(desired: HostState): Promise<HostOp[]> {
    const trusted = this.last && this.driver.apply && Date.now() - this.lastReadAt < this.trustMs;
    try {
      if (trusted) {
        assertValidHost(desired, this.last);
        const ops = diff(this.last!, desired);
        if (ops.length) await this.driver.apply!(ops);
        this.last = desired;
        return ops;
      }
      const validated = this.last;
      this.last = undefined;
      const ops = await this.driver.applyState(desired, validated);
      this.last = desired;
      this.lastReadAt = Date.now();
      return ops;
    } catch (err) {
      this.last = undefined;
      throw err;
    }
  }
}

/**
 * The union of two records, merging what both name; the same result object for the same two
 * records (a pass that changed a bridge's flows leaves its merged ports the same record, which
 * validate and diff skip).
 */
const merged = new WeakMap<object, WeakMap<object, object>>();
const mergeRecord = <T>(a: Record<string, T>, b: Record<string, T>, merge: (x: T, y: T) => T): Record<string, T> => {
  // An empty side (a fragment's namespace holding only ipsets or rules: its links record is
  // made afresh each pass) gives the other side itself.
  if (isEmpty(b)) return a;
  if (isEmpty(a)) return b;
  let byB = merged.get(a);
  const have = byB?.get(b);
  if (have) return have as Record<string, T>;
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = k in out ? merge(out[k], v) : v;
  if (!byB) merged.set(a, (byB = new WeakMap()));
  byB.set(b, out);
  return out;
};

const isEmpty = (o: object): boolean => {
  for (const _ in o) return false;
  return true;
};

const shallow = <T extends object>(x: T, y: T): T => {
  const out: any = { ...x };
  for (const [k, v] of Object.entries(y)) {
    if (v === undefined) continue;
    if (k === 'external_ids' || k === 'other_config') out[k] = { ...(out[k] ?? {}), ...(v as object) };
    else if (k === 'addresses') out[k] = [...new Set([...(out[k] ?? []), ...(v as string[])])];
    else out[k] = v;
  }
  return out;
};

function mergeBridge(a: OvsBridge, b: OvsBridge): OvsBridge {
  return {
    ...shallow(a, b),
    ports: mergeRecord(a.ports, b.ports, shallow),
    flows: joinChunks([a.flows, b.flows]),
  };
}

function mergeNamespace(a: Namespace, b: Namespace): Namespace {
  const iptables = { ...a.iptables };
  for (const [t, text] of Object.entries(b.iptables)) {
    if (iptables[t as keyof typeof iptables] !== undefined && iptables[t as keyof typeof iptables] !== text)
      throw new Error(`iptables table ${t} of namespace '${a.name}' has two owners`);
    iptables[t as keyof typeof iptables] = text;
  }
  // Each part the same object while its inputs are (diff and validate then skip it): a pass
  // that changed the root namespace's sets made its sysctls anew, which diff sorted and walked.
  return {
    name: a.name,
    links: mergeRecord(a.links, b.links, shallow),
    routes: concat(a.routes, b.routes),
    rules: concat(a.rules, b.rules),
    neighbours: joinChunks([a.neighbours, b.neighbours]),
    sysctls: mergeRecord(a.sysctls, b.sysctls, second),
    iptables,
    ipsets: mergeRecord(a.ipsets, b.ipsets, second),
  };
}

const second = <T>(_: T, y: T): T => y;

/** Two arrays one after the other; the same result array for the same two arrays. */
const concatenated = new WeakMap<readonly unknown[], WeakMap<readonly unknown[], unknown[]>>();
function concat<T>(a: T[], b: T[]): T[] {
  if (!b.length) return a;
  if (!a.length) return b;
  let byB = concatenated.get(a);
  const have = byB?.get(b);
  if (have) return have as T[];
  const out = [...a, ...b];
  if (!byB) concatenated.set(a, (byB = new WeakMap()));
  byB.set(b, out);
  return out;
}

/**
 * Removes the system/internal ports only an amending owner names (their plugger unplugged
 * them), and the flows that name them: those go in the same pass as the port, while OVS can
 * still resolve the name.
 */
function dropOrphanAmendments(merged: HostState, entries: Array<[Owner, HostState]>): HostState {
  let out = merged;
  const others = entries.filter(([o]) => !AMENDING.has(o)).map(([, s]) => s.ovs.bridges);
  for (const [owner, frag] of entries) {
    if (!AMENDING.has(owner)) continue;
    for (const [bname, orphans] of orphansOf(frag.ovs.bridges, others)) {
      const mb = out.ovs.bridges[bname];
      const ports = { ...mb.ports };
      for (const p of orphans) delete ports[p];
      const alt = orphans.map((n) => n.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')).join('|');
      const names = new RegExp(`(?:^|[=:,(])(?:${alt})(?=$|[,)\\s])`);
      const flows = itemsOf(mb.flows).filter((f) => !names.test(f.match) && !names.test(f.actions));
      out = { ...out, ovs: { bridges: { ...out.ovs.bridges, [bname]: { ...mb, ports, flows } } } };
    }
  }
  return out;
}

/** An amending fragment's orphan ports, per bridge (the same answer while its ports and the other fragments' ports of that bridge are the same records). */
const orphanMemo = new WeakMap<object, { others: Array<object | undefined>; names: string[] }>();
function orphansOf(amending: HostState['ovs']['bridges'], others: Array<HostState['ovs']['bridges']>): Array<[string, string[]]> {
  const orphans: Array<[string, string[]]> = [];
  for (const bname in amending) {
    const b = amending[bname];
    const theirs = others.map((o) => o[bname]?.ports);
    let have = orphanMemo.get(b.ports);
    if (!have || !sameItems(have.others, theirs)) {
      const names: string[] = [];
      for (const [pname, p] of Object.entries(b.ports)) {
        if (p.type !== 'system' && p.type !== 'internal') continue;
        if (!theirs.some((ports) => ports?.[pname])) names.push(pname);
      }
      orphanMemo.set(b.ports, (have = { others: theirs, names }));
    }
    if (have.names.length) orphans.push([bname, have.names]);
  }
  return orphans;
}

/**
 * Merges fragments, giving back last pass's merged bridge or namespace when every fragment
 * contributed the same objects to it as then: an agent pass that changed one namespace
 * leaves the others the same objects, which `validate` and `diff` skip without looking inside.
 */
class FragmentMerger {
  private bridges = new Map<string, Merged<OvsBridge>>();
  private namespaces = new Map<string, Merged<Namespace>>();

  merge(states: HostState[]): HostState {
    const bridgeInputs = new Map<string, OvsBridge[]>();
    const nsInputs = new Map<string, Namespace[]>();
    const out = emptyHost();
    for (const s of states) {
      for (const name in s.ovs.bridges) push(bridgeInputs, name, s.ovs.bridges[name]);
      for (const name in s.namespaces) push(nsInputs, name, s.namespaces[name]);
      Object.assign(out.dhcp, s.dhcp);
      Object.assign(out.metadata, s.metadata);
    }
    this.bridges = mergeEach(bridgeInputs, this.bridges, mergeBridge, out.ovs.bridges);
    this.namespaces = mergeEach(nsInputs, this.namespaces, mergeNamespace, out.namespaces);
    return out;
  }
}

interface Merged<T> {
  inputs: T[];
  out: T;
}

function push<T>(m: Map<string, T[]>, key: string, v: T) {
  const list = m.get(key);
  if (list) list.push(v);
  else m.set(key, [v]);
}

/**
 * Merges each key's inputs into `into` (in first-seen order), reusing `before`'s result for the
 * same inputs; updates `before` in place as the memo for the next pass. (A memo made anew per
 * pass, an entry per bridge and namespace, outlived the pass on every host: old by the next
 * scavenge, copied by it.)
 */
function mergeEach<T>(inputs: Map<string, T[]>, before: Map<string, Merged<T>>, merge: (a: T, b: T) => T, into: Record<string, T>): Map<string, Merged<T>> {
  for (const [key, list] of inputs) {
    const was = before.get(key);
    if (was && sameItems(was.inputs, list)) into[key] = was.out;
    else before.set(key, { inputs: list, out: (into[key] = list.reduce(merge)) });
  }
  if (before.size > inputs.size) for (const key of before.keys()) if (!inputs.has(key)) before.delete(key);
  return before;
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** An OVS port carries traffic once the agent gave it a VLAN; any other device at once. */
function wired(s: HostState, dev: string): boolean {
  const at = portAt(s, dev);
  return !at || (at.port.tag !== undefined && at.port.tag !== DEAD_VLAN_TAG);
}
