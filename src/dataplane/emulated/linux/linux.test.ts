import { test } from 'node:test';
import assert from 'node:assert/strict';
import { World } from '../world.js';
import { renderTrace } from '../../../trace/render.js';
import type { EmulatedHost } from './host.js';

const MAC = {
  left: 'fa:16:3e:00:01:02',
  rLeft: 'fa:16:3e:00:01:01',
  rRight: 'fa:16:3e:00:02:01',
  right: 'fa:16:3e:00:02:02',
};

/** left (10.0.1.2) -- router (10.0.1.1 | 10.0.2.1) -- right (10.0.2.2), namespaces joined by veth pairs. */
function routedHost(opts: { leftCidr?: string; leftGateway?: boolean } = {}): { w: World; h: EmulatedHost } {
  const w = new World();
  const h = w.addHost('h1');
  for (const n of ['left', 'router', 'right']) h.addNetns(n);
  h.addVeth('eth0', 'r-left', { ns: 'left', peerNs: 'router', mac: MAC.left, peerMac: MAC.rLeft, up: true });
  h.addVeth('eth0', 'r-right', { ns: 'right', peerNs: 'router', mac: MAC.right, peerMac: MAC.rRight, up: true });
  const left = h.ns('left');
  const router = h.ns('router');
  const right = h.ns('right');
  left.addAddr('eth0', opts.leftCidr ?? '10.0.1.2/24');
  router.addAddr('r-left', '10.0.1.1/24');
  router.addAddr('r-right', '10.0.2.1/24');
  right.addAddr('eth0', '10.0.2.2/24');
  if (opts.leftGateway ?? true) left.addRoute({ dst: 'default', via: '10.0.1.1' });
  right.addRoute({ dst: 'default', via: '10.0.2.1' });
  router.setSysctl('net.ipv4.ip_forward', '1');
  return { w, h };
}

test('a namespace router forwards between two subnets, resolving MACs with ARP and decrementing TTL', () => {
  const { w } = routedHost();
  const rec = w.ping({ host: 'h1', ns: 'left' }, '10.0.2.2');
  const atRight = rec.delivered.find((d) => d.ns === 'right' && d.to === 'icmp echo');
  assert.ok(atRight, renderTrace(rec));
  assert.equal(atRight.frame.ip!.ttl, 63);
  assert.equal(atRight.frame.eth.src, MAC.rRight);
  assert.equal(atRight.frame.eth.dst, MAC.right);
  assert.equal(atRight.frame.ip!.src, '10.0.1.2');
  const reply = rec.delivered.find((d) => d.ns === 'left' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0);
  assert.ok(reply, renderTrace(rec));
  assert.equal(reply.frame.ip!.src, '10.0.2.2');
  assert.equal(reply.frame.ip!.ttl, 63);
  assert.equal(reply.frame.eth.src, MAC.rLeft);
  // ARP happened: left asked for its gateway, the router for 10.0.2.2.
  const arpReplies = rec.steps.filter((s) => s.kind === 'arp');
  assert.deepEqual(
    arpReplies.map((s) => `${s.ns} ${s.dev} ${s.after!.arp!.spa} ${s.after!.arp!.sha}`),
    [`router r-left 10.0.1.1 ${MAC.rLeft}`, `right eth0 10.0.2.2 ${MAC.right}`],
  );
  // The forwarding step records the route and the TTL change.
  const fwd = rec.steps.find((s) => s.kind === 'route' && s.ns === 'router' && s.after);
  assert.ok(fwd?.rule?.includes('10.0.2.0/24 dev r-right'));
  assert.equal(fwd!.before.ip!.ttl, 64);
  assert.equal(fwd!.after!.ip!.ttl, 63);
  assert.equal(rec.dropped.length, 0, renderTrace(rec));
  // Neighbours are now cached: a second ping sends no ARP.
  const again = w.ping({ host: 'h1', ns: 'left' }, '10.0.2.2', { seq: 2 });
  assert.equal(again.steps.filter((s) => s.kind === 'arp').length, 0);
  assert.ok(again.delivered.some((d) => d.ns === 'left' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0));
});

test('TTL 1 through the router returns ICMP time exceeded from the router interface', () => {
  const { w } = routedHost();
  const rec = w.ping({ host: 'h1', ns: 'left' }, '10.0.2.2', { ttl: 1 });
  const err = rec.delivered.find((d) => d.ns === 'left' && d.frame.l4?.kind === 'icmp');
  assert.ok(err, renderTrace(rec));
  const icmp = err.frame.l4 as { type: number; code: number; quoted?: { ip?: { dst: string } } };
  assert.equal(icmp.type, 11);
  assert.equal(icmp.code, 0);
  assert.equal(err.frame.ip!.src, '10.0.1.1');
  assert.equal(icmp.quoted?.ip?.dst, '10.0.2.2');
  assert.ok(!rec.delivered.some((d) => d.ns === 'right'));
});

test('UDP to a closed port answers port unreachable; to an open one reaches the socket', () => {
  const { w, h } = routedHost();
  const closed = w.send({ host: 'h1', ns: 'left' }, { proto: 'udp', dst: '10.0.2.2', dport: 5000 });
  const err = closed.delivered.find((d) => d.ns === 'left' && d.frame.l4?.kind === 'icmp');
  assert.ok(err, renderTrace(closed));
  assert.deepEqual([err.frame.l4?.kind, (err.frame.l4 as { type: number }).type, (err.frame.l4 as { code: number }).code], ['icmp', 3, 3]);
  assert.equal(err.frame.ip!.src, '10.0.2.2');
  const got: unknown[] = [];
  h.ns('right').udp.set(5000, (m) => got.push(m.data));
  const open = w.send({ host: 'h1', ns: 'left' }, { proto: 'udp', dst: '10.0.2.2', dport: 5000, data: 'hello' });
  assert.deepEqual(got, ['hello']);
  assert.ok(open.delivered.some((d) => d.ns === 'right' && d.to === 'udp:5000'));
});

test('no route: the router answers network unreachable; without ip_forward it drops', () => {
  const { w, h } = routedHost();
  const rec = w.ping({ host: 'h1', ns: 'left' }, '172.16.0.1');
  const err = rec.delivered.find((d) => d.ns === 'left' && d.frame.l4?.kind === 'icmp');
  assert.equal((err?.frame.l4 as { type: number }).type, 3, renderTrace(rec));
  assert.equal((err?.frame.l4 as { code: number }).code, 0);
  h.ns('router').setSysctl('net.ipv4.ip_forward', '0');
  const off = w.ping({ host: 'h1', ns: 'left' }, '10.0.2.2');
  assert.ok(off.dropped.some((d) => d.ns === 'router' && /ip_forward=0/.test(d.reason)), renderTrace(off));
});

test('an unanswered ARP fails the neighbour and drops the queued packet', () => {
  const { w } = routedHost();
  const rec = w.ping({ host: 'h1', ns: 'router' }, '10.0.2.99');
  assert.ok(rec.dropped.some((d) => /no ARP reply for 10.0.2.99/.test(d.reason)), renderTrace(rec));
});

test('a permanent neighbour entry is used without ARP and is not overwritten by ARP', () => {
  const { w, h } = routedHost();
  h.ns('router').addNeigh('r-right', '10.0.2.2', MAC.right);
  const rec = w.ping({ host: 'h1', ns: 'router' }, '10.0.2.2');
  const out = rec.steps.find((s) => s.kind === 'neigh' && s.ns === 'router');
  assert.match(out!.rule!, /10.0.2.2 dev r-right lladdr fa:16:3e:00:02:02 PERMANENT/);
  assert.ok(!rec.steps.some((s) => s.kind === 'arp' && s.ns === 'right'), renderTrace(rec));
  assert.ok(rec.delivered.some((d) => d.ns === 'router' && d.frame.l4?.kind === 'icmp'));
});

test('proxy ARP: the router answers for an address routed via another interface', () => {
  // left thinks 10.0.0.0/16 is on-link, so it ARPs for 10.0.2.2 directly.
  const { w, h } = routedHost({ leftCidr: '10.0.1.2/16', leftGateway: false });
  const without = w.ping({ host: 'h1', ns: 'left' }, '10.0.2.2');
  assert.ok(without.dropped.some((d) => /no ARP reply for 10.0.2.2/.test(d.reason)), renderTrace(without));
  h.ns('router').setSysctl('net.ipv4.conf.r-left.proxy_arp', '1');
  h.ns('left').delNeigh('eth0', '10.0.2.2');
  const rec = w.ping({ host: 'h1', ns: 'left' }, '10.0.2.2');
  const proxied = rec.steps.find((s) => s.kind === 'arp' && s.ns === 'router');
  assert.ok(proxied, renderTrace(rec));
  assert.match(proxied.rule!, /proxy_arp on r-left: 10.0.2.2 routed via r-right/);
  assert.equal(proxied.after!.arp!.sha, MAC.rLeft);
  assert.equal(proxied.after!.arp!.spa, '10.0.2.2');
  assert.ok(rec.delivered.some((d) => d.ns === 'right' && d.to === 'icmp echo'), renderTrace(rec));
  assert.ok(rec.delivered.some((d) => d.ns === 'left' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0));
});

test('ip rule steers one source address to another routing table', () => {
  const w = new World();
  const h = w.addHost('h1');
  for (const n of ['router', 'up1', 'up2', 'client']) h.addNetns(n);
  h.addVeth('eth0', 'qr', { ns: 'client', peerNs: 'router', up: true });
  h.addVeth('eth0', 'up1', { ns: 'up1', peerNs: 'router', up: true });
  h.addVeth('eth0', 'up2', { ns: 'up2', peerNs: 'router', up: true });
  const r = h.ns('router');
  r.setSysctl('net.ipv4.ip_forward', 1);
  r.addAddr('qr', '192.168.1.1/24');
  r.addAddr('up1', '172.16.1.1/24');
  r.addAddr('up2', '172.16.2.1/24');
  r.addRoute({ dst: 'default', via: '172.16.1.2' });
  r.addRoute({ dst: 'default', via: '172.16.2.2', dev: 'up2', table: 16 });
  r.addRule({ priority: 100, from: '192.168.1.12', table: 16 });
  const c = h.ns('client');
  c.addAddr('eth0', '192.168.1.11/24');
  c.addAddr('eth0', '192.168.1.12/24');
  c.addRoute({ dst: 'default', via: '192.168.1.1' });
  for (const [n, ip] of [
    ['up1', '172.16.1.2/24'],
    ['up2', '172.16.2.2/24'],
  ]) {
    const u = h.ns(n);
    u.addAddr('eth0', ip);
    u.addAddr('lo', '198.51.100.1/32');
    u.addRoute({ dst: 'default', via: ip.startsWith('172.16.1') ? '172.16.1.1' : '172.16.2.1' });
  }
  const plain = w.ping({ host: 'h1', ns: 'client' }, '198.51.100.1', { src: '192.168.1.11' });
  assert.ok(plain.delivered.some((d) => d.ns === 'up1' && d.to === 'icmp echo'), renderTrace(plain));
  const steered = w.ping({ host: 'h1', ns: 'client' }, '198.51.100.1', { src: '192.168.1.12' });
  assert.ok(steered.delivered.some((d) => d.ns === 'up2' && d.to === 'icmp echo'), renderTrace(steered));
  const step = steered.steps.find((s) => s.kind === 'route' && s.ns === 'router');
  assert.equal(step!.table, '16');
  assert.match(step!.rule!, /^100: from 192.168.1.12 lookup 16/);
  // Rule removed: back to the main table.
  r.delRule({ priority: 100, from: '192.168.1.12', table: 16 });
  const back = w.ping({ host: 'h1', ns: 'client' }, '198.51.100.1', { src: '192.168.1.12' });
  assert.ok(back.delivered.some((d) => d.ns === 'up1' && d.to === 'icmp echo'), renderTrace(back));
});

test('a Linux bridge learns MACs: flood first, then forward to the learnt port only', () => {
  const w = new World();
  const h = w.addHost('h1');
  const br = h.addBridge('br0', { up: true });
  for (const n of ['a', 'b', 'c']) {
    h.addNetns(n);
    h.addVeth(`v${n}`, 'eth0', { peerNs: n, up: true });
    h.setMaster(`v${n}`, 'br0');
    h.ns(n).addAddr('eth0', `10.9.0.${n.charCodeAt(0) - 96}/24`);
  }
  const first = w.ping({ host: 'h1', ns: 'a' }, '10.9.0.2');
  const flood = first.steps.find((s) => s.kind === 'bridge');
  assert.match(flood!.action, /flood broadcast from va to vb, vc/);
  assert.ok(first.delivered.some((d) => d.ns === 'b' && d.to === 'icmp echo'), renderTrace(first));
  // The echo request itself was forwarded to vb only (the ARP reply taught the bridge).
  const fwd = first.steps.filter((s) => s.kind === 'bridge' && s.before.ip);
  assert.ok(fwd.length >= 2);
  assert.match(fwd[0].action, /forward va -> vb/);
  assert.ok(br.fdb.has(h.ns('b').device('eth0').mac));
  assert.ok(!first.steps.some((s) => s.ns === 'c' && s.before.ip), 'c never sees the unicast');
});

test('loopback: a namespace pings its own address', () => {
  const { w } = routedHost();
  const rec = w.ping({ host: 'h1', ns: 'router' }, '10.0.2.1');
  assert.ok(rec.delivered.some((d) => d.ns === 'router' && d.dev === 'lo' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0), renderTrace(rec));
});

test('configuration errors quote the input', () => {
  const { h } = routedHost();
  const r = h.ns('router');
  assert.throws(() => r.addAddr('r-left', '10.0.1.300/24'), /Invalid .*'10.0.1.300\/24'/);
  assert.throws(() => r.addRoute({ dst: '10.5.0.0/16', via: '10.99.0.1' }), /Nexthop has invalid gateway \(route '10.5.0.0\/16 via 10.99.0.1'\)/);
  assert.throws(() => r.addRoute({ dst: '10.5.0.1/16', dev: 'r-left' }), /Invalid prefix/);
  assert.throws(() => r.addAddr('nope', '10.0.0.1/24'), /Cannot find device 'nope' in namespace 'router'/);
  assert.throws(() => h.ns('ghost'), /Cannot open network namespace 'ghost'/);
  r.addRoute({ dst: '10.5.0.0/16', via: '10.0.2.2' });
  assert.throws(() => r.addRoute({ dst: '10.5.0.0/16', via: '10.0.2.2' }), /File exists/);
});
