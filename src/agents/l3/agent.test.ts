// The L3 agent against a real server (in-process bus) on emulated hosts: the scenario's
// router with its gateway on ext-net, an instance with a floating IP on compute1 (dvr) and
// one on network1 (dvr_snat, the router's SNAT host). What it generates on each host, the
// packets of scenario 4.1 (SNAT on network1), 4.2 (floating IP on compute1) and east-west
// routing in qrouter, restarts, and removal leaving nothing behind.

import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { demo, ok } from '../../api/testing.js';
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
import { httpRequest } from '../../dataplane/emulated/apps/metadata.js';
import { EG, startLab, type Lab } from './testing.js';
import { itemsOf } from '../../host/chunks.js';


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
    const arp = Object.fromEntries(itemsOf(q.neighbours).filter((n) => n.dev === qr).map((n) => [n.ip, `${n.lladdr} ${n.nud}`]));
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

  it("the metadata proxy: vm1's request to 169.254.169.254:80 is redirected to the router's proxy on 9697", async () => {
    const { response, traces } = await httpRequest(lab.world, { host: 'compute1', ns: 'vm1' }, { dst: '169.254.169.254', request: 'GET /latest/meta-data/instance-id' });
    const qrouter = routerNamespace(ids.router.id);
    assert.ok(traces[0].delivered.some((d) => d.ns === qrouter && d.to === 'tcp:9697'), renderTrace(traces[0]));
    // No metadata agent registered on the host: the proxy answers with what it would forward.
    const fwd = response as { upstream: string; headers: Record<string, string> };
    assert.equal(fwd.headers['X-Neutron-Router-ID'], ids.router.id);
    assert.equal(fwd.headers['X-Forwarded-For'], '192.168.1.11');
  });

  it('east-west: a second network on the router, routed by compute1 qrouter; its ARP entries arrive', async () => {
    const { call } = lab;
    ids.net2 = (await ok(call('POST', '/v2.0/networks', { network: { name: 'demo-net2', tenant_id: 'demo', 'provider:network_type': 'vxlan' } }), 201)).network;
    ids.subnet2 = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: ids.net2.id, ip_version: 4, cidr: '192.168.2.0/24', gateway_ip: '192.168.2.1', enable_dhcp: false } }, demo), 201)).subnet;
    await ok(call('PUT', `/v2.0/routers/${ids.router.id}/add_router_interface`, { subnet_id: ids.subnet2.id }, demo));
    await lab.settle();
    ids.vm2 = (await ok(call('POST', '/v2.0/ports', { port: { network_id: ids.net2.id, tenant_id: 'demo', name: 'vm2', device_owner: 'compute:nova', device_id: 'vm2', 'binding:host_id': 'compute1', fixed_ips: [{ subnet_id: ids.subnet2.id, ip_address: '192.168.2.11' }] } }), 201)).port;
    await lab.settle();
    await lab.boot(lab.nodes.compute1, 'vm2', ids.vm2, '192.168.2.1');
    // The ARP entries go out once vm2's port is up on compute1 (its OVS agent wired it).
    await lab.settle();
    const qr2 = (await ok(call('GET', `/v2.0/ports?device_id=${ids.router.id}&network_id=${ids.net2.id}&device_owner=${DEVICE_OWNER.routerInterfaceDistributed}`))).ports[0];
    ids.qr2 = qr2;
    for (const n of Object.values(lab.nodes)) {
      const q = n.composer.fragment('l3')!.namespaces[routerNamespace(ids.router.id)];
      const dev = routerInterfaceDevice(qr2.id);
      assert.deepEqual(q.links[dev].addresses, ['192.168.2.1/24'], n.name);
      assert.ok(itemsOf(q.neighbours).some((x) => x.dev === dev && x.ip === '192.168.2.11' && x.lladdr === ids.vm2.mac_address), `${n.name} knows vm2`);
    }
    const rec = lab.world.ping({ host: 'compute1', ns: 'vm1' }, '192.168.2.11');
    const routed = rec.steps.find((s) => s.kind === 'route' && s.ns?.startsWith('qrouter-') && s.before.ip?.dst === '192.168.2.11');
    assert.ok(routed, renderTrace(rec));
    assert.match(routed.action, new RegExp(`forward to ${routerInterfaceDevice(qr2.id)}`));
    const echo = rec.delivered.find((d) => d.ns === 'vm2' && d.to === 'icmp echo');
    assert.ok(echo, renderTrace(rec));
    assert.equal(echo.frame.ip!.src, '192.168.1.11', 'not NATed');
    assert.ok(rec.delivered.some((d) => d.ns === 'vm1' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0), renderTrace(rec));
  });

  it('ignores ARP casts for routers it does not run, and ARP casts it already knows', async () => {
    const agent = lab.nodes.compute1.l3;
    const before = agent.syncs;
    await lab.bus.transport().fanout('l3_agent', 'add_arp_entry', { router_id: 'not-a-router-here', arp_table: { ip_address: '10.9.9.9', mac_address: 'fa:16:3e:99:99:99', subnet_id: 'x' } });
    await lab.bus.transport().fanout('l3_agent', 'add_arp_entry', { router_id: ids.router.id, arp_table: { ip_address: '192.168.2.11', mac_address: ids.vm2.mac_address, subnet_id: ids.subnet2.id } });
    await lab.settle();
    assert.equal(agent.syncs, before);
  });

  it('a restarted agent reproduces the same state: no operation, no duplicate rule', async () => {
    for (const n of Object.values(lab.nodes)) {
      const fragment = n.composer.fragment('l3');
      const applied = n.composer.applied;
      await lab.restartL3(n);
      await lab.settle();
      assert.deepEqual(n.composer.fragment('l3'), fragment, n.name);
      assert.equal(n.composer.applied, applied, `${n.name}: nothing re-applied`);
      for (const ns of Object.values(n.composer.fragment('l3')!.namespaces))
        for (const [t, text] of Object.entries(ns.iptables)) {
          const rules = text!.split('\n').filter((l) => l.startsWith('-A '));
          assert.equal(new Set(rules).size, rules.length, `${n.name} ${ns.name} ${t}: duplicate rules`);
        }
    }
    assert.deepEqual(lab.nodes.compute1.l3.statusReports, [], 'the floating IP is already ACTIVE on the server');
  });

  it('a restarted agent takes its allocations back from the host, before stale state files', async () => {
    const n = lab.nodes.compute1;
    const fragment = n.composer.fragment('l3');
    const dir = n.l3['config'].state_path;
    assert.equal(readFileSync(join(dir, 'fip-linklocal-networks'), 'utf8'), `${ids.router.id},169.254.64.0/31\n`);
    assert.equal(readFileSync(join(dir, 'fip-priorities'), 'utf8'), '203.0.113.102,32768\n');
    writeFileSync(join(dir, 'fip-linklocal-networks'), `${ids.router.id},169.254.64.8/31\n`);
    writeFileSync(join(dir, 'fip-priorities'), '203.0.113.102,40000\n');
    await lab.restartL3(n);
    await lab.settle();
    assert.deepEqual(n.composer.fragment('l3'), fragment);
    assert.equal(readFileSync(join(dir, 'fip-linklocal-networks'), 'utf8'), `${ids.router.id},169.254.64.0/31\n`);
    rmSync(join(dir, 'fip-linklocal-networks'));
    rmSync(join(dir, 'fip-priorities'));
    await lab.restartL3(n);
    await lab.settle();
    assert.deepEqual(n.composer.fragment('l3'), fragment, 'without files too');
  });

  /** What the L3 agent leaves on a host, read back from the host itself. */
  const l3Traces = (name: string) => {
    const st = lab.world.host(name).readState();
    const ports = Object.keys(st.ovs.bridges['br-int']?.ports ?? {}).filter((p) => /^(qr|qg|sg|fg)-/.test(p));
    return { namespaces: l3Namespaces(st), ports, metadata: Object.keys(st.metadata) };
  };

  it('disassociating the floating IP removes the fip namespace, rfp/fpr, the rule and the NAT from compute1', async () => {
    await ok(lab.call('PUT', `/v2.0/floatingips/${ids.fip.id}`, { floatingip: { port_id: null } }, demo));
    await lab.settle();
    const s = lab.nodes.compute1.composer.fragment('l3')!;
    const q = s.namespaces[routerNamespace(ids.router.id)];
    assert.ok(!s.namespaces[fipNamespace(ids.ext.id)]);
    assert.ok(!q.links[routerToFipDevice(ids.router.id)]);
    assert.deepEqual(q.rules.filter((x) => x.table === 16), []);
    assert.deepEqual(q.routes.filter((x) => x.table === 16), []);
    assert.doesNotMatch(q.iptables.nat!, /203\.0\.113\.102|rfp-/);
    assert.deepEqual(l3Traces('compute1').namespaces, [routerNamespace(ids.router.id)]);
    assert.deepEqual(l3Traces('compute1').ports.filter((p) => p.startsWith('fg-')), []);
    const dir = lab.nodes.compute1.l3['config'].state_path;
    assert.equal(readFileSync(join(dir, 'fip-linklocal-networks'), 'utf8'), '', 'allocation released');
    assert.equal(readFileSync(join(dir, 'fip-priorities'), 'utf8'), '');
    const rec = lab.world.ping({ host: 'router' }, '203.0.113.102');
    assert.ok(!rec.delivered.some((d) => d.ns === 'vm1'), renderTrace(rec));
    // vm1 now leaves by the central SNAT (on network1), which this test's hosts do not join by tunnel.
    assert.equal((await ok(lab.call('GET', `/v2.0/floatingips/${ids.fip.id}`))).floatingip.status, 'DOWN');
  });

  it('removing an interface removes its qr- and ARP entries on every host', async () => {
    await ok(lab.call('PUT', `/v2.0/routers/${ids.router.id}/remove_router_interface`, { subnet_id: ids.subnet2.id }, demo));
    await lab.settle();
    const dev = routerInterfaceDevice(ids.qr2.id);
    for (const n of Object.values(lab.nodes)) {
      const q = n.composer.fragment('l3')!.namespaces[routerNamespace(ids.router.id)];
      assert.ok(!q.links[dev], n.name);
      assert.deepEqual(itemsOf(q.neighbours).filter((x) => x.dev === dev), [], n.name);
      assert.ok(!l3Traces(n.name).ports.includes(dev), n.name);
    }
  });

  it('clearing the gateway removes the snat namespace and the SNAT steering', async () => {
    await ok(lab.call('DELETE', `/v2.0/floatingips/${ids.fip.id}`, undefined, demo), 204);
    await ok(lab.call('PUT', `/v2.0/routers/${ids.router.id}`, { router: { external_gateway_info: {} } }, demo));
    await lab.settle();
    assert.deepEqual(l3Traces('network1').namespaces, [routerNamespace(ids.router.id)]);
    for (const n of Object.values(lab.nodes)) {
      const q = n.composer.fragment('l3')!.namespaces[routerNamespace(ids.router.id)];
      assert.deepEqual(q.rules, [], n.name);
      assert.deepEqual(q.routes, [], n.name);
      assert.ok(!q.sysctls['net.ipv4.conf.all.send_redirects'], n.name);
    }
  });

  it('deleting the router leaves nothing of it on any host', async () => {
    await ok(lab.call('PUT', `/v2.0/routers/${ids.router.id}/remove_router_interface`, { subnet_id: ids.subnet.id }, demo));
    await ok(lab.call('DELETE', `/v2.0/routers/${ids.router.id}`, undefined, demo), 204);
    await lab.settle();
    for (const n of Object.values(lab.nodes)) {
      assert.deepEqual(l3Traces(n.name), { namespaces: [], ports: [], metadata: [] }, n.name);
      assert.deepEqual(diff(lab.world.host(n.name).readState(), n.composer.desired()), [], n.name);
    }
  });
});
