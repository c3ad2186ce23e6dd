// The scenario's walk-through (spec section 6, steps 1-14 without the pings) against the
// server, with fake agents for network1, compute1 and compute2 speaking the real RPC.
// Run over the in-process bus and over RabbitMQ (dvr.inproc.test.ts, dvr.amqp.test.ts).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { admin, client, demo, startTestServer, type TestServer, ok } from '../api/testing.js';
import type { FaultInjectable, Transport } from '../rpc/transport.js';
import { DEVICE_OWNER } from '../common/constants.js';
import { FakeAgent, scenarioAgents } from './fake_agents.js';
import { AGENT_TYPES } from './agents.js';
import { DVR_MACS_GATHER_MS } from './rpc/notifier.js';
import { HostViews } from './rpc/views.js';

/** Wait for a condition that asynchronous casts make true. */
export async function eventually(cond: () => boolean | Promise<boolean>, what: string, ms = 5000) {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function dvrScenarioSuite(name: string, makeTransports: () => Promise<{ server: Transport; agents: Transport; close(): Promise<void> }>, opts: { skip?: string } = {}) {
  describe(`DVR scenario with fake agents over ${name}`, { skip: opts.skip }, () => {
    let srv: TestServer;
    let call: ReturnType<typeof client>;
    let agents: Awaited<ReturnType<typeof scenarioAgents>>;
    let transports: Awaited<ReturnType<typeof makeTransports>>;
    const ids: Record<string, any> = {};

    before(async () => {
      transports = await makeTransports();
      srv = await startTestServer('sqlite', { transport: transports.server });
      call = client(srv.url);
      agents = await scenarioAgents(transports.agents);
    });
    after(async () => {
      await agents?.close();
      await srv?.destroy();
      await transports?.close();
    });


    it('step 1: agent-list shows the ten agents alive and up', async () => {
      const list = (await ok(call('GET', '/v2.0/agents'))).agents;
      assert.equal(list.length, 10);
      for (const a of list) assert.ok(a.alive && a.admin_state_up, `${a.agent_type} on ${a.host}`);
      const byHost = (h: string) => list.filter((a: any) => a.host === h).map((a: any) => a.agent_type).sort();
      assert.deepEqual(byHost('network1'), ['DHCP agent', 'L3 agent', 'Metadata agent', 'Open vSwitch agent']);
      assert.deepEqual(byHost('compute1'), ['L3 agent', 'Metadata agent', 'Open vSwitch agent']);
      const l3 = list.find((a: any) => a.host === 'network1' && a.agent_type === 'L3 agent');
      assert.equal(l3.configurations.agent_mode, 'dvr_snat');
      assert.equal(l3.binary, 'neutron-l3-agent');
      assert.match(l3.heartbeat_timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      err(await call('GET', '/v2.0/agents', undefined, demo), 403);
    });

    it('gives every OVS agent its own DVR MAC and tells all of them the list', async () => {
      const macs = await Promise.all(['network1', 'compute1', 'compute2'].map((h) => agents.network1.ovs.call('get_dvr_mac_address_by_host', { host: h })));
      assert.equal(new Set(macs.map((m) => m.mac_address)).size, 3);
      for (const m of macs) assert.match(m.mac_address, /^fa:16:3f(:[0-9a-f]{2}){3}$/);
      await eventually(() => agents.compute2.ovs.got('dvr_mac_address_update', (a) => a.dvr_macs.length === 3).length > 0, 'a fanout with all three MACs');
      const again = await agents.compute1.ovs.call('get_dvr_mac_address_by_host', { host: 'compute1' });
      assert.equal(again.mac_address, macs[1].mac_address, 'stable');
    });

    it('steps 2-5: networks and subnets; demo-subnet goes to the DHCP agent on network1', async () => {
      ids.ext = (await ok(call('POST', '/v2.0/networks', { network: { name: 'ext-net', 'router:external': true, 'provider:physical_network': 'external', 'provider:network_type': 'flat' } }), 201)).network;
      ids.extSubnet = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: ids.ext.id, ip_version: 4, cidr: '203.0.113.0/24', allocation_pools: [{ start: '203.0.113.101', end: '203.0.113.200' }], enable_dhcp: false, gateway_ip: '203.0.113.1' } }), 201)).subnet;
      ids.net = (await ok(call('POST', '/v2.0/networks', { network: { name: 'demo-net', tenant_id: 'demo', 'provider:network_type': 'vxlan' } }), 201)).network;
      ids.subnet = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: ids.net.id, ip_version: 4, cidr: '192.168.1.0/24', gateway_ip: '192.168.1.1', name: 'demo-subnet' } }, demo), 201)).subnet;
      const dhcp = (await ok(call('GET', `/v2.0/networks/${ids.net.id}/dhcp-agents`))).agents;
      assert.deepEqual(dhcp.map((a: any) => a.host), ['network1']);
      assert.equal((await ok(call('GET', `/v2.0/networks/${ids.ext.id}/dhcp-agents`))).agents.length, 0, 'no DHCP on ext-net');
      const nets = await agents.network1.dhcp.call('get_active_networks_info', { host: 'network1' });
      assert.deepEqual(nets.map((n) => n.id), [ids.net.id]);
      // The DHCP agent makes its port and network1's OVS agent wires it.
      const port = await agents.network1.dhcp.call('create_dhcp_port', { host: 'network1', network_id: ids.net.id, device_id: `dhcp-network1-${ids.net.id}` });
      assert.equal(port.device_owner, 'network:dhcp');
      assert.equal(port.binding_host_id, 'network1');
      await agents.network1.ovs.call('update_device_up', { device: port.id, host: 'network1' });
      ids.dhcpPort = port;
    });

    it('step 6: demo creates demo-router: distributed (hidden from demo), not HA, ACTIVE', async () => {
      const r = (await ok(call('POST', '/v2.0/routers', { router: { name: 'demo-router' } }, demo), 201)).router;
      assert.equal(r.status, 'ACTIVE');
      assert.ok(!('distributed' in r) && !('ha' in r), 'hidden from members');
      const a = (await ok(call('GET', `/v2.0/routers/${r.id}`))).router;
      assert.equal(a.distributed, true);
      assert.equal(a.ha, false);
      ids.router = r;
      err(await call('POST', '/v2.0/routers', { router: { name: 'x', distributed: false } }, demo), 403);
    });

    it('step 7: interface on demo-subnet and gateway on ext-net; SNAT scheduled to network1', async () => {
      const itf = await ok(call('PUT', `/v2.0/routers/${ids.router.id}/add_router_interface`, { subnet_id: ids.subnet.id }, demo));
      assert.equal(itf.subnet_id, ids.subnet.id);
      assert.equal(itf.network_id, ids.net.id);
      const gw = (await ok(call('PUT', `/v2.0/routers/${ids.router.id}`, { router: { external_gateway_info: { network_id: ids.ext.id } } }, demo))).router;
      assert.equal(gw.external_gateway_info.network_id, ids.ext.id);
      assert.deepEqual(gw.external_gateway_info.external_fixed_ips, [{ subnet_id: ids.extSubnet.id, ip_address: '203.0.113.101' }]);
      assert.equal(gw.external_gateway_info.enable_snat, true);
      const l3 = (await ok(call('GET', `/v2.0/routers/${ids.router.id}/l3-agents`))).agents;
      assert.deepEqual(l3.map((a: any) => `${a.host}/${a.configurations.agent_mode}`), ['network1/dvr_snat']);
      await eventually(() => agents.network1.l3.got('routers_updated', (a) => a.routers.includes(ids.router.id)).length > 0, 'network1 told about the router');
    });

    it('steps 8-9: router-port-list shows 192.168.1.1 and 203.0.113.101; the SNAT port lives on network1', async () => {
      const ports = (await ok(call('GET', `/v2.0/ports?device_id=${ids.router.id}`))).ports;
      const by = (owner: string) => ports.filter((p: any) => p.device_owner === owner);
      assert.deepEqual(by(DEVICE_OWNER.routerInterfaceDistributed).map((p: any) => p.fixed_ips[0].ip_address), ['192.168.1.1']);
      assert.deepEqual(by(DEVICE_OWNER.routerGateway).map((p: any) => p.fixed_ips[0].ip_address), ['203.0.113.101']);
      const snat = by(DEVICE_OWNER.routerSnat);
      assert.equal(snat.length, 1);
      assert.equal(snat[0].fixed_ips[0].subnet_id, ids.subnet.id);
      assert.notEqual(snat[0].fixed_ips[0].ip_address, '192.168.1.1');
      assert.equal(snat[0]['binding:host_id'], 'network1');
      assert.equal(by(DEVICE_OWNER.routerGateway)[0]['binding:host_id'], 'network1');
      const view = await agents.network1.l3.call('sync_routers', { host: 'network1' });
      assert.equal(view.length, 1);
      assert.equal(view[0].gw_port_host, 'network1');
      assert.equal(view[0]._snat_router_interfaces.length, 1);
      assert.equal(view[0].gw_port!.fixed_ips[0].ip_address, '203.0.113.101');
      assert.deepEqual(view[0]._interfaces.map((p) => p.fixed_ips[0].ip_address), ['192.168.1.1']);
    });

    it('step 10: an instance port on compute1 binds there and brings the router to compute1 only', async () => {
      const sg = (await ok(call('GET', '/v2.0/security-groups?name=default', undefined, demo))).security_groups[0];
      const vm = (await ok(call('POST', '/v2.0/ports', { port: { network_id: ids.net.id, name: 'demo-instance1', device_owner: 'compute:nova', device_id: 'instance-1' } }, demo), 201)).port;
      const bound = (await ok(call('PUT', `/v2.0/ports/${vm.id}`, { port: { 'binding:host_id': 'compute1' } }))).port;
      assert.equal(bound['binding:vif_type'], 'ovs');
      assert.deepEqual(bound['binding:vif_details'], { port_filter: true, ovs_hybrid_plug: true, datapath_type: 'system', bridge_name: 'br-int', connectivity: 'l2' });
      assert.deepEqual(bound.security_groups, [sg.id]);
      ids.vm = bound;
      await eventually(() => agents.compute1.ovs.got('port_update', (a) => a.port_id === vm.id).length > 0, 'compute1 OVS agent told of the port');
      const details = await agents.compute1.ovs.call('get_devices_details_list', { devices: [vm.id], host: 'compute1' });
      assert.equal(details[0].network_type, 'vxlan');
      assert.equal(details[0].segmentation_id, ids.net['provider:segmentation_id']);
      await agents.compute1.ovs.call('update_device_up', { device: vm.id, host: 'compute1' });
      assert.equal((await ok(call('GET', `/v2.0/ports/${vm.id}`))).port.status, 'ACTIVE');
      // l2population: network1 learns compute1's port, compute1 learns network1's DHCP port.
      await eventually(() => agents.network1.ovs.got('add_fdb_entries', (a) => JSON.stringify(a).includes(bound.mac_address)).length > 0, 'network1 gets the instance FDB entry');
      await eventually(() => agents.compute1.ovs.got('add_fdb_entries', (a) => JSON.stringify(a).includes(ids.dhcpPort.mac_address)).length > 0, 'compute1 gets the DHCP port FDB entry');
      const fdb = await agents.compute1.ovs.call('get_fdb_entries', { host: 'compute1' });
      assert.deepEqual(Object.keys(fdb[ids.net.id].ports), ['10.0.1.21']);
      await eventually(() => agents.compute1.l3.got('routers_updated', (a) => a.routers.includes(ids.router.id)).length > 0, 'compute1 L3 agent told about the router');
      const routers = await agents.compute1.l3.call('sync_routers', { host: 'compute1' });
      assert.deepEqual(routers.map((r) => r.id), [ids.router.id]);
      assert.equal(routers[0].gw_port_host, 'network1');
      assert.deepEqual(await agents.compute2.l3.call('sync_routers', { host: 'compute2' }), []);
      // DVR neighbour tables: the instance, the DHCP port and the SNAT port, never qr- itself.
      const arp = await agents.compute1.l3.call('get_ports_by_subnet', { subnet_id: ids.subnet.id });
      assert.deepEqual(arp.map((p) => p.device_owner).sort(), ['compute:nova', 'network:dhcp', 'network:router_centralized_snat']);
      // Neutron's port dicts: addresses and MACs, not every subnet's details per port.
      for (const p of arp) assert.ok(!('subnets' in p) && p.fixed_ips.some((ip) => ip.subnet_id === ids.subnet.id) && /^fa:16:3e:/.test(p.mac_address), JSON.stringify(p));
      const onHost = await agents.compute1.ovs.call('get_ports_on_host_by_subnet', { host: 'compute1', subnet: ids.subnet.id });
      assert.deepEqual(onHost.map((p) => p.id), [vm.id]);
      const dvrSubnet = await agents.compute1.ovs.call('get_subnet_for_dvr', { subnet: ids.subnet.id });
      const qr = (await ok(call('GET', `/v2.0/ports?device_id=${ids.router.id}&device_owner=${DEVICE_OWNER.routerInterfaceDistributed}`))).ports[0];
      assert.equal(dvrSubnet!.gateway_mac, qr.mac_address);
      const sgInfo = await agents.compute1.ovs.call('security_group_info_for_devices', { devices: [vm.id] });
      assert.equal(sgInfo.security_groups[sg.id].length, 4);
      assert.deepEqual(sgInfo.sg_member_ips[sg.id].IPv4, [bound.fixed_ips[0].ip_address]);
    });

    it("step 11: a rule added to the default group reaches compute1's OVS agent", async () => {
      const sg = (await ok(call('GET', '/v2.0/security-groups?name=default', undefined, demo))).security_groups[0];
      await ok(call('POST', '/v2.0/security-group-rules', { security_group_rule: { security_group_id: sg.id, direction: 'ingress', protocol: 'icmp', remote_ip_prefix: '0.0.0.0/0' } }, demo), 201);
      await eventually(() => agents.compute1.ovs.got('security_groups_rule_updated', (a) => a.security_groups.includes(sg.id)).length > 0, 'rule update on compute1');
      assert.equal(agents.compute2.ovs.got('security_groups_rule_updated').length, 0, 'compute2 has no member of the group');
    });

    it("steps 12-13: a floating IP for the instance creates compute1's fg port and reaches compute1's L3 agent", async () => {
      const fip = (await ok(call('POST', '/v2.0/floatingips', { floatingip: { floating_network_id: ids.ext.id } }, demo), 201)).floatingip;
      assert.equal(fip.floating_ip_address, '203.0.113.102');
      assert.equal(fip.status, 'DOWN');
      const network1Told = () => agents.network1.l3.got('routers_updated', (a) => a.routers.includes(ids.router.id)).length;
      const network1Before = network1Told();
      const assoc = (await ok(call('PUT', `/v2.0/floatingips/${fip.id}`, { floatingip: { port_id: ids.vm.id } }, demo))).floatingip;
      assert.equal(assoc.router_id, ids.router.id);
      assert.equal(assoc.fixed_ip_address, ids.vm.fixed_ips[0].ip_address);
      const fg = (await ok(call('GET', `/v2.0/ports?device_owner=${DEVICE_OWNER.agentGateway}`))).ports;
      assert.equal(fg.length, 1);
      assert.equal(fg[0]['binding:host_id'], 'compute1');
      assert.equal(fg[0].network_id, ids.ext.id);
      assert.equal(fg[0].fixed_ips[0].ip_address, '203.0.113.103');
      const compute1L3 = (await ok(call('GET', '/v2.0/agents?agent_type=L3 agent&host=compute1'))).agents[0];
      assert.equal(fg[0].device_id, compute1L3.id);
      await eventually(() => agents.compute1.l3.got('routers_updated', (a) => a.routers.includes(ids.router.id)).length >= 2, 'compute1 told again');
      // Only the fixed port's host (l3_dvr_db): the router's other hosts, network1 here, have nothing to do.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(network1Told(), network1Before, 'the SNAT host is not told of a distributed floating IP');
      const [r] = await agents.compute1.l3.call('sync_routers', { host: 'compute1' });
      assert.deepEqual(r._floatingips.map((f) => [f.floating_ip_address, f.fixed_ip_address, f.host]), [['203.0.113.102', ids.vm.fixed_ips[0].ip_address, 'compute1']]);
      assert.equal(r.fip_agent_gw_port!.fixed_ips[0].ip_address, '203.0.113.103');
      const [snatView] = await agents.network1.l3.call('sync_routers', { host: 'network1' });
      assert.deepEqual(snatView._floatingips, [], 'a distributed floating IP is not the SNAT host business');
      await agents.compute1.l3.call('update_floatingip_statuses', { router_id: ids.router.id, fip_statuses: { [fip.id]: 'ACTIVE' } });
      assert.equal((await ok(call('GET', `/v2.0/floatingips/${fip.id}`, undefined, demo))).floatingip.status, 'ACTIVE');
      ids.fip = fip;
    });

    it('compute2 is told nothing about demo-net, where it has no port', async () => {
      const mention = (x: unknown) => JSON.stringify(x).includes(ids.net.id) || JSON.stringify(x).includes(ids.vm.id);
      for (const a of [agents.compute2.ovs, agents.compute2.l3]) {
        const leaks = a.received.filter((r) => !r.fanout && mention(r.args));
        assert.deepEqual(leaks, [], `${a.agentType} on compute2`);
      }
      assert.deepEqual(await agents.compute2.ovs.call('get_fdb_entries', { host: 'compute2' }), {});
    });

    it('east-west: a second network on the router with an instance on compute2 brings the router there', async () => {
      const net2 = (await ok(call('POST', '/v2.0/networks', { network: { name: 'demo-net2', tenant_id: 'demo', 'provider:network_type': 'vxlan' } }), 201)).network;
      const sub2 = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: net2.id, ip_version: 4, cidr: '192.168.2.0/24', gateway_ip: '192.168.2.1' } }, demo), 201)).subnet;
      await ok(call('PUT', `/v2.0/routers/${ids.router.id}/add_router_interface`, { subnet_id: sub2.id }, demo));
      const snat = (await ok(call('GET', `/v2.0/ports?device_id=${ids.router.id}&device_owner=${DEVICE_OWNER.routerSnat}`))).ports;
      assert.equal(snat.length, 2, 'one SNAT port per interface subnet');
      const vm2 = (await ok(call('POST', '/v2.0/ports', { port: { network_id: net2.id, device_owner: 'compute:nova', device_id: 'instance-2', tenant_id: 'demo', 'binding:host_id': 'compute2' } }), 201)).port;
      assert.equal(vm2['binding:vif_type'], 'ovs');
      // The batched report (what the OVS agent sends): a port bound elsewhere and an unknown one are refused, not set.
      const report = await agents.compute2.ovs.call('update_device_list', { devices_up: [vm2.id, ids.vm.id, 'no-such-port'], devices_down: [], host: 'compute2' });
      assert.deepEqual(report, { devices_up: [vm2.id], devices_down: [], failed_devices_up: [ids.vm.id, 'no-such-port'], failed_devices_down: [] });
      assert.equal((await ok(call('GET', `/v2.0/ports/${vm2.id}`))).port.status, 'ACTIVE');
      await eventually(async () => (await agents.compute2.l3.call('sync_routers', { host: 'compute2' })).length === 1, 'router on compute2');
      const hosts = new Set<string>();
      for (const h of ['network1', 'compute1', 'compute2']) if ((await agents.network1.l3.call('sync_routers', { host: h })).length) hosts.add(h);
      assert.deepEqual([...hosts].sort(), ['compute1', 'compute2', 'network1']);
      // compute1 has no port on demo-net2 but hosts the router, whose qr- there routes to
      // vm2: like Neutron's distributed port bindings, that makes it an l2population peer.
      await eventually(() => agents.compute1.ovs.got('add_fdb_entries', (a) => JSON.stringify(a.fdb_entries[net2.id] ?? {}).includes(vm2.mac_address)).length > 0, 'compute1 learns vm2');
      assert.ok(net2.id in (await agents.compute1.ovs.call('get_fdb_entries', { host: 'compute1' })));
      // Fanned out as the burst's batch (add_arp_entries), each entry as add_arp_entry carries it.
      await eventually(() => agents.compute1.l3.got('add_arp_entries', (a) => a.entries.some((e) => e.arp_table.mac_address === vm2.mac_address)).length > 0, 'ARP entry fanned out');
    });

    it('an OVS agent that reports a new tunnel address is announced with it from then on', async () => {
      const net2 = Object.keys(await agents.compute1.ovs.call('get_fdb_entries', { host: 'compute1' })).find((n) => n !== ids.net.id)!;
      const endpoints = async () => Object.keys((await agents.compute1.ovs.call('get_fdb_entries', { host: 'compute1' }))[net2].ports).sort();
      assert.deepEqual(await endpoints(), ['10.0.1.21', '10.0.1.32']);
      const ovs = agents.compute2.ovs;
      const conf = ovs.configurations; // what was reported may be frozen (sent in one process): replaced, not changed
      ovs.configurations = { ...conf, tunneling_ip: '10.0.1.42' };
      try {
        await ovs.report();
        assert.deepEqual(await endpoints(), ['10.0.1.21', '10.0.1.42']);
      } finally {
        ovs.configurations = conf;
        await ovs.report();
      }
      assert.deepEqual(await endpoints(), ['10.0.1.21', '10.0.1.32']);
    });

    it("a subnet's ports for the routers' neighbour tables follow ports coming and going", async () => {
      const sub2 = (await ok(call('GET', '/v2.0/subnets?cidr=192.168.2.0/24'))).subnets[0];
      const macs = async () => (await agents.compute1.l3.call('get_ports_by_subnet', { subnet_id: sub2.id })).map((p) => p.mac_address);
      const before = await macs();
      const port = (await ok(call('POST', '/v2.0/ports', { port: { network_id: sub2.network_id, device_owner: 'compute:nova', device_id: 'instance-3', tenant_id: 'demo', 'binding:host_id': 'compute1' } }), 201)).port;
      assert.deepEqual((await macs()).sort(), [...before, port.mac_address].sort());
      await ok(call('DELETE', `/v2.0/ports/${port.id}`), 204);
      assert.deepEqual((await macs()).sort(), [...before].sort());
    });

    it('what is kept about bindings, amended as a port binds, is what the database says', async () => {
      const kept = new HostViews(srv.plugin, { remember: true });
      const fresh = new HostViews(srv.plugin);
      const nets = (await ok(call('GET', '/v2.0/networks'))).networks.map((n: any) => n.id as string);
      const answers = async (v: HostViews) => Promise.all(nets.map(async (n: string) => [(await v.hostsOnNetwork(n)).sort(), (await v.dvrPeers(n)).sort()]));
      const before = await answers(kept);
      // An instance port bound where nothing was yet, on a network of the distributed router.
      const port = (await ok(call('POST', '/v2.0/ports', { port: { network_id: ids.net.id, device_owner: 'compute:nova', device_id: 'vm-kept', 'binding:host_id': 'compute9' } }), 201)).port;
      kept.portBound(port.network_id, 'compute9', 'compute:nova', port.id);
      const after = await answers(kept);
      assert.deepEqual(after, await answers(fresh));
      assert.ok(after.flat(2).filter((h) => h === 'compute9').length >= 3, 'its network and the router\'s other network gained the host');
      assert.notDeepEqual(after, before);
      await ok(call('DELETE', `/v2.0/ports/${port.id}`), 204);
    });

    it("a network's announced ports, kept and amended port by port, are what the database says", async () => {
      const kept = new HostViews(srv.plugin, { remember: true });
      const fresh = new HostViews(srv.plugin);
      const fdb = (v: HostViews) => v.fdbFor(ids.net.id);
      assert.deepEqual(await fdb(kept), await fdb(fresh));
      const port = (await ok(call('POST', '/v2.0/ports', { port: { network_id: ids.net.id, device_owner: 'compute:nova', device_id: 'vm-fdb', 'binding:host_id': 'compute2' } }), 201)).port;
      kept.portsChanged(ids.net.id, port.id);
      assert.deepEqual(await fdb(kept), await fdb(fresh), 'bound, not up yet');
      await agents.compute2.ovs.call('update_device_up', { device: port.id, host: 'compute2' });
      kept.portsChanged(ids.net.id, port.id);
      const up = await fdb(kept);
      assert.deepEqual(up, await fdb(fresh));
      assert.ok(JSON.stringify(up).includes(port.mac_address), 'the port is announced once up');
      await ok(call('DELETE', `/v2.0/ports/${port.id}`), 204);
      kept.portsChanged(ids.net.id, port.id);
      const gone = await fdb(kept);
      assert.deepEqual(gone, await fdb(fresh));
      assert.ok(!JSON.stringify(gone).includes(port.mac_address));
      // The hosts the change did not touch keep their lists as the same arrays (agents know them by identity).
      const [upLists, goneLists] = [up[ids.net.id].ports, gone[ids.net.id].ports];
      const untouched = Object.keys(goneLists).filter((ip) => JSON.stringify(goneLists[ip]) === JSON.stringify(upLists[ip]));
      assert.ok(untouched.length > 0 && untouched.length < Object.keys(upLists).length, 'one host\'s list changed, others did not');
      for (const ip of untouched) assert.equal(goneLists[ip], upLists[ip], ip);
      // Every host's answer shares the other hosts' entry lists while the network stays as it is.
      const [a, b] = [await kept.fdbFor(ids.net.id, 'compute1'), await kept.fdbFor(ids.net.id, 'network1')];
      const [ipA, ipB] = [Object.keys(a[ids.net.id].ports), Object.keys(b[ids.net.id].ports)];
      const both = ipA.filter((ip) => ipB.includes(ip));
      assert.ok(both.length > 0 && ipA.some((ip) => !ipB.includes(ip)), 'each answer leaves out its own host');
      for (const ip of both) assert.equal(a[ids.net.id].ports[ip], b[ids.net.id].ports[ip]);
    });

    it("a host's distributed routers, asked from its own ports, are those whose hosts include it", async () => {
      const routers = (await ok(call('GET', '/v2.0/routers'))).routers.filter((r: any) => r.distributed);
      const dvr = srv.plugin.dvr;
      let seen = 0;
      for (const host of ['network1', 'compute1', 'compute2', 'compute3']) {
        const mine = await dvr.routersOnHost(undefined, host);
        for (const r of routers) {
          const on = (await dvr.routerHosts(undefined, r.id)).includes(host);
          assert.equal(mine.has(r.id), on, `${r.name} on ${host}`);
          seen += on ? 1 : 0;
        }
      }
      assert.ok(seen >= 3, 'the router lives on network1 (SNAT), compute1 and compute2');
    });

    it('refuses what Neutron refuses around routers and floating IPs', async () => {
      err(await call('DELETE', `/v2.0/routers/${ids.router.id}`, undefined, demo), 409, 'RouterInUse');
      err(await call('PUT', `/v2.0/routers/${ids.router.id}`, { router: { external_gateway_info: {} } }, demo), 409, 'RouterExternalGatewayInUseByFloatingIp');
      err(await call('PUT', `/v2.0/routers/${ids.router.id}/remove_router_interface`, { subnet_id: ids.subnet.id }, demo), 409, 'RouterInterfaceInUseByFloatingIP');
      err(await call('PUT', `/v2.0/routers/${ids.router.id}/add_router_interface`, { subnet_id: ids.subnet.id }, demo), 400, 'BadRequest');
      err(await call('PUT', `/v2.0/routers/${ids.router.id}/add_router_interface`, {}, demo), 400);
      err(await call('PUT', `/v2.0/routers/${ids.router.id}/remove_router_interface`, { port_id: ids.vm.id }, demo), 404, 'RouterInterfaceNotFound');
      err(await call('PUT', `/v2.0/routers/${ids.router.id}`, { router: { external_gateway_info: { network_id: ids.net.id } } }), 400, 'BadRequest');
      err(await call('PUT', `/v2.0/routers/${ids.router.id}`, { router: { external_gateway_info: { network_id: ids.ext.id, enable_snat: false } } }, demo), 403);
      const second = (await ok(call('POST', '/v2.0/floatingips', { floatingip: { floating_network_id: ids.ext.id } }, demo), 201)).floatingip;
      err(await call('PUT', `/v2.0/floatingips/${second.id}`, { floatingip: { port_id: ids.vm.id } }, demo), 409, 'FloatingIPPortAlreadyAssociated');
      const lonely = (await ok(call('POST', '/v2.0/networks', { network: { name: 'lonely' } }, demo), 201)).network;
      await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: lonely.id, ip_version: 4, cidr: '10.99.0.0/24' } }, demo), 201);
      const p = (await ok(call('POST', '/v2.0/ports', { port: { network_id: lonely.id, device_owner: 'compute:nova' } }, demo), 201)).port;
      err(await call('PUT', `/v2.0/floatingips/${second.id}`, { floatingip: { port_id: p.id } }, demo), 404, 'ExternalGatewayForFloatingIPNotFound');
      err(await call('POST', '/v2.0/floatingips', { floatingip: { floating_network_id: ids.net.id } }, demo), 400);
      err(await call('POST', '/v2.0/floatingips', { floatingip: { floating_network_id: ids.ext.id, floating_ip_address: '203.0.113.150' } }, demo), 403);
      const qr = (await ok(call('GET', `/v2.0/ports?device_id=${ids.router.id}&device_owner=${DEVICE_OWNER.routerInterfaceDistributed}`))).ports[0];
      err(await call('DELETE', `/v2.0/ports/${qr.id}`), 409, 'ServicePortInUse');
      err(await call('PUT', `/v2.0/routers/${ids.router.id}`, { router: { routes: [{ destination: '10.0.0.0/8', nexthop: '172.31.0.1' }] } }, demo), 400, 'InvalidRoutes');
      const routed = await ok(call('PUT', `/v2.0/routers/${ids.router.id}`, { router: { routes: [{ destination: '10.0.0.0/8', nexthop: '192.168.1.254' }] } }, demo));
      assert.deepEqual(routed.router.routes, [{ destination: '10.0.0.0/8', nexthop: '192.168.1.254' }]);
      await ok(call('DELETE', `/v2.0/floatingips/${second.id}`, undefined, demo), 204);
    });

    it('cleans up: disassociating the last floating IP on compute1 removes its fg port', async () => {
      await ok(call('PUT', `/v2.0/floatingips/${ids.fip.id}`, { floatingip: { port_id: null } }, demo));
      assert.equal((await ok(call('GET', `/v2.0/ports?device_owner=${DEVICE_OWNER.agentGateway}`))).ports.length, 0);
      await ok(call('DELETE', `/v2.0/floatingips/${ids.fip.id}`, undefined, demo), 204);
      await ok(call('PUT', `/v2.0/routers/${ids.router.id}`, { router: { external_gateway_info: {} } }, demo));
      assert.equal((await ok(call('GET', `/v2.0/ports?device_id=${ids.router.id}&device_owner=${DEVICE_OWNER.routerSnat}`))).ports.length, 0, 'SNAT ports go with the gateway');
      assert.equal((await ok(call('GET', `/v2.0/routers/${ids.router.id}/l3-agents`))).agents.length, 0, 'no SNAT to schedule');
    });

    it('an agent that stops reporting is no longer alive; a revived dvr_snat agent picks routers up', async () => {
      const now = Date.now();
      srv.plugin.agents.now = () => new Date(now + 120_000);
      const list = (await ok(call('GET', '/v2.0/agents?alive=false'))).agents;
      assert.equal(list.length, 10);
      await agents.network1.l3.report();
      const l3 = (await ok(call('GET', '/v2.0/agents?agent_type=L3 agent&host=network1'))).agents[0];
      assert.equal(l3.alive, true);
      srv.plugin.agents.now = () => new Date();
      const upd = await ok(call('PUT', `/v2.0/agents/${l3.id}`, { agent: { description: 'the network node', admin_state_up: false } }));
      assert.equal(upd.agent.description, 'the network node');
      assert.equal(upd.agent.admin_state_up, false);
      err(await call('POST', '/v2.0/agents', { agent: {} }), 404);
    });

    it('hosts registering one after the other make one DVR MAC list to every OVS agent, not one each', async () => {
      const got = () => agents.compute1.ovs.got('dvr_mac_address_update').length;
      const before = got();
      const hosts = ['compute5', 'compute6', 'compute7', 'compute8', 'compute9'];
      let listSent = false;
      const watch = (transports.server as Transport & FaultInjectable).inject({
        drop: (m) => {
          if (m.method === 'dvr_mac_address_update') listSent = true;
          return false; // watched, not dropped
        },
      });
      for (const h of hosts) await new FakeAgent(transports.agents, h, AGENT_TYPES.ovs, 'neutron-openvswitch-agent', 'N/A', agents.compute1.ovs.configurations).report(true);
      await srv.rpcIdle();
      watch();
      assert.ok(listSent, 'the server is idle only once the gathered list has gone out');
      await eventually(() => got() > before, 'the list');
      await new Promise((r) => setTimeout(r, DVR_MACS_GATHER_MS * 2));
      assert.equal(got() - before, 1, 'one list for the five registrations');
      const [last] = agents.compute1.ovs.got('dvr_mac_address_update').slice(-1);
      for (const h of hosts) assert.ok(last.dvr_macs.some((m) => m.host === h), h);
      for (const h of hosts) await ok(call('DELETE', `/v2.0/agents/${(await ok(call('GET', `/v2.0/agents?host=${h}`))).agents[0].id}`), 204);
    });
  });
}

const err = (r: { status: number; body: any }, status: number, type?: string) => {
  assert.equal(r.status, status, JSON.stringify(r.body));
  if (type) assert.equal(r.body?.NeutronError?.type, type, JSON.stringify(r.body));
};
