// A hand-written DVR testbed: two compute nodes on a VXLAN tunnel network, each with a
// distributed router (qrouter) on two project networks, one instance each behind the
// hybrid firewall (tap -> qbr -> qvb/qvo -> br-int), and the flows Neutron's OVS agent
// writes for DVR with l2population (br-int tables 0/1/59/60, br-tun tables 0-22 with
// learn() in table 10). The states are built with src/host's builders and realised by the
// emulated driver: this is the scenario's east-west walk (section 4.3) as data.
//
// The tests use it for the east-west path; the benchmark adds filler flows (other ports'
// entries in the same tables) to measure cost against flow count.

import {
  addBridge,
  addFlows,
  addRule,
  addInternalPort,
  addIpset,
  addLinuxBridge,
  addNamespace,
  addNeighbour,
  addPatchPair,
  addPhysical,
  addPort,
  addRoute,
  addTap,
  addVethPair,
  emptyHost,
  iptablesText,
  setIptables,
  setSysctl,
  systemPort,
  tunnelPort,
} from '../../host/build.js';
import type { FlowInput } from '../../host/flow.js';
import {
  fipGatewayDevice,
  fipNamespace,
  fipRouterTable,
  fipToRouterDevice,
  FIP_PR_START,
  FIP_RT_TBL,
  intToPhysPatch,
  L3_AGENT_CHAIN_PREFIX,
  physToIntPatch,
  routerToFipDevice,
  hybridBridge,
  hybridVethBridgeEnd,
  hybridVethOvsEnd,
  INTEGRATION_BRIDGE,
  PATCH_INT,
  PATCH_TUN,
  portChain,
  routerInterfaceDevice,
  routerNamespace,
  securityGroupIpset,
  tapDevice,
  TUNNEL_BRIDGE,
  tunnelPortName,
  wrappedChain,
  OVS_AGENT_CHAIN_PREFIX,
} from '../../host/names.js';
import type { HostState } from '../../host/state.js';
import { World } from './world.js';

export const ROUTER_ID = '5a3c2f1e-7d4b-4c1a-9e8f-0b1c2d3e4f50';
export const SG_ID = '8e1f0c2a-3b4d-4e5f-a6b7-c8d9e0f1a2b3';

export interface Network {
  name: string;
  vni: number;
  cidr: string;
  gateway: string;
  /** The distributed router's interface on this network (same IP and MAC on every host). */
  qrPort: string;
  qrMac: string;
}

export const NET1: Network = { name: 'net1', vni: 101, cidr: '192.168.1.0/24', gateway: '192.168.1.1', qrPort: 'b1f0e3a2-11aa-4bbb-8ccc-000000000001', qrMac: 'fa:16:3e:00:01:01' };
export const NET2: Network = { name: 'net2', vni: 102, cidr: '192.168.2.0/24', gateway: '192.168.2.1', qrPort: 'b1f0e3a2-22aa-4bbb-8ccc-000000000002', qrMac: 'fa:16:3e:00:02:01' };

export interface Instance {
  name: string;
  host: string;
  net: Network;
  portId: string;
  mac: string;
  ip: string;
}

export const VM1: Instance = { name: 'vm1', host: 'compute1', net: NET1, portId: 'c7d1a2b3-0001-4c5d-8e9f-a0b1c2d3e4f5', mac: 'fa:16:3e:00:01:11', ip: '192.168.1.11' };
export const VM2: Instance = { name: 'vm2', host: 'compute2', net: NET2, portId: 'd8e2b3c4-0002-4c5d-8e9f-a0b1c2d3e4f5', mac: 'fa:16:3e:00:02:11', ip: '192.168.2.11' };

export interface ComputeNode {
  name: string;
  tunnelIp: string;
  nicMac: string;
  /** This host's DVR MAC (`dvr_base_mac` fa:16:3f). */
  dvrMac: string;
  /** Local VLAN per network on this host's br-int (each host picks its own). */
  lvid: Record<string, number>;
}

export const COMPUTE1: ComputeNode = { name: 'compute1', tunnelIp: '10.0.1.31', nicMac: '52:54:00:01:00:31', dvrMac: 'fa:16:3f:00:00:01', lvid: { net1: 1, net2: 2 } };
export const COMPUTE2: ComputeNode = { name: 'compute2', tunnelIp: '10.0.1.32', nicMac: '52:54:00:01:00:32', dvrMac: 'fa:16:3f:00:00:02', lvid: { net1: 2, net2: 1 } };

const NETS = [NET1, NET2];
const INSTANCES = [VM1, VM2];
const NODES = [COMPUTE1, COMPUTE2];
const COOKIE = 0x1a2b;
const LEARN_COOKIE = 0x1a2c;
const prefixLen = (cidr: string) => cidr.split('/')[1];

/** The hybrid firewall of one instance port, as the OVS agent's iptables_hybrid driver writes it. */
function hybridFirewall(vms: Instance[]): string {
  const fwd = wrappedChain(OVS_AGENT_CHAIN_PREFIX, 'FORWARD');
  const sg = wrappedChain(OVS_AGENT_CHAIN_PREFIX, 'sg-chain');
  const fallback = wrappedChain(OVS_AGENT_CHAIN_PREFIX, 'sg-fallback');
  const chains: Array<[string, string]> = [
    ['INPUT', 'ACCEPT'],
    ['FORWARD', 'ACCEPT'],
    ['OUTPUT', 'ACCEPT'],
    [fwd, '-'],
    [sg, '-'],
    [fallback, '-'],
  ];
  const rules = [`-A FORWARD -j ${fwd}`];
  const perPort: string[] = [];
  for (const vm of vms) {
    const tap = tapDevice(vm.portId);
    const i = portChain('ingress', vm.portId);
    const o = portChain('egress', vm.portId);
    const sp = portChain('spoof', vm.portId);
    chains.push([i, '-'], [o, '-'], [sp, '-']);
    rules.push(
      `-A ${fwd} -m physdev --physdev-out ${tap} --physdev-is-bridged -m comment --comment "Direct traffic from the VM interface to the security group chain." -j ${sg}`,
      `-A ${fwd} -m physdev --physdev-in ${tap} --physdev-is-bridged -m comment --comment "Direct traffic from the VM interface to the security group chain." -j ${sg}`,
    );
    perPort.push(
      `-A ${sg} -m physdev --physdev-out ${tap} --physdev-is-bridged -j ${i}`,
      `-A ${sg} -m physdev --physdev-in ${tap} --physdev-is-bridged -j ${o}`,
      `-A ${i} -m state --state RELATED,ESTABLISHED -m comment --comment "Direct packets associated with a known session to the RETURN chain." -j RETURN`,
      `-A ${i} -p icmp -j RETURN`,
      `-A ${i} -m set --match-set ${securityGroupIpset(SG_ID, 'IPv4')} src -j RETURN`,
      `-A ${i} -m state --state INVALID -m comment --comment "Drop packets that appear related to an existing connection (e.g. TCP ACK/FIN) but do not have an entry in conntrack." -j DROP`,
      `-A ${i} -m comment --comment "Send unmatched traffic to the fallback chain." -j ${fallback}`,
      `-A ${o} -j ${sp}`,
      `-A ${o} -m state --state RELATED,ESTABLISHED -j RETURN`,
      `-A ${o} -j RETURN`,
      `-A ${sp} -s ${vm.ip}/32 -m mac --mac-source ${vm.mac.toUpperCase()} -m comment --comment "Allow traffic from defined IP/MAC pairs." -j RETURN`,
      `-A ${sp} -m comment --comment "Drop traffic without an IP/MAC allow rule." -j DROP`,
    );
  }
  rules.push(...perPort, `-A ${sg} -j ACCEPT`, `-A ${fallback} -m comment --comment "Default drop rule for unmatched traffic." -j DROP`);
  return iptablesText('filter', chains, rules);
}

/** br-int flows of one DVR compute node. */
function brIntFlows(node: ComputeNode, vms: Instance[]): FlowInput[] {
  const f: FlowInput[] = [
    { table: 0, priority: 65535, match: 'dl_vlan=4095', actions: 'drop' },
    { table: 0, priority: 0, actions: 'resubmit(,59)' },
    { table: 1, priority: 1, actions: 'drop' },
    { table: 2, priority: 1, actions: 'drop' },
    { table: 23, priority: 0, actions: 'drop' },
    { table: 59, priority: 0, actions: 'resubmit(,60)' },
    { table: 60, priority: 3, actions: 'NORMAL' },
  ];
  for (const other of NODES) {
    if (other === node) continue;
    // Routed by a remote host's DVR: go through the DVR-to-source-MAC table.
    f.push({ table: 0, priority: 2, match: `in_port=${PATCH_TUN},dl_src=${other.dvrMac}`, actions: 'resubmit(,1)' });
  }
  for (const vm of vms) {
    const lv = node.lvid[vm.net.name];
    const qvo = hybridVethOvsEnd(vm.portId);
    f.push(
      { table: 1, priority: 20, match: `dl_vlan=${lv},dl_dst=${vm.mac}`, actions: `mod_dl_src:${vm.net.qrMac},resubmit(,60)` },
      { table: 60, priority: 20, match: `dl_vlan=${lv},dl_dst=${vm.mac}`, actions: `strip_vlan,output:${qvo}` },
    );
  }
  return f;
}

/** br-tun flows of one DVR compute node (l2population, ARP responder, learn()). */
function brTunFlows(node: ComputeNode): FlowInput[] {
  const f: FlowInput[] = [
    { table: 0, priority: 1, match: `in_port=${PATCH_INT}`, actions: 'resubmit(,1)' },
    { table: 0, priority: 0, actions: 'drop' },
    { table: 1, priority: 0, actions: 'resubmit(,2)' },
    { table: 2, priority: 1, match: 'arp,dl_dst=ff:ff:ff:ff:ff:ff', actions: 'resubmit(,21)' },
    { table: 2, priority: 0, match: 'dl_dst=00:00:00:00:00:00/01:00:00:00:00:00', actions: 'resubmit(,20)' },
    { table: 2, priority: 0, match: 'dl_dst=01:00:00:00:00:00/01:00:00:00:00:00', actions: 'resubmit(,22)' },
    { table: 3, priority: 0, actions: 'drop' },
    { table: 4, priority: 0, actions: 'drop' },
    { table: 9, priority: 0, actions: 'resubmit(,10)' },
    {
      table: 10,
      priority: 1,
      actions: `learn(table=20,hard_timeout=300,priority=1,cookie=${LEARN_COOKIE},NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:${PATCH_INT}`,
    },
    { table: 20, priority: 0, actions: 'resubmit(,22)' },
    { table: 21, priority: 0, actions: 'resubmit(,22)' },
    { table: 22, priority: 0, actions: 'drop' },
  ];
  for (const net of NETS) {
    const lv = node.lvid[net.name];
    f.push(
      // DVR egress rewrite: frames routed here leave with this host's DVR MAC.
      { table: 1, priority: 1, match: `dl_vlan=${lv},dl_src=${net.qrMac}`, actions: `mod_dl_src:${node.dvrMac},resubmit(,2)` },
      { table: 1, priority: 2, match: `dl_vlan=${lv},dl_dst=${net.qrMac}`, actions: 'drop' },
      { table: 4, priority: 1, match: `tun_id=${net.vni}`, actions: `mod_vlan_vid:${lv},resubmit(,9)` },
      // Gateway-IP ARP guard: a distributed router's ARP never leaves the host.
      { table: 22, priority: 3, match: `dl_vlan=${lv},arp,arp_tpa=${net.gateway}`, actions: 'drop' },
    );
  }
  for (const other of NODES) {
    if (other === node) continue;
    const tun = tunnelPortName('vxlan', other.tunnelIp);
    f.push({ table: 0, priority: 1, match: `in_port=${tun}`, actions: 'resubmit(,4)' }, { table: 9, priority: 1, match: `dl_src=${other.dvrMac}`, actions: `output:${PATCH_INT}` });
    for (const net of NETS) {
      const lv = node.lvid[net.name];
      // l2pop flooding entry per network that has ports on the other host.
      f.push({ table: 22, priority: 1, match: `dl_vlan=${lv}`, actions: `strip_vlan,load:${net.vni}->NXM_NX_TUN_ID[],output:${tun}` });
    }
    for (const vm of INSTANCES) {
      if (vm.host !== other.name) continue;
      const lv = node.lvid[vm.net.name];
      // l2pop unicast entry and ARP responder entry for the remote instance.
      f.push(
        { table: 20, priority: 2, match: `dl_vlan=${lv},dl_dst=${vm.mac}`, actions: `strip_vlan,load:${vm.net.vni}->NXM_NX_TUN_ID[],output:${tun}` },
        { table: 21, priority: 1, match: `arp,dl_vlan=${lv},arp_tpa=${vm.ip}`, actions: arpResponder(vm.mac, vm.ip) },
      );
    }
  }
  return f;
}

/** Neutron's in-switch ARP reply (br-tun table 21): turn the request into the reply and send it back. */
export function arpResponder(mac: string, ip: string): string {
  const macHex = '0x' + mac.replace(/:/g, '');
  const ipHex = '0x' + ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('');
  return [
    'move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]',
    `mod_dl_src:${mac}`,
    'load:0x2->NXM_OF_ARP_OP[]',
    'move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]',
    'move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]',
    `load:${macHex}->NXM_NX_ARP_SHA[]`,
    `load:${ipHex}->NXM_OF_ARP_SPA[]`,
    'in_port',
  ].join(',');
}

export interface TestbedOptions {
  /** Extra flows per bridge (other ports' entries in the tables the packet visits). */
  fillerFlows?: number;
  /** Give VM1 a floating IP on compute1 (scenario 4.2): br-ex, the fip namespace, rfp/fpr. */
  floatingIp?: boolean;
}

/** The external (flat) network and VM1's floating IP. */
export const EXTERNAL = {
  netId: 'e0e1e2e3-4444-4555-8666-777788889999',
  cidr: '203.0.113.0/24',
  gateway: '203.0.113.1',
  gatewayMac: '52:54:00:cc:00:01',
  /** The fg- port of compute1's fip namespace (TE) and VM1's floating IP (F1). */
  fgPort: 'f9a8b7c6-5d4e-4f3a-8b2c-1d0e9f8a7b6c',
  fgMac: 'fa:16:3e:0f:00:01',
  fgIp: '203.0.113.10',
  floatingIp: '203.0.113.102',
  /** compute1's local VLAN for the external network on br-int. */
  lvid: 3,
  /** The rfp/fpr /31 from 169.254.64.0/18: rfp even, fpr odd. */
  rfpIp: '169.254.64.0',
  fprIp: '169.254.64.1',
  rfpMac: 'fa:16:3e:0f:00:10',
  fprMac: 'fa:16:3e:0f:00:11',
} as const;

/** The desired state of one compute node. */
export function computeState(node: ComputeNode, opts: TestbedOptions = {}): HostState {
  const vms = INSTANCES.filter((v) => v.host === node.name);
  let s = emptyHost();
  s = addPhysical(s, 'eth1', { addresses: [`${node.tunnelIp}/24`] });
  // OVS: br-int and br-tun joined by patch ports, a VXLAN port per remote host.
  s = addBridge(s, INTEGRATION_BRIDGE);
  s = addBridge(s, TUNNEL_BRIDGE);
  s = addPatchPair(s, INTEGRATION_BRIDGE, PATCH_TUN, TUNNEL_BRIDGE, PATCH_INT);
  for (const other of NODES) {
    if (other !== node) s = addPort(s, TUNNEL_BRIDGE, tunnelPort('vxlan', other.tunnelIp, { local_ip: node.tunnelIp, key: 'flow', options: { df_default: 'true', in_key: 'flow', out_key: 'flow' } }));
  }
  // The distributed router.
  const qrouter = routerNamespace(ROUTER_ID);
  s = addNamespace(s, qrouter);
  s = setSysctl(s, qrouter, 'net.ipv4.ip_forward', 1);
  for (const net of NETS) {
    const dev = routerInterfaceDevice(net.qrPort);
    s = addInternalPort(s, INTEGRATION_BRIDGE, dev, { namespace: qrouter, tag: node.lvid[net.name], mac: net.qrMac, addresses: [`${net.gateway}/${prefixLen(net.cidr)}`], external_ids: { 'iface-id': net.qrPort, 'attached-mac': net.qrMac, 'iface-status': 'active' } });
    // DVR ARP entries: every instance on the subnet, permanent (ARP must not leave the host).
    for (const vm of INSTANCES) if (vm.net === net) s = addNeighbour(s, qrouter, { dev, ip: vm.ip, lladdr: vm.mac });
  }
  // Instances' plumbing: tap -> qbr -> qvb ~ qvo -> br-int, and the hybrid firewall.
  s = setSysctl(s, '', 'net.bridge.bridge-nf-call-iptables', 1);
  for (const vm of vms) {
    const qbr = hybridBridge(vm.portId);
    s = addLinuxBridge(s, '', qbr);
    s = addTap(s, '', tapDevice(vm.portId), { master: qbr, mac: 'fe:16:3e' + vm.mac.slice(8) });
    s = addVethPair(s, '', hybridVethBridgeEnd(vm.portId), '', hybridVethOvsEnd(vm.portId), { a: { master: qbr } });
    s = addPort(s, INTEGRATION_BRIDGE, systemPort(hybridVethOvsEnd(vm.portId), { tag: node.lvid[vm.net.name], external_ids: { 'iface-id': vm.portId, 'attached-mac': vm.mac, 'iface-status': 'active' } }));
  }
  s = addIpset(s, '', { name: securityGroupIpset(SG_ID, 'IPv4'), type: 'hash:net', members: INSTANCES.map((v) => v.ip) });
  s = setIptables(s, '', 'filter', hybridFirewall(vms));
  s = addFlows(s, INTEGRATION_BRIDGE, brIntFlows(node, vms).map((x) => ({ ...x, cookie: COOKIE })));
  s = addFlows(s, TUNNEL_BRIDGE, brTunFlows(node).map((x) => ({ ...x, cookie: COOKIE })));
  if (opts.floatingIp && node === COMPUTE1) s = floatingIpState(s);
  if (opts.fillerFlows) {
    s = addFlows(s, INTEGRATION_BRIDGE, fillerIntFlows(node, opts.fillerFlows));
    s = addFlows(s, TUNNEL_BRIDGE, fillerTunFlows(node, opts.fillerFlows));
  }
  return s;
}

/**
 * VM1's floating IP, entirely on compute1: br-ex on the external NIC, joined to br-int by
 * int-br-ex/phy-br-ex (flat network: local VLAN on br-int, untagged outside); the fip
 * namespace with fg- (proxy ARP for the floating IP) and fpr-; rfp- in qrouter holding the
 * floating IP; DNAT/SNAT in qrouter and the `from <fixed ip> lookup 16` rule.
 */
function floatingIpState(s: HostState): HostState {
  const X = EXTERNAL;
  const qrouter = routerNamespace(ROUTER_ID);
  const fip = fipNamespace(X.netId);
  const fg = fipGatewayDevice(X.fgPort);
  const rfp = routerToFipDevice(ROUTER_ID);
  const fpr = fipToRouterDevice(ROUTER_ID);
  const intEx = intToPhysPatch('br-ex');
  const phyEx = physToIntPatch('br-ex');
  const table = fipRouterTable(X.fprIp);
  s = addPhysical(s, 'eth2');
  s = addBridge(s, 'br-ex');
  s = addPort(s, 'br-ex', systemPort('eth2'));
  s = addPatchPair(s, INTEGRATION_BRIDGE, intEx, 'br-ex', phyEx);
  s = addFlows(s, 'br-ex', [
    { table: 0, priority: 4, cookie: COOKIE, match: `in_port=${phyEx},dl_vlan=${X.lvid}`, actions: 'strip_vlan,NORMAL' },
    { table: 0, priority: 2, cookie: COOKIE, match: `in_port=${phyEx}`, actions: 'drop' },
    { table: 0, priority: 0, cookie: COOKIE, actions: 'NORMAL' },
  ]);
  s = addFlows(s, INTEGRATION_BRIDGE, [
    { table: 0, priority: 3, cookie: COOKIE, match: `in_port=${intEx},vlan_tci=0x0000/0x1fff`, actions: `mod_vlan_vid:${X.lvid},resubmit(,59)` },
    { table: 0, priority: 2, cookie: COOKIE, match: `in_port=${intEx}`, actions: 'drop' },
  ]);
  // fip namespace: fg- on br-int (external network), fpr- towards the router.
  s = addNamespace(s, fip);
  s = setSysctl(s, fip, 'net.ipv4.ip_forward', 1);
  s = addInternalPort(s, INTEGRATION_BRIDGE, fg, { namespace: fip, tag: X.lvid, mac: X.fgMac, addresses: [`${X.fgIp}/24`] });
  s = setSysctl(s, fip, `net.ipv4.conf.${fg}.proxy_arp`, 1);
  s = addVethPair(s, qrouter, rfp, fip, fpr, { a: { mac: X.rfpMac, addresses: [`${X.rfpIp}/31`, `${X.floatingIp}/32`] }, b: { mac: X.fprMac, addresses: [`${X.fprIp}/31`] } });
  s = addNeighbour(s, qrouter, { dev: rfp, ip: X.fprIp, lladdr: X.fprMac });
  s = addNeighbour(s, fip, { dev: fpr, ip: X.rfpIp, lladdr: X.rfpMac });
  s = addRoute(s, fip, { dst: `${X.floatingIp}/32`, via: X.rfpIp, dev: fpr });
  s = addRoute(s, fip, { dst: 'default', via: X.gateway, dev: fg, table });
  s = addRule(s, fip, { priority: table, iif: fpr, table });
  // qrouter: policy routing of the fixed IP to table 16, DNAT in, SNAT out.
  s = addRoute(s, qrouter, { dst: 'default', via: X.fprIp, dev: rfp, table: FIP_RT_TBL });
  s = addRule(s, qrouter, { priority: FIP_PR_START, from: VM1.ip, table: FIP_RT_TBL });
  const chain = (c: string) => wrappedChain(L3_AGENT_CHAIN_PREFIX, c);
  s = setIptables(
    s,
    qrouter,
    'nat',
    iptablesText(
      'nat',
      [
        ['PREROUTING', 'ACCEPT'],
        ['INPUT', 'ACCEPT'],
        ['OUTPUT', 'ACCEPT'],
        ['POSTROUTING', 'ACCEPT'],
        [chain('PREROUTING'), '-'],
        [chain('OUTPUT'), '-'],
        [chain('POSTROUTING'), '-'],
        [chain('float-snat'), '-'],
        [chain('snat'), '-'],
      ],
      [
        `-A PREROUTING -j ${chain('PREROUTING')}`,
        `-A OUTPUT -j ${chain('OUTPUT')}`,
        `-A POSTROUTING -j ${chain('POSTROUTING')}`,
        `-A POSTROUTING -j ${chain('snat')}`,
        `-A ${chain('PREROUTING')} -d ${X.floatingIp}/32 -i ${rfp} -j DNAT --to-destination ${VM1.ip}`,
        `-A ${chain('OUTPUT')} -d ${X.floatingIp}/32 -o ${rfp} -j DNAT --to-destination ${VM1.ip}`,
        `-A ${chain('POSTROUTING')} ! -o ${rfp} -m conntrack ! --ctstate DNAT -j ACCEPT`,
        `-A ${chain('float-snat')} -s ${VM1.ip}/32 -j SNAT --to-source ${X.floatingIp}`,
        `-A ${chain('snat')} -j ${chain('float-snat')}`,
      ],
    ),
  );
  return s;
}

/** A MAC for the i-th filler port (never an instance of the testbed). */
function fillerMac(i: number): string {
  const h = (i + 0x100000).toString(16).padStart(6, '0').slice(-6);
  return `fa:16:3e:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

/** Other ports' DVR ingress entries in br-int tables 1 and 60 (what a busy host has). */
function fillerIntFlows(node: ComputeNode, n: number): FlowInput[] {
  const out: FlowInput[] = [];
  for (let i = 0; out.length < n; i++) {
    const lv = 100 + (i % 3000);
    out.push({ table: i % 2 ? 60 : 1, priority: 20, cookie: 0x7, match: `dl_vlan=${lv},dl_dst=${fillerMac(i)}`, actions: i % 2 ? `strip_vlan,output:${PATCH_TUN}` : `mod_dl_src:${NET1.qrMac},resubmit(,60)` });
  }
  return out;
}

/** Other ports' l2pop unicast entries (table 20) and ARP responder entries (table 21) in br-tun. */
function fillerTunFlows(node: ComputeNode, n: number): FlowInput[] {
  const tun = tunnelPortName('vxlan', NODES.find((x) => x !== node)!.tunnelIp);
  const out: FlowInput[] = [];
  for (let i = 0; out.length < n; i++) {
    const lv = 100 + (i % 3000);
    const ip = `10.${100 + ((i >> 16) & 0x7f)}.${(i >> 8) & 255}.${i & 255}`;
    out.push(
      i % 2
        ? { table: 21, priority: 1, cookie: 0x7, match: `arp,dl_vlan=${lv},arp_tpa=${ip}`, actions: arpResponder(fillerMac(i), ip) }
        : { table: 20, priority: 2, cookie: 0x7, match: `dl_vlan=${lv},dl_dst=${fillerMac(i)}`, actions: `strip_vlan,load:${5000 + lv}->NXM_NX_TUN_ID[],output:${tun}` },
    );
  }
  return out;
}

export interface Testbed {
  world: World;
  states: Record<string, HostState>;
}

/**
 * The world: two compute nodes on the tunnel segment, states applied through the driver,
 * instances booted behind their taps with addresses and gateways.
 */
export function buildTestbed(opts: TestbedOptions = {}): Testbed {
  const world = new World();
  const tunnel = world.addSegment('tunnel');
  const states: Record<string, HostState> = {};
  const external = opts.floatingIp ? world.addSegment('external') : undefined;
  if (external) world.addPlainHost('router', { segment: 'external', ip: `${EXTERNAL.gateway}/24`, mac: EXTERNAL.gatewayMac });
  for (const node of NODES) {
    const h = world.addHost(node.name);
    h.addNic('eth1', tunnel, { mac: node.nicMac });
    if (external && node === COMPUTE1) h.addNic('eth2', external, { mac: '52:54:00:02:00:31' });
    states[node.name] = computeState(node, opts);
    h.applyState(states[node.name]);
  }
  for (const vm of INSTANCES) {
    world.host(vm.host).addInstance(vm.name, { tap: tapDevice(vm.portId), mac: vm.mac, ip: `${vm.ip}/${prefixLen(vm.net.cidr)}`, gateway: vm.net.gateway });
  }
  return { world, states };
}
