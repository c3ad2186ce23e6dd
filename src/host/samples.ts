// Hand-written host states shaped like the scenario's hosts (a DVR compute node and a
// dvr_snat network node), for tests here and for drivers' tests. They are what the agents
// will produce, written out by hand: names from `names.ts`, flows in `ovs-ofctl` text.
import {
  addAddress,
  addBridge,
  addDhcpServer,
  addFlows,
  addInternalPort,
  addIpset,
  addLinuxBridge,
  addMetadataProxy,
  addNamespace,
  addNeighbour,
  addPatchPair,
  addPhysical,
  addPort,
  addRoute,
  addRule,
  addTap,
  addVethPair,
  emptyHost,
  iptablesText,
  setIptables,
  setSysctl,
  systemPort,
  tunnelPort,
} from './build.js';
import {
  dhcpNamespace,
  fipGatewayDevice,
  fipNamespace,
  fipRouterTable,
  fipToRouterDevice,
  FIP_PR_START,
  FIP_RT_TBL,
  hybridBridge,
  hybridVethBridgeEnd,
  hybridVethOvsEnd,
  INTEGRATION_BRIDGE,
  intToPhysPatch,
  METADATA_PROXY_PORT,
  PATCH_INT,
  PATCH_TUN,
  physToIntPatch,
  portChain,
  routerGatewayDevice,
  routerInterfaceDevice,
  routerNamespace,
  routerToFipDevice,
  securityGroupIpset,
  snatDevice,
  snatNamespace,
  snatRedirectTable,
  tapDevice,
  TUNNEL_BRIDGE,
  tunnelPortName,
  wrappedChain,
  L3_AGENT_CHAIN_PREFIX,
} from './names.js';
import type { HostState } from './state.js';
import { ROOT_NS } from './state.js';

export const SAMPLE_IDS = {
  router: '4b2f8c1e-7a3d-4e59-9c0b-1d2e3f405162',
  extNet: '9e8d7c6b-5a49-4382-a1b0-c9d8e7f60514',
  net: '1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a10',
  subnet: 'aa11bb22-cc33-4d44-8e55-ff6600778899',
  sg: '5c4b3a29-1807-46f5-a4b3-c2d1e0f9a8b7',
  vmPort: 'd1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6',
  qrPort: 'c0ffee00-1234-4abc-8def-0123456789ab',
  fgPort: 'fe11a600-aaaa-4bbb-8ccc-dddddddddddd',
  sgPort: '5a7b0000-1111-4222-8333-444444444444',
  qgPort: '9a7e0000-5555-4666-8777-888888888888',
  dhcpPort: 'd4c90000-9999-4aaa-8bbb-cccccccccccc',
} as const;

const GW_MAC = 'fa:16:3e:11:22:33';
const VM_MAC = 'fa:16:3e:44:55:66';
const DVR_MAC = 'fa:16:3f:12:34:56';

/** The parts every Neutron OVS host has: br-int, br-tun with its patch pair and tunnels. */
function ovsBase(s: HostState, localIp: string, remotes: string[]): HostState {
  s = addBridge(s, INTEGRATION_BRIDGE, { protocols: ['OpenFlow10', 'OpenFlow13'] });
  s = addBridge(s, TUNNEL_BRIDGE, { protocols: ['OpenFlow10', 'OpenFlow13'] });
  s = addPatchPair(s, INTEGRATION_BRIDGE, PATCH_TUN, TUNNEL_BRIDGE, PATCH_INT);
  for (const r of remotes) {
    s = addPort(s, TUNNEL_BRIDGE, tunnelPort('vxlan', r, { local_ip: localIp, options: { df_default: 'true' } }));
  }
  s = addFlows(s, INTEGRATION_BRIDGE, [
    { table: 0, priority: 65535, cookie: 0x1, match: 'dl_vlan=4095', actions: 'drop' },
    { table: 0, priority: 0, cookie: 0x1, actions: 'resubmit(,59)' },
    { table: 59, priority: 0, cookie: 0x1, actions: 'resubmit(,60)' },
    { table: 60, priority: 3, cookie: 0x1, actions: 'NORMAL' },
    { table: 23, priority: 0, cookie: 0x1, actions: 'drop' },
  ]);
  const tunFlows = [
    { table: 0, priority: 1, cookie: 0x2, match: `in_port=${PATCH_INT}`, actions: 'resubmit(,1)' },
    { table: 0, priority: 0, cookie: 0x2, actions: 'drop' },
    { table: 1, priority: 0, cookie: 0x2, actions: 'resubmit(,2)' },
    { table: 2, priority: 0, cookie: 0x2, match: 'dl_dst=00:00:00:00:00:00/01:00:00:00:00:00', actions: 'resubmit(,20)' },
    { table: 2, priority: 0, cookie: 0x2, match: 'dl_dst=01:00:00:00:00:00/01:00:00:00:00:00', actions: 'resubmit(,22)' },
    { table: 4, priority: 1, cookie: 0x3, match: 'tun_id=0x45', actions: 'mod_vlan_vid:1,resubmit(,9)' },
    { table: 9, priority: 0, cookie: 0x2, actions: 'resubmit(,10)' },
    {
      table: 10,
      priority: 1,
      cookie: 0x2,
      actions: `learn(cookie=0x2,table=20,priority=1,hard_timeout=300,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:${PATCH_INT}`,
    },
    { table: 20, priority: 0, cookie: 0x2, actions: 'resubmit(,22)' },
    { table: 22, priority: 1, cookie: 0x3, match: 'dl_vlan=1', actions: `strip_vlan,set_tunnel:0x45,output:${tunnelPortName('vxlan', remotes[0])}` },
  ];
  for (const r of remotes) tunFlows.push({ table: 0, priority: 1, cookie: 0x2, match: `in_port=${tunnelPortName('vxlan', r)}`, actions: 'resubmit(,4)' });
  return addFlows(s, TUNNEL_BRIDGE, tunFlows);
}

/** compute1: an instance behind the hybrid firewall, a DVR router (qrouter + fip) with one floating IP. */
export function sampleComputeHost(): HostState {
  const id = SAMPLE_IDS;
  let s = emptyHost();
  s = addPhysical(s, 'eth0', { addresses: ['10.0.0.31/24'], mtu: 1500 });
  s = addPhysical(s, 'eth1', { addresses: ['10.0.1.31/24'], mtu: 1500 });
  s = addRoute(s, ROOT_NS, { dst: 'default', via: '10.0.0.1', dev: 'eth0' });
  s = setSysctl(s, ROOT_NS, 'net.bridge.bridge-nf-call-iptables', 1);
  s = ovsBase(s, '10.0.1.31', ['10.0.1.21', '10.0.1.32']);

  // The instance's VIF: tap -> qbr -> qvb/qvo -> br-int.
  const qbr = hybridBridge(id.vmPort);
  s = addLinuxBridge(s, ROOT_NS, qbr, { mtu: 1450 });
  s = addTap(s, ROOT_NS, tapDevice(id.vmPort), { master: qbr, mtu: 1450, mac: 'fe:16:3e:44:55:66' });
  s = addVethPair(s, ROOT_NS, hybridVethBridgeEnd(id.vmPort), ROOT_NS, hybridVethOvsEnd(id.vmPort), {
    a: { master: qbr, mtu: 1450 },
    b: { mtu: 1450 },
  });
  s = addPort(
    s,
    INTEGRATION_BRIDGE,
    systemPort(hybridVethOvsEnd(id.vmPort), {
      tag: 1,
      external_ids: { 'iface-id': id.vmPort, 'attached-mac': VM_MAC, 'iface-status': 'active', 'vm-uuid': '0c0ffee0-0000-4000-8000-000000000001' },
      other_config: { net_uuid: id.net, network_type: 'vxlan', segmentation_id: '69', tag: '1' },
    }),
  );
  const ipset = securityGroupIpset(id.sg, 'IPv4');
  s = addIpset(s, ROOT_NS, { name: ipset, type: 'hash:net', members: ['192.168.1.11', '192.168.1.12'] });
  const inChain = portChain('ingress', id.vmPort);
  s = setIptables(
    s,
    ROOT_NS,
    'filter',
    iptablesText(
      'filter',
      [
        ['INPUT', 'ACCEPT'],
        ['FORWARD', 'ACCEPT'],
        ['OUTPUT', 'ACCEPT'],
        [inChain, '-'],
      ],
      [
        `-A FORWARD -m physdev --physdev-out ${tapDevice(id.vmPort)} --physdev-is-bridged -j ${inChain}`,
        `-A ${inChain} -m state --state RELATED,ESTABLISHED -j RETURN`,
        `-A ${inChain} -m state --state INVALID -j DROP`,
        `-A ${inChain} -m set --match-set ${ipset} src -j RETURN`,
        `-A ${inChain} -p icmp -j RETURN`,
        `-A ${inChain} -j DROP`,
      ],
    ),
  );

  // qrouter: the distributed router's interface on demo-net, with the same IP and MAC as on every host.
  const qrouter = routerNamespace(id.router);
  const fip = fipNamespace(id.extNet);
  const qr = routerInterfaceDevice(id.qrPort);
  s = addNamespace(s, qrouter);
  s = addNamespace(s, fip);
  s = addInternalPort(s, INTEGRATION_BRIDGE, qr, {
    namespace: qrouter,
    tag: 1,
    mac: GW_MAC,
    mtu: 1450,
    addresses: ['192.168.1.1/24'],
    external_ids: { 'iface-id': id.qrPort, 'attached-mac': GW_MAC, 'iface-status': 'active' },
  });
  s = setSysctl(s, qrouter, 'net.ipv4.ip_forward', 1);
  s = setSysctl(s, qrouter, `net.ipv4.conf.${qr}.send_redirects`, 0);
  s = addNeighbour(s, qrouter, { dev: qr, ip: '192.168.1.11', lladdr: VM_MAC });
  s = addNeighbour(s, qrouter, { dev: qr, ip: '192.168.1.2', lladdr: 'fa:16:3e:77:88:99' });
  // SNAT steering to the central sg- port, table and priority = the qr IP as an integer.
  const snatTable = snatRedirectTable('192.168.1.1');
  s = addRoute(s, qrouter, { dst: 'default', via: '192.168.1.2', dev: qr, table: snatTable });
  s = addRule(s, qrouter, { priority: snatTable, from: '192.168.1.1/24', table: snatTable });
  // Floating IP 203.0.113.101 for 192.168.1.11 through rfp/fpr.
  const rfp = routerToFipDevice(id.router);
  const fpr = fipToRouterDevice(id.router);
  s = addVethPair(s, qrouter, rfp, fip, fpr, {
    a: { addresses: ['169.254.64.0/31'], mtu: 1500 },
    b: { addresses: ['169.254.64.1/31'], mtu: 1500 },
  });
  s = addRoute(s, qrouter, { dst: 'default', via: '169.254.64.1', dev: rfp, table: FIP_RT_TBL });
  s = addRule(s, qrouter, { priority: FIP_PR_START, from: '192.168.1.11', table: FIP_RT_TBL });
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
        [wrappedChain(L3_AGENT_CHAIN_PREFIX, 'float-snat'), '-'],
      ],
      [
        `-A PREROUTING -d 203.0.113.101/32 -i ${rfp} -j DNAT --to-destination 192.168.1.11`,
        `-A POSTROUTING -j ${wrappedChain(L3_AGENT_CHAIN_PREFIX, 'float-snat')}`,
        `-A ${wrappedChain(L3_AGENT_CHAIN_PREFIX, 'float-snat')} -s 192.168.1.11/32 -j SNAT --to-source 203.0.113.101`,
      ],
    ),
  );
  // fip namespace: fg- on br-int (VLAN of the external network), proxy ARP for the floating IPs.
  const fg = fipGatewayDevice(id.fgPort);
  s = addInternalPort(s, INTEGRATION_BRIDGE, fg, {
    namespace: fip,
    tag: 2,
    mac: 'fa:16:3e:aa:bb:cc',
    addresses: ['203.0.113.31/24'],
    external_ids: { 'iface-id': id.fgPort, 'attached-mac': 'fa:16:3e:aa:bb:cc', 'iface-status': 'active' },
  });
  s = setSysctl(s, fip, 'net.ipv4.ip_forward', 1);
  s = setSysctl(s, fip, 'net.ipv4.ip_nonlocal_bind', 1);
  s = setSysctl(s, fip, `net.ipv4.conf.${fg}.proxy_arp`, 1);
  const perRouter = fipRouterTable('169.254.64.1');
  s = addRoute(s, fip, { dst: '203.0.113.101/32', via: '169.254.64.0', dev: fpr });
  s = addRoute(s, fip, { dst: 'default', via: '203.0.113.1', dev: fg, table: perRouter });
  s = addRule(s, fip, { priority: perRouter, iif: fpr, table: perRouter });
  s = addNeighbour(s, fip, { dev: fpr, ip: '169.254.64.0', lladdr: 'fa:16:3e:00:64:00' });
  s = setIptables(s, fip, 'raw', iptablesText('raw', [['PREROUTING', 'ACCEPT'], ['OUTPUT', 'ACCEPT']], ['-A PREROUTING -j CT --notrack']));
  // DVR: the router's MAC leaves the host as this host's DVR MAC.
  s = addFlows(s, TUNNEL_BRIDGE, [
    { table: 1, priority: 1, cookie: 0x10, match: `dl_vlan=1,dl_src=${GW_MAC}`, actions: `mod_dl_src:${DVR_MAC},resubmit(,2)` },
    { table: 1, priority: 2, cookie: 0x10, match: `dl_vlan=1,dl_dst=${GW_MAC}`, actions: 'drop' },
  ]);
  return s;
}

/** network1: a dvr_snat node with the router's snat namespace, br-ex on eth2, a DHCP server and a metadata proxy. */
export function sampleNetworkHost(): HostState {
  const id = SAMPLE_IDS;
  let s = emptyHost();
  s = addPhysical(s, 'eth0', { addresses: ['10.0.0.21/24'] });
  s = addPhysical(s, 'eth1', { addresses: ['10.0.1.21/24'] });
  s = addPhysical(s, 'eth2');
  s = ovsBase(s, '10.0.1.21', ['10.0.1.31', '10.0.1.32']);
  s = addBridge(s, 'br-ex', { protocols: ['OpenFlow10', 'OpenFlow13'] });
  s = addPort(s, 'br-ex', systemPort('eth2'));
  s = addPatchPair(s, INTEGRATION_BRIDGE, intToPhysPatch('br-ex'), 'br-ex', physToIntPatch('br-ex'));
  s = addFlows(s, 'br-ex', [
    { table: 0, priority: 4, cookie: 0x20, match: `in_port=${physToIntPatch('br-ex')},dl_vlan=2`, actions: 'strip_vlan,NORMAL' },
    { table: 0, priority: 2, cookie: 0x20, match: `in_port=${physToIntPatch('br-ex')}`, actions: 'drop' },
    { table: 0, priority: 0, cookie: 0x20, actions: 'NORMAL' },
  ]);

  const snat = snatNamespace(id.router);
  const qrouter = routerNamespace(id.router);
  const sg = snatDevice(id.sgPort);
  const qg = routerGatewayDevice(id.qgPort);
  s = addNamespace(s, snat);
  s = addNamespace(s, qrouter);
  s = addInternalPort(s, INTEGRATION_BRIDGE, sg, { namespace: snat, tag: 1, mac: 'fa:16:3e:77:88:99', mtu: 1450, addresses: ['192.168.1.2/24'] });
  s = addInternalPort(s, INTEGRATION_BRIDGE, qg, { namespace: snat, tag: 2, mac: 'fa:16:3e:de:ad:01', addresses: ['203.0.113.101/24'] });
  s = addInternalPort(s, INTEGRATION_BRIDGE, routerInterfaceDevice(id.qrPort), {
    namespace: qrouter,
    tag: 1,
    mac: GW_MAC,
    mtu: 1450,
    addresses: ['192.168.1.1/24'],
  });
  s = addRoute(s, snat, { dst: 'default', via: '203.0.113.1', dev: qg });
  s = setSysctl(s, snat, 'net.ipv4.ip_forward', 1);
  s = setSysctl(s, snat, 'net.ipv4.ip_nonlocal_bind', 0);
  s = setIptables(
    s,
    snat,
    'nat',
    iptablesText(
      'nat',
      [
        ['PREROUTING', 'ACCEPT'],
        ['INPUT', 'ACCEPT'],
        ['OUTPUT', 'ACCEPT'],
        ['POSTROUTING', 'ACCEPT'],
        [wrappedChain(L3_AGENT_CHAIN_PREFIX, 'snat'), '-'],
      ],
      [
        `-A POSTROUTING -j ${wrappedChain(L3_AGENT_CHAIN_PREFIX, 'snat')}`,
        `-A ${wrappedChain(L3_AGENT_CHAIN_PREFIX, 'snat')} -o ${qg} -j SNAT --to-source 203.0.113.101`,
      ],
    ),
  );
  s = setIptables(
    s,
    snat,
    'mangle',
    iptablesText(
      'mangle',
      [
        ['PREROUTING', 'ACCEPT'],
        ['INPUT', 'ACCEPT'],
        ['FORWARD', 'ACCEPT'],
        ['OUTPUT', 'ACCEPT'],
        ['POSTROUTING', 'ACCEPT'],
      ],
      [`-A PREROUTING -i ${qg} -j MARK --set-xmark 0x2/0xffff`],
    ),
  );
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
      ],
      [`-A PREROUTING -d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports ${METADATA_PROXY_PORT}`],
    ),
  );
  s = addMetadataProxy(s, {
    id: id.router,
    namespace: qrouter,
    listen_ip: '0.0.0.0',
    listen_port: METADATA_PROXY_PORT,
    upstream: '/var/lib/neutron/metadata_proxy',
    router_id: id.router,
  });

  const qdhcp = dhcpNamespace(id.net);
  const tap = tapDevice(id.dhcpPort);
  s = addNamespace(s, qdhcp);
  s = addInternalPort(s, INTEGRATION_BRIDGE, tap, { namespace: qdhcp, tag: 1, mac: 'fa:16:3e:d4:c9:00', mtu: 1450, addresses: ['192.168.1.3/24'] });
  s = addAddress(s, qdhcp, tap, '169.254.169.254/32');
  s = addDhcpServer(s, {
    id: id.net,
    namespace: qdhcp,
    interface: tap,
    ranges: [{ tag: `subnet-${id.subnet}`, cidr: '192.168.1.0/24' }],
    hosts: [
      { mac: VM_MAC, ip: '192.168.1.11', hostname: 'host-192-168-1-11' },
      { mac: 'fa:16:3e:44:55:67', ip: '192.168.1.12', hostname: 'host-192-168-1-12' },
    ],
    options: [
      { tag: `subnet-${id.subnet}`, option: 3, values: ['192.168.1.1'] },
      { tag: `subnet-${id.subnet}`, option: 6, values: ['192.168.1.3'] },
      { tag: `subnet-${id.subnet}`, option: 121, values: ['169.254.169.254/32', '192.168.1.3', '0.0.0.0/0', '192.168.1.1'] },
      { option: 26, values: ['1450'], force: true },
    ],
  });
  return s;
}
