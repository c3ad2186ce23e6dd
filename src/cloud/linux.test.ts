// The scenario's cloud on the linux dataplane: network1, compute1 and compute2 as namespaces
// with their own Open vSwitch (userspace datapath), the real agents and server, resources
// made through the API, VMs as namespaces running busybox udhcpc, real pings for the
// scenario's flows and real HTTP to the metadata address. Needs root, Open vSwitch, dnsmasq and busybox; skipped otherwise.
// Cleanup runs in after(), failure or not: no namespace of the test may be left.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Instance } from '../compute/compute.js';
import { MetadataAgent } from '../agents/metadata/agent.js';
import { startCloud, type Cloud } from './cloud.js';
import { LinuxDataplane, linuxDataplaneUnavailable } from './linux-dataplane.js';
import { makeScenario } from './testing.js';
import { scenarioTopology } from './topology.js';
import { run } from '../dataplane/linux/exec.js';
import { client, ok } from '../api/testing.js';

const skip = linuxDataplaneUnavailable() ?? false;

describe('the cloud on the linux dataplane (real namespaces, OVS, dnsmasq, ping)', { skip, timeout: 300_000 }, () => {
  const tag = `lc${process.pid % 100000}-`;
  let dir: string;
  let dataplane: LinuxDataplane;
  let cloud: Cloud | undefined;
  let ids: Record<string, any> = {};
  let vm1: Instance, vm2: Instance;
  const myNamespaces = () => (existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(tag)) : []);
  /** Processes whose command line names the test's state directory (OVS daemons, dnsmasq, udhcpc, proxies). */
  const myProcesses = () =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
        } catch {
          return false;
        }
      });
  const topology = scenarioTopology(2);
  topology.nodes = topology.nodes.filter((n) => n.name !== 'controller');
  const start = (dp: LinuxDataplane) => startCloud({ stateDir: dir, topology, dataplane: dp, apiPort: 0, identityPort: 0, computePort: 0, auth: 'noauth', resyncInterval: 10 });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dvrnet-linux-cloud-'));
    dataplane = new LinuxDataplane(join(dir, 'linux'), tag);
    cloud = await start(dataplane);
    ({ ids, vm1, vm2 } = await makeScenario(cloud, { floatingIp: true }));
  });

  after(async () => {
    try {
      await cloud?.close();
    } finally {
      await dataplane?.down();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(myNamespaces(), [], 'no namespace of the test is left');
    assert.deepEqual(myProcesses(), [], 'no process of the test is left');
  });

  /** Packets counted by the nat table's rules with `target` (SNAT, DNAT) in a namespace of the machine. */
  const natPackets = async (netns: string, target: string) => {
    const saved = (await run(['ip', 'netns', 'exec', netns, 'iptables-save', '-c', '-t', 'nat'])).stdout;
    return saved
      .split('\n')
      .filter((l) => l.includes(`-j ${target}`))
      .reduce((n, l) => n + Number(/^\[(\d+):/.exec(l)?.[1] ?? 0), 0);
  };
  const pingOk = async (from: { host: string; ns?: string }, dst: string) => {
    const r = await dataplane.ping(from, dst, 3);
    assert.equal(r.received, r.sent, `ping ${dst} from ${from.host}/${from.ns ?? ''}: ${r.summary}`);
    assert.ok(r.sent > 0, r.summary);
  };

  it('hosts and Neutron namespaces carry the host prefixes; VMs get their fixed IPs from dnsmasq (udhcpc)', async () => {
    assert.equal(vm1.host, 'compute1');
    assert.equal(vm2.host, 'compute2');
    const ns = myNamespaces();
    for (const n of ['network1', 'compute1', 'compute2', 'extrouter', 'internet']) assert.ok(ns.includes(`${tag}${n}`), `${tag}${n} in ${ns.join(' ')}`);
    for (const n of [`network1-snat-${ids.router.id}`, `network1-qdhcp-${ids.net1.id}`, `compute1-qrouter-${ids.router.id}`, `compute1-fip-${ids.ext.id}`, `compute2-qrouter-${ids.router.id}`])
      assert.ok(ns.includes(`${tag}${n}`), `${tag}${n} in ${ns.join(' ')}`);
    await pingOk({ host: 'compute1', ns: 'vm1' }, '192.168.1.1'); // waits for the lease first
    await pingOk({ host: 'compute2', ns: 'vm2' }, '192.168.2.1');
    for (const vm of [vm1, vm2]) assert.equal(cloud!.compute.dhcp(vm)?.ip, vm.fixed_ip, `${vm.name}'s lease`);
    assert.equal(vm1.lease?.router, '192.168.1.1');
  });

  it('instance without a floating IP -> the outside host, SNAT on network1', async () => {
    const snatNs = `${tag}network1-snat-${ids.router.id}`;
    const before = await natPackets(snatNs, 'SNAT');
    await pingOk({ host: 'compute2', ns: 'vm2' }, '198.51.100.10');
    assert.ok((await natPackets(snatNs, 'SNAT')) > before, "the SNAT rule in network1's snat- namespace counted the flow");
  });

  it('outside -> the floating IP (DNAT on compute1)', async () => {
    const qrouter = `${tag}compute1-qrouter-${ids.router.id}`;
    const before = await natPackets(qrouter, 'DNAT');
    await pingOk({ host: 'internet' }, ids.fip.floating_ip_address);
    assert.ok((await natPackets(qrouter, 'DNAT')) > before, "the DNAT rule in compute1's qrouter- namespace counted the flow");
  });

  it("a floating IP moved to an instance on the other host answers at once: its new host's fg- announces it (arping -U)", async () => {
    const call = client(cloud!.servers.api.url);
    const fip = ids.fip.floating_ip_address;
    const egMac = async () => /lladdr (\S+)/.exec((await run(['ip', '-n', `${tag}extrouter`, 'neigh', 'show', fip])).stdout)?.[1];
    const fgMac = async (host: string) => / fg-\S*:.* link\/ether (\S+)/.exec((await run(['ip', '-o', '-n', `${tag}${host}-fip-${ids.ext.id}`, 'link', 'show'])).stdout)?.[1];
    try {
      for (const [vm, host] of [[vm2, 'compute2'], [vm1, 'compute1']] as const) {
        await ok(call('PUT', `/v2.0/floatingips/${ids.fip.id}`, { floatingip: { port_id: vm.port_id } }, { project: 'demo' }));
        await cloud!.settle();
        assert.equal(await egMac(), await fgMac(host), `the outside router learnt ${host}'s fg- MAC from its announcement`);
        await pingOk({ host: 'internet' }, fip);
      }
    } finally {
      await ok(call('PUT', `/v2.0/floatingips/${ids.fip.id}`, { floatingip: { port_id: vm1.port_id } }, { project: 'demo' })).catch(() => undefined);
      await cloud!.settle();
    }
  });

  it('instance 1 <-> instance 2 across compute1 and compute2 (distributed router, VXLAN)', async () => {
    await pingOk({ host: 'compute1', ns: 'vm1' }, vm2.fixed_ip);
    await pingOk({ host: 'compute2', ns: 'vm2' }, vm1.fixed_ip);
  });

  it("instances read their metadata through their router's real proxy (169.254.169.254 -> qrouter REDIRECT -> proxy -> the metadata agent's socket -> the metadata service)", async () => {
    for (const vm of [vm1, vm2]) {
      const metadata = cloud!.nodes.get(vm.host)!.agents.find((a): a is MetadataAgent => a instanceof MetadataAgent);
      assert.ok(metadata, `a metadata agent on ${vm.host}`);
      const served = metadata.statuses.get(200) ?? 0;
      // busybox wget as a cloud image's init would use it (its -T option crashes busybox 1.35: the runner's timeout instead).
      const r = await run(['ip', 'netns', 'exec', dataplane.vmNetns(vm), 'busybox', 'wget', '-q', '-O', '-', 'http://169.254.169.254/openstack/latest/meta_data.json'], { okCodes: [0, 1], timeoutMs: 20_000 });
      assert.equal(r.code, 0, `${vm.name}: wget ${r.stderr}`);
      const doc = JSON.parse(r.stdout) as { uuid: string; name: string; project_id: string };
      assert.equal(doc.uuid, vm.id, `${vm.name}'s meta_data.json names it`);
      assert.equal(doc.name, vm.name);
      assert.equal(metadata.statuses.get(200), served + 1, `the metadata agent on ${vm.host} answered it`);
    }
  });

  it('a restarted cloud (the hosts kept, as after a crash) reconciles: the same namespaces, traffic flows', async () => {
    const before = myNamespaces();
    await cloud!.close();
    cloud = undefined;
    dataplane = new LinuxDataplane(join(dir, 'linux'), tag);
    cloud = await start(dataplane);
    await cloud.settle();
    assert.deepEqual(myNamespaces(), before);
    await pingOk({ host: 'compute1', ns: 'vm1' }, vm2.fixed_ip);
    await pingOk({ host: 'internet' }, ids.fip.floating_ip_address);
  });
});
