// `diff(current, desired)`: the operations that turn one host state into another.
//
// Order. Deletions come first, in reverse dependency order (services, neighbours, rules,
// routes, addresses, OVS ports, bridges, links, namespaces); then creations and changes in
// dependency order (namespaces, Linux bridges, other links, link attributes, OVS bridges,
// their local devices, ports, internal-port devices, addresses, routes, rules, neighbours,
// sysctls, flows, ipsets, iptables, then the ipsets no rule uses any more, then DHCP and
// metadata). Within a kind, names sort so the same change always gives the same list.
//
// Consequences. What the kernel or OVS removes by itself (see ops.ts) gets no operation of
// its own, and what it removed but the desired state keeps is put back: a link that must be
// re-created (its kind or veth peer changed, its OVS port was re-created) gets its
// addresses, routes, neighbours, device sysctls and bridge members again.
//
// Cost. Work is proportional to the size of the states, with constant-time lookups (flows
// are indexed by table+priority+match), and sub-values that are the same object in both
// states (structural sharing from the pure builders) are skipped without looking inside;
// flows and neighbours joined from chunks (chunks.ts) are compared chunk by chunk the same way.
// Both states are expected to pass `validate`.
import { changedParts, itemsOf, type Items } from './chunks.js';
import { flowKey } from './flow.js';
import { neighKey, routeKey, routeSatisfies, ruleKey, sameDevices, sameMap, sameValue, sysctlDevice } from './keys.js';
import type { BridgeColumn, HostOp, PortColumn } from './ops.js';
import { bridgeSpec, interfaceOptions, linkSpec, portAt, portKinds } from './ovs.js';
import type { DhcpHost, DhcpServer, Flow, FlowKey, HostState, Link, MetadataProxy, Namespace, OvsBridge, OvsPort } from './state.js';
import { IPTABLES_TABLES, ROOT_NS } from './state.js';

type Op<K extends HostOp['op']> = Extract<HostOp, { op: K }>;

const sortedKeys = (o: object) => Object.keys(o).sort();

const NONE: readonly string[] = [];
/**
 * The keys `keep` says yes to, sorted: a pass that changed one namespace of thirty sorts one
 * name, not thirty, three times over (a sort costs V8 a work array and its state each time,
 * and a thousand hosts make a pass each per port).
 */
function sortedWhere(o: object, keep: (key: string) => boolean): readonly string[] {
  let out: string[] | undefined;
  for (const k in o) if (keep(k)) (out ??= []).push(k);
  return out ? out.sort() : NONE;
}

/** Where each OVS internal device (port or bridge-local) lives. */
function ovsDeviceNamespaces(s: HostState): Map<string, string> {
  const m = new Map<string, string>();
  for (const ns of Object.values(s.namespaces)) for (const l of Object.values(ns.links)) if (l.kind === 'ovs-internal') m.set(l.name, ns.name);
  return m;
}

/** A link whose identity changed cannot be changed in place: it is deleted and created again. */
function identityChanged(c: Link, d: Link): boolean {
  if (c.kind !== d.kind) return true;
  return c.kind === 'veth' && d.kind === 'veth' && (c.peer !== d.peer || c.peer_namespace !== d.peer_namespace);
}

function pairKey(ns: string, name: string, peerNs: string, peer: string): string {
  const a = `${ns}\u0000${name}`;
  const b = `${peerNs}\u0000${peer}`;
  return a < b ? `${a}\u0001${b}` : `${b}\u0001${a}`;
}

/** Links that go away, by namespace. */
type Gone = Map<string, Set<string>>;
const isGone = (gone: Gone, ns: string, name: string) => gone.get(ns)?.has(name) ?? false;

/** The operations of one diff, by kind; `diff` returns them in the order the header gives. */
class Ops {
  readonly metadataStop: Op<'metadata.stop'>[] = [];
  readonly dhcpStop: Op<'dhcp.stop'>[] = [];
  readonly neighDel: Op<'neigh.del'>[] = [];
  readonly ruleDel: Op<'rule.del'>[] = [];
  readonly routeDel: Op<'route.del'>[] = [];
  readonly addrDel: Op<'address.del'>[] = [];
  readonly portDel: Op<'port.del'>[] = [];
  readonly bridgeDel: Op<'bridge.delete'>[] = [];
  readonly linkDel: Op<'link.delete'>[] = [];
  readonly sysctlUnset: Op<'sysctl.unset'>[] = [];
  readonly netnsDel: Op<'netns.delete'>[] = [];
  readonly netnsCreate: Op<'netns.create'>[] = [];
  readonly linkCreateFirst: Op<'link.create'>[] = []; // Linux bridges, lo, NICs: what others point at
  readonly linkCreate: Op<'link.create'>[] = [];
  readonly linkSet: Op<'link.set'>[] = [];
  readonly bridgeOps: (Op<'bridge.create'> | Op<'bridge.set'>)[] = [];
  readonly linkCreateBridgeLocal: Op<'link.create'>[] = [];
  readonly portOps: (Op<'port.add'> | Op<'port.set'>)[] = [];
  readonly linkCreateInternal: Op<'link.create'>[] = [];
  readonly addrAdd: Op<'address.add'>[] = [];
  readonly routeReplace: Op<'route.replace'>[] = [];
  readonly ruleAdd: Op<'rule.add'>[] = [];
  readonly neighReplace: Op<'neigh.replace'>[] = [];
  readonly sysctlSet: Op<'sysctl.set'>[] = [];
  readonly flowOps: Op<'flows.update'>[] = [];
  readonly ipsetOps: (Op<'ipset.create'> | Op<'ipset.replace'> | Op<'ipset.update'>)[] = [];
  readonly iptablesOps: Op<'iptables.restore'>[] = [];
  readonly ipsetDestroy: Op<'ipset.destroy'>[] = [];
  readonly dhcpOps: (Op<'dhcp.start'> | Op<'dhcp.reload'> | Op<'dhcp.restart'>)[] = [];
  readonly metadataStart: Op<'metadata.start'>[] = [];
}

export function diff(current: HostState, desired: HostState): HostOp[] {
  if (current === desired) return [];
  const o = new Ops();

  const curNs = current.namespaces;
  const desNs = desired.namespaces;

  // --- Which current links go away (deleted, re-created, or taken along by something else),
  // and which OVS ports are re-created. No device came, went or changed (a pass for FDB
  // entries, neighbours, ipset members): nothing.
  const { gone, recreatedPorts } = sameDevices(current, desired) ? { gone: new Map<string, Set<string>>(), recreatedPorts: new Set<string>() } : whatGoes(current, desired);

  // --- Namespaces.
  for (const name of sortedWhere(curNs, (n) => !desNs[n] && n !== ROOT_NS)) o.netnsDel.push({ op: 'netns.delete', namespace: name });
  for (const name of sortedWhere(desNs, (n) => !curNs[n] && n !== ROOT_NS)) o.netnsCreate.push({ op: 'netns.create', namespace: name });

  // --- Link deletions (only what nothing else takes along).
  const deletedPairs = new Set<string>();
  for (const nsName of [...gone.keys()].sort()) {
    for (const name of [...gone.get(nsName)!].sort()) {
      const c = curNs[nsName].links[name];
      if (c.kind === 'ovs-internal') continue; // goes with its port or bridge
      const nsSurvives = !!desNs[nsName];
      if (c.kind === 'veth') {
        const key = pairKey(nsName, name, c.peer_namespace, c.peer);
        if (deletedPairs.has(key)) continue;
        if (!nsSurvives) continue; // deleted from the other end, or with both namespaces
        deletedPairs.add(key);
      } else if (!nsSurvives) continue;
      o.linkDel.push({ op: 'link.delete', namespace: nsName, name });
    }
  }

  // --- Per namespace: links, addresses, routes, rules, neighbours, sysctls, netfilter.
  const createdPairs = new Set<string>();
  for (const nsName of sortedWhere(desNs, (n) => desNs[n] !== curNs[n] || gone.has(n))) diffNamespace(o, nsName, curNs[nsName], desNs[nsName], gone.get(nsName), desired, createdPairs);

  // --- Open vSwitch: bridges, ports, flows.
  const { flowDelFirst, flowUpdates } = diffBridges(o, current, desired, recreatedPorts);

  // --- DHCP servers and metadata proxies.
  diffServices(o, current, desired, gone);

  return [
    ...o.metadataStop,
    ...o.dhcpStop,
    ...o.neighDel,
    ...o.ruleDel,
    ...o.routeDel,
    ...o.addrDel,
    ...flowDelFirst,
    ...o.portDel,
    ...o.bridgeDel,
    ...o.linkDel,
    ...o.sysctlUnset,
    ...o.netnsDel,
    ...o.netnsCreate,
    ...o.linkCreateFirst,
    ...o.linkCreate,
    ...o.linkSet,
    ...o.bridgeOps,
    ...o.linkCreateBridgeLocal,
    ...o.portOps,
    ...o.linkCreateInternal,
    ...o.addrAdd,
    ...o.routeReplace,
    ...o.ruleAdd,
    ...o.neighReplace,
    ...o.sysctlSet,
    ...flowUpdates,
    ...o.ipsetOps,
    ...o.iptablesOps,
    ...o.ipsetDestroy,
    ...o.dhcpOps,
    ...o.metadataStart,
  ];
}

/** The links that go away (by namespace) and the OVS ports deleted and added again. */
function whatGoes(current: HostState, desired: HostState): { gone: Gone; recreatedPorts: Set<string> } {
  const curNs = current.namespaces;
  const desNs = desired.namespaces;
  const curBridges = current.ovs.bridges;
  const desBridges = desired.ovs.bridges;
  const gone = new Map<string, Set<string>>();
  const markGone = (ns: string, name: string) => {
    let set = gone.get(ns);
    if (!set) gone.set(ns, (set = new Set()));
    set.add(name);
  };
  const recreatedPorts = new Set<string>();
  const curDevNs = ovsDeviceNamespaces(current);
  const desDevNs = ovsDeviceNamespaces(desired);
  for (const nsName of Object.keys(curNs)) {
    const cn = curNs[nsName];
    const dn = desNs[nsName];
    if (cn === dn || cn.links === dn?.links) continue;
    for (const [name, c] of Object.entries(cn.links)) {
      const d = dn?.links[name];
      if (!d || identityChanged(c, d)) markGone(nsName, name);
    }
  }
  // Deleting one end of a veth deletes the other.
  for (const [nsName, names] of [...gone]) {
    for (const name of names) {
      const c = curNs[nsName].links[name];
      if (c.kind === 'veth' && curNs[c.peer_namespace]?.links[c.peer]) markGone(c.peer_namespace, c.peer);
    }
  }

  // --- OVS ports that must be deleted and added again: only a bridge whose ports record
  // changed can hold one moved or retyped; internal ports can change namespace, system ports
  // lose their device, whatever their bridge.
  const candidates = new Set<string>();
  for (const name in curBridges) {
    const ports = curBridges[name].ports;
    if (desBridges[name]?.ports !== ports) for (const p in ports) candidates.add(p);
    for (const p of portKinds(ports).internal) candidates.add(p);
  }
  for (const name of gone.get(ROOT_NS) ?? []) candidates.add(name);
  for (const name of candidates) {
    const cp = portAt(current, name);
    const dp = portAt(desired, name);
    if (!cp || !dp) continue;
    if (
      cp.bridge !== dp.bridge ||
      cp.port.type !== dp.port.type ||
      (cp.port.type === 'internal' && curDevNs.get(name) !== desDevNs.get(name)) ||
      (cp.port.type === 'system' && isGone(gone, ROOT_NS, name))
    ) {
      recreatedPorts.add(name);
    }
  }
  // Deleting an internal port or a bridge deletes its Linux device.
  for (const bname in curBridges) {
    for (const name of portKinds(curBridges[bname].ports).internal) {
      if (!portAt(desired, name) || recreatedPorts.has(name) || !desBridges[bname]) {
        const ns = curDevNs.get(name);
        if (ns !== undefined) markGone(ns, name);
      }
    }
  }
  for (const name of Object.keys(curBridges)) {
    if (!desBridges[name] && curDevNs.has(name)) markGone(curDevNs.get(name)!, name);
  }

  return { gone, recreatedPorts };
}

/** Bridges, their ports and flows; the flow updates that must go before the ports they name, and the rest. */
function diffBridges(o: Ops, current: HostState, desired: HostState, recreatedPorts: Set<string>): { flowDelFirst: Op<'flows.update'>[]; flowUpdates: Op<'flows.update'>[] } {
  const curBridges = current.ovs.bridges;
  const desBridges = desired.ovs.bridges;
  for (const name of sortedWhere(curBridges, (n) => !desBridges[n])) o.bridgeDel.push({ op: 'bridge.delete', name });
  for (const name of sortedWhere(desBridges, (n) => desBridges[n] !== curBridges[n])) {
    const d = desBridges[name];
    const c = curBridges[name];
    if (!c) o.bridgeOps.push({ op: 'bridge.create', bridge: bridgeSpec(d) });
    else if (c !== d) {
      const changed = bridgeChanges(c, d);
      if (changed.length) o.bridgeOps.push({ op: 'bridge.set', bridge: bridgeSpec(d), changed });
    }
  }
  // Bridges holding a re-created port are looked at even when their value is shared.
  const touched = new Set<string>();
  for (const p of recreatedPorts) touched.add(portAt(current, p)!.bridge).add(portAt(desired, p)!.bridge);
  // A bridge that went took its ports with it.
  for (const name of sortedWhere(curBridges, (n) => !!desBridges[n] && (curBridges[n].ports !== desBridges[n].ports || touched.has(n)))) {
    const cb = curBridges[name];
    for (const pname of sortedKeys(cb.ports)) {
      const dp = portAt(desired, pname);
      if (!dp || dp.bridge !== name || recreatedPorts.has(pname)) o.portDel.push({ op: 'port.del', bridge: name, name: pname });
    }
  }
  for (const name of sortedWhere(desBridges, (n) => desBridges[n] !== curBridges[n] || touched.has(n))) {
    const db = desBridges[name];
    const cb = curBridges[name];
    if (cb?.ports !== db.ports || touched.has(name)) {
      for (const pname of sortedKeys(db.ports)) {
        const d = db.ports[pname];
        const cp = portAt(current, pname);
        if (!cp || cp.bridge !== name || recreatedPorts.has(pname)) o.portOps.push({ op: 'port.add', bridge: name, port: d });
        else if (cp.port !== d) {
          const changed = portChanges(cp.port, d);
          if (changed.length) o.portOps.push({ op: 'port.set', bridge: name, port: d, changed });
        }
      }
    }
    // A re-created port may get another OpenFlow port number; flows that name it are re-sent.
    const renumbered = cb ? [...recreatedPorts].filter((p) => db.ports[p] && cb.ports[p]) : [];
    const update = diffFlows(name, cb?.flows ?? [], db.flows, renumbered);
    if (update) o.flowOps.push(update);
  }

  // Flows whose match names a port that goes away are deleted while the port still exists:
  // afterwards `ovs-ofctl del-flows in_port=<name>` can no longer resolve the name.
  const flowDelFirst: Op<'flows.update'>[] = [];
  if (o.portDel.length) {
    for (const op of o.flowOps) {
      const names = o.portDel.filter((d) => d.bridge === op.bridge).map((d) => d.name);
      if (!names.length || !op.delete.length) continue;
      const re = portNamePattern(names);
      const early = op.delete.filter((k) => re.test(k.match));
      if (!early.length) continue;
      op.delete = op.delete.filter((k) => !re.test(k.match));
      flowDelFirst.push({ op: 'flows.update', bridge: op.bridge, add: [], modify: [], delete: early });
    }
  }
  const flowUpdates = o.flowOps.filter((op) => op.add.length || op.modify.length || op.delete.length);
  return { flowDelFirst, flowUpdates };
}

/** DHCP servers and metadata proxies (`gone`: the links that go away, by namespace). */
function diffServices(o: Ops, current: HostState, desired: HostState, gone: Gone): void {
  const curNs = current.namespaces;
  for (const id of sortedWhere(current.dhcp, (i) => current.dhcp[i] !== desired.dhcp[i])) {
    const c = current.dhcp[id];
    const d = desired.dhcp[id];
    if (!d || c.namespace !== d.namespace || c.interface !== d.interface) o.dhcpStop.push({ op: 'dhcp.stop', id });
  }
  for (const id of sortedWhere(desired.dhcp, (i) => desired.dhcp[i] !== current.dhcp[i] || gone.size > 0)) {
    const d = desired.dhcp[id];
    const c = current.dhcp[id];
    if (!c || c.namespace !== d.namespace || c.interface !== d.interface) o.dhcpOps.push({ op: 'dhcp.start', server: d });
    else if (c === d && !isGone(gone, d.namespace, d.interface)) continue;
    else if (isGone(gone, d.namespace, d.interface) || needsRestart(c, d)) o.dhcpOps.push({ op: 'dhcp.restart', server: d });
    else if (!sameHosts(c.hosts, d.hosts) || !sameValue(c.options, d.options)) o.dhcpOps.push({ op: 'dhcp.reload', server: d });
  }
  const listenGone = (p: MetadataProxy) => {
    const names = gone.get(p.namespace);
    if (!names) return false;
    for (const n of names) if (curNs[p.namespace]?.links[n]?.addresses.some((a) => a.split('/')[0] === p.listen_ip)) return true;
    return false;
  };
  // The same proxy (object) stays unless its listening address goes with a device.
  for (const id of sortedWhere(current.metadata, (i) => current.metadata[i] !== desired.metadata[i] || gone.size > 0)) {
    const c = current.metadata[id];
    const d = desired.metadata[id];
    if (!d || !sameValue(c, d) || listenGone(c)) o.metadataStop.push({ op: 'metadata.stop', id });
  }
  for (const id of sortedWhere(desired.metadata, (i) => desired.metadata[i] !== current.metadata[i] || gone.size > 0)) {
    const d = desired.metadata[id];
    const c = current.metadata[id];
    if (!c || !sameValue(c, d) || listenGone(c)) o.metadataStart.push({ op: 'metadata.start', proxy: d });
  }
}

/**
 * One namespace's links, addresses, routes, rules, neighbours, sysctls and netfilter. (Its own
 * function, as are the other parts of a diff: V8 gave up optimizing one function of them all.)
 */
function diffNamespace(o: Ops, nsName: string, cn: Namespace | undefined, dn: Namespace, goneHere: Set<string> | undefined, desired: HostState, createdPairs: Set<string>): void {
  const desNs = desired.namespaces;
  const alive = (dev: string | undefined) => dev === undefined || !goneHere?.has(dev);

  // The same links record and nothing taken away: every link is as it was.
  for (const name of cn?.links === dn.links && !goneHere ? [] : sortedKeys(dn.links)) {
    const d = dn.links[name];
    const c = cn?.links[name];
    if (!c || !alive(name)) {
      const op: Op<'link.create'> = { op: 'link.create', namespace: nsName, link: linkSpec(d) };
      let first = true; // a veth pair is created once, from whichever end comes first
      if (d.kind === 'veth') {
        const key = pairKey(nsName, name, d.peer_namespace, d.peer);
        first = !createdPairs.has(key);
        createdPairs.add(key);
        const peer = desNs[d.peer_namespace]?.links[d.peer];
        if (peer) op.peer = linkSpec(peer);
      }
      if (!first) {
        // created with its peer
      } else if (d.kind === 'ovs-internal') (portAt(desired, name) ? o.linkCreateInternal : o.linkCreateBridgeLocal).push(op);
      else if (d.kind === 'bridge' || d.kind === 'loopback' || d.kind === 'physical') o.linkCreateFirst.push(op);
      else o.linkCreate.push(op);
      for (const cidr of d.addresses) o.addrAdd.push({ op: 'address.add', namespace: nsName, dev: name, cidr });
      continue;
    }
    if (c === d) continue;
    const set: Op<'link.set'> = { op: 'link.set', namespace: nsName, name };
    let changed = false;
    if (c.up !== d.up) (set.up = d.up), (changed = true);
    if (d.mtu !== undefined && c.mtu !== d.mtu) (set.mtu = d.mtu), (changed = true);
    if (d.mac !== undefined && c.mac !== d.mac) (set.mac = d.mac), (changed = true);
    const curMaster = c.master !== undefined && alive(c.master) ? c.master : undefined;
    if (curMaster !== d.master) (set.master = d.master ?? null), (changed = true);
    if (changed) o.linkSet.push(set);
    if (c.addresses !== d.addresses) {
      const have = new Set(c.addresses);
      const want = new Set(d.addresses);
      for (const cidr of c.addresses) if (!want.has(cidr)) o.addrDel.push({ op: 'address.del', namespace: nsName, dev: name, cidr });
      for (const cidr of d.addresses) if (!have.has(cidr)) o.addrAdd.push({ op: 'address.add', namespace: nsName, dev: name, cidr });
    }
  }

  // Routes: keyed like `ip route replace`; those through a link that goes away went with it.
  if (!cn || cn.routes !== dn.routes || goneHere) {
    const have = new Map((cn?.routes ?? []).filter((r) => alive(r.dev)).map((r) => [routeKey(r), r]));
    const want = new Set<string>();
    for (const r of dn.routes) {
      const key = routeKey(r);
      want.add(key);
      const c = have.get(key);
      if (!c || !routeSatisfies(c, r)) o.routeReplace.push({ op: 'route.replace', namespace: nsName, route: r });
    }
    for (const [key, r] of have) if (!want.has(key)) o.routeDel.push({ op: 'route.del', namespace: nsName, route: r });
  }

  if (!cn || cn.rules !== dn.rules) {
    const have = new Set((cn?.rules ?? []).map(ruleKey));
    const want = new Set(dn.rules.map(ruleKey));
    for (const r of cn?.rules ?? []) if (!want.has(ruleKey(r))) o.ruleDel.push({ op: 'rule.del', namespace: nsName, rule: r });
    for (const r of dn.rules) if (!have.has(ruleKey(r))) o.ruleAdd.push({ op: 'rule.add', namespace: nsName, rule: r });
  }

  if (!cn || cn.neighbours !== dn.neighbours || goneHere) {
    // Unless a device went away, only the chunks the two tables do not share (chunks.ts).
    const part = cn && !goneHere ? changedParts(cn.neighbours, dn.neighbours) : { cur: itemsOf(cn?.neighbours ?? []), des: itemsOf(dn.neighbours) };
    const have = new Map(part.cur.filter((n) => alive(n.dev)).map((n) => [neighKey(n), n]));
    const want = new Set<string>();
    for (const n of part.des) {
      const key = neighKey(n);
      want.add(key);
      const c = have.get(key);
      if (!c || c.lladdr !== n.lladdr || c.nud !== n.nud) o.neighReplace.push({ op: 'neigh.replace', namespace: nsName, neighbour: n });
    }
    for (const [key, n] of have) if (!want.has(key)) o.neighDel.push({ op: 'neigh.del', namespace: nsName, neighbour: n });
  }

  if (!cn || cn.sysctls !== dn.sysctls || goneHere) {
    const have = cn?.sysctls ?? {};
    for (const key of sortedKeys(dn.sysctls)) {
      const value = dn.sysctls[key];
      if (have[key] !== value || !alive(sysctlDevice(key))) o.sysctlSet.push({ op: 'sysctl.set', namespace: nsName, key, value });
    }
    for (const key of sortedKeys(have)) {
      if (!(key in dn.sysctls) && alive(sysctlDevice(key))) o.sysctlUnset.push({ op: 'sysctl.unset', namespace: nsName, key });
    }
  }

  if (!cn || cn.ipsets !== dn.ipsets) {
    const have = cn?.ipsets ?? {};
    for (const name of sortedWhere(dn.ipsets, (n) => dn.ipsets[n] !== have[n])) {
      const d = dn.ipsets[name];
      const c = have[name];
      if (!c) o.ipsetOps.push({ op: 'ipset.create', namespace: nsName, set: d });
      else if (c.type !== d.type || c.family !== d.family) o.ipsetOps.push({ op: 'ipset.replace', namespace: nsName, set: d });
      else if (c !== d) {
        const { add, del } = memberChanges(c.members, d.members);
        if (add.length || del.length) o.ipsetOps.push({ op: 'ipset.update', namespace: nsName, name, add, del, members: d.members });
      }
    }
    for (const name of sortedWhere(have, (n) => !dn.ipsets[n])) o.ipsetDestroy.push({ op: 'ipset.destroy', namespace: nsName, name });
  }

  for (const table of IPTABLES_TABLES) {
    const c = cn?.iptables[table];
    const d = dn.iptables[table];
    if (c !== d) o.iptablesOps.push({ op: 'iptables.restore', namespace: nsName, table, text: d ?? null });
  }
}

function bridgeChanges(c: OvsBridge, d: OvsBridge): BridgeColumn[] {
  const changed: BridgeColumn[] = [];
  if (c.datapath_type !== d.datapath_type) changed.push('datapath_type');
  if (c.fail_mode !== d.fail_mode) changed.push('fail_mode');
  if (!sameValue(c.protocols ?? [], d.protocols ?? [])) changed.push('protocols');
  if (!sameMap(c.external_ids, d.external_ids)) changed.push('external_ids');
  if (!sameMap(c.other_config, d.other_config)) changed.push('other_config');
  return changed;
}

function portChanges(c: OvsPort, d: OvsPort): PortColumn[] {
  const changed: PortColumn[] = [];
  if (c.tag !== d.tag) changed.push('tag');
  if (c.ofport_request !== d.ofport_request) changed.push('ofport_request');
  if (!sameMap(c.external_ids, d.external_ids)) changed.push('external_ids');
  if (!sameMap(c.other_config, d.other_config)) changed.push('other_config');
  if (!sameMap(interfaceOptions(c), interfaceOptions(d))) changed.push('options');
  return changed;
}

/**
 * Members added and removed between two member arrays, remembered for the last pair seen
 * from each `cur` array: hosts in one process share the firewall's arrays for the same
 * member lists, so a group's change is compared once, not once per host.
 */
const memberDiffs = new WeakMap<readonly string[], { des: readonly string[]; add: string[]; del: string[] }>();
function memberChanges(cur: readonly string[], des: readonly string[]): { add: string[]; del: string[] } {
  const have = memberDiffs.get(cur);
  if (have && have.des === des) return have;
  const cm = new Set(cur);
  const dm = new Set(des);
  const out = { des, add: Object.freeze(des.filter((m) => !cm.has(m))) as string[], del: Object.freeze(cur.filter((m) => !dm.has(m))) as string[] };
  memberDiffs.set(cur, out);
  return out;
}

/** dnsmasq reads ranges, domain and lease time from its command line: those need a restart. */
function needsRestart(c: DhcpServer, d: DhcpServer): boolean {
  return c.domain !== d.domain || c.lease_time !== d.lease_time || !sameValue(c.ranges, d.ranges);
}

/** Flow changes of one bridge; `renumbered` ports force the flows that name them to be re-sent. */
function diffFlows(bridge: string, curList: Items<Flow>, desList: Items<Flow>, renumbered: string[]): Op<'flows.update'> | undefined {
  if (curList === desList && renumbered.length === 0) return undefined;
  const names = renumbered.length ? portNamePattern(renumbered) : undefined;
  // Only the chunks the two flow sets do not share (chunks.ts); all of them when ports were renumbered.
  const { cur, des } = names ? { cur: itemsOf(curList), des: itemsOf(desList) } : changedParts(curList, desList);
  // An agent recomputing its flows produces them in the same order each time: skip the
  // common head and tail by plain comparison, and index only what lies between.
  let start = 0;
  let endCur = cur.length;
  let endDes = des.length;
  if (!names) {
    const n = Math.min(endCur, endDes);
    while (start < n && sameFlow(cur[start], des[start])) start++;
    while (endCur > start && endDes > start && sameFlow(cur[endCur - 1], des[endDes - 1])) endCur--, endDes--;
  }
  const have = new Map<string, Flow>();
  for (let i = start; i < endCur; i++) have.set(flowKey(cur[i]), cur[i]);
  const add: Flow[] = [];
  const modify: Flow[] = [];
  for (let i = start; i < endDes; i++) {
    const d = des[i];
    const key = flowKey(d);
    const c = have.get(key);
    if (!c) add.push(d);
    else {
      have.delete(key);
      if (c.cookie !== d.cookie || c.actions !== d.actions || (names && (names.test(d.match) || names.test(d.actions)))) modify.push(d);
    }
  }
  const del: FlowKey[] = [];
  for (const c of have.values()) del.push({ table: c.table, priority: c.priority, match: c.match });
  if (!add.length && !modify.length && !del.length) return undefined;
  return { op: 'flows.update', bridge, add, modify, delete: del };
}

function sameFlow(a: Flow, b: Flow): boolean {
  return a === b || (a.table === b.table && a.priority === b.priority && a.match === b.match && a.cookie === b.cookie && a.actions === b.actions);
}

/** Matches a port name used as a value in flow text: `in_port=NAME`, `output:NAME`, `output(port=NAME...)`. */
function portNamePattern(names: string[]): RegExp {
  const alt = names.map((n) => n.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')).join('|');
  return new RegExp(`(?:^|[=:,(])(?:${alt})(?=$|[,)\\s])`);
}

/** A DHCP server's hosts, field by field (a network node serves thousands: no text per host). */
function sameHosts(a: readonly DhcpHost[], b: readonly DhcpHost[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x.mac === b[i].mac && x.ip === b[i].ip && x.hostname === b[i].hostname));
}
