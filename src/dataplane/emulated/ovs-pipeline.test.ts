// Flow-built behaviour seen from the hosts: an ARP responder answering in the switch
// without flooding, and learn() installing a flow that later packets hit (br-tun's table
// 10 -> 20 as the Neutron OVS agent writes it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { World } from './world.js';
import { arpResponder } from './testbed.js';
import { renderTrace } from '../../trace/render.js';
import { BROADCAST_MAC, ETH_TYPE_ARP } from './packet.js';

test('an ARP responder built from flows answers in the switch; the request is not flooded', () => {
  const w = new World();
  const h = w.addHost('compute1');
  h.vswitch.addBridge('br-int');
  for (const [n, mac, ip] of [
    ['a', 'fa:16:3e:00:00:0a', '10.5.0.1/24'],
    ['b', 'fa:16:3e:00:00:0b', '10.5.0.2/24'],
  ]) {
    h.addNetns(n);
    h.vswitch.addPort('br-int', { name: `p${n}`, type: 'internal', ns: n, mac });
    h.linkSet(`p${n}`, { ns: n, up: true });
    h.ns(n).addAddr(`p${n}`, ip);
  }
  h.vswitch.bridge('br-int').model.addFlows([`table=0,priority=10,arp,arp_op=1,arp_tpa=10.5.0.9,actions=${arpResponder('fa:16:3e:00:00:09', '10.5.0.9')}`, 'table=0,priority=0,actions=NORMAL']);
  const rec = w.inject({ host: 'compute1', ns: 'a', dev: 'pa' }, { eth: { src: 'fa:16:3e:00:00:0a', dst: BROADCAST_MAC, type: ETH_TYPE_ARP }, arp: { op: 1, sha: 'fa:16:3e:00:00:0a', spa: '10.5.0.1', tha: '00:00:00:00:00:00', tpa: '10.5.0.9' } });
  const hit = rec.steps.find((s) => s.kind === 'ovs' && s.rule?.includes('arp_tpa=10.5.0.9'));
  assert.ok(hit, renderTrace(rec));
  assert.match(hit.action, /output pa/);
  assert.deepEqual(hit.after!.arp, { op: 2, sha: 'fa:16:3e:00:00:09', spa: '10.5.0.9', tha: 'fa:16:3e:00:00:0a', tpa: '10.5.0.1' });
  assert.deepEqual([hit.after!.eth.src, hit.after!.eth.dst], ['fa:16:3e:00:00:09', 'fa:16:3e:00:00:0a']);
  assert.ok(!rec.steps.some((s) => s.ns === 'b'), 'b never sees the request');
  const reply = rec.delivered.find((d) => d.ns === 'a' && d.frame.arp?.op === 2);
  assert.ok(reply, renderTrace(rec));
  // Through the stack: a ping resolves 10.5.0.9 from the switch's answer.
  const ping = w.ping({ host: 'compute1', ns: 'a' }, '10.5.0.9');
  const n = ping.steps.find((s) => s.kind === 'neigh' && s.ns === 'a' && /learned/.test(s.action));
  assert.match(n!.rule!, /10.5.0.9 dev pa lladdr fa:16:3e:00:00:09/);
});

/** Two hosts whose br-tun floods unknown destinations to the tunnel and learns from what comes back. */
function learningWorld() {
  const w = new World();
  const seg = w.addSegment('tunnel');
  for (const i of [1, 2]) {
    const h = w.addHost(`compute${i}`);
    h.addNic('eth1', seg, { mac: `52:54:00:00:01:0${i}` });
    h.root.addAddr('eth1', `10.0.1.1${i}/24`);
    const tun = `vxlan-0a00010${3 - i}`;
    h.vswitch.addBridge('br-tun');
    h.vswitch.addPort('br-tun', { name: tun, type: 'vxlan', remoteIp: `10.0.1.1${3 - i}`, key: 'flow' });
    h.addNetns('a');
    h.vswitch.addPort('br-tun', { name: 'tap-a', type: 'internal', ns: 'a', mac: `fa:16:3e:00:00:0${i}` });
    h.linkSet('tap-a', { ns: 'a', up: true });
    h.ns('a').addAddr('tap-a', `10.5.0.${i}/24`);
    h.vswitch.bridge('br-tun').model.addFlows([
      'table=0,priority=1,in_port=tap-a,actions=resubmit(,20)',
      `table=0,priority=1,in_port=${tun},actions=resubmit(,4)`,
      'table=4,priority=1,tun_id=0x65,actions=resubmit(,10)',
      'table=10,priority=1,actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x10,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:tap-a',
      'table=20,priority=0,actions=resubmit(,22)',
      `table=22,priority=1,actions=set_tunnel:0x65,output:${tun}`,
    ]);
  }
  return w;
}

test('learn(): a packet from the tunnel installs a table-20 flow that later packets hit instead of flooding', () => {
  const w = learningWorld();
  const rec = w.ping({ host: 'compute1', ns: 'a' }, '10.5.0.2');
  assert.ok(rec.delivered.some((d) => d.host === 'compute1' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0), renderTrace(rec));
  // compute1's first packet (the ARP request) went through table 22's flood.
  const first = rec.steps.find((s) => s.host === 'compute1' && s.bridge === 'br-tun' && s.table === 22);
  assert.ok(first);
  // compute2 learned compute1's MAC from the tunnel ...
  const learned = w.host('compute2').vswitch.bridge('br-tun').model.dumpFlows().filter((f) => f.learned);
  assert.equal(learned.length, 1);
  assert.equal(learned[0].table, 20);
  assert.match(learned[0].text, /dl_dst=fa:16:3e:00:00:01/);
  assert.match(learned[0].text, /hard_timeout=300/);
  // ... and its replies to that MAC hit the learned flow, not the flood.
  const replies = rec.steps.filter((s) => s.host === 'compute2' && s.bridge === 'br-tun' && s.table === 20 && s.rule?.includes('dl_dst=fa:16:3e:00:00:01'));
  assert.ok(replies.length >= 1, renderTrace(rec));
  assert.ok(learned[0].nPackets >= 1);
  assert.ok(!rec.steps.some((s) => s.host === 'compute2' && s.bridge === 'br-tun' && s.table === 22 && s.before.eth.dst === 'fa:16:3e:00:00:01'));
  // After the hard timeout the learned flow is gone and compute2 floods again.
  w.advance(301);
  w.host('compute2').ns('a').delNeigh('tap-a', '10.5.0.1');
  const later = w.ping({ host: 'compute2', ns: 'a' }, '10.5.0.1');
  assert.ok(later.steps.some((s) => s.host === 'compute2' && s.bridge === 'br-tun' && s.table === 22), renderTrace(later));
});
