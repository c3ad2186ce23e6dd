// Consistency checks on a host state, run before a driver acts on it (and by the linux
// driver before any name or address reaches a command line). Each problem names the object
// and quotes the offending text; all problems are reported, not just the first.
import { changedParts, isChunkList, itemsOf, type Items } from './chunks.js';
import { flowKey, isCanonicalCookie, splitTopLevel } from './flow.js';
import { HashBag, hashString } from './hashbag.js';
import { cidrIp, ipFamily, isCidr, isIp, isMac, isNetworkCidr } from './ip.js';
import { neighKey, routeKey, ruleKey, sameDevices, sysctlDevice } from './keys.js';
import { DEVICE_NAME_MAX_LEN } from './names.js';
import { portKinds } from './ovs.js';
import type { Flow, HostState, IptablesTable, Link, Namespace, Neighbour, OvsPort } from './state.js';
import { IPTABLES_TABLES, ROOT_NS } from './state.js';

export class InvalidHostStateError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid host state:\n  ${problems.join('\n  ')}`);
    this.name = 'InvalidHostStateError';
  }
}

/**
 * Throws with every problem of `s`. `prev`, a state that passed before (the one last
 * applied), lets the big unordered collections be checked for what changed only.
 */
export function assertValidHost(s: HostState, prev?: HostState): void {
  const problems = validateHost(s, prev);
  if (problems.length) throw new InvalidHostStateError(problems);
}

const DEVICE_NAME = /^[A-Za-z0-9_.-]+$/;
const NS_NAME = /^[A-Za-z0-9_.-]+$/;
const where = (ns: string) => (ns === ROOT_NS ? 'the root namespace' : `namespace "${ns}"`);

/** Problems with a Linux device (or OVS bridge/port) name, or undefined when it is fine. */
export function deviceNameProblem(name: string): string | undefined {
  if (!name) return 'is empty';
  if (name.length > DEVICE_NAME_MAX_LEN) return `is ${name.length} characters long (at most ${DEVICE_NAME_MAX_LEN}, IFNAMSIZ)`;
  if (!DEVICE_NAME.test(name) || name === '.' || name === '..') return 'has characters other than letters, digits, "_", "." and "-"';
  return undefined;
}

const isUint = (n: unknown, max: number) => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= max;

export function validateHost(s: HostState, prev?: HostState): string[] {
  const p: string[] = [];
  const bad = (msg: string) => p.push(msg);

  if (!s.namespaces[ROOT_NS]) bad('The root namespace "" is missing');

  // How devices relate to each other (veth peers, OVS devices and their links, patch peers,
  // system ports' devices) passed in `prev`, and cannot have changed while every namespace's
  // links and every bridge's ports are the same records as there (a pass for FDB entries,
  // neighbours or ipset members): then only what changed inside them is looked at.
  if (prev && sameDevices(s, prev)) {
    for (const [key, b] of Object.entries(s.ovs.bridges)) {
      const was = prev.ovs.bridges[key];
      if (was === b) continue;
      checkBridge(bad, key, b);
      checkFlows(bad, b.name, b.flows, was.flows);
    }
    for (const [key, ns] of Object.entries(s.namespaces)) {
      const was = prev.namespaces[key];
      if (was === ns) continue;
      checkNamespaceName(bad, key, ns);
      checkNamespace(bad, s, ns, undefined, was);
    }
    checkServices(bad, s, prev);
    return p;
  }

  // OVS device names: bridges and internal ports have a Linux device that must be placed.
  const ovsDevices = new Map<string, string>(); // name -> what it is
  for (const [key, b] of Object.entries(s.ovs.bridges)) {
    checkBridge(bad, key, b);
    ovsDevices.set(b.name, `bridge "${b.name}"`);
  }
  const bridgeNames = Object.keys(s.ovs.bridges);
  const prevBridges = prev?.ovs.bridges;
  // A bridge whose ports are the same record as in `prev` (agents keep them while unchanged;
  // br-tun holds a tunnel per peer host) passed as it is: only how its ports relate to the
  // rest of the host is looked at again, so a pass does not walk every tunnel.
  const unchanged = (name: string) => prevBridges?.[name]?.ports === s.ovs.bridges[name].ports;
  // Port names are unique across bridges and bridge names; a clash needs a changed bridge's
  // port (checked against every other bridge, reported once per pair) or a new bridge.
  const clash = (bi: number, port: OvsPort, what: string) => {
    for (let oi = 0; oi < bridgeNames.length; oi++) {
      const other = s.ovs.bridges[bridgeNames[oi]];
      if (oi === bi || !other.ports[port.name]) continue;
      if (oi < bi || unchanged(other.name)) bad(`${what}: a port of that name is also on bridge "${other.name}"`);
    }
    if (s.ovs.bridges[port.name]) bad(`${what}: a bridge has the same name`);
  };
  bridgeNames.forEach((bname, bi) => {
    const b = s.ovs.bridges[bname];
    if (unchanged(bname)) {
      const { internal, related } = portKinds(b.ports);
      for (const name of internal) ovsDevices.set(name, `internal port "${name}"`);
      for (const port of related) checkPortKind(bad, s, b.name, port);
      for (const other of bridgeNames) {
        if (!prevBridges![other] && b.ports[other]) bad(`Port "${other}" on bridge "${b.name}": a bridge has the same name`);
      }
    } else {
      const ofports = new Map<number, string>();
      for (const [key, port] of Object.entries(b.ports)) {
        const what = `Port "${port.name}" on bridge "${b.name}"`;
        // A tunnel port that passed before (the agent keeps them as objects) needs only the cross-checks.
        if (checkedTunnels.has(port) && port.name === key && port.ofport_request === undefined) {
          clash(bi, port, what);
          continue;
        }
        const before = problemsSeen + p.length;
        if (port.name !== key) bad(`Port recorded under "${key}" on bridge "${b.name}" is named "${port.name}"`);
        const np = deviceNameProblem(port.name);
        if (np) bad(`${what}: name ${np}`);
        if (port.tag !== undefined && !isUint(port.tag, 4095)) bad(`${what}: tag ${port.tag} is not a VLAN id 0-4095`);
        if (port.ofport_request !== undefined) {
          if (!isUint(port.ofport_request, 65279) || port.ofport_request < 1) bad(`${what}: ofport_request ${port.ofport_request} is not 1-65279`);
          const other = ofports.get(port.ofport_request);
          if (other) bad(`${what}: ofport_request ${port.ofport_request} is also requested by "${other}"`);
          ofports.set(port.ofport_request, port.name);
        }
        checkStringMap(bad, `${what} external_ids`, port.external_ids);
        checkStringMap(bad, `${what} other_config`, port.other_config);
        checkPortKind(bad, s, b.name, port);
        if (port.type === 'internal') ovsDevices.set(port.name, `internal port "${port.name}"`);
        const own = problemsSeen + p.length === before;
        clash(bi, port, what);
        if ((port.type === 'vxlan' || port.type === 'gre') && own) checkedTunnels.add(port);
      }
    }
    checkFlows(bad, b.name, b.flows, prevBridges?.[bname]?.flows);
  });

  const ovsDevicePlaced = new Map<string, string>();
  for (const [nsKey, ns] of Object.entries(s.namespaces)) {
    checkNamespaceName(bad, nsKey, ns);
    const was = prev?.namespaces[nsKey];
    // The same object passed in `prev`: what it holds is fine; only how its links relate
    // to the rest of the host (veth peers, OVS devices) can have changed.
    if (was === ns) for (const l of Object.values(ns.links)) checkLinkKind(bad, s, ns, l, ovsDevices, ovsDevicePlaced);
    else checkNamespace(bad, s, ns, { ovs: ovsDevices, placed: ovsDevicePlaced }, was);
  }
  for (const [name, what] of ovsDevices) {
    if (!ovsDevicePlaced.has(name)) bad(`OVS ${what} has no "ovs-internal" link for its device in any namespace`);
  }
  checkServices(bad, s, prev);
  return p;
}

function checkBridge(bad: (m: string) => void, key: string, b: HostState['ovs']['bridges'][string]): void {
  if (b.name !== key) bad(`Bridge recorded under "${key}" is named "${b.name}"`);
  const np = deviceNameProblem(b.name);
  if (np) bad(`Bridge name "${b.name}" ${np}`);
  if (b.datapath_type !== 'system' && b.datapath_type !== 'netdev') bad(`Bridge "${b.name}" has datapath_type "${b.datapath_type}" (system or netdev)`);
  if (b.fail_mode !== 'secure' && b.fail_mode !== 'standalone') bad(`Bridge "${b.name}" has fail_mode "${b.fail_mode}" (secure or standalone)`);
}

function checkNamespaceName(bad: (m: string) => void, key: string, ns: Namespace): void {
  if (ns.name !== key) bad(`Namespace recorded under "${key}" is named "${ns.name}"`);
  if (key !== ROOT_NS && (!NS_NAME.test(key) || key.length > 255)) bad(`Namespace name "${key}" is not letters, digits, "_", "." and "-" (at most 255)`);
}

/**
 * DHCP servers and metadata proxies: their own fields, and the namespace and interface they
 * live in. A server that is the same object as in `prev` (which passed) needs only the latter.
 */
function checkServices(bad: (m: string) => void, s: HostState, prev: HostState | undefined): void {
  for (const [id, d] of Object.entries(s.dhcp)) {
    const what = `DHCP server "${id}"`;
    if (d.id !== id) bad(`DHCP server recorded under "${id}" has id "${d.id}"`);
    const ns = s.namespaces[d.namespace];
    if (!ns) bad(`${what}: namespace "${d.namespace}" does not exist`);
    else if (!ns.links[d.interface]) bad(`${what}: interface "${d.interface}" does not exist in ${where(d.namespace)}`);
    if (prev?.dhcp[id] === d) continue;
    if (!/^[A-Za-z0-9.-]*$/.test(d.domain)) bad(`${what}: domain "${d.domain}" is not a DNS domain`);
    if (!Number.isInteger(d.lease_time) || (d.lease_time < 120 && d.lease_time !== -1)) bad(`${what}: lease_time ${d.lease_time} is not -1 or at least 120 seconds`);
    const tags = new Set<string>();
    for (const r of d.ranges) {
      if (!isNetworkCidr(r.cidr)) bad(`${what}: range "${r.cidr}" is not a subnet CIDR`);
      if (!/^[A-Za-z0-9_.-]+$/.test(r.tag)) bad(`${what}: range tag "${r.tag}" has characters dnsmasq would misread`);
      tags.add(r.tag);
    }
    const macs = new Set<string>();
    for (const h of d.hosts) {
      if (!isMac(h.mac)) bad(`${what}: host MAC "${h.mac}" is not aa:bb:cc:dd:ee:ff`);
      if (!isIp(h.ip)) bad(`${what}: host address "${h.ip}" is not an IP address`);
      if (!/^[A-Za-z0-9-]+$/.test(h.hostname)) bad(`${what}: hostname "${h.hostname}" is not a DNS label`);
      if (macs.has(h.mac)) bad(`${what}: MAC ${h.mac} listed twice`);
      macs.add(h.mac);
    }
    for (const o of d.options) {
      if (!isUint(o.option, 254) || o.option < 1) bad(`${what}: option ${o.option} is not 1-254`);
      if (o.tag !== undefined && !tags.has(o.tag)) bad(`${what}: option ${o.option} uses tag "${o.tag}" that no range sets`);
      for (const v of o.values) if (/[\s,]/.test(v) || v === '') bad(`${what}: option ${o.option} value "${v}" is empty or holds a comma or space`);
    }
  }

  for (const [id, m] of Object.entries(s.metadata)) {
    const what = `Metadata proxy "${id}"`;
    if (m.id !== id) bad(`Metadata proxy recorded under "${id}" has id "${m.id}"`);
    if (!s.namespaces[m.namespace]) bad(`${what}: namespace "${m.namespace}" does not exist`);
    if (!isIp(m.listen_ip)) bad(`${what}: listen_ip "${m.listen_ip}" is not an IP address`);
    if (!isUint(m.listen_port, 65535) || m.listen_port < 1) bad(`${what}: listen_port ${m.listen_port} is not 1-65535`);
    if (!m.upstream) bad(`${what}: upstream is empty`);
  }
}

function checkStringMap(bad: (m: string) => void, what: string, m: Record<string, string> | undefined): void {
  if (!m) return;
  for (const [k, v] of Object.entries(m)) if (typeof v !== 'string') bad(`${what}: "${k}" is not a string`);
}

function checkPortKind(bad: (m: string) => void, s: HostState, bridge: string, port: OvsPort): void {
  const what = `Port "${port.name}" on bridge "${bridge}"`;
  switch (port.type) {
    case 'internal':
      return;
    case 'system': {
      const dev = s.namespaces[ROOT_NS]?.links[port.name];
      if (!dev) bad(`${what}: system port has no device "${port.name}" in the root namespace`);
      else if (dev.kind === 'ovs-internal') bad(`${what}: system port names an OVS internal device`);
      else if (dev.master !== undefined) bad(`${what}: device "${port.name}" is also a member of Linux bridge "${dev.master}"`);
      return;
    }
    case 'patch': {
      let peer: OvsPort | undefined;
      let peerBridge = '';
      for (const b of Object.values(s.ovs.bridges)) if (b.ports[port.peer]) (peer = b.ports[port.peer]), (peerBridge = b.name);
      if (!peer) bad(`${what}: patch peer "${port.peer}" does not exist`);
      else if (peer.type !== 'patch' || peer.peer !== port.name) bad(`${what}: patch peer "${port.peer}" does not point back to it`);
      else if (peerBridge === bridge) bad(`${what}: patch peer "${port.peer}" is on the same bridge`);
      return;
    }
    case 'vxlan':
    case 'gre': {
      if (!isIp(port.remote_ip)) bad(`${what}: remote_ip "${port.remote_ip}" is not an IP address`);
      if (port.local_ip !== undefined && !isIp(port.local_ip)) bad(`${what}: local_ip "${port.local_ip}" is not an IP address`);
      const maxKey = port.type === 'vxlan' ? 0xffffff : 0xffffffff;
      if (port.key !== 'flow' && !isUint(port.key, maxKey)) bad(`${what}: key "${port.key}" is not "flow" or 0-${maxKey}`);
      if (port.dst_port !== undefined && (!isUint(port.dst_port, 65535) || port.dst_port < 1)) bad(`${what}: dst_port ${port.dst_port} is not 1-65535`);
      checkStringMap(bad, `${what} options`, port.options);
      return;
    }
    default:
      bad(`${what}: unknown type "${(port as { type: string }).type}"`);
  }
}

const FLOW_RESERVED = new Set(['table', 'priority', 'cookie', 'actions', 'idle_timeout', 'hard_timeout']);

/**
 * Flows that passed the per-flow checks, by identity: agents reuse their unchanged flow
 * objects from pass to pass (flows are immutable values), so a host of tens of thousands of
 * flows re-checks only the new ones. The duplicate-key check still covers every flow.
 */
const checkedFlows = new WeakSet<Flow>();

function checkFlows(bad: (m: string) => void, bridge: string, flows: Items<Flow>, prev: Items<Flow> | undefined): void {
  uniqueKeys(flows, prev, flowKey, (f) => {
    if (checkedFlows.has(f)) return;
    const before = problemsSeen;
    checkFlow(bad, bridge, f);
    if (problemsSeen === before) checkedFlows.add(f);
  }, (f) => bad(`${flowWhat(bridge, f)}: another flow has the same table, priority and match`));
}

/**
 * The hash of an element's key, one per element object: flows and a router's neighbours are
 * objects the agents share between hosts, so their keys are made and hashed once.
 */
const keyHashes = new WeakMap<object, number>();
function heldHash<T extends object>(x: T, keyOf: (x: T) => string): number {
  let h = keyHashes.get(x);
  if (h === undefined) keyHashes.set(x, (h = hashString(keyOf(x))));
  return h;
}

/**
 * The key hashes of an unordered collection that passed (no element twice): kept on a
 * `ChunkList` itself, by identity for a plain array. A collection validated before hands its
 * hashes on to its successor, which then costs only the chunks the two do not share
 * (chunks.ts); anything else is checked in full. An element whose hash is there already is a
 * duplicate only if its key is in the array twice.
 */
const validHashes = new WeakMap<Items<unknown>, HashBag>();
const heldBag = (arr: Items<unknown>): HashBag | undefined => (isChunkList(arr) ? (arr.validated as HashBag | undefined) : validHashes.get(arr));
function holdBag(arr: Items<unknown>, bag: HashBag | undefined): void {
  if (isChunkList(arr)) arr.validated = bag;
  else if (bag) validHashes.set(arr, bag);
  else validHashes.delete(arr);
}

function uniqueKeys<T extends object>(arr: Items<T>, prev: Items<T> | undefined, keyOf: (x: T) => string, check: (x: T) => void, twice: (x: T) => void): void {
  const before = problemsSeen;
  const prevHashes = prev && heldBag(prev);
  if (prev === arr && prevHashes) return;
  let hashes: HashBag;
  let items: readonly T[] | undefined;
  if (prevHashes) {
    // Taken over, not copied: the previous array's hashes are dropped (a failed pass starts afresh).
    holdBag(prev!, undefined);
    const part = changedParts(prev!, arr);
    for (const g of part.cur) prevHashes.delete(heldHash(g, keyOf));
    hashes = prevHashes;
    items = part.des;
  } else hashes = new HashBag(arr.length);
  items ??= itemsOf(arr);
  let suspects: Set<string> | undefined;
  for (const x of items) {
    check(x);
    const h = heldHash(x, keyOf);
    if (hashes.has(h)) (suspects ??= new Set()).add(keyOf(x));
    hashes.add(h);
  }
  // A hash seen before is a duplicate only if its key is: look at the keys themselves (rare).
  if (suspects) {
    const seen = new Set<string>();
    for (const x of itemsOf(arr)) {
      const key = keyOf(x);
      if (!suspects.has(key)) continue;
      if (seen.has(key)) {
        problemsSeen++;
        twice(x);
      }
      seen.add(key);
    }
  }
  if (problemsSeen === before) holdBag(arr, hashes);
}

const flowWhat = (bridge: string, f: Flow) => `Flow "table=${f.table},priority=${f.priority},${f.match}" on bridge "${bridge}"`;

function checkFlow(bad: (m: string) => void, bridge: string, f: Flow): void {
  const flag = (m: string) => {
    problemsSeen++;
    bad(`${flowWhat(bridge, f)}: ${m}`);
  };
  if (!isUint(f.table, 254)) flag(`table ${f.table} is not 0-254`);
  if (!isUint(f.priority, 65535)) flag(`priority ${f.priority} is not 0-65535`);
  if (typeof f.cookie !== 'string' || !isCanonicalCookie(f.cookie)) flag(`cookie "${f.cookie}" is not canonical 0x hex (use cookie())`);
  if (/\s/.test(f.match)) flag(`match holds whitespace`);
  for (const field of f.match ? splitTopLevel(f.match) : []) {
    const name = field.split('=')[0];
    if (!field) flag(`match has an empty field`);
    else if (FLOW_RESERVED.has(name)) flag(`"${name}" belongs in its own field, not in the match`);
  }
  if (!f.actions || /[\r\n]/.test(f.actions)) flag(`actions "${f.actions}" are empty or span lines`);
}
let problemsSeen = 0;
/** Tunnel ports that passed their own checks, by identity (a host has one per peer). */
const checkedTunnels = new WeakSet<object>();
/** ipsets whose name, type, family and members passed, by identity (the firewall reuses unchanged ones). */
const checkedIpsets = new WeakSet<object>();
/** Member arrays that passed, with the `type family` they passed for. */
const checkedMembers = new WeakMap<readonly string[], string>();

function checkNamespace(
  bad: (m: string) => void,
  s: HostState,
  ns: Namespace,
  /** The host's OVS devices and where their links are found so far: undefined when no device changed anywhere (nothing to cross-check). */
  devices: { ovs: Map<string, string>; placed: Map<string, string> } | undefined,
  prev: Namespace | undefined,
): void {
  const at = where(ns.name);
  // Parts that are the same objects as in `prev` (which passed) need only their cross-checks
  // (none when the caller knows no device changed anywhere: no `devices`).
  const sameLinkRecord = prev?.links === ns.links;
  let localIps: Set<string> | undefined;
  const addressOf = (ip: string) => {
    if (!localIps) {
      localIps = new Set();
      for (const l of Object.values(ns.links)) for (const a of l.addresses) if (isCidr(a)) localIps.add(cidrIp(a));
    }
    return localIps.has(ip);
  };

  if (devices) for (const [key, l] of Object.entries(ns.links)) {
    if (sameLinkRecord) {
      checkLinkKind(bad, s, ns, l, devices.ovs, devices.placed);
      continue;
    }
    const what = `Link "${l.name}" in ${at}`;
    if (l.name !== key) bad(`Link recorded under "${key}" in ${at} is named "${l.name}"`);
    const np = deviceNameProblem(l.name);
    if (np) bad(`${what}: name ${np}`);
    if (l.mac !== undefined && !isMac(l.mac)) bad(`${what}: MAC "${l.mac}" is not aa:bb:cc:dd:ee:ff`);
    if (l.mtu !== undefined && (!Number.isInteger(l.mtu) || l.mtu < 68 || l.mtu > 65535)) bad(`${what}: MTU ${l.mtu} is not 68-65535`);
    if (typeof l.up !== 'boolean') bad(`${what}: "up" is not true or false`);
    if (l.master !== undefined) {
      const m = ns.links[l.master];
      if (!m) bad(`${what}: master "${l.master}" does not exist in ${at}`);
      else if (m.kind !== 'bridge') bad(`${what}: master "${l.master}" is a ${m.kind}, not a Linux bridge`);
      else if (l.master === l.name) bad(`${what}: is its own master`);
    }
    const addrs = new Set<string>();
    for (const a of l.addresses) {
      if (!isCidr(a)) bad(`${what}: address "${a}" is not in CIDR form (address/prefix length)`);
      if (addrs.has(a)) bad(`${what}: address ${a} listed twice`);
      addrs.add(a);
    }
    checkLinkKind(bad, s, ns, l, devices.ovs, devices.placed);
  }

  const devExists = (dev: string) => !!ns.links[dev];
  const routes = new Set<string>();
  for (const r of sameLinkRecord && prev!.routes === ns.routes ? [] : ns.routes) {
    const what = `Route "${r.dst}${r.via ? ' via ' + r.via : ''}${r.dev ? ' dev ' + r.dev : ''} table ${r.table}" in ${at}`;
    if (r.dst !== 'default' && !isNetworkCidr(r.dst)) bad(`${what}: destination "${r.dst}" is not "default" or a CIDR with host bits clear`);
    if (r.via !== undefined && !isIp(r.via)) bad(`${what}: via "${r.via}" is not an IP address`);
    if (r.type === 'blackhole') {
      if (r.dev !== undefined || r.via !== undefined) bad(`${what}: a blackhole route has no dev or via`);
    } else if (r.type === 'unicast' || r.type === 'local') {
      if (r.dev === undefined) bad(`${what}: names no dev`);
      else if (!devExists(r.dev)) bad(`${what}: dev "${r.dev}" does not exist in ${at}`);
    } else bad(`${what}: type "${(r as { type: string }).type}" is not unicast, blackhole or local`);
    if (!isUint(r.table, 0xffffffff) || r.table === 0) bad(`${what}: table ${r.table} is not 1-4294967295`);
    if (r.metric !== undefined && !isUint(r.metric, 0xffffffff)) bad(`${what}: metric ${r.metric} is not a 32-bit number`);
    if (r.src !== undefined && !addressOf(r.src)) bad(`${what}: src "${r.src}" is not an address of ${at}`);
    if (r.via !== undefined && r.dst !== 'default' && isCidr(r.dst) && ipFamily(cidrIp(r.dst)) !== ipFamily(r.via)) bad(`${what}: via and destination are of different families`);
    const key = routeKey(r);
    if (routes.has(key)) bad(`${what}: another route has the same table, destination and metric`);
    routes.add(key);
  }

  const rules = new Set<string>();
  for (const r of sameLinkRecord && prev!.rules === ns.rules ? [] : ns.rules) {
    const what = `Rule "priority ${r.priority}${r.from ? ' from ' + r.from : ''}${r.to ? ' to ' + r.to : ''}${r.iif ? ' iif ' + r.iif : ''} lookup ${r.table}" in ${at}`;
    if (!isUint(r.priority, 0xffffffff)) bad(`${what}: priority ${r.priority} is not a 32-bit number`);
    if (!isUint(r.table, 0xffffffff) || r.table === 0) bad(`${what}: table ${r.table} is not 1-4294967295`);
    for (const sel of [r.from, r.to]) if (sel !== undefined && !isIp(sel) && !isCidr(sel)) bad(`${what}: "${sel}" is not an address or CIDR`);
    if (r.iif !== undefined && !devExists(r.iif)) bad(`${what}: iif "${r.iif}" does not exist in ${at}`);
    const key = ruleKey(r);
    if (rules.has(key)) bad(`${what}: listed twice`);
    rules.add(key);
  }

  // Incremental only while the devices stay: a neighbour is valid as long as its dev exists.
  const sameLinks = !!prev && (prev.links === ns.links || Object.keys(prev.links).length === Object.keys(ns.links).length && Object.keys(prev.links).every((l) => ns.links[l]));
  const neighWhat = (n: Neighbour) => `Neighbour "${n.ip} dev ${n.dev}" in ${at}`;
  uniqueKeys(ns.neighbours, sameLinks ? prev!.neighbours : undefined, neighKey, (n) => {
    const flag = (m: string) => {
      problemsSeen++;
      bad(`${neighWhat(n)}: ${m}`);
    };
    if (!devExists(n.dev)) flag(`dev "${n.dev}" does not exist in ${at}`);
    if (!isIp(n.ip)) flag(`"${n.ip}" is not an IP address`);
    if (!isMac(n.lladdr)) flag(`lladdr "${n.lladdr}" is not aa:bb:cc:dd:ee:ff`);
    if (n.nud !== 'permanent' && n.nud !== 'reachable') flag(`nud "${n.nud}" is not permanent or reachable`);
  }, (n) => bad(`${neighWhat(n)}: listed twice`));

  for (const [key, value] of Object.entries(sameLinkRecord && prev!.sysctls === ns.sysctls ? {} : ns.sysctls)) {
    if (!/^(net|kernel)\.[A-Za-z0-9_./-]+$/.test(key)) bad(`Sysctl "${key}" in ${at} is not a net.* key in dotted form`);
    if (typeof value !== 'string' || value === '' || /[\r\n]/.test(value)) bad(`Sysctl "${key}" in ${at} has value "${value}" (non-empty text on one line)`);
    const dev = sysctlDevice(key);
    if (dev !== undefined && !devExists(dev)) bad(`Sysctl "${key}" in ${at} names device "${dev}" that does not exist there`);
  }

  for (const [key, set] of Object.entries(ns.ipsets)) {
    if (checkedIpsets.has(set) && set.name === key) continue;
    // A members array that passed for this type and family passes again (hosts in one
    // process share the firewall's arrays for the same member lists).
    const kind = `${set.type} ${set.family}`;
    const membersPassed = checkedMembers.get(set.members) === kind;
    // The set `prev` held (which passed), with other members that passed (the common refresh:
    // a port came or went elsewhere): nothing else to look at, and no entry in the weak set per
    // host per member change.
    const was = prev?.ipsets[key];
    if (membersPassed && was && set.name === key && was.type === set.type && was.family === set.family) continue;
    const before = problemsSeen;
    const flag = (m: string) => {
      problemsSeen++;
      bad(m);
    };
    const what = `ipset "${set.name}" in ${at}`;
    if (set.name !== key) flag(`ipset recorded under "${key}" in ${at} is named "${set.name}"`);
    if (!/^[A-Za-z0-9_.:-]{1,31}$/.test(set.name)) flag(`${what}: name is not 1-31 letters, digits, "_", ".", ":" or "-"`);
    if (set.type !== 'hash:ip' && set.type !== 'hash:net') flag(`${what}: type "${set.type}" is not hash:ip or hash:net`);
    if (set.family !== 'inet' && set.family !== 'inet6') flag(`${what}: family "${set.family}" is not inet or inet6`);
    const fam = set.family === 'inet6' ? 6 : 4;
    if (membersPassed) {
      if (problemsSeen === before && set.name === key) checkedIpsets.add(set);
      continue;
    }
    const membersBefore = problemsSeen;
    const seen = new Set<string>();
    for (const m of set.members) {
      const ok = set.type === 'hash:ip' ? isIp(m) && ipFamily(m) === fam : (isCidr(m) || isIp(m)) && ipFamily(cidrIp(m)) === fam;
      if (!ok) flag(`${what}: member "${m}" is not ${set.type === 'hash:ip' ? 'an address' : 'an address or CIDR'} of family ${set.family}`);
      if (seen.has(m)) flag(`${what}: member ${m} listed twice`);
      seen.add(m);
    }
    if (problemsSeen === membersBefore) checkedMembers.set(set.members, kind);
    if (problemsSeen === before && set.name === key) checkedIpsets.add(set);
  }

  // The same text as before, with every ipset it could name still there, passes again.
  const setsKept = !!prev && Object.keys(prev.ipsets).every((name) => ns.ipsets[name]);
  for (const [table, text] of Object.entries(ns.iptables) as [IptablesTable, string][]) {
    if (setsKept && prev!.iptables[table] === text) continue;
    checkIptables(bad, ns, at, table, text);
  }
}

function checkLinkKind(
  bad: (m: string) => void,
  s: HostState,
  ns: Namespace,
  l: Link,
  ovsDevices: Map<string, string>,
  ovsDevicePlaced: Map<string, string>,
): void {
  const what = `Link "${l.name}" in ${where(ns.name)}`;
  switch (l.kind) {
    case 'veth': {
      const peerNs = s.namespaces[l.peer_namespace];
      const peer = peerNs?.links[l.peer];
      if (!peerNs) bad(`${what}: veth peer namespace "${l.peer_namespace}" does not exist`);
      else if (!peer) bad(`${what}: veth peer "${l.peer}" does not exist in ${where(l.peer_namespace)}`);
      else if (peer.kind !== 'veth' || peer.peer !== l.name || peer.peer_namespace !== ns.name) {
        bad(`${what}: veth peer "${l.peer}" in ${where(l.peer_namespace)} does not point back to it`);
      }
      return;
    }
    case 'loopback':
      if (l.name !== 'lo') bad(`${what}: a loopback link must be named "lo"`);
      return;
    case 'physical':
      if (ns.name !== ROOT_NS) bad(`${what}: a physical link belongs in the root namespace`);
      return;
    case 'ovs-internal': {
      const owner = ovsDevices.get(l.name);
      if (!owner) bad(`${what}: no OVS bridge or internal port has this name`);
      else if (s.ovs.bridges[l.name] && ns.name !== ROOT_NS) bad(`${what}: bridge "${l.name}"'s own device belongs in the root namespace`);
      const prev = ovsDevicePlaced.get(l.name);
      if (prev !== undefined) bad(`${what}: the same OVS device is also in ${where(prev)}`);
      ovsDevicePlaced.set(l.name, ns.name);
      return;
    }
    case 'tap':
    case 'bridge':
    case 'dummy':
      if (ns.name === ROOT_NS && ovsDevices.has(l.name)) bad(`${what}: the name is taken by OVS ${ovsDevices.get(l.name)}`);
      return;
    default:
      bad(`${what}: unknown kind "${(l as { kind: string }).kind}"`);
  }
}

function checkIptables(bad: (m: string) => void, ns: Namespace, at: string, table: IptablesTable, text: string): void {
  const what = `iptables table "${table}" in ${at}`;
  if (!IPTABLES_TABLES.includes(table)) {
    bad(`${what}: not one of ${IPTABLES_TABLES.join(', ')}`);
    return;
  }
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (lines[0] !== `*${table}`) bad(`${what}: text must start with "*${table}", found "${lines[0] ?? ''}"`);
  if (lines[lines.length - 1] !== 'COMMIT') bad(`${what}: text must end with "COMMIT"`);
  for (const line of lines.slice(1, -1)) {
    if (line.startsWith('*') || line === 'COMMIT') bad(`${what}: holds more than one table ("${line}")`);
    else if (!line.startsWith(':') && !line.startsWith('-A ') && !line.startsWith('-I ')) bad(`${what}: line "${line}" is not a chain (":") or a rule ("-A")`);
  }
  for (const m of text.matchAll(/--match-set\s+(\S+)/g)) {
    if (!ns.ipsets[m[1]]) bad(`${what}: rule uses ipset "${m[1]}" that does not exist in ${at}`);
  }
}
