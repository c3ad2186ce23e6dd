// The L3 agent against a real server (in-process bus) on emulated hosts: the scenario's
// router with its gateway on ext-net, an instance with a floating IP on compute1 (dvr) and
// one on network1 (dvr_snat, the router's SNAT host). What it generates on each host, the
// packets of scenario 4.1 (SNAT on network1), 4.2 (floating IP on compute1) and east-west
// routing in qrouter, restarts, and removal leaving nothing behind.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { demo } from '../../api/testing.js';
import { DEVICE_OWNER } from '../../common/constants.js';
import { diff } from '../../host/diff.js';
import {
  fipGatewayDevice,
  fipNamespace,
  fipToRouterDevice,
  routerGatewayDevice,
  routerInterfaceDevice,
  routerNamespace,
  routerToFipDevice,
  snatDevice,
  snatNamespace,
} from '../../host/names.js';
import type { HostState } from '../../host/state.js';
import { renderTrace } from '../../trace/render.js';
import { EG, startLab, type Lab } from './testing.js';

const ok = async (p: Promise<{ status: number; body: any }>, status = 200) => {
  const r = await p;
  assert.equal(r.status, status, JSON.stringify(r.body));
  return r.body;
};

/** Namespaces of a state whose names start with one of the L3 prefixes. */
const l3Namespaces = (s: HostState) => Object.keys(s.namespaces).filter((n) => /^(qrouter|snat|fip)-/.test(n)).sort();

describe('L3 agent on emulated hosts with a real server', () => {
  let lab: Lab;
  const ids: Record<string, any> = {};

  before(async () => {
    lab = await startLab();
    const { call } = lab;
    ids.ext = (await ok(call('POST', '/v2.0/networks', { network: { name: 'ext-net', 'router:external': true, 'provider:physical_network': 'external', 'provider:network_type': 'flat' } }), 201)).network;
    ids.extSubnet = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: ids.ext.id, ip_version: 4, cidr: '203.0.113.0/24', allocation_pools: [{ start: '203.0.113.101', end: '203.0.113.200' }], enable_dhcp: false, gateway_ip: EG.ip } }), 201)).subnet;
    for (const n of Object.values(lab.nodes)) n.ovs.externalNetwork = ids.ext.id;
    ids.net = (await ok(call('POST', '/v2.0/networks', { network: { name: 'demo-net', tenant_id: 'demo', 'provider:network_type': 'vxlan' } }), 201)).network;
    ids.subnet = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: ids.net.id, ip_version: 4, cidr: '192.168.1.0/24', gateway_ip: '192.168.1.1', enable_dhcp: false } }, demo), 201)).subnet;
    ids.router = (await ok(call('POST', '/v2.0/routers', { router: { name: 'demo-router' } }, demo), 201)).router;
    await ok(call('PUT', `/v2.0/routers/${ids.router.id}/add_router_interface`, { subnet_id: ids.subnet.id }, demo));
    await ok(call('PUT', `/v2.0/routers/${ids.router.id}`, { router: { external_gateway_info: { network_id: ids.ext.id } } }, demo));
    const port = (host: string, ip: string, name: string) =>
      ok(call('POST', '/v2.0/ports', { port: { network_id: ids.net.id, tenant_id: 'demo', name, device_owner: 'compute:nova', device_id: name, 'binding:host_id': host, fixed_ips: [{ subnet_id: ids.subnet.id, ip_address: ip }] } }), 201).then((b) => b.port);
    ids.vm1 = await port('compute1', '192.168.1.11', 'vm1');
    ids.vm3 = await port('network1', '192.168.1.13', 'vm3');
    await lab.settle();
    await lab.boot(lab.nodes.compute1, 'vm1', ids.vm1, '192.168.1.1');
    await lab.boot(lab.nodes.network1, 'vm3', ids.vm3, '192.168.1.1');
    ids.fip = (await ok(call('POST', '/v2.0/floatingips', { floatingip: { floating_network_id: ids.ext.id, port_id: ids.vm1.id } }, demo), 201)).floatingip;
    await lab.settle();
    const ports = (await ok(call('GET', `/v2.0/ports?device_id=${ids.router.id}`))).ports;
    ids.qr = ports.find((p: any) => p.device_owner === DEVICE_OWNER.routerInterfaceDistributed);
    ids.qg = ports.find((p: any) => p.device_owner === DEVICE_OWNER.routerGateway);
    ids.sg = ports.find((p: any) => p.device_owner === DEVICE_OWNER.routerSnat);
    ids.fg = (await ok(call('GET', `/v2.0/ports?device_owner=${DEVICE_OWNER.agentGateway}`))).ports[0];
  });
  after(async () => {
    await lab?.close();
  });

  it('registers as the L3 agent of each host with its mode', async () => {
    const list = (await ok(lab.call('GET', '/v2.0/agents?agent_type=L3 agent'))).agents;
    const modes = Object.fromEntries(list.map((a: any) => [a.host, a.configurations.agent_mode]));
    assert.deepEqual(modes, { network1: 'dvr_snat', compute1: 'dvr' });
    assert.equal(list[0].binary, 'neutron-l3-agent');
    assert.equal(list[0].topic, 'l3_agent');
  });

  it('compute1 (dvr): qrouter with qr-, ARP, SNAT steering, the fip namespace and NAT', () => {
    const s = lab.nodes.compute1.composer.fragment('l3')!;
    const r = ids.router.id;
    const qrouter = routerNamespace(r);
    const fip = fipNamespace(ids.ext.id);
    assert.deepEqual(l3Namespaces(s), [fip, qrouter].sort());
    const q = s.namespaces[qrouter];
    const qr = routerInterfaceDevice(ids.qr.id);
    assert.deepEqual(q.links[qr], { kind: 'ovs-internal', name: qr, mac: ids.qr.mac_address, mtu: 1450, up: true, addresses: ['192.168.1.1/24'] });
    assert.deepEqual(s.ovs.bridges['br-int'].ports[qr].external_ids, { 'iface-id': ids.qr.id, 'iface-status': 'active', 'attached-mac': ids.qr.mac_address });
    assert.equal(q.sysctls['net.ipv4.ip_forward'], '1');
    // Permanent ARP for the subnet's ports (both instances and the SNAT port), never for qr- itself.
    const arp = Object.fromEntries(q.neighbours.filter((n) => n.dev === qr).map((n) => [n.ip, `${n.lladdr} ${n.nud}`]));
    assert.deepEqual(arp, {
      '192.168.1.11': `${ids.vm1.mac_address} permanent`,
      '192.168.1.13': `${ids.vm3.mac_address} permanent`,
      [ids.sg.fixed_ips[0].ip_address]: `${ids.sg.mac_address} permanent`,
    });
    // SNAT steering: table and priority = int(192.168.1.1) = 3232235777.
    assert.deepEqual(q.rules.filter((x) => x.table === 3232235777), [{ priority: 3232235777, from: '192.168.1.0/24', table: 3232235777 }]);
    assert.deepEqual(q.routes.filter((x) => x.table === 3232235777), [{ dst: 'default', via: ids.sg.fixed_ips[0].ip_address, dev: qr, table: 3232235777, type: 'unicast' }]);
    // Floating IP: rfp/fpr with the first link-local /31, table 16, the rule from the fixed IP.
    const rfp = routerToFipDevice(r);
    const fpr = fipToRouterDevice(r);
    assert.deepEqual(q.links[rfp].addresses, ['169.254.64.0/31']);
    assert.deepEqual(s.namespaces[fip].links[fpr].addresses, ['169.254.64.1/31']);
    assert.deepEqual(q.routes.filter((x) => x.table === 16), [{ dst: 'default', via: '169.254.64.1', dev: rfp, table: 16, type: 'unicast' }]);
    assert.deepEqual(q.rules.filter((x) => x.table === 16), [{ priority: 32768, from: '192.168.1.11', table: 16 }]);
    const nat = q.iptables.nat!;
    assert.match(nat, /^-A neutron-l3-agent-PREROUTING -d 203\.0\.113\.102\/32 -i rfp-\S+ -j DNAT --to-destination 192\.168\.1\.11$/m);
    assert.match(nat, /^-A neutron-l3-agent-float-snat -s 192\.168\.1\.11\/32 -j SNAT --to-source 203\.0\.113\.102 --random-fully$/m);
    assert.match(nat, new RegExp(`^-A neutron-l3-agent-POSTROUTING ! -o ${rfp} -m conntrack ! --ctstate DNAT -j ACCEPT$`, 'm'));
    assert.match(nat, /^-A neutron-l3-agent-snat -j neutron-l3-agent-float-snat$/m);
    assert.match(nat, /^-A neutron-l3-agent-PREROUTING -d 169\.254\.169\.254\/32 -i qr-\+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 9697$/m);
    // The fip namespace: fg- with compute1's own external address, proxy ARP, the route to F1, the router's table.
    const f = s.namespaces[fip];
    const fg = fipGatewayDevice(ids.fg.id);
    assert.deepEqual(f.links[fg].addresses, ['203.0.113.103/24']);
    assert.equal(ids.fg.fixed_ips[0].ip_address, '203.0.113.103');
    assert.equal(f.sysctls[`net.ipv4.conf.${fg}.proxy_arp`], '1');
    assert.deepEqual(f.routes.map((x) => `${x.dst} via ${x.via} dev ${x.dev} table ${x.table}`).sort(), [
      `203.0.113.102/32 via 169.254.64.0 dev ${fpr} table 254`,
      `default via 203.0.113.1 dev ${fg} table 2852012033`,
    ]);
    assert.deepEqual(f.rules, [{ priority: 2852012033, iif: fpr, table: 2852012033 }]);
    assert.match(f.iptables.raw!, /^-A neutron-l3-agent-PREROUTING -j CT --notrack$/m);
    // The metadata proxy of the router.
    assert.deepEqual(s.metadata[r], { id: r, namespace: qrouter, listen_ip: '0.0.0.0', listen_port: 9697, upstream: `${lab.nodes.compute1.l3['config'].state_path}/metadata_proxy`, router_id: r });
    // No central SNAT on a dvr host.
    assert.ok(!s.namespaces[snatNamespace(r)]);
  });

  it('network1 (dvr_snat): also the snat namespace with sg- and qg- and SNAT to the gateway address', () => {
    const s = lab.nodes.network1.composer.fragment('l3')!;
    const r = ids.router.id;
    assert.deepEqual(l3Namespaces(s), [routerNamespace(r), snatNamespace(r)].sort(), 'no floating IP on network1: no fip namespace');
    const sn = s.namespaces[snatNamespace(r)];
    const sg = snatDevice(ids.sg.id);
    const qg = routerGatewayDevice(ids.qg.id);
    assert.deepEqual(sn.links[sg].addresses, [`${ids.sg.fixed_ips[0].ip_address}/24`]);
    assert.deepEqual(sn.links[qg].addresses, ['203.0.113.101/24']);
    assert.equal(sn.links[qg].mac, ids.qg.mac_address);
    assert.deepEqual(sn.routes, [{ dst: 'default', via: EG.ip, dev: qg, table: 254, type: 'unicast' }]);
    assert.match(sn.iptables.nat!, new RegExp(`^-A neutron-l3-agent-snat -o ${qg} -j SNAT --to-source 203\\.0\\.113\\.101 --random-fully$`, 'm'));
    assert.match(sn.iptables.nat!, new RegExp(`^-A neutron-l3-agent-POSTROUTING ! -o ${qg} -m conntrack ! --ctstate DNAT -j ACCEPT$`, 'm'));
    assert.match(sn.iptables.mangle!, new RegExp(`^-A neutron-l3-agent-mark -i ${qg} -j MARK --set-xmark 0x2/0xffff$`, 'm'));
    assert.equal(sn.sysctls['net.netfilter.nf_conntrack_tcp_loose'], '0');
    // Its qrouter steers to the local sg-, like any other host's.
    const q = s.namespaces[routerNamespace(r)];
    assert.ok(q.routes.some((x) => x.table === 3232235777 && x.via === ids.sg.fixed_ips[0].ip_address));
  });

  it('the hosts match what was generated: every rule accepted, a second diff empty', () => {
    for (const n of Object.values(lab.nodes)) {
      const d = diff(lab.world.host(n.name).readState(), n.composer.desired());
      assert.deepEqual(d, [], `${n.name}: ${JSON.stringify(d).slice(0, 500)}`);
    }
  });

  it('reports the floating IP ACTIVE', async () => {
    const f = (await ok(lab.call('GET', `/v2.0/floatingips/${ids.fip.id}`))).floatingip;
    assert.equal(f.status, 'ACTIVE');
    assert.deepEqual(lab.nodes.compute1.l3.statusReports, [{ router_id: ids.router.id, fip_statuses: { [ids.fip.id]: 'ACTIVE' } }]);
  });

  it('scenario 4.2: the outside reaches vm1 by its floating IP and the reply comes back from it', () => {
    const rec = lab.world.ping({ host: 'router' }, '203.0.113.102');
    const arp = rec.steps.find((s) => s.kind === 'arp' && s.ns?.startsWith('fip-'));
    assert.ok(arp, renderTrace(rec));
    const dnat = rec.steps.find((s) => s.kind === 'netfilter' && s.ns?.startsWith('qrouter-') && s.table === 'PREROUTING' && s.after);
    assert.ok(dnat, renderTrace(rec));
    assert.match(dnat.rule!, /-d 203.0.113.102\/32 -i rfp-\S+ -j DNAT --to-destination 192.168.1.11/);
    const echo = rec.delivered.find((d) => d.ns === 'vm1' && d.to === 'icmp echo');
    assert.ok(echo, renderTrace(rec));
    assert.equal(echo.frame.ip!.src, EG.ip);
    const back = rec.delivered.find((d) => d.host === 'router' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0);
    assert.ok(back, renderTrace(rec));
    assert.deepEqual([back.frame.ip!.src, back.frame.eth.src], ['203.0.113.102', ids.fg.mac_address]);
    // network1 hears the ARP broadcast on the external segment, and nothing else.
    assert.deepEqual(rec.steps.filter((s) => s.host === 'network1' && s.before.ip), [], 'network1 carries no packet of the floating-IP flow');
  });

  it('scenario 4.1: an instance without a floating IP leaves through the snat namespace as 203.0.113.101', () => {
    const rec = lab.world.ping({ host: 'network1', ns: 'vm3' }, EG.ip);
    const steer = rec.steps.find((s) => s.kind === 'route' && s.ns?.startsWith('qrouter-') && s.after);
    assert.ok(steer, renderTrace(rec));
    assert.match(steer.rule!, /^3232235777: from 192.168.1.0\/24 lookup 3232235777/);
    const snat = rec.steps.find((s) => s.kind === 'netfilter' && s.ns?.startsWith('snat-') && s.table === 'POSTROUTING' && s.after);
    assert.ok(snat, renderTrace(rec));
    assert.match(snat.action, /src 192.168.1.13->203.0.113.101/);
    const atRouter = rec.delivered.find((d) => d.host === 'router' && d.to === 'icmp echo');
    assert.ok(atRouter, renderTrace(rec));
    assert.deepEqual([atRouter.frame.ip!.src, atRouter.frame.eth.src], ['203.0.113.101', ids.qg.mac_address]);
    const reply = rec.delivered.find((d) => d.ns === 'vm3' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0);
    assert.ok(reply, renderTrace(rec));
    assert.equal(reply.frame.ip!.dst, '192.168.1.13');
  });
});
