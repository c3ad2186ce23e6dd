// A mutable, append-only HostState under construction. The L3 agent recomputes its whole
// fragment on every resync; the pure builders of src/host copy a namespace per call
// (quadratic for a router with a thousand neighbours), so the fragment is filled in place
// here and handed over once. Duplicates are refused or merged the way the builders do.
import { joinChunks, type Items } from '../../host/chunks.js';
import { neighKey, routeKey, ruleKey } from '../../host/keys.js';
import type { HostState, Link, MetadataProxy, Namespace, Neighbour, OvsBridge, OvsPort, Route, Rule } from '../../host/state.js';
import { MAIN_TABLE, ROOT_NS } from '../../host/state.js';

export interface InternalPortSpec {
  bridge: string;
  name: string;
  namespace: string;
  mac: string;
  mtu?: number;
  addresses: string[];
  /** The Neutron port: `external_ids` iface-id / attached-mac / iface-status as OVSInterfaceDriver sets them. */
  portId: string;
}

/** A subnet's neighbour table on one qr- device. */
export interface NeighbourSource {
  subnet: string;
  dev: string;
}

/** A namespace's neighbours: its own entries, then the sources' chunks. */
export interface NamespaceNeighbours {
  ns: string;
  base: Neighbour[];
  sources: NeighbourSource[];
}

/** A namespace as the fragment builds it: its own neighbours a plain array it appends to. */
type Building = Namespace & { neighbours: Neighbour[] };

export class Fragment {
  private readonly namespaces = new Map<string, Building>();
  private readonly routeKeys = new Map<string, Set<string>>();
  private readonly ruleKeys = new Map<string, Set<string>>();
  private readonly neighIndex = new Map<string, Map<string, number>>();
  private readonly bridges = new Map<string, OvsBridge>();
  private readonly metadata: Record<string, MetadataProxy> = {};
  private readonly chunked = new Map<string, Array<Items<Neighbour>>>();
  private readonly sources = new Map<string, Array<NeighbourSource | null>>();

  has(ns: string): boolean {
    return this.namespaces.has(ns);
  }

  /** A namespace with `lo` up (idempotent: several routers share one fip namespace). */
  namespace(name: string): Namespace {
    let n = this.namespaces.get(name);
    if (!n) {
      n = { name, links: { lo: { kind: 'loopback', name: 'lo', up: true, addresses: [] } }, routes: [], rules: [], neighbours: [], sysctls: {}, iptables: {}, ipsets: {} };
      this.namespaces.set(name, n);
      this.routeKeys.set(name, new Set());
      this.ruleKeys.set(name, new Set());
      this.neighIndex.set(name, new Map());
    }
    return n;
  }

  private ns(name: string): Building {
    const n = this.namespaces.get(name);
    if (!n) throw new Error(`No namespace "${name}" in the L3 fragment`);
    return n;
  }

  link(ns: string, link: Link): void {
    const n = this.ns(ns);
    if (n.links[link.name]) throw new Error(`Link "${link.name}" already exists in namespace "${ns}"`);
    n.links[link.name] = link;
  }

  hasLink(ns: string, name: string): boolean {
    return !!this.namespaces.get(ns)?.links[name];
  }

  /**
   * The bridge as this fragment names it: ports only. Its other columns (datapath type,
   * fail mode, protocols) belong to whoever created the bridge (the OVS agent); the
   * composer merges field by field, so leaving them out leaves them to their owner.
   */
  private bridge(name: string): OvsBridge {
    let b = this.bridges.get(name);
    if (!b) this.bridges.set(name, (b = { name, ports: {}, flows: [] } as unknown as OvsBridge));
    return b;
  }

  /** An OVS internal port moved into `namespace`, as Neutron's OVSInterfaceDriver plugs qr-/qg-/sg-/fg-. */
  internalPort(p: InternalPortSpec): void {
    const b = this.bridge(p.bridge);
    if (b.ports[p.name]) throw new Error(`Port "${p.name}" already exists on bridge "${p.bridge}"`);
    const port: OvsPort = { name: p.name, type: 'internal', external_ids: { 'iface-id': p.portId, 'iface-status': 'active', 'attached-mac': p.mac } };
    b.ports[p.name] = port;
    const link: Link = { kind: 'ovs-internal', name: p.name, mac: p.mac, up: true, addresses: [...p.addresses] };
    if (p.mtu) link.mtu = p.mtu;
    this.link(p.namespace, link);
  }

  route(ns: string, input: Omit<Route, 'table' | 'type'> & Partial<Pick<Route, 'table' | 'type'>>): boolean {
    const r: Route = { ...input, table: input.table ?? MAIN_TABLE, type: input.type ?? 'unicast' };
    const keys = this.routeKeys.get(ns)!;
    const k = routeKey(r);
    if (keys.has(k)) return false; // `ip route replace` keeps one per (table, dst, metric); first wins here
    keys.add(k);
    this.ns(ns).routes.push(r);
    return true;
  }

  rule(ns: string, rule: Rule): void {
    const keys = this.ruleKeys.get(ns)!;
    const k = ruleKey(rule);
    if (keys.has(k)) return;
    keys.add(k);
    this.ns(ns).rules.push({ ...rule });
  }

  /** Adds or replaces the entry for (dev, ip), as `ip neigh replace` does. */
  neighbour(ns: string, nb: Neighbour): void {
    const idx = this.neighIndex.get(ns)!;
    const list = this.ns(ns).neighbours;
    const k = neighKey(nb);
    const at = idx.get(k);
    if (at === undefined) {
      idx.set(k, list.length);
      list.push(nb);
    } else list[at] = nb;
  }

  /**
   * Appends entries the caller knows are new for (dev, ip) in this namespace (one subnet's
   * ARP table on its qr- device): no index, which matters for a router with thousands of
   * ports. A later `neighbour()` for the same key would not see them, so use one or the other
   * per device.
   */
  neighboursOfDevice(ns: string, dev: string, entries: Iterable<{ ip: string; mac: string }>): void {
    const list = this.ns(ns).neighbours;
    for (const e of entries) list.push({ dev, ip: e.ip, lladdr: e.mac, nud: 'permanent' });
  }

  /** Neighbour entries kept by the caller as a list of chunks (host/chunks.ts): joined, not copied, so unchanged chunks stay shared with the last pass. */
  neighbourChunks(ns: string, chunks: Items<Neighbour>, source?: NeighbourSource): void {
    this.ns(ns);
    let list = this.chunked.get(ns);
    if (!list) this.chunked.set(ns, (list = []));
    list.push(chunks);
    let sources = this.sources.get(ns);
    if (!sources) this.sources.set(ns, (sources = []));
    sources.push(source ?? null);
  }

  /**
   * Where each namespace's chunked neighbours came from, when every chunk named its source:
   * enough to join them again from fresher tables without building anything else.
   */
  neighbourSources(): NamespaceNeighbours[] | undefined {
    const out: NamespaceNeighbours[] = [];
    for (const [ns, sources] of this.sources) {
      if (sources.some((x) => x === null)) return undefined;
      out.push({ ns, base: this.namespaces.get(ns)!.neighbours, sources: sources as NeighbourSource[] });
    }
    return out;
  }

  sysctl(ns: string, key: string, value: string | number): void {
    this.ns(ns).sysctls[key] = String(value);
  }

  iptables(ns: string, tables: Namespace['iptables']): void {
    Object.assign(this.ns(ns).iptables, tables);
  }

  metadataProxy(p: MetadataProxy): void {
    if (this.metadata[p.id]) throw new Error(`Metadata proxy "${p.id}" already exists`);
    this.metadata[p.id] = p;
  }

  state(): HostState {
    const namespaces: HostState['namespaces'] = {
      [ROOT_NS]: { name: ROOT_NS, links: {}, routes: [], rules: [], neighbours: [], sysctls: {}, iptables: {}, ipsets: {} },
    };
    for (const [k, v] of this.namespaces) {
      const chunks = this.chunked.get(k);
      namespaces[k] = chunks ? { ...v, neighbours: joinChunks([v.neighbours, ...chunks]) } : v;
    }
    return { ovs: { bridges: Object.fromEntries(this.bridges) }, namespaces, dhcp: {}, metadata: { ...this.metadata } };
  }
}
