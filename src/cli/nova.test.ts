// The nova-style and dataplane commands against a small all-in-one cloud (keystone auth,
// the compute API from the catalog): boot/list/show/delete as novaclient prints them,
// secgroup-add-rule's translation into a network API rule, floating-ip-associate, and what
// the dataplane endpoints give to exec ping, trace, netns and dump-flows. Whether packets
// pass is the agents' business (src/cloud tests); here: the commands' forms and effects.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startCloud, type Cloud } from '../cloud/cloud.js';
import { parsePing } from './commands/dataplane.js';
import { openrcEnv, runDvrnet } from './testing.js';

const exec = promisify(execFile);
const haveNova = await exec('nova', ['--version']).then(
  () => true,
  () => false,
);

describe('dvrnet nova-style and dataplane commands on an all-in-one cloud', () => {
  let cloud: Cloud;
  let dir: string;
  const env = (who: 'admin' | 'demo') =>
    openrcEnv(cloud.servers.identity!.authUrl, who, who === 'admin' ? cloud.conf.identity!.admin_password! : cloud.conf.identity!.demo_password!);
  const dvrnet = (who: 'admin' | 'demo', ...argv: string[]) => runDvrnet(env(who), argv);
  const ok = async (who: 'admin' | 'demo', ...argv: string[]) => {
    const r = await dvrnet(who, ...argv);
    assert.equal(r.code, 0, `dvrnet ${argv.join(' ')}: ${r.err}`);
    return r.out;
  };
  const prop = (table: string, name: string) => table.split('\n').find((l) => l.startsWith(`| ${name} `))?.split('|')[2].trim();
  const ids: Record<string, string> = {};

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dvrnet-cli-nova-'));
    cloud = await startCloud({ stateDir: dir, etcDir: join(import.meta.dirname, '../../etc'), apiPort: 0, identityPort: 0, computePort: 0 });
    await cloud.settle();
    const demoId = await ok('admin', 'project-show', 'demo', '-c', 'id', '-f', 'value');
    await ok('admin', 'net-create', 'ext-net', '--router:external', '--provider:physical_network', 'external', '--provider:network_type', 'flat');
    await ok('admin', 'subnet-create', 'ext-net', '203.0.113.0/24', '--allocation-pool', 'start=203.0.113.101,end=203.0.113.200', '--disable-dhcp', '--gateway', '203.0.113.1');
    await ok('admin', 'net-create', 'demo-net', '--tenant-id', demoId, '--provider:network_type', 'vxlan');
    await ok('demo', 'subnet-create', 'demo-net', '--name', 'demo-subnet', '--gateway', '192.168.1.1', '192.168.1.0/24');
    await ok('demo', 'router-create', 'demo-router');
    await ok('demo', 'router-interface-add', 'demo-router', 'demo-subnet');
    await ok('demo', 'router-gateway-set', 'demo-router', 'ext-net');
    ids.net = await ok('demo', 'net-show', 'demo-net', '-c', 'id', '-f', 'value');
    ids.router = await ok('demo', 'router-show', 'demo-router', '-c', 'id', '-f', 'value');
  });
  after(async () => {
    await cloud?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('boot prints the Property/Value table; the instance gets a port on demo-net', async () => {
    const out = await ok('demo', 'boot', '--flavor', 'm1.tiny', '--image', 'cirros', '--nic', `net-id=${ids.net}`, '--security-group', 'default', 'demo-instance1');
    assert.match(out.split('\n')[1], /^\| Property +\| Value +\|$/);
    assert.equal(prop(out, 'name'), 'demo-instance1');
    assert.equal(prop(out, 'flavor'), 'm1.tiny');
    assert.equal(prop(out, 'image'), 'cirros');
    assert.equal(prop(out, 'security_groups'), 'default');
    assert.match(prop(out, 'demo-net network')!, /^192\.168\.1\.\d+$/);
    assert.equal(prop(out, 'addresses'), undefined, 'addresses become "<net> network" rows');
    assert.equal(prop(out, 'OS-EXT-SRV-ATTR:host'), undefined, 'the host is for admins');
    ids.server = prop(out, 'id')!;
    ids.fixed = prop(out, 'demo-net network')!;
    // Properties sorted as novaclient's print_dict
    const keys = out.split('\n').slice(3, -1).map((l) => l.split('|')[1].trim());
    assert.deepEqual(keys, [...keys].sort());
    const ports = JSON.parse(await ok('demo', 'port-list', '--device_id', ids.server, '-f', 'json', '-c', 'fixed_ips'));
    assert.equal(ports.length, 1);
    assert.equal(ports[0].fixed_ips[0].ip_address, ids.fixed);
    // an admin sees where it runs
    const shown = await ok('admin', 'show', 'demo-instance1');
    assert.equal(prop(shown, 'OS-EXT-SRV-ATTR:host'), 'compute1');
    assert.equal(prop(shown, 'id'), ids.server);
  });

  it('secgroup-add-rule: icmp -1 -1 is any ICMP, tcp 22 22 a port range, printed as nova does', async () => {
    const icmp = await ok('demo', 'secgroup-add-rule', 'default', 'icmp', '-1', '-1', '0.0.0.0/0');
    assert.equal(
      icmp,
      [
        '+-------------+-----------+---------+-----------+--------------+',
        '| IP Protocol | From Port | To Port | IP Range  | Source Group |',
        '+-------------+-----------+---------+-----------+--------------+',
        '| icmp        | -1        | -1      | 0.0.0.0/0 |              |',
        '+-------------+-----------+---------+-----------+--------------+',
      ].join('\n'),
    );
    const ssh = await ok('demo', 'secgroup-add-rule', 'default', 'tcp', '22', '22', '0.0.0.0/0');
    assert.match(ssh, /\| tcp +\| 22 +\| 22 +\| 0\.0\.0\.0\/0 \|/);
    const rules = JSON.parse(await ok('demo', 'security-group-rule-list', '-f', 'json'));
    const ingress = rules.filter((r: any) => r.security_group === 'default' && r.remote === '0.0.0.0/0 (CIDR)').map((r: any) => r['port/protocol']);
    assert.deepEqual(ingress.sort(), ['22/tcp', 'icmp']);
    const bad = await dvrnet('demo', 'secgroup-add-rule', 'default', 'tcp', '80', '22', '0.0.0.0/0');
    assert.deepEqual([bad.code, bad.err], [1, 'Invalid port range 80-22: FROM_PORT is greater than TO_PORT']);
    const dup = await dvrnet('demo', 'secgroup-add-rule', 'default', 'tcp', '22', '22', '0.0.0.0/0');
    assert.equal(dup.code, 1);
    assert.match(dup.err, /already exists/i);
  });

  it('floating-ip-associate by address; list shows demo-net=<fixed>, <floating>', async () => {
    await ok('demo', 'floatingip-create', 'ext-net');
    assert.equal(await ok('demo', 'floating-ip-associate', 'demo-instance1', '203.0.113.102'), '');
    const fip = JSON.parse(await ok('demo', 'floatingip-list', '-f', 'json'))[0];
    assert.equal(fip.fixed_ip_address, ids.fixed);
    const list = await ok('demo', 'list');
    const lines = list.split('\n');
    assert.match(lines[1], /^\| ID +\| Name +\| Status +\| Task State \| Power State \| Networks +\|$/);
    assert.match(list, new RegExp(`\\| ${ids.server} \\| demo-instance1 \\| (ACTIVE|BUILD) +\\| [^|]+\\| [^|]+\\| demo-net=${ids.fixed.replace(/\./g, '\\.')}, 203\\.0\\.113\\.102 \\|`));
    const nope = await dvrnet('demo', 'floating-ip-associate', 'demo-instance1', '203.0.113.199');
    assert.deepEqual([nope.code, nope.err], [1, "No floating IP with address '203.0.113.199' found."]);
    const noServer = await dvrnet('demo', 'floating-ip-associate', 'ghost', '203.0.113.102');
    assert.deepEqual([noServer.code, noServer.err], [1, "No server with a name or ID of 'ghost' exists."]);
  });

  it('exec ping prints ping\'s summary; its exit status says whether every echo came back', async () => {
    const r = await dvrnet('demo', 'exec', 'demo-instance1', 'ping', '-c', '3', '192.168.1.1');
    const lines = r.out.split('\n');
    assert.equal(lines[0], 'PING 192.168.1.1 (192.168.1.1) 56(84) bytes of data.');
    assert.equal(lines[2], '--- 192.168.1.1 ping statistics ---');
    const m = /^3 packets transmitted, (\d) received, (\d+)% packet loss$/.exec(lines[3]);
    assert.ok(m, lines[3]);
    assert.equal(r.code, m[1] === '3' ? 0 : 1);
    // an address nobody has: every echo lost, exit status 1
    const lost = await dvrnet('demo', 'exec', 'demo-instance1', 'ping', '-c2', '192.168.1.250');
    assert.equal(lost.out.split('\n')[3], '2 packets transmitted, 0 received, 100% packet loss');
    assert.equal(lost.code, 1);
    const other = await dvrnet('demo', 'exec', 'demo-instance1', 'ssh', 'x');
    assert.deepEqual([other.code, other.err], [1, 'ssh: not available on the console of an emulated instance (only ping)']);
    const ghost = await dvrnet('demo', 'exec', 'ghost', 'ping', '192.168.1.1');
    assert.equal(ghost.code, 1);
    assert.match(ghost.err, /ghost/);
    // a member may not start from a host
    const host = await dvrnet('demo', 'exec', 'compute1', 'ping', '192.168.1.1');
    assert.equal(host.code, 1);
  });

  it('parses ping\'s command line as ping does', () => {
    assert.deepEqual(parsePing(['8.8.8.8']), { count: 4, dst: '8.8.8.8' });
    assert.deepEqual(parsePing(['-c', '2', '8.8.8.8']), { count: 2, dst: '8.8.8.8' });
    assert.deepEqual(parsePing(['8.8.8.8', '-c5']), { count: 5, dst: '8.8.8.8' });
    assert.throws(() => parsePing(['-c', 'x', '1.1.1.1']), /invalid argument: 'x'/);
    assert.throws(() => parsePing(['-W', '1', '1.1.1.1']), /option '-W'/);
    assert.throws(() => parsePing([]), /Destination address required/);
  });

  it('trace: text by default, the record with --json; options checked', async () => {
    const text = await ok('demo', 'trace', 'demo-instance1', '192.168.1.1');
    assert.match(text, /^compute1:/m, 'the first step is on the instance\'s host');
    const json = JSON.parse(await ok('demo', 'trace', 'demo-instance1', '192.168.1.1', '--json'));
    assert.ok(Array.isArray(json.steps) && json.steps.length > 0);
    assert.equal(json.steps[0].host, 'compute1');
    const udp = JSON.parse(await ok('admin', 'trace', 'internet', '203.0.113.102', '--proto', 'udp', '--dport', '53', '--json'));
    assert.equal(udp.steps[0].host, 'internet');
    const bad = await dvrnet('demo', 'trace', 'demo-instance1', '192.168.1.1', '--proto', 'sctp');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /argument --proto: invalid choice: 'sctp'/);
    const icmpPort = await dvrnet('demo', 'trace', 'demo-instance1', '192.168.1.1', '--dport', '22');
    assert.equal(icmpPort.code, 2);
  });

  it('netns and dump-flows: a host\'s namespaces and a bridge\'s flows, for admins', async () => {
    const ns = await ok('admin', 'netns', '--host', 'network1');
    const names = ns.split('\n');
    assert.deepEqual(names, [...names].sort());
    assert.ok(names.includes(`qrouter-${ids.router}`), ns);
    assert.ok(names.includes(`snat-${ids.router}`), ns);
    const c1 = (await ok('admin', 'netns', '--host', 'compute1')).split('\n');
    assert.ok(c1.includes(`qrouter-${ids.router}`), c1.join(' '));
    const member = await dvrnet('demo', 'netns', '--host', 'network1');
    assert.deepEqual([member.code, member.err], [1, 'Policy does not allow this request: admin only']);
    const nohost = await dvrnet('admin', 'netns', '--host', 'nowhere');
    assert.deepEqual([nohost.code, nohost.err], [1, 'No host nowhere']);

    const flows = (await ok('admin', 'dump-flows', '--host', 'compute1', '--bridge', 'br-int')).split('\n');
    assert.ok(flows.length > 3);
    for (const f of flows) assert.match(f, /^ cookie=0x[0-9a-f]+, duration=[\d.]+s, table=\d+, n_packets=\d+, n_bytes=\d+, .*priority=\d+.* actions=/);
    assert.equal((await ok('admin', 'dump-flows', '--host', 'compute1', 'br-tun')).split('\n')[0].slice(0, 8), ' cookie=');
    // (the compute API answers 500 for a missing bridge today rather than its 404 message)
    const nobr = await dvrnet('admin', 'dump-flows', '--host', 'compute1', '--bridge', 'br-nope');
    assert.equal(nobr.code, 1);
    const usage = await dvrnet('admin', 'dump-flows', '--bridge', 'br-int');
    assert.equal(usage.code, 2);
  });

  it('prints nova list as the real nova client does', { skip: haveNova ? undefined : 'nova CLI not installed' }, async () => {
    const nova = async (...args: string[]) => (await exec('nova', args, { env: { ...process.env, OS_CLOUD: '', ...env('demo') } })).stdout.replace(/\n$/, '');
    assert.equal(await ok('demo', 'list'), await nova('list'));
  });

  it('delete, and the errors of a missing server', async () => {
    const missing = await dvrnet('demo', 'show', 'ghost');
    assert.deepEqual([missing.code, missing.err], [1, "No server with a name or ID of 'ghost' exists."]);
    const badNic = await dvrnet('demo', 'boot', '--flavor', 'x', '--image', 'y', '--nic', 'port-id=z', 'vm');
    assert.equal(badNic.code, 2);
    const noNet = await dvrnet('demo', 'boot', '--flavor', 'x', '--image', 'y', '--nic', 'net-id=nowhere', 'vm');
    assert.deepEqual([noNet.code, noNet.err], [1, "Unable to find network with name or id 'nowhere'"]);
    const placed = await dvrnet('demo', 'boot', '--flavor', 'x', '--image', 'y', '--nic', 'net-id=demo-net', '--availability-zone', 'nova:compute2', 'vm');
    assert.deepEqual([placed.code, placed.err], [1, 'Only an admin may choose the host of an instance']);
    await ok('demo', 'floatingip-disassociate', JSON.parse(await ok('demo', 'floatingip-list', '-f', 'json'))[0].id);
    assert.equal(await ok('demo', 'delete', 'demo-instance1'), 'Request to delete server demo-instance1 has been accepted.');
    assert.equal(await ok('demo', 'list'), ['+----+------+--------+------------+-------------+----------+', '| ID | Name | Status | Task State | Power State | Networks |', '+----+------+--------+------------+-------------+----------+', '+----+------+--------+------------+-------------+----------+'].join('\n'));
    assert.equal(await ok('demo', 'port-list', '--device_id', ids.server), '');
  });
});
