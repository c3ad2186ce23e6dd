// Debian's real `openstack` client, unmodified, through the scenario's router and floating
// IP steps (issue 4's second "Done when"): router create, router add subnet, router set
// --external-gateway, floating ip create, floating ip set --port, each as the user the
// scenario names, against a keystone server with the scenario's ten fake agents; its
// output checked, and what it did checked through dvrnet's own commands.

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
const haveOpenstack = await exec('openstack', ['--version']).then(
  () => true,
  () => false,
);

describe('real openstack CLI: routers and floating IPs', { skip: haveOpenstack ? undefined : 'openstack CLI not installed (apt-get install python3-openstackclient)' }, () => {
  let s: KeystoneTestServer;
  let transport: Transport;
  let agents: Awaited<ReturnType<typeof scenarioAgents>>;
  const env = (cloud: 'admin' | 'demo') => openrcEnv(s.authUrl, cloud, s.passwords[cloud]);
  const os = async (cloud: 'admin' | 'demo', ...args: string[]) => (await exec('openstack', args, { env: { ...process.env, OS_CLOUD: '', ...env(cloud) } })).stdout;
  const osJson = async (cloud: 'admin' | 'demo', ...args: string[]) => JSON.parse(await os(cloud, ...args, '-f', 'json'));
  const dvrnet = async (cloud: 'admin' | 'demo', ...argv: string[]) => {
    const r = await runDvrnet(env(cloud), argv);
    assert.equal(r.code, 0, r.err);
    return r.out;
  };

  before(async () => {
    const bus = `inproc://cli-openstack-l3-${process.pid}`;
    s = await startKeystoneTestServer('sqlite', { neutron: `transport_url = ${bus}` });
    transport = transportFromUrl(bus);
    agents = await scenarioAgents(transport);
    const demoId = await dvrnet('admin', 'project-show', 'demo', '-c', 'id', '-f', 'value');
    await dvrnet('admin', 'net-create', 'ext-net', '--router:external', '--provider:physical_network', 'external', '--provider:network_type', 'flat');
    await dvrnet('admin', 'subnet-create', 'ext-net', '203.0.113.0/24', '--allocation-pool', 'start=203.0.113.101,end=203.0.113.200', '--disable-dhcp', '--gateway', '203.0.113.1');
    await dvrnet('admin', 'net-create', 'demo-net', '--tenant-id', demoId, '--provider:network_type', 'vxlan');
    await dvrnet('demo', 'subnet-create', 'demo-net', '--name', 'demo-subnet', '--gateway', '192.168.1.1', '192.168.1.0/24');
  });
  after(async () => {
    await agents?.close();
    await s?.destroy();
    await transport?.close();
  });

  it('the agents, the router, its interface and gateway, a floating IP on a port of compute1', async () => {
    const list = await osJson('admin', 'network', 'agent', 'list');
    assert.equal(list.length, 10);
    for (const a of list) assert.equal(a.Alive, true, `${a['Agent Type']} on ${a.Host}`);

    const router = await osJson('demo', 'router', 'create', 'demo-router');
    assert.equal(router.name, 'demo-router');
    assert.equal(router.status, 'ACTIVE');
    assert.equal(router.distributed ?? null, null, 'hidden from a member');
    const shown = await osJson('admin', 'router', 'show', 'demo-router');
    assert.equal(shown.distributed, true);
    assert.equal(shown.ha, false);

    // `router add subnet` and `router set` print nothing when they work.
    assert.equal(await os('demo', 'router', 'add', 'subnet', 'demo-router', 'demo-subnet'), '');
    assert.equal(await os('demo', 'router', 'set', '--external-gateway', 'ext-net', 'demo-router'), '');
    const gw = (await osJson('demo', 'router', 'show', 'demo-router')).external_gateway_info;
    assert.equal(gw.external_fixed_ips[0].ip_address, '203.0.113.101');
    const ports = await osJson('admin', 'port', 'list', '--router', 'demo-router');
    const addrs = ports.flatMap((p: any) => p['Fixed IP Addresses'].map((ip: any) => ip.ip_address)).sort();
    // the interface, the gateway, and (admin sees it) the central SNAT port on network1
    assert.deepEqual(addrs.filter((a: string) => a === '192.168.1.1' || a === '203.0.113.101'), ['192.168.1.1', '203.0.113.101']);
    assert.equal(addrs.length, 3);
    // ... and dvrnet's router-port-list agrees
    const mine = await dvrnet('admin', 'router-port-list', 'demo-router', '-f', 'json');
    assert.deepEqual(JSON.parse(mine).flatMap((p: any) => p.fixed_ips.map((ip: any) => ip.ip_address)).sort(), addrs);

    const fip = await osJson('demo', 'floating', 'ip', 'create', 'ext-net');
    assert.equal(fip.floating_ip_address, '203.0.113.102');
    assert.equal(fip.port_id, null);
    const port = await osJson('demo', 'port', 'create', '--network', 'demo-net', 'vm1');
    await os('admin', 'port', 'set', '--host', 'compute1', 'vm1');
    assert.equal(await os('demo', 'floating', 'ip', 'set', '--port', 'vm1', fip.id), '');
    const assoc = await osJson('demo', 'floating', 'ip', 'show', '203.0.113.102');
    assert.equal(assoc.port_id, port.id);
    assert.equal(assoc.fixed_ip_address, port.fixed_ips[0].ip_address);
    assert.equal(assoc.router_id, router.id);
    // the floating-IP agent gateway port of compute1 came with it
    const fg = JSON.parse(await dvrnet('admin', 'port-list', '--device_owner', 'network:floatingip_agent_gateway', '-c', 'binding:host_id', '-f', 'json'));
    assert.deepEqual(fg.map((p: any) => p['binding:host_id']), ['compute1']);
    assert.match(await dvrnet('demo', 'floatingip-list'), new RegExp(`\\| ${fip.id} \\| ${port.fixed_ips[0].ip_address.replace(/\./g, '\\.')} +\\| 203\\.0\\.113\\.102 +\\| ${port.id} \\|`));
  });

  it('the errors as the openstack client reports them', async () => {
    await assert.rejects(os('demo', 'router', 'create', 'r2', '--centralized'), /disallowed by policy/);
    await assert.rejects(os('demo', 'router', 'add', 'subnet', 'nope', 'demo-subnet'), /No Router found for nope/);
    await assert.rejects(os('demo', 'router', 'delete', 'demo-router'), /still has ports|in use/i);
  });
});
