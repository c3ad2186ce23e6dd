// The `dvrnet` command line against a real server with identity: the scenario's steps 2-5
// typed as the scenario types them (with `dvrnet` for `neutron`), output as neutronclient
// prints it, errors with the server's message and status 1.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startKeystoneTestServer, type KeystoneTestServer } from '../api/testing.js';
import { runClient } from './core/run.js';
import { openrcEnv, runDvrnet } from './testing.js';

const run = promisify(execFile);

describe('dvrnet command line', () => {
  let s: KeystoneTestServer;
  const env = (cloud: 'admin' | 'demo') => openrcEnv(s.authUrl, cloud, s.passwords[cloud]);
  /** `dvrnet ARGS` in this process: { code, out, err }. */
  const dvrnet = (cloud: 'admin' | 'demo', ...argv: string[]) => runDvrnet(env(cloud), argv);
  /** The Value column of a Field/Value table. */
  const field = (table: string, name: string) => {
    const row = table.split('\n').find((l) => l.startsWith(`| ${name} `));
    return row?.split('|')[2].trim();
  };

  before(async () => {
    s = await startKeystoneTestServer();
  });
  after(async () => s?.destroy());

  it("runs steps 2-5 of the walk-through as the scenario types them", async () => {
    const ext = await dvrnet('admin', 'net-create', 'ext-net', '--router:external', '--provider:physical_network', 'external', '--provider:network_type', 'flat');
    assert.equal(ext.code, 0, ext.err);
    assert.match(ext.out, /^Created a new network:\n\+-+\+-+\+\n\| Field +\| Value +\|/);
    assert.equal(field(ext.out, 'status'), 'ACTIVE');
    assert.equal(field(ext.out, 'router:external'), 'True');
    assert.equal(field(ext.out, 'provider:segmentation_id'), '');
    assert.equal(field(ext.out, 'provider:network_type'), 'flat');

    const sub = await dvrnet('admin', 'subnet-create', 'ext-net', '203.0.113.0/24', '--allocation-pool', 'start=203.0.113.101,end=203.0.113.200', '--disable-dhcp', '--gateway', '203.0.113.1');
    assert.equal(sub.code, 0, sub.err);
    assert.match(sub.out, /^Created a new subnet:/);
    assert.equal(field(sub.out, 'allocation_pools'), '{"start": "203.0.113.101", "end": "203.0.113.200"}');
    assert.equal(field(sub.out, 'enable_dhcp'), 'False');

    const project = await dvrnet('admin', 'project-show', 'demo');
    assert.equal(project.code, 0, project.err);
    const demoId = field(project.out, 'id')!;
    assert.match(demoId, /^[0-9a-f]{32}$/);
    assert.equal((await dvrnet('admin', 'project-show', 'demo', '-f', 'value', '-c', 'id')).out, demoId);

    const dn = await dvrnet('admin', 'net-create', 'demo-net', '--tenant-id', demoId, '--provider:network_type', 'vxlan');
    assert.equal(dn.code, 0, dn.err);
    assert.equal(field(dn.out, 'provider:segmentation_id'), '1');
    assert.equal(field(dn.out, 'tenant_id'), demoId);

    const ds = await dvrnet('demo', 'subnet-create', 'demo-net', '--name', 'demo-subnet', '--gateway', '192.168.1.1', '192.168.1.0/24');
    assert.equal(ds.code, 0, ds.err);
    assert.equal(field(ds.out, 'allocation_pools'), '{"start": "192.168.1.2", "end": "192.168.1.254"}');
    assert.equal(field(ds.out, 'enable_dhcp'), 'True');
    assert.equal(field(ds.out, 'name'), 'demo-subnet');

    // demo's view: both networks, no provider attributes, no tenant_id column
    const list = await dvrnet('demo', 'net-list');
    assert.match(list.out.split('\n')[1], /^\| id +\| name +\| subnets +\|$/);
    assert.match(list.out, /\| demo-net \| [0-9a-f-]{36} 192\.168\.1\.0\/24 +\|/);
    const shown = await dvrnet('demo', 'net-show', 'demo-net');
    assert.equal(field(shown.out, 'provider:network_type'), undefined);
    // admin's view adds the owner
    assert.match((await dvrnet('admin', 'net-list')).out.split('\n')[1], /^\| id +\| name +\| tenant_id +\| subnets +\|$/);

    const json = JSON.parse((await dvrnet('demo', 'subnet-list', '-f', 'json')).out);
    assert.deepEqual(json.map((x: any) => x.name).sort(), ['', 'demo-subnet']);
    assert.equal((await dvrnet('demo', 'net-list', '-f', 'value', '-c', 'name', '--name', 'demo-net')).out, 'demo-net');
  });

  it('prints the server\'s message and exits 1 on errors', async () => {
    const policy = await dvrnet('demo', 'net-create', 'x', '--provider:network_type', 'vxlan');
    assert.deepEqual([policy.code, policy.err], [1, '(rule:create_network:provider:network_type) is disallowed by policy']);
    const other = await dvrnet('demo', 'net-create', 'x', '--tenant-id', 'someone');
    assert.equal(other.code, 1);
    assert.match(other.err, /requires admin privileges/);
    const missing = await dvrnet('demo', 'net-show', 'nope');
    assert.deepEqual([missing.code, missing.err], [1, "Unable to find network with name or id 'nope'"]);
    const del = await dvrnet('demo', 'net-delete', 'nope');
    assert.deepEqual([del.code, del.err], [1, "Unable to find network(s) with id(s) 'nope'."]);
    const out: string[] = [];
    const bad = await runClient(['net-list'], { env: { ...env('demo'), OS_PASSWORD: 'wrong' }, out: (t) => out.push(t), err: (t) => out.push(t) });
    assert.equal(bad, 1);
    assert.equal(out.join(), 'The request you have made requires authentication. (HTTP 401)');
    const usage = await dvrnet('demo', 'subnet-create', 'demo-net');
    assert.equal(usage.code, 2);
    assert.match(usage.err, /the following arguments are required: CIDR/);
  });

  it('creates, updates and deletes ports and security group rules', async () => {
    const sg = await dvrnet('demo', 'security-group-create', 'web', '--description', 'web servers');
    assert.equal(sg.code, 0, sg.err);
    assert.match(sg.out, /^Created a new security_group:/);
    const rule = await dvrnet('demo', 'security-group-rule-create', 'web', '--protocol', 'tcp', '--port-range-min', '22', '--port-range-max', '22', '--remote-ip-prefix', '0.0.0.0/0');
    assert.equal(rule.code, 0, rule.err);
    const rules = await dvrnet('demo', 'security-group-rule-list', '-f', 'json');
    const mine = JSON.parse(rules.out).filter((r: any) => r.security_group === 'web');
    assert.deepEqual(mine.map((r: any) => `${r.direction} ${r['port/protocol']} ${r.remote}`).sort(), ['egress any any', 'egress any any', 'ingress 22/tcp 0.0.0.0/0 (CIDR)']);

    const port = await dvrnet('demo', 'port-create', 'demo-net', '--name', 'vm1', '--security-group', 'web', '--fixed-ip', 'subnet_id=demo-subnet,ip_address=192.168.1.10');
    assert.equal(port.code, 0, port.err);
    assert.match(field(port.out, 'fixed_ips')!, /"ip_address": "192\.168\.1\.10"/);
    const upd = await dvrnet('demo', 'port-update', 'vm1', '--name', 'vm1b');
    assert.deepEqual([upd.code, upd.out], [0, 'Updated port: vm1']);
    assert.equal((await dvrnet('demo', 'port-list', '-f', 'value', '-c', 'name')).out, 'vm1b');
    const del = await dvrnet('demo', 'port-delete', 'vm1b');
    assert.deepEqual([del.code, del.out], [0, 'Deleted port(s): vm1b']);
    assert.equal((await dvrnet('demo', 'port-list')).out, '');
  });

  it('prints the credentials of a cloud from the configuration', async () => {
    const conf = join(s.dir, 'neutron.conf');
    const r = await dvrnet('demo', 'credentials', 'demo', '--config-file', conf);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^export OS_AUTH_URL=http:\/\/127\.0\.0\.1:0\/v3$/m);
    assert.match(r.out, /^export OS_USERNAME=demo$/m);
    assert.match(r.out, /^export OS_PASSWORD=demo-secret$/m);
    assert.match(r.out, /^export OS_PROJECT_NAME=demo$/m);
    assert.match(r.out, /^export OS_PROJECT_DOMAIN_NAME=Default$/m);
    assert.equal((await dvrnet('demo', 'credentials', 'nobody', '--config-file', conf)).code, 2);
  });

  it('runs as a program: exit status and output of the real binary', async () => {
    const main = join(import.meta.dirname, 'main.ts');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', main, 'net-list', '-f', 'value', '-c', 'name'], { env: { ...process.env, ...env('demo') } });
    assert.deepEqual(stdout.trim().split('\n').sort(), ['demo-net', 'ext-net']);
    await assert.rejects(run(process.execPath, ['--import', 'tsx', main, 'net-show', 'nope'], { env: { ...process.env, ...env('demo') } }), (e: any) => {
      assert.equal(e.code, 1);
      assert.equal(e.stderr.trim(), "Unable to find network with name or id 'nope'");
      return true;
    });
  });
});
