// The operations `diff` emits and drivers carry out, in the order given. The union is
// closed: a driver dispatching through `Record<HostOp['op'], ...>` does not compile until
// it handles every kind.
//
// Each operation names one change a tool can make (`ip`, `sysctl`, `ovs-vsctl`,
// `ovs-ofctl`, `iptables-restore`, `ipset`, dnsmasq, the metadata proxy). What the kernel or
// OVS does as a consequence is not spelled out again: deleting a namespace takes everything
// inside it; deleting a link takes its addresses, the routes and neighbours through it,
// its `net.ipv4.conf.<dev>.*` sysctls and the membership of its bridge's members; deleting
// a veth end takes the other end; deleting an internal OVS port or a bridge takes its
// Linux device. `applyOps` models exactly these consequences.
import type {
  DhcpServer,
  Flow,
  FlowKey,
  IpSet,
  IptablesTable,
  MetadataProxy,
  Neighbour,
  OvsBridge,
  OvsPort,
  Route,
  Rule,
  SimpleLink,
  VethLink,
} from './state.js';

/** A link as created: everything but its addresses (those follow as `address.add`). */
export type LinkSpec = Omit<VethLink, 'addresses'> | Omit<SimpleLink, 'addresses'>;

/** A bridge's own columns, without ports and flows. */
export type BridgeSpec = Omit<OvsBridge, 'ports' | 'flows'>;

export type BridgeColumn = 'datapath_type' | 'fail_mode' | 'protocols' | 'external_ids' | 'other_config';
/** OVSDB columns of a port (`tag`, `other_config` on Port; the rest on its Interface). */
export type PortColumn = 'tag' | 'ofport_request' | 'external_ids' | 'other_config' | 'options';

export type HostOp =
  // --- namespaces (`ip netns add/del`)
  | { op: 'netns.create'; namespace: string }
  | { op: 'netns.delete'; namespace: string }
  // --- links (`ip link`)
  /**
   * Create a link. veth: both ends at once (`peer` is the other end, in
   * `link.peer_namespace`). `loopback`, `ovs-internal` and `physical` already exist (with
   * the namespace, the OVS port/bridge, the host): create means move it to `namespace` (an
   * OVS internal device starts in the root namespace) and configure mac/mtu/up/master.
   */
  | { op: 'link.create'; namespace: string; link: LinkSpec; peer?: LinkSpec }
  /** Delete a link (a veth: both ends). For `loopback` and `physical`: release it (down, no addresses, no master). */
  | { op: 'link.delete'; namespace: string; name: string }
  /** Change only the attributes present; `master: null` = `nomaster`. */
  | { op: 'link.set'; namespace: string; name: string; up?: boolean; mtu?: number; mac?: string; master?: string | null }
  // --- addresses, routes, rules, neighbours (`ip addr/route/rule/neigh`)
  | { op: 'address.add'; namespace: string; dev: string; cidr: string }
  | { op: 'address.del'; namespace: string; dev: string; cidr: string }
  /** `ip route replace`: adds the route or replaces the one with the same table, dst and metric. */
  | { op: 'route.replace'; namespace: string; route: Route }
  | { op: 'route.del'; namespace: string; route: Route }
  | { op: 'rule.add'; namespace: string; rule: Rule }
  | { op: 'rule.del'; namespace: string; rule: Rule }
  /** `ip neigh replace`: adds or replaces the entry for (dev, ip). */
  | { op: 'neigh.replace'; namespace: string; neighbour: Neighbour }
  | { op: 'neigh.del'; namespace: string; neighbour: Neighbour }
  // --- sysctl
  | { op: 'sysctl.set'; namespace: string; key: string; value: string }
  /** The key is no longer managed: nothing to write (Linux has no "unset"); the value stays as it is. */
  | { op: 'sysctl.unset'; namespace: string; key: string }
  // --- netfilter
  /** `iptables-restore` of one whole table; `text: null` = restore the empty table (policies ACCEPT, no rules, no user chains). */
  | { op: 'iptables.restore'; namespace: string; table: IptablesTable; text: string | null }
  | { op: 'ipset.create'; namespace: string; set: IpSet }
  /** Type or family changed: build the new set under a temporary name, `ipset swap`, destroy the temporary (rules keep working throughout). */
  | { op: 'ipset.replace'; namespace: string; set: IpSet }
  /** Members changed: `add` and `del` are the exact changes; `members` is the resulting list. */
  | { op: 'ipset.update'; namespace: string; name: string; add: string[]; del: string[]; members: string[] }
  | { op: 'ipset.destroy'; namespace: string; name: string }
  // --- Open vSwitch (`ovs-vsctl`/OVSDB, `ovs-ofctl`)
  | { op: 'bridge.create'; bridge: BridgeSpec }
  /** Set the listed columns to the values in `bridge`. */
  | { op: 'bridge.set'; bridge: BridgeSpec; changed: BridgeColumn[] }
  /** Deleting a bridge deletes its ports, flows and local device. */
  | { op: 'bridge.delete'; name: string }
  | { op: 'port.add'; bridge: string; port: OvsPort }
  /** Set the listed columns to the values in `port` (an absent map or tag = clear the column). */
  | { op: 'port.set'; bridge: string; port: OvsPort; changed: PortColumn[] }
  | { op: 'port.del'; bridge: string; name: string }
  /**
   * All flow changes of one bridge, meant to be applied atomically (`ovs-ofctl --bundle`):
   * `delete` (strict, by table+priority+match), `modify` (same key, new actions and/or
   * cookie; a driver may realise it as an overwriting add), `add` (new keys).
   */
  | { op: 'flows.update'; bridge: string; add: Flow[]; modify: Flow[]; delete: FlowKey[] }
  // --- services
  | { op: 'dhcp.start'; server: DhcpServer }
  /** Hosts or options changed: rewrite the host and option files, SIGHUP dnsmasq. */
  | { op: 'dhcp.reload'; server: DhcpServer }
  /** Ranges, domain, lease time changed or its interface was re-created: restart dnsmasq. */
  | { op: 'dhcp.restart'; server: DhcpServer }
  | { op: 'dhcp.stop'; id: string }
  | { op: 'metadata.start'; proxy: MetadataProxy }
  | { op: 'metadata.stop'; id: string };

export type HostOpKind = HostOp['op'];

/** Every operation kind (deletions first, roughly in the order `diff` emits them; `link.create` also comes after `bridge.create` and `port.add` for OVS internal devices). */
export const OP_KINDS: readonly HostOpKind[] = [
  'metadata.stop',
  'dhcp.stop',
  'neigh.del',
  'rule.del',
  'route.del',
  'address.del',
  'port.del',
  'bridge.delete',
  'link.delete',
  'sysctl.unset',
  'netns.delete',
  'netns.create',
  'link.create',
  'link.set',
  'bridge.create',
  'bridge.set',
  'port.add',
  'port.set',
  'address.add',
  'route.replace',
  'rule.add',
  'neigh.replace',
  'sysctl.set',
  'flows.update',
  'ipset.create',
  'ipset.replace',
  'ipset.update',
  'iptables.restore',
  'ipset.destroy',
  'dhcp.start',
  'dhcp.reload',
  'dhcp.restart',
  'metadata.start',
];

/** One line per operation, for logs and test failure messages. */
export function describeOp(o: HostOp): string {
  const ns = (n: string) => (n === '' ? 'root' : n);
  switch (o.op) {
    case 'netns.create':
    case 'netns.delete':
      return `${o.op} ${o.namespace}`;
    case 'link.create':
      return `link.create ${ns(o.namespace)} ${o.link.name} (${o.link.kind}${o.peer ? ` peer ${ns(o.link.kind === 'veth' ? o.link.peer_namespace : '')} ${o.peer.name}` : ''})`;
    case 'link.delete':
      return `link.delete ${ns(o.namespace)} ${o.name}`;
    case 'link.set': {
      const parts: string[] = [];
      if (o.up !== undefined) parts.push(o.up ? 'up' : 'down');
      if (o.mtu !== undefined) parts.push(`mtu ${o.mtu}`);
      if (o.mac !== undefined) parts.push(`address ${o.mac}`);
      if (o.master !== undefined) parts.push(o.master === null ? 'nomaster' : `master ${o.master}`);
      return `link.set ${ns(o.namespace)} ${o.name} ${parts.join(' ')}`;
    }
    case 'address.add':
    case 'address.del':
      return `${o.op} ${ns(o.namespace)} ${o.cidr} dev ${o.dev}`;
    case 'route.replace':
    case 'route.del':
      return `${o.op} ${ns(o.namespace)} ${JSON.stringify(o.route)}`;
    case 'rule.add':
    case 'rule.del':
      return `${o.op} ${ns(o.namespace)} ${JSON.stringify(o.rule)}`;
    case 'neigh.replace':
    case 'neigh.del':
      return `${o.op} ${ns(o.namespace)} ${o.neighbour.ip} dev ${o.neighbour.dev}`;
    case 'sysctl.set':
      return `sysctl.set ${ns(o.namespace)} ${o.key}=${o.value}`;
    case 'sysctl.unset':
      return `sysctl.unset ${ns(o.namespace)} ${o.key}`;
    case 'iptables.restore':
      return `iptables.restore ${ns(o.namespace)} ${o.table}${o.text === null ? ' (empty)' : ''}`;
    case 'ipset.create':
    case 'ipset.replace':
      return `${o.op} ${ns(o.namespace)} ${o.set.name}`;
    case 'ipset.update':
      return `ipset.update ${ns(o.namespace)} ${o.name} +${o.add.length} -${o.del.length}`;
    case 'ipset.destroy':
      return `ipset.destroy ${ns(o.namespace)} ${o.name}`;
    case 'bridge.create':
      return `bridge.create ${o.bridge.name}`;
    case 'bridge.set':
      return `bridge.set ${o.bridge.name} ${o.changed.join(',')}`;
    case 'bridge.delete':
      return `bridge.delete ${o.name}`;
    case 'port.add':
      return `port.add ${o.bridge} ${o.port.name} (${o.port.type})`;
    case 'port.set':
      return `port.set ${o.bridge} ${o.port.name} ${o.changed.join(',')}`;
    case 'port.del':
      return `port.del ${o.bridge} ${o.name}`;
    case 'flows.update':
      return `flows.update ${o.bridge} +${o.add.length} ~${o.modify.length} -${o.delete.length}`;
    case 'dhcp.start':
    case 'dhcp.reload':
    case 'dhcp.restart':
      return `${o.op} ${o.server.id}`;
    case 'dhcp.stop':
      return `dhcp.stop ${o.id}`;
    case 'metadata.start':
      return `metadata.start ${o.proxy.id}`;
    case 'metadata.stop':
      return `metadata.stop ${o.id}`;
  }
}
