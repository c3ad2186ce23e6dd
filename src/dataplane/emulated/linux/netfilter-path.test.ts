// Netfilter at the right places of the Linux path: the hybrid firewall on a Linux bridge
// (bridge-nf-call-iptables + physdev), SNAT/DNAT with conntrack un-NATing replies, and the
// metadata REDIRECT to a local TCP proxy.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { World } from '../world.js';
import { renderTrace } from '../../../trace/render.js';

const HYBRID_FW = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:neutron-openvswi-FORWARD - [0:0]
:neutron-openvswi-sg-chain - [0:0]
:neutron-openvswi-i1 - [0:0]
:neutron-openvswi-o1 - [0:0]
:neutron-openvswi-sg-fallback - [0:0]
-A FORWARD -j neutron-openvswi-FORWARD
-A neutron-openvswi-FORWARD -m physdev --physdev-out tap1 --physdev-is-bridged -m comment --comment "Direct traffic from the VM interface to the security group chain." -j neutron-openvswi-sg-chain
-A neutron-openvswi-FORWARD -m physdev --physdev-in tap1 --physdev-is-bridged -m comment --comment "Direct traffic from the VM interface to the security group chain." -j neutron-openvswi-sg-chain
-A neutron-openvswi-sg-chain -m physdev --physdev-out tap1 --physdev-is-bridged -j neutron-openvswi-i1
-A neutron-openvswi-sg-chain -m physdev --physdev-in tap1 --physdev-is-bridged -j neutron-openvswi-o1
-A neutron-openvswi-sg-chain -j ACCEPT
-A neutron-openvswi-i1 -m state --state RELATED,ESTABLISHED -m comment --comment "Direct packets associated with a known session to the RETURN chain." -j RETURN
-A neutron-openvswi-i1 -m state --state INVALID -j DROP
-A neutron-openvswi-i1 -m comment --comment "Send unmatched traffic to the fallback chain." -j neutron-openvswi-sg-fallback
-A neutron-openvswi-o1 -s 192.168.1.11/32 -m mac --mac-source FA:16:3E:00:00:11 -j RETURN
-A neutron-openvswi-o1 -j DROP
-A neutron-openvswi-sg-fallback -m comment --comment "Default drop rule for unmatched traffic." -j DROP
COMMIT
`;

/** vm1 (192.168.1.11) - tap1 - qbr1 - qvb1 ~ peer namespace (192.168.1.20), the hybrid firewall on qbr1. */
function hybridWorld() {
  const w = new World();
  const h = w.addHost('compute1');
  h.addTap('tap1', { up: true });
  h.addInstance('vm1', { tap: 'tap1', mac: 'fa:16:3e:00:00:11', ip: '192.168.1.11/24' });
  h.addBridge('qbr1', { up: true });
  h.addNetns('peer');
  h.addVeth('qvb1', 'eth0', { peerNs: 'peer', up: true, peerMac: 'fa:16:3e:00:00:20' });
  h.setMaster('tap1', 'qbr1');
  h.setMaster('qvb1', 'qbr1');
  h.ns('peer').addAddr('eth0', '192.168.1.20/24');
  h.root.setSysctl('net.bridge.bridge-nf-call-iptables', '1');
  h.root.iptablesRestore(HYBRID_FW);
  return { w, h };
}

test('hybrid firewall on a Linux bridge: a new inbound packet is dropped via physdev; the reply to an outbound one is ESTABLISHED', () => {
  const { w } = hybridWorld();
  const inbound = w.ping({ host: 'compute1', ns: 'peer' }, '192.168.1.11');
  assert.ok(!inbound.delivered.some((d) => d.ns === 'vm1' && d.to === 'icmp echo'), renderTrace(inbound));
  const drop = inbound.dropped.find((d) => d.dev === 'tap1' && /FORWARD/.test(d.reason));
  assert.ok(drop, renderTrace(inbound));
  assert.match(drop.reason, /sg-fallback -m comment --comment "Default drop rule for unmatched traffic." -j DROP/);
  const nfStep = inbound.steps.find((s) => s.kind === 'netfilter' && s.action.startsWith('FORWARD (bridged): DROP'));
  assert.ok(nfStep, renderTrace(inbound));
  assert.equal(nfStep.before.ip!.src, '192.168.1.20');

  const outbound = w.ping({ host: 'compute1', ns: 'vm1' }, '192.168.1.20');
  assert.ok(outbound.delivered.some((d) => d.ns === 'peer' && d.to === 'icmp echo'), renderTrace(outbound));
  const reply = outbound.delivered.find((d) => d.ns === 'vm1' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0);
  assert.ok(reply, renderTrace(outbound));
  const allowed = outbound.steps.find((s) => s.kind === 'netfilter' && s.dev === 'tap1' && s.before.ip?.src === '192.168.1.20' && s.action.startsWith('FORWARD'));
  assert.match(allowed!.rule!, /-A neutron-openvswi-i1 -m state --state RELATED,ESTABLISHED .* -j RETURN|-A neutron-openvswi-sg-chain -j ACCEPT/);
  assert.ok(
    (allowed!.detail as Array<{ rule: string }>).some((s) => /--state RELATED,ESTABLISHED/.test(s.rule)),
    'the state rule let the reply in',
  );
});

test('hybrid firewall: spoofed source MAC from the instance is dropped by the egress chain', () => {
  const { w, h } = hybridWorld();
  h.ns('vm1').device('eth0').mac = 'fa:16:3e:99:99:99';
  const rec = w.ping({ host: 'compute1', ns: 'vm1' }, '192.168.1.20');
  assert.ok(rec.dropped.some((d) => /-A neutron-openvswi-o1 -j DROP/.test(d.reason)), renderTrace(rec));
  assert.ok(!rec.delivered.some((d) => d.ns === 'peer' && d.to === 'icmp echo'));
});

/** inside (192.168.1.11, .12) - qr | router | qg (203.0.113.101, .102) - outside (203.0.113.1). */
function natWorld() {
  const w = new World();
  const h = w.addHost('net1');
  for (const n of ['inside', 'router', 'outside']) h.addNetns(n);
  h.addVeth('eth0', 'qr', { ns: 'inside', peerNs: 'router', up: true });
  h.addVeth('eth0', 'qg', { ns: 'outside', peerNs: 'router', up: true });
  const r = h.ns('router');
  r.setSysctl('net.ipv4.ip_forward', '1');
  r.addAddr('qr', '192.168.1.1/24');
  r.addAddr('qg', '203.0.113.101/24');
  r.addAddr('qg', '203.0.113.102/32');
  r.addRoute({ dst: 'default', via: '203.0.113.1' });
  const inside = h.ns('inside');
  inside.addAddr('eth0', '192.168.1.11/24');
  inside.addAddr('eth0', '192.168.1.12/24');
  inside.addRoute({ dst: 'default', via: '192.168.1.1' });
  h.ns('outside').addAddr('eth0', '203.0.113.1/24');
  r.iptablesRestore(`*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 203.0.113.102/32 -i qg -j DNAT --to-destination 192.168.1.12
-A POSTROUTING -s 192.168.1.12/32 -o qg -j SNAT --to-source 203.0.113.102
-A POSTROUTING -s 192.168.1.0/24 -o qg -j SNAT --to-source 203.0.113.101
COMMIT
`);
  return { w, h };
}

test('SNAT in a namespace: the outside sees the router address; conntrack un-NATs the reply', () => {
  const { w } = natWorld();
  const rec = w.ping({ host: 'net1', ns: 'inside' }, '203.0.113.1', { src: '192.168.1.11' });
  const out = rec.delivered.find((d) => d.ns === 'outside' && d.to === 'icmp echo');
  assert.ok(out, renderTrace(rec));
  assert.equal(out.frame.ip!.src, '203.0.113.101');
  const snat = rec.steps.find((s) => s.kind === 'netfilter' && s.table === 'POSTROUTING' && s.after);
  assert.match(snat!.action, /src 192.168.1.11->203.0.113.101/);
  assert.match(snat!.rule!, /-A POSTROUTING -s 192.168.1.0\/24 -o qg -j SNAT --to-source 203.0.113.101/);
  const back = rec.delivered.find((d) => d.ns === 'inside' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0);
  assert.ok(back, renderTrace(rec));
  assert.equal(back.frame.ip!.dst, '192.168.1.11');
  assert.equal(back.frame.ip!.src, '203.0.113.1');
  const unnat = rec.steps.find((s) => s.kind === 'netfilter' && s.ns === 'router' && s.table === 'PREROUTING' && s.after);
  assert.match(unnat!.action, /dst 203.0.113.101->192.168.1.11/);
});

test('DNAT in a namespace: a floating address reaches the fixed one; the reply leaves from the floating address', () => {
  const { w } = natWorld();
  const rec = w.ping({ host: 'net1', ns: 'outside' }, '203.0.113.102');
  const at = rec.delivered.find((d) => d.ns === 'inside' && d.to === 'icmp echo');
  assert.ok(at, renderTrace(rec));
  assert.equal(at.frame.ip!.dst, '192.168.1.12');
  assert.equal(at.frame.ip!.src, '203.0.113.1');
  const back = rec.delivered.find((d) => d.ns === 'outside' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0);
  assert.ok(back, renderTrace(rec));
  assert.equal(back.frame.ip!.src, '203.0.113.102');
  // UDP the same way, to a socket.
  const got: string[] = [];
  w.host('net1').ns('inside').udp.set(7000, (m) => got.push(`${m.src}->${m.dst}:${m.dport}`));
  w.send({ host: 'net1', ns: 'outside' }, { proto: 'udp', dst: '203.0.113.102', dport: 7000 });
  assert.deepEqual(got, ['203.0.113.1->192.168.1.12:7000']);
});

test('metadata path: REDIRECT of 169.254.169.254:80 to a proxy on 9697; the reply comes from 169.254.169.254:80', () => {
  const w = new World();
  const h = w.addHost('compute1');
  h.addNetns('qrouter-r1');
  h.addTap('tap1', { up: true });
  h.addInstance('vm1', { tap: 'tap1', mac: 'fa:16:3e:00:00:11', ip: '192.168.1.11/24', gateway: '192.168.1.1' });
  // The tap's other side goes straight into the router namespace for this test.
  h.addVeth('qr-1', 'qr-peer', { ns: 'qrouter-r1', up: true });
  h.addBridge('br', { up: true });
  h.setMaster('tap1', 'br');
  h.setMaster('qr-peer', 'br');
  const r = h.ns('qrouter-r1');
  r.addAddr('qr-1', '192.168.1.1/24');
  r.setSysctl('net.ipv4.ip_forward', '1');
  r.iptablesRestore(`*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 9697
COMMIT
`);
  const seen: string[] = [];
  r.tcp.set(9697, (m) => {
    seen.push(`${m.src}:${m.sport} -> ${m.dst}:${m.dport} ${String(m.data)}`);
    return 'HTTP/1.1 200 OK\r\n\r\ninstance-id: i-1';
  });
  const rec = w.send({ host: 'compute1', ns: 'vm1' }, { proto: 'tcp', dst: '169.254.169.254', dport: 80, sport: 50000, data: 'GET /latest/meta-data/instance-id HTTP/1.1' });
  assert.deepEqual(seen, ['192.168.1.11:50000 -> 192.168.1.1:9697 GET /latest/meta-data/instance-id HTTP/1.1'], renderTrace(rec));
  const response = rec.delivered.find((d) => d.ns === 'vm1' && d.frame.data !== undefined);
  assert.ok(response, renderTrace(rec));
  assert.equal(response.frame.ip!.src, '169.254.169.254');
  assert.equal(response.frame.l4?.kind === 'tcp' && response.frame.l4.sport, 80);
  assert.match(String(response.frame.data), /instance-id: i-1/);
});
