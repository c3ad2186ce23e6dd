// The dvrnet command line for routers, floating IPs and agents against a real server with
// identity and the scenario's ten fake agents (real RPC, no dataplane): the walk-through's
// steps 1, 6, 7, 9 and 12 as the scenario types them, the API-level effects, the errors,
// and the same tables as Debian's real `neutron` client prints for the same server.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startKeystoneTestServer, type KeystoneTestServer } from '../api/testing.js';
import { transportFromUrl } from '../rpc/index.js';
import type { Transport } from '../rpc/transport.js';
import { scenarioAgents } from '../server/fake_agents.js';
import { openrcEnv, runDvrnet } from './testing.js';

const exec = promisify(execFile);
const haveNeutron = await exec('neutron', ['--version']).then(
  () => true,
  () => false,
);

describe('dvrnet router, floating IP and agent commands', () => {
  let s: KeystoneTestServer;
  let transport: Transport;
  let agents: Awaited<ReturnType<typeof scenarioAgents>>;
  const env = (cloud: 'admin' | 'demo') => openrcEnv(s.authUrl, cloud, s.passwords[cloud]);
  const dvrnet = (cloud: 'admin' | 'demo', ...argv: string[]) => runDvrnet(env(cloud), argv);
  const ok = async (cloud: 'admin' | 'demo', ...argv: string[]) => {
    const r = await dvrnet(cloud, ...argv);
    assert.equal(r.code, 0, `dvrnet ${argv.join(' ')}: ${r.err}`);
    return r.out;
  };
  /** The real neutron client on the same server, same user. */
  const neutron = async (cloud: 'admin' | 'demo', ...argv: string[]) =>
    (await exec('neutron', argv, { env: { ...process.env, OS_CLOUD: '', OS_IDENTITY_API_VERSION: '3', ...env(cloud) } })).stdout.replace(/\n$/, '');
  const field = (table: string, name: string) => table.split('\n').find((l) => l.startsWith(`| ${name} `))?.split('|')[2].trim();
  const value = async (cloud: 'admin' | 'demo', ...argv: string[]) => ok(cloud, ...argv, '-f', 'value');
  const json = async (cloud: 'admin' | 'demo', ...argv: string[]) => JSON.parse(await ok(cloud, ...argv, '-f', 'json'));
  const ids: Record<string, string> = {};

  before(async () => {
    const bus = `inproc://cli-l3-${process.pid}`;
    s = await startKeystoneTestServer('sqlite', { neutron: `transport_url = ${bus}` });
    transport = transportFromUrl(bus);
    agents = await scenarioAgents(transport);
    ids.demo = await value('admin', 'project-show', 'demo', '-c', 'id');
    await ok('admin', 'net-create', 'ext-net', '--router:external', '--provider:physical_network', 'external', '--provider:network_type', 'flat');
    await ok('admin', 'subnet-create', 'ext-net', '203.0.113.0/24', '--name', 'ext-subnet', '--allocation-pool', 'start=203.0.113.101,end=203.0.113.200', '--disable-dhcp', '--gateway', '203.0.113.1');
    await ok('admin', 'net-create', 'demo-net', '--tenant-id', ids.demo, '--provider:network_type', 'vxlan');
    await ok('demo', 'subnet-create', 'demo-net', '--name', 'demo-subnet', '--gateway', '192.168.1.1', '192.168.1.0/24');
  });
  after(async () => {
    await agents?.close();
    await s?.destroy();
    await transport?.close();
  });

  it('step 1: agent-list shows the ten agents, alive as :-) and up', async () => {
    const out = await ok('admin', 'agent-list');
    const lines = out.split('\n');
    assert.match(lines[1], /^\| id +\| agent_type +\| host +\| availability_zone +\| alive \| admin_state_up \| binary +\|$/);
    const rows = lines.slice(3, -1).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
    assert.equal(rows.length, 10);
    for (const r of rows) assert.deepEqual([r[4], r[5]], [':-)', 'True'], r.join(' '));
    const on = (host: string) => rows.filter((r) => r[2] === host).map((r) => r[1]).sort();
    assert.deepEqual(on('network1'), ['DHCP agent', 'L3 agent', 'Metadata agent', 'Open vSwitch agent']);
    assert.deepEqual(on('compute2'), ['L3 agent', 'Metadata agent', 'Open vSwitch agent']);
    const l3 = rows.find((r) => r[2] === 'network1' && r[1] === 'L3 agent')!;
    assert.equal(l3[6], 'neutron-l3-agent');
    ids.l3 = l3[0];
    ids.dhcp = rows.find((r) => r[1] === 'DHCP agent')![0];
    ids.l3c1 = rows.find((r) => r[2] === 'compute1' && r[1] === 'L3 agent')![0];

    // agent-show: configurations as JSON indented by 5, as neutronclient's json_indent
    const show = await ok('admin', 'agent-show', ids.l3);
    assert.match(show, /\| configurations +\| \{ +\|\n\| +\|      "agent_mode": "dvr_snat",/);
    assert.equal(field(show, 'alive'), 'True');
    // ids only: a name is not looked up, the server's message comes back
    const byName = await dvrnet('admin', 'agent-show', 'network1');
    assert.deepEqual([byName.code, byName.err], [1, 'Agent network1 could not be found.']);
    const demo = await dvrnet('demo', 'agent-list');
    assert.equal(demo.code, 1);
    assert.match(demo.err, /disallowed by policy/);
  });

  it('agent-update and agent-delete', async () => {
    const upd = await ok('admin', 'agent-update', ids.l3c1, '--description', 'compute1 L3');
    assert.equal(upd, `Updated agent: ${ids.l3c1}`);
    assert.equal(await value('admin', 'agent-show', ids.l3c1, '-c', 'description'), 'compute1 L3');
    await ok('admin', 'agent-update', ids.l3c1, '--admin-state-down');
    assert.equal(await value('admin', 'agent-show', ids.l3c1, '-c', 'admin_state_up'), 'False');
    // neutronclient sends admin_state_up True unless --admin-state-down
    await ok('admin', 'agent-update', ids.l3c1, '--description', '');
    assert.equal(await value('admin', 'agent-show', ids.l3c1, '-c', 'admin_state_up'), 'True');
    const bad = await dvrnet('admin', 'agent-update', 'compute1', '--description', 'x');
    assert.deepEqual([bad.code, bad.err], [1, "Unable to find agent with id 'compute1'"]);

    // A metadata agent deleted comes back with its next report.
    const meta = (await value('admin', 'agent-list', '-c', 'id', '-c', 'host', '-c', 'agent_type'))
      .split('\n')
      .find((l) => l.includes('compute2') && l.includes('Metadata'))!
      .split(' ')[0];
    assert.equal(await ok('admin', 'agent-delete', meta), `Deleted agent(s): ${meta}`);
    assert.equal((await value('admin', 'agent-list', '-c', 'id')).split('\n').length, 9);
    const gone = await dvrnet('admin', 'agent-delete', meta);
    assert.deepEqual([gone.code, gone.err], [1, `Unable to find agent(s) with id(s) '${meta}'.`]);
    await agents.compute2.meta.report(true);
    assert.equal((await value('admin', 'agent-list', '-c', 'id')).split('\n').length, 10);
  });

  it('step 6: router-create as demo: distributed, hidden from demo; admin sees distributed True, ha False', async () => {
    const out = await ok('demo', 'router-create', 'demo-router');
    assert.match(out, /^Created a new router:\n/);
    assert.equal(field(out, 'status'), 'ACTIVE');
    assert.equal(field(out, 'external_gateway_info'), '');
    assert.equal(field(out, 'distributed'), undefined, 'a member does not see distributed');
    assert.equal(field(out, 'admin_state_up'), 'True');
    ids.router = field(out, 'id')!;
    const adm = await ok('admin', 'router-show', 'demo-router', '-c', 'distributed', '-c', 'ha');
    assert.equal(field(adm, 'distributed'), 'True');
    assert.equal(field(adm, 'ha'), 'False');
    // a member may not ask for a centralized router
    const member = await dvrnet('demo', 'router-create', 'r2', '--distributed', 'False');
    assert.equal(member.code, 1);
    assert.match(member.err, /\(rule:create_router:distributed\) is disallowed by policy/);
    const usage = await dvrnet('admin', 'router-create', 'r2', '--distributed', 'maybe');
    assert.equal(usage.code, 2);
    assert.match(usage.err, /argument --distributed: invalid choice: 'maybe' \(choose from 'True', 'False'\)/);
    const central = await ok('admin', 'router-create', 'central', '--distributed', 'False', '--tenant-id', ids.demo);
    assert.equal(field(central, 'distributed'), 'False');
  });

  it('step 7: router-interface-add and router-gateway-set; router-port-list shows 192.168.1.1 and 203.0.113.101', async () => {
    const add = await ok('demo', 'router-interface-add', 'demo-router', 'demo-subnet');
    assert.match(add, /^Added interface [0-9a-f-]{36} to router demo-router\.$/);
    assert.equal(await ok('demo', 'router-gateway-set', 'demo-router', 'ext-net'), 'Set gateway for router demo-router');
    const ports = await ok('admin', 'router-port-list', 'demo-router');
    assert.match(ports.split('\n')[1], /^\| id +\| name \| tenant_id +\| mac_address +\| fixed_ips +\|$/);
    assert.match(ports, /\| \{"subnet_id": "[0-9a-f-]{36}", "ip_address": "192\.168\.1\.1"\} +\|/);
    assert.match(ports, /\| \{"subnet_id": "[0-9a-f-]{36}", "ip_address": "203\.0\.113\.101"\} \|/);
    const gw = await json('admin', 'router-show', 'demo-router', '-c', 'external_gateway_info');
    assert.equal(gw.external_gateway_info.external_fixed_ips[0].ip_address, '203.0.113.101');
    // router-list: the gateway as JSON; a router without one shows null
    const list = await ok('admin', 'router-list');
    assert.match(list, /\| demo-router \| [0-9a-f]{32} \| \{"network_id": "[0-9a-f-]{36}", "enable_snat": true, "external_fixed_ips": \[\{"subnet_id": "[0-9a-f-]{36}", "ip_address": "203\.0\.113\.101"\}\]\} \| True +\| False \|/);
    assert.match(list, /\| central +\| [0-9a-f]{32} \| null +\| False +\| False \|/);
    // The SNAT port on network1, the router scheduled to its dvr_snat agent
    const snat = (await value('admin', 'port-list', '--device_owner', 'network:router_centralized_snat', '-c', 'fixed_ips')).split('\n');
    assert.equal(snat.length, 1);
    assert.match(snat[0], /'ip_address': '192\.168\.1\.\d+'/);
    const hosting = await ok('admin', 'l3-agent-list-hosting-router', 'demo-router');
    assert.match(hosting.split('\n')[1], /^\| id +\| host +\| admin_state_up \| alive \|$/);
    assert.match(hosting, new RegExp(`\\| ${ids.l3} \\| network1 \\| True +\\| :-\\) +\\|`));
    const onAgent = await ok('admin', 'router-list-on-l3-agent', ids.l3);
    assert.match(onAgent, /\| demo-router \|/);
    const dhcp = await ok('admin', 'dhcp-agent-list-hosting-net', 'demo-net');
    assert.match(dhcp, new RegExp(`\\| ${ids.dhcp} \\| network1 \\| True +\\| :-\\) +\\|`));
    assert.match(await ok('admin', 'net-list-on-dhcp-agent', ids.dhcp), /\| demo-net \| [0-9a-f]{32} \| [0-9a-f-]{36} 192\.168\.1\.0\/24 \|/);
  });

  it('step 12: floatingip-create takes 203.0.113.102; associating it to a port on compute1 makes compute1 its fg port', async () => {
    const fip = await ok('demo', 'floatingip-create', 'ext-net');
    assert.match(fip, /^Created a new floatingip:\n/);
    assert.equal(field(fip, 'floating_ip_address'), '203.0.113.102');
    assert.equal(field(fip, 'port_id'), '');
    ids.fip = field(fip, 'id')!;
    const port = await ok('demo', 'port-create', 'demo-net', '--name', 'vm1');
    ids.port = field(port, 'id')!;
    await ok('admin', 'port-update', 'vm1', '--binding:host_id', 'compute1');
    assert.equal(await ok('demo', 'floatingip-associate', ids.fip, 'vm1'), `Associated floating IP ${ids.fip}`);
    const list = await ok('demo', 'floatingip-list');
    assert.match(list.split('\n')[1], /^\| id +\| fixed_ip_address \| floating_ip_address \| port_id +\|$/);
    assert.match(list, new RegExp(`\\| ${ids.fip} \\| 192\\.168\\.1\\.\\d+ +\\| 203\\.0\\.113\\.102 +\\| ${ids.port} \\|`));
    assert.equal(field(await ok('demo', 'floatingip-show', ids.fip), 'router_id'), ids.router);
    const fg = (await value('admin', 'port-list', '--device_owner', 'network:floatingip_agent_gateway', '-c', 'binding:host_id')).split('\n');
    assert.ok(fg.includes('compute1'), `fg ports on: ${fg.join(', ')}`);
    // floating IPs take ids only
    const byAddr = await dvrnet('demo', 'floatingip-associate', '203.0.113.102', 'vm1');
    assert.deepEqual([byAddr.code, byAddr.err], [1, "Unable to find floatingip with id '203.0.113.102'"]);
    // the gateway cannot go while a floating IP uses it
    const clear = await dvrnet('demo', 'router-gateway-clear', 'demo-router');
    assert.equal(clear.code, 1);
    assert.match(clear.err, /floating IP/i);
    assert.equal(await ok('demo', 'floatingip-disassociate', ids.fip), `Disassociated floating IP ${ids.fip}`);
    assert.equal(field(await ok('demo', 'floatingip-show', ids.fip), 'port_id'), '');
    const second = await ok('admin', 'floatingip-create', 'ext-net', '--floating-ip-address', '203.0.113.150', '--port-id', 'vm1');
    assert.equal(field(second, 'fixed_ip_address'), field(await ok('demo', 'port-show', 'vm1', '-c', 'fixed_ips'), 'fixed_ips')!.match(/"ip_address": "([^"]+)"/)![1]);
    const secondId = field(second, 'id')!;
    assert.equal(await ok('admin', 'floatingip-delete', secondId), `Deleted floatingip(s): ${secondId}`);
  });

  it('errors carry the server\'s message, exit status 1', async () => {
    const missing = await dvrnet('demo', 'router-show', 'nope');
    assert.deepEqual([missing.code, missing.err], [1, "Unable to find router with name or id 'nope'"]);
    const iface = await dvrnet('demo', 'router-interface-add', 'nope', 'demo-subnet');
    assert.deepEqual([iface.code, iface.err], [1, "Unable to find router with name or id 'nope'"]);
    const dup = await dvrnet('demo', 'router-interface-add', 'demo-router', 'subnet=demo-subnet');
    assert.equal(dup.code, 1);
    assert.match(dup.err, /192\.168\.1\.0\/24|already|overlap/i);
    const kind = await dvrnet('demo', 'router-interface-add', 'demo-router', 'network=demo-net');
    assert.equal(kind.code, 2);
    assert.match(kind.err, /You must specify either subnet or port for INTERFACE parameter, got 'network=demo-net'/);
    const notExt = await dvrnet('admin', 'router-gateway-set', 'central', 'demo-net');
    assert.equal(notExt.code, 1);
    assert.match(notExt.err, /external/i);
    const inUse = await dvrnet('demo', 'router-delete', 'demo-router');
    assert.equal(inUse.code, 1);
    assert.match(inUse.err, /still has ports|in use/i);
    const noFip = await dvrnet('demo', 'floatingip-show', '6f1d7a5e-0000-4000-8000-000000000000');
    assert.deepEqual([noFip.code, noFip.err], [1, 'Floating IP 6f1d7a5e-0000-4000-8000-000000000000 could not be found']);
  });

  it('router-update, interface by port, gateway clear, router-delete', async () => {
    assert.equal(await ok('admin', 'router-update', 'central', '--name', 'central2', '--admin-state-up', 'False'), 'Updated router: central');
    assert.equal(await value('admin', 'router-show', 'central2', '-c', 'admin_state_up'), 'False');
    const port = await ok('demo', 'port-create', 'demo-net', '--name', 'rport', '--fixed-ip', 'ip_address=192.168.1.200');
    const portId = field(port, 'id')!;
    assert.equal(await ok('admin', 'router-interface-add', 'central2', 'port=rport'), `Added interface ${portId} to router central2.`);
    assert.equal(await value('admin', 'port-show', 'rport', '-c', 'device_owner'), 'network:router_interface');
    assert.equal(await ok('admin', 'router-interface-delete', 'central2', 'port=rport'), 'Removed interface from router central2.');
    await ok('admin', 'router-gateway-set', 'central2', 'ext-net', '--disable-snat', '--fixed-ip', 'subnet_id=ext-subnet,ip_address=203.0.113.180');
    const gw = (await json('admin', 'router-show', 'central2', '-c', 'external_gateway_info')).external_gateway_info;
    assert.equal(gw.enable_snat, false);
    assert.equal(gw.external_fixed_ips[0].ip_address, '203.0.113.180');
    assert.equal(await ok('admin', 'router-gateway-clear', 'central2'), 'Removed gateway from router central2');
    assert.equal(await value('admin', 'router-show', 'central2', '-c', 'external_gateway_info'), 'None');
    assert.equal(await ok('admin', 'router-delete', 'central2'), 'Deleted router(s): central2');
    assert.equal((await value('admin', 'router-list', '-c', 'name')).split('\n').join(), 'demo-router');
    // extra routes: a nexthop on an attached subnet; --no-routes drops them
    assert.equal(await ok('demo', 'router-update', 'demo-router', '--route', 'destination=10.9.0.0/24,nexthop=192.168.1.50'), 'Updated router: demo-router');
    assert.deepEqual((await json('demo', 'router-show', 'demo-router', '-c', 'routes')).routes, [{ destination: '10.9.0.0/24', nexthop: '192.168.1.50' }]);
    const far = await dvrnet('demo', 'router-update', 'demo-router', '--route', 'destination=10.9.0.0/24,nexthop=10.1.1.1');
    assert.equal(far.code, 1);
    assert.match(far.err, /10\.1\.1\.1/);
    await ok('demo', 'router-update', 'demo-router', '--no-routes');
    assert.deepEqual((await json('demo', 'router-show', 'demo-router', '-c', 'routes')).routes, []);
    const both = await dvrnet('demo', 'router-update', 'demo-router', '--no-routes', '--route', 'destination=10.9.0.0/24,nexthop=192.168.1.50');
    assert.equal(both.code, 2);
  });

  it('prints what the real neutron client prints for the same server', { skip: haveNeutron ? undefined : 'neutron CLI not installed' }, async () => {
    for (const [cloud, ...argv] of [
      ['admin', 'agent-list'],
      ['admin', 'agent-show', ids.l3],
      ['demo', 'router-list'],
      ['admin', 'router-list'],
      ['demo', 'router-show', 'demo-router'],
      ['admin', 'router-port-list', 'demo-router'],
      ['demo', 'floatingip-list'],
      ['admin', 'l3-agent-list-hosting-router', 'demo-router'],
      ['admin', 'dhcp-agent-list-hosting-net', 'demo-net'],
    ] as Array<['admin' | 'demo', ...string[]]>) {
      const [mine, theirs] = await Promise.all([ok(cloud, ...argv), neutron(cloud, ...argv)]);
      // heartbeats move on between the two calls
      const calm = (t: string) => t.replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/g, 'TIME');
      assert.equal(calm(mine), calm(theirs), `${cloud}: ${argv.join(' ')}`);
    }
  });
});
