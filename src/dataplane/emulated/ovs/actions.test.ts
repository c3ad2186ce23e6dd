// Every supported action, executed on a packet, with OVS's semantics.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OvsBridge, MAX_DEPTH } from './index.js';
import { MAC, arpRequest, icmp, tcp } from './fixtures.test-util.js';

function br(flows: string[], ports = ['p1', 'p2', 'p3']): OvsBridge {
  const b = new OvsBridge('br-test');
  for (const p of ports) b.addPort(p);
  b.addFlows(flows);
  return b;
}

const ping = () => icmp(MAC.vm1, MAC.vm2);

describe('OVS actions', () => {
  it('output:N, output:name and a bare port number emit copies in order', () => {
    const b = br(['priority=1,actions=output:2,p3,LOCAL']);
    const r = b.process(ping(), 'p1');
    assert.deepEqual(
      r.outputs.map((o) => [o.port, o.ofport]),
      [
        ['p2', 2],
        ['p3', 3],
        ['br-test', 0xfffe],
      ],
    );
    assert.deepEqual(r.outputs[0].frame, ping());
  });

  it('output to the input port is skipped; in_port / IN_PORT hairpins', () => {
    const b = br(['priority=1,actions=output:1,output:2']);
    const r = b.process(ping(), 'p1');
    assert.deepEqual(r.outputs.map((o) => o.port), ['p2']);
    assert.match(r.steps[0].notes!.join(), /skipping output to input port 1/);
    for (const hairpin of ['in_port', 'IN_PORT', 'output:in_port']) {
      const b2 = br([`priority=1,actions=${hairpin}`]);
      assert.deepEqual(b2.process(ping(), 'p2').outputs.map((o) => o.port), ['p2'], hairpin);
    }
  });

  it('output:NXM_OF_IN_PORT[] and output from a register', () => {
    const b = br(['priority=1,in_port=1,actions=load:3->NXM_NX_REG1[0..15],output:NXM_NX_REG1[0..15]', 'priority=1,in_port=2,actions=output:NXM_OF_IN_PORT[]']);
    assert.deepEqual(b.process(ping(), 'p1').outputs.map((o) => o.port), ['p3']);
    // Reading in_port into an output is still output to the input port: skipped, as in OVS.
    assert.deepEqual(b.process(ping(), 'p2').outputs, []);
  });

  it('output to a port number that does not exist is a no-op', () => {
    const b = br(['priority=1,actions=output:42,output:2']);
    const r = b.process(ping(), 'p1');
    assert.deepEqual(r.outputs.map((o) => o.port), ['p2']);
    assert.match(r.steps[0].notes!.join(), /nonexistent port 42/);
  });

  it('FLOOD and ALL output everywhere except the input port', () => {
    for (const a of ['FLOOD', 'ALL', 'flood']) {
      const b = br([`priority=1,actions=${a}`]);
      assert.deepEqual(b.process(ping(), 'p2').outputs.map((o) => o.port), ['p1', 'p3', 'br-test']);
    }
  });

  it('drop, empty actions and a table miss output nothing', () => {
    assert.deepEqual(br(['priority=1,actions=drop']).process(ping(), 'p1').outputs, []);
    assert.deepEqual(br(['priority=1,actions=']).process(ping(), 'p1').outputs, []);
    const r = br(['table=1,priority=1,actions=output:2']).process(ping(), 'p1');
    assert.deepEqual(r.outputs, []);
    assert.equal(r.steps[0].kind, 'miss');
    assert.equal(r.steps[0].table, 0);
  });

  it('resubmit(,T) runs table T then continues with the following actions', () => {
    const b = br(['table=0,priority=1,actions=resubmit(,5),mod_dl_dst:fa:16:3e:00:00:03,output:3', 'table=5,priority=1,actions=output:2']);
    const r = b.process(ping(), 'p1');
    assert.deepEqual(r.outputs.map((o) => [o.port, o.frame.eth.dst]), [
      ['p2', MAC.vm2],
      ['p3', MAC.vm3],
    ]);
    assert.deepEqual(r.steps.map((s) => [s.table, s.depth]), [
      [0, 0],
      [5, 1],
    ]);
  });

  it('changes made in a resubmitted table stay visible afterwards', () => {
    const b = br(['table=0,priority=1,actions=resubmit(,1),output:2', 'table=1,priority=1,actions=mod_vlan_vid:9']);
    assert.equal(b.process(ping(), 'p1').outputs[0].frame.vlan, 9);
  });

  it('resubmit(PORT,T) and resubmit:PORT change in_port for the lookup only', () => {
    const b = br([
      'table=0,priority=1,in_port=1,actions=resubmit(3,2),output:in_port',
      'table=0,priority=1,in_port=2,actions=resubmit:3',
      'table=0,priority=1,in_port=3,actions=output:1',
      'table=2,priority=1,in_port=3,actions=output:2',
    ]);
    // The table-2 flow matched on in_port=3, and in_port was 1 again for `output:in_port`.
    assert.deepEqual(b.process(ping(), 'p1').outputs.map((o) => o.port), ['p2', 'p1']);
    // resubmit:3 searches the current table (0) as if from port 3.
    assert.deepEqual(b.process(ping(), 'p2').outputs.map((o) => o.port), ['p1']);
  });

  it('goto_table continues in a later table', () => {
    const b = br(['table=0,priority=1,actions=mod_dl_src:fa:16:3f:00:00:0a,goto_table:3', 'table=3,priority=1,actions=output:2']);
    const r = b.process(ping(), 'p1');
    assert.equal(r.outputs[0].frame.eth.src, MAC.dvrA);
    assert.deepEqual(r.steps.map((s) => s.table), [0, 3]);
  });

  it('a resubmit loop stops at depth 64 and the packet is dropped', () => {
    const b = br(['table=0,priority=1,actions=output:2,resubmit(,0)']);
    const r = b.process(ping(), 'p1');
    assert.deepEqual(r.outputs, []);
    assert.match(r.error!, /max translation depth 64/);
    assert.equal(r.steps.filter((s) => s.kind === 'flow').length, MAX_DEPTH);
    assert.equal(r.steps.at(-1)!.kind, 'error');
  });

  it('mod_vlan_vid pushes a tag on an untagged packet and rewrites an existing one', () => {
    const b = br(['priority=1,actions=mod_vlan_vid:5,output:2,mod_vlan_vid:6,output:3']);
    const r = b.process(ping(), 'p1');
    assert.deepEqual(r.outputs.map((o) => o.frame.vlan), [5, 6]);
  });

  it('strip_vlan and pop_vlan remove the tag', () => {
    for (const a of ['strip_vlan', 'pop_vlan']) {
      const b = br([`priority=1,dl_vlan=5,actions=${a},output:2`]);
      const r = b.process(icmp(MAC.vm1, MAC.vm2, '10.0.0.1', '10.0.0.2', 5), 'p1');
      assert.equal(r.outputs[0].frame.vlan, undefined);
      assert.equal('vlan' in r.outputs[0].frame, false);
    }
  });

  it('push_vlan:0x8100 then set_field:0x1007->vlan_vid tags the packet', () => {
    const b = br(['priority=1,actions=push_vlan:0x8100,set_field:0x1007->vlan_vid,output:2']);
    assert.equal(b.process(ping(), 'p1').outputs[0].frame.vlan, 7);
  });

  it('push_vlan on a tagged packet is reported as unmodelled QinQ', () => {
    const b = br(['priority=1,actions=push_vlan:0x8100,output:2']);
    const r = b.process(icmp(MAC.vm1, MAC.vm2, '10.0.0.1', '10.0.0.2', 3), 'p1');
    assert.match(r.error!, /QinQ/);
    assert.deepEqual(r.outputs, []);
  });

  it('load into OXM_OF_VLAN_VID[] and set_field on vlan_vid rewrite the VID of a tagged packet', () => {
    const b = br(['priority=1,dl_vlan=5,actions=load:7->OXM_OF_VLAN_VID[],output:2,set_field:8->vlan_vid,output:3']);
    const r = b.process(icmp(MAC.vm1, MAC.vm2, '10.0.0.1', '10.0.0.2', 5), 'p1');
    assert.deepEqual(r.outputs.map((o) => o.frame.vlan), [7, 8]);
  });

  it('load:0->NXM_OF_VLAN_TCI[] untags; load:0x1005->NXM_OF_VLAN_TCI[] tags', () => {
    const b = br(['priority=1,actions=load:0x1005->NXM_OF_VLAN_TCI[],output:2,load:0->NXM_OF_VLAN_TCI[],output:3']);
    const r = b.process(ping(), 'p1');
    assert.deepEqual(r.outputs.map((o) => o.frame.vlan), [5, undefined]);
  });

  it('mod_dl_src / mod_dl_dst / set_field on eth_src and eth_dst', () => {
    const b = br([
      'priority=1,actions=mod_dl_src:FA:16:3F:00:00:0A,mod_dl_dst:fa:16:3e:00:00:03,output:2,set_field:fa:16:3e:00:00:aa->eth_src,set_field:ff:ff:ff:ff:ff:ff->eth_dst,output:3',
    ]);
    const r = b.process(ping(), 'p1');
    assert.deepEqual(r.outputs.map((o) => [o.frame.eth.src, o.frame.eth.dst]), [
      [MAC.dvrA, MAC.vm3],
      [MAC.qr, MAC.bcast],
    ]);
  });

  it('set_field on IPv4 addresses, ports, registers, tun_id and in_port', () => {
    const b = br([
      'table=0,priority=1,tcp,actions=set_field:10.9.9.9->ip_src,set_field:10.8.8.8->ip_dst,set_field:8080->tcp_dst,mod_tp_src:2222,set_field:0x64->tun_id,set_field:3->reg2,resubmit(,1)',
      'table=1,priority=1,reg2=3,actions=set_field:2->in_port,output:1',
    ]);
    const r = b.process(tcp(MAC.vm1, MAC.vm2, 1000, 80), 'p1');
    assert.equal(r.outputs.length, 1);
    const o = r.outputs[0];
    assert.equal(o.port, 'p1'); // in_port became 2, so output:1 is allowed
    assert.equal(o.tunId, 100);
    assert.deepEqual([o.frame.ip!.src, o.frame.ip!.dst], ['10.9.9.9', '10.8.8.8']);
    assert.deepEqual(o.frame.l4, { kind: 'tcp', sport: 2222, dport: 8080, flags: { syn: true } });
  });

  it('mod_nw_src / mod_nw_dst', () => {
    const b = br(['priority=1,ip,actions=mod_nw_src:192.168.0.1,mod_nw_dst:192.168.0.2,output:2']);
    const ip = b.process(ping(), 'p1').outputs[0].frame.ip!;
    assert.deepEqual([ip.src, ip.dst], ['192.168.0.1', '192.168.0.2']);
  });

  it('set_field with a mask writes only those bits', () => {
    const b = br(['table=0,priority=1,actions=load:0xff->NXM_NX_REG0[],set_field:0x50/0xf0->reg0,resubmit(,1)', 'table=1,priority=1,reg0=0x5f,actions=output:2']);
    assert.equal(b.process(ping(), 'p1').outputs.length, 1);
  });

  it('load into bit ranges of registers', () => {
    const b = br([
      'table=0,priority=1,actions=load:0x1->NXM_NX_REG0[0..15],load:1->NXM_NX_REG0[31],load:0x3->NXM_NX_REG0[16..17],resubmit(,1)',
      'table=1,priority=1,reg0=0x80030001,actions=output:2',
    ]);
    assert.equal(b.process(ping(), 'p1').outputs.length, 1);
  });

  it('load to ARP fields (ARP_OP, SHA, SPA, THA, TPA) and tun_id', () => {
    const b = br([
      'priority=1,arp,actions=load:0x2->NXM_OF_ARP_OP[],load:0xfa163e0000aa->NXM_NX_ARP_SHA[],load:0xa000001->NXM_OF_ARP_SPA[],load:0xfa163e000001->NXM_NX_ARP_THA[],load:0xa000002->NXM_OF_ARP_TPA[],load:0x10000000a->NXM_NX_TUN_ID[],output:2',
    ]);
    const o = b.process(arpRequest(MAC.vm1, '10.0.0.9', '10.0.0.1'), 'p1').outputs[0];
    assert.deepEqual(o.frame.arp, { op: 2, sha: MAC.qr, spa: '10.0.0.1', tha: MAC.vm1, tpa: '10.0.0.2' });
    assert.equal(o.tunId, 0x10000000a);
  });

  it('set_field on ARP fields (arp_op, arp_sha, arp_spa, arp_tha, arp_tpa)', () => {
    const b = br([
      'priority=1,arp,actions=set_field:2->arp_op,set_field:fa:16:3e:00:00:aa->arp_sha,set_field:10.0.0.1->arp_spa,set_field:fa:16:3e:00:00:01->arp_tha,set_field:10.0.0.9->arp_tpa,output:2',
    ]);
    const o = b.process(arpRequest(MAC.vm1, '10.0.0.9', '10.0.0.1'), 'p1').outputs[0];
    assert.deepEqual(o.frame.arp, { op: 2, sha: MAC.qr, spa: '10.0.0.1', tha: MAC.vm1, tpa: '10.0.0.9' });
  });

  it('move between fields, whole and bit ranges', () => {
    const b = br([
      'table=0,priority=1,arp,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],move:NXM_OF_ARP_SPA[0..7]->NXM_NX_REG3[8..15],move:NXM_OF_ETH_SRC[0..15]->NXM_NX_REG4[16..31],resubmit(,1)',
      'table=1,priority=1,reg3=0x900,reg4=0x10000,actions=output:2',
    ]);
    const o = b.process(arpRequest(MAC.vm1, '10.0.0.9', '10.0.0.1'), 'p1').outputs[0];
    assert.equal(o.frame.eth.dst, MAC.vm1);
    assert.equal(o.frame.arp!.tha, MAC.vm1);
    assert.equal(o.frame.arp!.tpa, '10.0.0.9');
  });

  it('move into vlan_tci bits retags the packet', () => {
    const b = br(['priority=1,dl_vlan=5,actions=load:0x9->NXM_NX_REG0[],move:NXM_NX_REG0[0..11]->NXM_OF_VLAN_TCI[0..11],output:2']);
    assert.equal(b.process(icmp(MAC.vm1, MAC.vm2, '10.0.0.1', '10.0.0.2', 5), 'p1').outputs[0].frame.vlan, 9);
  });

  it('set_tunnel and set_tunnel64 set tun_id for the output', () => {
    const b = br(['priority=1,in_port=1,actions=set_tunnel:0x64,output:2', 'priority=1,in_port=2,actions=set_tunnel64:0x100000064,output:3']);
    assert.equal(b.process(ping(), 'p1').outputs[0].tunId, 100);
    assert.equal(b.process(ping(), 'p2').outputs[0].tunId, 0x100000064);
  });

  it('tun_id of a packet from a tunnel is kept on output unless changed', () => {
    const b = br(['priority=1,actions=output:2']);
    assert.equal(b.process(ping(), 'p1', { tunId: 42n }).outputs[0].tunId, 42);
    assert.equal(b.process(ping(), 'p1').outputs[0].tunId, undefined);
  });

  it('write_metadata with a mask, then goto_table matching metadata', () => {
    const b = br(['table=0,priority=1,actions=write_metadata:0x12/0xff,goto_table:1', 'table=1,priority=1,metadata=0x12/0xff,actions=output:2']);
    assert.equal(b.process(ping(), 'p1').outputs.length, 1);
  });

  it('dec_ttl decrements; at TTL 1 it stops this flow but an outer level resumes', () => {
    const b = br(['table=0,priority=1,ip,actions=resubmit(,1),output:3', 'table=1,priority=1,ip,actions=dec_ttl,output:2']);
    const r = b.process(ping(), 'p1');
    assert.deepEqual(r.outputs.map((o) => [o.port, o.frame.ip!.ttl]), [
      ['p2', 63],
      ['p3', 63],
    ]);
    const r1 = b.process(icmp(MAC.vm1, MAC.vm2, '10.0.0.1', '10.0.0.2', undefined, 1), 'p1');
    assert.deepEqual(r1.outputs.map((o) => [o.port, o.frame.ip!.ttl]), [['p3', 1]]);
    assert.match(r1.steps[1].notes!.join(), /dec_ttl: TTL 1/);
  });

  it('learn() with immediate, shifted and copied match specs, immediate and field loads', () => {
    const b = br([
      'table=0,priority=1,in_port=1,actions=load:0x1234->NXM_NX_REG2[],learn(table=7,priority=9,idle_timeout=30,NXM_OF_ETH_TYPE[]=0x800,NXM_NX_REG0[16..31]=NXM_OF_IN_PORT[],dl_dst=fa:16:3e:00:00:02,NXM_OF_ETH_SRC[]=NXM_OF_ETH_DST[],load:0x5->NXM_NX_REG1[],load:NXM_NX_REG2[0..7]->NXM_NX_REG3[8..15],output:NXM_OF_IN_PORT[])',
      'table=0,priority=1,in_port=2,actions=load:0x10000->NXM_NX_REG0[],resubmit(,7),resubmit(,8)',
      'table=8,priority=1,reg1=5,reg3=0x3400,actions=output:3',
    ]);
    b.process(icmp(MAC.vm1, MAC.vm2), 'p1');
    const learned = b.dumpFlows({ table: 7 });
    assert.equal(learned.length, 1);
    assert.equal(learned[0].match, 'ip,reg0=0x10000/0xffff0000,dl_src=fa:16:3e:00:00:02,dl_dst=fa:16:3e:00:00:02');
    assert.equal(learned[0].actions, 'load:0x5->NXM_NX_REG1[],load:0x34->NXM_NX_REG3[8..15],output:1');
    assert.equal(learned[0].idleTimeout, 30);
    // A packet from p2 to vm2 with reg0[16..31]=1 hits it: output to p1, then table 8 sees the loads.
    const r = b.process(icmp(MAC.vm2, MAC.vm2), 'p2');
    assert.deepEqual(r.outputs.map((o) => o.port), ['p1', 'p3']);
  });

  it('unmodelled parts of the frame (payload, ICMP id/seq, TCP flags) are carried through', () => {
    const f = { ...ping(), data: { hello: 'world' } };
    const b = br(['priority=1,actions=mod_dl_dst:fa:16:3e:00:00:03,output:2']);
    const o = b.process(f, 'p1').outputs[0].frame;
    assert.deepEqual(o.data, { hello: 'world' });
    assert.deepEqual(o.l4, f.l4);
  });

  it('steps record bridge, table, priority, cookie, flow text and the packet after the flow', () => {
    const b = br([
      'table=0,cookie=0xabc,priority=3,in_port=1,actions=mod_vlan_vid:4,resubmit(,1),strip_vlan,output:3',
      'table=1,priority=2,dl_vlan=4,actions=mod_dl_src:fa:16:3f:00:00:0a,output:2',
    ]);
    const r = b.process(ping(), 'p1');
    assert.equal(r.steps.length, 2);
    const [s0, s1] = r.steps;
    assert.deepEqual(
      { bridge: s0.bridge, table: s0.table, priority: s0.priority, cookie: s0.cookie, flow: s0.flow, vlan: s0.frame.vlan },
      {
        bridge: 'br-test',
        table: 0,
        priority: 3,
        cookie: '0xabc',
        flow: 'table=0,cookie=0xabc,priority=3,in_port=1,actions=mod_vlan_vid:4,resubmit(,1),strip_vlan,output:3',
        vlan: 4,
      },
    );
    // The table-0 flow kept working after the resubmit: the packet at its end has no tag.
    assert.equal(s0.frameAtEnd!.vlan, undefined);
    assert.equal(s0.frameAtEnd!.eth.src, MAC.dvrA);
    assert.deepEqual(s0.outputs, ['p3']);
    assert.deepEqual([s1.table, s1.depth, s1.frame.vlan, s1.frame.eth.src, s1.outputs], [1, 1, 4, MAC.dvrA, ['p2']]);
    // Trace off: same outputs, no steps.
    const quiet = b.process(ping(), 'p1', { trace: false });
    assert.deepEqual(quiet.steps, []);
    assert.deepEqual(quiet.outputs, r.outputs);
  });

  it('per-flow packet and byte counters', () => {
    const b = br(['table=0,priority=1,actions=resubmit(,1)', 'table=1,priority=1,arp,actions=drop', 'table=1,priority=0,actions=output:2']);
    b.process(ping(), 'p1');
    b.process(ping(), 'p1');
    b.process(arpRequest(MAC.vm1, '10.0.0.1', '10.0.0.2'), 'p1');
    const byTable = b.dumpFlows().map((f) => [f.table, f.priority, f.nPackets, f.nBytes]);
    assert.deepEqual(byTable, [
      [0, 1, 3, 180],
      [1, 1, 1, 60],
      [1, 0, 2, 120],
    ]);
  });
});
