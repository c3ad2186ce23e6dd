// The OVS agent against a real server (in-process bus) on emulated hosts: what it writes on
// a DVR compute host, and packets through what it wrote.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { emptyHost } from '../../host/build.js';
import { diff } from '../../host/diff.js';
import { renderFlow } from '../../host/flow.js';
import { hybridVethOvsEnd, routerInterfaceDevice, tunnelPortName } from '../../host/names.js';
import { memberDigest, type MemberChange, type MemberIps } from '../../rpc/members.js';
import { AGENT_TOPICS, hostTopic, type AgentMethods } from '../../rpc/messages.js';
import { renderTrace } from '../../trace/render.js';
import { COOKIE, DEAD_VLAN_TAG } from './constants.js';
import { Lab, qrouterState, type RouterItf, type VmPort } from './testing.js';
import { itemsOf } from '../../host/chunks.js';

/** The agent's calls and the member updates cast to its host, until restore(). */
function spy(lab: Lab, host: string) {
  const agent = lab.node(host).agent as any;
  const transport = lab.serverTransport as any;
  const calls: string[] = [];
  const casts: Array<AgentMethods['security_groups_member_updated']> = [];
  const call = agent.call;
  const cast = transport.cast;
  agent.call = (method: string, args: unknown) => (calls.push(method), call.call(agent, method, args));
  transport.cast = (topic: string, method: string, args: any) => {
    if (topic === hostTopic(AGENT_TOPICS.ovs, host) && method === 'security_groups_member_updated') casts.push(args);
    return cast.call(transport, topic, method, args);
  };
  const restore = () => {
    agent.call = call;
    transport.cast = cast;
  };
  return { calls, casts, restore };
}

const flowsOf = (lab: Lab, host: string, bridge: string) => itemsOf(lab.node(host).host.readState().ovs.bridges[bridge]?.flows ?? []).map(renderFlow);
const has = (flows: string[], re: RegExp, what: string) => assert.ok(flows.some((f) => re.test(f)), `${what}: no flow matching ${re}\n${flows.join('\n')}`);

describe('OVS agent on DVR compute hosts', () => {
  let lab: Lab;
  const ids: Record<string, any> = {};
  let vm1: VmPort, vm2: VmPort, vm3: VmPort;
  const members = (h: string) => Object.values(lab.node(h).host.readState().namespaces[''].ipsets).flatMap((x) => x.members);

  before(async () => {
    lab = await Lab.start(['compute1', 'compute2']);
  });
  after(async () => {
    await lab?.close();
  });

  it('registers as the Open vSwitch agent with its tunnel endpoint and gets a DVR MAC', async () => {
    const agents = (await lab.ok('GET', '/v2.0/agents?agent_type=Open vSwitch agent')).agents;
    assert.deepEqual(agents.map((a: any) => a.host).sort(), ['compute1', 'compute2']);
    const a = agents.find((x: any) => x.host === 'compute1');
    assert.equal(a.binary, 'neutron-openvswitch-agent');
    assert.equal(a.topic, 'N/A');
    assert.equal(a.configurations.tunneling_ip, '10.0.1.31');
    assert.deepEqual(a.configurations.bridge_mappings, { vlan: 'br-vlan', external: 'br-ex' });
    assert.equal(a.configurations.in_distributed_mode, true);
    assert.match(lab.node('compute1').agent.dvrMac!, /^fa:16:3f(:[0-9a-f]{2}){3}$/);
  });

  it('builds br-int, br-tun and the patch pairs, with the skeleton flows, before any port', async () => {
    const st = lab.node('compute1').host.readState();
    const br = st.ovs.bridges;
    assert.equal(br['br-int'].fail_mode, 'secure');
    assert.deepEqual([br['br-int'].ports['patch-tun']?.type, br['br-tun'].ports['patch-int']?.type], ['patch', 'patch']);
    assert.equal(br['br-int'].ports['int-br-ex']?.type, 'patch');
    assert.equal(br['br-ex'].ports['phy-br-ex']?.type, 'patch');
    assert.ok(br['br-ex'].ports.eth2, "the operator's NIC stays");
    assert.equal(br['br-vlan'].ports['phy-br-vlan']?.type, 'patch');
    const tun = flowsOf(lab, 'compute1', 'br-tun');
    has(tun, /^table=0,priority=1,cookie=0x4e01,in_port=patch-int,actions=resubmit\(,1\)$/, 'patch-int to DVR_PROCESS');
    has(tun, /^table=10,priority=1,.*learn\(table=20,hard_timeout=300/, 'learn');
    has(tun, /^table=22,priority=0,.*actions=drop$/, 'flood default');
    const int = flowsOf(lab, 'compute1', 'br-int');
    has(int, /^table=0,priority=65535,.*dl_vlan=4095,actions=drop$/, 'dead VLAN');
    has(int, /^table=60,priority=3,.*actions=NORMAL$/, 'NORMAL');
    has(int, /^table=0,priority=2,.*in_port=int-br-ex,actions=drop$/, 'untranslated traffic from br-ex dropped');
    has(flowsOf(lab, 'compute1', 'br-ex'), /^table=0,priority=2,cookie=0x4e04,in_port=phy-br-ex,actions=resubmit\(,1\)$/, 'DVR on br-ex');
  });

  it('wires instance ports: a local VLAN per network, tags, ACTIVE, tunnels and l2pop flows to the other host only', async () => {
    ids.n1 = await lab.network('net1', '192.168.1.0/24');
    ids.n2 = await lab.network('net2', '192.168.2.0/24');
    vm1 = await lab.vmPort('vm1', ids.n1.net.id, 'compute1');
    vm3 = await lab.vmPort('vm3', ids.n1.net.id, 'compute2');
    vm2 = await lab.vmPort('vm2', ids.n2.net.id, 'compute2');
    const gw = { [ids.n1.net.id]: '192.168.1.1', [ids.n2.net.id]: '192.168.2.1' };
    await lab.plug('compute1', [vm1], gw);
    await lab.plug('compute2', [vm2, vm3], gw);
    await lab.settle();
    for (const vm of [vm1, vm2, vm3]) assert.equal((await lab.ok('GET', `/v2.0/ports/${vm.id}`)).port.status, 'ACTIVE', vm.name);
    const c1 = lab.node('compute1').host.readState();
    const qvo = c1.ovs.bridges['br-int'].ports[hybridVethOvsEnd(vm1.id)];
    assert.equal(qvo.tag, 1);
    assert.equal(qvo.other_config?.net_uuid, ids.n1.net.id);
    assert.equal(qvo.other_config?.network_type, 'vxlan');
    const c2 = lab.node('compute2').host.readState();
    assert.deepEqual(
      [vm2, vm3].map((v) => c2.ovs.bridges['br-int'].ports[hybridVethOvsEnd(v.id)].tag).sort(),
      [1, 2],
      'compute2: one VLAN per network',
    );
    // compute1 tunnels to compute2 only (its only peer on net1), with key=flow.
    const tunPorts = Object.values(c1.ovs.bridges['br-tun'].ports).filter((p) => p.type === 'vxlan');
    assert.deepEqual(
      tunPorts.map((p) => [p.name, p.type === 'vxlan' && p.remote_ip, p.type === 'vxlan' && p.local_ip, p.type === 'vxlan' && p.key]),
      [[tunnelPortName('vxlan', '10.0.1.32'), '10.0.1.32', '10.0.1.31', 'flow']],
    );
    const vni = ids.n1.net['provider:segmentation_id'];
    const tun = flowsOf(lab, 'compute1', 'br-tun');
    const t = tunnelPortName('vxlan', '10.0.1.32');
    has(tun, new RegExp(`^table=4,priority=1,cookie=0x4e02,tun_id=0x${vni.toString(16)},actions=mod_vlan_vid:1,resubmit\\(,9\\)$`), 'VNI to local VLAN');
    has(tun, new RegExp(`^table=0,priority=1,.*in_port=${t},actions=resubmit\\(,4\\)$`), 'tunnel classification');
    has(tun, new RegExp(`^table=20,priority=2,cookie=0x4e03,dl_vlan=1,dl_dst=${vm3.mac},actions=strip_vlan,load:0x${vni.toString(16)}->NXM_NX_TUN_ID\\[\\],output:${t}$`), 'l2pop unicast');
    has(tun, new RegExp(`^table=21,priority=1,cookie=0x4e03,arp,dl_vlan=1,arp_tpa=${vm3.ip.replace(/\./g, '\\.')},`), 'ARP responder');
    has(tun, new RegExp(`^table=22,priority=1,cookie=0x4e03,dl_vlan=1,actions=strip_vlan,load:0x${vni.toString(16)}->NXM_NX_TUN_ID\\[\\],output:${t}$`), 'flooding');
    assert.ok(!tun.some((f) => f.includes(vm2.mac)), 'no entry for net2, where compute1 has no port');
    // Anti-spoofing for the instance port.
    const int = flowsOf(lab, 'compute1', 'br-int');
    const q = hybridVethOvsEnd(vm1.id);
    has(int, new RegExp(`^table=24,priority=2,cookie=0x4e05,in_port=${q},arp,arp_spa=${vm1.ip.replace(/\./g, '\\.')},actions=resubmit\\(,25\\)$`), 'ARP spoofing');
    has(int, new RegExp(`^table=25,priority=2,cookie=0x4e05,in_port=${q},dl_src=${vm1.mac},actions=resubmit\\(,30\\)$`), 'MAC spoofing');
  });

  it('two instances on one VXLAN network on two hosts ping each other through the flows', async () => {
    lab.world.ping({ host: 'compute1', ns: 'vm1' }, vm3.ip);
    const rec = lab.world.ping({ host: 'compute1', ns: 'vm1' }, vm3.ip, { seq: 2 });
    assert.ok(rec.delivered.some((d) => d.host === 'compute2' && d.ns === 'vm3' && d.to === 'icmp echo'), renderTrace(rec));
    assert.ok(rec.delivered.some((d) => d.host === 'compute1' && d.ns === 'vm1' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0), renderTrace(rec));
    const wire = rec.steps.find((s) => s.kind === 'wire' && s.before.encap);
    assert.ok(wire, renderTrace(rec));
    assert.equal(wire.before.encap!.kind, 'vxlan');
    assert.equal(wire.before.encap!.kind === 'vxlan' && wire.before.encap!.vni, ids.n1.net['provider:segmentation_id']);
    assert.deepEqual([wire.before.ip!.src, wire.before.ip!.dst], ['10.0.1.31', '10.0.1.32']);
  });

  it('keeps VNIs apart: an overlapping network with the same address is not reached', async () => {
    ids.n3 = await lab.network('net3', '192.168.1.0/24');
    const vm4 = await lab.vmPort('vm4', ids.n3.net.id, 'compute2', { fixed_ips: [{ ip_address: vm3.ip }] });
    await lab.plug('compute2', [vm2, vm3, vm4]);
    await lab.settle();
    const rec = lab.world.ping({ host: 'compute1', ns: 'vm1' }, vm3.ip, { seq: 3 });
    assert.ok(rec.delivered.some((d) => d.ns === 'vm3' && d.to === 'icmp echo'), renderTrace(rec));
    assert.ok(!rec.steps.some((s) => s.ns === 'vm4'), 'vm4 sees nothing');
    // ARP for the shared address from vm4's side stays on net3 (no peer there: no tunnel flood).
    const rec2 = lab.world.ping({ host: 'compute2', ns: 'vm4' }, vm1.ip);
    assert.ok(!rec2.delivered.some((d) => d.ns === 'vm1'), renderTrace(rec2));
  });

  it('DVR: a router on both networks; east-west leaves with the DVR MAC and arrives with the gateway MAC', async () => {
    const router = (await lab.ok('POST', '/v2.0/routers', { router: { name: 'r1', tenant_id: 'demo' } })).router;
    ids.router = router;
    for (const n of [ids.n1, ids.n2]) await lab.ok('PUT', `/v2.0/routers/${router.id}/add_router_interface`, { subnet_id: n.subnet.id });
    const qr = (await lab.ok('GET', `/v2.0/ports?device_id=${router.id}&device_owner=network:router_interface_distributed`)).ports;
    const itf = (netId: string): RouterItf => {
      const p = qr.find((x: any) => x.network_id === netId);
      return { portId: p.id, mac: p.mac_address, ip: p.fixed_ips[0].ip_address, prefix: 24 };
    };
    ids.tg1 = itf(ids.n1.net.id);
    ids.tg2 = itf(ids.n2.net.id);
    const neigh = [
      { itf: ids.tg1, ip: vm1.ip, mac: vm1.mac },
      { itf: ids.tg1, ip: vm3.ip, mac: vm3.mac },
      { itf: ids.tg2, ip: vm2.ip, mac: vm2.mac },
    ];
    for (const h of ['compute1', 'compute2']) {
      const n = lab.node(h);
      n.composer.setFragment('l3', qrouterState(router.id, [ids.tg1, ids.tg2], neigh));
      await n.composer.reconcile();
    }
    await lab.settle();
    const d1 = lab.node('compute1').agent.dvrMac!;
    const d2 = lab.node('compute2').agent.dvrMac!;
    // The generated tables, as Neutron's DVR agent writes them on compute1.
    const c1 = lab.node('compute1').host.readState().ovs.bridges;
    const lv2 = c1['br-int'].ports[routerInterfaceDevice(ids.tg2.portId)].tag!;
    assert.equal(c1['br-int'].ports[routerInterfaceDevice(ids.tg1.portId)].tag, 1, 'qr- on net1 shares the instance VLAN');
    const tun = flowsOf(lab, 'compute1', 'br-tun');
    has(tun, new RegExp(`^table=1,priority=1,cookie=0x4e04,dl_vlan=${lv2},dl_src=${ids.tg2.mac},actions=mod_dl_src:${d1},resubmit\\(,2\\)$`), 'egress rewrite');
    has(tun, new RegExp(`^table=1,priority=2,cookie=0x4e04,dl_vlan=${lv2},dl_dst=${ids.tg2.mac},actions=drop$`), 'gateway MAC never leaves');
    has(tun, new RegExp(`^table=9,priority=1,cookie=0x4e04,dl_src=${d2},actions=output:patch-int$`), 'remote DVR MAC not learned');
    has(tun, new RegExp(`^table=22,priority=3,cookie=0x4e04,arp,dl_vlan=${lv2},arp_tpa=192\\.168\\.2\\.1,actions=drop$`), 'gateway ARP guard');
    has(tun, new RegExp(`^table=20,priority=2,cookie=0x4e03,dl_vlan=${lv2},dl_dst=${vm2.mac},`), 'compute1 learns vm2 on net2 through the router');
    const int = flowsOf(lab, 'compute1', 'br-int');
    has(int, new RegExp(`^table=0,priority=2,cookie=0x4e04,in_port=patch-tun,dl_src=${d2},actions=resubmit\\(,1\\)$`), 'DVR_TO_SRC_MAC entry');
    has(int, new RegExp(`^table=1,priority=20,cookie=0x4e04,dl_vlan=1,dl_dst=${vm1.mac},actions=mod_dl_src:${ids.tg1.mac},resubmit\\(,59\\)$`), 'ingress rewrite');
    has(int, new RegExp(`^table=60,priority=20,cookie=0x4e04,dl_vlan=1,dl_dst=${vm1.mac},actions=strip_vlan,output:${hybridVethOvsEnd(vm1.id)}$`), 'direct output');
    assert.ok(!tun.some((f) => f.includes(`dl_dst=${ids.tg1.mac},actions=strip_vlan`)), 'no l2pop entry for the distributed qr- port');

    lab.world.ping({ host: 'compute1', ns: 'vm1' }, vm2.ip);
    const rec = lab.world.ping({ host: 'compute1', ns: 'vm1' }, vm2.ip, { seq: 2 });
    const req = rec.steps.filter((x) => x.pkt === rec.packets[0].id);
    const wire = req.find((x) => x.kind === 'wire' && x.before.encap);
    assert.ok(wire, renderTrace(rec));
    assert.equal(wire.before.encap!.kind === 'vxlan' && wire.before.encap!.vni, ids.n2.net['provider:segmentation_id']);
    assert.equal(wire.before.encap!.inner.eth.src, d1, 'on the tunnel: the sending host DVR MAC');
    const back = req.find((x) => x.host === 'compute2' && x.bridge === 'br-int' && x.table === 1 && !!x.after);
    assert.ok(back, renderTrace(rec));
    assert.deepEqual([back.before.eth.src, back.after!.eth.src], [d1, ids.tg2.mac]);
    const got = rec.delivered.find((x) => x.host === 'compute2' && x.ns === 'vm2' && x.to === 'icmp echo');
    assert.ok(got, renderTrace(rec));
    assert.deepEqual([got.frame.eth.src, got.frame.ip!.src], [ids.tg2.mac, vm1.ip]);
    assert.ok(!req.some((x) => x.host === 'compute2' && x.ns?.startsWith('qrouter-')), 'not routed again on compute2');
    assert.ok(rec.delivered.some((x) => x.host === 'compute1' && x.ns === 'vm1' && x.frame.l4?.kind === 'icmp' && x.frame.l4.type === 0), renderTrace(rec));
    // ARP for the distributed gateway never crosses hosts.
    const arp = lab.world.inject(
      { host: 'compute1', ns: 'vm1', dev: 'eth0' },
      { eth: { src: vm1.mac, dst: 'ff:ff:ff:ff:ff:ff', type: 0x0806 }, arp: { op: 1, sha: vm1.mac, spa: vm1.ip, tha: '00:00:00:00:00:00', tpa: '192.168.1.1' } },
    );
    assert.ok(!arp.steps.some((x) => x.kind === 'wire' && x.before.encap), renderTrace(arp));
    assert.ok(arp.delivered.some((x) => x.host === 'compute1' && x.ns === 'vm1' && x.frame.arp?.op === 2), 'answered by the local qr-');
  });

  it('drops ARP and frames an instance forges (ARP spoofing protection in br-int t24/t25)', async () => {
    const forgedArp = lab.world.inject(
      { host: 'compute1', ns: 'vm1', dev: 'eth0' },
      { eth: { src: vm1.mac, dst: 'ff:ff:ff:ff:ff:ff', type: 0x0806 }, arp: { op: 1, sha: vm1.mac, spa: '192.168.1.250', tha: '00:00:00:00:00:00', tpa: vm3.ip } },
    );
    const drop = forgedArp.steps.find((x) => x.bridge === 'br-int' && x.table === 24);
    assert.ok(drop, renderTrace(forgedArp));
    assert.ok(!forgedArp.steps.some((x) => x.bridge === 'br-tun'), 'never reaches the tunnel');
    const forgedMac = lab.world.inject(
      { host: 'compute1', ns: 'vm1', dev: 'eth0' },
      { eth: { src: 'fa:16:3e:66:66:66', dst: 'ff:ff:ff:ff:ff:ff', type: 0x0806 }, arp: { op: 1, sha: 'fa:16:3e:66:66:66', spa: vm1.ip, tha: '00:00:00:00:00:00', tpa: vm3.ip } },
    );
    assert.ok(forgedMac.steps.some((x) => x.bridge === 'br-int' && x.table === 25), renderTrace(forgedMac));
    assert.ok(!forgedMac.steps.some((x) => x.bridge === 'br-tun'), 'never reaches the tunnel');
  });

  it('a VLAN provider network: br-vlan translates local VLANs to the segment and back across hosts', async () => {
    const v = await lab.network('vnet', '10.50.0.0/24', { 'provider:network_type': 'vlan', 'provider:physical_network': 'vlan', 'provider:segmentation_id': 150 });
    const a = await lab.vmPort('va', v.net.id, 'compute1');
    const b = await lab.vmPort('vb', v.net.id, 'compute2');
    ids.vlanVms = [a, b];
    await lab.plug('compute1', [vm1, a]);
    await lab.plug('compute2', [vm2, vm3, b]);
    await lab.settle();
    const lv = lab.node('compute1').host.readState().ovs.bridges['br-int'].ports[hybridVethOvsEnd(a.id)].tag!;
    has(flowsOf(lab, 'compute1', 'br-vlan'), new RegExp(`^table=2,priority=4,cookie=0x4e02,in_port=phy-br-vlan,dl_vlan=${lv},actions=mod_vlan_vid:150,NORMAL$`), 'local VLAN to segment');
    has(flowsOf(lab, 'compute1', 'br-int'), new RegExp(`^table=0,priority=3,cookie=0x4e02,in_port=int-br-vlan,dl_vlan=150,actions=mod_vlan_vid:${lv},resubmit\\(,59\\)$`), 'segment to local VLAN');
    lab.world.ping({ host: 'compute1', ns: 'va' }, b.ip);
    const rec = lab.world.ping({ host: 'compute1', ns: 'va' }, b.ip, { seq: 2 });
    assert.ok(rec.delivered.some((x) => x.host === 'compute2' && x.ns === 'vb' && x.to === 'icmp echo'), renderTrace(rec));
    const wire = rec.steps.filter((x) => x.kind === 'wire' && x.before.ip);
    assert.ok(wire.length && wire.every((x) => x.before.vlan === 150 && !x.before.encap), renderTrace(rec));
  });

  it('a security group rule change reaches the firewall of the hosts with members', async () => {
    const sg = (await lab.ok('GET', '/v2.0/security-groups?name=default&tenant_id=demo')).security_groups[0];
    await lab.ok('POST', '/v2.0/security-group-rules', { security_group_rule: { security_group_id: sg.id, direction: 'ingress', protocol: 'tcp', port_range_min: 2222, port_range_max: 2222, tenant_id: 'demo' } });
    await lab.settle();
    for (const h of ['compute1', 'compute2']) assert.match(lab.node(h).host.readState().namespaces[''].iptables.filter!, /--dport 2222/, h);
  });

  it("a member's new allowed address reaches the other hosts' ipsets of its group, as a change", async () => {
    assert.ok(members('compute1').includes(vm2.ip), "compute1's ipset has vm2");
    assert.ok(!members('compute1').includes('10.9.9.9'));
    // The member update carries the change: compute1 does not call back for the group's view.
    const { calls, casts, restore } = spy(lab, 'compute1');
    try {
      await lab.ok('PUT', `/v2.0/ports/${vm2.id}`, { port: { allowed_address_pairs: [{ ip_address: '10.9.9.9' }] } });
      await lab.settle();
      assert.ok(members('compute1').includes('10.9.9.9'), "compute1's ipset has vm2's pair");
      await lab.ok('PUT', `/v2.0/ports/${vm2.id}`, { port: { allowed_address_pairs: [] } });
      await lab.settle();
      assert.ok(!members('compute1').includes('10.9.9.9'), 'and loses it with the pair');
    } finally {
      restore();
    }
    assert.ok(!calls.includes('security_group_info_for_devices'), calls.join());
    // The group was announced when the VMs bound: now only what changed goes out.
    const changes = casts.map((a) => Object.values(a.member_changes ?? {}) as MemberChange[]);
    assert.ok(casts.length >= 2 && casts.every((a) => !a.member_ips), JSON.stringify(casts));
    assert.deepEqual(changes.flat().map((c) => c.IPv4), [{ add: ['10.9.9.9'], del: [] }, { add: [], del: ['10.9.9.9'] }]);
  });

  it('a member change that does not reach the members the server announced makes the host fetch the group', async () => {
    const sg = (await lab.ok('GET', '/v2.0/security-groups?name=default&tenant_id=demo')).security_groups[0];
    const agent = lab.node('compute1').agent as any;
    const now: MemberIps = agent.snapshot.sgInfo.sg_member_ips[sg.id];
    const send = async (change: MemberChange) => {
      await lab.serverTransport.cast(hostTopic(AGENT_TOPICS.ovs, 'compute1'), 'security_groups_member_updated', { security_groups: [sg.id], member_changes: { [sg.id]: change } });
      await lab.settle();
    };
    const { calls, restore } = spy(lab, 'compute1');
    try {
      // A change whose digest is that of the members it leads to is taken as it is.
      await send({ IPv4: { add: ['10.7.7.7'], del: [] }, digest: memberDigest({ IPv4: [...now.IPv4, '10.7.7.7'], IPv6: now.IPv6 }) });
      assert.ok(members('compute1').includes('10.7.7.7'));
      assert.ok(!calls.includes('security_group_info_for_devices'), calls.join());
      // One that leads elsewhere (here: to what the server has, without 10.7.7.7): the host asks.
      await send({ IPv4: { add: ['10.8.8.8'], del: [] }, digest: memberDigest(now) });
      assert.ok(calls.includes('security_group_info_for_devices'), calls.join());
    } finally {
      restore();
    }
    assert.ok(!members('compute1').includes('10.7.7.7') && !members('compute1').includes('10.8.8.8'), members('compute1').join());
    assert.ok(members('compute1').includes(vm2.ip));
  });

  it('a wrong or missed l2population cast heals at the next resync (get_fdb_entries)', async () => {
    const n = lab.node('compute1');
    const fdb = await n.agent.call('get_fdb_entries', { host: 'compute1' });
    const net1 = fdb[ids.n1.net.id];
    assert.ok(net1, 'compute1 has peers on net1');
    // A stray remove_fdb_entries (as if the add had been missed): the entries go.
    const before = n.composer.fragment('ovs')!;
    await (n.agent as any).handlers().remove_fdb_entries({ fdb_entries: { [ids.n1.net.id]: net1 } });
    await n.agent.idle();
    assert.ok(!flowsOf(lab, 'compute1', 'br-tun').some((f) => f.includes(vm3.mac)), 'entry removed by the cast');
    // Only br-tun changed: the other bridges of the fragment are last pass's objects.
    const after = n.composer.fragment('ovs')!;
    assert.notEqual(after.ovs.bridges['br-tun'], before.ovs.bridges['br-tun']);
    for (const b of Object.keys(before.ovs.bridges).filter((x) => x !== 'br-tun')) assert.equal(after.ovs.bridges[b], before.ovs.bridges[b], b);
    n.agent.requestSync();
    await lab.settle();
    has(flowsOf(lab, 'compute1', 'br-tun'), new RegExp(`dl_dst=${vm3.mac}`), 'entry back after the resync');
  });

  it('a port event looks at the ports again; the FDB is fetched again only when the networks of the ports change', async () => {
    const n = lab.node('compute1');
    const calls = new Map<string, number>();
    const call = n.agent.call.bind(n.agent);
    (n.agent as any).call = (method: string, args: unknown) => {
      calls.set(method, (calls.get(method) ?? 0) + 1);
      return call(method as any, args as any);
    };
    try {
      // A port_update of vm1 (a new name): its details again, not the FDB (casts keep it).
      await lab.ok('PUT', `/v2.0/ports/${vm1.id}`, { port: { name: 'vm1-renamed' } });
      await lab.settle();
      assert.ok((calls.get('get_devices_details_list') ?? 0) >= 1, 'the ports looked at again');
      assert.equal(calls.get('get_fdb_entries') ?? 0, 0, 'the same networks: no FDB fetch');
      // An instance on net2, new to compute1: the FDB of net2 comes with the pass.
      const vm4 = await lab.vmPort('vm4', ids.n2.net.id, 'compute1');
      await lab.plug('compute1', [vm1, vm4], { [ids.n1.net.id]: '192.168.1.1', [ids.n2.net.id]: '192.168.2.1' });
      await lab.settle();
      assert.ok((calls.get('get_fdb_entries') ?? 0) >= 1, 'a new network: the FDB fetched');
      has(flowsOf(lab, 'compute1', 'br-tun'), new RegExp(`dl_dst=${vm2.mac}`), "net2's peer on compute2");
      await lab.plug('compute1', [vm1]);
      await lab.ok('DELETE', `/v2.0/ports/${vm4.id}`, undefined, 204);
      await lab.settle();
      assert.ok(!flowsOf(lab, 'compute2', 'br-tun').some((f) => f.includes(vm4.mac)), 'an active port deleted at once is withdrawn from its peers');
    } finally {
      (n.agent as any).call = call;
    }
  });

  it('puts the hybrid firewall of the instance ports in the firewall fragment', async () => {
    const fw = lab.node('compute2').composer.fragment('firewall')!;
    const root = fw.namespaces[''];
    for (const vm of [vm2, vm3]) assert.ok(root.iptables.filter!.includes(`neutron-openvswi-i${vm.id.slice(0, 10)}`), vm.name);
    assert.ok(root.iptables.raw!.includes('--zone'), 'conntrack zones');
    assert.ok(Object.keys(root.ipsets).some((n) => n.startsWith('NIPv4')), 'the default group as an ipset');
    const live = lab.node('compute2').host.readState().namespaces[''];
    assert.equal(live.iptables.filter, root.iptables.filter);
  });

  it('a restarted agent writes the same host state: same VLANs, no duplicate flows', async () => {
    for (const h of ['compute1', 'compute2']) {
      const n = lab.node(h);
      const before = n.host.readState();
      await n.agent.stop();
      n.composer.setFragment('ovs', emptyHost());
      n.composer.setFragment('firewall', emptyHost());
      n.agent = lab.newAgent(h, n.composer);
      await n.agent.start();
      await lab.settle();
      const now = n.host.readState();
      assert.deepEqual(diff(before, now), [], `${h}: nothing changed`);
      for (const [name, b] of Object.entries(now.ovs.bridges)) {
        const keys = itemsOf(b.flows).map((f) => `${f.table}|${f.priority}|${f.match}`);
        assert.equal(new Set(keys).size, keys.length, `${h} ${name}: duplicates`);
      }
    }
    const rec = lab.world.ping({ host: 'compute1', ns: 'vm1' }, vm2.ip, { seq: 9 });
    assert.ok(rec.delivered.some((x) => x.ns === 'vm2' && x.to === 'icmp echo'), renderTrace(rec));
  });

  it('parks ports unknown to the server on the dead VLAN; unplugging a VIF removes its wiring and reports it down', async () => {
    const stray: VmPort = { id: '0badc0de-0000-4000-8000-000000000001', mac: 'fa:16:3e:0b:ad:01', ip: '192.168.1.200', network_id: ids.n1.net.id, host: 'compute1', name: 'stray' };
    await lab.plug('compute1', [vm1, stray]);
    await lab.settle();
    const c1 = lab.node('compute1').host.readState().ovs.bridges['br-int'];
    assert.equal(c1.ports[hybridVethOvsEnd(stray.id)].tag, DEAD_VLAN_TAG);
    assert.ok(!itemsOf(c1.flows).some((f) => f.match.includes(hybridVethOvsEnd(stray.id))), 'no flows for it');
    const rec = lab.world.ping({ host: 'compute1', ns: 'stray' }, vm1.ip);
    assert.ok(!rec.delivered.some((x) => x.ns === 'vm1'), renderTrace(rec));
    // Unplug vm1: its port goes down and compute2 forgets it.
    lab.node('compute1').host.delInstance('vm1');
    lab.node('compute1').host.delInstance('stray');
    await lab.plug('compute1', []);
    await lab.settle();
    assert.equal((await lab.ok('GET', `/v2.0/ports/${vm1.id}`)).port.status, 'DOWN');
    const st = lab.node('compute1').host.readState().ovs.bridges['br-int'];
    assert.ok(!st.ports[hybridVethOvsEnd(vm1.id)]);
    assert.ok(!itemsOf(st.flows).some((f) => f.match.includes(vm1.mac) || f.actions.includes(hybridVethOvsEnd(vm1.id))), 'no flow names the port');
    await lab.settle();
    assert.ok(!flowsOf(lab, 'compute2', 'br-tun').some((f) => f.includes(vm1.mac)), 'compute2 dropped its l2pop entries for vm1');
  });

  it('every flow on br-int carries one of the role cookies', async () => {
    const roles = new Set(flowsOf(lab, 'compute1', 'br-int').map((f) => f.match(/cookie=(0x[0-9a-f]+)/)![1]));
    for (const c of roles) assert.ok((Object.values(COOKIE) as string[]).includes(c), c);
  });
});
