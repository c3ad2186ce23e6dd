// The real `openstack` client (Debian's python3-openstackclient) against the server,
// unchanged, with its no-auth form: --os-auth-type none --os-endpoint URL.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startTestServer, type TestServer } from './testing.js';

const run = promisify(execFile);
const haveCli = await run('openstack', ['--version']).then(
  () => true,
  () => false,
);

describe('the real openstack CLI', { skip: haveCli ? undefined : 'openstack CLI not installed (apt-get install python3-openstackclient)' }, () => {
  let srv: TestServer;
  const os = async (...args: string[]) => {
    const { stdout } = await run('openstack', ['--os-auth-type', 'none', '--os-endpoint', srv.url, ...args, '-f', 'json'], { env: { ...process.env, OS_CLOUD: '' } });
    return JSON.parse(stdout);
  };
  before(async () => {
    srv = await startTestServer('sqlite');
  });
  after(async () => srv?.destroy());

  it("runs the scenario's network steps", async () => {
    const ext = await os('network', 'create', 'ext-net', '--external', '--provider-physical-network', 'external', '--provider-network-type', 'flat');
    assert.equal(ext['router:external'], true);
    assert.equal(ext['provider:network_type'], 'flat');
    assert.equal(ext.status, 'ACTIVE');
    const sub = await os('subnet', 'create', 'ext-subnet', '--network', 'ext-net', '--subnet-range', '203.0.113.0/24', '--allocation-pool', 'start=203.0.113.101,end=203.0.113.200', '--no-dhcp', '--gateway', '203.0.113.1');
    assert.deepEqual(sub.allocation_pools, [{ start: '203.0.113.101', end: '203.0.113.200' }]);
    assert.equal(sub.enable_dhcp, false);
    const demo = await os('network', 'create', 'demo-net', '--provider-network-type', 'vxlan');
    assert.equal(demo['provider:segmentation_id'], 1);
    assert.equal(demo.mtu, 1450);
    const ds = await os('subnet', 'create', 'demo-subnet', '--network', 'demo-net', '--subnet-range', '192.168.1.0/24', '--gateway', '192.168.1.1');
    assert.equal(ds.gateway_ip, '192.168.1.1');
    const list = await os('network', 'list');
    assert.deepEqual(list.map((n: any) => n.Name).sort(), ['demo-net', 'ext-net']);
    const port = await os('port', 'create', '--network', 'demo-net', 'vm1');
    assert.equal(port.fixed_ips[0].ip_address, '192.168.1.2');
    assert.equal(port.status, 'DOWN');
    const sg = await os('security', 'group', 'rule', 'create', '--protocol', 'icmp', 'default');
    assert.equal(sg.protocol, 'icmp');
    await assert.rejects(os('network', 'create', 'x', '--provider-network-type', 'vlan', '--provider-physical-network', 'vlan', '--provider-segment', '5000'), /segmentation_id out of range|5000/);
  });
});
