// The OVS agent's flows as `ovs-ofctl` text, per bridge and per role, from a plan of what
// the host has (its ports with their Neutron details and local VLANs, the l2population
// FDB, the DVR MACs). Pure: the same plan gives the same flows, in the same order, which is
// what lets a restarted agent write exactly what was there.
//
// The tables and priorities are Neutron's native OpenFlow driver's (openflow/native/
// br_int.py, br_tun.py, br_phys.py, br_dvr_process.py; ovs_dvr_neutron_agent.py), spelled
// the way `ovs-ofctl dump-flows` prints them.

import type { DeviceDetails, FdbEntries } from '../../rpc/messages.js';
import { FLOODING_ENTRY } from '../../rpc/messages.js';
import { cached } from '../../common/cache.js';
import { joinChunks, type Items } from '../../host/chunks.js';
import { hashString } from '../../host/hashbag.js';
import { flowKey } from '../../host/flow.js';
import { tunnelPortName } from '../../host/names.js';
import type { Flow, OvsPortType } from '../../host/state.js';
import { COOKIE, DEAD_VLAN_TAG, INT, LEARN_HARD_TIMEOUT, NETWORK_OWNER_PREFIX, PHYS, TUN } from './constants.js';

export type TunnelType = 'vxlan' | 'gre';

export interface OvsSettings {
  integrationBridge: string;
  tunnelBridge: string;
  /** On br-int, towards br-tun (`patch-tun`). */
  intPeerPatch: string;
  /** On br-tun, towards br-int (`patch-int`). */
  tunPeerPatch: string;
  localIp?: string;
  tunnelTypes: TunnelType[];
  bridgeMappings: Array<{ physnet: string; bridge: string }>;
  datapathType: 'system' | 'netdev';
  distributed: boolean;
  l2pop: boolean;
  arpResponder: boolean;
  preventArpSpoofing: boolean;
  vxlanUdpPort: number;
  dontFragment: boolean;
}

/** A network with ports on this host and the local VLAN it got here. */
export interface LocalNetwork {
  id: string;
  lvid: number;
  network_type: DeviceDetails['network_type'];
  physical_network: string | null;
  segmentation_id: number | null;
}

/** A port plugged on br-int by someone else (compute, L3, DHCP) that the agent wires. */
export interface WiredPort {
  /** The OVS port name (`qvo…`, `qr-…`, `tap…`). */
  name: string;
  /** As its plugger made it; the agent only adds `tag` and `other_config`. */
  type: OvsPortType;
  ifaceId: string;
  /** Neutron's view of the port; absent when the server does not know it (dead VLAN). */
  details?: DeviceDetails;
  /** The port's network here; absent for dead ports. */
  network?: LocalNetwork;
}

export interface OvsPlan {
  settings: OvsSettings;
  ports: WiredPort[];
  networks: LocalNetwork[];
  fdb: FdbEntries;
  /** This host's DVR MAC (distributed mode). */
  dvrMac?: string;
  /** Every other host's DVR MAC. */
  remoteDvrMacs: string[];
  /** The mapped physical bridges that exist on the host (the operator made them). */
  physicalBridges: Array<{ physnet: string; bridge: string; intPatch: string; phyPatch: string }>;
}

export interface TunnelEndpoint {
  name: string;
  type: TunnelType;
  remoteIp: string;
}

export interface PlannedFlows {
  /** Flows per bridge name. */
  bridges: Record<string, Items<Flow>>;
  /** The tunnel ports br-tun needs (from the FDB). */
  tunnels: TunnelEndpoint[];
}

const TUNNEL_TYPES = new Set<string>(['vxlan', 'gre']);
export const isTunnelNetwork = (n: { network_type: string }) => TUNNEL_TYPES.has(n.network_type);
const isIpv4 = (s: string) => /^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(s);

const DVR_INTERFACE_OWNER = 'network:router_interface_distributed';
const DVR_SERVICED = (owner: string) => owner.startsWith('compute:') || owner === 'network:dhcp' || owner === 'network:router_centralized_snat';

const f = (table: number, priority: number, cookie: string, match: string, actions: string): Flow => ({ table, priority, cookie, match, actions });
const hex = (n: number) => '0x' + n.toString(16);

/** Neutron's in-switch ARP reply (br-tun t21): the request turned into the answer, sent back where it came from. */
export function arpResponderActions(mac: string, ip: string): string {
  const macHex = '0x' + mac.replace(/:/g, '');
  const ipHex = '0x' + ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('');
  return (
    'move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],' +
    `mod_dl_src:${mac},` +
    'load:0x2->NXM_OF_ARP_OP[],' +
    'move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],' +
    'move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],' +
    `load:${macHex}->NXM_NX_ARP_SHA[],` +
    `load:${ipHex}->NXM_OF_ARP_SPA[],` +
    'in_port'
  );
}

/** br-tun t10: learn the sender's MAC into t20 (towards the tunnel it came from), then hand the frame to br-int. */
export function learnActions(tunPeerPatch: string): string {
  return (
    `learn(table=${TUN.UCAST_TO_TUN},hard_timeout=${LEARN_HARD_TIMEOUT},priority=1,cookie=${COOKIE.learned},` +
    'NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],' +
    'load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),' +
    `output:${tunPeerPatch}`
  );
}

/** A router interface of a distributed router plugged here (qr-), with its gateway facts. */
interface DvrInterface {
  port: WiredPort;
  net: LocalNetwork;
  mac: string;
  subnets: Map<string, string>; // subnet id -> gateway IPv4
}

function dvrInterfaces(plan: OvsPlan): DvrInterface[] {
  if (!plan.settings.distributed || !plan.dvrMac) return [];
  const out: DvrInterface[] = [];
  for (const p of plan.ports) {
    const d = p.details;
    if (!d || !p.network || d.device_owner !== DVR_INTERFACE_OWNER) continue;
    const subnets = new Map<string, string>();
    for (const ip of d.fixed_ips) if (isIpv4(ip.ip_address)) subnets.set(ip.subnet_id, ip.ip_address);
    out.push({ port: p, net: p.network, mac: d.mac_address, subnets });
  }
  return out;
}

/** Where frames of a physical network carry their VLAN on arrival from br-phys (before translation). */
function physicalVlanMatch(net: LocalNetwork): string {
  return net.network_type === 'vlan' ? `dl_vlan=${net.segmentation_id}` : 'vlan_tci=0x0000/0x1fff';
}

/**
 * The flows of the host's own ports, networks and router interfaces (br-int, the skeletons,
 * local VLANs, DVR interfaces, anti-spoofing): everything but the FDB's and the remote DVR
 * MACs'. Kept while the plan's ports, networks, bridges and DVR MAC are the same objects (the
 * agent keeps them while its devices are): a pass for an FDB change then makes none of them.
 */
function localFlows(plan: OvsPlan, tunnelling: boolean, dvr: boolean): LocalFlows {
  const s = plan.settings;
  const have = localMemo.get(s);
  if (have && have.ports === plan.ports && have.networks === plan.networks && have.physicalBridges === plan.physicalBridges && have.dvrMac === plan.dvrMac && have.tunnelling === tunnelling && have.dvr === dvr) return have;
  const int: Flow[] = [];
  const tun: Flow[] = [];
  const phys = new Map<string, Flow[]>(plan.physicalBridges.map((b) => [b.bridge, []]));
  const B = COOKIE.base;
  const D = COOKIE.dvr;

  // ---- br-int skeleton
  int.push(
    f(INT.LOCAL_SWITCHING, 65535, B, `dl_vlan=${DEAD_VLAN_TAG}`, 'drop'),
    f(INT.LOCAL_SWITCHING, 0, B, '', `resubmit(,${INT.PACKET_RATE_LIMIT})`),
    f(INT.CANARY, 0, B, '', 'drop'),
    f(INT.ARP_SPOOF, 0, B, '', 'drop'),
    f(INT.MAC_SPOOF, 0, B, '', 'drop'),
    f(INT.LOCAL_EGRESS, 0, B, '', `resubmit(,${INT.PACKET_RATE_LIMIT})`),
    f(INT.PACKET_RATE_LIMIT, 0, B, '', `resubmit(,${INT.TRANSIENT})`),
    f(INT.TRANSIENT, 3, B, '', 'NORMAL'),
  );
  if (dvr) int.push(f(INT.DVR_TO_SRC_MAC, 1, D, '', 'drop'), f(INT.DVR_TO_SRC_MAC_PHYSICAL, 1, D, '', 'drop'));
  for (const b of plan.physicalBridges) int.push(f(INT.LOCAL_SWITCHING, 2, B, `in_port=${b.intPatch}`, 'drop'));

  // ---- br-tun skeleton
  if (tunnelling) {
    tun.push(
      f(TUN.LOCAL_SWITCHING, 1, B, `in_port=${s.tunPeerPatch}`, `resubmit(,${dvr ? TUN.DVR_PROCESS : TUN.PATCH_LV_TO_TUN})`),
      f(TUN.LOCAL_SWITCHING, 0, B, '', 'drop'),
    );
    if (dvr) tun.push(f(TUN.DVR_PROCESS, 0, D, '', `resubmit(,${TUN.PATCH_LV_TO_TUN})`));
    if (s.arpResponder) tun.push(f(TUN.PATCH_LV_TO_TUN, 1, B, 'arp,dl_dst=ff:ff:ff:ff:ff:ff', `resubmit(,${TUN.ARP_RESPONDER})`));
    tun.push(
      f(TUN.PATCH_LV_TO_TUN, 0, B, 'dl_dst=00:00:00:00:00:00/01:00:00:00:00:00', `resubmit(,${TUN.UCAST_TO_TUN})`),
      f(TUN.PATCH_LV_TO_TUN, 0, B, 'dl_dst=01:00:00:00:00:00/01:00:00:00:00:00', `resubmit(,${TUN.FLOOD_TO_TUN})`),
      f(TUN.GRE_TUN_TO_LV, 0, B, '', 'drop'),
      f(TUN.VXLAN_TUN_TO_LV, 0, B, '', 'drop'),
    );
    if (dvr) tun.push(f(TUN.DVR_NOT_LEARN, 0, D, '', `resubmit(,${TUN.LEARN_FROM_TUN})`));
    tun.push(
      f(TUN.LEARN_FROM_TUN, 1, B, '', learnActions(s.tunPeerPatch)),
      f(TUN.UCAST_TO_TUN, 0, B, '', `resubmit(,${TUN.FLOOD_TO_TUN})`),
    );
    if (s.arpResponder) tun.push(f(TUN.ARP_RESPONDER, 0, B, '', `resubmit(,${TUN.FLOOD_TO_TUN})`));
    tun.push(f(TUN.FLOOD_TO_TUN, 0, B, '', 'drop'));
  }

  // ---- physical bridges' skeleton
  for (const b of plan.physicalBridges) {
    const fl = phys.get(b.bridge)!;
    fl.push(f(PHYS.LOCAL_SWITCHING, 0, B, '', 'NORMAL'));
    if (dvr) {
      fl.push(
        f(PHYS.LOCAL_SWITCHING, 2, D, `in_port=${b.phyPatch}`, `resubmit(,${PHYS.DVR_PROCESS_PHYSICAL})`),
        f(PHYS.LOCAL_SWITCHING, 1, D, '', `resubmit(,${PHYS.DVR_NOT_LEARN_PHYSICAL})`),
        f(PHYS.DVR_PROCESS_PHYSICAL, 0, D, '', `resubmit(,${PHYS.LOCAL_VLAN_TRANSLATION})`),
        f(PHYS.LOCAL_VLAN_TRANSLATION, 2, D, `in_port=${b.phyPatch}`, 'drop'),
        f(PHYS.DVR_NOT_LEARN_PHYSICAL, 1, D, '', 'NORMAL'),
      );
    } else fl.push(f(PHYS.LOCAL_SWITCHING, 2, B, `in_port=${b.phyPatch}`, 'drop'));
  }

  // ---- local VLANs: tunnel id <-> local VLAN, physical VLAN <-> local VLAN
  const L = COOKIE.localVlan;
  for (const net of plan.networks) {
    if (isTunnelNetwork(net)) {
      if (!tunnelling || !s.tunnelTypes.includes(net.network_type as TunnelType)) continue;
      const table = net.network_type === 'gre' ? TUN.GRE_TUN_TO_LV : TUN.VXLAN_TUN_TO_LV;
      tun.push(f(table, 1, L, `tun_id=${hex(net.segmentation_id!)}`, `mod_vlan_vid:${net.lvid},resubmit(,${dvr ? TUN.DVR_NOT_LEARN : TUN.LEARN_FROM_TUN})`));
      continue;
    }
    const b = plan.physicalBridges.find((x) => x.physnet === net.physical_network);
    if (!b) continue;
    const vlan = net.network_type === 'vlan';
    int.push(
      f(
        INT.LOCAL_SWITCHING,
        3,
        L,
        `in_port=${b.intPatch},${vlan ? `dl_vlan=${net.segmentation_id}` : 'vlan_tci=0x0000/0x1fff'}`,
        `mod_vlan_vid:${net.lvid},resubmit(,${INT.PACKET_RATE_LIMIT})`,
      ),
    );
    phys
      .get(b.bridge)!
      .push(
        f(
          dvr ? PHYS.LOCAL_VLAN_TRANSLATION : PHYS.LOCAL_SWITCHING,
          4,
          L,
          `in_port=${b.phyPatch},dl_vlan=${net.lvid}`,
          vlan ? `mod_vlan_vid:${net.segmentation_id},NORMAL` : 'strip_vlan,NORMAL',
        ),
      );
  }

  // ---- DVR
  if (dvr) {
    const own = plan.dvrMac!;
    const itfs = dvrInterfaces(plan);
    const gatewayMac = new Map<string, string>(); // subnet -> qr MAC
    for (const itf of itfs) for (const subnet of itf.subnets.keys()) gatewayMac.set(subnet, itf.mac);
    if (tunnelling && itfs.some((i) => isTunnelNetwork(i.net)))
      int.push(f(INT.LOCAL_SWITCHING, 5, D, `in_port=${s.intPeerPatch},dl_dst=${own}`, `resubmit(,${INT.ARP_DVR_MAC_TO_DST_MAC})`));
    for (const itf of itfs) {
      const { net, mac } = itf;
      // ARP replies to a router's request that left with this host's DVR MAC come back to it.
      int.push(f(INT.LOCAL_SWITCHING, 99, D, `arp,dl_dst=${own},arp_op=2,arp_tha=${mac}`, `mod_dl_dst:${mac},resubmit(,${INT.PACKET_RATE_LIMIT})`));
      if (isTunnelNetwork(net)) {
        if (!tunnelling) continue;
        tun.push(
          f(TUN.DVR_PROCESS, 1, D, `dl_vlan=${net.lvid},dl_src=${mac}`, `mod_dl_src:${own},resubmit(,${TUN.PATCH_LV_TO_TUN})`),
          f(TUN.DVR_PROCESS, 2, D, `dl_vlan=${net.lvid},dl_dst=${mac}`, 'drop'),
        );
        // A distributed gateway's ARP never leaves the host: every host answers it locally.
        for (const gw of itf.subnets.values()) tun.push(f(TUN.FLOOD_TO_TUN, 3, D, `arp,dl_vlan=${net.lvid},arp_tpa=${gw}`, 'drop'));
        int.push(f(INT.ARP_DVR_MAC_TO_DST_MAC, 5, D, `dl_vlan=${net.lvid},dl_dst=${own}`, `mod_dl_dst:${mac},strip_vlan,output:${itf.port.name}`));
      } else {
        const b = plan.physicalBridges.find((x) => x.physnet === net.physical_network);
        if (!b) continue;
        phys
          .get(b.bridge)!
          .push(
            f(PHYS.DVR_PROCESS_PHYSICAL, 1, D, `dl_vlan=${net.lvid},dl_src=${mac}`, `mod_dl_src:${own},resubmit(,${PHYS.LOCAL_VLAN_TRANSLATION})`),
            f(PHYS.DVR_PROCESS_PHYSICAL, 2, D, `dl_vlan=${net.lvid},dl_dst=${mac}`, 'drop'),
          );
        int.push(
          f(INT.LOCAL_SWITCHING, 5, D, `in_port=${b.intPatch},dl_dst=${own}`, `resubmit(,${INT.ARP_DVR_MAC_TO_DST_MAC_PHYSICAL})`),
          f(INT.ARP_DVR_MAC_TO_DST_MAC_PHYSICAL, 5, D, `${physicalVlanMatch(net)},dl_dst=${own}`, `mod_dl_dst:${mac},${net.network_type === 'vlan' ? 'strip_vlan,' : ''}output:${itf.port.name}`),
        );
      }
    }
    // Local ports a distributed router serves: what another host routed to them arrives with
    // that host's DVR MAC as source and leaves br-int as if this host's qr- had routed it.
    for (const p of plan.ports) {
      const d = p.details;
      const net = p.network;
      if (!d || !net || !DVR_SERVICED(d.device_owner)) continue;
      const gw = d.fixed_ips.map((x) => gatewayMac.get(x.subnet_id)).find((m) => m !== undefined);
      if (!gw) continue;
      const tunnelNet = isTunnelNetwork(net);
      if (!tunnelNet && !plan.physicalBridges.some((b) => b.physnet === net.physical_network)) continue;
      if (tunnelNet && !tunnelling) continue;
      const vlanMatch = tunnelNet ? `dl_vlan=${net.lvid}` : physicalVlanMatch(net);
      const match = `${vlanMatch},dl_dst=${d.mac_address}`;
      int.push(
        f(tunnelNet ? INT.DVR_TO_SRC_MAC : INT.DVR_TO_SRC_MAC_PHYSICAL, 20, D, match, `mod_dl_src:${gw},resubmit(,${INT.PACKET_RATE_LIMIT})`),
        f(INT.TRANSIENT, 20, D, match, `${tunnelNet || net.network_type === 'vlan' ? 'strip_vlan,' : ''}output:${p.name}`),
      );
    }
  }

  // ---- ARP and MAC anti-spoofing for ports with port security
  if (s.preventArpSpoofing) {
    const S = COOKIE.spoof;
    for (const p of plan.ports) {
      const d = p.details;
      if (!d || !p.network || !d.port_security_enabled || d.device_owner.startsWith(NETWORK_OWNER_PREFIX)) continue;
      const ips = new Set<string>();
      for (const x of d.fixed_ips) if (isIpv4(x.ip_address)) ips.add(x.ip_address);
      const macs = new Set<string>([d.mac_address.toLowerCase()]);
      for (const a of d.allowed_address_pairs) {
        if (isIpv4(a.ip_address)) ips.add(a.ip_address.endsWith('/32') ? a.ip_address.slice(0, -3) : a.ip_address);
        if (a.mac_address) macs.add(a.mac_address.toLowerCase());
      }
      int.push(f(INT.LOCAL_SWITCHING, 10, S, `in_port=${p.name},arp`, `resubmit(,${INT.ARP_SPOOF})`));
      for (const ip of [...ips].sort()) int.push(f(INT.ARP_SPOOF, 2, S, `in_port=${p.name},arp,arp_spa=${ip}`, `resubmit(,${INT.MAC_SPOOF})`));
      int.push(f(INT.LOCAL_SWITCHING, 9, S, `in_port=${p.name}`, `resubmit(,${INT.MAC_SPOOF})`));
      for (const mac of [...macs].sort()) int.push(f(INT.MAC_SPOOF, 2, S, `in_port=${p.name},dl_src=${mac}`, `resubmit(,${INT.LOCAL_EGRESS})`));
    }
  }

  // Each role's flows made unique, and the last pass's array again when they are equal.
  const out: LocalFlows = {
    ports: plan.ports,
    networks: plan.networks,
    physicalBridges: plan.physicalBridges,
    dvrMac: plan.dvrMac,
    tunnelling,
    dvr,
    int: stable(s, 'int', unique(int)),
    tun: stable(s, 'tun', unique(tun)),
    phys: new Map([...phys].map(([name, fl]) => [name, stable(s, `phys:${name}`, unique(fl))])),
  };
  localMemo.set(s, out);
  return out;
}

interface LocalFlows {
  ports: OvsPlan['ports'];
  networks: OvsPlan['networks'];
  physicalBridges: OvsPlan['physicalBridges'];
  dvrMac: OvsPlan['dvrMac'];
  tunnelling: boolean;
  dvr: boolean;
  int: Flow[];
  tun: Flow[];
  phys: Map<string, Flow[]>;
}
const localMemo = new WeakMap<OvsSettings, LocalFlows>();

/** Every flow of the plan, per bridge, plus the tunnel ports br-tun needs. */
export function planFlows(plan: OvsPlan): PlannedFlows {
  const s = plan.settings;
  const tunnelling = s.tunnelTypes.length > 0 && !!s.localIp;
  const dvr = s.distributed && !!plan.dvrMac;
  const local = localFlows(plan, tunnelling, dvr);

  // ---- l2population: tunnels, unicast, ARP responder, flooding (one memoized chunk per network)
  let tunnels: TunnelEndpoint[] = [];
  const tunChunks: Array<Items<Flow>> = [];
  if (tunnelling) {
    const byId = new Map(plan.networks.map((n) => [n.id, n]));
    const chunks = new Map<string, FdbChunk>();
    let union = unions.get(s);
    if (!union) unions.set(s, (union = new TunnelUnion()));
    for (const netId of Object.keys(plan.fdb).sort()) {
      const net = byId.get(netId);
      if (!net || !isTunnelNetwork(net)) continue;
      const chunk = fdbChunk(s, net, plan.fdb[netId], union.chunks.get(netId));
      tunChunks.push(chunk.flows);
      chunks.set(netId, chunk);
    }
    tunnels = union.update(chunks);
    tunChunks.push(tunnelInFlows(tunnels));
  }

  // Frames routed by another host's DVR router: never learned, source MAC rewritten on arrival.
  const dvrChunks = dvr ? remoteDvrChunks(plan, tunnelling) : undefined;

  // The memoized chunks are unique by construction (and keyed apart from everything else by
  // table/priority); the local flows are made unique in localFlows.
  const last = lastJoined.get(s);
  const bridges: Record<string, Items<Flow>> = { [s.integrationBridge]: joinChunks([local.int, dvrChunks?.int ?? []], last?.[s.integrationBridge]) };
  // br-tun: a list per network (of blocks of peers' chunks), so a change to one peer's flows
  // makes a new list of its block, of that network's blocks and of the bridge's networks,
  // nothing per flow.
  if (tunnelling) bridges[s.tunnelBridge] = joinChunks([local.tun, ...tunChunks, dvrChunks?.tun ?? []], last?.[s.tunnelBridge]);
  for (const [name, fl] of local.phys) bridges[name] = joinChunks([fl, dvrChunks?.phys.get(name) ?? []], last?.[name]);
  lastJoined.set(s, bridges);
  return { bridges, tunnels };
}

/** Each bridge's flows as the last pass joined them: the same list again when no part changed. */
const lastJoined = new WeakMap<OvsSettings, Record<string, Items<Flow>>>();

/** br-tun t0: what arrives on each tunnel goes to its type's tunnel-to-local-VLAN table; one chunk per union of tunnels (kept while they are the same). */
const tunnelInMemo = new WeakMap<TunnelEndpoint[], Flow[]>();
function tunnelInFlows(tunnels: TunnelEndpoint[]): Flow[] {
  let flows = tunnelInMemo.get(tunnels);
  if (flows) return flows;
  const table = (t: TunnelType) => (t === 'gre' ? TUN.GRE_TUN_TO_LV : TUN.VXLAN_TUN_TO_LV);
  flows = tunnels.map((t) => cached(TUNNEL_IN, t.name, 100_000, () => f(TUN.LOCAL_SWITCHING, 1, COOKIE.base, `in_port=${t.name}`, `resubmit(,${table(t.type)})`)));
  tunnelInMemo.set(tunnels, flows);
  return flows;
}
/** A tunnel's t0 flow, the same on every host (the port is named after its type and remote address). */
const TUNNEL_IN = new Map<string, Flow>();

/**
 * The tunnels the networks' chunks need, counted per chunk: a changed chunk costs its own
 * peers, not every network's, and the union is the same array (which br-tun's t0 flows and
 * ports are memoized on) until a tunnel comes or goes. Sorted by name, whatever the history.
 */
class TunnelUnion {
  /**
   * The host's chunks of its last pass, by network (what `fdbChunk` builds on): kept per host,
   * not in a weak map by entry object, which grew an entry per host per FDB cast until a full
   * collection (every cast makes a new entry on every host of the network).
   */
  chunks: ReadonlyMap<string, FdbChunk> = new Map();
  private readonly counts = new Map<string, { tunnel: TunnelEndpoint; n: number }>();
  private list: TunnelEndpoint[] = [];

  update(chunks: ReadonlyMap<string, FdbChunk>): TunnelEndpoint[] {
    const touched = new Map<string, boolean>(); // name -> present before
    const add = (t: TunnelEndpoint, d: number) => {
      const c = this.counts.get(t.name);
      if (!touched.has(t.name)) touched.set(t.name, c !== undefined);
      if (c) c.n += d;
      else this.counts.set(t.name, { tunnel: t, n: d });
    };
    // (A network whose peers stayed keeps its tunnels array: nothing to count.)
    for (const [id, old] of this.chunks) if (chunks.get(id)?.tunnels !== old.tunnels) for (const t of old.tunnels) add(t, -1);
    for (const [id, chunk] of chunks) if (this.chunks.get(id)?.tunnels !== chunk.tunnels) for (const t of chunk.tunnels) add(t, 1);
    this.chunks = chunks;
    let changed = false;
    for (const [name, was] of touched) {
      const c = this.counts.get(name)!;
      if (c.n <= 0) this.counts.delete(name);
      if (was !== c.n > 0) changed = true;
    }
    if (changed) this.list = [...this.counts.values()].map((c) => c.tunnel).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return this.list;
  }
}
const unions = new WeakMap<OvsSettings, TunnelUnion>();

// ---- memoized chunks: a pass rebuilds only what changed since the last one. The agent keeps
// an FDB entry object (and the remote DVR MAC list) unchanged while its content is, so a
// busy host with thousands of peers pays for a network's entries only when they change.

interface FdbChunk {
  sig: string;
  /** The FDB entry it was built from (the agent keeps the object while its content is the same). */
  entry: FdbEntries[string];
  /** The network's flows: blocks of a chunk per peer, and the flood flow's (networkFlows). */
  flows: Items<Flow>;
  tunnels: TunnelEndpoint[];
}
/**
 * One peer's unicast and ARP responder flows on one network, by the peer's entry list (kept
 * while unchanged; shared by the hosts of a process, shared.ts), a record per network setting.
 */
const peerMemo = new WeakMap<FdbEntries[string]['ports'][string], Map<string, PeerRec>>();
/**
 * Records per list: one per network setting it serves. A peer's list of only the flooding
 * entry (a host whose port has not come up yet) is the same list on every network it is on,
 * so this bounds the networks of one peer, not the history (fewer made every host rebuild
 * them, and hold a tunnel endpoint per peer per network).
 */
const PEER_RECS_MAX = 256;
/** One endpoint object per tunnel, shared by every network and host that uses it. */
const tunnelEndpoints = new Map<string, TunnelEndpoint>();

function tunnelEndpoint(type: TunnelType, ip: string): TunnelEndpoint {
  return cached(tunnelEndpoints, type + ip, 100_000, () => ({ name: tunnelPortName(type, ip), type, remoteIp: ip }));
}

/**
 * One network's unicast (t20), ARP responder (t21) and flood (t22) flows and the tunnels they
 * need: a chunk per peer (chunks.ts), so a port coming up elsewhere costs its peer's few
 * flows here, not the network's thousands.
 */
function fdbChunk(s: OvsSettings, net: LocalNetwork, entry: FdbEntries[string], have: FdbChunk | undefined): FdbChunk {
  const { peerSig, sig } = netSigs(s, net);
  if (have && have.entry === entry && have.sig === sig) return have;
  const chunk: FdbChunk = { sig, entry, flows: [], tunnels: [] };
  const type = entry.network_type as TunnelType;
  if (net.network_type !== entry.network_type || !s.tunnelTypes.includes(type)) return chunk;
  const ctx: PeerContext = { s, net, sig, peerSig, type, load: `strip_vlan,load:${hex(net.segmentation_id!)}->NXM_NX_TUN_ID[]` };
  let byNet = netStates.get(s);
  if (!byNet) netStates.set(s, (byNet = new Map()));
  const prev = byNet.get(net.id);
  const state = (prev && prev.sig === sig && prev.clean && updateNet(ctx, entry, prev)) || buildNet(ctx, entry);
  byNet.set(net.id, state);
  chunk.flows = networkFlows(ctx, state, entry);
  chunk.tunnels = state.tunnels;
  return chunk;
}

/**
 * What a network's chunk and its peers' records depend on, made once per network object (a
 * pass looks up every network's chunk; the agent keeps the objects while its ports are the same,
 * and never changes one once planned).
 */
const sigMemo = new WeakMap<LocalNetwork, { s: OvsSettings; peerSig: string; sig: string }>();
function netSigs(s: OvsSettings, net: LocalNetwork): { peerSig: string; sig: string } {
  const have = sigMemo.get(net);
  if (have && have.s === s) return have;
  const peerSig = `${net.lvid}|${net.network_type}|${net.segmentation_id}|${s.arpResponder}|${s.tunnelTypes.join(',')}`;
  const made = { s, peerSig, sig: `${peerSig}|${s.localIp}` };
  sigMemo.set(net, made);
  return made;
}

/**
 * A network's peers go to blocks by a hash of their address: a change to one peer makes a
 * new list of its block's peers (a thousand peers: about 30) and of the network's blocks,
 * nothing per peer of the network, and holds no index of its own (a host has one per network).
 */
const BLOCKS = 32;
const blockOf = (ip: string) => (hashString(ip) >>> 0) % BLOCKS;

/** The network's flows: a list of its blocks' lists of peers' flows, and the flood flow. */
function networkFlows(c: PeerContext, state: NetState, entry: FdbEntries[string]): Items<Flow> {
  const changed = state.changed;
  state.changed = undefined;
  let floodChanged = false;
  if (changed && state.blocks && state.blockLists) {
    for (const ip of changed) {
      const b = blockOf(ip);
      const block: PeerRec[] = state.blocks[b];
      const at = block.findIndex((r) => r.tunnel.remoteIp === ip);
      const had = at >= 0 ? block[at] : undefined;
      const rec = state.peers.get(ip);
      if (had === rec) continue;
      if ((had?.floods ?? false) !== (rec?.floods ?? false)) floodChanged = true;
      const next = block.slice();
      if (!had) next.push(rec!);
      else if (rec) next[at] = rec;
      else next.splice(at, 1);
      state.blocks[b] = next;
      state.blockLists[b] = blockFlows(next, state.parts);
    }
  } else {
    // Built in full: the blocks in the FDB's order (peers as they came; flows are an unordered set).
    const blocks: PeerRec[][] = Array.from({ length: BLOCKS }, () => []);
    for (const ip in entry.ports) {
      const rec = state.peers.get(ip);
      if (rec) blocks[blockOf(ip)].push(rec);
    }
    state.blocks = blocks;
    state.blockLists = blocks.map((block) => blockFlows(block, state.parts));
    floodChanged = true;
  }
  if (floodChanged || !state.flood) {
    state.flood = [];
    for (const block of state.blocks) for (const r of block) if (r.floods) state.flood.push(r.tunnel.name);
  }
  const parts: Array<Items<Flow>> = state.blockLists.slice();
  if (state.flood.length) parts.push(floodFlows(c.s, c.net, c.load, state.flood));
  return (state.list = joinChunks(parts, state.list));
}

/** A block's peers' flows (a network where two peers claim a match takes each peer's own part: built in full each time). */
function blockFlows(block: readonly PeerRec[], parts: NetState['parts']): Items<Flow> {
  return joinChunks(parts ? block.map((r) => parts.get(r.tunnel.remoteIp) ?? r.flows) : block.map((r) => r.flows));
}

interface PeerContext {
  s: OvsSettings;
  net: LocalNetwork;
  sig: string;
  /** What a peer's record depends on besides its list (not the host's own address). */
  peerSig: string;
  type: TunnelType;
  load: string;
}
interface PeerRec {
  /** The peer's entry list it was made from. */
  list: PeerList;
  sig: string;
  tunnel: TunnelEndpoint;
  floods: boolean;
  flows: Flow[];
}
type PeerList = FdbEntries[string]['ports'][string];

/**
 * A network's chunk as the agent last built it: each peer's record (with the entry list it was
 * made from) and the flows it contributes. When two peers held one match (a port moving
 * between hosts: the first peer's wins) the state is not `clean`, and the next change rebuilds
 * the network in full; otherwise a change costs the peers it names.
 */
interface NetState {
  sig: string;
  peers: Map<string, PeerRec>;
  /** The flows a peer contributes when not all of its record's (another peer held a match first; not `clean`). */
  parts?: Map<string, Flow[]>;
  /** Entry lists of addresses that contribute nothing (this host's own, not IPv4). */
  skipped: Map<string, PeerList>;
  /** No match was held by two peers: a change then costs the peers it names. */
  clean: boolean;
  tunnels: TunnelEndpoint[];
  /** The FDB entry it was last built or updated from. */
  entry?: FdbEntries[string];
  /** The peers an update changed since the flows were last assembled (undefined: built in full). */
  changed?: string[];
  /** The peers' records by block (networkFlows), the flooding peers' tunnels, and the flows as last assembled. */
  blocks?: PeerRec[][];
  /** Each block's flows, made when the block is (a pass looks up no block it did not change). */
  blockLists?: Array<Items<Flow>>;
  flood?: string[];
  list?: Items<Flow>;
}
const netStates = new WeakMap<OvsSettings, Map<string, NetState>>();

function peerRecord(c: PeerContext, ip: string, list: PeerList): PeerRec | undefined {
  if (ip === c.s.localIp || !isIpv4(ip)) return undefined;
  let recs = peerMemo.get(list);
  if (!recs) peerMemo.set(list, (recs = new Map()));
  let peer = recs.get(c.peerSig);
  if (peer) return peer;
  const tunnel = tunnelEndpoint(c.type, ip);
  const floods = list.some(([mac, addr]) => mac === FLOODING_ENTRY[0] && addr === FLOODING_ENTRY[1]);
  recs.set(c.peerSig, (peer = { list, sig: c.peerSig, tunnel, floods, flows: sharedPeerFlows(c.s, c.net, list, c.load, tunnel.name) }));
  if (recs.size > PEER_RECS_MAX) recs.delete(recs.keys().next().value!);
  for (const f of peer.flows) claim(f.match, peer);
  return peer;
}

/**
 * The records whose flows hold each match, for every host of the process (records are shared):
 * a host finds whether another of its peers holds a match by asking which records claim it and
 * whether one of them is that peer's record on this host. A map of its own per host and
 * network held an entry per flow (two per peer), the most of what a host's FDB state cost.
 * Weak: a record no host uses any more goes.
 */
const CLAIMS = new Map<string, Array<WeakRef<PeerRec>>>();
/** Claims made since the last sweep of matches no live record holds (ports long gone). */
let claimsSinceSweep = 0;

function claim(match: string, rec: PeerRec): void {
  if (++claimsSinceSweep > Math.max(100_000, CLAIMS.size)) {
    claimsSinceSweep = 0;
    for (const [m, refs] of CLAIMS) if (refs.every((r) => r.deref() === undefined)) CLAIMS.delete(m);
  }
  let refs = CLAIMS.get(match);
  if (!refs) CLAIMS.set(match, (refs = []));
  else if (refs.length >= 4) {
    refs = refs.filter((r) => r.deref() !== undefined);
    CLAIMS.set(match, refs);
  }
  refs.push(new WeakRef(rec));
}

/** Another peer of `peers` than `ip` holds `match` (its record there has a flow with it). */
function heldByAnother(peers: Map<string, PeerRec>, ip: string, match: string): boolean {
  for (const ref of CLAIMS.get(match) ?? []) {
    const r = ref.deref();
    if (r && r.tunnel.remoteIp !== ip && peers.get(r.tunnel.remoteIp) === r) return true;
  }
  return false;
}

function buildNet(c: PeerContext, entry: FdbEntries[string]): NetState {
  const state: NetState = { sig: c.sig, peers: new Map(), skipped: new Map(), clean: true, tunnels: [] };
  for (const ip in entry.ports) {
    const list = entry.ports[ip];
    const rec = peerRecord(c, ip, list);
    if (!rec) {
      state.skipped.set(ip, list);
      continue;
    }
    // The first peer to hold a match keeps it (the peers added so far are the ones before).
    let part: Flow[] | undefined;
    for (let i = 0; i < rec.flows.length; i++) {
      if (!heldByAnother(state.peers, ip, rec.flows[i].match)) part?.push(rec.flows[i]);
      else part ??= rec.flows.slice(0, i);
    }
    if (part) (state.clean = false), (state.parts ??= new Map()).set(ip, part);
    state.peers.set(ip, rec);
    state.tunnels.push(rec.tunnel);
  }
  reflects(state, entry);
  return state;
}

/**
 * Which peers the FDB casts changed since an entry a pass built from: by the entry object they
 * made (agent.ts applyFdb), the entry they started from and the peers they named. A network's
 * state built from that entry then looks only at those peers, not at every peer of the network.
 */
const fdbChanges = new WeakMap<FdbEntries[string], { base: FdbEntries[string]; ips: string[] }>();

/** `entry` was made from `base` by a cast naming `ips` (several casts between passes add up). */
export function noteFdbChange(entry: FdbEntries[string], base: FdbEntries[string], ips: string[]): void {
  const prior = fdbChanges.get(base);
  fdbChanges.set(entry, prior ? { base: prior.base, ips: [...prior.ips, ...ips] } : { base, ips });
}

/** The state now reflects `entry`: later casts count their changes from it. */
function reflects(state: NetState, entry: FdbEntries[string]): void {
  state.entry = entry;
  fdbChanges.delete(entry);
}

/** The changed peers only, into `prev` (which it takes over); undefined when a match would be claimed twice (then: build in full). */
function updateNet(c: PeerContext, entry: FdbEntries[string], prev: NetState): NetState | undefined {
  const changed: Array<{ ip: string; list: PeerList; rec: PeerRec | undefined }> = [];
  let tunnelsChanged = false;
  const consider = (ip: string, list: PeerList) => {
    const had = prev.peers.get(ip);
    if ((had ? had.list : prev.skipped.get(ip)) === list) return;
    const rec = peerRecord(c, ip, list);
    if (!had !== !rec) tunnelsChanged = true;
    changed.push({ ip, list, rec });
  };
  const gone: string[] = [];
  const delta = fdbChanges.get(entry);
  if (delta && prev.entry !== undefined && delta.base === prev.entry) {
    // The casts since the entry this state reflects name their peers: only those.
    for (const ip of new Set(delta.ips)) {
      const list = entry.ports[ip];
      if (list) consider(ip, list);
      else if (prev.peers.has(ip) || prev.skipped.has(ip)) gone.push(ip);
    }
  } else {
    let count = 0;
    for (const ip in entry.ports) {
      count++;
      consider(ip, entry.ports[ip]);
    }
    if (count !== prev.peers.size + prev.skipped.size + changed.filter((x) => !prev.peers.has(x.ip) && !prev.skipped.has(x.ip)).length) {
      for (const ip of [...prev.peers.keys(), ...prev.skipped.keys()]) if (!(ip in entry.ports)) gone.push(ip);
    }
  }
  for (const ip of gone) {
    if (prev.peers.delete(ip)) tunnelsChanged = true;
    prev.skipped.delete(ip);
  }
  for (const { ip, list, rec } of changed) {
    if (rec) {
      prev.peers.set(ip, rec);
      prev.skipped.delete(ip);
    } else {
      prev.peers.delete(ip);
      prev.skipped.set(ip, list);
    }
  }
  // Then no match may be held twice (prev is dropped when one is: the caller builds afresh).
  for (const { ip, rec } of changed) if (rec) for (const f of rec.flows) if (heldByAnother(prev.peers, ip, f.match)) return undefined;
  if (tunnelsChanged) prev.tunnels = [...prev.peers.values()].map((p) => p.tunnel);
  prev.changed = [...(prev.changed ?? []), ...changed.map((x) => x.ip), ...gone];
  reflects(prev, entry);
  return prev;
}

/**
 * The network's flood flow (t22) to its flooding peers, outputs sorted: the same flow text
 * whatever order the FDB came in (a restarted agent gets the server's). Kept while the
 * peers are the same (most changes add or remove a port of a peer already there).
 */
const floodMemo = new WeakMap<OvsSettings, Map<string, { key: string; names: string[]; flows: Flow[] }>>();
function floodFlows(s: OvsSettings, net: LocalNetwork, load: string, names: string[]): Flow[] {
  let byNet = floodMemo.get(s);
  if (!byNet) floodMemo.set(s, (byNet = new Map()));
  const key = `${net.lvid}|${load}`;
  const have = byNet.get(net.id);
  if (have && have.key === key && (have.names === names || (have.names.length === names.length && have.names.every((n, i) => n === names[i])))) return have.flows;
  const outputs = [...names].sort().map((t) => `output:${t}`).join(',');
  const flows = [f(TUN.FLOOD_TO_TUN, 1, COOKIE.l2pop, `dl_vlan=${net.lvid}`, `${load},${outputs}`)];
  byNet.set(net.id, { key, names, flows });
  return flows;
}

/**
 * A peer's flows on a network are the same text on every host that has the network (local
 * VLANs follow the segmentation id; the tunnel port is named after the peer's address): in one
 * process (the emulated cloud) its hosts share one array of flow objects, which validate then
 * checks once, not once per host, and which costs memory once.
 */
// A bounded plain map, not shared.ts's ContentMemo: a WeakRef per entry measured a third
// slower here (bench:ovs-flows at 1000 peers), and clearing only costs a rebuild.
const SHARED_PEER_FLOWS = new Map<string, Flow[]>();
const SHARED_PEER_FLOWS_MAX = 200_000;
function sharedPeerFlows(s: OvsSettings, net: LocalNetwork, list: FdbEntries[string]['ports'][string], load: string, tunnel: string): Flow[] {
  let key = `${net.lvid}|${load}|${s.arpResponder}|${tunnel}`;
  for (const [mac, addr] of list) key += `|${mac} ${addr}`;
  return cached(SHARED_PEER_FLOWS, key, SHARED_PEER_FLOWS_MAX, () => peerFlows(s, net, list, load, tunnel));
}

function peerFlows(s: OvsSettings, net: LocalNetwork, list: FdbEntries[string]['ports'][string], load: string, tunnel: string): Flow[] {
  const P = COOKIE.l2pop;
  const ucast = new Map<string, Flow>();
  const arp = new Map<string, Flow>();
  for (const [mac, addr] of list) {
    if (mac === FLOODING_ENTRY[0] && addr === FLOODING_ENTRY[1]) continue;
    ucast.set(mac, f(TUN.UCAST_TO_TUN, 2, P, `dl_vlan=${net.lvid},dl_dst=${mac}`, `${load},output:${tunnel}`));
    if (s.arpResponder && addr && isIpv4(addr) && !addr.includes('/'))
      arp.set(addr, f(TUN.ARP_RESPONDER, 1, P, `arp,dl_vlan=${net.lvid},arp_tpa=${addr}`, arpResponderActions(mac, addr)));
  }
  return [...ucast.values(), ...arp.values()];
}

interface RemoteDvrChunks {
  key: string;
  int: Flow[];
  tun: Flow[];
  phys: Map<string, Flow[]>;
}
const dvrMemo = new WeakMap<string[], RemoteDvrChunks>();

/** Per remote DVR MAC: br-int t0 (to DVR_TO_SRC_MAC), br-tun t9 and br-phys t3 (never learned). */
function remoteDvrChunks(plan: OvsPlan, tunnelling: boolean): RemoteDvrChunks {
  const s = plan.settings;
  const key = `${tunnelling}|${s.intPeerPatch}|${s.tunPeerPatch}|${plan.physicalBridges.map((b) => `${b.bridge}:${b.intPatch}:${b.phyPatch}`).join(',')}`;
  const have = dvrMemo.get(plan.remoteDvrMacs);
  if (have && have.key === key) return have;
  const D = COOKIE.dvr;
  const out: RemoteDvrChunks = { key, int: [], tun: [], phys: new Map(plan.physicalBridges.map((b) => [b.bridge, []])) };
  for (const mac of new Set(plan.remoteDvrMacs)) {
    const macFlows = cached(DVR_MAC_FLOWS, `${key}|${mac}`, 100_000, () => {
      const made: { int: Flow[]; tun: Flow[]; phys: Flow[] } = { int: [], tun: [], phys: [] };
      if (tunnelling) {
        made.int.push(f(INT.LOCAL_SWITCHING, 2, D, `in_port=${s.intPeerPatch},dl_src=${mac}`, `resubmit(,${INT.DVR_TO_SRC_MAC})`));
        made.tun.push(f(TUN.DVR_NOT_LEARN, 1, D, `dl_src=${mac}`, `output:${s.tunPeerPatch}`));
      }
      for (const b of plan.physicalBridges) {
        made.int.push(f(INT.LOCAL_SWITCHING, 4, D, `in_port=${b.intPatch},dl_src=${mac}`, `resubmit(,${INT.DVR_TO_SRC_MAC_PHYSICAL})`));
        made.phys.push(f(PHYS.DVR_NOT_LEARN_PHYSICAL, 2, D, `dl_src=${mac}`, `output:${b.phyPatch}`));
      }
      return made;
    });
    out.int.push(...macFlows.int);
    out.tun.push(...macFlows.tun);
    plan.physicalBridges.forEach((b, i) => out.phys.get(b.bridge)!.push(macFlows.phys[i]));
  }
  dvrMemo.set(plan.remoteDvrMacs, out);
  return out;
}

/**
 * A remote DVR MAC's flows, the same on every host with the same bridge layout: the hosts of
 * an emulated cloud share them (each host lists every other host's MAC).
 */
const DVR_MAC_FLOWS = new Map<string, { int: Flow[]; tun: Flow[]; phys: Flow[] }>();

/**
 * The flows a pass builds afresh (skeleton, per port, DVR interfaces) come out in the same
 * order each time: when they equal the last pass's, that array is returned, so diff and
 * validate skip it by identity (host/chunks.ts); otherwise equal flows keep their objects.
 */
const stableMemo = new WeakMap<OvsSettings, Map<string, Flow[]>>();
function stable(owner: OvsSettings, role: string, flows: Flow[]): Flow[] {
  let byRole = stableMemo.get(owner);
  if (!byRole) stableMemo.set(owner, (byRole = new Map()));
  const prev = byRole.get(role);
  if (prev) {
    let same = prev.length === flows.length;
    for (let i = 0; i < flows.length && i < prev.length; i++) {
      if (sameFlow(prev[i], flows[i])) flows[i] = prev[i];
      else same = false;
    }
    if (same) return prev;
  }
  byRole.set(role, flows);
  return flows;
}

const sameFlow = (a: Flow, b: Flow) => a.table === b.table && a.priority === b.priority && a.cookie === b.cookie && a.match === b.match && a.actions === b.actions;

/** One flow per (table, priority, match), as OVS keeps them: a later one replaces an earlier one in place. */
function unique(flows: Flow[]): Flow[] {
  const at = new Map<string, number>();
  const out: Flow[] = [];
  for (const fl of flows) {
    const k = flowKey(fl);
    const i = at.get(k);
    if (i === undefined) {
      at.set(k, out.length);
      out.push(fl);
    } else out[i] = fl;
  }
  return out;
}
