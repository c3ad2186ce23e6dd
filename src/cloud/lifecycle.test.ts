// What the cloud must survive and clean up: agents and the whole process restarting,
// overlapping project networks, spoofing instances, and resources removed in turn.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { client, type As, ok } from '../api/testing.js';
import { diff } from '../host/diff.js';
import type { HostState } from '../host/state.js';
import { startCloud, type Cloud } from './cloud.js';
import { echoReplied } from '../dataplane/emulated/ping.js';
import type { Instance } from '../compute/compute.js';
import { itemsOf } from '../host/chunks.js';

const demo: As = { project: 'demo' };
const other: As = { project: 'other' };

/** Everything on a host that comes from Neutron's agents and the compute service. */
async function snapshot(cloud: Cloud): Promise<Record<string, HostState>> {
  const out: Record<string, HostState> = {};
  for (const [name, n] of cloud.nodes) out[name] = structuredClone(await n.composer.current());
  return out;
}

describe('the all-in-one cloud over its life', () => {
  let cloud: Cloud;
  let dir: string;
  let call: ReturnType<typeof client>;
  const ids: Record<string, any> = {};
  let vm1: Instance, vmOther: Instance;
  const member = (project: string) => ({ projectId: project, userId: project, roles: ['member'], isAdmin: false });
  const start = async () => {
    cloud = await startCloud({ stateDir: dir, apiPort: 0, identityPort: 0, computePort: 0, auth: 'noauth', resyncInterval: 0 });
    call = client(cloud.servers.api.url);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dvrnet-life-'));
    await start();
    ids.ext = (await ok(call('POST', '/v2.0/networks', { network: { name: 'ext-net', 'router:external': true, 'provider:physical_network': 'external', 'provider:network_type': 'flat' } }), 201)).network;
    await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: ids.ext.id, ip_version: 4, cidr: '203.0.113.0/24', allocation_pools: [{ start: '203.0.113.101', end: '203.0.113.200' }], enable_dhcp: false, gateway_ip: '203.0.113.1' } }), 201);
    for (const [who, as] of [['demo', demo], ['other', other]] as const) {
      const net = (await ok(call('POST', '/v2.0/networks', { network: { name: `${who}-net` } }, as), 201)).network;
      const sub = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '192.168.1.0/24' } }, as), 201)).subnet;
      const router = (await ok(call('POST', '/v2.0/routers', { router: { name: `${who}-router` } }, as), 201)).router;
      await ok(call('PUT', `/v2.0/routers/${router.id}/add_router_interface`, { subnet_id: sub.id }, as));
      await ok(call('PUT', `/v2.0/routers/${router.id}`, { router: { external_gateway_info: { network_id: ids.ext.id } } }, as));
      ids[who] = { net, sub, router };
    }
    // Both subnets hold the same addresses (router, SNAT, DHCP) before the instances boot: the
    // DHCP agents' ports come in their own time, and the instances must get the same next one.
    await cloud.settle();
    vm1 = await cloud.compute.boot(member('demo'), { name: 'vm1', network_id: ids.demo.net.id });
    vmOther = await cloud.compute.boot(member('other'), { name: 'vm-other', network_id: ids.other.net.id });
    await cloud.settle();
    cloud.compute.dhcp(vm1);
    cloud.compute.dhcp(vmOther);
    await cloud.settle();
  });
  after(async () => {
    await cloud?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("keeps a second project's overlapping 192.168.1.0/24 apart from the first", () => {
    assert.equal(vm1.fixed_ip, vmOther.fixed_ip, 'the same address in both projects');
    assert.notEqual(vm1.host, vmOther.host);
    const a = cloud.world.ping({ host: vm1.host, ns: 'vm1' }, '192.168.1.1');
    assert.ok(echoReplied(a, { host: vm1.host, ns: 'vm1' }));
    // The gateway vm1 reaches is its own project's router.
    const qrDemo = a.delivered.find((d) => d.host === vm1.host && d.frame.l4?.kind === 'icmp')!;
    assert.ok(qrDemo);
    const routed = a.steps.filter((s) => s.ns?.startsWith('qrouter-'));
    assert.ok(routed.every((s) => s.ns === `qrouter-${ids.demo.router.id}`), "only demo's router sees demo's packets");
    const b = cloud.world.ping({ host: vmOther.host, ns: 'vm-other' }, '192.168.1.1');
    assert.ok(b.steps.filter((s) => s.ns?.startsWith('qrouter-')).every((s) => s.ns === `qrouter-${ids.other.router.id}`));
  });

  it("drops an instance's packets with a forged source MAC or IP", () => {
    const ns = cloud.world.host(vm1.host).ns('vm1');
    const eth0 = ns.device('eth0');
    const frame = (src: string, ip: string) => ({
      eth: { src, dst: 'ff:ff:ff:ff:ff:ff', type: 0x0800 },
      ip: { src: ip, dst: '192.168.1.255', ttl: 64, proto: 17 },
      l4: { kind: 'udp' as const, sport: 1000, dport: 2000 },
    });
    const forgedMac = cloud.world.inject({ host: vm1.host, ns: 'vm1', dev: 'eth0' }, frame('fa:16:3e:de:ad:01', vm1.fixed_ip));
    const forgedIp = cloud.world.inject({ host: vm1.host, ns: 'vm1', dev: 'eth0' }, frame(eth0.mac, '192.168.1.250'));
    for (const rec of [forgedMac, forgedIp]) {
      assert.ok(!rec.steps.some((s) => s.bridge === 'br-int'), 'never reaches br-int');
      assert.ok(rec.dropped.some((d) => d.host === vm1.host), 'dropped on the compute host');
    }
  });

  it('restarting an agent, or the whole process on the same database, restores the same host state', async () => {
    const before = await snapshot(cloud);
    await cloud.restartAgents('compute1');
    await cloud.settle();
    const afterAgent = await snapshot(cloud);
    assert.deepEqual(diff(before.compute1, afterAgent.compute1), [], 'agents restarted on compute1: no change');
    await cloud.close();
    await start();
    await cloud.settle();
    const afterProcess = await snapshot(cloud);
    for (const host of Object.keys(before)) {
      const ops = diff(before[host], afterProcess[host]);
      // The restarted emulated hosts start empty and get everything back from the agents.
      assert.deepEqual(ops.map((o) => o.op), [], `${host} after a process restart`);
    }
    for (const [name, n] of cloud.nodes)
      for (const br of Object.values((await n.composer.current()).ovs.bridges)) {
        const keys = itemsOf(br.flows).map((f) => `${f.table}/${f.priority}/${f.match}`);
        assert.equal(new Set(keys).size, keys.length, `no duplicate flows on ${name} ${br.name}`);
      }
  });

  it('removing the floating IP, the interface and the router leaves no trace on any host', async () => {
    const fip = (await ok(call('POST', '/v2.0/floatingips', { floatingip: { floating_network_id: ids.ext.id, port_id: vm1.port_id } }, demo), 201)).floatingip;
    await cloud.settle();
    const r = ids.demo.router.id;
    const mention = async () => {
      const found: string[] = [];
      for (const [name, n] of cloud.nodes) {
        const s = JSON.stringify(await n.composer.current());
        if (s.includes(r.slice(0, 10))) found.push(`${name}: router`);
        if (s.includes(fip.floating_ip_address)) found.push(`${name}: floating IP`);
      }
      return found;
    };
    assert.ok((await mention()).length > 0, 'the router and floating IP are on the hosts first');
    await ok(call('DELETE', `/v2.0/floatingips/${fip.id}`, undefined, demo), 204);
    await cloud.compute.delete(member('demo'), 'vm1');
    await ok(call('PUT', `/v2.0/routers/${r}`, { router: { external_gateway_info: {} } }, demo));
    await ok(call('PUT', `/v2.0/routers/${r}/remove_router_interface`, { subnet_id: ids.demo.sub.id }, demo));
    await ok(call('DELETE', `/v2.0/routers/${r}`, undefined, demo), 204);
    await cloud.settle();
    assert.deepEqual(await mention(), []);
  });
});
