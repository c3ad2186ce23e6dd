// The linux driver on real Open vSwitch, namespaces and iptables: the hand-written DVR
// testbed (src/dataplane/emulated/testbed.ts) applied to two emulated hosts on this machine,
// instances as namespaces behind their taps, and a real ping east-west through the
// distributed router and a VXLAN tunnel. Needs root and Open vSwitch; skipped otherwise.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMPUTE1, COMPUTE2, computeState, ROUTER_ID, VM1, VM2 } from '../emulated/testbed.js';
import { addDhcpServer, addInternalPort, addLinuxBridge, addNamespace, addRoute } from '../../host/build.js';
import { diff } from '../../host/diff.js';
import { dhcpNamespace, hybridVethOvsEnd, INTEGRATION_BRIDGE, routerInterfaceDevice, routerNamespace, tapDevice } from '../../host/names.js';
import { describeOp } from '../../host/ops.js';
import type { HostState } from '../../host/state.js';
import { run } from './exec.js';
import { LinuxDriver, LinuxDriverError } from './driver.js';
import { bootInstance, pingFrom } from './instance.js';
import { Machine } from './machine.js';
import { UnsafeInputError } from './safety.js';
import { forUserspaceDatapath } from './userspace.js';

const skip =
  process.getuid?.() !== 0
    ? 'needs root (network namespaces, Open vSwitch)'
    : !['/usr/sbin/ovs-vswitchd', '/usr/bin/ovs-vswitchd'].some(existsSync)
      ? 'ovs-vswitchd is not installed (apt-get install openvswitch-switch)'
      : !['/usr/sbin/ethtool', '/sbin/ethtool', '/usr/bin/ping', '/bin/ping'].some(existsSync)
        ? 'ethtool/ping missing'
        : false;

const NET1_ID = 'a1b2c3d4-0001-4aaa-8bbb-000000000001';
const DHCP_PORT = 'e5f6a7b8-0001-4ccc-8ddd-000000000002';

/** compute1 also serves DHCP for net1 from a qdhcp namespace (dnsmasq behind a veth-realised internal port). */
function withDhcp(s: HostState): HostState {
  const ns = dhcpNamespace(NET1_ID);
  const tap = tapDevice(DHCP_PORT);
  s = addNamespace(s, ns);
  s = addInternalPort(s, INTEGRATION_BRIDGE, tap, { namespace: ns, tag: COMPUTE1.lvid.net1, mac: 'fa:16:3e:00:01:02', addresses: ['192.168.1.2/24'] });
  return addDhcpServer(s, {
    id: NET1_ID,
    namespace: ns,
    interface: tap,
    domain: 'openstacklocal',
    lease_time: 86400,
    ranges: [{ tag: 'subnet-1', cidr: '192.168.1.0/24' }],
    hosts: [{ mac: VM1.mac, ip: VM1.ip, hostname: 'host-192-168-1-11' }],
    options: [{ tag: 'subnet-1', option: 3, values: ['192.168.1.1'] }],
  });
}

describe('linux driver on two emulated hosts', { skip }, () => {
  const tag = `dt${process.pid % 100000}-`;
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-linux-'));
  const machine = new Machine(tag, dir);
  const drivers: Record<string, LinuxDriver> = {};
  const states: Record<string, HostState> = {};
  const vmNs = (vm: typeof VM1) => `${tag}${vm.host}-${vm.name}`;

  before(async () => {
    for (const node of [COMPUTE1, COMPUTE2]) {
      const h = await machine.host(node.name, [{ name: 'eth1', segment: 'tunnel', mac: node.nicMac }]);
      drivers[node.name] = new LinuxDriver(h.driverOptions);
      let s = forUserspaceDatapath(computeState(node), { tunnelNic: 'eth1' });
      if (node === COMPUTE1) s = withDhcp(s);
      states[node.name] = s;
    }
    for (const vm of [VM1, VM2]) {
      await bootInstance({ netns: vmNs(vm), hostNetns: machine.hostNetns(vm.host), tap: tapDevice(vm.portId), mac: vm.mac, cidr: `${vm.ip}/24`, gateway: vm.net.gateway });
    }
    for (const n of Object.keys(drivers)) await drivers[n].applyState(states[n]);
  });

  after(async () => {
    await machine.down();
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(machine.namespaces(), [], 'no namespace of the test is left');
  });

  test('instance 1 pings instance 2 east-west (qrouter on each host, VXLAN between them), and back', async () => {
    // The userspace datapath drops the first packet to a tunnel endpoint whose MAC it has not
    // resolved yet (it sends the ARP instead): one echo first, then every echo must pass.
    await pingFrom(vmNs(VM1), VM2.ip, 1).catch(() => '');
    const out = await pingFrom(vmNs(VM1), VM2.ip);
    assert.match(out, /3 received/);
    assert.match(await pingFrom(vmNs(VM2), VM1.ip), /3 received/);
  });

  test('the host reads back as the state applied; applying again does nothing', async () => {
    for (const n of Object.keys(drivers)) {
      const d = diff(await drivers[n].readState(), states[n]);
      assert.deepEqual(d.map(describeOp), [], `${n} reads back differently`);
      assert.deepEqual(await drivers[n].applyState(states[n]), []);
    }
  });

  test('dnsmasq runs in the qdhcp namespace with the hosts file, and a host change reloads it', async () => {
    const ns = `${tag}compute1-${dhcpNamespace(NET1_ID)}`;
    const pids = (await run(['ip', 'netns', 'pids', ns])).stdout.trim().split(/\s+/);
    const cmd = (await run(['cat', `/proc/${pids[0]}/cmdline`])).stdout.split('\0');
    assert.equal(cmd[0], 'dnsmasq');
    assert.ok(cmd.includes(`--interface=${tapDevice(DHCP_PORT)}`));
    const s = states.compute1;
    const server = s.dhcp[NET1_ID];
    const changed: HostState = { ...s, dhcp: { [NET1_ID]: { ...server, hosts: [...server.hosts, { mac: VM2.mac, ip: '192.168.1.12', hostname: 'host-192-168-1-12' }] } } };
    const ops = await drivers.compute1.applyState(changed);
    assert.deepEqual(ops.map(describeOp), [`dhcp.reload ${NET1_ID}`]);
    assert.deepEqual((await run(['ip', 'netns', 'pids', ns])).stdout.trim().split(/\s+/), pids, 'reloaded, not restarted');
    assert.deepEqual(await drivers.compute1.applyState(changed), []);
    await drivers.compute1.applyState(s);
  });

  test('a flow, an iptables rule and an ipset member removed behind its back are restored', async () => {
    const h = machine.hostNetns('compute1');
    const qvo = hybridVethOvsEnd(VM1.portId);
    await run(['ovs-ofctl', '--strict', 'del-flows', `unix:${join(dir, 'compute1', 'br-int.mgmt')}`, `table=60,priority=20,dl_vlan=${COMPUTE1.lvid.net1},dl_dst=${VM1.mac}`]);
    await run(['ip', 'netns', 'exec', h, 'iptables', '-D', 'neutron-openvswi-sg-chain', '-j', 'ACCEPT']);
    await run(['ip', 'netns', 'exec', h, 'ipset', 'del', 'NIPv48e1f0c2a-3b4d-4e5f-a6b7-', VM2.ip]).catch(() => undefined);
    const broken = diff(await drivers.compute1.readState(), states.compute1).map(describeOp);
    assert.ok(broken.includes('flows.update br-int +1 ~0 -0'), broken.join('\n'));
    assert.ok(broken.includes('iptables.restore root filter'), broken.join('\n'));
    const ops = (await drivers.compute1.applyState(states.compute1)).map(describeOp);
    assert.ok(ops.includes('flows.update br-int +1 ~0 -0'));
    assert.deepEqual(diff(await drivers.compute1.readState(), states.compute1), []);
    assert.match(await pingFrom(vmNs(VM2), VM1.ip), /3 received/);
    assert.ok(qvo.startsWith('qvo'));
  });

  test('a failing operation is reported with the operation and the command; the next apply heals', async () => {
    const qr = routerInterfaceDevice(VM1.net.qrPort);
    const bad = addRoute(states.compute1, routerNamespace(ROUTER_ID), { dst: '10.99.0.0/16', via: '10.77.0.1', dev: qr });
    const err = await drivers.compute1.applyState(bad).then(
      () => assert.fail('applied a route through an unreachable gateway'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LinuxDriverError, String(err));
    assert.equal(err.operation.op, 'route.replace');
    assert.match(err.message, /^route\.replace qrouter-/);
    assert.ok(err.command?.includes('10.77.0.1'), err.message);
    assert.match(err.stderr, /gateway|unreachable|Nexthop/i);
    assert.deepEqual(await drivers.compute1.applyState(states.compute1), []);
  });

  test('bad input reaches no command', async () => {
    const s = states.compute1;
    // A device name that `ip` would read as an option: valid for the kernel, refused here.
    const evil = addLinuxBridge(s, '', '-help');
    await assert.rejects(drivers.compute1.applyState(evil), (e: unknown) => e instanceof UnsafeInputError && /"-help"/.test(e.message));
    assert.deepEqual(diff(await drivers.compute1.readState(), s), []);
  });
});
