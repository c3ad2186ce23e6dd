// The pure parts of the OVS agent: the flows of a plan against the hand-written DVR testbed
// (the reference for what Neutron's agent writes), the FDB cache, local VLANs.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMPUTE1, COMPUTE2, NET1, NET2, VM1, VM2, computeState } from '../../dataplane/emulated/testbed.js';
import { addBridge, addPort, emptyHost, systemPort } from '../../host/build.js';
import { hybridVethOvsEnd, routerInterfaceDevice } from '../../host/names.js';
import type { Flow } from '../../host/state.js';
import { FLOODING_ENTRY, type DeviceDetails, type FdbEntries } from '../../rpc/messages.js';
import { applyFdb, keepUnchanged } from './agent.js';
import { COOKIE, DEAD_VLAN_TAG } from './constants.js';
import { planFlows, type LocalNetwork, type OvsPlan, type OvsSettings, type WiredPort } from './flows.js';
import { ovsFragment } from './fragment.js';
import { LocalVlanMap } from './local_vlan.js';
import { itemsOf } from '../../host/chunks.js';

/** The plan's flows per bridge, as plain arrays. */
const bridgesOf = (plan: OvsPlan): Record<string, Flow[]> => Object.fromEntries(Object.entries(planFlows(plan).bridges).map(([k, v]) => [k, [...itemsOf(v)]]));

const SETTINGS: OvsSettings = {
  integrationBridge: 'br-int',
  tunnelBridge: 'br-tun',
  intPeerPatch: 'patch-tun',
  tunPeerPatch: 'patch-int',
  localIp: COMPUTE1.tunnelIp,
  tunnelTypes: ['vxlan', 'gre'],
  bridgeMappings: [],
  datapathType: 'system',
  distributed: true,
  l2pop: true,
  arpResponder: true,
  preventArpSpoofing: true,
  vxlanUdpPort: 4789,
  dontFragment: true,
};

const details = (o: Partial<DeviceDetails> & Pick<DeviceDetails, 'device' | 'mac_address' | 'network_id' | 'device_owner' | 'fixed_ips'>, seg: number): DeviceDetails => ({
  port_id: o.device,
  admin_state_up: true,
  device_id: 'x',
  port_security_enabled: true,
  security_groups: [],
  allowed_address_pairs: [],
  mtu: 1450,
  status: 'ACTIVE',
  network_type: 'vxlan',
  physical_network: null,
  segmentation_id: seg,
  ...o,
});

/** compute1 of the testbed as the agent sees it: VM1 on net1, the router's qr- on both networks, VM2 behind compute2. */
function testbedPlan(): OvsPlan {
  const nets: Record<string, LocalNetwork> = {
    [NET1.name]: { id: NET1.name, lvid: COMPUTE1.lvid.net1, network_type: 'vxlan', physical_network: null, segmentation_id: NET1.vni },
    [NET2.name]: { id: NET2.name, lvid: COMPUTE1.lvid.net2, network_type: 'vxlan', physical_network: null, segmentation_id: NET2.vni },
  };
  const port = (name: string, d: DeviceDetails, type: 'system' | 'internal'): WiredPort => ({ name, type, ifaceId: d.device, details: d, network: nets[d.network_id] });
  const ports = [
    port(hybridVethOvsEnd(VM1.portId), details({ device: VM1.portId, mac_address: VM1.mac, network_id: NET1.name, device_owner: 'compute:nova', fixed_ips: [{ subnet_id: 's1', ip_address: VM1.ip }] }, NET1.vni), 'system'),
    ...[NET1, NET2].map((n, i) =>
      port(
        routerInterfaceDevice(n.qrPort),
        details({ device: n.qrPort, mac_address: n.qrMac, network_id: n.name, device_owner: 'network:router_interface_distributed', fixed_ips: [{ subnet_id: `s${i + 1}`, ip_address: n.gateway }] }, n.vni),
        'internal',
      ),
    ),
  ];
  const fdb: FdbEntries = {
    [NET1.name]: { network_type: 'vxlan', segment_id: NET1.vni, ports: { [COMPUTE2.tunnelIp]: [FLOODING_ENTRY] } },
    [NET2.name]: { network_type: 'vxlan', segment_id: NET2.vni, ports: { [COMPUTE2.tunnelIp]: [FLOODING_ENTRY, [VM2.mac, VM2.ip]] } },
  };
  return { settings: SETTINGS, ports, networks: Object.values(nets), fdb, dvrMac: COMPUTE1.dvrMac, remoteDvrMacs: [COMPUTE2.dvrMac], physicalBridges: [] };
}

/** Table, priority and match as OVS keys them: field order and number base do not matter. */
const key = (f: Flow) =>
  `${f.table}|${f.priority}|${f.match
    .replace(/tun_id=0x([0-9a-f]+)/, (_, h) => `tun_id=${parseInt(h, 16)}`)
    .split(',')
    .sort()
    .join(',')}`;

describe('OVS agent flows', () => {
  it("cover every flow of the hand-written DVR compute node (testbed.ts), same tables, priorities and matches", () => {
    const mine = bridgesOf(testbedPlan());
    const ref = computeState(COMPUTE1).ovs.bridges;
    for (const bridge of ['br-int', 'br-tun']) {
      const have = new Set(mine[bridge].map(key));
      const missing = itemsOf(ref[bridge].flows).filter((f) => !have.has(key(f)));
      assert.deepEqual(missing, [], `${bridge}: testbed flows the agent does not write`);
    }
    // And the actions that make the east-west walk, as the testbed has them.
    const tun = new Map(mine['br-tun'].map((f) => [key(f), f.actions]));
    assert.equal(tun.get(`1|1|dl_src=${NET2.qrMac},dl_vlan=${COMPUTE1.lvid.net2}`), `mod_dl_src:${COMPUTE1.dvrMac},resubmit(,2)`);
    assert.equal(tun.get(`9|1|dl_src=${COMPUTE2.dvrMac}`), 'output:patch-int');
    assert.equal(tun.get(`20|2|dl_dst=${VM2.mac},dl_vlan=${COMPUTE1.lvid.net2}`), `strip_vlan,load:0x66->NXM_NX_TUN_ID[],output:vxlan-0a000120`);
    const int = new Map(mine['br-int'].map((f) => [key(f), f.actions]));
    assert.equal(int.get(`1|20|dl_dst=${VM1.mac},dl_vlan=${COMPUTE1.lvid.net1}`), `mod_dl_src:${NET1.qrMac},resubmit(,59)`);
    assert.equal(int.get(`60|20|dl_dst=${VM1.mac},dl_vlan=${COMPUTE1.lvid.net1}`), `strip_vlan,output:${hybridVethOvsEnd(VM1.portId)}`);
  });

  it('write each flow once, with a role cookie, and the same text for the same plan', () => {
    const a = bridgesOf(testbedPlan());
    const b = bridgesOf(testbedPlan());
    assert.deepEqual(a, b);
    for (const [bridge, flows] of Object.entries(a)) {
      const keys = flows.map(key);
      assert.equal(new Set(keys).size, keys.length, bridge);
      for (const f of flows) assert.ok((Object.values(COOKIE) as string[]).includes(f.cookie), `${bridge} ${f.match}: ${f.cookie}`);
    }
  });

  it('the same flows whatever order the FDB lists its peers in (a restarted agent gets the server\'s order)', () => {
    const peers = ['10.0.1.41', '10.0.1.42', '10.0.1.43'];
    const withPeers = (order: string[]): OvsPlan => {
      const plan = testbedPlan();
      const ports: FdbEntries[string]['ports'] = {};
      for (const ip of order) ports[ip] = [FLOODING_ENTRY, [`fa:16:3e:00:00:${ip.slice(-2)}`, `192.168.1.${ip.slice(-2)}`]];
      return { ...plan, fdb: { ...plan.fdb, [NET1.name]: { network_type: 'vxlan', segment_id: NET1.vni, ports } } };
    };
    const sorted = (p: OvsPlan) => bridgesOf(p)['br-tun'].map((f) => `${key(f)} ${f.actions}`).sort();
    const a = sorted(withPeers(peers));
    assert.deepEqual(sorted(withPeers([...peers].reverse())), a);
    const flood = a.filter((l) => l.startsWith(`22|1|dl_vlan=${COMPUTE1.lvid.net1} `));
    assert.equal(flood.length, 1, 'one flood flow for the network');
    assert.match(flood[0], /output:vxlan-0a000129,output:vxlan-0a00012a,output:vxlan-0a00012b$/);
  });

  it('a port moving between peers: one unicast flow at a time, and change by change the same flows as a fresh build', () => {
    const [a, b] = ['10.0.1.41', '10.0.1.42'];
    const moving: [string, string] = ['fa:16:3e:00:00:77', '192.168.1.77'];
    const plan = testbedPlan();
    plan.fdb = { ...plan.fdb, [NET1.name]: { network_type: 'vxlan', segment_id: NET1.vni, ports: { [a]: [FLOODING_ENTRY, moving], [b]: [FLOODING_ENTRY, ['fa:16:3e:00:00:78', '192.168.1.78']] } } };
    const sorted = (flows: Flow[]) => flows.map((f) => `${key(f)} ${f.actions}`).sort();
    // A fresh agent (its own settings object: nothing remembered) given the same FDB.
    const fresh = () => sorted(bridgesOf({ ...plan, settings: { ...SETTINGS }, fdb: structuredClone(plan.fdb) })['br-tun']);
    const unicast = (flows: Flow[]) => flows.filter((f) => f.table === 20 && f.match.includes(moving[0])).map((f) => f.actions);
    const step = (delta: FdbEntries[string]['ports'], add: boolean) => {
      applyFdb(plan.fdb, { [NET1.name]: { network_type: 'vxlan', segment_id: NET1.vni, ports: delta } }, add);
      const tun = bridgesOf(plan)['br-tun'];
      assert.deepEqual(sorted(tun), fresh());
      return unicast(tun);
    };
    assert.deepEqual(unicast(bridgesOf(plan)['br-tun']), [`strip_vlan,load:0x${NET1.vni.toString(16)}->NXM_NX_TUN_ID[],output:vxlan-0a000129`]);
    // b learns it before a forgets it: a's flow stays, once.
    assert.deepEqual(step({ [b]: [moving] }, true), [`strip_vlan,load:0x${NET1.vni.toString(16)}->NXM_NX_TUN_ID[],output:vxlan-0a000129`]);
    // a lets go: b's.
    assert.deepEqual(step({ [a]: [moving] }, false), [`strip_vlan,load:0x${NET1.vni.toString(16)}->NXM_NX_TUN_ID[],output:vxlan-0a00012a`]);
    // And ordinary changes after it: a new port on a, a new peer, a peer gone.
    step({ [a]: [['fa:16:3e:00:00:79', '192.168.1.79']] }, true);
    step({ '10.0.1.43': [FLOODING_ENTRY, ['fa:16:3e:00:00:7a', '192.168.1.80']] }, true);
    step({ [b]: [FLOODING_ENTRY, moving, ['fa:16:3e:00:00:78', '192.168.1.78']] }, false);
    assert.deepEqual(unicast(bridgesOf(plan)['br-tun']), []);
  });

  it('hosts of one process share peer records, and each judges a moving port by its own FDB', () => {
    const [a, b] = ['10.0.1.41', '10.0.1.42'];
    const moving: [string, string] = ['fa:16:3e:00:00:77', '192.168.1.77'];
    const other: [string, string] = ['fa:16:3e:00:00:78', '192.168.1.78'];
    // The same list objects on both hosts, as the agents' shared entry lists are.
    const aList: FdbEntries[string]['ports'][string] = [FLOODING_ENTRY, moving];
    const bList: FdbEntries[string]['ports'][string] = [FLOODING_ENTRY, other];
    const bMoved: FdbEntries[string]['ports'][string] = [FLOODING_ENTRY, other, moving];
    const entry = (ports: FdbEntries[string]['ports']) => ({ [NET1.name]: { network_type: 'vxlan', segment_id: NET1.vni, ports } });
    // Host 1 has not heard that the port moved; host 2 (another address) has heard a let go.
    const one = { ...testbedPlan(), settings: { ...SETTINGS } };
    one.fdb = { ...one.fdb, ...entry({ [a]: aList, [b]: bList }) };
    const two = { ...testbedPlan(), settings: { ...SETTINGS, localIp: '10.0.1.50' } };
    two.fdb = { ...two.fdb, ...entry({ [a]: [FLOODING_ENTRY], [b]: bMoved }) };
    const unicast = (p: OvsPlan) => bridgesOf(p)['br-tun'].filter((f) => f.table === 20 && f.match.includes(moving[0])).map((f) => f.actions.split('output:')[1]);
    const sorted = (flows: Flow[]) => flows.map((f) => `${key(f)} ${f.actions}`).sort();
    const fresh = (p: OvsPlan) => sorted(bridgesOf({ ...p, settings: { ...p.settings }, fdb: structuredClone(p.fdb) })['br-tun']);
    for (let round = 0; round < 2; round++) {
      assert.deepEqual(unicast(one), ['vxlan-0a000129']);
      assert.deepEqual(unicast(two), ['vxlan-0a00012a']);
    }
    // Host 1 hears b learn it before a lets go: still a's, once; then a's goes, and b's is the one.
    applyFdb(one.fdb, entry({ [b]: [moving] }), true);
    assert.deepEqual(unicast(one), ['vxlan-0a000129']);
    assert.deepEqual(sorted(bridgesOf(one)['br-tun']), fresh(one));
    applyFdb(one.fdb, entry({ [a]: [moving] }), false);
    assert.deepEqual(unicast(one), ['vxlan-0a00012a']);
    assert.deepEqual(sorted(bridgesOf(one)['br-tun']), fresh(one));
    // Host 2 was not disturbed by any of it.
    assert.deepEqual(unicast(two), ['vxlan-0a00012a']);
    assert.deepEqual(sorted(bridgesOf(two)['br-tun']), fresh(two));
  });

  it('without distributed routing: no DVR tables, patch-int goes straight to t2', () => {
    const plan = { ...testbedPlan(), settings: { ...SETTINGS, distributed: false } };
    const tun = bridgesOf(plan)['br-tun'];
    assert.ok(tun.some((f) => f.table === 0 && f.match === 'in_port=patch-int' && f.actions === 'resubmit(,2)'));
    assert.ok(!tun.some((f) => f.table === 1 || f.table === 9));
    assert.ok(tun.some((f) => f.table === 4 && f.actions.endsWith('resubmit(,10)')));
  });

  it('translate physical VLANs both ways (vlan and flat) and skip anti-spoofing for network:* ports', () => {
    const vlanNet: LocalNetwork = { id: 'v', lvid: 7, network_type: 'vlan', physical_network: 'vlan', segmentation_id: 150 };
    const flatNet: LocalNetwork = { id: 'x', lvid: 8, network_type: 'flat', physical_network: 'external', segmentation_id: null };
    const plan: OvsPlan = {
      settings: { ...SETTINGS, distributed: false },
      ports: [
        { name: 'qvoa', type: 'system', ifaceId: 'a', network: vlanNet, details: details({ device: 'a', mac_address: 'fa:16:3e:00:00:0a', network_id: 'v', device_owner: 'compute:nova', fixed_ips: [{ subnet_id: 's', ip_address: '10.9.0.5' }] }, 150) },
        { name: 'qg-b', type: 'internal', ifaceId: 'b', network: flatNet, details: details({ device: 'b', mac_address: 'fa:16:3e:00:00:0b', network_id: 'x', device_owner: 'network:router_gateway', fixed_ips: [{ subnet_id: 'e', ip_address: '203.0.113.5' }] }, 0) },
      ],
      networks: [vlanNet, flatNet],
      fdb: {},
      remoteDvrMacs: [],
      physicalBridges: [
        { physnet: 'vlan', bridge: 'br-vlan', intPatch: 'int-br-vlan', phyPatch: 'phy-br-vlan' },
        { physnet: 'external', bridge: 'br-ex', intPatch: 'int-br-ex', phyPatch: 'phy-br-ex' },
      ],
    };
    const b = bridgesOf(plan);
    const text = (br: string) => b[br].map((f) => `t${f.table} p${f.priority} ${f.match} -> ${f.actions}`);
    assert.ok(text('br-int').includes('t0 p3 in_port=int-br-vlan,dl_vlan=150 -> mod_vlan_vid:7,resubmit(,59)'));
    assert.ok(text('br-int').includes('t0 p3 in_port=int-br-ex,vlan_tci=0x0000/0x1fff -> mod_vlan_vid:8,resubmit(,59)'));
    assert.ok(text('br-vlan').includes('t0 p4 in_port=phy-br-vlan,dl_vlan=7 -> mod_vlan_vid:150,NORMAL'));
    assert.ok(text('br-ex').includes('t0 p4 in_port=phy-br-ex,dl_vlan=8 -> strip_vlan,NORMAL'));
    assert.ok(text('br-int').some((l) => l.startsWith('t24 p2 in_port=qvoa,arp,arp_spa=10.9.0.5')));
    assert.ok(!text('br-int').some((l) => l.includes('in_port=qg-b')), 'no anti-spoofing for the router gateway');
  });

  it('the fragment tags ports with their local VLAN (dead VLAN when unknown) and records it in other_config', () => {
    const plan = testbedPlan();
    plan.ports.push({ name: 'qvounknown', type: 'system', ifaceId: 'gone' });
    const st = ovsFragment(plan);
    const p = st.ovs.bridges['br-int'].ports;
    assert.equal(p[hybridVethOvsEnd(VM1.portId)].tag, COMPUTE1.lvid.net1);
    assert.deepEqual(p[hybridVethOvsEnd(VM1.portId)].other_config, { net_uuid: NET1.name, network_type: 'vxlan', tag: String(COMPUTE1.lvid.net1), segmentation_id: String(NET1.vni) });
    assert.equal(p.qvounknown.tag, DEAD_VLAN_TAG);
    const tunnels = Object.values(st.ovs.bridges['br-tun'].ports).filter((x) => x.type === 'vxlan');
    assert.deepEqual(tunnels.map((t) => t.name), ['vxlan-0a000120']);
  });
});

describe('FDB cache', () => {
  const delta = (ip: string, entries: Array<[string, string]>): FdbEntries => ({ n: { network_type: 'vxlan', segment_id: 5, ports: { [ip]: entries } } });

  it('adds and removes entries, a new entry object per change, and forgets a network with no entry left', () => {
    const fdb: FdbEntries = {};
    applyFdb(fdb, delta('10.0.1.2', [FLOODING_ENTRY, ['fa:16:3e:00:00:01', '10.1.0.5']]), true);
    const first = fdb.n;
    applyFdb(fdb, delta('10.0.1.2', [['fa:16:3e:00:00:01', '10.1.0.5']]), true);
    assert.equal(fdb.n, first, 'a duplicate add changes nothing');
    const firstList = first.ports['10.0.1.2'];
    applyFdb(fdb, delta('10.0.1.3', [FLOODING_ENTRY]), true);
    assert.notEqual(fdb.n, first, 'the entry object changes with its content');
    assert.deepEqual(Object.keys(fdb.n.ports), ['10.0.1.2', '10.0.1.3']);
    assert.equal(fdb.n.ports['10.0.1.2'], firstList, "a peer's unchanged list stays the same object");
    applyFdb(fdb, delta('10.0.1.2', [FLOODING_ENTRY, ['fa:16:3e:00:00:01', '10.1.0.5']]), false);
    applyFdb(fdb, delta('10.0.1.3', [FLOODING_ENTRY]), false);
    assert.deepEqual(fdb, {});
  });

  it("keeps the cached entry object when the server's is the same", () => {
    const a: FdbEntries = {};
    applyFdb(a, delta('10.0.1.2', [FLOODING_ENTRY, ['fa:16:3e:00:00:01', '10.1.0.5']]), true);
    const same = keepUnchanged(a, delta('10.0.1.2', [['fa:16:3e:00:00:01', '10.1.0.5'], FLOODING_ENTRY]));
    assert.equal(same.n, a.n);
    const other = keepUnchanged(a, delta('10.0.1.2', [FLOODING_ENTRY]));
    assert.notEqual(other.n, a.n);
  });
});

describe('FDB entries shared between the hosts of a process', () => {
  it("two hosts' equal entries are one list per peer, and a flooding-only list stays each peer's own", () => {
    const flood = (ips: string[]): FdbEntries => ({ n: { network_type: 'vxlan', segment_id: 77, ports: Object.fromEntries(ips.map((ip) => [ip, [FLOODING_ENTRY]])) } });
    const hostA: FdbEntries = {};
    const hostB: FdbEntries = {};
    applyFdb(hostA, flood(['10.0.1.21', '10.0.1.22']), true);
    applyFdb(hostB, flood(['10.0.1.21']), true);
    const fetched = keepUnchanged({}, flood(['10.0.1.21', '10.0.1.22']));
    assert.equal(hostB.n.ports['10.0.1.21'], hostA.n.ports['10.0.1.21']);
    assert.equal(fetched.n.ports['10.0.1.22'], hostA.n.ports['10.0.1.22']);
    assert.notEqual(hostA.n.ports['10.0.1.21'], hostA.n.ports['10.0.1.22'], 'the same entries, two peers');
    // Built on two hosts from those lists: each its own tunnels and the flood to both peers.
    const net: LocalNetwork = { id: 'n', lvid: 77, network_type: 'vxlan', physical_network: null, segmentation_id: 77 };
    const plan = (localIp: string): OvsPlan => ({ settings: { ...SETTINGS, localIp }, ports: [], networks: [net], fdb: hostA, dvrMac: COMPUTE1.dvrMac, remoteDvrMacs: [], physicalBridges: [] });
    const a = planFlows(plan('10.0.1.31'));
    const b = planFlows(plan('10.0.1.21'));
    assert.deepEqual(a.tunnels.map((t) => t.remoteIp).sort(), ['10.0.1.21', '10.0.1.22']);
    assert.deepEqual(b.tunnels.map((t) => t.remoteIp), ['10.0.1.22'], 'a host has no tunnel to itself');
    const floodOf = (p: ReturnType<typeof planFlows>) => itemsOf(p.bridges['br-tun']).find((f) => f.table === 22 && f.match.includes('dl_vlan=77'))?.actions ?? '';
    assert.equal((floodOf(a).match(/output:/g) ?? []).length, 2, floodOf(a));
    assert.equal((floodOf(b).match(/output:/g) ?? []).length, 1, floodOf(b));
  });
});

describe('local VLANs', () => {
  it('restores what the ports record, allocates the lowest free id, gives back unused ones', () => {
    let s = addBridge(emptyHost(), 'br-int');
    s = addPort(s, 'br-int', systemPort('qvo1', { tag: 3, other_config: { net_uuid: 'net-a', tag: '3' } }));
    s = addPort(s, 'br-int', systemPort('qvo2', { tag: DEAD_VLAN_TAG }));
    const m = new LocalVlanMap();
    m.restore(s, 'br-int');
    assert.equal(m.get('net-a'), 3);
    assert.equal(m.allocate('net-b'), 1);
    assert.equal(m.allocate('net-c'), 2);
    assert.equal(m.allocate('net-d'), 4);
    assert.equal(m.allocate('net-a'), 3);
    m.retain(new Set(['net-a', 'net-d']));
    assert.equal(m.allocate('net-e'), 1);
    assert.equal(m.get('net-b'), undefined);
  });

  it('takes the offered segmentation id when it is free, so hosts agree on a network\'s VLAN', () => {
    const a = new LocalVlanMap();
    const b = new LocalVlanMap();
    assert.equal(b.allocate('net-y'), 1, 'another network first on host b');
    for (const m of [a, b]) assert.equal(m.allocate('net-x', 7), 7);
    assert.equal(a.allocate('net-z', 7), 1, 'taken: the lowest free one');
    assert.equal(a.allocate('net-w', 5000), 2, 'a VNI beyond 4094: the lowest free one');
    assert.equal(a.allocate('net-v', DEAD_VLAN_TAG), 3, 'never the dead VLAN');
    assert.equal(a.allocate('net-x', 9), 7, 'a network keeps its VLAN');
  });
});
