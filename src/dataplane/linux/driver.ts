// The linux driver: makes one real Linux host (or one emulated host on a shared machine)
// match a desired HostState with the host's own tools, and reads the host back as a
// HostState, so that `diff(readState(), desired)` is empty after an apply and applying the
// same state twice does nothing.
//
// Tools: `ovs-vsctl` on the host's database socket (one transaction per run of OVS
// operations), `ovs-ofctl --bundle` (one atomic bundle per flows.update), `ip` (`-batch` for
// runs of address/route/rule/neighbour/link-attribute changes in one namespace),
// `iptables-restore`/`iptables-save`, `ipset restore`/`ipset save`, `sysctl`, `ethtool`,
// dnsmasq and the metadata proxy (services.ts). Every command is an argument vector.
//
// Realisation choices (the userspace datapath needs them; the kernel datapath is happy too):
// - An OVS internal port whose device lives in another namespace (qr-, qg-, fg-, tap of
//   qdhcp) is a veth pair with both ends named like the port: the root end is an OVS system
//   port marked `external_ids:dvrnet-veth-internal=true` on its Port row; the namespace end
//   is the state's `ovs-internal` link. Internal ports and bridges whose device stays in
//   the root namespace are real OVS internal ports.
// - A `tap` link is the instance's VIF: if the instance (instance.ts) already made it as a
//   veth whose far end is the instance's eth0, it is adopted; otherwise a real tap is made.
// - TX checksum offload is turned off on every veth end OVS or an instance touches.
//
// Read-back rules (as the emulated driver's): kernel routes, the local table, default
// rules, link-local and loopback addresses, learnt neighbours and learnt (timed) flows are
// left out; `lo` and NICs only once a state configured them; namespaces only with
// Neutron's prefixes or created by this driver. Flows, iptables and ipset members come back
// in the state's spelling where the host holds exactly what was applied (ledger.ts,
// flows.ts) and in the tools' spelling otherwise, so that `diff` restores them.
//
// Failures: the first failing command stops the apply with a LinuxDriverError naming the
// operation (`describeOp`), the command and its stderr. OVS transactions and flow bundles
// are atomic; the rest is level-triggered: the next apply reads the host again and does
// what is still missing.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { diff } from '../../host/diff.js';
import { renderFlow } from '../../host/flow.js';
import { describeOp, type HostOp, type LinkSpec } from '../../host/ops.js';
import { assertValidHost } from '../../host/validate.js';
import { DHCP_NS_PREFIX, FIP_NS_PREFIX, IPSET_SWAP_SUFFIX, ROUTER_NS_PREFIX, SNAT_NS_PREFIX } from '../../host/names.js';
import { itemsOf } from '../../host/chunks.js';
import type { Flow, HostState, IpSet, IptablesTable, Link, Namespace, Neighbour } from '../../host/state.js';
import { IPTABLES_TABLES, ROOT_NS } from '../../host/state.js';
import { CommandError, inNetns, ipArgv, run } from './exec.js';
import { bundleInput, parseFlowsInput, portRefs, readBackFlows, sigsOf, type FlowSig } from './flows.js';
import { emptyLedger, loadLedger, saveLedger, type Ledger } from './ledger.js';
import { hostless, neighArgs, parseIpBatch, READ_BATCH, routeArgs, ruleArgs, type IpLink, type IpNamespaceDump } from './netlinux.js';
import { bridgeCreateArgs, bridgeDeleteArgs, bridgeSetArgs, parseOvsList, portAddArgs, portDeleteArgs, portSetArgs, READ_ARGS, type OvsReadBack } from './ovsdb.js';
import { assertSafeForCommands } from './safety.js';
import { Services } from './services.js';

export interface LinuxDriverOptions {
  hostName: string;
  /** Prefix of this host's namespaces on the machine (`h-compute1-`); '' on a real host. */
  netnsPrefix?: string;
  /** The namespace that is this host's root namespace (emulated hosts); absent = this process's. */
  rootNetns?: string;
  ovs: { dbSock: string; rundir: string };
  /** Where dnsmasq files, proxy pid files and the ledger live; default `<ovs.rundir>/dvrnet`. */
  stateDir?: string;
  /** Root-namespace devices that are the host's NICs (read back as `physical`). */
  nics?: string[];
}

export class LinuxDriverError extends Error {
  constructor(
    readonly operation: HostOp,
    readonly failure: Error,
  ) {
    super(`${describeOp(operation)}: ${failure.message}`);
    this.name = 'LinuxDriverError';
  }
  /** The command that failed, as an argument vector. */
  get command(): readonly string[] | undefined {
    return this.failure instanceof CommandError ? this.failure.argv : undefined;
  }
  get stderr(): string {
    return this.failure instanceof CommandError ? this.failure.stderr : this.failure.message;
  }
}

const NEUTRON_NS_PREFIXES = [ROUTER_NS_PREFIX, SNAT_NS_PREFIX, FIP_NS_PREFIX, DHCP_NS_PREFIX];
const OVS_OPS = new Set<HostOp['op']>(['bridge.create', 'bridge.set', 'bridge.delete', 'port.add', 'port.set', 'port.del']);
const IP_BATCH_OPS = new Set<HostOp['op']>(['link.set', 'address.add', 'address.del', 'route.replace', 'route.del', 'rule.add', 'rule.del', 'neigh.replace', 'neigh.del']);
const OF_RESERVED = new Set(['LOCAL', 'IN_PORT', 'NORMAL', 'FLOOD', 'ALL', 'CONTROLLER', 'NONE', 'TABLE', 'ANY', 'UNSET', 'local', 'in_port', 'normal', 'flood', 'all', 'controller', 'none', 'table', 'any']);
const BUILTIN_CHAINS: Record<IptablesTable, string[]> = {
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};

type Op<K extends HostOp['op']> = Extract<HostOp, { op: K }>;

/** `iptables-save` text per table, without comments and counters. */
export function splitIptablesSave(text: string): Partial<Record<IptablesTable, string>> {
  const out: Partial<Record<IptablesTable, string>> = {};
  let table: IptablesTable | undefined;
  let lines: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      table = line.slice(1) as IptablesTable;
      lines = [line];
    } else if (line === 'COMMIT') {
      if (table && IPTABLES_TABLES.includes(table)) out[table] = [...lines, 'COMMIT'].join('\n') + '\n';
      table = undefined;
    } else lines.push(line.replace(/^(:\S+ \S+) \[\d+:\d+\]$/, '$1'));
  }
  return out;
}

/** A table with only its built-in chains, policy ACCEPT, no rules: what an absent table means. */
export function isEmptyTable(table: IptablesTable, saved: string): boolean {
  const body = saved.split('\n').filter((l) => l && l !== `*${table}` && l !== 'COMMIT');
  return body.every((l) => BUILTIN_CHAINS[table].some((c) => l === `:${c} ACCEPT`));
}

function emptyTableText(table: IptablesTable): string {
  return [`*${table}`, ...BUILTIN_CHAINS[table].map((c) => `:${c} ACCEPT [0:0]`), 'COMMIT', ''].join('\n');
}

export function parseIpsetSave(text: string): Record<string, IpSet> {
  const sets: Record<string, IpSet> = {};
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    if (t[0] === 'create' && t.length >= 3) {
      const fi = t.indexOf('family');
      sets[t[1]] = { name: t[1], type: t[2] as IpSet['type'], family: fi > 0 && t[fi + 1] === 'inet6' ? 'inet6' : 'inet', members: [] };
    } else if (t[0] === 'add' && sets[t[1]]) sets[t[1]].members.push(t[2]);
  }
  return sets;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LinuxDriver {
  readonly stateDir: string;
  private readonly prefix: string;
  private readonly services: Services;
  private readonly ledgerFile: string;
  private ledger: Ledger;
  private queue: Promise<unknown> = Promise.resolve();
  /** What the last read saw (kinds of links, veth-realised ports), for the operations that follow it. */
  private seen: { state: HostState; ovs: OvsReadBack } | undefined;

  constructor(readonly opts: LinuxDriverOptions) {
    this.prefix = opts.netnsPrefix ?? '';
    this.stateDir = opts.stateDir ?? join(opts.ovs.rundir, 'dvrnet');
    this.services = new Services(this.stateDir);
    this.ledgerFile = join(this.stateDir, 'ledger.json');
    this.ledger = loadLedger(this.ledgerFile);
  }

  /** The machine's name of a state namespace (`undefined`: this process's own namespace). */
  realNs(ns: string): string | undefined {
    return ns === ROOT_NS ? this.opts.rootNetns : this.prefix + ns;
  }

  private nsRef(ns: string): string {
    return this.realNs(ns) ?? String(process.pid);
  }

  private vsctl(args: string[]): Promise<unknown> {
    return run(['ovs-vsctl', `--db=unix:${this.opts.ovs.dbSock}`, '--timeout=30', ...args], { timeoutMs: 40_000 });
  }

  private mgmt(bridge: string): string {
    return `unix:${join(this.opts.ovs.rundir, `${bridge}.mgmt`)}`;
  }

  private ip(ns: string, args: string[], input?: string) {
    return run(ipArgv(this.realNs(ns), args), { input });
  }

  private exec(ns: string, argv: string[], input?: string) {
    return run(inNetns(this.realNs(ns), argv), { input });
  }

  // ---------------------------------------------------------------------------- apply

  /** A gratuitous ARP for `ip` from `dev` (as Neutron: `arping -U`), after what is being applied. */
  announce(namespace: string, dev: string, ip: string): Promise<void> {
    return this.inTurn(async () => {
      // iputils arping exits 1 when nothing answers, which unsolicited mode never expects.
      await run(inNetns(this.realNs(namespace), ['arping', '-U', '-c', '1', '-w', '1', '-I', dev, ip]), { okCodes: [0, 1], timeoutMs: 5000 });
    });
  }

  applyState(desired: HostState, validated?: HostState): Promise<HostOp[]> {
    return this.inTurn(() => this.applyNow(desired, validated));
  }

  /** Runs `fn` after everything queued before it (one read or change of the host at a time). */
  private inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async applyNow(desired: HostState, validated?: HostState): Promise<HostOp[]> {
    assertValidHost(desired, validated);
    assertSafeForCommands(desired);
    const current = await this.read(desired);
    const ops = diff(current, desired);
    try {
      await this.applyOps(ops, desired);
      this.remember(desired);
    } finally {
      saveLedger(this.ledgerFile, this.ledger);
    }
    return ops;
  }

  /** After a complete apply the host holds `desired`: its spellings become the dictionary. */
  private remember(desired: HostState): void {
    const l = this.ledger;
    for (const ns of Object.values(desired.namespaces)) {
      l.sysctls[ns.name] = { ...ns.sysctls };
      l.configured[ns.name] = Object.values(ns.links)
        .filter((x) => x.kind === 'loopback' || x.kind === 'physical')
        .map((x) => x.name);
      l.neighbours[ns.name] = itemsOf(ns.neighbours).filter((n) => n.nud === 'reachable');
      l.ipsetMembers[ns.name] = Object.fromEntries(Object.values(ns.ipsets).map((x) => [x.name, [...x.members]]));
      if (ns.name !== ROOT_NS && !NEUTRON_NS_PREFIXES.some((p) => ns.name.startsWith(p)) && !l.namespaces.includes(ns.name)) l.namespaces.push(ns.name);
    }
    l.flows = Object.fromEntries(Object.values(desired.ovs.bridges).map((b) => [b.name, itemsOf(b.flows)]));
  }

  private async applyOps(ops: HostOp[], desired: HostState): Promise<void> {
    let i = 0;
    while (i < ops.length) {
      const op = ops[i];
      let j = i + 1;
      if (OVS_OPS.has(op.op)) {
        while (j < ops.length && OVS_OPS.has(ops[j].op)) j++;
        await this.ovsRun(ops.slice(i, j), desired);
      } else if (IP_BATCH_OPS.has(op.op)) {
        const ns = (op as { namespace: string }).namespace;
        while (j < ops.length && IP_BATCH_OPS.has(ops[j].op) && (ops[j] as { namespace: string }).namespace === ns) j++;
        await this.ipBatch(ns, ops.slice(i, j));
      } else {
        try {
          await this.one(op, desired);
        } catch (e) {
          throw new LinuxDriverError(op, e as Error);
        }
      }
      i = j;
    }
  }

  // --- ip -batch runs

  private ipLine(o: HostOp): string[] {
    switch (o.op) {
      case 'link.set': {
        const a = ['link', 'set', 'dev', o.name];
        if (o.master === null) a.push('nomaster');
        if (o.mtu !== undefined) a.push('mtu', String(o.mtu));
        if (o.mac !== undefined) a.push('address', o.mac);
        if (typeof o.master === 'string') a.push('master', o.master);
        if (o.up !== undefined) a.push(o.up ? 'up' : 'down');
        return a;
      }
      case 'address.add':
        return ['address', 'replace', o.cidr, 'dev', o.dev];
      case 'address.del':
        return ['address', 'del', o.cidr, 'dev', o.dev];
      case 'route.replace':
        return routeArgs('replace', o.route);
      case 'route.del':
        return routeArgs('del', o.route);
      case 'rule.add':
        return ruleArgs('add', o.rule);
      case 'rule.del':
        return ruleArgs('del', o.rule);
      case 'neigh.replace':
        return neighArgs('replace', o.neighbour);
      case 'neigh.del':
        return neighArgs('del', o.neighbour);
      default:
        throw new Error(`${o.op} is not an ip batch operation`);
    }
  }

  private async ipBatch(ns: string, ops: HostOp[]): Promise<void> {
    const input = ops.map((o) => this.ipLine(o).join(' ')).join('\n') + '\n';
    try {
      await this.ip(ns, ['-batch', '-'], input);
    } catch (e) {
      const err = e as CommandError;
      // ip names the failing line: "Command failed -:3".
      const m = /Command failed -:(\d+)/.exec(err.stderr ?? '');
      const at = m ? Number(m[1]) - 1 : 0;
      const op = ops[Math.min(Math.max(at, 0), ops.length - 1)];
      throw new LinuxDriverError(op, new CommandError(ipArgv(this.realNs(ns), this.ipLine(op)), err.code, err.stderr, err.stdout));
    }
    for (const o of ops) {
      if (o.op === 'neigh.replace' || o.op === 'neigh.del') {
        const list = (this.ledger.neighbours[ns] ?? []).filter((n) => !(n.dev === o.neighbour.dev && n.ip === o.neighbour.ip));
        if (o.op === 'neigh.replace' && o.neighbour.nud === 'reachable') list.push(o.neighbour);
        this.ledger.neighbours[ns] = list;
      }
    }
  }

  // --- OVS transactions

  private isVethPort(name: string): boolean {
    return this.seen?.ovs.vethPorts.has(name) ?? false;
  }

  /** Where the desired state puts an internal port's device. */
  private deviceNamespace(desired: HostState, name: string): string | undefined {
    for (const ns of Object.values(desired.namespaces)) if (ns.links[name]?.kind === 'ovs-internal') return ns.name;
    return undefined;
  }

  private ovsArgs(o: HostOp, desired: HostState): string[] {
    switch (o.op) {
      case 'bridge.create':
        return bridgeCreateArgs(o.bridge);
      case 'bridge.set':
        return bridgeSetArgs(o.bridge, o.changed);
      case 'bridge.delete':
        return bridgeDeleteArgs(o.name);
      case 'port.add': {
        const ns = o.port.type === 'internal' ? this.deviceNamespace(desired, o.port.name) : undefined;
        return portAddArgs(o.bridge, o.port, ns !== undefined && ns !== ROOT_NS);
      }
      case 'port.set':
        return portSetArgs(o.port, o.changed, this.isVethPort(o.port.name));
      case 'port.del':
        return portDeleteArgs(o.bridge, o.name);
      default:
        throw new Error(`${o.op} is not an OVS operation`);
    }
  }

  private async ovsRun(ops: HostOp[], desired: HostState): Promise<void> {
    // Devices first: veth pairs for internal ports that live in another namespace.
    for (const o of ops) {
      if (o.op !== 'port.add' || o.port.type !== 'internal') continue;
      const ns = this.deviceNamespace(desired, o.port.name);
      if (ns !== undefined && ns !== ROOT_NS) {
        try {
          await this.ensureVethPort(o.port.name, ns);
        } catch (e) {
          throw new LinuxDriverError(o, e as Error);
        }
      }
    }
    const args = ops.flatMap((o) => this.ovsArgs(o, desired));
    try {
      if (args.length) await this.vsctl(args);
    } catch {
      // The transaction changed nothing: redo it one operation at a time to name the culprit.
      for (const o of ops) {
        try {
          const a = this.ovsArgs(o, desired);
          if (a.length) await this.vsctl(a);
        } catch (e) {
          throw new LinuxDriverError(o, e as Error);
        }
      }
    }
    // The root ends of veth-realised ports go with their port.
    for (const o of ops) {
      const names: string[] = [];
      if (o.op === 'port.del' && this.isVethPort(o.name)) names.push(o.name);
      if (o.op === 'bridge.delete') {
        for (const p of Object.keys(this.seen?.state.ovs.bridges[o.name]?.ports ?? {})) if (this.isVethPort(p)) names.push(p);
        delete this.ledger.flows[o.name];
      }
      for (const n of names) await this.ip(ROOT_NS, ['link', 'del', 'dev', n]).catch(() => undefined);
    }
  }

  private async linkExists(ns: string, name: string): Promise<IpLink | undefined> {
    try {
      const r = await this.ip(ns, ['-j', '-d', 'link', 'show', 'dev', name]);
      return (JSON.parse(r.stdout) as IpLink[])[0];
    } catch {
      return undefined;
    }
  }

  private async txOff(ns: string, dev: string): Promise<void> {
    await this.exec(ns, ['ethtool', '-K', dev, 'tx', 'off']).catch(() => undefined); // not every device has the feature
  }

  /** The veth pair standing for an internal port whose device lives in `ns`: root end and `ns` end both named `name`. */
  private async ensureVethPort(name: string, ns: string): Promise<void> {
    const root = await this.linkExists(ROOT_NS, name);
    const inNs = await this.linkExists(ns, name);
    if (root?.linkinfo?.info_kind === 'veth' && inNs?.linkinfo?.info_kind === 'veth') return;
    if (root) await this.ip(ROOT_NS, ['link', 'del', 'dev', name]);
    if (inNs) await this.ip(ns, ['link', 'del', 'dev', name]).catch(() => undefined);
    await this.ip(ROOT_NS, ['link', 'add', name, 'type', 'veth', 'peer', 'name', name, 'netns', this.nsRef(ns)]);
    await this.ip(ROOT_NS, ['link', 'set', 'dev', name, 'up']);
    await this.txOff(ROOT_NS, name);
    await this.txOff(ns, name);
  }

  // --- single operations

  private async configure(ns: string, l: LinkSpec): Promise<void> {
    const a = ['link', 'set', 'dev', l.name];
    if (l.mtu !== undefined) a.push('mtu', String(l.mtu));
    if (l.mac !== undefined && l.kind !== 'loopback') a.push('address', l.mac);
    if (l.master !== undefined) a.push('master', l.master);
    a.push(l.up ? 'up' : 'down');
    await this.ip(ns, a);
  }

  private async linkCreate(o: Op<'link.create'>): Promise<void> {
    const { namespace: ns, link } = o;
    switch (link.kind) {
      case 'veth': {
        const a = ['link', 'add', link.name];
        if (link.mac) a.push('address', link.mac);
        if (link.mtu) a.push('mtu', String(link.mtu));
        a.push('type', 'veth', 'peer', 'name', link.peer);
        if (o.peer?.mac) a.push('address', o.peer.mac);
        if (o.peer?.mtu) a.push('mtu', String(o.peer.mtu));
        if (link.peer_namespace !== ns) a.push('netns', this.nsRef(link.peer_namespace));
        await this.ip(ns, a);
        await this.configure(ns, link);
        await this.txOff(ns, link.name);
        if (o.peer) await this.configure(link.peer_namespace, o.peer);
        await this.txOff(link.peer_namespace, link.peer);
        return;
      }
      case 'tap': {
        const have = await this.linkExists(ns, link.name);
        if (have?.linkinfo?.info_kind !== 'veth' && have?.linkinfo?.info_kind !== 'tun') {
          if (have) await this.ip(ns, ['link', 'del', 'dev', link.name]);
          await this.ip(ns, ['tuntap', 'add', 'dev', link.name, 'mode', 'tap']);
        }
        await this.configure(ns, link);
        if (have?.linkinfo?.info_kind === 'veth') await this.txOff(ns, link.name);
        return;
      }
      case 'bridge':
      case 'dummy': {
        if (!(await this.linkExists(ns, link.name))) await this.ip(ns, ['link', 'add', link.name, 'type', link.kind]);
        await this.configure(ns, link);
        return;
      }
      case 'loopback':
      case 'physical': {
        await this.configure(ns, link);
        const list = new Set(this.ledger.configured[ns] ?? []);
        list.add(link.name);
        this.ledger.configured[ns] = [...list];
        return;
      }
      case 'ovs-internal': {
        if (ns !== ROOT_NS) await this.ensureVethPort(link.name, ns);
        await this.configure(ns, link);
        return;
      }
    }
  }

  private async one(o: HostOp, desired: HostState): Promise<void> {
    switch (o.op) {
      case 'netns.create': {
        const real = this.realNs(o.namespace)!;
        if (!existsSync(`/run/netns/${real}`)) await run(['ip', 'netns', 'add', real]);
        if (!NEUTRON_NS_PREFIXES.some((p) => o.namespace.startsWith(p)) && !this.ledger.namespaces.includes(o.namespace)) this.ledger.namespaces.push(o.namespace);
        return;
      }
      case 'netns.delete': {
        const real = this.realNs(o.namespace)!;
        if (existsSync(`/run/netns/${real}`)) await run(['ip', 'netns', 'del', real]);
        this.forgetNamespace(o.namespace);
        return;
      }
      case 'link.create':
        return this.linkCreate(o);
      case 'link.delete': {
        const kind = this.seen?.state.namespaces[o.namespace]?.links[o.name]?.kind;
        if (kind === 'loopback' || kind === 'physical') {
          await this.ip(o.namespace, ['link', 'set', 'dev', o.name, 'nomaster', 'down']);
          await this.ip(o.namespace, ['address', 'flush', 'dev', o.name]);
          this.ledger.configured[o.namespace] = (this.ledger.configured[o.namespace] ?? []).filter((n) => n !== o.name);
        } else await this.ip(o.namespace, ['link', 'del', 'dev', o.name]);
        return;
      }
      case 'sysctl.set': {
        await this.exec(o.namespace, ['sysctl', '-q', '-w', `${o.key}=${o.value}`]);
        (this.ledger.sysctls[o.namespace] ??= {})[o.key] = o.value;
        return;
      }
      case 'sysctl.unset':
        delete this.ledger.sysctls[o.namespace]?.[o.key];
        return;
      case 'iptables.restore': {
        await this.exec(o.namespace, ['iptables-restore', '-w'], o.text ?? emptyTableText(o.table));
        const saved = splitIptablesSave((await this.exec(o.namespace, ['iptables-save', '-t', o.table])).stdout)[o.table] ?? '';
        const tables = (this.ledger.iptables[o.namespace] ??= {});
        if (o.text === null) delete tables[o.table];
        else tables[o.table] = { text: o.text, saved };
        return;
      }
      case 'ipset.create':
      case 'ipset.replace': {
        const s = o.set;
        const name = o.op === 'ipset.create' ? s.name : `${s.name}${IPSET_SWAP_SUFFIX}`;
        const lines = [`create ${name} ${s.type} family ${s.family}`, ...s.members.map((m) => `add ${name} ${m}`)];
        if (o.op === 'ipset.replace') lines.push(`swap ${name} ${s.name}`, `destroy ${name}`);
        await this.exec(o.namespace, ['ipset', 'restore', '-exist'], lines.join('\n') + '\n');
        (this.ledger.ipsetMembers[o.namespace] ??= {})[s.name] = [...s.members];
        return;
      }
      case 'ipset.update': {
        const lines = [...o.del.map((m) => `del ${o.name} ${m}`), ...o.add.map((m) => `add ${o.name} ${m}`)];
        await this.exec(o.namespace, ['ipset', 'restore', '-exist'], lines.join('\n') + '\n');
        (this.ledger.ipsetMembers[o.namespace] ??= {})[o.name] = [...o.members];
        return;
      }
      case 'ipset.destroy':
        await this.exec(o.namespace, ['ipset', 'destroy', o.name]);
        delete this.ledger.ipsetMembers[o.namespace]?.[o.name];
        return;
      case 'flows.update': {
        const b = desired.ovs.bridges[o.bridge];
        const bundle = !b.protocols?.length || b.protocols.some((p) => /^OpenFlow1[4-9]$/.test(p));
        const ver = b.protocols?.includes('OpenFlow13') ? ['-O', 'OpenFlow13'] : [];
        await run(['ovs-ofctl', ...(bundle ? ['--bundle'] : ver), 'add-flows', this.mgmt(o.bridge), '-'], { input: bundleInput(o.add, o.modify, o.delete) });
        this.ledger.flows[o.bridge] = itemsOf(b.flows);
        return;
      }
      case 'dhcp.start':
      case 'dhcp.restart':
        await this.services.dhcpStart(o.server, this.realNs(o.server.namespace));
        this.ledger.dhcp[o.server.id] = o.server;
        return;
      case 'dhcp.reload':
        await this.services.dhcpReload(o.server, this.realNs(o.server.namespace));
        this.ledger.dhcp[o.server.id] = o.server;
        return;
      case 'dhcp.stop':
        await this.services.dhcpStop(o.id);
        delete this.ledger.dhcp[o.id];
        return;
      case 'metadata.start':
        await this.services.metadataStart(o.proxy, this.realNs(o.proxy.namespace));
        this.ledger.metadata[o.proxy.id] = o.proxy;
        return;
      case 'metadata.stop':
        await this.services.metadataStop(o.id);
        delete this.ledger.metadata[o.id];
        return;
      default:
        throw new Error(`${o.op} is handled in a batch`);
    }
  }

  private forgetNamespace(ns: string): void {
    this.ledger.namespaces = this.ledger.namespaces.filter((n) => n !== ns);
    for (const k of ['configured', 'sysctls', 'iptables', 'ipsetMembers', 'neighbours'] as const) delete this.ledger[k][ns];
  }

  // ---------------------------------------------------------------------------- read

  readState(): Promise<HostState> {
    return this.inTurn(() => this.read(undefined));
  }

  /** The namespaces of this host on the machine: state name -> machine name. */
  private listNamespaces(dict: HostState | undefined): Map<string, string | undefined> {
    const out = new Map<string, string | undefined>([[ROOT_NS, this.opts.rootNetns]]);
    const names = existsSync('/run/netns') ? readdirSync('/run/netns') : [];
    for (const real of names) {
      if (!real.startsWith(this.prefix) || real === this.opts.rootNetns) continue;
      const ns = real.slice(this.prefix.length);
      if (!ns) continue;
      if (NEUTRON_NS_PREFIXES.some((p) => ns.startsWith(p)) || this.ledger.namespaces.includes(ns) || dict?.namespaces[ns]) out.set(ns, real);
    }
    return out;
  }

  private async read(dict: HostState | undefined): Promise<HostState> {
    const ovs = parseOvsList((await this.vsctl(READ_ARGS) as { stdout: string }).stdout);
    const nsMap = this.listNamespaces(dict);
    const realToState = new Map<string, string>();
    for (const [ns, real] of nsMap) if (real !== undefined) realToState.set(real, ns);

    const dumps = new Map<string, { ip: IpNamespaceDump; iptables: string; ipsets: string; sysctls: string }>();
    await Promise.all(
      [...nsMap.keys()].map(async (ns) => {
        const keys = [...new Set([...Object.keys(this.ledger.sysctls[ns] ?? {}), ...Object.keys(dict?.namespaces[ns]?.sysctls ?? {})])];
        const [ipOut, ipt, ips, sys] = await Promise.all([
          this.ip(ns, ['-j', '-d', '-batch', '-'], READ_BATCH),
          this.exec(ns, ['iptables-save']),
          this.exec(ns, ['ipset', 'save']),
          keys.length ? run(inNetns(this.realNs(ns), ['sysctl', '-e', ...keys]), { okCodes: [0, 255] }) : Promise.resolve({ stdout: '' }),
        ]);
        dumps.set(ns, { ip: parseIpBatch(ipOut.stdout), iptables: ipt.stdout, ipsets: ips.stdout, sysctls: sys.stdout });
      }),
    );

    // OVS devices in the root namespace.
    const ovsInternal = new Set<string>(Object.keys(ovs.bridges));
    for (const b of Object.values(ovs.bridges)) for (const p of Object.values(b.ports)) if (p.type === 'internal' && !ovs.vethPorts.has(p.name)) ovsInternal.add(p.name);
    const nics = new Set(this.opts.nics ?? []);

    const namespaces: Record<string, Namespace> = {};
    for (const [ns, d] of dumps) {
      const dn = dict?.namespaces[ns];
      const configured = new Set(this.ledger.configured[ns] ?? []);
      const links: Record<string, Link> = {};
      const byIndex = (realNs: string | undefined, idx: number | undefined) => {
        const sn = realNs === undefined ? ROOT_NS : realToState.get(realNs);
        if (sn === undefined) return undefined;
        const l = dumps.get(sn)?.ip.links.find((x) => x.ifindex === idx);
        return l ? { ns: sn, name: l.ifname } : undefined;
      };
      for (const e of d.ip.links) {
        const kind = e.linkinfo?.info_kind;
        const name = e.ifname;
        const common = {
          name,
          mac: e.address?.toLowerCase(),
          mtu: e.mtu,
          up: e.flags.includes('UP'),
          addresses: (e.addr_info ?? [])
            .filter((a) => a.scope !== 'link' && a.scope !== 'host')
            .map((a) => `${a.local}/${a.prefixlen}`),
        };
        const withMaster = <T extends Link>(l: T): T => (e.master ? { ...l, master: e.master } : l);
        if (ns === ROOT_NS && (name === 'ovs-netdev' || name === 'ovs-system')) continue; // the datapath's own device
        if (name === 'lo') {
          if (configured.has('lo')) links.lo = { name: 'lo', kind: 'loopback', mtu: e.mtu, up: common.up, addresses: common.addresses };
          continue;
        }
        if (ns === ROOT_NS && ovsInternal.has(name)) {
          links[name] = withMaster({ ...common, kind: 'ovs-internal' });
          continue;
        }
        if (ovs.vethPorts.has(name) && kind === 'veth') {
          if (ns !== ROOT_NS) links[name] = withMaster({ ...common, kind: 'ovs-internal' });
          continue; // the root end is the OVS port itself
        }
        if (kind === 'veth') {
          let peer: { ns: string; name: string } | undefined;
          if (e.link_netnsid === undefined) peer = e.link ? { ns, name: e.link } : undefined;
          else {
            const realPeerNs = d.ip.nsids.get(e.link_netnsid);
            // A peer in the machine's own namespace has no name here: only a real host's root ns.
            peer = realPeerNs !== undefined ? byIndex(realPeerNs, e.link_index) : this.opts.rootNetns === undefined ? byIndex(undefined, e.link_index) : undefined;
          }
          if (peer) links[name] = withMaster({ ...common, kind: 'veth', peer: peer.name, peer_namespace: peer.ns });
          else if (nics.has(name)) {
            if (configured.has(name)) links[name] = withMaster({ ...common, kind: 'physical' });
          } else links[name] = withMaster({ ...common, kind: 'tap' }); // an instance's VIF: its far end is the instance
          continue;
        }
        if (kind === 'tun') links[name] = withMaster({ ...common, kind: 'tap' });
        else if (kind === 'bridge') links[name] = withMaster({ ...common, kind: 'bridge' });
        else if (kind === 'dummy') links[name] = withMaster({ ...common, kind: 'dummy' });
        else if (configured.has(name)) links[name] = withMaster({ ...common, kind: 'physical' });
      }

      // Respell what the kernel prints the state's way where the meaning is the same.
      const wantRules = new Map((dn?.rules ?? []).map((r) => [`${r.priority}|${hostless(r.from)}|${hostless(r.to)}|${r.iif}|${r.table}`, r]));
      const rules = d.ip.rules.map((r) => wantRules.get(`${r.priority}|${hostless(r.from)}|${hostless(r.to)}|${r.iif}|${r.table}`) ?? r);
      const reachable = [...(this.ledger.neighbours[ns] ?? []), ...itemsOf(dn?.neighbours ?? []).filter((n) => n.nud === 'reachable')];
      const neighbours = d.ip.neighbours.filter((n) => n.nud === 'permanent' || reachable.some((r) => r.dev === n.dev && r.ip === n.ip && r.lladdr === n.lladdr)) as Neighbour[];

      const sysctls: Record<string, string> = {};
      for (const line of d.sysctls.split('\n')) {
        const m = /^(\S+) = (.*)$/.exec(line.trim());
        if (m) sysctls[m[1]] = m[2].replace(/\s+/g, ' ');
      }

      const iptables: Namespace['iptables'] = {};
      const saved = splitIptablesSave(d.iptables);
      for (const t of IPTABLES_TABLES) {
        const s = saved[t];
        if (s === undefined || isEmptyTable(t, s)) continue;
        const l = this.ledger.iptables[ns]?.[t];
        iptables[t] = l && l.saved === s ? l.text : s;
      }

      const ipsets = parseIpsetSave(d.ipsets);
      for (const set of Object.values(ipsets)) {
        const spell = new Map<string, string>();
        for (const m of [...(this.ledger.ipsetMembers[ns]?.[set.name] ?? []), ...(dn?.ipsets[set.name]?.members ?? [])]) spell.set(hostless(m)!, m);
        set.members = set.members.map((m) => spell.get(hostless(m)!) ?? m);
      }

      namespaces[ns] = { name: ns, links, routes: d.ip.routes, rules, neighbours, sysctls, iptables, ipsets };
    }

    // Flows, in the state's spelling where OVS holds exactly what a known flow says.
    const bridges = ovs.bridges;
    await Promise.all(
      Object.keys(bridges).map(async (b) => {
        const dump = (await run(['ovs-ofctl', '--no-stats', '--no-names', 'dump-flows', this.mgmt(b)])).stdout;
        const known = await this.flowDictionary(b, ovs.ofports[b] ?? {}, [...(this.ledger.flows[b] ?? []), ...(dict?.ovs.bridges[b]?.flows ?? [])]);
        bridges[b].flows = readBackFlows(dump, known);
      }),
    );

    const dhcp: HostState['dhcp'] = {};
    for (const [id, server] of Object.entries(this.ledger.dhcp)) if (this.services.dhcpRunning(id)) dhcp[id] = server;
    const metadata: HostState['metadata'] = {};
    for (const [id, proxy] of Object.entries(this.ledger.metadata)) if (this.services.metadataRunning(id)) metadata[id] = proxy;

    const state: HostState = { ovs: { bridges }, namespaces, dhcp, metadata };
    this.seen = { state, ovs };
    return state;
  }

  private async flowDictionary(bridge: string, ofports: Record<string, number>, flows: Flow[]): Promise<Map<FlowSig, Flow>> {
    const seen = new Set<string>();
    const usable: Flow[] = [];
    for (const f of flows) {
      const text = renderFlow(f);
      if (seen.has(text)) continue;
      seen.add(text);
      // A flow naming a port the bridge does not have cannot be on the bridge (and parse-flows would refuse it).
      const names = portRefs(text);
      if (names.every((n) => /^\d+$/.test(n) || OF_RESERVED.has(n) || ofports[n] !== undefined)) usable.push(f);
    }
    if (!usable.length) return new Map();
    try {
      const out = await run(['ovs-ofctl', 'parse-flows', '-'], { input: parseFlowsInput(usable, ofports) });
      return sigsOf(usable, out.stdout);
    } catch {
      return new Map(); // read back in OVS's spelling: diff rewrites the bridge's flows
    }
  }
}

export { emptyLedger };
