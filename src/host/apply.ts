// `applyOps`: what a host looks like after the operations, modelled on the state alone.
// Tests use it to prove `diff` right (apply(a, diff(a, b)) is b); drivers can use it to
// keep their record of a host current between read-backs. It models the kernel's and OVS's
// own consequences listed in ops.ts, and refuses an operation that the real tools would
// refuse at that point (creating what exists, deleting what does not, a route through a
// missing device, a rule naming a missing ipset, destroying an ipset a rule still uses,
// enslaving to a missing bridge) with an error naming the object: so a successful apply
// also proves the order of the operations.
import { itemsOf } from './chunks.js';
import { flowKey } from './flow.js';
import { neighKey, routeKey, ruleKey, sysctlDevice } from './keys.js';
import type { HostOp } from './ops.js';
import type { HostState, Link, Namespace, OvsPort } from './state.js';
import { ROOT_NS } from './state.js';

export class ApplyError extends Error {
  constructor(
    message: string,
    readonly operation: HostOp,
  ) {
    super(message);
    this.name = 'ApplyError';
  }
}

const nsLabel = (n: string) => (n === ROOT_NS ? 'the root namespace' : `namespace "${n}"`);

/** The state with its chunked collections as arrays: what structuredClone copies faithfully. */
function plain(state: HostState): HostState {
  const bridges: HostState['ovs']['bridges'] = {};
  for (const [k, b] of Object.entries(state.ovs.bridges)) bridges[k] = { ...b, flows: itemsOf(b.flows) };
  const namespaces: HostState['namespaces'] = {};
  for (const [k, n] of Object.entries(state.namespaces)) namespaces[k] = { ...n, neighbours: itemsOf(n.neighbours) };
  return { ...state, ovs: { ...state.ovs, bridges }, namespaces };
}

/** Returns a new state; `state` is not modified. */
export function applyOps(state: HostState, ops: readonly HostOp[]): HostState {
  const s = structuredClone(plain(state));
  for (const o of ops) {
    try {
      applyOne(s, o);
    } catch (e) {
      if (e instanceof ApplyError) throw e;
      throw new ApplyError((e as Error).message, o);
    }
  }
  return s;
}

function fail(msg: string): never {
  throw new Error(msg);
}

function getNs(s: HostState, name: string): Namespace {
  return s.namespaces[name] ?? fail(`No ${nsLabel(name)}`);
}

function getLink(s: HostState, ns: string, name: string): Link {
  return getNs(s, ns).links[name] ?? fail(`No link "${name}" in ${nsLabel(ns)}`);
}

/** Removes a link and what the kernel removes with it; a veth takes its peer along. */
function removeLink(s: HostState, nsName: string, name: string): void {
  const ns = s.namespaces[nsName];
  const link = ns?.links[name];
  if (!ns || !link) return;
  delete ns.links[name];
  ns.routes = ns.routes.filter((r) => r.dev !== name);
  ns.neighbours = itemsOf(ns.neighbours).filter((n) => n.dev !== name);
  for (const key of Object.keys(ns.sysctls)) if (sysctlDevice(key) === name) delete ns.sysctls[key];
  for (const other of Object.values(ns.links)) if (other.master === name) delete other.master;
  if (link.kind === 'veth') removeLink(s, link.peer_namespace, link.peer);
}

/** The device of an OVS internal port or bridge, wherever it was moved. */
function removeOvsDevice(s: HostState, name: string): void {
  for (const [nsName, ns] of Object.entries(s.namespaces)) {
    if (ns.links[name]?.kind === 'ovs-internal') removeLink(s, nsName, name);
  }
}

function checkMaster(s: HostState, ns: string, master: string | undefined): void {
  if (master === undefined) return;
  const m = s.namespaces[ns]?.links[master];
  if (!m || m.kind !== 'bridge') fail(`Master "${master}" is not a Linux bridge in ${nsLabel(ns)}`);
}

function usedIpsets(text: string): Set<string> {
  return new Set([...text.matchAll(/--match-set\s+(\S+)/g)].map((m) => m[1]));
}

function findPort(s: HostState, name: string): { bridge: string; port: OvsPort } | undefined {
  for (const b of Object.values(s.ovs.bridges)) if (b.ports[name]) return { bridge: b.name, port: b.ports[name] };
  return undefined;
}

function applyOne(s: HostState, o: HostOp): void {
  switch (o.op) {
    case 'netns.create':
      if (s.namespaces[o.namespace]) fail(`Namespace "${o.namespace}" already exists`);
      s.namespaces[o.namespace] = {
        name: o.namespace,
        links: {},
        routes: [],
        rules: [],
        neighbours: [],
        sysctls: {},
        iptables: {},
        ipsets: {},
      };
      return;
    case 'netns.delete': {
      if (o.namespace === ROOT_NS) fail('The root namespace cannot be deleted');
      const ns = getNs(s, o.namespace);
      for (const d of Object.values(s.dhcp)) if (d.namespace === o.namespace) fail(`DHCP server "${d.id}" still runs in namespace "${o.namespace}"`);
      for (const m of Object.values(s.metadata)) if (m.namespace === o.namespace) fail(`Metadata proxy "${m.id}" still runs in namespace "${o.namespace}"`);
      for (const name of Object.keys(ns.links)) removeLink(s, o.namespace, name);
      delete s.namespaces[o.namespace];
      return;
    }
    case 'link.create': {
      const ns = getNs(s, o.namespace);
      if (ns.links[o.link.name]) fail(`Link "${o.link.name}" already exists in ${nsLabel(o.namespace)}`);
      if (o.link.kind === 'veth') {
        if (!o.peer) fail(`veth "${o.link.name}" created without its peer`);
        const peerNs = getNs(s, o.link.peer_namespace);
        if (peerNs.links[o.peer.name]) fail(`Link "${o.peer.name}" already exists in ${nsLabel(o.link.peer_namespace)}`);
        checkMaster(s, o.link.peer_namespace, o.peer.master);
        peerNs.links[o.peer.name] = { ...o.peer, addresses: [] } as Link;
      }
      checkMaster(s, o.namespace, o.link.master);
      ns.links[o.link.name] = { ...o.link, addresses: [] } as Link;
      return;
    }
    case 'link.delete':
      getLink(s, o.namespace, o.name);
      removeLink(s, o.namespace, o.name);
      return;
    case 'link.set': {
      const link = getLink(s, o.namespace, o.name);
      if (o.up !== undefined) link.up = o.up;
      if (o.mtu !== undefined) link.mtu = o.mtu;
      if (o.mac !== undefined) link.mac = o.mac;
      if (o.master === null) delete link.master;
      else if (o.master !== undefined) {
        checkMaster(s, o.namespace, o.master);
        link.master = o.master;
      }
      return;
    }
    case 'address.add': {
      const link = getLink(s, o.namespace, o.dev);
      if (link.addresses.includes(o.cidr)) fail(`Address ${o.cidr} already on "${o.dev}" in ${nsLabel(o.namespace)}`);
      link.addresses.push(o.cidr);
      return;
    }
    case 'address.del': {
      const link = getLink(s, o.namespace, o.dev);
      const i = link.addresses.indexOf(o.cidr);
      if (i < 0) fail(`Address ${o.cidr} is not on "${o.dev}" in ${nsLabel(o.namespace)}`);
      link.addresses.splice(i, 1);
      return;
    }
    case 'route.replace': {
      const ns = getNs(s, o.namespace);
      if (o.route.dev !== undefined) getLink(s, o.namespace, o.route.dev);
      const key = routeKey(o.route);
      ns.routes = ns.routes.filter((r) => routeKey(r) !== key);
      ns.routes.push({ ...o.route });
      return;
    }
    case 'route.del': {
      const ns = getNs(s, o.namespace);
      const key = routeKey(o.route);
      const before = ns.routes.length;
      ns.routes = ns.routes.filter((r) => routeKey(r) !== key);
      if (ns.routes.length === before) fail(`No route ${o.route.dst} table ${o.route.table} in ${nsLabel(o.namespace)}`);
      return;
    }
    case 'rule.add': {
      const ns = getNs(s, o.namespace);
      if (ns.rules.some((r) => ruleKey(r) === ruleKey(o.rule))) fail(`Rule ${ruleKey(o.rule)} already in ${nsLabel(o.namespace)}`);
      ns.rules.push({ ...o.rule });
      return;
    }
    case 'rule.del': {
      const ns = getNs(s, o.namespace);
      const i = ns.rules.findIndex((r) => ruleKey(r) === ruleKey(o.rule));
      if (i < 0) fail(`No rule ${ruleKey(o.rule)} in ${nsLabel(o.namespace)}`);
      ns.rules.splice(i, 1);
      return;
    }
    case 'neigh.replace': {
      const ns = getNs(s, o.namespace);
      getLink(s, o.namespace, o.neighbour.dev);
      const key = neighKey(o.neighbour);
      ns.neighbours = [...itemsOf(ns.neighbours).filter((n) => neighKey(n) !== key), { ...o.neighbour }];
      return;
    }
    case 'neigh.del': {
      const ns = getNs(s, o.namespace);
      const key = neighKey(o.neighbour);
      const list = itemsOf(ns.neighbours);
      const i = list.findIndex((n) => neighKey(n) === key);
      if (i < 0) fail(`No neighbour ${o.neighbour.ip} dev ${o.neighbour.dev} in ${nsLabel(o.namespace)}`);
      ns.neighbours = list.filter((_, k) => k !== i);
      return;
    }
    case 'sysctl.set':
      getNs(s, o.namespace).sysctls[o.key] = o.value;
      return;
    case 'sysctl.unset': {
      const ns = getNs(s, o.namespace);
      if (!(o.key in ns.sysctls)) fail(`Sysctl ${o.key} is not set in ${nsLabel(o.namespace)}`);
      delete ns.sysctls[o.key];
      return;
    }
    case 'iptables.restore': {
      const ns = getNs(s, o.namespace);
      if (o.text === null) delete ns.iptables[o.table];
      else {
        for (const set of usedIpsets(o.text)) if (!ns.ipsets[set]) fail(`iptables ${o.table} uses ipset "${set}" that does not exist in ${nsLabel(o.namespace)}`);
        ns.iptables[o.table] = o.text;
      }
      return;
    }
    case 'ipset.create': {
      const ns = getNs(s, o.namespace);
      if (ns.ipsets[o.set.name]) fail(`ipset "${o.set.name}" already exists in ${nsLabel(o.namespace)}`);
      ns.ipsets[o.set.name] = structuredClone(o.set);
      return;
    }
    case 'ipset.replace': {
      const ns = getNs(s, o.namespace);
      if (!ns.ipsets[o.set.name]) fail(`No ipset "${o.set.name}" in ${nsLabel(o.namespace)}`);
      ns.ipsets[o.set.name] = structuredClone(o.set);
      return;
    }
    case 'ipset.update': {
      const set = getNs(s, o.namespace).ipsets[o.name] ?? fail(`No ipset "${o.name}" in ${nsLabel(o.namespace)}`);
      const have = new Set(set.members);
      for (const m of o.add) if (have.has(m)) fail(`ipset "${o.name}" already has ${m}`);
      for (const m of o.del) if (!have.has(m)) fail(`ipset "${o.name}" has no ${m}`);
      set.members = [...o.members];
      return;
    }
    case 'ipset.destroy': {
      const ns = getNs(s, o.namespace);
      if (!ns.ipsets[o.name]) fail(`No ipset "${o.name}" in ${nsLabel(o.namespace)}`);
      for (const [table, text] of Object.entries(ns.iptables)) {
        if (text && usedIpsets(text).has(o.name)) fail(`ipset "${o.name}" is still used by iptables ${table} in ${nsLabel(o.namespace)}`);
      }
      delete ns.ipsets[o.name];
      return;
    }
    case 'bridge.create':
      if (s.ovs.bridges[o.bridge.name]) fail(`Bridge "${o.bridge.name}" already exists`);
      s.ovs.bridges[o.bridge.name] = { ...structuredClone(o.bridge), ports: {}, flows: [] };
      return;
    case 'bridge.set': {
      const b = s.ovs.bridges[o.bridge.name] ?? fail(`No bridge "${o.bridge.name}"`);
      s.ovs.bridges[o.bridge.name] = { ...structuredClone(o.bridge), ports: b.ports, flows: b.flows };
      return;
    }
    case 'bridge.delete': {
      const b = s.ovs.bridges[o.name] ?? fail(`No bridge "${o.name}"`);
      for (const p of Object.values(b.ports)) if (p.type === 'internal') removeOvsDevice(s, p.name);
      removeOvsDevice(s, o.name);
      delete s.ovs.bridges[o.name];
      return;
    }
    case 'port.add': {
      const b = s.ovs.bridges[o.bridge] ?? fail(`No bridge "${o.bridge}" for port "${o.port.name}"`);
      const other = findPort(s, o.port.name);
      if (other) fail(`Port "${o.port.name}" already exists on bridge "${other.bridge}"`);
      if (o.port.type === 'system') {
        const dev = s.namespaces[ROOT_NS]?.links[o.port.name];
        if (!dev) fail(`No device "${o.port.name}" in the root namespace for system port`);
        if (dev.master !== undefined) fail(`Device "${o.port.name}" is a member of Linux bridge "${dev.master}"`);
      }
      b.ports[o.port.name] = structuredClone(o.port);
      return;
    }
    case 'port.set': {
      const b = s.ovs.bridges[o.bridge] ?? fail(`No bridge "${o.bridge}"`);
      const p = b.ports[o.port.name] ?? fail(`No port "${o.port.name}" on bridge "${o.bridge}"`);
      if (p.type !== o.port.type) fail(`Port "${p.name}" is ${p.type}, not ${o.port.type}`);
      b.ports[o.port.name] = structuredClone(o.port);
      return;
    }
    case 'port.del': {
      const b = s.ovs.bridges[o.bridge] ?? fail(`No bridge "${o.bridge}"`);
      const p = b.ports[o.name] ?? fail(`No port "${o.name}" on bridge "${o.bridge}"`);
      delete b.ports[o.name];
      if (p.type === 'internal') removeOvsDevice(s, o.name);
      return;
    }
    case 'flows.update': {
      const b = s.ovs.bridges[o.bridge] ?? fail(`No bridge "${o.bridge}"`);
      const byKey = new Map(itemsOf(b.flows).map((f) => [flowKey(f), f]));
      for (const k of o.delete) {
        if (!byKey.delete(flowKey(k))) fail(`No flow table=${k.table},priority=${k.priority},${k.match} on "${o.bridge}"`);
      }
      for (const f of o.modify) {
        const key = flowKey(f);
        if (!byKey.has(key)) fail(`No flow table=${f.table},priority=${f.priority},${f.match} to modify on "${o.bridge}"`);
        byKey.set(key, { ...f });
      }
      for (const f of o.add) {
        const key = flowKey(f);
        if (byKey.has(key)) fail(`Flow table=${f.table},priority=${f.priority},${f.match} already on "${o.bridge}"`);
        byKey.set(key, { ...f });
      }
      b.flows = [...byKey.values()];
      return;
    }
    case 'dhcp.start':
      if (s.dhcp[o.server.id]) fail(`DHCP server "${o.server.id}" already runs`);
      getLink(s, o.server.namespace, o.server.interface);
      s.dhcp[o.server.id] = structuredClone(o.server);
      return;
    case 'dhcp.reload':
    case 'dhcp.restart':
      if (!s.dhcp[o.server.id]) fail(`No DHCP server "${o.server.id}"`);
      getLink(s, o.server.namespace, o.server.interface);
      s.dhcp[o.server.id] = structuredClone(o.server);
      return;
    case 'dhcp.stop':
      if (!s.dhcp[o.id]) fail(`No DHCP server "${o.id}"`);
      delete s.dhcp[o.id];
      return;
    case 'metadata.start':
      if (s.metadata[o.proxy.id]) fail(`Metadata proxy "${o.proxy.id}" already runs`);
      getNs(s, o.proxy.namespace);
      s.metadata[o.proxy.id] = structuredClone(o.proxy);
      return;
    case 'metadata.stop':
      if (!s.metadata[o.id]) fail(`No metadata proxy "${o.id}"`);
      delete s.metadata[o.id];
      return;
  }
}
