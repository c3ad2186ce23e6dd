// Every supported match field: a packet that should match does, one that should not does not.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Frame } from '../packet.js';
import { OvsBridge } from './index.js';
import { MAC, arpReply, arpRequest, icmp, tcp, udp } from './fixtures.test-util.js';

function bridge(flow: string): OvsBridge {
  const b = new OvsBridge('br-test');
  b.addPort('p1');
  b.addPort('p2');
  b.addPort('p3');
  b.addFlows([`table=0,priority=10,${flow},actions=output:p3`, 'table=0,priority=0,actions=drop']);
  return b;
}

function hits(b: OvsBridge, f: Frame, inPort = 'p1', tunId?: number): boolean {
  const r = b.process(f, inPort, tunId === undefined ? {} : { tunId });
  return r.outputs.some((o) => o.port === 'p3');
}

interface Case {
  match: string;
  yes: Frame | [Frame, string?, number?];
  no: Frame | [Frame, string?, number?];
}

const v = (f: Frame, vlan: number): Frame => ({ ...f, vlan });

const CASES: Record<string, Case> = {
  in_port_name: { match: 'in_port=p2', yes: [icmp(MAC.vm1, MAC.vm2), 'p2'], no: [icmp(MAC.vm1, MAC.vm2), 'p1'] },
  in_port_number: { match: 'in_port=2', yes: [icmp(MAC.vm1, MAC.vm2), 'p2'], no: [icmp(MAC.vm1, MAC.vm2), 'p1'] },
  in_port_local: { match: 'in_port=LOCAL', yes: [icmp(MAC.vm1, MAC.vm2), 'br-test'], no: [icmp(MAC.vm1, MAC.vm2), 'p1'] },
  dl_src: { match: 'dl_src=FA:16:3E:00:00:01', yes: icmp(MAC.vm1, MAC.vm2), no: icmp(MAC.vm2, MAC.vm1) },
  eth_src: { match: 'eth_src=fa:16:3e:00:00:01', yes: icmp(MAC.vm1, MAC.vm2), no: icmp(MAC.vm2, MAC.vm1) },
  dl_dst: { match: 'dl_dst=fa:16:3e:00:00:02', yes: icmp(MAC.vm1, MAC.vm2), no: icmp(MAC.vm2, MAC.vm1) },
  eth_dst: { match: 'eth_dst=fa:16:3e:00:00:02', yes: icmp(MAC.vm1, MAC.vm2), no: icmp(MAC.vm2, MAC.vm1) },
  dl_dst_multicast_mask: {
    match: 'dl_dst=01:00:00:00:00:00/01:00:00:00:00:00',
    yes: icmp(MAC.vm1, MAC.bcast),
    no: icmp(MAC.vm1, MAC.vm2),
  },
  dl_src_oui_mask: { match: 'dl_src=fa:16:3f:00:00:00/ff:ff:ff:00:00:00', yes: icmp(MAC.dvrA, MAC.vm2), no: icmp(MAC.vm1, MAC.vm2) },
  dl_vlan: { match: 'dl_vlan=5', yes: v(icmp(MAC.vm1, MAC.vm2), 5), no: v(icmp(MAC.vm1, MAC.vm2), 6) },
  dl_vlan_untagged_does_not_match: { match: 'dl_vlan=0', yes: v(icmp(MAC.vm1, MAC.vm2), 0), no: icmp(MAC.vm1, MAC.vm2) },
  dl_vlan_none: { match: 'dl_vlan=0xffff', yes: icmp(MAC.vm1, MAC.vm2), no: v(icmp(MAC.vm1, MAC.vm2), 5) },
  vlan_tci_untagged: { match: 'vlan_tci=0x0000/0x1fff', yes: icmp(MAC.vm1, MAC.vm2), no: v(icmp(MAC.vm1, MAC.vm2), 5) },
  vlan_tci_tagged: { match: 'vlan_tci=0x1000/0x1000', yes: v(icmp(MAC.vm1, MAC.vm2), 7), no: icmp(MAC.vm1, MAC.vm2) },
  vlan_tci_exact: { match: 'vlan_tci=0x1005', yes: v(icmp(MAC.vm1, MAC.vm2), 5), no: v(icmp(MAC.vm1, MAC.vm2), 4) },
  vlan_vid_present: { match: 'vlan_vid=0x1005', yes: v(icmp(MAC.vm1, MAC.vm2), 5), no: icmp(MAC.vm1, MAC.vm2) },
  vlan_vid_without_present_bit_is_untagged: { match: 'vlan_vid=0', yes: icmp(MAC.vm1, MAC.vm2), no: v(icmp(MAC.vm1, MAC.vm2), 0) },
  dl_type: { match: 'dl_type=0x0806', yes: arpRequest(MAC.vm1, '10.0.0.1', '10.0.0.2'), no: icmp(MAC.vm1, MAC.vm2) },
  eth_type: { match: 'eth_type=0x0800', yes: icmp(MAC.vm1, MAC.vm2), no: arpRequest(MAC.vm1, '10.0.0.1', '10.0.0.2') },
  arp: { match: 'arp', yes: arpRequest(MAC.vm1, '10.0.0.1', '10.0.0.2'), no: icmp(MAC.vm1, MAC.vm2) },
  ip: { match: 'ip', yes: icmp(MAC.vm1, MAC.vm2), no: arpRequest(MAC.vm1, '10.0.0.1', '10.0.0.2') },
  icmp: { match: 'icmp', yes: icmp(MAC.vm1, MAC.vm2), no: tcp(MAC.vm1, MAC.vm2, 1000, 80) },
  tcp: { match: 'tcp', yes: tcp(MAC.vm1, MAC.vm2, 1000, 80), no: udp(MAC.vm1, MAC.vm2, 1000, 80) },
  udp: { match: 'udp', yes: udp(MAC.vm1, MAC.vm2, 68, 67), no: tcp(MAC.vm1, MAC.vm2, 68, 67) },
  arp_op: {
    match: 'arp,arp_op=2',
    yes: arpReply(MAC.vm2, '10.0.0.2', MAC.vm1, '10.0.0.1'),
    no: arpRequest(MAC.vm1, '10.0.0.1', '10.0.0.2'),
  },
  arp_spa_prefix: {
    match: 'arp,arp_spa=10.0.0.0/24',
    yes: arpRequest(MAC.vm1, '10.0.0.9', '10.0.0.2'),
    no: arpRequest(MAC.vm1, '10.0.1.9', '10.0.0.2'),
  },
  arp_tpa: {
    match: 'arp,arp_tpa=10.0.0.2',
    yes: arpRequest(MAC.vm1, '10.0.0.1', '10.0.0.2'),
    no: arpRequest(MAC.vm1, '10.0.0.1', '10.0.0.3'),
  },
  arp_sha: {
    match: 'arp,arp_sha=fa:16:3e:00:00:01',
    yes: arpRequest(MAC.vm1, '10.0.0.1', '10.0.0.2'),
    no: arpRequest(MAC.vm2, '10.0.0.1', '10.0.0.2'),
  },
  arp_tha: {
    match: 'arp,arp_tha=fa:16:3e:00:00:01',
    yes: arpReply(MAC.vm2, '10.0.0.2', MAC.vm1, '10.0.0.1'),
    no: arpReply(MAC.vm2, '10.0.0.2', MAC.vm3, '10.0.0.1'),
  },
  nw_src_as_arp_spa: {
    match: 'arp,nw_src=10.0.0.1',
    yes: arpRequest(MAC.vm1, '10.0.0.1', '10.0.0.2'),
    no: arpRequest(MAC.vm1, '10.0.0.5', '10.0.0.2'),
  },
  nw_src_prefix: { match: 'ip,nw_src=10.0.0.0/24', yes: icmp(MAC.vm1, MAC.vm2, '10.0.0.77'), no: icmp(MAC.vm1, MAC.vm2, '10.0.1.77') },
  nw_dst_dotted_mask: {
    match: 'ip,nw_dst=10.1.0.0/255.255.0.0',
    yes: icmp(MAC.vm1, MAC.vm2, '10.0.0.1', '10.1.200.3'),
    no: icmp(MAC.vm1, MAC.vm2, '10.0.0.1', '10.2.0.3'),
  },
  ip_src: { match: 'ip,ip_src=10.0.0.1', yes: icmp(MAC.vm1, MAC.vm2, '10.0.0.1'), no: icmp(MAC.vm1, MAC.vm2, '10.0.0.3') },
  ip_dst: {
    match: 'ip,ip_dst=10.0.0.2',
    yes: icmp(MAC.vm1, MAC.vm2, '10.0.0.1', '10.0.0.2'),
    no: icmp(MAC.vm1, MAC.vm2, '10.0.0.1', '10.0.0.3'),
  },
  nw_proto: { match: 'ip,nw_proto=17', yes: udp(MAC.vm1, MAC.vm2, 1, 2), no: tcp(MAC.vm1, MAC.vm2, 1, 2) },
  nw_ttl: { match: 'ip,nw_ttl=1', yes: icmp(MAC.vm1, MAC.vm2, '10.0.0.1', '10.0.0.2', undefined, 1), no: icmp(MAC.vm1, MAC.vm2) },
  tp_src: { match: 'tcp,tp_src=1000', yes: tcp(MAC.vm1, MAC.vm2, 1000, 80), no: tcp(MAC.vm1, MAC.vm2, 1001, 80) },
  tp_dst_masked: { match: 'tcp,tp_dst=0x50/0xfff0', yes: tcp(MAC.vm1, MAC.vm2, 1000, 0x5f), no: tcp(MAC.vm1, MAC.vm2, 1000, 0x60) },
  tcp_dst: { match: 'tcp,tcp_dst=80', yes: tcp(MAC.vm1, MAC.vm2, 1000, 80), no: tcp(MAC.vm1, MAC.vm2, 1000, 443) },
  tcp_src: { match: 'tcp,tcp_src=1000', yes: tcp(MAC.vm1, MAC.vm2, 1000, 80), no: tcp(MAC.vm1, MAC.vm2, 999, 80) },
  udp_dst: { match: 'udp,udp_dst=67', yes: udp(MAC.vm1, MAC.vm2, 68, 67), no: udp(MAC.vm1, MAC.vm2, 67, 68) },
  udp_src: { match: 'udp,udp_src=68', yes: udp(MAC.vm1, MAC.vm2, 68, 67), no: udp(MAC.vm1, MAC.vm2, 67, 68) },
  icmp_type: { match: 'icmp,icmp_type=8,icmp_code=0', yes: icmp(MAC.vm1, MAC.vm2), no: tcp(MAC.vm1, MAC.vm2, 8, 0) },
  tun_id: { match: 'tun_id=0x64', yes: [icmp(MAC.vm1, MAC.vm2), 'p1', 100], no: [icmp(MAC.vm1, MAC.vm2), 'p1', 101] },
  tun_id_masked: { match: 'tun_id=0x100/0xf00', yes: [icmp(MAC.vm1, MAC.vm2), 'p1', 0x1ab], no: [icmp(MAC.vm1, MAC.vm2), 'p1', 0x2ab] },
  tunnel_id_alias: { match: 'tunnel_id=5', yes: [icmp(MAC.vm1, MAC.vm2), 'p1', 5], no: [icmp(MAC.vm1, MAC.vm2), 'p1'] },
};

describe('OVS match fields', () => {
  for (const [name, c] of Object.entries(CASES)) {
    it(name, () => {
      const b = bridge(c.match);
      const [yf, yp, yt] = Array.isArray(c.yes) ? c.yes : [c.yes];
      const [nf, np, nt] = Array.isArray(c.no) ? c.no : [c.no];
      assert.equal(hits(b, yf, yp ?? 'p1', yt), true, `${c.match} should match`);
      assert.equal(hits(b, nf, np ?? 'p1', nt), false, `${c.match} should not match`);
    });
  }

  it('reg0-reg7 (value/mask) and metadata, set by earlier tables', () => {
    const b = new OvsBridge('br-test');
    b.addPort('p1');
    b.addPort('p2');
    b.addFlows([
      'table=0,priority=1,in_port=p1,actions=load:0x15->NXM_NX_REG0[],load:7->NXM_NX_REG7[],set_field:0xabc->metadata,resubmit(,1)',
      'table=0,priority=1,in_port=p2,actions=load:0x25->NXM_NX_REG0[],resubmit(,1)',
      'table=1,priority=5,reg0=0x5/0xf,reg7=7,metadata=0xabc,actions=output:p2',
      'table=1,priority=1,actions=drop',
    ]);
    assert.deepEqual(
      b.process(icmp(MAC.vm1, MAC.vm2), 'p1').outputs.map((o) => o.port),
      ['p2'],
    );
    assert.equal(b.process(icmp(MAC.vm1, MAC.vm2), 'p2').outputs.length, 0);
  });

  it('every register reg0..reg7 is its own field', () => {
    for (let i = 0; i < 8; i++) {
      const b = new OvsBridge('br-test');
      b.addPort('p1');
      b.addPort('p2');
      b.addFlows([
        `table=0,priority=1,actions=load:${i + 1}->NXM_NX_REG${i}[],resubmit(,1)`,
        `table=1,priority=1,reg${i}=${i + 1},actions=output:2`,
      ]);
      assert.equal(b.process(icmp(MAC.vm1, MAC.vm2), 'p1').outputs.length, 1, `reg${i}`);
    }
  });
});
