// neutron-openvswitch-agent: wires the ports others plug on br-int (local VLAN, tag, flows),
// keeps br-tun's tunnels and l2population flows, br-phys VLAN translation, DVR MAC rewrites
// and anti-spoofing, and (hybrid plugging) the iptables firewall of the instance ports.
//
// Level-triggered: every pass computes the whole 'ovs' (and 'firewall') fragment from what
// the host has and what the server says now. A pass asks the server only about this host's
// ports and networks (get_devices_details_list, get_fdb_entries,
// security_group_info_for_devices). l2population casts between passes update the cached FDB
// and trigger a cheap pass without any call, as do member updates that carry their groups'
// addresses or the change to them (only the ipsets are made again; a change that does not
// reach the members the server announced fetches the firewall's view); a rule change
// fetches the firewall's view; a port update or deletion, or a port plugged or unplugged on
// br-int, makes a devices pass (the ports' details and the firewall's view again, the FDB
// only when the networks of the host's ports changed: casts keep it current otherwise, as
// in Neutron, where a port event never refetches the FDB); every other cast and the periodic
// resync trigger a full pass, which rebuilds the FDB from get_fdb_entries (a missed cast
// heals there).

import type { OvsAgentConfig } from '../../config/agents.js';
import { emptyHost, setSysctl } from '../../host/build.js';
import { intToPhysPatch, physToIntPatch } from '../../host/names.js';
import type { HostState, IpSet, OvsPort } from '../../host/state.js';
import type { MemberChange, MemberIps } from '../../rpc/members.js';
import { AGENT_TOPICS, type AgentMethods, type DeviceDetails, type FdbEntries, type SecurityGroupInfo } from '../../rpc/messages.js';
import { Agent, configOptions, type AgentOptions } from '../agent.js';
import { noteFdbChange, type LocalNetwork, type OvsPlan, type OvsSettings, type WiredPort } from './flows.js';
import { firewallIpsets, hybridFirewall, zonesFromRaw, type HybridFirewall } from './firewall.js';
import { ovsFragment } from './fragment.js';
import { LocalVlanMap } from './local_vlan.js';
import { applyMemberChange, canonicalMembers } from './members.js';
import { heldPeerList, internPeerList } from './shared.js';

export const OVS_AGENT_TYPE = 'Open vSwitch agent';
export const OVS_AGENT_BINARY = 'neutron-openvswitch-agent';

export interface OvsAgentOptions extends Omit<AgentOptions, 'host'> {
  /** `loadOvsAgentConfig(...)`. */
  config: OvsAgentConfig;
  /** Default: the config's `host`. */
  host?: string;
}

/** Neutron's check (ovs_neutron_agent.py): DVR over tunnels needs l2population. */
export function ovsSettings(c: OvsAgentConfig): OvsSettings {
  const tunnelTypes = [...c.agent.tunnel_types];
  const distributed = c.agent.enable_distributed_routing;
  if (distributed && tunnelTypes.length && !c.agent.l2_population)
    throw new Error('DVR deployments for VXLAN/GRE/Geneve underlays require L2-pop to be enabled, in both the Agent and Server side.');
  if (tunnelTypes.length && !c.ovs.local_ip) throw new Error(`[ovs] local_ip is required with tunnel_types = ${tunnelTypes.join(',')}`);
  return {
    integrationBridge: c.ovs.integration_bridge,
    tunnelBridge: c.ovs.tunnel_bridge,
    intPeerPatch: c.ovs.int_peer_patch_port,
    tunPeerPatch: c.ovs.tun_peer_patch_port,
    localIp: c.ovs.local_ip,
    tunnelTypes,
    bridgeMappings: c.ovs.bridge_mappings,
    datapathType: c.ovs.datapath_type,
    distributed,
    l2pop: c.agent.l2_population,
    // DVR forces the ARP responder on (ovs_dvr_neutron_agent.py).
    arpResponder: c.agent.arp_responder || (distributed && tunnelTypes.length > 0),
    // The OVS native firewall does its own anti-spoofing; with any other driver the agent does it.
    preventArpSpoofing: c.agent.prevent_arp_spoofing && c.securitygroup.firewall_driver !== 'openvswitch',
    vxlanUdpPort: c.agent.vxlan_udp_port,
    dontFragment: c.agent.dont_fragment,
  };
}

/** What a pass learned from the server, kept for the cheap passes l2population casts trigger. */
interface Snapshot {
  plugged: Array<{ name: string; type: OvsPort['type']; ifaceId: string }>;
  details: Map<string, DeviceDetails>;
  sgInfo?: SecurityGroupInfo;
}

/** How long an l2population or group-membership cast waits for others of its burst (ms). */
const FDB_GATHER_MS = 20;

export class OvsAgent extends Agent {
  readonly agentType = OVS_AGENT_TYPE;
  readonly binary = OVS_AGENT_BINARY;
  readonly topic = 'N/A';
  protected readonly serveBase = AGENT_TOPICS.ovs;

  readonly config: OvsAgentConfig;
  readonly settings: OvsSettings;
  /** This host's DVR MAC, once the server gave it. */
  dvrMac?: string;
  private dvrMacs?: Array<{ host: string; mac_address: string }>;
  /** When the DVR MAC list was last fetched (the casts keep it current in between). */
  private dvrMacsAt = 0;
  private readonly vlans = new LocalVlanMap();
  private restored = false;
  private fdb: FdbEntries = {};
  private snapshot?: Snapshot;
  private fullPending = true;
  /** A port event: the next pass looks at the ports again (a full pass does anyway). */
  private devicesPending = false;
  /** The networks of the wired ports when the FDB was last fetched (sorted ids). */
  private fdbNetworks = '';
  /** A security group cast arrived: the next pass fetches the firewall's view again. */
  private firewallPending = false;
  /** An FDB or DVR MAC cast changed what the flows are built from (a full pass rebuilds them anyway). */
  private flowsPending = true;
  /** The mapped physical bridges that existed at the last full pass (others' fragments change only with one). */
  private physicalBridges: OvsPlan['physicalBridges'] = [];
  /** Member updates since the last pass, in order per group: members whole or a change. */
  private memberUpdates = new Map<string, MemberUpdate[]>();
  /** Ports reported up (so a pass reports only news, and down what left br-int). */
  private readonly reportedUp = new Set<string>();
  private pluggedSignatures = new Map<string, string>();
  private pluggedRecords = new Map<string, object>();
  private unsubscribe?: () => void;
  private missingBridges = new Set<string>();
  /** Ports wired in the last pass (tests and `devices` in report_state). */
  devices = 0;

  constructor(opts: OvsAgentOptions) {
    super({ ...configOptions(opts.config), ...opts, host: opts.host ?? opts.config.host });
    this.config = opts.config;
    this.settings = ovsSettings(opts.config);
  }

  protected configurations(): Record<string, unknown> {
    const s = this.settings;
    return {
      bridge_mappings: Object.fromEntries(s.bridgeMappings.map((m) => [m.physnet, m.bridge])),
      tunnel_types: s.tunnelTypes,
      tunneling_ip: s.localIp ?? '',
      l2_population: s.l2pop,
      arp_responder_enabled: s.arpResponder,
      enable_distributed_routing: s.distributed,
      in_distributed_mode: s.distributed,
      devices: this.devices,
      integration_bridge: s.integrationBridge,
      tunnel_bridge: s.tunnelBridge,
      datapath_type: s.datapathType,
      ovs_hybrid_plug: this.config.securitygroup.firewall_driver === 'iptables_hybrid',
      ovs_capabilities: [],
      extensions: this.config.agent.extensions,
      log_agent_heartbeats: false,
    };
  }

  override async start(): Promise<void> {
    // The OVSDB monitor: a port plugged or unplugged on br-int by another owner means a pass.
    this.unsubscribe ??= this.composer.onChange((owner, state) => {
      if (owner === 'ovs' || owner === 'firewall') return;
      // The same ports record as that owner's last: nothing plugged or unplugged (no text made).
      const ports = state.ovs.bridges[this.settings.integrationBridge]?.ports;
      if (ports !== undefined && this.pluggedRecords.get(owner) === ports) return;
      if (ports !== undefined) this.pluggedRecords.set(owner, ports);
      const sig = pluggedSignature(state, this.settings.integrationBridge);
      if (sig === (this.pluggedSignatures.get(owner) ?? '')) return;
      this.pluggedSignatures.set(owner, sig);
      this.requestDevicesPass();
    });
    await super.start();
  }

  override async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await super.stop();
  }

  /** Any request but a port's, an l2population or a security group cast's is a full pass. */
  override requestSync(): void {
    this.fullPending = true;
    super.requestSync();
  }

  private requestDevicesPass(): void {
    this.devicesPending = true;
    super.requestSync();
  }

  protected override handlers() {
    return {
      port_update: () => this.requestDevicesPass(),
      port_delete: () => this.requestDevicesPass(),
      // l2population: the cached FDB changes now; the pass waits a moment so the casts of
      // a burst (hundreds of ports coming up elsewhere) make one pass, not one each.
      add_fdb_entries: (a: AgentMethods['add_fdb_entries']) => {
        applyFdb(this.fdb, a.fdb_entries, true);
        this.flowsPending = true;
        super.requestSync(this.gatherMs(FDB_GATHER_MS));
      },
      remove_fdb_entries: (a: AgentMethods['remove_fdb_entries']) => {
        applyFdb(this.fdb, a.fdb_entries, false);
        this.flowsPending = true;
        super.requestSync(this.gatherMs(FDB_GATHER_MS));
      },
      // Security groups (as Neutron's firewall refresh): only the firewall's view is fetched
      // again, not the devices and the FDB.
      security_groups_member_updated: (a: AgentMethods['security_groups_member_updated']) => {
        if (a.member_ips || a.member_changes) {
          for (const [g, ips] of Object.entries(a.member_ips ?? {})) this.memberUpdates.set(g, [{ ips }]);
          for (const [g, change] of Object.entries(a.member_changes ?? {})) this.memberUpdates.set(g, [...(this.memberUpdates.get(g) ?? []), { change }]);
        } else this.firewallPending = true;
        super.requestSync(this.gatherMs(FDB_GATHER_MS));
      },
      security_groups_rule_updated: () => {
        this.firewallPending = true;
        super.requestSync();
      },
      // Hosts joining come in bursts (a cloud starting): one pass for the burst.
      dvr_mac_address_update: (a: AgentMethods['dvr_mac_address_update']) => {
        this.dvrMacs = a.dvr_macs;
        this.dvrMacsAt = Date.now();
        this.flowsPending = true;
        super.requestSync(this.gatherMs(FDB_GATHER_MS));
      },
    };
  }

  protected async sync(): Promise<void> {
    const members = this.memberUpdates;
    this.memberUpdates = new Map();
    const flows = this.flowsPending;
    this.flowsPending = false;
    try {
      await this.pass(members, flows);
    } catch (err) {
      // Nothing was applied: keep the updates for the next pass, before any newer ones.
      for (const [g, updates] of members) {
        const newer = this.memberUpdates.get(g) ?? [];
        this.memberUpdates.set(g, newer[0] && 'ips' in newer[0] ? newer : [...updates, ...newer]);
      }
      this.flowsPending ||= flows;
      this.fullPending = true; // what the failed pass was asked to look at is not known to be seen
      throw err;
    }
  }

  /** One pass; `flowsPending`: the FDB or DVR MACs changed since the last one. */
  private async pass(members: Map<string, MemberUpdate[]>, flowsPending: boolean): Promise<void> {
    const s = this.settings;
    const full = this.fullPending || !this.snapshot;
    const devices = full || this.devicesPending;
    this.fullPending = false;
    this.devicesPending = false;
    const firewallRefresh = this.firewallPending;
    this.firewallPending = false;
    // Whether the firewall's view came from the server in this pass.
    let fetched = devices || firewallRefresh;
    if (s.distributed && !this.dvrMac) this.dvrMac = (await this.call('get_dvr_mac_address_by_host', { host: this.host })).mac_address;
    // The list covers every host: fetched at start and once per resync interval, not per pass.
    const stale = Date.now() - this.dvrMacsAt > (this.opts.resyncInterval || 60) * 1000;
    if (s.distributed && (!this.dvrMacs || (full && stale))) {
      this.dvrMacs = await this.call('get_dvr_mac_address_list', {});
      this.dvrMacsAt = Date.now();
    }

    // The VLANs already in use on the host.
    if (!this.restored) {
      this.vlans.restore(await this.composer.current(), s.integrationBridge);
      this.restored = true;
    }
    let snap = this.snapshot;
    if (devices || !snap) {
      // What others plugged on br-int (as OVSDB would list it) and which mapped bridges exist.
      const others = this.composer.desired('ovs');
      this.physicalBridges = this.mappedBridges(others);
      const plugged = pluggedPorts(others, s.integrationBridge);
      const ids = [...new Set(plugged.map((p) => p.ifaceId))];
      const details = new Map<string, DeviceDetails>();
      if (ids.length) for (const d of await this.call('get_devices_details_list', { devices: ids, host: this.host })) details.set(d.device, d);
      // The FDB covers the networks of the host's ports (and of their distributed routers,
      // whose qr- ports are wired here too): the same networks, the same FDB, kept by casts.
      const nets = [...new Set([...details.values()].map((d) => d.network_id))].sort().join(',');
      if (s.l2pop && s.tunnelTypes.length && (full || nets !== this.fdbNetworks)) {
        this.fdb = keepUnchanged(this.fdb, await this.call('get_fdb_entries', { host: this.host }));
        this.fdbNetworks = nets;
      }
      // Every wired port: trusted (network:*) ones get their ACCEPT rules, as Neutron's do.
      const sgInfo = this.firewallEnabled() && details.size ? await this.firewallView([...details.keys()]) : undefined;
      snap = { plugged, details, sgInfo };
      this.snapshot = snap;
    } else if (firewallRefresh && this.firewallEnabled() && snap.details.size) {
      snap = { ...snap, sgInfo: await this.firewallView([...snap.details.keys()]) };
      this.snapshot = snap;
    } else if (members.size && snap.sgInfo) {
      // Member updates with the addresses: the groups this host's rules name get them. A
      // change that does not lead to the members the server announced (digest) means this
      // host's list went its own way: the view is fetched again.
      const was = snap.sgInfo.sg_member_ips;
      let next: typeof was | undefined;
      let diverged = false;
      for (const [g, updates] of members) {
        if (!was[g]) continue;
        let cur: MemberIps | undefined = was[g];
        for (const u of updates) cur = 'ips' in u ? canonicalMembers(u.ips) : cur && applyMemberChange(cur, u.change);
        if (!cur) diverged = true;
        else if (cur !== was[g]) (next ??= { ...was })[g] = cur;
      }
      if (diverged) {
        snap = { ...snap, sgInfo: await this.firewallView([...snap.details.keys()]) };
        fetched = true;
      } else if (next) snap = { ...snap, sgInfo: { ...snap.sgInfo, sg_member_ips: next } };
      this.snapshot = snap;
    }
    // What a fetch above raced with is older or newer than it: fetch again to be sure.
    if (fetched && this.memberUpdates.size) {
      this.memberUpdates.clear();
      this.firewallPending = true;
      super.requestSync(this.gatherMs(FDB_GATHER_MS));
    }

    // The flows and ports: a pass for security group members only keeps them as they are.
    if (devices || flowsPending) this.composer.setFragment('ovs', ovsFragment(this.plan(snap)));
    // The firewall depends on the security group view only: an l2population pass keeps it.
    if (this.firewallEnabled() && (!this.lastFirewall || this.lastFirewall.info !== snap.sgInfo))
      this.composer.setFragment('firewall', await this.firewallFragment(snap.sgInfo));
    await this.composer.reconcile();
    if (devices) await this.reportDevices(this.lastPorts);
  }

  /** Local VLANs, wired ports, FDB and DVR MACs: what the OVS fragment is built from. */
  private plan(snap: Snapshot): OvsPlan {
    // The same ports and networks (objects) while the devices are: the flow builder keeps
    // the flows of the host's own ports on them (a pass for an FDB change makes none).
    const retained = this.syncs > 0;
    let kept = this.planned;
    if (!kept || kept.plugged !== snap.plugged || kept.details !== snap.details || kept.retained !== retained) {
      const nets = new Map<string, LocalNetwork>();
      for (const d of snap.details.values()) {
        if (nets.has(d.network_id)) continue;
        nets.set(d.network_id, { id: d.network_id, lvid: 0, network_type: d.network_type, physical_network: d.physical_network, segmentation_id: d.segmentation_id });
      }
      // Not on the first pass: VLANs restored from the host belong to ports that the other
      // agents of a restarting host may not have declared yet.
      if (retained) this.vlans.retain(new Set(nets.keys()));
      for (const n of nets.values()) n.lvid = this.vlans.allocate(n.id, n.segmentation_id ?? undefined);
      const ports: WiredPort[] = snap.plugged.map((p) => {
        const details = snap!.details.get(p.ifaceId);
        return { name: p.name, type: p.type, ifaceId: p.ifaceId, details, network: details && nets.get(details.network_id) };
      });
      kept = this.planned = { plugged: snap.plugged, details: snap.details, retained, ports, networks: [...nets.values()] };
    }
    const { ports, networks } = kept;
    const plan: OvsPlan = {
      settings: this.settings,
      ports,
      networks,
      fdb: this.fdb,
      dvrMac: this.dvrMac,
      remoteDvrMacs: this.remoteDvrMacs(),
      physicalBridges: this.physicalBridges,
    };
    this.devices = ports.filter((p) => p.details).length;
    this.lastPorts = ports;
    return plan;
  }

  /** The ports wired by the last plan (a full pass reports them). */
  private lastPorts: WiredPort[] = [];
  /** What the last plan made of a snapshot's devices. */
  private planned?: { plugged: Snapshot['plugged']; details: Snapshot['details']; retained: boolean; ports: WiredPort[]; networks: LocalNetwork[] };

  /** The bridge_mappings bridges that exist on the host (the operator makes them). */
  private mappedBridges(others: HostState): OvsPlan['physicalBridges'] {
    const out: OvsPlan['physicalBridges'] = [];
    for (const m of this.settings.bridgeMappings) {
      if (!others.ovs.bridges[m.bridge]) {
        if (!this.missingBridges.has(m.bridge))
          console.error(`${this.binary} on ${this.host}: bridge ${m.bridge} for physical network ${m.physnet} does not exist (bridge_mappings); its networks are not wired`);
        this.missingBridges.add(m.bridge);
        continue;
      }
      out.push({ physnet: m.physnet, bridge: m.bridge, intPatch: intToPhysPatch(m.bridge), phyPatch: physToIntPatch(m.bridge) });
    }
    return out;
  }

  private remoteMacs: { from?: unknown; own?: string; list: string[] } = { list: [] };

  /** Every other host's DVR MAC; the same array while the list is the same (the flow builder memoizes on it). */
  private remoteDvrMacs(): string[] {
    const r = this.remoteMacs;
    if (r.from === this.dvrMacs && r.own === this.dvrMac) return r.list;
    const list = (this.dvrMacs ?? []).filter((m) => m.host !== this.host && m.mac_address !== this.dvrMac).map((m) => m.mac_address).sort();
    const same = list.length === r.list.length && list.every((m, i) => m === r.list[i]);
    this.remoteMacs = { from: this.dvrMacs, own: this.dvrMac, list: same ? r.list : list };
    return this.remoteMacs.list;
  }

  /** security_group_info_for_devices, its members kept as members.ts shares them (a change then applies once per process). */
  private async firewallView(devices: string[]): Promise<SecurityGroupInfo> {
    const info = await this.call('security_group_info_for_devices', { devices });
    const sg_member_ips = Object.fromEntries(Object.entries(info.sg_member_ips).map(([g, m]) => [g, canonicalMembers(m)]));
    return { ...info, sg_member_ips };
  }

  private firewallEnabled(): boolean {
    const fw = this.config.securitygroup;
    return fw.enable_security_group && fw.firewall_driver === 'iptables_hybrid';
  }

  /** One update_device_list for the ports wired now and not reported yet, and down for those gone or admin-down. */
  private async reportDevices(ports: WiredPort[]): Promise<void> {
    const here = new Set<string>();
    const up: string[] = [];
    const down: string[] = [];
    for (const p of ports) {
      const d = p.details;
      if (!d) continue;
      here.add(d.device);
      if (!d.admin_state_up) {
        if (d.status === 'ACTIVE') down.push(d.device);
        this.reportedUp.delete(d.device);
        continue;
      }
      if (d.status === 'ACTIVE' && this.reportedUp.has(d.device)) continue;
      if (d.status !== 'ACTIVE') up.push(d.device);
      else this.reportedUp.add(d.device);
    }
    for (const dev of this.reportedUp) if (!here.has(dev)) down.push(dev);
    if (!up.length && !down.length) return;
    const r = await this.call('update_device_list', { devices_up: up, devices_down: down, host: this.host });
    for (const dev of r.devices_up) this.reportedUp.add(dev);
    for (const dev of down) this.reportedUp.delete(dev);
  }

  /** The last firewall built: the security group view it came from, and (with ipsets) the ports and rules it was for. */
  private lastFirewall?: { info: SecurityGroupInfo | undefined; shape?: string; fw: Omit<HybridFirewall, 'zones'>; state?: HostState };

  /** Conntrack zone per port, kept from pass to pass (recovered from the raw table after a restart). */
  private zones?: Map<string, number>;

  /** The hybrid iptables firewall of the ports here (the 'firewall' fragment). */
  private async firewallFragment(info: SecurityGroupInfo | undefined): Promise<HostState> {
    if (!this.zones) {
      const raw = (await this.composer.current()).namespaces['']?.iptables.raw;
      this.zones = raw ? zonesFromRaw(raw) : new Map();
    }
    const view = info ?? { devices: {}, security_groups: {}, sg_member_ips: {} };
    const enableIpset = this.config.securitygroup.enable_ipset;
    // With ipsets, the same ports and rules give the same chains: a member change (the
    // common refresh: a port came or went elsewhere) only makes the sets again.
    // (A member update keeps the view's devices and rules objects: no need to spell them out.)
    const last = this.lastFirewall;
    const sameObjects = !!last?.info && last.info.devices === view.devices && last.info.security_groups === view.security_groups;
    const shape = !enableIpset ? undefined : sameObjects ? last!.shape : JSON.stringify([view.devices, view.security_groups]);
    let fw: Omit<HybridFirewall, 'zones'>;
    if (shape !== undefined && last?.shape === shape) {
      const ipsets = firewallIpsets(view, last.fw.ipsets);
      fw = ipsets === last.fw.ipsets ? last.fw : { ...last.fw, ipsets };
    } else {
      const built = hybridFirewall(Object.values(view.devices), view, { enableIpset, zones: this.zones });
      this.zones = built.zones;
      fw = built;
    }
    if (fw === last?.fw && last.state) return (this.lastFirewall = { ...last, info }).state!;
    const ipsets: Record<string, IpSet> = Object.fromEntries(fw.ipsets.map((x) => [x.name, x]));
    const was = last?.state?.namespaces[''];
    let st: HostState;
    if (was && last!.fw.filter === fw.filter && last!.fw.raw === fw.raw && last!.fw.sysctls === fw.sysctls) {
      // Only the sets changed (members came or went elsewhere): the rest as the last fragment held it.
      st = { ...last!.state!, namespaces: { '': { ...was, ipsets } } };
    } else {
      st = emptyHost();
      const root = st.namespaces[''];
      st = { ...st, namespaces: { ...st.namespaces, '': { ...root, iptables: { filter: fw.filter, raw: fw.raw }, ipsets } } };
      for (const [k, v] of Object.entries(fw.sysctls)) st = setSysctl(st, '', k, v);
    }
    this.lastFirewall = { info, shape, fw, state: st };
    return st;
  }
}

/** br-int ports with an `iface-id` (VIFs, router and DHCP ports), as others plugged them. */
export function pluggedPorts(state: HostState, bridge: string): Snapshot['plugged'] {
  const b = state.ovs.bridges[bridge];
  if (!b) return [];
  const out: Snapshot['plugged'] = [];
  for (const p of Object.values(b.ports)) {
    const id = p.external_ids?.['iface-id'];
    if (id && (p.type === 'system' || p.type === 'internal')) out.push({ name: p.name, type: p.type, ifaceId: id });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function pluggedSignature(state: HostState, bridge: string): string {
  return pluggedPorts(state, bridge)
    .map((p) => `${p.name}|${p.ifaceId}`)
    .join(',');
}

/**
 * Peers records `applyFdb` made, which it changes in place (each host's own, never shared),
 * with how many peers each holds (asking a dictionary of a thousand keys whether it has one
 * enumerates them all).
 */
const ownPeers = new WeakMap<object, number>();

/**
 * Folds an add_fdb_entries / remove_fdb_entries cast into the cached FDB. A network's entry
 * object changes when its content does (the flow builder memoizes on it, and learns from
 * `noteFdbChange` which peers the new one changed); its peers record is changed in place, not
 * copied: a copy per cast was a network's whole peer list, per host, per port coming up (the
 * cube of the hosts in garbage over a cloud's start). Nothing reads an entry's peers after the
 * entry was replaced.
 */
export function applyFdb(fdb: FdbEntries, delta: FdbEntries, add: boolean): void {
  for (const [net, e] of Object.entries(delta)) {
    const old = fdb[net];
    let ports = old?.ports;
    let count = ports && ownPeers.get(ports);
    if (!ports || count === undefined) {
      // This host's own record of the peers, a dictionary from the start: the peers of
      // thousands of hosts added one by one to plain objects made a hidden class per step.
      ports = Object.assign(Object.create(null) as FdbEntries[string]['ports'], ports);
      count = Object.keys(ports).length;
    }
    let changed = !old;
    const named: string[] = [];
    for (const [ip, entries] of Object.entries(e.ports)) {
      named.push(ip);
      const list = ports[ip] ?? [];
      if (add) {
        const extra = notIn(list, entries);
        if (!extra.length) continue;
        if (!list.length) count++;
        ports[ip] = internPeerList(ip, [...list, ...extra]);
        changed = true;
      } else {
        const left = notIn(entries, list);
        if (left.length === list.length) continue;
        changed = true;
        if (left.length) ports[ip] = internPeerList(ip, left);
        else {
          delete ports[ip];
          count--;
        }
      }
    }
    ownPeers.set(ports, count);
    if (!changed) continue;
    if (count > 0) {
      fdb[net] = { network_type: e.network_type, segment_id: e.segment_id, ports };
      if (old && old.network_type === e.network_type && old.segment_id === e.segment_id) noteFdbChange(fdb[net], old, named);
    } else delete fdb[net];
  }
}

type Pair = readonly [string, string];
/**
 * The pairs of `xs` that `list` does not hold. A peer's entry list is short (its ports on one
 * network and the flooding entry): a scan, without a key string per pair, which this paid
 * per host per peer of every cast; a set where both are long.
 */
function notIn<P extends Pair>(list: readonly Pair[], xs: readonly P[]): P[] {
  if (list.length * xs.length > 64) {
    const seen = new Set(list.map((p) => `${p[0]}|${p[1]}`));
    return xs.filter((x) => !seen.has(`${x[0]}|${x[1]}`));
  }
  return xs.filter((x) => !list.some((y) => y === x || (y[0] === x[0] && y[1] === x[1])));
}

/**
 * The server's FDB, keeping the previous entry object of every network whose content is the
 * same; a new one's lists are shared with equal ones of other hosts (shared.ts).
 */
export function keepUnchanged(before: FdbEntries, now: FdbEntries): FdbEntries {
  const out: FdbEntries = {};
  for (const [net, e] of Object.entries(now)) {
    if (before[net] && sameEntry(before[net], e)) out[net] = before[net];
    else out[net] = { ...e, ports: Object.fromEntries(Object.entries(e.ports).map(([ip, list]) => [ip, internPeerList(ip, list)])) };
  }
  return out;
}

function sameEntry(a: FdbEntries[string], b: FdbEntries[string]): boolean {
  if (a.network_type !== b.network_type || a.segment_id !== b.segment_id) return false;
  const ka = Object.keys(a.ports);
  if (ka.length !== Object.keys(b.ports).length) return false;
  for (const ip of ka) {
    const x = a.ports[ip];
    const y = b.ports[ip];
    if (x === y) continue; // the server's shared list, interned as it came
    if (!y || x.length !== y.length) return false;
    if (heldPeerList(ip, y) === x) continue; // a list of the server's this process interned before
    // The same set of pairs, whatever the order.
    const seen = new Set(x.map((p) => `${p[0]}|${p[1]}`));
    for (const p of y) if (!seen.has(`${p[0]}|${p[1]}`)) return false;
  }
  return true;
}

/** A member update as it arrived: a group's members whole, or a change. */
type MemberUpdate = { ips: MemberIps } | { change: MemberChange };
