// The flows Neutron's OVS agent writes (DVR, l2population, arp_responder), hand-written in
// ovs-ofctl syntax, run through the model: br-tun's ARP responder, learning from tunnels,
// DVR source-MAC rewriting on egress and gateway-MAC rewriting on ingress.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OvsBridge } from './index.js';
import { MAC, arpRequest, icmp } from './fixtures.test-util.js';

const LVID = 1;
const VNI = 0x64;
const QR_IP = '10.0.0.1';
const VM2_IP = '10.0.0.12'; // on the remote host B

/** br-tun on host A with DVR, l2pop and arp_responder (neutron-reference.md 1.1). */
function brTun(clock = () => 0): OvsBridge {
  const b = new OvsBridge('br-tun', { clock });
  b.addPort('patch-int'); // 1
  b.addPort('vxlan-0a000002'); // 2: host B
  b.addPort('vxlan-0a000003'); // 3: host C
  const c = 'cookie=0xb7,';
  b.addFlows([
    `table=0,${c}priority=1,in_port=1,actions=resubmit(,1)`,
    `table=0,${c}priority=1,in_port=2,actions=resubmit(,4)`,
    `table=0,${c}priority=1,in_port=3,actions=resubmit(,4)`,
    `table=0,${c}priority=0,actions=drop`,
    // DVR_PROCESS: egress rewrite of the local qr- MAC to this host's DVR MAC.
    `table=1,${c}priority=1,dl_vlan=${LVID},dl_src=${MAC.qr},actions=mod_dl_src:${MAC.dvrA},resubmit(,2)`,
    `table=1,${c}priority=2,dl_vlan=${LVID},dl_dst=${MAC.qr},actions=drop`,
    `table=1,${c}priority=0,actions=resubmit(,2)`,
    // PATCH_LV_TO_TUN
    `table=2,${c}priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,20)`,
    `table=2,${c}priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,22)`,
    `table=2,${c}priority=1,arp,dl_dst=ff:ff:ff:ff:ff:ff,actions=resubmit(,21)`,
    // VXLAN_TUN_TO_LV -> DVR_NOT_LEARN (9) -> LEARN_FROM_TUN (10)
    `table=4,${c}priority=1,tun_id=${VNI},actions=mod_vlan_vid:${LVID},resubmit(,9)`,
    `table=4,${c}priority=0,actions=drop`,
    `table=9,${c}priority=1,dl_src=${MAC.dvrB},actions=output:1`,
    `table=9,${c}priority=0,actions=resubmit(,10)`,
    `table=10,${c}priority=1,actions=learn(table=20,hard_timeout=300,priority=1,cookie=0xb7,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:1`,
    // UCAST_TO_TUN: l2pop entry for VM2 on host B; miss -> flood.
    `table=20,${c}priority=2,dl_vlan=${LVID},dl_dst=${MAC.vm2},actions=strip_vlan,load:${VNI}->NXM_NX_TUN_ID[],output:2`,
    `table=20,${c}priority=0,actions=resubmit(,22)`,
    // ARP_RESPONDER: answer for VM2 in the switch.
    `table=21,${c}priority=1,arp,dl_vlan=${LVID},arp_tpa=${VM2_IP},actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:${MAC.vm2},load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163e000002->NXM_NX_ARP_SHA[],load:0xa00000c->NXM_OF_ARP_SPA[],in_port`,
    `table=21,${c}priority=0,actions=resubmit(,22)`,
    // FLOOD_TO_TUN, with DVR's gateway-IP ARP guard.
    `table=22,${c}priority=3,dl_vlan=${LVID},arp,arp_tpa=${QR_IP},actions=drop`,
    `table=22,${c}priority=1,dl_vlan=${LVID},actions=strip_vlan,set_tunnel:${VNI},output:2,output:3`,
    `table=22,${c}priority=0,actions=drop`,
  ]);
  return b;
}

describe('Neutron flows in the OVS model', () => {
  it('br-tun table 21 answers an ARP request in the switch, without flooding to tunnels', () => {
    const b = brTun();
    const r = b.process(arpRequest(MAC.vm1, '10.0.0.11', VM2_IP, LVID), 'patch-int');
    assert.equal(r.outputs.length, 1);
    const [o] = r.outputs;
    assert.equal(o.port, 'patch-int'); // back out of its input port (IN_PORT)
    assert.deepEqual(o.frame, {
      eth: { src: MAC.vm2, dst: MAC.vm1, type: 0x0806 },
      vlan: LVID,
      arp: { op: 2, sha: MAC.vm2, spa: VM2_IP, tha: MAC.vm1, tpa: '10.0.0.11' },
    });
    assert.deepEqual(r.steps.map((s) => s.table), [0, 1, 2, 21]);
  });

  it('an ARP request for an address the responder does not know floods to every tunnel with the VNI', () => {
    const b = brTun();
    const r = b.process(arpRequest(MAC.vm1, '10.0.0.11', '10.0.0.99', LVID), 'patch-int');
    assert.deepEqual(r.outputs.map((o) => [o.port, o.tunId, o.frame.vlan]), [
      ['vxlan-0a000002', VNI, undefined],
      ['vxlan-0a000003', VNI, undefined],
    ]);
    assert.deepEqual(r.steps.map((s) => s.table), [0, 1, 2, 21, 22]);
  });

  it('ARP for the distributed gateway IP never leaves the host', () => {
    const b = brTun();
    const r = b.process(arpRequest(MAC.vm1, '10.0.0.11', QR_IP, LVID), 'patch-int');
    assert.deepEqual(r.outputs, []);
    assert.equal(r.steps.at(-1)!.priority, 3);
  });

  it('l2pop unicast goes to the one tunnel with the VNI', () => {
    const b = brTun();
    const r = b.process(icmp(MAC.vm1, MAC.vm2, '10.0.0.11', VM2_IP, LVID), 'patch-int');
    assert.deepEqual(r.outputs.map((o) => [o.port, o.tunId, o.frame.vlan]), [['vxlan-0a000002', VNI, undefined]]);
  });

  it('learn() from a tunnel packet installs a table-20 flow that later packets hit, until hard_timeout', () => {
    let now = 0;
    const b = brTun(() => now);
    const vm3 = MAC.vm3; // on host C, not known by l2pop
    const inbound = b.process(icmp(vm3, MAC.vm1, '10.0.0.13', '10.0.0.11'), 'vxlan-0a000003', { tunId: VNI });
    assert.deepEqual(inbound.outputs.map((o) => [o.port, o.frame.vlan]), [['patch-int', LVID]]);
    const learned = b.dumpFlows({ table: 20 }).find((f) => f.learned)!;
    assert.equal(learned.match, `vlan_tci=0x0001/0x0fff,dl_dst=${vm3}`);
    assert.equal(learned.actions, 'load:0->NXM_OF_VLAN_TCI[],load:0x64->NXM_NX_TUN_ID[],output:3');
    assert.equal([learned.priority, learned.hardTimeout, learned.cookie].join(), '1,300,183');

    const reply = b.process(icmp(MAC.vm1, vm3, '10.0.0.11', '10.0.0.13', LVID), 'patch-int');
    assert.deepEqual(reply.outputs.map((o) => [o.port, o.tunId, o.frame.vlan]), [['vxlan-0a000003', VNI, undefined]]);
    assert.equal(reply.steps.at(-1)!.flow, learned.text);
    assert.equal(b.dumpFlows({ table: 20 }).find((f) => f.learned)!.nPackets, 1);

    // Learning the same thing again refreshes the flow instead of adding another.
    now += 200_000;
    b.process(icmp(vm3, MAC.vm1, '10.0.0.13', '10.0.0.11'), 'vxlan-0a000003', { tunId: VNI });
    assert.equal(b.dumpFlows({ table: 20 }).filter((f) => f.learned).length, 1);
    now += 200_000; // 400 s after the first learn, 200 s after the refresh: still there
    assert.equal(b.process(icmp(MAC.vm1, vm3, '10.0.0.11', '10.0.0.13', LVID), 'patch-int').outputs.length, 1);
    now += 100_000; // 300 s after the refresh: gone, so flooded again
    const flooded = b.process(icmp(MAC.vm1, vm3, '10.0.0.11', '10.0.0.13', LVID), 'patch-int');
    assert.deepEqual(flooded.outputs.map((o) => o.port), ['vxlan-0a000002', 'vxlan-0a000003']);
  });

  it('the same MAC learned from another tunnel moves the flow there', () => {
    const b = brTun();
    b.process(icmp(MAC.vm3, MAC.vm1), 'vxlan-0a000003', { tunId: VNI });
    b.process(icmp(MAC.vm3, MAC.vm1), 'vxlan-0a000002', { tunId: VNI });
    const learned = b.dumpFlows({ table: 20 }).filter((f) => f.learned);
    assert.equal(learned.length, 1);
    assert.match(learned[0].actions, /output:2$/);
  });

  it('DVR egress: frames routed by the local qr- leave with this host\'s DVR MAC; frames to qr- stay', () => {
    const b = brTun();
    const routed = b.process(icmp(MAC.qr, MAC.vm2, '10.0.1.5', VM2_IP, LVID), 'patch-int');
    assert.deepEqual(routed.outputs.map((o) => [o.port, o.frame.eth.src, o.frame.eth.dst, o.tunId]), [
      ['vxlan-0a000002', MAC.dvrA, MAC.vm2, VNI],
    ]);
    assert.equal(routed.steps[1].frame.eth.src, MAC.dvrA); // table 1's step shows the rewrite
    const toGateway = b.process(icmp(MAC.vm1, MAC.qr, '10.0.0.11', '8.8.8.8', LVID), 'patch-int');
    assert.deepEqual(toGateway.outputs, []);
  });

  it('DVR_NOT_LEARN: frames from a remote DVR MAC go to br-int without being learned', () => {
    const b = brTun();
    const r = b.process(icmp(MAC.dvrB, MAC.vm1, '10.0.1.5', '10.0.0.11'), 'vxlan-0a000002', { tunId: VNI });
    assert.deepEqual(r.outputs.map((o) => [o.port, o.frame.vlan]), [['patch-int', LVID]]);
    assert.equal(b.dumpFlows({ table: 20 }).filter((f) => f.learned).length, 0);
  });

  it('DVR ingress on br-int: a remote DVR MAC is replaced by the gateway MAC and delivered untagged', () => {
    const b = new OvsBridge('br-int');
    b.addPort('patch-tun'); // 1
    b.addPort('qvo-vm1', { tag: LVID }); // 2
    b.addPort('qr-1', { tag: LVID }); // 3
    b.addFlows([
      'table=0,priority=0,actions=resubmit(,59)',
      `table=0,priority=2,in_port=1,dl_src=${MAC.dvrB},actions=resubmit(,1)`,
      'table=1,priority=1,actions=drop',
      `table=1,priority=20,dl_vlan=${LVID},dl_dst=${MAC.vm1},actions=mod_dl_src:${MAC.qr},resubmit(,59)`,
      'table=59,priority=0,actions=resubmit(,60)',
      'table=60,priority=3,actions=NORMAL',
      `table=60,priority=20,dl_vlan=${LVID},dl_dst=${MAC.vm1},actions=strip_vlan,output:2`,
    ]);
    const r = b.process(icmp(MAC.dvrB, MAC.vm1, '10.0.1.5', '10.0.0.11', LVID), 'patch-tun');
    assert.deepEqual(r.outputs.map((o) => [o.port, o.frame.eth.src, o.frame.vlan]), [['qvo-vm1', MAC.qr, undefined]]);
    assert.deepEqual(r.steps.map((s) => [s.table, s.priority]), [
      [0, 2],
      [1, 20],
      [59, 0],
      [60, 20],
    ]);
    // A frame from an unknown DVR MAC is dropped by table 1's default.
    const other = b.process(icmp(MAC.dvrB, MAC.vm3, '10.0.1.5', '10.0.0.13', LVID), 'patch-tun');
    assert.deepEqual(other.outputs, []);
  });
});
