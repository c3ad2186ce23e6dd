// Scenario 4.2: a floating IP handled entirely on the compute node (fip namespace with
// proxy ARP on fg-, rfp/fpr link, DNAT/SNAT and policy routing in qrouter, br-ex).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diff } from '../../host/diff.js';
import { renderTrace } from '../../trace/render.js';
import { buildTestbed, EXTERNAL, VM1 } from './testbed.js';

test('floating IP (scenario 4.2): the outside reaches VM1 by its floating IP and the reply leaves from it', () => {
  const { world, states } = buildTestbed({ floatingIp: true });
  assert.deepEqual(diff(world.host('compute1').readState(), states.compute1), []);
  const rec = world.ping({ host: 'router' }, EXTERNAL.floatingIp);
  // fg- answers ARP for the floating IP (proxy ARP: it is routed via fpr-, never an address of fip).
  const arp = rec.steps.find((s) => s.kind === 'arp' && s.ns?.startsWith('fip-'));
  assert.ok(arp, renderTrace(rec));
  assert.match(arp.rule!, /proxy_arp on fg-f9a8b7c6-5d: 203.0.113.102 routed via fpr-5a3c2f1e-7/);
  assert.deepEqual([arp.after!.arp!.spa, arp.after!.arp!.sha], [EXTERNAL.floatingIp, EXTERNAL.fgMac]);
  // qrouter DNATs on rfp- to the fixed IP.
  const dnat = rec.steps.find((s) => s.kind === 'netfilter' && s.ns?.startsWith('qrouter-') && s.table === 'PREROUTING' && s.after);
  assert.ok(dnat, renderTrace(rec));
  assert.equal(dnat.dev, 'rfp-5a3c2f1e-7');
  assert.match(dnat.rule!, /-d 203.0.113.102\/32 -i rfp-5a3c2f1e-7 -j DNAT --to-destination 192.168.1.11/);
  const echo = rec.delivered.find((d) => d.ns === 'vm1' && d.to === 'icmp echo');
  assert.ok(echo, renderTrace(rec));
  assert.deepEqual([echo.frame.ip!.src, echo.frame.ip!.dst, echo.frame.ip!.ttl], [EXTERNAL.gateway, VM1.ip, 62]);
  // The reply: `from 192.168.1.11 lookup 16` sends it to fip over rfp-, SNAT makes it F1, fg- sends it out.
  const steer = rec.steps.find((s) => s.kind === 'route' && s.ns?.startsWith('qrouter-') && s.before.ip?.src === VM1.ip && s.after);
  assert.equal(steer!.table, '16');
  assert.match(steer!.rule!, /^32768: from 192.168.1.11 lookup 16 \| default via 169.254.64.1 dev rfp-5a3c2f1e-7 table 16/);
  const snat = rec.steps.find((s) => s.kind === 'netfilter' && s.ns?.startsWith('qrouter-') && s.table === 'POSTROUTING' && s.after);
  assert.match(snat!.action, /src 192.168.1.11->203.0.113.102/);
  // The external gateway is on-link for fip's main table (rule 32766 comes before fip's per-router rule).
  const fipRoute = rec.steps.find((s) => s.kind === 'route' && s.ns?.startsWith('fip-') && s.before.ip?.src === EXTERNAL.floatingIp);
  assert.match(fipRoute!.action, /forward to fg-f9a8b7c6-5d/);
  const back = rec.delivered.find((d) => d.host === 'router' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0);
  assert.ok(back, renderTrace(rec));
  assert.deepEqual([back.frame.ip!.src, back.frame.eth.src, back.frame.vlan], [EXTERNAL.floatingIp, EXTERNAL.fgMac, undefined]);
  // On the way out br-int tagged it with the external network's local VLAN and br-ex stripped it.
  const brEx = rec.steps.find((s) => s.bridge === 'br-ex' && s.before.ip?.src === EXTERNAL.floatingIp);
  assert.equal(brEx!.before.vlan, EXTERNAL.lvid);
  assert.equal(brEx!.after?.vlan, undefined);
});

test('floating IP: VM1 starting a connection to the outside leaves SNATed to its floating IP', () => {
  const { world } = buildTestbed({ floatingIp: true });
  // Beyond the external gateway: fip's per-router table (rule `iif fpr- lookup T`) sends it to 203.0.113.1.
  const far = world.send({ host: 'compute1', ns: 'vm1' }, { proto: 'udp', dst: '198.51.100.7', dport: 53, sport: 5353, data: 'query' });
  const fipRoute = far.steps.find((s) => s.kind === 'route' && s.ns?.startsWith('fip-'));
  assert.match(fipRoute!.rule!, /^2852012033: from all iif fpr-5a3c2f1e-7 lookup 2852012033 \| default via 203.0.113.1 dev fg-f9a8b7c6-5d table 2852012033/, renderTrace(far));
  const atRouter = far.dropped.find((d) => d.host === 'router');
  assert.ok(atRouter, renderTrace(far));
  assert.deepEqual([atRouter.frame.ip!.src, atRouter.frame.eth.src], [EXTERNAL.floatingIp, EXTERNAL.fgMac]);
  assert.match(atRouter.reason, /ip_forward=0/);
  // To the gateway itself (no DNS there): the port unreachable comes back RELATED and un-NATed to VM1.
  const rec = world.send({ host: 'compute1', ns: 'vm1' }, { proto: 'udp', dst: EXTERNAL.gateway, dport: 53, sport: 5353, data: 'query' });
  const sent = rec.steps.find((s) => s.kind === 'wire' && s.host === 'compute1' && s.before.l4?.kind === 'udp');
  assert.equal(sent!.before.ip!.src, EXTERNAL.floatingIp);
  const icmp = rec.delivered.find((d) => d.ns === 'vm1' && d.frame.l4?.kind === 'icmp');
  assert.ok(icmp, renderTrace(rec));
  assert.equal(icmp.frame.ip!.dst, VM1.ip);
  assert.equal((icmp.frame.l4 as { type: number }).type, 3);
  assert.equal((icmp.frame.l4 as { quoted?: { ip?: { src: string } } }).quoted?.ip?.src, VM1.ip);
});
