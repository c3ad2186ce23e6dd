// The three packet flows of the scenario's section 4, end to end in the all-in-one cloud:
// real server, real agents, emulated hosts. Assertions are on the trace record: which
// hosts and devices the packet crossed and its MACs, VNI and addresses at each point.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { client, type As, ok } from '../api/testing.js';
import type { TraceRecord, TraceStep } from '../trace/record.js';
import { startCloud, type Cloud } from './cloud.js';
import { makeScenario } from './testing.js';
import { echoReplied, ping } from '../dataplane/emulated/ping.js';
import type { Instance } from '../compute/compute.js';

const demo: As = { project: 'demo' };

describe("the scenario's packet flows in the all-in-one cloud", () => {
  let cloud: Cloud;
  let dir: string;
  let call: ReturnType<typeof client>;
  const ids: Record<string, any> = {};
  let vm1: Instance, vm2: Instance;

  const hostsOf = (rec: TraceRecord) => [...new Set(rec.steps.map((s) => s.host))];
  const find = (rec: TraceRecord, pred: (s: TraceStep) => boolean) => rec.steps.filter(pred);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dvrnet-flows-'));
    cloud = await startCloud({ stateDir: dir, apiPort: 0, identityPort: 0, computePort: 0, auth: 'noauth', resyncInterval: 0 });
    call = client(cloud.servers.api.url);
    // The scenario's resources; the ICMP rule comes later (a test shows the floating IP blocked before it).
    const made = await makeScenario(cloud, { floatingIp: false, allowIcmp: false });
    Object.assign(ids, made.ids);
    ({ vm1, vm2 } = made);
    await cloud.settle();
    for (const vm of [vm1, vm2]) assert.ok(cloud.compute.dhcp(vm), `${vm.name} gets a DHCP lease`);
    await cloud.settle();
  });
  after(async () => {
    await cloud?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('places the instances on compute1 and compute2 and gives them their addresses by DHCP', () => {
    assert.equal(vm1.host, 'compute1');
    assert.equal(vm2.host, 'compute2');
    assert.equal(vm1.lease?.ip, vm1.fixed_ip);
    assert.equal(vm1.lease?.router, '192.168.1.1');
    assert.equal(vm1.lease?.mtu, 1450);
  });

  it('4.3 east-west: routed on compute1, TG2 -> D1 on its br-tun, VXLAN with network 2 VNI, D1 -> TG2 on compute2 br-int', async () => {
    const qr = (await ok(call('GET', `/v2.0/ports?device_id=${ids.router.id}&device_owner=network:router_interface_distributed`))).ports;
    const tg2 = qr.find((p: any) => p.fixed_ips[0].subnet_id === ids.sub2.id).mac_address;
    const macs = new Map((await cloud.servers.api.plugin.dvr.hostMacs()).map((m) => [m.host, m.mac_address]));
    const d1 = macs.get('compute1')!;
    // A first ping warms the ARP caches (the underlay's ARP is broadcast on the tunnel segment).
    cloud.world.ping({ host: 'compute1', ns: 'vm1' }, vm2.fixed_ip);
    const rec = cloud.world.ping({ host: 'compute1', ns: 'vm1' }, vm2.fixed_ip, { seq: 2 });
    assert.ok(echoReplied(rec, { host: 'compute1', ns: 'vm1' }), 'vm2 answers vm1');
    assert.ok(!hostsOf(rec).includes('network1'), 'network1 carries no packet of the east-west flow');
    const out = find(rec, (s) => s.host === 'compute1' && s.bridge === 'br-tun' && s.before.eth.src === tg2 && s.after?.eth.src === d1);
    assert.ok(out.length > 0, 'compute1 br-tun replaces the source MAC TG2 with D1');
    const vni = ids.net2['provider:segmentation_id'];
    const onWire = find(rec, (s) => s.kind === 'wire' && s.before.encap?.kind === 'vxlan' && s.before.ip?.src === '10.0.1.31' && s.before.ip?.dst === '10.0.1.32');
    assert.ok(onWire.length > 0 && onWire.every((s) => s.before.encap?.kind === 'vxlan' && s.before.encap.vni === vni), `VXLAN with network 2 VNI ${vni} from compute1 to compute2`);
    assert.equal(onWire[0].before.encap!.inner.eth.src, d1, 'the tunnelled frame carries D1');
    const inbound = find(rec, (s) => s.host === 'compute2' && s.bridge === 'br-int' && s.before.eth.src === d1 && s.after?.eth.src === tg2);
    assert.ok(inbound.length > 0, 'compute2 br-int replaces D1 with TG2');
    assert.ok(find(rec, (s) => s.host === 'compute2' && s.ns === `qrouter-${ids.router.id}` && s.kind === 'route').length > 0, "the reply is routed in compute2's qrouter");
  });

  it("4.1 north-south, fixed IP only: SNAT to TR in network1's snat namespace", () => {
    const rec = cloud.world.ping({ host: 'compute2', ns: 'vm2' }, cloud.topology.outside.host);
    assert.ok(echoReplied(rec, { host: 'compute2', ns: 'vm2' }), 'the outside host answers');
    assert.ok(hostsOf(rec).includes('network1'), 'through the network node');
    const atOutside = rec.delivered.find((d) => d.host === 'internet');
    assert.equal(atOutside?.frame.ip?.src, '203.0.113.101', 'seen outside with source TR');
    assert.ok(find(rec, (s) => s.host === 'network1' && s.ns === `snat-${ids.router.id}` && s.kind === 'netfilter').length > 0, 'SNAT in snat-<router>');
  });

  it('4.2 floating IP: blocked until the ICMP rule, then DNAT/SNAT on compute1 only', async () => {
    const fip = (await ok(call('POST', '/v2.0/floatingips', { floatingip: { floating_network_id: ids.ext.id, port_id: vm1.port_id } }, demo), 201)).floatingip;
    await cloud.settle();
    const before = ping(cloud.world, { host: 'internet' }, fip.floating_ip_address, 1);
    assert.equal(before.received, 0, 'the default group lets no outside ping in');
    const sg = (await ok(call('GET', '/v2.0/security-groups?name=default', undefined, demo))).security_groups[0];
    await ok(call('POST', '/v2.0/security-group-rules', { security_group_rule: { security_group_id: sg.id, direction: 'ingress', protocol: 'icmp', remote_ip_prefix: '0.0.0.0/0' } }, demo), 201);
    await cloud.settle();
    const rec = cloud.world.ping({ host: 'internet' }, fip.floating_ip_address);
    assert.ok(echoReplied(rec, { host: 'internet' }), 'the floating IP answers once ICMP is allowed');
    assert.ok(!hostsOf(rec).includes('network1'), 'network1 carries no packet of the floating-IP flow');
    assert.ok(hostsOf(rec).includes('compute1'));
    const dnat = find(rec, (s) => s.host === 'compute1' && s.ns === `qrouter-${ids.router.id}` && s.before.ip?.dst === fip.floating_ip_address && s.after?.ip?.dst === vm1.fixed_ip);
    assert.ok(dnat.length > 0, 'DNAT to the fixed IP in qrouter on compute1');
    const reply = rec.delivered.find((d) => d.host === 'internet' && d.frame.l4?.kind === 'icmp');
    assert.equal(reply?.frame.ip?.src, fip.floating_ip_address, 'the reply leaves SNATed to the floating IP');
    assert.equal((await ok(call('GET', `/v2.0/floatingips/${fip.id}`, undefined, demo))).floatingip.status, 'ACTIVE');
  });
});
