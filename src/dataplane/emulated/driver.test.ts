// The emulated driver realises hand-written host states: after applying, reading the host
// back gives no difference, applying again does nothing, and packets follow the states.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diff } from '../../host/diff.js';
import {
  addBridge,
  addDhcpServer,
  addFlows,
  addInternalPort,
  addMetadataProxy,
  addNamespace,
  addPort,
  addTap,
  emptyHost,
  iptablesText,
  removeNamespace,
  removePort,
  setIptables,
  setPort,
  setSysctl,
  systemPort,
} from '../../host/build.js';
import { renderTrace } from '../../trace/render.js';
import { buildTestbed, COMPUTE1, COMPUTE2, NET2, VM1, VM2, computeState } from './testbed.js';
import { World } from './world.js';
import { EmulatedDriverError } from './driver.js';
import type { ProxiedRequest } from './apps/metadata.js';
import { itemsOf } from '../../host/chunks.js';

test('applying a DVR compute node state leaves no difference, and applying it again does nothing', () => {
  const { world, states } = buildTestbed();
  for (const name of ['compute1', 'compute2']) {
    const h = world.host(name);
    assert.deepEqual(diff(h.readState(), states[name]), []);
    assert.deepEqual(h.applyState(states[name]), []);
  }
});

test('east-west (scenario 4.3): VM1 on compute1 reaches VM2 on compute2 through qrouter, br-int, br-tun and VXLAN', () => {
  const { world } = buildTestbed();
  world.ping({ host: 'compute1', ns: 'vm1' }, VM2.ip); // ARP and MAC learning
  const rec = world.ping({ host: 'compute1', ns: 'vm1' }, VM2.ip, { seq: 2 });
  assert.equal(rec.dropped.filter((d) => !/is down|not a local address|no flow output/.test(d.reason)).length, 0, renderTrace(rec));
  const req = rec.steps.filter((s) => s.pkt === rec.packets[0].id);
  const at = (pred: (s: (typeof req)[number]) => boolean, what: string) => {
    const s = req.find(pred);
    assert.ok(s, `${what}\n${renderTrace(rec)}`);
    return s;
  };
  // compute1: tap -> qbr (security groups) -> qvb/qvo -> br-int -> qr-(net1) of qrouter.
  const sg = at((s) => s.host === 'compute1' && s.kind === 'netfilter' && s.table === 'FORWARD', 'security groups on qbr');
  assert.match(sg.action, /FORWARD \(bridged\): ACCEPT/);
  const routed = at((s) => s.host === 'compute1' && s.kind === 'route' && !!s.ns?.startsWith('qrouter-') && !!s.after, 'qrouter routes');
  assert.deepEqual([routed.before.eth.dst, routed.before.ip!.ttl, routed.after!.ip!.ttl], [VM1.net.qrMac, 64, 63]);
  const neigh = at((s) => s.host === 'compute1' && s.kind === 'neigh' && !!s.ns?.startsWith('qrouter-'), 'permanent neighbour');
  assert.match(neigh.rule!, /PERMANENT/);
  assert.deepEqual([neigh.after!.eth.src, neigh.after!.eth.dst], [NET2.qrMac, VM2.mac]);
  // br-tun replaces the source MAC TG2 with D1, on network 2's local VLAN of compute1.
  const dvr = at((s) => s.host === 'compute1' && s.bridge === 'br-tun' && s.table === 1 && !!s.after, 'DVR source MAC rewrite');
  assert.deepEqual([dvr.before.eth.src, dvr.after!.eth.src, dvr.before.vlan], [NET2.qrMac, COMPUTE1.dvrMac, COMPUTE1.lvid.net2]);
  // VXLAN with network 2's VNI between the hosts' tunnel addresses.
  const wire = at((s) => s.kind === 'wire' && !!s.before.encap, 'VXLAN on the wire');
  assert.deepEqual([wire.before.ip!.src, wire.before.ip!.dst, wire.before.encap!.kind, wire.before.encap!.kind === 'vxlan' && wire.before.encap!.vni], [COMPUTE1.tunnelIp, COMPUTE2.tunnelIp, 'vxlan', NET2.vni]);
  assert.equal(wire.before.encap!.inner.eth.src, COMPUTE1.dvrMac);
  assert.equal(wire.before.encap!.inner.vlan, undefined);
  // compute2: decapsulated, tagged with compute2's local VLAN for network 2, D1 replaced by TG2.
  const tagged = at((s) => s.host === 'compute2' && s.bridge === 'br-tun' && s.table === 4, 'tun_id to local VLAN');
  assert.equal(tagged.after!.vlan, COMPUTE2.lvid.net2);
  const back = at((s) => s.host === 'compute2' && s.bridge === 'br-int' && s.table === 1 && !!s.after, 'DVR ingress rewrite');
  assert.deepEqual([back.before.eth.src, back.after!.eth.src], [COMPUTE1.dvrMac, NET2.qrMac]);
  // compute2's qrouter is not crossed by the request.
  assert.ok(!req.some((s) => s.host === 'compute2' && s.ns?.startsWith('qrouter-')));
  const got = rec.delivered.find((d) => d.host === 'compute2' && d.ns === 'vm2' && d.to === 'icmp echo');
  assert.ok(got);
  assert.deepEqual([got.frame.eth.src, got.frame.eth.dst, got.frame.ip!.src, got.frame.ip!.ttl, got.frame.vlan], [NET2.qrMac, VM2.mac, VM1.ip, 63, undefined]);
  // The reply is routed on compute2 (its qrouter) and comes back the mirror way.
  assert.ok(rec.steps.some((s) => s.host === 'compute2' && s.ns?.startsWith('qrouter-') && s.kind === 'route' && s.before.ip?.src === VM2.ip));
  assert.ok(rec.delivered.some((d) => d.host === 'compute1' && d.ns === 'vm1' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0));
});

test('changing the state: a port tag, a flow and a namespace change in place, and nothing is left over', () => {
  const { world, states } = buildTestbed();
  const h = world.host('compute1');
  let s = states.compute1;
  s = setPort(s, 'br-int', Object.keys(s.ovs.bridges['br-int'].ports).find((p) => p.startsWith('qvo'))!, { tag: 7 });
  s = addFlows(s, 'br-tun', [{ table: 22, priority: 5, cookie: 0x99, match: 'dl_vlan=7', actions: 'drop' }]);
  s = addNamespace(s, 'qdhcp-x');
  const ops = h.applyState(s);
  assert.deepEqual(
    ops.map((o) => o.op),
    ['netns.create', 'link.create', 'port.set', 'flows.update'],
  );
  assert.deepEqual(diff(h.readState(), s), []);
  assert.equal(h.vswitch.port(Object.keys(s.ovs.bridges['br-int'].ports).find((p) => p.startsWith('qvo'))!).tag, 7);
  // And back.
  s = removeNamespace(s, 'qdhcp-x');
  s = states.compute1;
  h.applyState(s);
  assert.deepEqual(diff(h.readState(), s), []);
  assert.ok(!h.namespaces.has('qdhcp-x'));
});

test('removing an internal port removes its device from the namespace it was moved to', () => {
  const w = new World();
  const h = w.addHost('net1');
  let s = emptyHost();
  s = addBridge(s, 'br-int');
  s = addNamespace(s, 'qrouter-r');
  s = addInternalPort(s, 'br-int', 'qr-1', { namespace: 'qrouter-r', mac: 'fa:16:3e:00:00:01', addresses: ['10.0.0.1/24'], tag: 3 });
  h.applyState(s);
  assert.equal(h.ns('qrouter-r').device('qr-1').kind, 'ovs-internal');
  assert.equal(h.ns('qrouter-r').device('qr-1').addrs[0].text, '10.0.0.1/24');
  s = removePort(s, 'br-int', 'qr-1');
  h.applyState(s);
  assert.ok(!h.ns('qrouter-r').devices.has('qr-1'));
  assert.deepEqual(diff(h.readState(), s), []);
});

test('an operation that cannot be carried out fails naming the operation', () => {
  const w = new World();
  const h = w.addHost('h');
  assert.throws(
    () => h.apply([{ op: 'address.add', namespace: '', dev: 'eth9', cidr: '10.0.0.1/24' }]),
    (e: unknown) => e instanceof EmulatedDriverError && /address\.add .*eth9/.test(e.message) && /Cannot find device 'eth9'/.test(e.message),
  );
  assert.throws(() => h.apply([{ op: 'link.create', namespace: '', link: { kind: 'physical', name: 'eth3', up: true } }]), /Cannot find device 'eth3'/);
});

/** A network node's DHCP for one network: br-int (NORMAL), qdhcp namespace with dnsmasq, an instance on a tagged port. */
function dhcpWorld() {
  const w = new World();
  const h = w.addHost('network1');
  let s = emptyHost();
  s = addBridge(s, 'br-int');
  s = addFlows(s, 'br-int', [{ table: 0, priority: 0, actions: 'NORMAL' }]);
  s = addNamespace(s, 'qdhcp-net1');
  s = addInternalPort(s, 'br-int', 'tapdhcp-1', { namespace: 'qdhcp-net1', tag: 1, mac: 'fa:16:3e:00:00:02', addresses: ['192.168.1.2/24'] });
  s = addTap(s, '', 'tapvm1');
  s = addPort(s, 'br-int', systemPort('tapvm1', { tag: 1 }));
  s = addDhcpServer(s, {
    id: 'net1',
    namespace: 'qdhcp-net1',
    interface: 'tapdhcp-1',
    ranges: [{ tag: 'subnet-1', cidr: '192.168.1.0/24' }],
    hosts: [{ mac: VM1.mac, ip: '192.168.1.11', hostname: 'host-192-168-1-11' }],
    options: [
      { tag: 'subnet-1', option: 3, values: ['192.168.1.1'] },
      { tag: 'subnet-1', option: 26, values: ['1450'] },
    ],
  });
  h.applyState(s);
  h.addInstance('vm1', { tap: 'tapvm1', mac: VM1.mac });
  return { w, h, s };
}

test('DHCP: an instance gets its address, gateway and MTU from the network\'s dnsmasq', () => {
  const { w, h, s } = dhcpWorld();
  assert.deepEqual(diff(h.readState(), s), []);
  const vm = h.ns('vm1');
  let lease: { ip: string; router?: string; mtu?: number } | undefined;
  const rec = w.dhcp({ host: 'network1', ns: 'vm1' }, (l) => (lease = l));
  assert.deepEqual(lease && [lease.ip, lease.router, lease.mtu], ['192.168.1.11', '192.168.1.1', 1450], renderTrace(rec));
  const kinds = rec.delivered.filter((d) => d.to.includes('udp:6')).map((d) => `${d.ns} ${d.to} ${(d.frame.data as { dhcp: string }).dhcp}`);
  assert.deepEqual(kinds, ['qdhcp-net1 udp:67 DISCOVER', 'vm1 packet socket udp:68 OFFER', 'qdhcp-net1 udp:67 REQUEST', 'vm1 packet socket udp:68 ACK']);
  const offer = rec.delivered.find((d) => d.ns === 'vm1')!;
  assert.deepEqual([offer.frame.ip!.src, offer.frame.ip!.dst, offer.frame.eth.dst], ['192.168.1.2', '192.168.1.11', VM1.mac]);
  assert.equal(vm.device('eth0').addrs[0].text, '192.168.1.11/24');
  assert.equal(vm.device('eth0').mtu, 1450);
  assert.ok(vm.routesText().includes('default via 192.168.1.1 dev eth0'));
  // An unknown MAC gets nothing (static ranges).
  h.addTap('tapvm2', { up: true });
  h.vswitch.addPort('br-int', { name: 'tapvm2', type: 'system', tag: 1 });
  h.addInstance('vm2', { tap: 'tapvm2', mac: 'fa:16:3e:99:99:99' });
  let none: unknown;
  const rec2 = w.dhcp({ host: 'network1', ns: 'vm2' }, (l) => (none = l));
  assert.equal(none, undefined);
  assert.ok(rec2.delivered.some((d) => d.ns === 'qdhcp-net1' && d.to === 'udp:67'));
});

test('metadata proxy from the state: REDIRECT to 9697 in qrouter, the proxy adds the router id', () => {
  const w = new World();
  const h = w.addHost('compute1');
  let s = emptyHost();
  s = addBridge(s, 'br-int');
  s = addFlows(s, 'br-int', [{ table: 0, priority: 0, actions: 'NORMAL' }]);
  s = addNamespace(s, 'qrouter-r1');
  s = setSysctl(s, 'qrouter-r1', 'net.ipv4.ip_forward', 1);
  s = addInternalPort(s, 'br-int', 'qr-1', { namespace: 'qrouter-r1', tag: 1, mac: VM1.net.qrMac, addresses: ['192.168.1.1/24'] });
  s = addTap(s, '', 'tapvm1');
  s = addPort(s, 'br-int', systemPort('tapvm1', { tag: 1 }));
  s = setIptables(
    s,
    'qrouter-r1',
    'nat',
    iptablesText(
      'nat',
      [
        ['PREROUTING', 'ACCEPT'],
        ['INPUT', 'ACCEPT'],
        ['OUTPUT', 'ACCEPT'],
        ['POSTROUTING', 'ACCEPT'],
      ],
      ['-A PREROUTING -d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 9697'],
    ),
  );
  s = addMetadataProxy(s, { id: 'r1', namespace: 'qrouter-r1', listen_ip: '0.0.0.0', listen_port: 9697, upstream: '/var/lib/neutron/metadata_proxy', router_id: 'r1' });
  h.applyState(s);
  assert.deepEqual(diff(h.readState(), s), []);
  h.addInstance('vm1', { tap: 'tapvm1', mac: VM1.mac, ip: '192.168.1.11/24', gateway: '192.168.1.1' });
  const rec = w.send({ host: 'compute1', ns: 'vm1' }, { proto: 'tcp', dst: '169.254.169.254', dport: 80, data: 'GET /openstack/latest/meta_data.json' });
  const resp = rec.delivered.find((d) => d.ns === 'vm1' && d.frame.data !== undefined);
  assert.ok(resp, renderTrace(rec));
  const body = resp.frame.data as ProxiedRequest;
  assert.deepEqual(body.headers, { 'X-Forwarded-For': '192.168.1.11', 'X-Neutron-Router-ID': 'r1' });
  assert.equal(resp.frame.ip!.src, '169.254.169.254');
  // Stopping the proxy (state without it): the port is closed, the client gets a reset.
  const { r1: _r1, ...rest } = s.metadata;
  h.applyState({ ...s, metadata: rest });
  const closed = w.send({ host: 'compute1', ns: 'vm1' }, { proto: 'tcp', dst: '169.254.169.254', dport: 80, data: 'GET /' });
  assert.ok(closed.delivered.some((d) => d.ns === 'vm1' && d.frame.l4?.kind === 'tcp' && d.frame.l4.flags.rst), renderTrace(closed));
});

test('compute states for both nodes validate and differ only where the hosts do', () => {
  const a = computeState(COMPUTE1);
  const b = computeState(COMPUTE2);
  assert.ok(diff(a, b).length > 0);
  assert.deepEqual(diff(a, computeState(COMPUTE1)), []);
});

test('a read-back gives the flow objects that were written, and parses what someone else wrote', () => {
  const { world, states } = buildTestbed();
  const h = world.host('compute1');
  const s = addFlows(states.compute1, 'br-tun', [{ table: 22, priority: 5, cookie: 0x99, match: 'dl_vlan=7', actions: 'drop' }]);
  h.applyState(s);
  const written = itemsOf(s.ovs.bridges['br-tun'].flows).find((f) => f.match === 'dl_vlan=7')!;
  const read = itemsOf(h.readState().ovs.bridges['br-tun'].flows).find((f) => f.match === 'dl_vlan=7')!;
  assert.equal(read, written, 'the same object');
  // An operator's flow, written as ovs-ofctl would take it.
  h.vswitch.bridge('br-tun').model.addFlows(['table=22, priority=6, dl_vlan=8, actions=drop']);
  const theirs = itemsOf(h.readState().ovs.bridges['br-tun'].flows).find((f) => f.match === 'dl_vlan=8');
  assert.deepEqual(theirs, { table: 22, priority: 6, cookie: '0x0', match: 'dl_vlan=8', actions: 'drop' });
  assert.deepEqual(diff(h.readState(), s).map((o) => o.op), ['flows.update'], 'and it is not in the state: it goes');
});
