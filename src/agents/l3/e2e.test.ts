// The L3 agent with the real OVS agent (src/agents/ovs) on the scenario's network1, compute1
// and compute2: tunnels, DVR MACs, the hybrid firewall and the router this agent builds.
// The three flows of scenario section 4 across hosts: 4.1 SNAT through network1, 4.2 the
// floating IP on compute1 only, 4.3 east-west compute1 -> compute2 routed on compute1.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadL3AgentConfig } from '../../config/agents.js';
import { renderTrace } from '../../trace/render.js';
import { Lab, type VmPort } from '../ovs/testing.js';
import { L3Agent } from './agent.js';

const ETC = join(import.meta.dirname, '../../../etc');
const EG = { ip: '203.0.113.1', mac: '52:54:00:cc:00:01' };
const HOSTS = ['network1', 'compute1', 'compute2'];

describe('L3 agent with the OVS agent: the scenario flows across hosts', () => {
  let lab: Lab;
  const l3 = new Map<string, L3Agent>();
  const dirs: string[] = [];
  const ids: Record<string, any> = {};
  let vm1: VmPort;
  let vm2: VmPort;

  const configs = new Map<string, ReturnType<typeof loadL3AgentConfig>>();
  const startL3 = async (h: string) => {
    const agent = new L3Agent({ transport: lab.agentTransport, composer: lab.node(h).composer, config: configs.get(h)!, reportInterval: 0, resyncInterval: 0 });
    await agent.start();
    l3.set(h, agent);
  };

  const settle = async () => {
    for (let round = 0; round < 50; round++) {
      const before = [...l3.values()].reduce((n, a) => n + a.syncs, 0);
      await lab.settle();
      for (const a of l3.values()) await a.idle();
      await lab.settle();
      if ([...l3.values()].reduce((n, a) => n + a.syncs, 0) === before) return;
    }
  };

  before(async () => {
    lab = await Lab.start(HOSTS);
    lab.world.addPlainHost('router', { segment: 'external', ip: `${EG.ip}/24`, mac: EG.mac });
    for (const h of HOSTS) {
      const cwd = mkdtempSync(join(tmpdir(), `dvrnet-l3e2e-${h}-`));
      dirs.push(cwd);
      const files = [join(ETC, 'neutron.conf'), join(ETC, h, 'neutron.conf'), join(ETC, 'l3_agent.ini')];
      if (h === 'network1') files.push(join(ETC, 'network1', 'l3_agent.ini'));
      configs.set(h, loadL3AgentConfig(files, { cwd, warn: () => {} }));
      await startL3(h);
    }
    ids.ext = (await lab.ok('POST', '/v2.0/networks', { network: { name: 'ext-net', 'router:external': true, 'provider:physical_network': 'external', 'provider:network_type': 'flat' } })).network;
    await lab.ok('POST', '/v2.0/subnets', { subnet: { network_id: ids.ext.id, ip_version: 4, cidr: '203.0.113.0/24', allocation_pools: [{ start: '203.0.113.101', end: '203.0.113.200' }], enable_dhcp: false, gateway_ip: EG.ip } });
    ids.n1 = await lab.network('demo-net', '192.168.1.0/24');
    ids.n2 = await lab.network('demo-net2', '192.168.2.0/24');
    ids.router = (await lab.ok('POST', '/v2.0/routers', { router: { name: 'demo-router', tenant_id: 'demo' } })).router;
    for (const n of [ids.n1, ids.n2]) await lab.ok('PUT', `/v2.0/routers/${ids.router.id}/add_router_interface`, { subnet_id: n.subnet.id });
    await lab.ok('PUT', `/v2.0/routers/${ids.router.id}`, { router: { external_gateway_info: { network_id: ids.ext.id } } });
    // The scenario's step 11: ICMP from anywhere in the default group.
    const sg = (await lab.ok('GET', '/v2.0/security-groups?name=default&tenant_id=demo')).security_groups[0];
    await lab.ok('POST', '/v2.0/security-group-rules', { security_group_rule: { security_group_id: sg.id, direction: 'ingress', protocol: 'icmp', remote_ip_prefix: '0.0.0.0/0', tenant_id: 'demo' } });
    vm1 = await lab.vmPort('vm1', ids.n1.net.id, 'compute1', { fixed_ips: [{ subnet_id: ids.n1.subnet.id, ip_address: '192.168.1.11' }] });
    vm2 = await lab.vmPort('vm2', ids.n2.net.id, 'compute2', { fixed_ips: [{ subnet_id: ids.n2.subnet.id, ip_address: '192.168.2.11' }] });
    await lab.plug('compute1', [vm1], { [ids.n1.net.id]: '192.168.1.1' });
    await lab.plug('compute2', [vm2], { [ids.n2.net.id]: '192.168.2.1' });
    await settle();
    const ports = (await lab.ok('GET', `/v2.0/ports?device_id=${ids.router.id}`)).ports;
    ids.qg = ports.find((p: any) => p.device_owner === 'network:router_gateway');
    ids.tg1 = ports.find((p: any) => p.device_owner === 'network:router_interface_distributed' && p.network_id === ids.n1.net.id);
  });
  after(async () => {
    for (const a of l3.values()) await a.stop();
    await lab?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('4.1: vm1 (compute1) reaches the outside through network1 SNAT as 203.0.113.101', () => {
    lab.world.ping({ host: 'compute1', ns: 'vm1' }, EG.ip);
    const rec = lab.world.ping({ host: 'compute1', ns: 'vm1' }, EG.ip, { seq: 2 });
    const snat = rec.steps.find((s) => s.host === 'network1' && s.kind === 'netfilter' && s.ns?.startsWith('snat-') && s.table === 'POSTROUTING' && s.after);
    assert.ok(snat, renderTrace(rec));
    assert.match(snat.action, /src 192.168.1.11->203.0.113.101/);
    const at = rec.delivered.find((d) => d.host === 'router' && d.to === 'icmp echo');
    assert.ok(at, renderTrace(rec));
    assert.deepEqual([at.frame.ip!.src, at.frame.eth.src], ['203.0.113.101', ids.qg.mac_address]);
    // On the tunnel to network1 the frame carries compute1's DVR MAC, not TG.
    const wire = rec.steps.find((s) => s.kind === 'wire' && s.before.encap && s.host === 'compute1');
    assert.ok(wire, renderTrace(rec));
    assert.equal(wire.before.encap!.inner.eth.src, lab.node('compute1').agent.dvrMac);
    assert.ok(rec.delivered.some((d) => d.ns === 'vm1' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0), renderTrace(rec));
  });

  it('4.3: vm1 (compute1) -> vm2 (compute2) is routed on compute1 and the reply on compute2', () => {
    lab.world.ping({ host: 'compute1', ns: 'vm1' }, vm2.ip);
    const rec = lab.world.ping({ host: 'compute1', ns: 'vm1' }, vm2.ip, { seq: 2 });
    const echo = rec.delivered.find((d) => d.host === 'compute2' && d.ns === 'vm2' && d.to === 'icmp echo');
    assert.ok(echo, renderTrace(rec));
    assert.equal(echo.frame.ip!.src, vm1.ip);
    const req = rec.steps.filter((s) => s.pkt === rec.packets[0].id);
    assert.ok(req.some((s) => s.host === 'compute1' && s.ns?.startsWith('qrouter-')), 'routed on compute1');
    assert.ok(!req.some((s) => s.host === 'compute2' && s.ns?.startsWith('qrouter-')), 'not again on compute2');
    assert.ok(!rec.steps.some((s) => s.host === 'network1'), 'network1 carries nothing');
    const reply = rec.delivered.find((d) => d.host === 'compute1' && d.ns === 'vm1' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0);
    assert.ok(reply, renderTrace(rec));
    assert.ok(rec.steps.some((s) => s.pkt !== rec.packets[0].id && s.host === 'compute2' && s.ns?.startsWith('qrouter-')), 'the reply is routed on compute2');
  });

  it('4.2: with a floating IP, the outside reaches vm1 on compute1 alone, and vm1 leaves as its floating IP', async () => {
    const fip = (await lab.ok('POST', '/v2.0/floatingips', { floatingip: { floating_network_id: ids.ext.id, port_id: vm1.id, tenant_id: 'demo' } })).floatingip;
    assert.equal(fip.floating_ip_address, '203.0.113.102');
    await settle();
    assert.equal((await lab.ok('GET', `/v2.0/floatingips/${fip.id}`)).floatingip.status, 'ACTIVE');
    lab.world.ping({ host: 'router' }, '203.0.113.102');
    const rec = lab.world.ping({ host: 'router' }, '203.0.113.102', { seq: 2 });
    const echo = rec.delivered.find((d) => d.ns === 'vm1' && d.to === 'icmp echo');
    assert.ok(echo, renderTrace(rec));
    const dnat = rec.steps.find((s) => s.host === 'compute1' && s.kind === 'netfilter' && s.ns?.startsWith('qrouter-') && s.table === 'PREROUTING' && s.after);
    assert.ok(dnat, renderTrace(rec));
    const back = rec.delivered.find((d) => d.host === 'router' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0);
    assert.ok(back, renderTrace(rec));
    assert.equal(back.frame.ip!.src, '203.0.113.102');
    assert.deepEqual(rec.steps.filter((s) => s.host === 'network1' && s.before.ip), [], 'network1 carries no packet');
    // Started by vm1 (a new connection: vm1's earlier pings are tracked un-NATed in qrouter,
    // as the kernel keeps them): out as 203.0.113.102 through compute1's fg-, not network1.
    const out = lab.world.send({ host: 'compute1', ns: 'vm1' }, { proto: 'udp', dst: EG.ip, sport: 5353, dport: 53, data: 'query' });
    const at = out.steps.find((s) => s.host === 'router' && s.before.l4?.kind === 'udp');
    assert.ok(at, renderTrace(out));
    assert.equal(at.before.ip!.src, '203.0.113.102');
    const unreachable = out.delivered.find((d) => d.ns === 'vm1' && d.frame.l4?.kind === 'icmp');
    assert.ok(unreachable, renderTrace(out));
    assert.equal(unreachable.frame.ip!.dst, vm1.ip, 'the port-unreachable comes back un-NATed');
    assert.deepEqual(out.steps.filter((s) => s.host === 'network1' && s.before.ip), []);
  });

  it('restarting every L3 agent changes nothing on any host', async () => {
    const applied = HOSTS.map((h) => lab.node(h).composer.applied);
    for (const h of HOSTS) {
      await l3.get(h)!.stop();
      await startL3(h);
    }
    await settle();
    assert.deepEqual(HOSTS.map((h) => lab.node(h).composer.applied), applied);
  });

  it('removing the floating IP, the gateway, the interfaces and the router leaves nothing on any host', async () => {
    const fips = (await lab.ok('GET', '/v2.0/floatingips')).floatingips;
    for (const f of fips) await lab.ok('DELETE', `/v2.0/floatingips/${f.id}`, undefined, 204);
    await lab.ok('PUT', `/v2.0/routers/${ids.router.id}`, { router: { external_gateway_info: {} } });
    for (const n of [ids.n1, ids.n2]) await lab.ok('PUT', `/v2.0/routers/${ids.router.id}/remove_router_interface`, { subnet_id: n.subnet.id });
    await lab.ok('DELETE', `/v2.0/routers/${ids.router.id}`, undefined, 204);
    await settle();
    for (const h of HOSTS) {
      const st = lab.node(h).host.readState();
      assert.deepEqual(Object.keys(st.namespaces).filter((n) => /^(qrouter|snat|fip)-/.test(n)), [], h);
      assert.deepEqual(Object.keys(st.ovs.bridges['br-int'].ports).filter((p) => /^(qr|qg|sg|fg)-/.test(p)), [], h);
      assert.deepEqual(Object.keys(st.metadata), [], h);
    }
    // The instances are still there, but with no router nothing crosses between their networks.
    const rec = lab.world.ping({ host: 'compute1', ns: 'vm1' }, vm2.ip, { seq: 9 });
    assert.ok(!rec.delivered.some((d) => d.ns === 'vm2'), renderTrace(rec));
  });
});
