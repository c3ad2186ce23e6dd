// Hosts joined by the fabric: VLAN-tagged physical networks switched by OVS NORMAL, and
// VXLAN/GRE tunnels carried by the hosts' own IP stacks over the tunnel network.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { World } from './world.js';
import { ipToInt } from './addr.js';
import type { Frame } from './packet.js';
import { renderTrace } from '../../trace/render.js';

const vmMac = (host: number, n: number) => `fa:16:3e:0${host}:00:0${n}`;

/** Two hosts whose br-vlan (NORMAL) trunks eth2 onto a shared VLAN segment; namespaces on tagged internal ports. */
function vlanWorld() {
  const w = new World();
  const seg = w.addSegment('vlan');
  for (const i of [1, 2]) {
    const h = w.addHost(`compute${i}`);
    h.addNic('eth2', seg, { mac: `52:54:00:00:02:0${i}` });
    h.vswitch.addBridge('br-vlan');
    h.vswitch.addPort('br-vlan', { name: 'eth2', type: 'system' });
    h.vswitch.bridge('br-vlan').model.addFlows(['priority=0,actions=NORMAL']);
    for (const [n, tag] of [
      [1, 101],
      [2, 102],
    ]) {
      h.addNetns(`ns${n}`);
      h.vswitch.addPort('br-vlan', { name: `port${n}`, type: 'internal', tag, ns: `ns${n}`, mac: vmMac(i, n) });
      h.linkSet(`port${n}`, { ns: `ns${n}`, up: true });
      h.ns(`ns${n}`).addAddr(`port${n}`, `10.1.0.${i}/24`);
    }
  }
  return w;
}

test('two hosts switch a VLAN-tagged network through NORMAL; another VLAN with the same addresses stays apart', () => {
  const w = vlanWorld();
  const rec = w.ping({ host: 'compute1', ns: 'ns1' }, '10.1.0.2');
  const got = rec.delivered.find((d) => d.host === 'compute2' && d.to === 'icmp echo');
  assert.ok(got, renderTrace(rec));
  assert.equal(got.ns, 'ns1');
  assert.equal(got.frame.vlan, undefined, 'delivered untagged on the access port');
  assert.equal(got.frame.eth.src, vmMac(1, 1));
  // On the wire the frames carry VLAN 101, both ways.
  const wire = rec.steps.filter((s) => s.kind === 'wire' && s.before.ip);
  assert.deepEqual(
    wire.map((s) => [s.host, s.before.vlan, s.before.ip!.src]),
    [
      ['compute1', 101, '10.1.0.1'],
      ['compute2', 101, '10.1.0.2'],
    ],
  );
  // The broadcast ARP on VLAN 101 reached compute2's br-vlan, which delivered it only to the tag-101 port.
  assert.ok(!rec.steps.some((s) => s.ns === 'ns2'), renderTrace(rec));
  const normal = rec.steps.find((s) => s.kind === 'ovs' && s.host === 'compute2' && s.before.arp);
  assert.equal(normal?.rule, 'priority=0,actions=NORMAL');
  assert.ok(rec.delivered.some((d) => d.host === 'compute1' && d.ns === 'ns1' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0));
  const other = w.ping({ host: 'compute1', ns: 'ns2' }, '10.1.0.2');
  assert.ok(other.delivered.some((d) => d.host === 'compute2' && d.ns === 'ns2' && d.to === 'icmp echo'), renderTrace(other));
  assert.ok(!other.delivered.some((d) => d.ns === 'ns1'));
});

/**
 * Two hosts with a tunnel bridge each: local ports on network A (VNI 1) and B (VNI 2) hold the
 * same addresses; flows tag by input port on the way out and pick the port by tun_id on the
 * way in.
 */
function tunnelWorld(type: 'vxlan' | 'gre') {
  const w = new World();
  const seg = w.addSegment('tunnel');
  for (const i of [1, 2]) {
    const h = w.addHost(`compute${i}`);
    h.addNic('eth1', seg, { mac: `52:54:00:00:01:0${i}` });
    h.root.addAddr('eth1', `10.0.1.1${i}/24`);
    const remote = `10.0.1.1${3 - i}`;
    const tun = `${type}-0a00010${3 - i}`;
    h.vswitch.addBridge('br-tun');
    h.vswitch.addPort('br-tun', { name: tun, type, remoteIp: remote, localIp: `10.0.1.1${i}`, key: 'flow' });
    for (const [n, vni] of [
      ['a', 1],
      ['b', 2],
    ] as const) {
      h.addNetns(`net-${n}`);
      h.vswitch.addPort('br-tun', { name: `tap-${n}`, type: 'internal', ns: `net-${n}`, mac: vmMac(i, vni) });
      h.linkSet(`tap-${n}`, { ns: `net-${n}`, up: true });
      h.ns(`net-${n}`).addAddr(`tap-${n}`, `10.5.0.${i}/24`);
      h.vswitch.bridge('br-tun').model.addFlows([`table=0,priority=1,in_port=tap-${n},actions=set_tunnel:${vni},output:${tun}`, `table=0,priority=1,in_port=${tun},tun_id=${vni},actions=output:tap-${n}`]);
    }
  }
  return w;
}

for (const type of ['vxlan', 'gre'] as const) {
  test(`two hosts joined by ${type.toUpperCase()}: per-key isolation, outer header over the tunnel network`, () => {
    const w = tunnelWorld(type);
    const rec = w.ping({ host: 'compute1', ns: 'net-a' }, '10.5.0.2');
    const got = rec.delivered.filter((d) => d.host === 'compute2' && d.to === 'icmp echo');
    assert.equal(got.length, 1, renderTrace(rec));
    assert.equal(got[0].ns, 'net-a');
    assert.equal(got[0].frame.eth.src, vmMac(1, 1));
    // A packet on key 1 never reaches the key-2 network.
    assert.ok(!rec.steps.some((s) => s.host === 'compute2' && s.ns === 'net-b'), renderTrace(rec));
    // The outer packet on the wire: host addresses, protocol, key, and the inner frame.
    const wire = rec.steps.find((s) => s.kind === 'wire' && s.before.encap?.inner.ip);
    assert.ok(wire, renderTrace(rec));
    const outer = wire.before;
    assert.equal(outer.ip!.src, '10.0.1.11');
    assert.equal(outer.ip!.dst, '10.0.1.12');
    assert.equal(outer.eth.src, '52:54:00:00:01:01');
    assert.equal(outer.eth.dst, '52:54:00:00:01:02');
    if (type === 'vxlan') {
      assert.equal(outer.ip!.proto, 17);
      assert.equal(outer.l4?.kind === 'udp' && outer.l4.dport, 4789);
      assert.deepEqual(outer.encap && outer.encap.kind === 'vxlan' && outer.encap.vni, 1);
    } else {
      assert.equal(outer.ip!.proto, 47);
      assert.deepEqual(outer.encap && outer.encap.kind === 'gre' && outer.encap.key, 1);
    }
    assert.equal(outer.encap!.inner.ip!.dst, '10.5.0.2');
    const decap = rec.steps.find((s) => s.kind === 'decap' && s.host === 'compute2');
    assert.match(decap!.action, /tun_id=1/);
    // The reply came back the same way.
    assert.ok(rec.delivered.some((d) => d.host === 'compute1' && d.ns === 'net-a' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0), renderTrace(rec));
    // Network B (key 2) works with the same addresses, isolated from A.
    const b = w.ping({ host: 'compute1', ns: 'net-b' }, '10.5.0.2');
    assert.deepEqual(
      b.delivered.filter((d) => d.to === 'icmp echo').map((d) => `${d.host}/${d.ns}`),
      ['compute2/net-b'],
    );
    const wireB = b.steps.find((s) => s.kind === 'wire' && s.before.encap?.inner.ip);
    const e = wireB!.before.encap!;
    assert.equal(e.kind === 'vxlan' ? e.vni : e.key, 2);
  });
}

test('a tunnel packet from an unknown remote or with a fixed key that differs is discarded', () => {
  const w = tunnelWorld('vxlan');
  const h2 = w.host('compute2');
  h2.vswitch.delPort('vxlan-0a000101');
  h2.vswitch.addPort('br-tun', { name: 'vxlan-0a000101', type: 'vxlan', remoteIp: '10.0.1.11', key: 7 });
  const rec = w.ping({ host: 'compute1', ns: 'net-a' }, '10.5.0.2');
  assert.ok(rec.dropped.some((d) => d.host === 'compute2' && /no vxlan port with remote_ip=10.0.1.11 and key 1/.test(d.reason)), renderTrace(rec));
});

test('untraced traffic keeps its deliveries and drops but records no steps; tracing is back afterwards', () => {
  const w = vlanWorld();
  const quiet = w.untraced(() => w.ping({ host: 'compute1', ns: 'ns1' }, '10.1.0.2', { seq: 1 }));
  assert.ok(quiet.delivered.some((d) => d.host === 'compute1' && d.ns === 'ns1' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0));
  assert.equal(quiet.steps.length, 0);
  assert.equal(w.tracing, true);
  assert.throws(() => w.untraced(() => w.ping({ host: 'nowhere' }, '10.1.0.2')));
  assert.equal(w.tracing, true, 'restored when the traffic throws');
  const traced = w.ping({ host: 'compute1', ns: 'ns1' }, '10.1.0.2', { seq: 2 });
  assert.ok(traced.steps.length > 0);
});

test('unrecorded traffic has its effects but keeps no record at all; recording is back afterwards', () => {
  const w = vlanWorld();
  const port1 = w.host('compute1').ns('ns1').device('port1');
  const peer = w.host('compute2').ns('ns1').device('port1');
  assert.equal(port1.neigh.get(ipToInt('10.1.0.2')), undefined);
  const none = w.unrecorded(() => w.ping({ host: 'compute1', ns: 'ns1' }, '10.1.0.2', { seq: 1 }));
  assert.deepEqual([none.steps.length, none.packets.length, none.delivered.length, none.dropped.length], [0, 0, 0, 0]);
  // The echo went out and its ARP exchange happened: both ends learned each other.
  assert.equal(port1.neigh.get(ipToInt('10.1.0.2'))?.mac, peer.mac);
  assert.equal(peer.neigh.get(ipToInt('10.1.0.1'))?.mac, port1.mac);
  assert.throws(() => w.unrecorded(() => w.ping({ host: 'nowhere' }, '10.1.0.2')));
  const again = w.ping({ host: 'compute1', ns: 'ns1' }, '10.1.0.2', { seq: 2 });
  assert.ok(again.steps.length > 0 && again.delivered.some((d) => d.host === 'compute1' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0), 'recorded again, steps included');
});

test('traffic outside a capture (a gratuitous ARP an agent sends) moves but is not recorded; the next capture holds only its own', () => {
  const w = vlanWorld();
  const h1 = w.host('compute1');
  const dev = h1.ns('ns1').device('port1');
  const garp: Frame = { eth: { src: dev.mac, dst: 'ff:ff:ff:ff:ff:ff', type: 0x0806 }, arp: { op: 1, sha: dev.mac, spa: '10.1.0.1', tha: '00:00:00:00:00:00', tpa: '10.1.0.1' } };
  for (let i = 0; i < 3; i++) h1.xmit(dev, garp, w.tracer.newPacket('ARP announce'));
  w.run();
  // It crossed to compute2 (its switch counted the three) and nothing of it stayed behind.
  assert.equal(w.host('compute2').vswitch.bridge('br-vlan').model.dumpFlows()[0].nPackets, 3);
  assert.deepEqual(w.tracer.record, { steps: [], packets: [], delivered: [], dropped: [] });
  const rec = w.ping({ host: 'compute1', ns: 'ns1' }, '10.1.0.2');
  assert.ok(rec.steps.length > 0);
  assert.ok(rec.packets.every((p) => p.origin !== 'ARP announce'));
});

test('a forwarding loop is stopped and named, at a bound that grows with the hosts', () => {
  const w = new World();
  const h = w.addHost('h1');
  for (const b of ['br-a', 'br-b']) {
    h.vswitch.addBridge(b);
    h.vswitch.bridge(b).model.addFlows(['priority=0,actions=NORMAL']);
  }
  // Two patch links between the same two bridges, both switching NORMAL: a broadcast circles.
  for (const k of [1, 2]) {
    h.vswitch.addPort('br-a', { name: `a-to-b${k}`, type: 'patch', peer: `b-to-a${k}` });
    h.vswitch.addPort('br-b', { name: `b-to-a${k}`, type: 'patch', peer: `a-to-b${k}` });
  }
  h.addNetns('ns1');
  h.vswitch.addPort('br-a', { name: 'port1', type: 'internal', ns: 'ns1', mac: 'fa:16:3e:00:00:01' });
  h.linkSet('port1', { ns: 'ns1', up: true });
  h.ns('ns1').addAddr('port1', '10.9.0.1/24');
  assert.throws(() => w.ping({ host: 'h1', ns: 'ns1' }, '10.9.0.2'), /More than 200000 events for one injection: a forwarding loop\?/);
  for (let i = 2; i <= 150; i++) w.addHost(`h${i}`);
  assert.throws(() => w.ping({ host: 'h1', ns: 'ns1' }, '10.9.0.3'), /More than 300000 events/);
});
