// The L3 agent (neutron-l3-agent) in dvr and dvr_snat mode (the latter also hosts
// centralized routers): asks the server which routers this host runs (`sync_routers`),
// computes the host's whole 'l3' fragment from the answer (qrouter-, fip-, snat-
// namespaces, see build.ts and legacy.ts) and hands it to the composer. Casts only
// say what to look at again: `routers_updated` refetches those routers, ARP casts patch the
// neighbour tables of routers it knows, and at start, after a failed pass, on a resync with
// nothing said and every resync interval (when one is set) it rebuilds everything from the
// server's answer, so stale routers disappear.
//
// Cost: a resync touches only this host's routers and their subnets; an ARP cast for a
// router this host does not run is ignored (they fan out to every L3 agent).
import { join } from 'node:path';
import type { L3AgentConfig } from '../../config/agents.js';
import { DVR_FIP_LL_CIDR, FIP_PR_END, FIP_PR_START, FIP_RT_TBL, INTEGRATION_BRIDGE, ROUTER_NS_PREFIX, ROUTER_TO_FIP_PREFIX } from '../../host/names.js';
import { cached } from '../../common/cache.js';
import { isIpv4 } from '../../host/ip.js';
import { ChunkedTable, joinChunks, type Items } from '../../host/chunks.js';
import type { HostState, Neighbour } from '../../host/state.js';
import { AGENT_TOPICS, type AgentMethod, type AgentMethods, type ArpEntry, type PortInfo, type RouterInfo } from '../../rpc/messages.js';
import { Agent, configOptions, type AgentOptions } from '../agent.js';
import { metadataProxySocket } from '../metadata/socket.js';
import { ItemAllocator, linkLocalPairs, parsePair, parsePriority, priorityRange } from './allocator.js';
import { buildL3, type Announcement, type FipStatus, type L3BuildOutput } from './build.js';

/** An address and its MAC, one object per pair for the L3 agents of a process. */
interface ArpPair {
  ip: string;
  mac: string;
}
function arpPair(ip: string, mac: string): ArpPair {
  // By address, then MAC (no key string per lookup: a host's fetch looks up every port of its subnets).
  // An address with two MACs (overlapping subnets of two projects) keeps the last one shared.
  const had = PAIRS.get(ip);
  if (had?.mac === mac) return had;
  if (PAIRS.size >= 1_000_000) PAIRS.clear();
  const pair = { ip: shared(ip), mac: shared(mac) };
  PAIRS.set(ip, pair);
  return pair;
}
const PAIRS = new Map<string, ArpPair>();

const sameMac = (a: ArpPair, b: ArpPair) => a.mac === b.mac;

/** A subnet's ARP table from the fetched addresses: chunks (host/chunks.ts) that casts then change one at a time. */
function arpTable(entries: Map<string, string>): ChunkedTable<ArpPair> {
  const t = new ChunkedTable<ArpPair>((p) => p.ip);
  for (const [ip, mac] of entries) t.set(arpPair(ip, mac));
  return t;
}

function* arpEntries(table: ChunkedTable<ArpPair> | undefined): Iterable<ArpPair> {
  if (table) for (const c of table.chunks()) yield* c;
}

/**
 * A pair's permanent entry on `dev`, one object kept on the (shared) pair: a distributed
 * router's qr- device has the same name on every host, so the hosts of one process (the
 * emulated cloud) share the entries of its thousands of ports; a subnet's last chunk is new on
 * every host at every cast, and its entries are looked up, not made again. Entries are
 * immutable values.
 */
function pairNeighbour(p: ArpPair, dev: string): Neighbour {
  const had = PAIR_NEIGHBOURS.get(p);
  if (had?.dev === dev) return had;
  const n: Neighbour = { dev, ip: p.ip, lladdr: p.mac, nud: 'permanent' };
  PAIR_NEIGHBOURS.set(p, n);
  return n;
}
const PAIR_NEIGHBOURS = new WeakMap<ArpPair, Neighbour>();

/**
 * One string per address and MAC for the L3 agents of a process: each host's ARP tables hold
 * every port of its routers' subnets, decoded from its own RPC answers.
 */
function shared(s: string): string {
  return cached(SHARED_STRINGS, s, 1_000_000, () => s);
}
const SHARED_STRINGS = new Map<string, string>();
/** How long an ARP cast waits for the others of its burst (ms): a thousand ports coming up make a few passes, not a thousand. */
const ARP_GATHER_MS = 20;

export const L3_AGENT_TYPE = 'L3 agent';
export const L3_AGENT_BINARY = 'neutron-l3-agent';

export interface L3AgentOptions extends Omit<AgentOptions, 'host'> {
  /** From `loadL3AgentConfig` (agent_mode dvr or dvr_snat, metadata settings, state_path, host). */
  config: L3AgentConfig;
  /** The name the agent reports; default `config.host`. */
  host?: string;
  /**
   * Directory of `fip-linklocal-networks` and `fip-priorities` (Neutron keeps them in
   * state_path); default `config.state_path`; `null`: keep them in memory only. Agents of
   * different hosts must not share one. Either way the first resync also reads them back
   * from the host's current state, so a restarted agent keeps its addresses.
   */
  statePath?: string | null;
  /** The metadata proxies' upstream: default the metadata agent's socket (`metadata_proxy_socket`, `$state_path/metadata_proxy`). */
  metadataUpstream?: string;
  /** The bridge the interface driver plugs into (Neutron's `[ovs] integration_bridge`); default br-int. */
  integrationBridge?: string;
}

type Mode = 'dvr' | 'dvr_snat';

export class L3Agent extends Agent {
  readonly agentType = L3_AGENT_TYPE;
  readonly binary = L3_AGENT_BINARY;
  readonly topic = 'l3_agent';
  protected readonly serveBase = AGENT_TOPICS.l3;

  readonly mode: Mode;
  private readonly config: L3AgentConfig;
  private readonly l3opts: L3AgentOptions;
  /** The routers this host runs, as the server last described them. */
  private readonly routers = new Map<string, RouterInfo>();
  /**
   * ARP tables per subnet (address -> MAC of each port), in chunks the casts change one at a
   * time; a qr- device's permanent neighbours are made from them chunk by chunk.
   */
  private readonly arp = new Map<string, ChunkedTable<ArpPair>>();
  /** fg ports obtained with get_agent_gateway_port, by external network. */
  private readonly fgPorts = new Map<string, PortInfo>();
  private readonly linkLocal: ItemAllocator<string>;
  private readonly fipPriorities: ItemAllocator<number>;
  private pending = { routers: new Set<string>(), removed: new Set<string>(), arp: false };
  private lastFull = 0;
  /** ARP casts that arrive while neighbour tables are being fetched: replayed over the answers. */
  private arpDuringFetch?: Array<['add' | 'del', ArpEntry]>;
  private seeded = false;
  private files: { linkLocal?: string; priorities?: string } = {};
  /** What the last build produced (tests and the benchmark look at it). */
  last?: L3BuildOutput;
  /** Floating-IP status updates sent (router id -> statuses), in order. */
  readonly statusReports: Array<{ router_id: string; fip_statuses: Record<string, FipStatus> }> = [];

  constructor(opts: L3AgentOptions) {
    super({ ...configOptions(opts.config), ...opts, host: opts.host ?? opts.config.host });
    const mode = opts.config.agent_mode;
    if (mode !== 'dvr' && mode !== 'dvr_snat')
      throw new Error(`L3 agent on ${this.host}: agent_mode "${mode}" is not supported (use dvr, or dvr_snat, which also hosts centralized routers)`);
    if (opts.config.ovs_use_veth) throw new Error(`L3 agent on ${this.host}: ovs_use_veth = True is not supported (ports are plugged as OVS internal ports)`);
    this.mode = mode;
    this.config = opts.config;
    this.l3opts = opts;
    const dir = opts.statePath === undefined ? opts.config.state_path : opts.statePath;
    if (dir) this.files = { linkLocal: join(dir, 'fip-linklocal-networks'), priorities: join(dir, 'fip-priorities') };
    this.linkLocal = new ItemAllocator(linkLocalPairs(DVR_FIP_LL_CIDR), parsePair, this.files.linkLocal);
    this.fipPriorities = new ItemAllocator(priorityRange(FIP_PR_START, FIP_PR_END), parsePriority, this.files.priorities);
  }

  protected configurations(): Record<string, unknown> {
    const c = this.last?.counts ?? { routers: 0, interfaces: 0, ex_gw_ports: 0, floating_ips: 0 };
    return {
      agent_mode: this.mode,
      interface_driver: 'openvswitch',
      handle_internal_only_routers: this.config.handle_internal_only_routers,
      external_network_bridge: '',
      log_agent_heartbeats: false,
      ...c,
    };
  }

  protected override handlers(): Partial<{ [M in AgentMethod]: (args: AgentMethods[M]) => void }> {
    return {
      routers_updated: ({ routers }) => {
        for (const id of routers) this.pending.routers.add(id);
        this.requestSync();
      },
      router_removed_from_agent: ({ router_id }) => {
        this.pending.removed.add(router_id);
        this.requestSync();
      },
      add_arp_entry: ({ router_id, arp_table }) => this.addArp(router_id, arp_table),
      del_arp_entry: ({ router_id, arp_table }) => this.delArp(router_id, arp_table),
      add_arp_entries: ({ entries }) => {
        for (const e of entries) this.addArp(e.router_id, e.arp_table);
      },
      del_arp_entries: ({ entries }) => {
        for (const e of entries) this.delArp(e.router_id, e.arp_table);
      },
    };
  }

  private addArp(routerId: string, arp: ArpEntry): void {
    // Fanned out to every agent: not a router of this host, or a centralized one (it learns by ARP).
    if (!this.routers.get(routerId)?.distributed) return;
    this.arpDuringFetch?.push(['add', arp]);
    const table = this.arp.get(arp.subnet_id);
    if (!table) return this.refetch(routerId); // a subnet this host has not loaded: ask again
    if (!isIpv4(arp.ip_address) || !table.set(arpPair(arp.ip_address, arp.mac_address), sameMac)) return;
    this.pending.arp = true;
    this.requestSync(this.gatherMs(ARP_GATHER_MS));
  }

  private delArp(routerId: string, arp: ArpEntry): void {
    if (!this.routers.get(routerId)?.distributed) return;
    this.arpDuringFetch?.push(['del', arp]);
    const table = this.arp.get(arp.subnet_id);
    if (!table || table.get(arp.ip_address)?.mac !== arp.mac_address) return;
    table.delete(arp.ip_address);
    this.pending.arp = true;
    this.requestSync(this.gatherMs(ARP_GATHER_MS));
  }

  /**
   * A subnet's entries as permanent neighbours on a qr- device: its ARP table's chunks, each
   * made into neighbours once, joined as one list (the same list while no chunk changed).
   */
  private neighbourChunks(subnetId: string, dev: string): Items<Neighbour> {
    const table = this.arp.get(subnetId);
    let byDev = this.neighbourLists.get(subnetId);
    if (!byDev) this.neighbourLists.set(subnetId, (byDev = new Map()));
    const have = byDev.get(dev);
    if (have && have.table === table && have.version === table?.version) return have.list;
    // A chunk that did not change keeps its neighbours (the same array: what diff and validate skip).
    const chunks = table?.chunks() ?? [];
    const lists = chunks.map((c, i) => (have?.chunks[i] === c ? have.lists[i] : c.map((p) => pairNeighbour(p, dev))));
    const list = joinChunks(lists, have?.list);
    byDev.set(dev, { table, version: table?.version, list, chunks, lists });
    return list;
  }
  /**
   * Per subnet and device, the neighbour list as last joined, the table (and its version) it
   * was joined from, and its chunks with their neighbours (kept here, per host: a weak map by
   * chunk took an entry per host per cast until a full collection).
   */
  private readonly neighbourLists = new Map<
    string,
    Map<string, { table: ChunkedTable<ArpPair> | undefined; version: number | undefined; list: Items<Neighbour>; chunks: ReadonlyArray<readonly ArpPair[]>; lists: ReadonlyArray<readonly Neighbour[]> }>
  >();

  private refetch(routerId: string) {
    this.pending.routers.add(routerId);
    this.requestSync();
  }

  protected async sync(): Promise<void> {
    const pending = this.pending;
    this.pending = { routers: new Set(), removed: new Set(), arp: false };
    const interval = (this.opts.resyncInterval ?? 0) * 1000;
    const nothingSaid = !pending.routers.size && !pending.removed.size && !pending.arp;
    const full = nothingSaid || !this.lastFull || (interval > 0 && Date.now() - this.lastFull >= interval);
    try {
      if (full) await this.fetchAll();
      else await this.fetchSome(pending.routers, pending.removed);
    } catch (err) {
      // Nothing was applied: ask for the same again on the next pass.
      for (const id of pending.routers) this.pending.routers.add(id);
      for (const id of pending.removed) this.pending.removed.add(id);
      throw err;
    }
    if (full) this.lastFull = Date.now();
    const last = this.last;
    if (!full && pending.arp && !pending.routers.size && !pending.removed.size && last?.neighbourSources) {
      // Only neighbour tables changed (ARP casts): join the routers' chunks again from the
      // tables the casts updated, and build nothing else.
      const namespaces = { ...last.state.namespaces };
      for (const { ns, base, sources } of last.neighbourSources)
        namespaces[ns] = { ...namespaces[ns], neighbours: joinChunks([base, ...sources.map((x) => this.neighbourChunks(x.subnet, x.dev))]) };
      this.last = { ...last, state: { ...last.state, namespaces } };
      this.composer.setFragment('l3', this.last.state);
      await this.composer.reconcile();
      return;
    }
    await this.apply();
  }

  /** Every router of this host and every neighbour table, from scratch. */
  private async fetchAll() {
    const routers = await this.call('sync_routers', { host: this.host });
    this.routers.clear();
    for (const r of routers) this.routers.set(r.id, r);
    const tables = await this.fetchArpTables([...this.subnetsInUse()]);
    this.arp.clear();
    this.neighbourLists.clear();
    for (const [s, t] of tables) this.arp.set(s, arpTable(t));
  }

  /** Neighbour tables of these subnets; casts that came in meanwhile are applied on top. */
  private async fetchArpTables(subnets: string[]): Promise<Array<readonly [string, Map<string, string>]>> {
    if (!subnets.length) return [];
    this.arpDuringFetch = [];
    try {
      const tables = await Promise.all(subnets.map(async (s) => [s, await this.fetchArp(s)] as const));
      const bySubnet = new Map(tables);
      for (const [op, e] of this.arpDuringFetch) {
        const t = bySubnet.get(e.subnet_id);
        if (!t || !isIpv4(e.ip_address)) continue;
        if (op === 'add') t.set(e.ip_address, e.mac_address);
        else if (t.get(e.ip_address) === e.mac_address) t.delete(e.ip_address);
      }
      return tables;
    } finally {
      this.arpDuringFetch = undefined;
    }
  }

  /** Only the routers a cast named, and the neighbour tables of subnets new to this host. */
  private async fetchSome(ids: Set<string>, removed: Set<string>) {
    // ARP casts only: the routers, and so the subnets in use and their tables, are as they were.
    if (!ids.size && !removed.size) return;
    for (const id of removed) if (!ids.has(id)) this.routers.delete(id);
    if (ids.size) {
      const got = await this.call('sync_routers', { host: this.host, router_ids: [...ids] });
      const byId = new Map(got.map((r) => [r.id, r]));
      for (const id of ids) {
        const r = byId.get(id);
        if (r) this.routers.set(id, r);
        else this.routers.delete(id);
      }
    }
    const subnets = this.subnetsInUse();
    for (const s of [...this.arp.keys()]) {
      if (subnets.has(s)) continue;
      this.arp.delete(s);
      this.neighbourLists.delete(s);
    }
    for (const [s, t] of await this.fetchArpTables([...subnets].filter((s) => !this.arp.has(s)))) this.arp.set(s, arpTable(t));
  }

  private async fetchArp(subnetId: string): Promise<Map<string, string>> {
    const ports = await this.call('get_ports_by_subnet', { subnet_id: subnetId });
    const t = new Map<string, string>();
    for (const p of ports) for (const ip of p.fixed_ips) if (ip.subnet_id === subnetId && isIpv4(ip.ip_address)) t.set(ip.ip_address, p.mac_address);
    return t;
  }

  private hosted(): RouterInfo[] {
    const all = [...this.routers.values()];
    return this.config.handle_internal_only_routers ? all : all.filter((r) => r.gw_port);
  }

  private subnetsInUse(): Set<string> {
    const out = new Set<string>();
    for (const r of this.hosted()) if (r.admin_state_up && r.distributed) for (const p of r._interfaces) for (const s of p.subnets) out.add(s.id);
    return out;
  }

  /** fg ports for external networks where this host has floating IPs and the server sent none. */
  private async ensureFgPorts(routers: RouterInfo[]) {
    const need = new Set<string>();
    for (const r of routers) {
      if (!r.admin_state_up || !r.gw_port || !r._floatingips.some((f) => f.host === this.host)) continue;
      if (r.fip_agent_gw_port) this.fgPorts.set(r.gw_port.network_id, r.fip_agent_gw_port);
      else need.add(r.gw_port.network_id);
    }
    for (const net of need) {
      if (this.fgPorts.has(net)) continue;
      const port = await this.call('get_agent_gateway_port', { network_id: net, host: this.host });
      if (port) this.fgPorts.set(net, port);
    }
    const used = new Set(routers.filter((r) => r.gw_port).map((r) => r.gw_port!.network_id));
    for (const net of [...this.fgPorts.keys()]) if (!used.has(net)) this.fgPorts.delete(net);
  }

  /**
   * The first time: take the link-local pairs and floating-IP rule priorities the host
   * already has (a restarted agent), then what the state files remember.
   */
  private async seed(routers: RouterInfo[]) {
    if (this.seeded) return;
    const current: HostState = await this.composer.current();
    const byFixed = new Map<string, number>();
    for (const [name, ns] of Object.entries(current.namespaces)) {
      if (!name.startsWith(ROUTER_NS_PREFIX)) continue;
      const routerId = name.slice(ROUTER_NS_PREFIX.length);
      for (const l of Object.values(ns.links)) {
        if (!l.name.startsWith(ROUTER_TO_FIP_PREFIX)) continue;
        const pair = l.addresses.find((a) => a.endsWith('/31'));
        if (pair) this.linkLocal.remember(routerId, pair);
      }
      for (const rule of ns.rules)
        if (rule.table === FIP_RT_TBL && rule.from && rule.priority >= FIP_PR_START && rule.priority < FIP_PR_END) byFixed.set(`${routerId}/${rule.from.replace(/\/32$/, '')}`, rule.priority);
    }
    for (const r of routers)
      for (const f of r._floatingips) {
        const p = byFixed.get(`${r.id}/${f.fixed_ip_address}`);
        if (p !== undefined) this.fipPriorities.remember(f.floating_ip_address, p);
      }
    if (this.files.linkLocal) this.linkLocal.load(this.files.linkLocal);
    if (this.files.priorities) this.fipPriorities.load(this.files.priorities);
    this.seeded = true;
  }

  private async apply() {
    const routers = this.hosted();
    await this.ensureFgPorts(routers);
    await this.seed(routers);
    const out = buildL3({
      host: this.host,
      mode: this.mode,
      integrationBridge: this.l3opts.integrationBridge ?? INTEGRATION_BRIDGE,
      metadata: this.config.enable_metadata_proxy
        ? { port: this.config.metadata_port, upstream: this.l3opts.metadataUpstream ?? metadataProxySocket(this.config) }
        : undefined,
      routers,
      arp: (s) => arpEntries(this.arp.get(s)),
      neighbours: (s, dev) => this.neighbourChunks(s, dev),
      fgPort: (net) => this.fgPorts.get(net) ?? null,
      linkLocal: (id) => this.linkLocal.allocate(id),
      fipPriority: (f) => this.fipPriorities.allocate(f.floating_ip_address),
    });
    // Allocations nothing uses any more go back to the pool (Neutron releases them with the link / rule).
    for (const id of this.linkLocal.keys()) if (!out.linkedRouters.has(id)) this.linkLocal.release(id);
    for (const ip of this.fipPriorities.keys()) if (!out.ruledFips.has(ip)) this.fipPriorities.release(ip);
    this.linkLocal.flush();
    this.fipPriorities.flush();
    this.last = out;
    // Admin-down routers are not set up: their floating IPs here are DOWN.
    for (const r of routers)
      if (!r.admin_state_up) {
        const mine = r._floatingips.filter((f) => !r.distributed || f.host === this.host); // a centralized router serves all of its own
        if (mine.length) out.fipStatuses.set(r.id, Object.fromEntries(mine.map((f) => [f.id, 'DOWN' as FipStatus])));
      }
    this.composer.setFragment('l3', out.state);
    try {
      await this.composer.reconcile();
    } catch (err) {
      for (const st of out.fipStatuses.values()) for (const id of Object.keys(st)) if (st[id] === 'ACTIVE') st[id] = 'ERROR';
      await this.reportStatuses(routers, out.fipStatuses).catch(() => {});
      throw err;
    }
    await this.announce(out.announce);
    await this.reportStatuses(routers, out.fipStatuses);
  }

  /** What was announced (ns|dev|ip): an address is announced when it first appears here. */
  private announced = new Set<string>();

  /** Gratuitous ARP for addresses new on this host (a floating IP that moved here, a SNAT gateway that failed over). */
  private async announce(list: Announcement[]) {
    const now = new Set<string>();
    for (const a of list) {
      const key = `${a.ns}|${a.dev}|${a.ip}`;
      now.add(key);
      if (this.announced.has(key)) continue;
      await this.composer.announce(a.ns, a.dev, a.ip);
    }
    this.announced = now;
  }

  /** Tell the server what changed: only statuses that differ from what it has. */
  private async reportStatuses(routers: RouterInfo[], statuses: Map<string, Record<string, FipStatus>>) {
    const known = new Map<string, string>();
    for (const r of routers) for (const f of r._floatingips) known.set(f.id, f.status);
    for (const [routerId, st] of statuses) {
      const changed = Object.fromEntries(Object.entries(st).filter(([id, s]) => known.get(id) !== s));
      if (!Object.keys(changed).length) continue;
      await this.call('update_floatingip_statuses', { router_id: routerId, fip_statuses: changed });
      this.statusReports.push({ router_id: routerId, fip_statuses: changed });
      // The server has it now; a partial resync that does not refetch the router must not resend.
      const r = this.routers.get(routerId);
      if (r) this.routers.set(routerId, { ...r, _floatingips: r._floatingips.map((f) => (changed[f.id] ? { ...f, status: changed[f.id] } : f)) });
    }
  }
}
