// What a host state needs on a machine without the openvswitch kernel module: every bridge
// on the userspace datapath (Neutron's `datapath_type = netdev`), and the tunnel endpoint
// address on an OVS bridge that holds the tunnel NIC (`br-phy`), because OVS's userspace
// tunnelling routes and ARPs for the outer packet itself. The operator's setup on such a
// host, applied to the state the agents computed.
import { addBridge, addFlows, addPort, systemPort } from '../../host/build.js';
import type { HostState, Link } from '../../host/state.js';
import { ROOT_NS } from '../../host/state.js';

export interface UserspaceOptions {
  /** The NIC on the tunnel network whose addresses move to `bridge`. */
  tunnelNic?: string;
  /** Default `br-phy`. */
  bridge?: string;
}

export function forUserspaceDatapath(s: HostState, opts: UserspaceOptions = {}): HostState {
  const bridges = Object.fromEntries(Object.entries(s.ovs.bridges).map(([n, b]) => [n, { ...b, datapath_type: 'netdev' as const }]));
  let out: HostState = { ...s, ovs: { bridges } };
  const nicName = opts.tunnelNic;
  if (!nicName) return out;
  const root = out.namespaces[ROOT_NS];
  const nic = root.links[nicName];
  if (!nic) throw new Error(`No NIC "${nicName}" in the root namespace to carry the tunnel`);
  const br = opts.bridge ?? 'br-phy';
  out = addBridge(out, br, { datapath_type: 'netdev', fail_mode: 'standalone' });
  out = addPort(out, br, systemPort(nicName));
  // What OVS installs by itself on a standalone bridge, spelled out so read-back matches.
  out = addFlows(out, br, [{ table: 0, priority: 0, actions: 'NORMAL' }]);
  const r = out.namespaces[ROOT_NS];
  const brLink: Link = { ...(r.links[br] as Link), up: true, addresses: [...nic.addresses] };
  const nicLink: Link = { ...nic, up: true, addresses: [] };
  const routes = r.routes.map((rt) => (rt.dev === nicName ? { ...rt, dev: br } : rt));
  return { ...out, namespaces: { ...out.namespaces, [ROOT_NS]: { ...r, routes, links: { ...r.links, [br]: brLink, [nicName]: nicLink } } } };
}
