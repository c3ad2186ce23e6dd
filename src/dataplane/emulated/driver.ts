// The emulated driver: carries out src/host's operations on an emulated host, and reads the
// host back as a HostState, so that `diff(readState(), desired)` is empty after applying
// the diff (and applying the same state twice does nothing).
//
// Read-back rules (what the state leaves out, see host/state.ts): kernel routes, default
// ip rules, 127.0.0.1/8, neighbours learnt from ARP, flows installed by learn(); lo and
// NICs only once a state configured them. iptables and ipsets read back as last applied
// (the netfilter model holds the behaviour; the text is the state's own spelling).

import { cidrText, intToIp } from './addr.js';
import type { EmulatedHost } from './linux/host.js';
import type { Device } from './linux/device.js';
import type { Namespace } from './linux/namespace.js';
import { RT_TABLE_LOCAL, RT_TABLE_MAIN, RT_TABLE_DEFAULT } from './linux/routing.js';
import type { VsPortSpec } from './vswitch.js';
import { SHARED_TEXT_MAX } from './ovs/actions.js';
import { DhcpServerApp } from './apps/dhcp.js';
import { MetadataProxyApp } from './apps/metadata.js';
import { diff } from '../../host/diff.js';
import { parseFlow, renderFlow, renderFlowKey } from '../../host/flow.js';
import { describeOp, type HostOp, type LinkSpec } from '../../host/ops.js';
import { assertValidHost } from '../../host/validate.js';
import type { Flow, HostState, Link, Namespace as NsState, Neighbour, OvsBridge, OvsPort, Route, Rule } from '../../host/state.js';
import { ROOT_NS } from '../../host/state.js';
import { IPSET_SWAP_SUFFIX } from '../../host/names.js';
import { BROADCAST_MAC, ETH_TYPE_ARP, ZERO_MAC, type Frame } from './packet.js';

export class EmulatedDriverError extends Error {
  constructor(
    message: string,
    readonly operation: HostOp,
  ) {
    super(`${describeOp(operation)}: ${message}`);
    this.name = 'EmulatedDriverError';
  }
}

type Handlers = { [K in HostOp['op']]: (op: Extract<HostOp, { op: K }>) => void };

export class EmulatedDriver {
  readonly dhcp = new Map<string, DhcpServerApp>();
  readonly metadata = new Map<string, MetadataProxyApp>();
  /**
   * An emulated host changes only through its driver (a test that changes it otherwise tells
   * the composer with forget()): reading back what was applied, every minute on every host,
   * was a cloud of a thousand hosts' largest idle cost.
   */
  readonly soleWriter = true;

  constructor(private host: EmulatedHost) {}

  /** Makes the host match `desired`; returns the operations carried out. */
  applyState(desired: HostState, validated?: HostState): HostOp[] {
    assertValidHost(desired, validated);
    const ops = diff(this.readState(), desired);
    this.apply(ops);
    return ops;
  }

  /**
   * A gratuitous ARP for `ip` from `dev` (Neutron's send_ip_addr_adv_notif: `arping -U`), so
   * neighbours that cached another MAC for it (a floating IP moved to this host) learn this one.
   */
  announce(namespace: string, devName: string, ip: string): void {
    const dev = this.host.ns(namespace === ROOT_NS ? undefined : namespace).device(devName);
    const frame: Frame = { eth: { src: dev.mac, dst: BROADCAST_MAC, type: ETH_TYPE_ARP }, arp: { op: 1, sha: dev.mac, spa: ip, tha: ZERO_MAC, tpa: ip } };
    this.host.xmit(dev, frame, this.host.engine.tracer.newPacket(`ARP announce ${ip} from ${devName} (gratuitous)`));
    this.host.engine.run();
  }

  apply(ops: readonly HostOp[]): void {
    for (const op of ops) {
      try {
        (this.handlers[op.op] as (o: HostOp) => void)(op);
      } catch (e) {
        if (e instanceof EmulatedDriverError) throw e;
        throw new EmulatedDriverError((e as Error).message, op);
      }
    }
  }

  private ns(name: string): Namespace {
    return this.host.ns(name === ROOT_NS ? undefined : name);
  }

  // --- operations ----------------------------------------------------------------------

  private readonly handlers: Handlers = {
    'netns.create': (o) => void this.host.addNetns(o.namespace),
    'netns.delete': (o) => this.host.delNetns(o.namespace),
    'link.create': (o) => this.linkCreate(o.namespace, o.link, o.peer),
    'link.delete': (o) => {
      const d = this.ns(o.namespace).device(o.name);
      if (d.kind === 'loopback' || d.kind === 'physical') {
        if (d.master) d.master.delPort(d);
        d.up = false;
        for (const a of [...d.addrs]) if (!(d.kind === 'loopback' && a.text === '127.0.0.1/8')) d.ns.delAddrFrom(d, a.text);
        d.managed = false;
      } else if (d.kind === 'ovs-internal') {
        throw new Error(`device ${o.name} belongs to OVS port or bridge ${d.ovs?.port ?? o.name}: delete the port`);
      } else this.host.delLink(d);
    },
    'link.set': (o) => {
      const d = this.ns(o.namespace).device(o.name);
      this.configure(d, { up: o.up, mtu: o.mtu, mac: o.mac });
      if (o.master !== undefined) this.setMaster(d, o.master ?? undefined);
    },
    'address.add': (o) => this.ns(o.namespace).addAddr(o.dev, ipv4Only(o.cidr)),
    'address.del': (o) => this.ns(o.namespace).delAddr(o.dev, ipv4Only(o.cidr)),
    'route.replace': (o) => void this.ns(o.namespace).replaceRoute(routeSpec(o.route)),
    'route.del': (o) => this.ns(o.namespace).delRoute(routeSpec(o.route)),
    'rule.add': (o) => this.ns(o.namespace).addRule(o.rule),
    'rule.del': (o) => this.ns(o.namespace).delRule(o.rule),
    'neigh.replace': (o) => this.ns(o.namespace).addNeigh(o.neighbour.dev, ipv4Only(o.neighbour.ip), o.neighbour.lladdr, o.neighbour.nud === 'permanent' ? 'PERMANENT' : 'REACHABLE'),
    'neigh.del': (o) => this.ns(o.namespace).delNeigh(o.neighbour.dev, o.neighbour.ip),
    'sysctl.set': (o) => this.ns(o.namespace).setSysctl(o.key, o.value),
    'sysctl.unset': (o) => void this.ns(o.namespace).sysctls.delete(o.key),
    'iptables.restore': (o) => {
      const ns = this.ns(o.namespace);
      ns.iptablesRestore(o.text ?? `*${o.table}\nCOMMIT\n`);
      if (o.text === null) delete ns.iptablesText[o.table];
      else ns.iptablesText[o.table] = o.text;
    },
    'ipset.create': (o) => {
      const ns = this.ns(o.namespace);
      ns.ipsetRestore([`create ${o.set.name} ${o.set.type} family ${o.set.family}`, ...o.set.members.map((m) => `add ${o.set.name} ${m}`)].join('\n'));
      ns.ipsetState[o.set.name] = o.set;
    },
    'ipset.replace': (o) => {
      const ns = this.ns(o.namespace);
      const tmp = `${o.set.name}${IPSET_SWAP_SUFFIX}`;
      ns.ipsetRestore(
        [`create ${tmp} ${o.set.type} family ${o.set.family}`, ...o.set.members.map((m) => `add ${tmp} ${m}`), `swap ${tmp} ${o.set.name}`, `destroy ${tmp}`].join('\n'),
      );
      ns.ipsetState[o.set.name] = o.set;
    },
    'ipset.update': (o) => {
      const ns = this.ns(o.namespace);
      ns.ipsetUpdate(o.name, o.del, o.add);
      const s = ns.ipsetState[o.name];
      if (s) ns.ipsetState[o.name] = { ...s, members: o.members };
    },
    'ipset.destroy': (o) => {
      const ns = this.ns(o.namespace);
      ns.ipsetRestore(`destroy ${o.name}`);
      delete ns.ipsetState[o.name];
    },
    'bridge.create': (o) => {
      const b = this.host.vswitch.addBridge(o.bridge.name);
      b.spec = structuredClone(o.bridge);
    },
    'bridge.set': (o) => {
      this.host.vswitch.bridge(o.bridge.name).spec = structuredClone(o.bridge);
    },
    'bridge.delete': (o) => this.host.vswitch.delBridge(o.name),
    // States are immutable values (host/README.md): what the driver keeps of one (a port's
    // columns, an ipset's members) is kept as given, and a read-back copies it.
    'port.add': (o) => {
      const p = this.host.vswitch.addPort(o.bridge, portSpec(o.port));
      p.state = o.port;
    },
    'port.set': (o) => {
      const vs = this.host.vswitch;
      const p = vs.port(o.port.name);
      if (o.changed.includes('tag')) vs.setTag(o.port.name, o.port.tag);
      if (o.changed.includes('options') && (o.port.type === 'vxlan' || o.port.type === 'gre' || o.port.type === 'patch')) {
        // Tunnel endpoints or a patch peer changed: OVS reconfigures the interface in place.
        const flows = p.bridge.model.writtenFlows();
        vs.delPort(o.port.name);
        const np = vs.addPort(o.bridge, portSpec(o.port));
        np.bridge.model.delFlows('');
        np.bridge.model.addFlows(flows);
        np.state = o.port;
        return;
      }
      p.state = o.port;
    },
    'port.del': (o) => this.host.vswitch.delPort(o.name),
    'flows.update': (o) => {
      const model = this.host.vswitch.bridge(o.bridge).model;
      for (const k of o.delete) model.delFlows(`--strict ${renderFlowKey(k)}`);
      model.addFlows([...o.modify, ...o.add].map(flowText));
    },
    'dhcp.start': (o) => this.dhcpStart(o.server),
    'dhcp.reload': (o) => {
      const app = this.dhcp.get(o.server.id);
      if (!app) throw new Error(`dnsmasq ${o.server.id} is not running`);
      app.config = structuredClone(o.server);
    },
    'dhcp.restart': (o) => {
      this.dhcp.get(o.server.id)?.stop();
      this.dhcp.delete(o.server.id);
      this.dhcpStart(o.server);
    },
    'dhcp.stop': (o) => {
      const app = this.dhcp.get(o.id);
      if (!app) throw new Error(`dnsmasq ${o.id} is not running`);
      app.stop();
      this.dhcp.delete(o.id);
    },
    'metadata.start': (o) => {
      if (this.metadata.has(o.proxy.id)) throw new Error(`metadata proxy ${o.proxy.id} is already running`);
      const app = new MetadataProxyApp(this.ns(o.proxy.namespace), structuredClone(o.proxy));
      app.start();
      this.metadata.set(o.proxy.id, app);
    },
    'metadata.stop': (o) => {
      const app = this.metadata.get(o.id);
      if (!app) throw new Error(`metadata proxy ${o.id} is not running`);
      app.stop();
      this.metadata.delete(o.id);
    },
  };

  private dhcpStart(server: HostState['dhcp'][string]): void {
    if (this.dhcp.has(server.id)) throw new Error(`dnsmasq ${server.id} is already running`);
    const app = new DhcpServerApp(this.ns(server.namespace), structuredClone(server));
    app.start();
    this.dhcp.set(server.id, app);
  }

  private linkCreate(nsName: string, link: LinkSpec, peer?: LinkSpec): void {
    const host = this.host;
    const ns = this.ns(nsName);
    let dev: Device;
    switch (link.kind) {
      case 'veth': {
        const [a, b] = host.addVeth(link.name, link.peer, { ns: nsName || undefined, peerNs: link.peer_namespace || undefined, mac: link.mac, peerMac: peer?.mac, mtu: link.mtu });
        if (peer) {
          this.configure(b, { up: peer.up, mtu: peer.mtu });
          if (peer.master) this.setMaster(b, peer.master);
        }
        dev = a;
        break;
      }
      case 'tap':
        dev = host.addTap(link.name, { ns: nsName || undefined, mac: link.mac });
        break;
      case 'bridge':
        dev = host.addBridge(link.name, { ns: nsName || undefined, mac: link.mac }).dev;
        break;
      case 'dummy':
        dev = host.addDummy(link.name, { ns: nsName || undefined, mac: link.mac });
        break;
      case 'loopback':
      case 'physical': {
        dev = ns.device(link.name);
        if (dev.kind !== link.kind) throw new Error(`${link.name} in ${ns.label} is a ${dev.kind} device, not ${link.kind}`);
        dev.managed = true;
        break;
      }
      case 'ovs-internal': {
        const d = host.findDevice(link.name);
        if (!d || d.kind !== 'ovs-internal') throw new Error(`no OVS internal device ${link.name} (add its port or bridge first)`);
        if (d.ns !== ns) host.moveLink(d, nsName);
        dev = d;
        break;
      }
    }
    this.configure(dev, { up: link.up, mtu: link.mtu, mac: link.mac });
    if (link.master) this.setMaster(dev, link.master);
  }

  private configure(d: Device, c: { up?: boolean; mtu?: number; mac?: string }): void {
    if (c.mac !== undefined) d.mac = c.mac.toLowerCase();
    if (c.mtu !== undefined) d.mtu = c.mtu;
    if (c.up !== undefined) d.up = c.up;
  }

  private setMaster(d: Device, master: string | undefined): void {
    if (d.master?.name === master) return;
    if (d.master) d.master.delPort(d);
    if (master === undefined) return;
    const br = this.host.bridges.get(master);
    if (!br || br.dev.ns !== d.ns) throw new Error(`no Linux bridge ${master} in ${d.ns.label} to enslave ${d.name} to`);
    br.addPort(d);
  }

  // --- read back -----------------------------------------------------------------------

  readState(): HostState {
    const host = this.host;
    const namespaces: Record<string, NsState> = { [ROOT_NS]: readNamespace(host.root) };
    for (const [name, ns] of host.namespaces) namespaces[name] = readNamespace(ns);
    const bridges: Record<string, OvsBridge> = {};
    for (const [name, b] of host.vswitch.bridges) {
      const ports: Record<string, OvsPort> = {};
      for (const [pn, p] of b.ports) if (pn !== name) ports[pn] = p.state ? structuredClone(p.state) : portState(p);
      const flows: Flow[] = [];
      for (const text of b.model.writtenFlows()) flows.push(WRITTEN.get(text) ?? parseFlow(text));
      bridges[name] = { ...structuredClone(b.spec), ports, flows };
    }
    const dhcp: HostState['dhcp'] = {};
    for (const [id, a] of this.dhcp) dhcp[id] = structuredClone(a.config);
    const metadata: HostState['metadata'] = {};
    for (const [id, a] of this.metadata) metadata[id] = structuredClone(a.config);
    return { ovs: { bridges }, namespaces, dhcp, metadata };
  }
}

/**
 * The flow each text was written from (flows are immutable values): a read-back of a big host
 * gives the objects it was built from instead of parsing every line again, which also makes
 * the diff after it compare objects that are mostly the same. A text not written here (an
 * operator's ovs-ofctl) is parsed, as is a long one (a host's flood flow: kept, every
 * version of it would stay).
 */
const WRITTEN = new Map<string, Flow>();
const WRITTEN_MAX = 2_000_000;

/**
 * A flow's text, made once per flow object: the hosts of an emulated cloud install the same
 * objects (a peer's unicast and ARP responder flows), and the same string each time is looked
 * up in the parse cache by its cached hash instead of being built, hashed and compared anew
 * per host; it goes into WRITTEN then, not per host. A long text (a host's own flood flow, one
 * version per pass) is kept in neither.
 */
const TEXTS = new WeakMap<Flow, string>();
function flowText(f: Flow): string {
  let text = TEXTS.get(f);
  if (text === undefined) {
    text = renderFlow(f);
    if (text.length <= SHARED_TEXT_MAX) {
      TEXTS.set(f, text);
      if (WRITTEN.size >= WRITTEN_MAX) WRITTEN.clear();
      WRITTEN.set(text, f);
    }
  }
  return text;
}

function readNamespace(ns: Namespace): NsState {
  const links: Record<string, Link> = {};
  for (const d of ns.devices.values()) {
    if ((d.kind === 'loopback' || d.kind === 'physical') && !d.managed) continue;
    const common = {
      name: d.name,
      mac: d.mac,
      mtu: d.mtu,
      up: d.up,
      addresses: d.addrs.filter((a) => !(d.kind === 'loopback' && a.text === '127.0.0.1/8')).map((a) => a.text),
    } as Link;
    if (d.master) common.master = d.master.name;
    if (d.kind === 'loopback') delete common.mac;
    if (d.kind === 'veth') {
      // An instance's eth0 is the far end of a tap, never a veth of the host.
      links[d.name] = { ...common, kind: 'veth', peer: d.peer?.name ?? '', peer_namespace: d.peer?.ns.name ?? '' };
    } else links[d.name] = { ...common, kind: d.kind } as Link;
  }
  const routes: Route[] = [];
  for (const t of ns.rib.tables.values()) {
    for (const r of t.routes()) {
      if (r.proto === 'kernel') continue;
      const route: Route = { dst: r.dst.len === 0 ? 'default' : `${intToIp(r.dst.net)}/${r.dst.len}`, table: r.table, type: r.type === 'local' || r.type === 'blackhole' ? r.type : 'unicast' };
      if (r.via !== undefined) route.via = intToIp(r.via);
      if (r.dev) route.dev = r.dev.name;
      if (r.src !== undefined) route.src = intToIp(r.src);
      if (r.metric) route.metric = r.metric;
      routes.push(route);
    }
  }
  const rules: Rule[] = [];
  for (const r of ns.rib.rules) {
    const isDefault = !r.from && !r.to && !r.iif && !r.oif && !r.fwmark && ((r.priority === 0 && r.table === RT_TABLE_LOCAL) || (r.priority === 32766 && r.table === RT_TABLE_MAIN) || (r.priority === 32767 && r.table === RT_TABLE_DEFAULT));
    if (isDefault) continue;
    const rule: Rule = { priority: r.priority, table: r.table };
    if (r.from) rule.from = r.fromText ?? cidrText(r.from);
    if (r.to) rule.to = r.toText ?? cidrText(r.to);
    if (r.iif) rule.iif = r.iif;
    rules.push(rule);
  }
  const neighbours: Neighbour[] = [];
  for (const d of ns.devices.values()) {
    for (const n of d.neigh.values()) {
      if (!n.managed || !n.mac) continue;
      neighbours.push({ dev: d.name, ip: intToIp(n.ip), lladdr: n.mac, nud: n.state === 'PERMANENT' ? 'permanent' : 'reachable' });
    }
  }
  return {
    name: ns.name,
    links,
    routes,
    rules,
    neighbours,
    sysctls: Object.fromEntries(ns.sysctls),
    iptables: { ...ns.iptablesText },
    ipsets: structuredClone(ns.ipsetState),
  };
}

function routeSpec(r: Route) {
  if (r.scope === 'host') throw new Error(`scope host routes are not modelled ('${r.dst}')`);
  return { dst: ipv4Only(r.dst), via: r.via, dev: r.dev, table: r.table, metric: r.metric, src: r.src, type: r.type };
}

function portSpec(p: OvsPort): VsPortSpec {
  const spec: VsPortSpec = { name: p.name, type: p.type, tag: p.tag, ofport: p.ofport_request };
  if (p.type === 'patch') spec.peer = p.peer;
  if (p.type === 'vxlan' || p.type === 'gre') {
    spec.remoteIp = p.remote_ip;
    spec.localIp = p.local_ip;
    spec.key = p.key;
    spec.dstPort = p.dst_port;
  }
  return spec;
}

/** A port built through the imperative API, described as the state would. */
function portState(p: VsPortSpec): OvsPort {
  const c: { name: string; tag?: number; ofport_request?: number } = { name: p.name };
  if (p.tag !== undefined) c.tag = p.tag;
  if (p.ofport !== undefined) c.ofport_request = p.ofport;
  switch (p.type) {
    case 'patch':
      return { ...c, type: 'patch', peer: p.peer! };
    case 'vxlan':
    case 'gre': {
      const t: OvsPort = { ...c, type: p.type, remote_ip: p.remoteIp!, key: p.key ?? 'flow' };
      if (p.localIp) t.local_ip = p.localIp;
      if (p.dstPort !== undefined) t.dst_port = p.dstPort;
      return t;
    }
    default:
      return { ...c, type: p.type };
  }
}

function ipv4Only(text: string): string {
  if (text.includes(':')) throw new Error(`IPv6 is not modelled by the emulated dataplane ('${text}')`);
  return text;
}
