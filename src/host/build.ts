// Pure builders for host states: each takes a state and returns a new one, copying only the
// path to what changed (the rest is shared, which also lets `diff` skip it by identity).
// They fill in the defaults the state spells out and refuse a name that is already taken;
// cross-object consistency (peers, masters, devices of routes) is `validate`'s job.
//
// Builders copy the collection they change, so adding flows one at a time to a big bridge
// costs O(n) per call: add them in batches (`addFlows`, `replaceCookieFlows`).
import { tunnelPortName } from './names.js';
import { canonicalMatch, cookie as toCookie, flow as makeFlow, flowKey, type FlowInput } from './flow.js';
import { itemsOf, type Items } from './chunks.js';
import { neighKey, routeKey, ruleKey } from './keys.js';
import type {
  Cookie,
  DhcpServer,
  Flow,
  HostState,
  IpSet,
  IptablesTable,
  Link,
  MetadataProxy,
  Namespace,
  Neighbour,
  OvsBridge,
  OvsInternalPort,
  OvsPatchPort,
  OvsPort,
  OvsPortCommon,
  OvsSystemPort,
  OvsTunnelPort,
  Route,
  Rule,
  SimpleLink,
} from './state.js';
import { MAIN_TABLE, ROOT_NS } from './state.js';

const label = (ns: string) => (ns === ROOT_NS ? 'the root namespace' : `namespace "${ns}"`);

export function emptyNamespace(name: string): Namespace {
  return { name, links: {}, routes: [], rules: [], neighbours: [], sysctls: {}, iptables: {}, ipsets: {} };
}

/** A host with only its root namespace (no links: add the NICs with `addPhysical`). */
export function emptyHost(): HostState {
  return { ovs: { bridges: {} }, namespaces: { [ROOT_NS]: emptyNamespace(ROOT_NS) }, dhcp: {}, metadata: {} };
}

function getNs(s: HostState, ns: string): Namespace {
  const n = s.namespaces[ns];
  if (!n) throw new Error(`No ${label(ns)}`);
  return n;
}

function putNs(s: HostState, n: Namespace): HostState {
  return { ...s, namespaces: { ...s.namespaces, [n.name]: n } };
}

function updateNs(s: HostState, ns: string, fn: (n: Namespace) => Namespace): HostState {
  return putNs(s, fn(getNs(s, ns)));
}

// ------------------------------------------------------------------ namespaces and links

/**
 * Adds a namespace with its `lo` up (as Neutron's agents leave it). Adding one that exists
 * returns the state unchanged, so several routers can ask for the same `fip-` namespace.
 */
export function addNamespace(s: HostState, name: string): HostState {
  if (s.namespaces[name]) return s;
  const n = emptyNamespace(name);
  n.links.lo = { kind: 'loopback', name: 'lo', up: true, addresses: [] };
  return putNs(s, n);
}

export function removeNamespace(s: HostState, name: string): HostState {
  if (name === ROOT_NS) throw new Error('The root namespace cannot be removed');
  getNs(s, name);
  const { [name]: _gone, ...rest } = s.namespaces;
  return { ...s, namespaces: rest };
}

export interface LinkOptions {
  mac?: string;
  mtu?: number;
  /** Default true. */
  up?: boolean;
  master?: string;
  addresses?: string[];
}

function linkFields(name: string, o: LinkOptions = {}) {
  const l: { name: string; up: boolean; addresses: string[]; mac?: string; mtu?: number; master?: string } = {
    name,
    up: o.up ?? true,
    addresses: [...(o.addresses ?? [])],
  };
  if (o.mac !== undefined) l.mac = o.mac;
  if (o.mtu !== undefined) l.mtu = o.mtu;
  if (o.master !== undefined) l.master = o.master;
  return l;
}

/** Adds a fully described link; fails if the name is taken in that namespace. */
export function addLink(s: HostState, ns: string, link: Link): HostState {
  return updateNs(s, ns, (n) => {
    if (n.links[link.name]) throw new Error(`Link "${link.name}" already exists in ${label(ns)}`);
    return { ...n, links: { ...n.links, [link.name]: link } };
  });
}

function addSimple(kind: SimpleLink['kind']) {
  return (s: HostState, ns: string, name: string, opts?: LinkOptions): HostState =>
    addLink(s, ns, { kind, ...linkFields(name, opts) });
}

/** A tap device (an instance's VIF). */
export const addTap = addSimple('tap');
/** A Linux bridge (`ip link add NAME type bridge`), e.g. the hybrid firewall's `qbr`. */
export const addLinuxBridge = addSimple('bridge');
export const addDummy = addSimple('dummy');

/** A NIC of the host in the root namespace (never created or deleted, only configured). */
export function addPhysical(s: HostState, name: string, opts?: LinkOptions): HostState {
  return addLink(s, ROOT_NS, { kind: 'physical', ...linkFields(name, opts) });
}

/** A veth pair: `devA` in `nsA` and `devB` in `nsB` (e.g. `rfp-` in qrouter and `fpr-` in fip; `qvb`/`qvo` in root). */
export function addVethPair(
  s: HostState,
  nsA: string,
  devA: string,
  nsB: string,
  devB: string,
  opts: { a?: LinkOptions; b?: LinkOptions } = {},
): HostState {
  if (nsA === nsB && devA === devB) throw new Error(`veth "${devA}" cannot be its own peer`);
  s = addLink(s, nsA, { kind: 'veth', ...linkFields(devA, opts.a), peer: devB, peer_namespace: nsB });
  return addLink(s, nsB, { kind: 'veth', ...linkFields(devB, opts.b), peer: devA, peer_namespace: nsA });
}

/** Changes a link's attributes; `master: undefined` in `changes` detaches it. */
export function setLink(s: HostState, ns: string, name: string, changes: LinkOptions): HostState {
  return updateNs(s, ns, (n) => {
    const l = n.links[name];
    if (!l) throw new Error(`No link "${name}" in ${label(ns)}`);
    const next = { ...l, ...changes } as Link;
    if ('master' in changes && changes.master === undefined) delete next.master;
    if (changes.addresses) next.addresses = [...changes.addresses];
    return { ...n, links: { ...n.links, [name]: next } };
  });
}

/** Removes a link (a veth with its peer). Routes or neighbours through it are left for the caller. */
export function removeLink(s: HostState, ns: string, name: string): HostState {
  const l = getNs(s, ns).links[name];
  if (!l) throw new Error(`No link "${name}" in ${label(ns)}`);
  const drop = (st: HostState, nsName: string, dev: string) =>
    updateNs(st, nsName, (n) => {
      const { [dev]: _gone, ...links } = n.links;
      return { ...n, links };
    });
  s = drop(s, ns, name);
  if (l.kind === 'veth' && s.namespaces[l.peer_namespace]?.links[l.peer]) s = drop(s, l.peer_namespace, l.peer);
  return s;
}

export function addAddress(s: HostState, ns: string, dev: string, cidr: string): HostState {
  return updateNs(s, ns, (n) => {
    const l = n.links[dev];
    if (!l) throw new Error(`No link "${dev}" in ${label(ns)} for address ${cidr}`);
    if (l.addresses.includes(cidr)) return n;
    return { ...n, links: { ...n.links, [dev]: { ...l, addresses: [...l.addresses, cidr] } } };
  });
}

export type RouteInput = Omit<Route, 'table' | 'type'> & Partial<Pick<Route, 'table' | 'type'>>;

/** Adds a route (table defaults to main, type to unicast); fails if the table already has one for that dst and metric. */
export function addRoute(s: HostState, ns: string, input: RouteInput): HostState {
  const r: Route = { ...input, table: input.table ?? MAIN_TABLE, type: input.type ?? 'unicast' };
  return updateNs(s, ns, (n) => {
    const key = routeKey(r);
    if (n.routes.some((x) => routeKey(x) === key)) throw new Error(`Route to ${r.dst} (table ${r.table}) already exists in ${label(ns)}`);
    return { ...n, routes: [...n.routes, r] };
  });
}

export function addRule(s: HostState, ns: string, rule: Rule): HostState {
  return updateNs(s, ns, (n) => {
    if (n.rules.some((x) => ruleKey(x) === ruleKey(rule))) return n;
    return { ...n, rules: [...n.rules, { ...rule }] };
  });
}

/** Adds or replaces the neighbour entry for (dev, ip); `nud` defaults to permanent. */
export function addNeighbour(s: HostState, ns: string, input: Omit<Neighbour, 'nud'> & { nud?: Neighbour['nud'] }): HostState {
  const nb: Neighbour = { dev: input.dev, ip: input.ip, lladdr: input.lladdr, nud: input.nud ?? 'permanent' };
  return updateNs(s, ns, (n) => ({
    ...n,
    neighbours: [...itemsOf(n.neighbours).filter((x) => neighKey(x) !== neighKey(nb)), nb],
  }));
}

export function setSysctl(s: HostState, ns: string, key: string, value: string | number): HostState {
  return updateNs(s, ns, (n) => ({ ...n, sysctls: { ...n.sysctls, [key]: String(value) } }));
}

export function setIptables(s: HostState, ns: string, table: IptablesTable, text: string): HostState {
  return updateNs(s, ns, (n) => ({ ...n, iptables: { ...n.iptables, [table]: text } }));
}

/**
 * `iptables-restore` text for one table: `*table`, one `:CHAIN POLICY [0:0]` line per chain
 * (`-` as the policy for user chains), the rules (`-A CHAIN ...`), `COMMIT`.
 */
export function iptablesText(table: IptablesTable, chains: Array<[string, string]>, rules: string[]): string {
  const lines = [`*${table}`, ...chains.map(([c, p]) => `:${c} ${p} [0:0]`), ...rules, 'COMMIT'];
  return lines.join('\n') + '\n';
}

export function addIpset(
  s: HostState,
  ns: string,
  set: Omit<IpSet, 'family'> & { family?: IpSet['family'] },
): HostState {
  const full: IpSet = { name: set.name, type: set.type, family: set.family ?? 'inet', members: [...set.members] };
  return updateNs(s, ns, (n) => {
    if (n.ipsets[full.name]) throw new Error(`ipset "${full.name}" already exists in ${label(ns)}`);
    return { ...n, ipsets: { ...n.ipsets, [full.name]: full } };
  });
}

// ------------------------------------------------------------------ Open vSwitch

export interface BridgeOptions {
  datapath_type?: OvsBridge['datapath_type'];
  fail_mode?: OvsBridge['fail_mode'];
  protocols?: string[];
  external_ids?: Record<string, string>;
  other_config?: Record<string, string>;
  /** The bridge's own device in the root namespace (default: down, no addresses). */
  local?: LinkOptions;
}

/** Adds an OVS bridge (default `system` datapath, `secure` fail mode as Neutron sets) and its local device. */
export function addBridge(s: HostState, name: string, o: BridgeOptions = {}): HostState {
  if (s.ovs.bridges[name]) throw new Error(`Bridge "${name}" already exists`);
  const b: OvsBridge = {
    name,
    datapath_type: o.datapath_type ?? 'system',
    fail_mode: o.fail_mode ?? 'secure',
    ports: {},
    flows: [],
  };
  if (o.protocols) b.protocols = [...o.protocols];
  if (o.external_ids) b.external_ids = { ...o.external_ids };
  if (o.other_config) b.other_config = { ...o.other_config };
  s = { ...s, ovs: { bridges: { ...s.ovs.bridges, [name]: b } } };
  return addLink(s, ROOT_NS, { kind: 'ovs-internal', ...linkFields(name, { up: false, ...o.local }) });
}

function updateBridge(s: HostState, name: string, fn: (b: OvsBridge) => OvsBridge): HostState {
  const b = s.ovs.bridges[name];
  if (!b) throw new Error(`No bridge "${name}"`);
  return { ...s, ovs: { bridges: { ...s.ovs.bridges, [name]: fn(b) } } };
}

/** Removes a bridge, its ports' internal devices and its own device. */
export function removeBridge(s: HostState, name: string): HostState {
  const b = s.ovs.bridges[name];
  if (!b) throw new Error(`No bridge "${name}"`);
  for (const p of Object.values(b.ports)) if (p.type === 'internal') s = removePort(s, name, p.name);
  const { [name]: _gone, ...bridges } = s.ovs.bridges;
  s = { ...s, ovs: { bridges } };
  return s.namespaces[ROOT_NS].links[name]?.kind === 'ovs-internal' ? removeLink(s, ROOT_NS, name) : s;
}

export type PortOptions = Omit<OvsPortCommon, 'name'>;

function common(name: string, o: PortOptions = {}): OvsPortCommon {
  const p: OvsPortCommon = { name };
  if (o.tag !== undefined) p.tag = o.tag;
  if (o.ofport_request !== undefined) p.ofport_request = o.ofport_request;
  if (o.external_ids) p.external_ids = { ...o.external_ids };
  if (o.other_config) p.other_config = { ...o.other_config };
  return p;
}

export const internalPort = (name: string, o?: PortOptions): OvsInternalPort => ({ ...common(name, o), type: 'internal' });
export const systemPort = (name: string, o?: PortOptions): OvsSystemPort => ({ ...common(name, o), type: 'system' });
export const patchPort = (name: string, peer: string, o?: PortOptions): OvsPatchPort => ({ ...common(name, o), type: 'patch', peer });

export interface TunnelOptions extends PortOptions {
  local_ip?: string;
  key?: 'flow' | number;
  dst_port?: number;
  options?: Record<string, string>;
  /** Default: Neutron's `<type>-<remote IPv4 in hex>`. */
  name?: string;
}

export function tunnelPort(type: 'vxlan' | 'gre', remoteIp: string, o: TunnelOptions = {}): OvsTunnelPort {
  const p: OvsTunnelPort = { ...common(o.name ?? tunnelPortName(type, remoteIp), o), type, remote_ip: remoteIp, key: o.key ?? 'flow' };
  if (o.local_ip !== undefined) p.local_ip = o.local_ip;
  if (o.dst_port !== undefined) p.dst_port = o.dst_port;
  if (o.options) p.options = { ...o.options };
  return p;
}

/** Adds a port (an internal one needs its device too: use `addInternalPort`). */
export function addPort(s: HostState, bridge: string, port: OvsPort): HostState {
  for (const b of Object.values(s.ovs.bridges)) {
    if (b.ports[port.name]) throw new Error(`Port "${port.name}" already exists on bridge "${b.name}"`);
  }
  return updateBridge(s, bridge, (b) => ({ ...b, ports: { ...b.ports, [port.name]: port } }));
}

/**
 * An internal port and its device, placed in `namespace` (default root) with the given MAC,
 * MTU and addresses: how Neutron plugs `qr-`, `qg-`, `sg-`, `fg-` and DHCP `tap` ports.
 */
export function addInternalPort(
  s: HostState,
  bridge: string,
  name: string,
  o: PortOptions & LinkOptions & { namespace?: string } = {},
): HostState {
  s = addPort(s, bridge, internalPort(name, o));
  return addLink(s, o.namespace ?? ROOT_NS, { kind: 'ovs-internal', ...linkFields(name, o) });
}

/** Two patch ports joining two bridges (`patch-int`/`patch-tun`, `int-br-ex`/`phy-br-ex`). */
export function addPatchPair(s: HostState, bridgeA: string, portA: string, bridgeB: string, portB: string): HostState {
  s = addPort(s, bridgeA, patchPort(portA, portB));
  return addPort(s, bridgeB, patchPort(portB, portA));
}

/** Replaces a port's columns (its type and name stay). */
export function setPort(s: HostState, bridge: string, name: string, changes: Partial<OvsPort>): HostState {
  return updateBridge(s, bridge, (b) => {
    const p = b.ports[name];
    if (!p) throw new Error(`No port "${name}" on bridge "${bridge}"`);
    return { ...b, ports: { ...b.ports, [name]: { ...p, ...changes, name, type: p.type } as OvsPort } };
  });
}

/** Removes a port (and, for an internal port, its device wherever it lives). */
export function removePort(s: HostState, bridge: string, name: string): HostState {
  const p = s.ovs.bridges[bridge]?.ports[name];
  if (!p) throw new Error(`No port "${name}" on bridge "${bridge}"`);
  s = updateBridge(s, bridge, (b) => {
    const { [name]: _gone, ...ports } = b.ports;
    return { ...b, ports };
  });
  if (p.type === 'internal') {
    for (const n of Object.values(s.namespaces)) {
      if (n.links[name]?.kind === 'ovs-internal') return removeLink(s, n.name, name);
    }
  }
  return s;
}

/**
 * Adds flows as `ovs-ofctl add-flows` does: a flow whose table, priority and match are
 * already on the bridge replaces that flow (whatever its cookie).
 */
export function addFlows(s: HostState, bridge: string, flows: Array<Flow | FlowInput>): HostState {
  const made = flows.map(normaliseFlow);
  return updateBridge(s, bridge, (b) => ({ ...b, flows: mergeFlows(b.flows, made, () => false) }));
}

/**
 * `existing` without what `drop` selects, with `added` merged in: a flow replacing one of the
 * same key takes its place, the others go where the dropped flows began (or at the end). So
 * an agent that recomputes a cookie's flows keeps the bridge's order stable, which lets
 * `diff` skip the unchanged head and tail without indexing them.
 */
function mergeFlows(existing: Items<Flow>, added: Flow[], drop: (f: Flow) => boolean): Flow[] {
  const pending = new Map<string, Flow>();
  for (const f of added) pending.set(flowKey(f), f);
  const addedKeys = new Set(pending.keys());
  const out: Flow[] = [];
  let placed = false;
  const placeRest = () => {
    for (const f of pending.values()) out.push(f);
    pending.clear();
    placed = true;
  };
  for (const f of existing) {
    if (drop(f)) {
      if (!placed) placeRest();
      continue;
    }
    const key = flowKey(f);
    if (!addedKeys.has(key)) out.push(f);
    else if (pending.has(key)) {
      out.push(pending.get(key)!);
      pending.delete(key);
    }
  }
  if (!placed) placeRest();
  return out;
}

/**
 * Makes `flows` the only flows with `cookie` on the bridge: how an agent owns the flows of
 * one resource (Neutron derives a cookie per resource and removes stale ones by cookie).
 * Each flow gets that cookie; a flow with the key of another cookie's flow takes it over.
 */
export function replaceCookieFlows(s: HostState, bridge: string, cookie: number | string, flows: Array<Flow | FlowInput>): HostState {
  const c = toCookie(cookie);
  const made = flows.map((f) => ({ ...normaliseFlow(f), cookie: c }));
  return updateBridge(s, bridge, (b) => ({ ...b, flows: mergeFlows(b.flows, made, (f) => f.cookie === c) }));
}

export function removeCookieFlows(s: HostState, bridge: string, cookie: number | string): HostState {
  const c = toCookie(cookie);
  return updateBridge(s, bridge, (b) => ({ ...b, flows: itemsOf(b.flows).filter((f) => f.cookie !== c) }));
}

export function flowsOfCookie(b: OvsBridge, cookie: number | string): Flow[] {
  const c: Cookie = toCookie(cookie);
  return itemsOf(b.flows).filter((f) => f.cookie === c);
}

function normaliseFlow(f: Flow | FlowInput): Flow {
  return makeFlow({ ...f, match: canonicalMatch(f.match ?? '') });
}

// ------------------------------------------------------------------ services

export type DhcpServerInput = Pick<DhcpServer, 'id' | 'namespace' | 'interface'> & Partial<DhcpServer>;

/**
 * Adds a dnsmasq instance (defaults: domain `openstacklocal`, lease 86400 s, as Neutron's). A
 * complete server is kept as the object given (the DHCP agent makes one per version of its
 * network: validate and diff then pass over its thousands of hosts by identity).
 */
export function addDhcpServer(s: HostState, input: DhcpServerInput): HostState {
  if (s.dhcp[input.id]) throw new Error(`DHCP server "${input.id}" already exists`);
  if (isCompleteServer(input)) return { ...s, dhcp: { ...s.dhcp, [input.id]: input } };
  const d: DhcpServer = {
    id: input.id,
    namespace: input.namespace,
    interface: input.interface,
    domain: input.domain ?? 'openstacklocal',
    lease_time: input.lease_time ?? 86400,
    ranges: (input.ranges ?? []).map((r) => ({ ...r })),
    hosts: (input.hosts ?? []).map((h) => ({ ...h })),
    options: (input.options ?? []).map((o) => ({ ...o, values: [...o.values] })),
  };
  return { ...s, dhcp: { ...s.dhcp, [d.id]: d } };
}

const isCompleteServer = (d: DhcpServerInput): d is DhcpServer =>
  d.domain !== undefined && d.lease_time !== undefined && d.ranges !== undefined && d.hosts !== undefined && d.options !== undefined;

export function addMetadataProxy(s: HostState, proxy: MetadataProxy): HostState {
  if (s.metadata[proxy.id]) throw new Error(`Metadata proxy "${proxy.id}" already exists`);
  return { ...s, metadata: { ...s.metadata, [proxy.id]: { ...proxy } } };
}
