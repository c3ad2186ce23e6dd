// The real OpenStack clients (Debian's python3-openstackclient and python3-neutronclient),
// unmodified, authenticating with passwords against dvrnet's identity service, through the
// scenario's steps 2-5 each as the user the scenario names.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startKeystoneTestServer, type KeystoneTestServer } from '../api/testing.js';
import { openrcEnv } from './testing.js';

const run = promisify(execFile);
const have = async (cmd: string) => run(cmd, ['--version']).then(() => true, () => false);
const haveOpenstack = await have('openstack');
const haveNeutron = await have('neutron');

describe('real OpenStack clients with password auth', { skip: haveOpenstack ? undefined : 'openstack CLI not installed (apt-get install python3-openstackclient)' }, () => {
  let s: KeystoneTestServer;
  const env = (cloud: 'admin' | 'demo') => ({ ...process.env, OS_CLOUD: '', ...openrcEnv(s.authUrl, cloud, s.passwords[cloud]) });
  const os = async (cloud: 'admin' | 'demo', ...args: string[]) => JSON.parse((await run('openstack', [...args, '-f', 'json'], { env: env(cloud) })).stdout);
  const neutron = async (cloud: 'admin' | 'demo', ...args: string[]) => (await run('neutron', args, { env: env(cloud) })).stdout;

  before(async () => {
    s = await startKeystoneTestServer();
  });
  after(async () => s?.destroy());

  it('openstack: project show, the admin steps, the demo step, and what demo may not see', async () => {
    const project = await os('admin', 'project', 'show', 'demo');
    assert.equal(project.name, 'demo');
    const ext = await os('admin', 'network', 'create', 'ext-net', '--external', '--provider-physical-network', 'external', '--provider-network-type', 'flat');
    assert.equal(ext['provider:network_type'], 'flat');
    await os('admin', 'subnet', 'create', 'ext-subnet', '--network', 'ext-net', '--subnet-range', '203.0.113.0/24', '--allocation-pool', 'start=203.0.113.101,end=203.0.113.200', '--no-dhcp', '--gateway', '203.0.113.1');
    const dn = await os('admin', 'network', 'create', 'demo-net', '--project', project.id, '--provider-network-type', 'vxlan');
    assert.equal(dn.project_id, project.id);
    assert.equal(dn['provider:segmentation_id'], 1);
    await os('admin', 'network', 'create', 'admin-only');

    const ds = await os('demo', 'subnet', 'create', 'demo-subnet', '--network', 'demo-net', '--subnet-range', '192.168.1.0/24', '--gateway', '192.168.1.1');
    assert.deepEqual(ds.allocation_pools, [{ start: '192.168.1.2', end: '192.168.1.254' }]);
    assert.equal(ds.enable_dhcp, true);
    const nets = await os('demo', 'network', 'list');
    assert.deepEqual(nets.map((n: any) => n.Name).sort(), ['demo-net', 'ext-net']);
    const shown = await os('demo', 'network', 'show', 'demo-net');
    assert.equal(shown['provider:network_type'], null);
    await assert.rejects(os('demo', 'network', 'create', 'x', '--provider-network-type', 'vxlan'), /disallowed by policy/);
    await assert.rejects(os('demo', 'network', 'show', 'admin-only'), /No Network found for admin-only/);
    const all = await os('admin', 'network', 'list');
    assert.deepEqual(all.map((n: any) => n.Name).sort(), ['admin-only', 'demo-net', 'ext-net']);
  });

  it('openstack: wrong password is refused', async () => {
    await assert.rejects(run('openstack', ['network', 'list'], { env: { ...env('demo'), OS_PASSWORD: 'wrong' } }), /The request you have made requires authentication/);
  });

  it('neutron: the scenario commands verbatim', { skip: haveNeutron ? undefined : 'neutron CLI not installed' }, async () => {
    const out = await neutron('admin', 'net-create', 'n2', '--router:external', '--provider:physical_network', 'vlan', '--provider:network_type', 'vlan');
    assert.match(out, /^Created a new network:/);
    assert.match(out, /\| provider:network_type +\| vlan +\|/);
    const list = await neutron('demo', 'net-list');
    assert.match(list, /\| n2 +\|/);
    assert.doesNotMatch(list, /admin-only/);
  });
});
