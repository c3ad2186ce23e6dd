// East-west through the distributed router when the project networks are not all VXLAN:
// the scenario's configuration also serves VLAN project networks (physnet `vlan` on
// br-vlan, the hosts' eth3 joined by the 'vlan' segment) and GRE ones. Neutron routes on
// the source host, leaves the frame with that host's DVR MAC as source (br-vlan t1
// DVR_PROCESS_PHYSICAL for VLAN, br-tun t1 for tunnels) and the destination host's br-int
// puts the gateway MAC back (t0 p4 -> t2 DVR_TO_SRC_MAC_PHYSICAL for VLAN, t0 p2 -> t1 for
// tunnels). Assertions are on the trace record.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { client, type As } from '../api/testing.js';
import type { TraceRecord, TraceStep } from '../trace/record.js';
import { renderTrace } from '../trace/render.js';
import { startCloud, type Cloud } from './cloud.js';
import { echoReplied } from '../dataplane/emulated/ping.js';
import type { Instance } from '../compute/compute.js';

const demo: As = { project: 'demo' };
// Nova places the instances where the test says (an admin may), in the demo project.
const novaAsAdmin = { projectId: 'demo', userId: 'demo', roles: ['member', 'admin'], isAdmin: true };

describe('east-west over VLAN and GRE project networks in the all-in-one cloud', () => {
  let cloud: Cloud;
  let dir: string;
  let call: ReturnType<typeof client>;
  const nets: Record<string, { net: any; sub: any }> = {};
  const vms: Record<string, Instance> = {};
  let routerId: string;
  let dvrMacs: Map<string, string>;
  let gatewayMacs: Map<string, string>; // subnet id -> qr MAC

  const ok = async (p: Promise<{ status: number; body: any }>, status = 200) => {
    const r = await p;
    assert.equal(r.status, status, JSON.stringify(r.body));
    return r.body;
  };
  const hostsOf = (rec: TraceRecord) => [...new Set(rec.steps.map((s) => s.host))];
  const find = (rec: TraceRecord, pred: (s: TraceStep) => boolean) => rec.steps.filter(pred);
  /** Pings twice (the first warms ARP caches) and returns the second trace, rendered into the failure message. */
  const pingAcross = (from: Instance, to: Instance) => {
    cloud.world.ping({ host: from.host, ns: from.name }, to.fixed_ip);
    const rec = cloud.world.ping({ host: from.host, ns: from.name }, to.fixed_ip, { seq: 2 });
    assert.ok(echoReplied(rec, { host: from.host, ns: from.name }), `${to.name} (${to.fixed_ip}) answers ${from.name}:\n${renderTrace(rec)}`);
    assert.ok(!hostsOf(rec).includes('network1'), 'network1 carries no packet of the east-west flow');
    return rec;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dvrnet-segments-'));
    cloud = await startCloud({ stateDir: dir, apiPort: 0, identityPort: 0, computePort: 0, auth: 'noauth', resyncInterval: 0 });
    call = client(cloud.servers.api.url);
    const ext = (await ok(call('POST', '/v2.0/networks', { network: { name: 'ext-net', 'router:external': true, 'provider:physical_network': 'external', 'provider:network_type': 'flat' } }), 201)).network;
    await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: ext.id, ip_version: 4, cidr: '203.0.113.0/24', allocation_pools: [{ start: '203.0.113.101', end: '203.0.113.200' }], enable_dhcp: false, gateway_ip: '203.0.113.1' } }), 201);
    const mk = async (name: string, cidr: string, type?: string) => {
      // Without a type the demo project gets the first of tenant_network_types: vlan.
      const body = type ? call('POST', '/v2.0/networks', { network: { name, tenant_id: 'demo', 'provider:network_type': type } }) : call('POST', '/v2.0/networks', { network: { name } }, demo);
      const created = (await ok(body, 201)).network;
      // provider:* are admin-only attributes: read them back as admin.
      const net = (await ok(call('GET', `/v2.0/networks/${created.id}`))).network;
      const sub = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr, gateway_ip: cidr.replace(/0\/24$/, '1') } }, demo), 201)).subnet;
      nets[name] = { net, sub };
    };
    await mk('vx', '192.168.1.0/24', 'vxlan');
    await mk('vlanA', '192.168.2.0/24');
    await mk('vlanB', '192.168.3.0/24');
    await mk('gre', '192.168.4.0/24', 'gre');
    routerId = (await ok(call('POST', '/v2.0/routers', { router: { name: 'demo-router' } }, demo), 201)).router.id;
    for (const n of Object.values(nets)) await ok(call('PUT', `/v2.0/routers/${routerId}/add_router_interface`, { subnet_id: n.sub.id }, demo));
    await ok(call('PUT', `/v2.0/routers/${routerId}`, { router: { external_gateway_info: { network_id: ext.id } } }, demo));
    // ICMP from anywhere in the default group, and a second group for compute2's instances:
    // compute1's agents then hear nothing about compute2's ports through security groups,
    // only what l2population tells them (a full resync would hide a missing cast).
    const icmpFromAnywhere = (sg: string) => ok(call('POST', '/v2.0/security-group-rules', { security_group_rule: { security_group_id: sg, direction: 'ingress', protocol: 'icmp', remote_ip_prefix: '0.0.0.0/0' } }, demo), 201);
    const defaultSg = (await ok(call('GET', '/v2.0/security-groups?name=default', undefined, demo))).security_groups[0].id;
    await icmpFromAnywhere(defaultSg);
    const farSg = (await ok(call('POST', '/v2.0/security-groups', { security_group: { name: 'far' } }, demo), 201)).security_group.id;
    await icmpFromAnywhere(farSg);
    const place = async (name: string, net: string, host: string) => {
      vms[name] = await cloud.compute.boot(novaAsAdmin, { name, network_id: nets[net].net.id, host, ...(host === 'compute2' ? { security_groups: [farSg] } : {}) });
    };
    const lease = async (names: string[]) => {
      await cloud.settle();
      for (const n of names) assert.ok(cloud.compute.dhcp(vms[n]), `${n} gets a DHCP lease`);
      await cloud.settle();
    };
    // compute1 first and settled; then compute2 becomes a host of the router.
    await place('vm-vx', 'vx', 'compute1');
    await place('vm-vlanA1', 'vlanA', 'compute1');
    await lease(['vm-vx', 'vm-vlanA1']);
    await place('vm-vlanA', 'vlanA', 'compute2');
    await place('vm-vlanB', 'vlanB', 'compute2');
    await place('vm-gre', 'gre', 'compute2');
    await lease(['vm-vlanA', 'vm-vlanB', 'vm-gre']);
    dvrMacs = new Map((await cloud.servers.api.plugin.dvr.hostMacs()).map((m) => [m.host, m.mac_address]));
    const qr = (await ok(call('GET', `/v2.0/ports?device_id=${routerId}&device_owner=network:router_interface_distributed`))).ports;
    gatewayMacs = new Map(qr.map((p: any) => [p.fixed_ips[0].subnet_id, p.mac_address]));
  });
  after(async () => {
    await cloud?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gives the demo project VLAN networks on physnet vlan by default, and a GRE network when asked', () => {
    for (const n of ['vlanA', 'vlanB']) {
      assert.equal(nets[n].net['provider:network_type'], 'vlan');
      assert.equal(nets[n].net['provider:physical_network'], 'vlan');
      const id = nets[n].net['provider:segmentation_id'];
      assert.ok(id >= 100 && id <= 200, `VLAN id ${id} in 100-200`);
    }
    assert.equal(nets.gre.net['provider:network_type'], 'gre');
    assert.deepEqual(
      Object.fromEntries(Object.entries(vms).map(([k, v]) => [k, v.host])),
      { 'vm-vx': 'compute1', 'vm-vlanA': 'compute2', 'vm-vlanA1': 'compute1', 'vm-vlanB': 'compute2', 'vm-gre': 'compute2' },
    );
  });

  /** The VLAN leg: routed on `src`, leaves on eth3 tagged with `net`'s VLAN id and the DVR MAC, restored on `dst`. */
  const assertVlanLeg = (rec: TraceRecord, net: string, src: string, dst: string) => {
    const vlanId = nets[net].net['provider:segmentation_id'];
    const gw = gatewayMacs.get(nets[net].sub.id)!;
    const dvr = dvrMacs.get(src)!;
    const rewrite = find(rec, (s) => s.host === src && s.bridge === 'br-vlan' && s.before.eth.src === gw && s.after?.eth.src === dvr);
    assert.ok(rewrite.length > 0, `${src} br-vlan replaces the gateway MAC ${gw} with its DVR MAC ${dvr}:\n${renderTrace(rec)}`);
    const wire = find(rec, (s) => s.kind === 'wire' && s.before.eth.src === dvr && s.before.vlan !== undefined);
    assert.ok(wire.length > 0, `the routed frame crosses the VLAN wire with source ${dvr}`);
    assert.ok(
      wire.every((s) => s.before.vlan === vlanId),
      `tagged with ${net}'s VLAN id ${vlanId}: ${wire.map((s) => s.before.vlan).join(',')}`,
    );
    const restore = find(rec, (s) => s.host === dst && s.bridge === 'br-int' && s.before.eth.src === dvr && s.after?.eth.src === gw);
    assert.ok(restore.length > 0, `${dst} br-int replaces ${dvr} with the gateway MAC ${gw}`);
  };

  it('vxlan -> vlan across hosts: routed on compute1, over the VLAN wire with the DVR MAC, gateway MAC restored on compute2', () => {
    const rec = pingAcross(vms['vm-vx'], vms['vm-vlanA']);
    assertVlanLeg(rec, 'vlanA', 'compute1', 'compute2');
    // The reply is routed on compute2 onto the VXLAN network.
    const d2 = dvrMacs.get('compute2')!;
    assert.ok(find(rec, (s) => s.kind === 'wire' && s.before.encap?.kind === 'vxlan' && s.before.encap.inner.eth.src === d2).length > 0, 'the reply is tunnelled with D2');
  });

  it('vlan -> vxlan across hosts: the reply comes back over the VLAN wire routed on compute2', () => {
    const rec = pingAcross(vms['vm-vlanA'], vms['vm-vx']);
    assertVlanLeg(rec, 'vlanA', 'compute1', 'compute2');
  });

  it('vlan -> vlan across hosts (two VLAN networks)', () => {
    const rec = pingAcross(vms['vm-vlanA1'], vms['vm-vlanB']);
    assertVlanLeg(rec, 'vlanB', 'compute1', 'compute2');
    assertVlanLeg(rec, 'vlanA', 'compute2', 'compute1');
  });

  it('gre <-> vxlan across hosts: GRE with the network key and D2 as source', () => {
    const rec = pingAcross(vms['vm-vx'], vms['vm-gre']);
    const key = nets.gre.net['provider:segmentation_id'];
    const d1 = dvrMacs.get('compute1')!;
    const gre = find(rec, (s) => s.kind === 'wire' && s.before.encap?.kind === 'gre');
    assert.ok(gre.length > 0, `GRE on the wire:\n${renderTrace(rec)}`);
    assert.ok(gre.some((s) => s.before.encap?.kind === 'gre' && s.before.encap.inner.eth.src === d1), 'the request crosses GRE with D1');
    const gw = gatewayMacs.get(nets.gre.sub.id)!;
    assert.ok(find(rec, (s) => s.host === 'compute2' && s.bridge === 'br-int' && s.before.eth.src === d1 && s.after?.eth.src === gw).length > 0, 'compute2 br-int restores the GRE gateway MAC');
    for (const s of gre) if (s.before.encap?.kind === 'gre') assert.equal(s.before.encap.key, key, 'GRE key = the network segmentation id');
  });

  it("a router's ARP on a tunnel network: br-tun answers it to the DVR MAC, br-int t0 p99 hands the reply to qr-", async () => {
    // Without its permanent neighbour entry (say the L3 agent has not added it yet) compute1's
    // qrouter asks; the request leaves qr- with D1 as source and br-tun's ARP responder answers.
    const qr = (await ok(call('GET', `/v2.0/ports?device_id=${routerId}&network_id=${nets.gre.net.id}&device_owner=network:router_interface_distributed`))).ports[0];
    const qrDev = `qr-${qr.id.slice(0, 11)}`;
    const qrouter = cloud.world.host('compute1').ns(`qrouter-${routerId}`);
    qrouter.delNeigh(qrDev, vms['vm-gre'].fixed_ip);
    const rec = cloud.world.ping({ host: 'compute1', ns: 'vm-vx' }, vms['vm-gre'].fixed_ip, { seq: 3 });
    assert.ok(echoReplied(rec, { host: 'compute1', ns: 'vm-vx' }), `vm-gre answers once the router has resolved it:\n${renderTrace(rec)}`);
    const d1 = dvrMacs.get('compute1')!;
    const answered = find(rec, (s) => s.host === 'compute1' && s.bridge === 'br-tun' && s.table === 21 && s.after?.arp?.op === 2 && s.after.eth.dst === d1);
    assert.ok(answered.length > 0, `compute1 br-tun t21 answers the router's request to ${d1}:\n${renderTrace(rec)}`);
    const handed = find(rec, (s) => s.host === 'compute1' && s.bridge === 'br-int' && s.table === 0 && s.before.eth.dst === d1 && s.after?.eth.dst === qr.mac_address);
    assert.ok(handed.length > 0, `compute1 br-int puts the gateway MAC ${qr.mac_address} back as destination of the reply`);
    assert.ok(qrouter.neighbours().some((n) => n.startsWith(`${vms['vm-gre'].fixed_ip} `) && n.includes(vms['vm-gre'].mac)), 'the router learnt vm-gre');
  });
});
