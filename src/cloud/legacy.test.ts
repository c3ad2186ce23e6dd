// A centralized router (`distributed: false`) in the all-in-one cloud on the emulated
// dataplane: scheduled to network1's dvr_snat agent, realised there as Neutron's legacy
// router (qrouter- with qr- and qg-), its interface ports bound to network1 and announced
// by l2population. East-west between compute1 and compute2 is routed on network1, and so
// are SNAT and the floating IP (the classic design DVR replaces: spec section 1).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { client, type As, ok } from '../api/testing.js';
import type { Instance } from '../compute/compute.js';
import { echoReplied } from '../dataplane/emulated/ping.js';
import type { TraceRecord } from '../trace/record.js';
import { startCloud, type Cloud } from './cloud.js';
import { makeScenario } from './testing.js';
import { itemsOf } from '../host/chunks.js';

const demo: As = { project: 'demo' };

describe('a centralized router in the all-in-one cloud (emulated)', () => {
  let cloud: Cloud;
  let dir: string;
  let call: ReturnType<typeof client>;
  const ids: Record<string, any> = {};
  let vm1: Instance, vm2: Instance;
  const hostsOf = (rec: TraceRecord) => [...new Set(rec.steps.map((s) => s.host))];
  const routedIn = (rec: TraceRecord, host: string, ns: string) => rec.steps.some((s) => s.host === host && s.ns === ns && s.kind === 'route');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dvrnet-legacy-'));
    cloud = await startCloud({ stateDir: dir, apiPort: 0, identityPort: 0, computePort: 0, auth: 'noauth', resyncInterval: 0 });
    call = client(cloud.servers.api.url);
    // The scenario's resources with the router centralized (only an admin may ask for one while router_distributed = True).
    const made = await makeScenario(cloud, { floatingIp: false, distributed: false });
    Object.assign(ids, made.ids);
    ({ vm1, vm2 } = made);
    assert.equal(ids.router.distributed, false);
    await cloud.settle();
    for (const vm of [vm1, vm2]) assert.ok(cloud.compute.dhcp(vm), `${vm.name} gets a DHCP lease`);
    await cloud.settle();
  });
  after(async () => {
    await cloud?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lives on network1 only: qrouter- with qr- per interface and qg-, ports bound there and ACTIVE', async () => {
    assert.equal(vm1.host, 'compute1');
    assert.equal(vm2.host, 'compute2');
    const qrouter = `qrouter-${ids.router.id}`;
    assert.ok((await cloud.dataplane.namespaces('network1')).includes(qrouter));
    assert.ok(!(await cloud.dataplane.namespaces('network1')).includes(`snat-${ids.router.id}`), 'no snat- namespace: the qrouter does the SNAT');
    for (const h of ['compute1', 'compute2']) assert.ok(!(await cloud.dataplane.namespaces(h)).includes(qrouter), `no qrouter on ${h}`);
    const ports = (await ok(call('GET', `/v2.0/ports?device_id=${ids.router.id}`))).ports;
    const itfs = ports.filter((p: any) => p.device_owner === 'network:router_interface');
    assert.equal(itfs.length, 2);
    assert.ok(!ports.some((p: any) => p.device_owner === 'network:router_centralized_snat'));
    for (const p of ports) {
      assert.equal(p['binding:host_id'], 'network1', `${p.device_owner} bound to network1`);
      assert.equal(p.status, 'ACTIVE', `${p.device_owner} ACTIVE (the OVS agent on network1 wired it)`);
    }
    const ns = cloud.world.host('network1').namespaces.get(qrouter)!;
    for (const p of itfs) {
      const dev = ns.devices.get(`qr-${p.id.slice(0, 11)}`);
      assert.ok(dev, `qr- of ${p.fixed_ips[0].ip_address}`);
      assert.equal(dev.mac, p.mac_address, "the qr- device carries the interface port's MAC");
    }
    const gw = ports.find((p: any) => p.device_owner === 'network:router_gateway');
    assert.ok(ns.devices.get(`qg-${gw.id.slice(0, 11)}`), 'qg- in the qrouter namespace');
    // l2population told each compute where the interface on its instance's network is: a
    // unicast flow for the qr- MAC on its br-tun.
    for (const [h, net] of [['compute1', ids.net1.id], ['compute2', ids.net2.id]]) {
      const tun = (await cloud.nodes.get(h)!.composer.current()).ovs.bridges['br-tun'];
      const mac = itfs.find((p: any) => p.network_id === net).mac_address;
      assert.ok(itemsOf(tun.flows).some((f) => f.match.includes(mac) || f.actions.includes(mac)), `${h} br-tun knows ${mac}`);
    }
  });

  it('east-west vm1 (compute1) <-> vm2 (compute2) is routed in network1\'s qrouter', () => {
    const from = { host: 'compute1', ns: 'vm1' };
    cloud.world.ping(from, vm2.fixed_ip); // warms the ARP caches
    const rec = cloud.world.ping(from, vm2.fixed_ip, { seq: 2 });
    assert.ok(echoReplied(rec, from), 'vm2 answers vm1');
    assert.deepEqual(hostsOf(rec).filter((h) => ['compute1', 'network1', 'compute2'].includes(h)).sort(), ['compute1', 'compute2', 'network1']);
    assert.ok(routedIn(rec, 'network1', `qrouter-${ids.router.id}`), "routed in network1's qrouter");
    assert.ok(!routedIn(rec, 'compute1', `qrouter-${ids.router.id}`) && !routedIn(rec, 'compute2', `qrouter-${ids.router.id}`), 'no compute node routes it');
    const vni = ids.net2['provider:segmentation_id'];
    const toVm2 = rec.steps.filter((s) => s.kind === 'wire' && s.before.encap?.kind === 'vxlan' && s.before.ip?.src === '10.0.1.21' && s.before.ip?.dst === '10.0.1.32');
    assert.ok(toVm2.length > 0 && toVm2.every((s) => s.before.encap?.kind === 'vxlan' && s.before.encap.vni === vni), `network1 -> compute2 in VXLAN with network 2's VNI ${vni}`);
  });

  it("fixed IP only -> outside: SNAT to the router's gateway address in network1's qrouter", async () => {
    const rec = cloud.world.ping({ host: 'compute2', ns: 'vm2' }, cloud.topology.outside.host);
    assert.ok(echoReplied(rec, { host: 'compute2', ns: 'vm2' }), 'the outside host answers');
    const router = (await ok(call('GET', `/v2.0/routers/${ids.router.id}`))).router;
    const gwIp = router.external_gateway_info.external_fixed_ips[0].ip_address;
    assert.equal(rec.delivered.find((d) => d.host === 'internet')?.frame.ip?.src, gwIp, 'seen outside with the gateway address');
    assert.ok(rec.steps.some((s) => s.host === 'network1' && s.ns === `qrouter-${ids.router.id}` && s.kind === 'netfilter'), 'NAT in qrouter-');
  });

  it("outside -> floating IP: DNAT in network1's qrouter, reply SNATed to the floating IP", async () => {
    const fip = (await ok(call('POST', '/v2.0/floatingips', { floatingip: { floating_network_id: ids.ext.id, port_id: vm1.port_id } }, demo), 201)).floatingip;
    await cloud.settle();
    const rec = cloud.world.ping({ host: 'internet' }, fip.floating_ip_address);
    assert.ok(echoReplied(rec, { host: 'internet' }), 'the floating IP answers');
    const dnat = rec.steps.filter((s) => s.host === 'network1' && s.ns === `qrouter-${ids.router.id}` && s.before.ip?.dst === fip.floating_ip_address && s.after?.ip?.dst === vm1.fixed_ip);
    assert.ok(dnat.length > 0, 'DNAT to the fixed IP in qrouter on network1');
    assert.equal(rec.delivered.find((d) => d.host === 'internet' && d.frame.l4?.kind === 'icmp')?.frame.ip?.src, fip.floating_ip_address);
    assert.ok(!(await cloud.dataplane.namespaces('compute1')).some((n) => n.startsWith('fip-')), 'no fip- namespace for a centralized router');
    assert.equal((await ok(call('GET', `/v2.0/floatingips/${fip.id}`, undefined, demo))).floatingip.status, 'ACTIVE');
  });
});
