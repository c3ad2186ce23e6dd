// The DHCP agent against a real server over the in-process bus, on an emulated network
// node: it makes its port, plugs qdhcp, configures dnsmasq, and an instance gets its
// address, gateway and MTU from it; isolated metadata through the qdhcp proxy; casts
// resync; a restart changes nothing; disabling DHCP removes the namespace and the port.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDhcpAgentConfig } from '../../config/load.js';
import { HostComposer } from '../composer.js';
import { DhcpAgent } from './agent.js';
import { dhcpDeviceId } from './device-id.js';
import { World } from '../../dataplane/emulated/world.js';
import type { EmulatedHost } from '../../dataplane/emulated/linux/host.js';
import { httpRequest, registerMetadataUpstream, type HttpReply } from '../../dataplane/emulated/apps/metadata.js';
import type { DhcpLease } from '../../dataplane/emulated/apps/dhcp.js';
import { renderTrace } from '../../trace/render.js';
import { addBridge, addFlows, addPort, addTap, emptyHost, systemPort } from '../../host/build.js';
import { INTEGRATION_BRIDGE, METADATA_IP, tapDevice } from '../../host/names.js';
import type { HostState, OvsBridge } from '../../host/state.js';
import { diff } from '../../host/diff.js';
import { InProcessBus } from '../../rpc/inproc.js';
import type { Transport } from '../../rpc/transport.js';
import { client, demo, startTestServer } from '../../api/testing.js';

async function eventually(cond: () => boolean | Promise<boolean>, what: string, ms = 5000) {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * What the OVS agent (another part) and the compute service do on the node, reduced to
 * what DHCP needs: br-int switching normally, every port carrying an iface-id on the local
 * VLAN of its network (one network here: tag 1), reported up; and an instance's tap.
 */
async function standIns(composer: HostComposer, transport: Transport, host: string, instanceTaps: string[]) {
  let compute = emptyHost();
  for (const t of instanceTaps) compute = addTap(compute, '', t);
  const bridge = { name: INTEGRATION_BRIDGE, ports: {}, flows: [] } as unknown as OvsBridge;
  compute = { ...compute, ovs: { bridges: { [INTEGRATION_BRIDGE]: bridge } } };
  for (const t of instanceTaps) compute = addPort(compute, INTEGRATION_BRIDGE, systemPort(t));
  composer.setFragment('compute', compute);
  let ovs = addFlows(addBridge(emptyHost(), INTEGRATION_BRIDGE), INTEGRATION_BRIDGE, [{ table: 0, priority: 0, actions: 'NORMAL' }]);
  // Like the OVS agent, it finds ports both in what others plug and in OVSDB (a restart).
  const plugged = { ...((await composer.current()).ovs.bridges[INTEGRATION_BRIDGE]?.ports ?? {}), ...(composer.desired('ovs').ovs.bridges[INTEGRATION_BRIDGE]?.ports ?? {}) };
  const up: string[] = [];
  for (const p of Object.values(plugged)) {
    ovs = { ...ovs, ovs: { bridges: { [INTEGRATION_BRIDGE]: { ...ovs.ovs.bridges[INTEGRATION_BRIDGE], ports: { ...ovs.ovs.bridges[INTEGRATION_BRIDGE].ports, [p.name]: { name: p.name, type: p.type, tag: 1 } as never } } } } };
    if (p.external_ids?.['iface-id']) up.push(p.external_ids['iface-id']);
  }
  for (const t of instanceTaps) delete (ovs.ovs.bridges[INTEGRATION_BRIDGE].ports as Record<string, unknown>)[t];
  for (const t of instanceTaps) ovs = { ...ovs, ovs: { bridges: { [INTEGRATION_BRIDGE]: { ...ovs.ovs.bridges[INTEGRATION_BRIDGE], ports: { ...ovs.ovs.bridges[INTEGRATION_BRIDGE].ports, [t]: { name: t, type: 'system', tag: 1 } } } } } };
  composer.setFragment('ovs', ovs);
  await composer.reconcile();
  for (const device of up) await transport.call('q-plugin', 'update_device_up', { device, host });
}

function agentConfig(dir: string) {
  writeFileSync(join(dir, 'dnsmasq-neutron.conf'), '# the scenario\'s MTU for VXLAN\ndhcp-option-force=26,1450\n');
  writeFileSync(join(dir, 'neutron.conf'), '[DEFAULT]\nhost = network1\ndhcp_lease_duration = 3600\n');
  writeFileSync(join(dir, 'dhcp_agent.ini'), '[DEFAULT]\ninterface_driver = openvswitch\ndhcp_driver = neutron.agent.linux.dhcp.Dnsmasq\nenable_isolated_metadata = True\ndnsmasq_config_file = dnsmasq-neutron.conf\n');
  return loadDhcpAgentConfig([join(dir, 'neutron.conf'), join(dir, 'dhcp_agent.ini')], { cwd: dir, warn: () => {} });
}

test('DHCP agent: qdhcp, dnsmasq and the metadata proxy from the server; an instance leases its address, gateway and MTU 1450', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-dhcp-'));
  const bus = new InProcessBus();
  const srvT = bus.transport();
  const agentT = bus.transport();
  const srv = await startTestServer('sqlite', { transport: srvT });
  const call = client(srv.url);
  const ok = async (p: Promise<{ status: number; body: any }>) => {
    const r = await p;
    assert.ok(r.status < 300, JSON.stringify(r.body));
    return r.body;
  };
  const world = new World();
  const h: EmulatedHost = world.addHost('network1');
  const conf = agentConfig(dir);
  const agents: DhcpAgent[] = [];
  const start = async (composer: HostComposer) => {
    const a = new DhcpAgent({ transport: agentT, host: 'network1', composer, config: conf, reportInterval: 0, resyncInterval: 0 });
    agents.push(a);
    await a.start();
    return a;
  };
  try {
    let composer = new HostComposer('network1', h);
    let agent = await start(composer);
    assert.equal(agent.lastError, undefined);
    const list = (await ok(call('GET', '/v2.0/agents?agent_type=DHCP%20agent'))).agents;
    assert.deepEqual(list.map((a: any) => [a.host, a.binary, a.topic, a.configurations.dhcp_lease_duration]), [['network1', 'neutron-dhcp-agent', 'dhcp_agent', 3600]]);

    const net = (await ok(call('POST', '/v2.0/networks', { network: { name: 'demo-net', 'provider:network_type': 'vxlan' } }))).network;
    const subnet = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '192.168.1.0/24', gateway_ip: '192.168.1.1', tenant_id: net.tenant_id } }))).subnet;
    await eventually(() => agent.networks.has(net.id), 'the agent serves demo-net');
    await agent.idle();
    const dhcpPort = agent.networks.get(net.id)!.port;
    const ports = (await ok(call('GET', `/v2.0/ports?network_id=${net.id}&device_owner=network:dhcp`))).ports;
    assert.deepEqual(ports.map((p: any) => [p.id, p.device_id, p['binding:host_id']]), [[dhcpPort.id, dhcpDeviceId(net.id, 'network1'), 'network1']]);

    // A new port of a network served here comes in the cast (port_update_end carries it, as
    // Neutron's does): nothing is fetched; so does a port's new address, and a port's deletion.
    const asked: string[] = [];
    const spied = agent as unknown as { call: (m: string, a: unknown) => Promise<unknown> };
    const realCall = spied.call;
    spied.call = (m, a) => (asked.push(m), realCall.call(agent, m, a));
    const hostFor = (mac: string) => h.readState().dhcp[net.id]?.hosts.find((x) => x.mac === mac)?.ip;
    const vm = (await ok(call('POST', '/v2.0/ports', { port: { network_id: net.id, device_owner: 'compute:nova', device_id: 'vm-1', 'binding:host_id': 'network1', tenant_id: net.tenant_id } }))).port;
    await eventually(() => agent.networks.get(net.id)!.network.ports.some((p) => p.id === vm.id), 'port_update_end reached the agent');
    await agent.idle();
    assert.equal(hostFor(vm.mac_address), vm.fixed_ips[0].ip_address);
    const other = (await ok(call('POST', '/v2.0/ports', { port: { network_id: net.id, device_owner: 'compute:nova', device_id: 'vm-2', tenant_id: net.tenant_id } }))).port;
    await eventually(() => hostFor(other.mac_address) === other.fixed_ips[0].ip_address, 'the second port is served');
    await ok(call('PUT', `/v2.0/ports/${other.id}`, { port: { fixed_ips: [{ subnet_id: subnet.id, ip_address: '192.168.1.77' }] } }));
    await eventually(() => hostFor(other.mac_address) === '192.168.1.77', 'the new address is served');
    await ok(call('DELETE', `/v2.0/ports/${other.id}`));
    await eventually(() => hostFor(other.mac_address) === undefined, 'the deleted port is not served');
    await agent.idle();
    spied.call = realCall;
    assert.ok(!asked.includes('get_network_info') && !asked.includes('get_active_networks_info'), asked.join());
    // The casts left the agent holding what the server has.
    const fetched = (await realCall.call(agent, 'get_network_info', { network_id: net.id })) as { ports: Array<{ id: string }> };
    assert.deepEqual(agent.networks.get(net.id)!.network.ports.map((p) => p.id).sort(), fetched.ports.map((p) => p.id).sort());
    const syncs = agent.syncs;
    await standIns(composer, agentT, 'network1', [tapDevice(vm.id)]);
    assert.equal((await ok(call('GET', `/v2.0/ports/${dhcpPort.id}`))).port.status, 'ACTIVE', 'up once wired');
    // Ports going ACTIVE are no news to the DHCP agent (as in Neutron: no port_update_end).
    await new Promise((r) => setTimeout(r, 50));
    await agent.idle();
    assert.equal(agent.syncs, syncs, 'no pass for status reports');

    // The host: qdhcp with the tap (address, 169.254.169.254/32), dnsmasq, and (isolated network) the proxy.
    const ns = `qdhcp-${net.id}`;
    const state = h.readState();
    const tap = tapDevice(dhcpPort.id);
    const dhcpIp = dhcpPort.fixed_ips[0].ip_address;
    assert.deepEqual([...state.namespaces[ns].links[tap].addresses].sort(), [`${dhcpIp}/24`, '169.254.169.254/32'].sort());
    assert.equal(state.namespaces[ns].links[tap].mtu, 1450);
    assert.equal(state.ovs.bridges['br-int'].ports[tap].external_ids?.['iface-id'], dhcpPort.id);
    const server = state.dhcp[net.id];
    assert.deepEqual([server.interface, server.lease_time, server.hosts.find((x) => x.mac === vm.mac_address)?.ip], [tap, 3600, vm.fixed_ips[0].ip_address]);
    assert.deepEqual(server.options.find((o) => o.option === 121)!.values, ['169.254.169.254/32', dhcpIp, '0.0.0.0/0', '192.168.1.1']);
    assert.deepEqual(state.metadata[net.id]?.network_id, net.id);

    // The instance asks.
    h.addInstance('vm1', { tap: tapDevice(vm.id), mac: vm.mac_address });
    let lease: DhcpLease | undefined;
    const rec = world.dhcp({ host: 'network1', ns: 'vm1' }, (l) => (lease = l));
    assert.deepEqual(lease && [lease.ip, lease.cidr, lease.router, lease.mtu, lease.server], [vm.fixed_ips[0].ip_address, `${vm.fixed_ips[0].ip_address}/24`, '192.168.1.1', 1450, dhcpIp], renderTrace(rec));
    assert.ok(h.ns('vm1').routesText().includes(`169.254.169.254 via ${dhcpIp} dev eth0`), h.ns('vm1').routesText().join("\n"));

    // Isolated metadata: the instance's GET reaches the qdhcp proxy, which names the network.
    const seen: Record<string, string>[] = [];
    const unplug = registerMetadataUpstream(h, agent.settings.metadata_proxy_socket, (r) => (seen.push(r.headers), { status: 200, headers: {}, body: 'i-am-vm-1' }));
    const md = await httpRequest(world, { host: 'network1', ns: 'vm1' }, { dst: METADATA_IP, request: 'GET /latest/meta-data/instance-id' });
    unplug();
    assert.equal((md.response as HttpReply | undefined)?.body, 'i-am-vm-1', md.traces.map((t) => renderTrace(t)).join('\n'));
    assert.deepEqual(seen[0], { 'X-Forwarded-For': vm.fixed_ips[0].ip_address, 'X-Neutron-Network-ID': net.id });

    // A restarted agent (new process, same host, same database) changes nothing.
    const before = h.readState();
    await agent.stop();
    composer = new HostComposer('network1', h);
    await standIns(composer, agentT, 'network1', [tapDevice(vm.id)]);
    agent = await start(composer);
    assert.equal(agent.lastError, undefined);
    assert.deepEqual(diff(before, h.readState()), []);
    assert.equal(agent.networks.get(net.id)!.port.id, dhcpPort.id, 'the same port');

    // A router on the subnet: no longer isolated, the proxy goes, the metadata route goes to the router.
    const router = (await ok(call('POST', '/v2.0/routers', { router: { name: 'r' } }, demo))).router;
    await ok(call('PUT', `/v2.0/routers/${router.id}/add_router_interface`, { subnet_id: subnet.id }));
    // The router interface's port reaches the network's DHCP agents as a port event (no resync asked for).

    await eventually(() => h.readState().metadata[net.id] === undefined, 'the qdhcp proxy stops once the subnet is routed');
    await agent.idle();
    assert.deepEqual(h.readState().dhcp[net.id].options.find((o) => o.option === 121)!.values, ['169.254.169.254/32', '192.168.1.1', '0.0.0.0/0', '192.168.1.1']);
    await ok(call('PUT', `/v2.0/routers/${router.id}/remove_router_interface`, { subnet_id: subnet.id }));

    // DHCP disabled: the namespace and the DHCP port go.
    await ok(call('PUT', `/v2.0/subnets/${subnet.id}`, { subnet: { enable_dhcp: false } }));
    await eventually(() => !agent.networks.has(net.id), 'the agent drops demo-net');
    await agent.idle();
    const after: HostState = h.readState();
    assert.equal(after.namespaces[ns], undefined);
    assert.equal(after.dhcp[net.id], undefined);
    assert.equal(after.ovs.bridges['br-int'].ports[tap], undefined);
    assert.deepEqual((await ok(call('GET', `/v2.0/ports?network_id=${net.id}&device_owner=network:dhcp`))).ports, []);

    // DHCP back on, then the network deleted (its DHCP port with it): the host is emptied.
    await ok(call('PUT', `/v2.0/subnets/${subnet.id}`, { subnet: { enable_dhcp: true } }));
    await eventually(() => agent.networks.has(net.id), 'served again');
    await agent.idle();
    assert.ok(h.readState().namespaces[ns]);

    // An admin takes the network off the agent, then gives it back: the agent hears of each
    // (no resync requested here).
    const dhcpAgentId = (await ok(call('GET', '/v2.0/agents?agent_type=DHCP%20agent'))).agents[0].id;
    await ok(call('DELETE', `/v2.0/agents/${dhcpAgentId}/dhcp-networks/${net.id}`));
    await eventually(() => !agent.networks.has(net.id), 'network_delete_end: the agent drops demo-net');
    await agent.idle();
    assert.equal(h.readState().namespaces[ns], undefined);
    const notHosted = await call('DELETE', `/v2.0/agents/${dhcpAgentId}/dhcp-networks/${net.id}`);
    assert.deepEqual([notHosted.status, notHosted.body.NeutronError.type], [409, 'NetworkNotHostedByDhcpAgent']);
    await ok(call('POST', `/v2.0/agents/${dhcpAgentId}/dhcp-networks`, { network_id: net.id }));
    await eventually(() => agent.networks.has(net.id), 'network_update_end: served again');
    await agent.idle();
    assert.ok(h.readState().namespaces[ns]);
    const hosted = await call('POST', `/v2.0/agents/${dhcpAgentId}/dhcp-networks`, { network_id: net.id });
    assert.deepEqual([hosted.status, hosted.body.NeutronError.type], [409, 'NetworkHostedByDHCPAgent']);
    assert.match(hosted.body.NeutronError.message, new RegExp(`network ${net.id} has been already hosted by the DHCP Agent`));
    await ok(call('DELETE', `/v2.0/ports/${vm.id}`));
    await ok(call('DELETE', `/v2.0/networks/${net.id}`));
    // The network's DHCP agents, looked up before its bindings go, hear network_delete_end.

    await eventually(() => !agent.networks.has(net.id), 'the agent drops the deleted network');
    await agent.idle();
    assert.equal(h.readState().namespaces[ns], undefined);
    assert.deepEqual(Object.keys(h.readState().dhcp), []);
  } finally {
    for (const a of agents) await a.stop();
    await srv.destroy();
    await srvT.close();
    await agentT.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
