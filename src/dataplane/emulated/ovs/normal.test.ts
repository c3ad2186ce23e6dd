// The NORMAL action: MAC learning, flooding, VLAN isolation, access and trunk ports.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OvsBridge } from './index.js';
import { MAC, arpRequest, icmp } from './fixtures.test-util.js';

/** br-int-like: two VMs on VLAN 1, one on VLAN 2 (access ports), a trunk patch port. */
function brInt(now = () => 0): OvsBridge {
  const b = new OvsBridge('br-int', { clock: now });
  b.addPort('qvo1', { tag: 1 });
  b.addPort('qvo2', { tag: 1 });
  b.addPort('qvo3', { tag: 2 });
  b.addPort('patch-tun');
  b.addFlows(['table=0,priority=0,actions=NORMAL']);
  return b;
}

const ports = (r: { outputs: Array<{ port: string }> }) => r.outputs.map((o) => o.port);

describe('OVS NORMAL', () => {
  it('floods unknown destinations within the VLAN, tagging on trunks and not on access ports', () => {
    const b = brInt();
    const r = b.process(arpRequest(MAC.vm1, '10.0.0.1', '10.0.0.2'), 'qvo1');
    // Not qvo3 (VLAN 2), not back to qvo1; the bridge's own internal port is a trunk.
    assert.deepEqual(ports(r), ['qvo2', 'patch-tun', 'br-int']);
    const byPort = Object.fromEntries(r.outputs.map((o) => [o.port, o.frame.vlan]));
    assert.deepEqual(byPort, { qvo2: undefined, 'patch-tun': 1, 'br-int': 1 });
    assert.match(r.steps[0].notes!.join('\n'), /learned fa:16:3e:00:00:01 on port qvo1 in VLAN 1[\s\S]*flooding in VLAN 1/);
  });

  it('learns source MACs per VLAN and then forwards unicast to one port', () => {
    const b = brInt();
    b.process(arpRequest(MAC.vm1, '10.0.0.1', '10.0.0.2'), 'qvo1');
    const r = b.process(icmp(MAC.vm2, MAC.vm1), 'qvo2');
    assert.deepEqual(ports(r), ['qvo1']);
    assert.deepEqual(
      b.fdb().map((e) => [e.portName, e.vlan, e.mac]),
      [
        ['qvo1', 1, MAC.vm1],
        ['qvo2', 1, MAC.vm2],
      ],
    );
  });

  it('a tagged packet from the trunk reaches the access port of its VLAN untagged', () => {
    const b = brInt();
    b.process(icmp(MAC.vm1, MAC.bcast), 'qvo1');
    const r = b.process(icmp(MAC.vm3, MAC.vm1, '10.0.0.3', '10.0.0.1', 1), 'patch-tun');
    assert.deepEqual(ports(r), ['qvo1']);
    assert.equal(r.outputs[0].frame.vlan, undefined);
  });

  it('VLAN isolation: a MAC learned in VLAN 1 is unknown in VLAN 2', () => {
    const b = brInt();
    b.process(icmp(MAC.vm1, MAC.bcast), 'qvo1');
    const r = b.process(icmp(MAC.vm3, MAC.vm1), 'qvo3');
    // Flooded in VLAN 2 only: trunks carry it tagged 2; no VLAN-1 access port sees it.
    assert.deepEqual(ports(r), ['patch-tun', 'br-int']);
    assert.equal(r.outputs[0].frame.vlan, 2);
    const fromTrunk = b.process(icmp(MAC.vm2, MAC.bcast, '10.0.0.2', '10.0.0.9', 7), 'patch-tun');
    assert.deepEqual(ports(fromTrunk), ['br-int']);
  });

  it('drops a packet whose destination was learned on its input port', () => {
    const b = brInt();
    b.process(icmp(MAC.vm1, MAC.bcast), 'qvo1');
    const r = b.process(icmp(MAC.vm2, MAC.vm1), 'qvo1');
    assert.deepEqual(r.outputs, []);
    assert.match(r.steps[0].notes!.join(), /learned on input port qvo1/);
  });

  it('drops tagged packets arriving on an access port', () => {
    const b = brInt();
    const r = b.process(icmp(MAC.vm1, MAC.bcast, '10.0.0.1', '10.0.0.2', 5), 'qvo1');
    assert.deepEqual(r.outputs, []);
    assert.match(r.steps[0].notes!.join(), /dropping VLAN 5 tagged packet received on port qvo1 configured as VLAN 1 access port/);
  });

  it('trunks= limits the VLANs a trunk port carries', () => {
    const b = new OvsBridge('br-x');
    b.addPort('a', { tag: 3 });
    b.addPort('t1', { trunks: [3, 4] });
    b.addPort('t2', { trunks: [5] });
    b.addFlows(['priority=0,actions=NORMAL']);
    assert.deepEqual(ports(b.process(icmp(MAC.vm1, MAC.bcast), 'a')), ['t1', 'br-x']);
    assert.deepEqual(b.process(icmp(MAC.vm1, MAC.bcast, '1.1.1.1', '2.2.2.2', 9), 't1').outputs, []);
  });

  it('untagged traffic between trunk ports is VLAN 0 and stays untagged', () => {
    const b = new OvsBridge('br-ex');
    b.addPort('eth1');
    b.addPort('phy-br-ex');
    b.addFlows(['priority=0,actions=NORMAL']);
    const r = b.process(icmp(MAC.vm1, MAC.bcast), 'eth1');
    assert.deepEqual(ports(r), ['phy-br-ex', 'br-ex']);
    assert.equal(r.outputs[0].frame.vlan, undefined);
  });

  it('a MAC that moves is relearned on its new port; entries age out after 300 s', () => {
    let now = 0;
    const b = brInt(() => now);
    b.process(icmp(MAC.vm1, MAC.bcast), 'qvo1');
    b.process(icmp(MAC.vm1, MAC.bcast), 'qvo2');
    // Untagged on the trunk is VLAN 0, where vm1 is unknown: flooded to the other trunk only.
    assert.deepEqual(ports(b.process(icmp(MAC.vm2, MAC.vm1), 'patch-tun')), ['br-int']);
    assert.deepEqual(ports(b.process(icmp(MAC.vm2, MAC.vm1, '1.1.1.1', '2.2.2.2', 1), 'patch-tun')), ['qvo2']);
    now += 300_000;
    assert.deepEqual(ports(b.process(icmp(MAC.vm2, MAC.vm1, '1.1.1.1', '2.2.2.2', 1), 'patch-tun')), ['qvo1', 'qvo2', 'br-int']);
  });

  it('deleting a port forgets what was learned on it', () => {
    const b = brInt();
    b.process(icmp(MAC.vm1, MAC.bcast), 'qvo1');
    b.delPort('qvo1');
    assert.deepEqual(b.fdb(), []);
  });

  it('never forwards IEEE reserved multicast (STP) frames', () => {
    const b = brInt();
    assert.deepEqual(b.process(icmp(MAC.vm1, '01:80:c2:00:00:00'), 'qvo1').outputs, []);
  });

  it('NORMAL after flows that rewrote the packet uses the rewritten packet', () => {
    // As br-int's DVR table 1 does: rewrite the source MAC, then NORMAL (via table 60).
    const b = brInt();
    b.addFlows(['table=0,priority=5,in_port=patch-tun,dl_vlan=1,actions=mod_dl_src:fa:16:3e:00:00:aa,goto_table:60', 'table=60,priority=3,actions=NORMAL']);
    const r = b.process(icmp(MAC.dvrB, MAC.bcast, '10.0.1.5', '10.0.0.1', 1), 'patch-tun');
    assert.deepEqual(ports(r), ['qvo1', 'qvo2', 'br-int']);
    assert.equal(r.outputs[0].frame.eth.src, MAC.qr);
    assert.equal(b.fdb()[0].mac, MAC.qr);
  });
});
