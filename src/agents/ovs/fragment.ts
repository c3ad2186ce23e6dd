// The OVS agent's fragment of the host state: br-int and br-tun with their patch pair, the
// patch pairs to the operator's physical bridges, the tunnel ports the FDB calls for, each
// wired port's local VLAN (`tag` and Neutron's `other_config`), and every flow.
import { addBridge, addPatchPair, emptyHost } from '../../host/build.js';
import { sameMap } from '../../host/keys.js';
import type { HostState, OvsBridge, OvsPort, OvsTunnelPort } from '../../host/state.js';
import { DEAD_VLAN_TAG } from './constants.js';
import { planFlows, type OvsPlan, type TunnelEndpoint } from './flows.js';

export function ovsFragment(plan: OvsPlan): HostState {
  const s = plan.settings;
  const { bridges: flows, tunnels } = planFlows(plan);
  const tunnelling = s.tunnelTypes.length > 0 && !!s.localIp;
  const st = skeleton(s, tunnelling);
  const bridges: Record<string, OvsBridge> = { ...st.ovs.bridges };
  // The physical bridges are the operator's: only the patch port and the flows are ours (no
  // device of the bridge here, so nothing about its link is overridden when fragments merge).
  for (const b of plan.physicalBridges) {
    bridges[b.bridge] = {
      name: b.bridge,
      datapath_type: s.datapathType,
      fail_mode: 'secure',
      ports: { [b.phyPatch]: { name: b.phyPatch, type: 'patch', peer: b.intPatch } },
      flows: flows[b.bridge] ?? [],
    };
  }
  const intPorts = integrationPorts(plan, bridges[s.integrationBridge].ports);
  bridges[s.integrationBridge] = { ...bridges[s.integrationBridge], ports: intPorts, flows: flows[s.integrationBridge] ?? [] };
  if (tunnelling) {
    const tunPorts = tunnelPorts(plan, bridges[s.tunnelBridge].ports, tunnels);
    bridges[s.tunnelBridge] = { ...bridges[s.tunnelBridge], ports: tunPorts, flows: flows[s.tunnelBridge] ?? [] };
  }
  return { ...st, ovs: { bridges: keepUnchanged(s, bridges) } };
}

/** br-int's ports: the same record while the wired ports and the physical bridges are (a pass for FDB entries makes none). */
const intPortsMemo = new WeakMap<OvsPlan['settings'], { base: Record<string, OvsPort>; ports: OvsPlan['ports']; physical: OvsPlan['physicalBridges']; out: Record<string, OvsPort> }>();
function integrationPorts(plan: OvsPlan, base: Record<string, OvsPort>): Record<string, OvsPort> {
  const have = intPortsMemo.get(plan.settings);
  if (have && have.base === base && have.ports === plan.ports && have.physical === plan.physicalBridges) return have.out;
  const intPorts: Record<string, OvsPort> = { ...base };
  for (const b of plan.physicalBridges) intPorts[b.intPatch] = { name: b.intPatch, type: 'patch', peer: b.phyPatch };
  for (const p of plan.ports) {
    const net = p.network;
    const port = { name: p.name, type: p.type, tag: net && p.details?.admin_state_up ? net.lvid : DEAD_VLAN_TAG } as OvsPort;
    if (net) {
      // What Neutron's agent records so a restarted agent finds each network's VLAN again.
      const oc: Record<string, string> = { net_uuid: net.id, network_type: net.network_type, tag: String(net.lvid) };
      if (net.physical_network) oc.physical_network = net.physical_network;
      if (net.segmentation_id !== null) oc.segmentation_id = String(net.segmentation_id);
      port.other_config = oc;
    }
    intPorts[p.name] = port;
  }
  intPortsMemo.set(plan.settings, { base, ports: plan.ports, physical: plan.physicalBridges, out: intPorts });
  return intPorts;
}

/**
 * Last pass's bridge objects where nothing in them changed (flows keep their arrays already,
 * see flows.ts): a pass for one FDB entry then changes br-tun only, and the composer, validate
 * and diff skip the other bridges by identity.
 */
const lastBridges = new WeakMap<OvsPlan['settings'], Record<string, OvsBridge>>();
function keepUnchanged(s: OvsPlan['settings'], bridges: Record<string, OvsBridge>): Record<string, OvsBridge> {
  const last = lastBridges.get(s);
  const out: Record<string, OvsBridge> = {};
  let same = !!last && Object.keys(last).length === Object.keys(bridges).length;
  for (const [name, b] of Object.entries(bridges)) {
    const was = last?.[name];
    out[name] = was && sameBridge(was, b) ? was : b;
    same &&= out[name] === was;
  }
  if (same) return last!; // the record itself too (the composer's memos look at it)
  lastBridges.set(s, out);
  return out;
}

function sameBridge(a: OvsBridge, b: OvsBridge): boolean {
  if (a.flows !== b.flows || !sameColumns(a, b)) return false;
  if (a.ports === b.ports) return true;
  const names = Object.keys(b.ports);
  if (names.length !== Object.keys(a.ports).length) return false;
  // Ports are small flat records (string maps one level down) built in the same key order every pass.
  return names.every((n) => a.ports[n] === b.ports[n] || (a.ports[n] !== undefined && samePort(a.ports[n], b.ports[n])));
}

/** The bridge's own columns (not its ports and flows): strings, or small lists and maps. */
function sameColumns(a: OvsBridge, b: OvsBridge): boolean {
  const same = (x: unknown, y: unknown) => x === y || (typeof x === 'object' && typeof y === 'object' && x !== null && y !== null && JSON.stringify(x) === JSON.stringify(y));
  for (const k in a) if (k !== 'ports' && k !== 'flows' && !same(a[k as keyof OvsBridge], b[k as keyof OvsBridge])) return false;
  for (const k in b) if (!(k in a) && b[k as keyof OvsBridge] !== undefined) return false;
  return true;
}

function samePort(a: OvsPort, b: OvsPort): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    const x = (a as unknown as Record<string, unknown>)[k];
    const y = (b as unknown as Record<string, unknown>)[k];
    if (x === y) continue;
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null || !sameMap(x as Record<string, string>, y as Record<string, string>)) return false;
  }
  return true;
}

/** br-int and br-tun with their patch pair: the same value every pass. */
const skeletons = new WeakMap<OvsPlan['settings'], HostState>();
function skeleton(s: OvsPlan['settings'], tunnelling: boolean): HostState {
  let st = skeletons.get(s);
  if (st) return st;
  st = addBridge(emptyHost(), s.integrationBridge, { datapath_type: s.datapathType });
  if (tunnelling) {
    st = addBridge(st, s.tunnelBridge, { datapath_type: s.datapathType });
    st = addPatchPair(st, s.integrationBridge, s.intPeerPatch, s.tunnelBridge, s.tunPeerPatch);
  }
  skeletons.set(s, st);
  return st;
}

/** br-tun's ports: the same record while the tunnels are (planFlows keeps their array; a host has one per peer). */
const tunPortsMemo = new WeakMap<OvsPlan['settings'], { base: Record<string, OvsPort>; tunnels: readonly TunnelEndpoint[]; ports: Record<string, OvsPort> }>();
function tunnelPorts(plan: OvsPlan, base: Record<string, OvsPort>, tunnels: readonly TunnelEndpoint[]): Record<string, OvsPort> {
  const have = tunPortsMemo.get(plan.settings);
  if (have && have.base === base && have.tunnels === tunnels) return have.ports;
  const ports: Record<string, OvsPort> = { ...base };
  for (const t of tunnels) ports[t.name] = tunnelPort(plan, t);
  tunPortsMemo.set(plan.settings, { base, tunnels, ports });
  return ports;
}

/** The same object for the same tunnel from pass to pass (diff and validate skip it by identity). */
const tunnelPortObjects = new WeakMap<OvsPlan['settings'], Map<string, OvsTunnelPort>>();
function tunnelPort(plan: OvsPlan, t: { name: string; type: 'vxlan' | 'gre'; remoteIp: string }): OvsTunnelPort {
  const s = plan.settings;
  let byName = tunnelPortObjects.get(s);
  if (!byName) tunnelPortObjects.set(s, (byName = new Map()));
  const have = byName.get(t.name);
  if (have && have.type === t.type && have.remote_ip === t.remoteIp) return have;
  const port: OvsTunnelPort = {
    name: t.name,
    type: t.type,
    remote_ip: t.remoteIp,
    local_ip: s.localIp,
    key: 'flow',
    options: { df_default: String(s.dontFragment), in_key: 'flow', out_key: 'flow' },
  };
  if (t.type === 'vxlan' && s.vxlanUdpPort !== 4789) port.dst_port = s.vxlanUdpPort;
  byName.set(t.name, port);
  return port;
}
