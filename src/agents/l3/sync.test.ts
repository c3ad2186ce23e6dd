// The L3 agent's resync logic against a scripted server: which RPCs each kind of cast costs,
// that a full resync drops what the server no longer lists, and the floating-IP statuses it
// reports when it can and cannot set them up.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { addBridge, emptyHost } from '../../host/build.js';
import { diff } from '../../host/diff.js';
import { fipNamespace, routerInterfaceDevice, routerNamespace, snatNamespace } from '../../host/names.js';
import type { L3AgentConfig } from '../../config/agents.js';
import type { FloatingIpInfo, PortInfo, RouterInfo, SubnetInfo } from '../../rpc/messages.js';
import type { Handlers, Transport } from '../../rpc/transport.js';
import { World } from '../../dataplane/emulated/world.js';
import { HostComposer } from '../composer.js';
import { L3Agent } from './agent.js';
import { itemsOf } from '../../host/chunks.js';

const EXT = 'e0e1e2e3-4444-4555-8666-777788889999';
const EXT_SUBNET: SubnetInfo = { id: 'ext-sub', cidr: '203.0.113.0/24', gateway_ip: '203.0.113.1', ip_version: 4, network_id: EXT, enable_dhcp: false, dns_nameservers: [], host_routes: [], allocation_pools: [] };

function subnet(n: number): SubnetInfo {
  return { id: `sub-${n}`, cidr: `10.${n}.0.0/24`, gateway_ip: `10.${n}.0.1`, ip_version: 4, network_id: `net-${n}`, enable_dhcp: true, dns_nameservers: [], host_routes: [], allocation_pools: [] };
}

const macOf = (id: string) => 'fa:16:3e:' + createHash('sha1').update(id).digest('hex').slice(0, 6).replace(/(..)(..)(..)/, '$1:$2:$3');

function port(id: string, s: SubnetInfo, ip: string, owner: string, mac = macOf(id)): PortInfo {
  return { id, network_id: s.network_id, mac_address: mac, fixed_ips: [{ subnet_id: s.id, ip_address: ip, prefixlen: Number(s.cidr.split('/')[1]) }], subnets: [s], device_owner: owner, device_id: 'r', binding_host_id: '', admin_state_up: true, status: 'ACTIVE', mtu: s.network_id === EXT ? 1500 : 1450 };
}

const uuid = (tag: string, n: number) => `${tag}-${n}-0000-4000-8000-000000000000`;

function router(n: number, subnets: SubnetInfo[], opts: { gw?: boolean; fips?: FloatingIpInfo[]; fg?: PortInfo | null; admin?: boolean; snatHost?: string; routes?: RouterInfo['routes'] } = {}): RouterInfo {
  const id = uuid('r', n);
  const gw = opts.gw ? port(uuid('qg', n), EXT_SUBNET, `203.0.113.${100 + n}`, 'network:router_gateway') : null;
  return {
    id,
    name: `router${n}`,
    project_id: 'demo',
    admin_state_up: opts.admin ?? true,
    distributed: true,
    ha: false,
    enable_snat: true,
    routes: opts.routes ?? [],
    gw_port: gw,
    gw_port_host: opts.snatHost ?? 'network1',
    _interfaces: subnets.map((s, i) => port(uuid(`qr${n}`, i), s, s.gateway_ip!, 'network:router_interface_distributed')),
    _snat_router_interfaces: gw ? subnets.map((s, i) => port(uuid(`sg${n}`, i), s, s.cidr.replace('0/24', '2'), 'network:router_centralized_snat')) : [],
    _floatingips: opts.fips ?? [],
    fip_agent_gw_port: opts.fg ?? null,
  };
}

/** A scripted server: the routers it lists for the host, the ports of each subnet, a log of calls. */
class ScriptedServer implements Transport {
  routers = new Map<string, RouterInfo>();
  ports = new Map<string, PortInfo[]>();
  fg: PortInfo | null = null;
  calls: Array<{ method: string; args: any }> = [];
  served = new Map<string, Handlers>();

  /** Held before answering get_ports_by_subnet (a slow server). */
  hold?: Promise<void>;

  async call<T>(_topic: string, method: string, args: any): Promise<T> {
    this.calls.push({ method, args });
    if (method === 'get_ports_by_subnet' && this.hold) {
      const answer = structuredClone(this.ports.get(args.subnet_id) ?? []);
      await this.hold;
      return answer as T;
    }
    const clone = <X>(x: X): X => structuredClone(x);
    switch (method) {
      case 'report_state':
        return { status: 'alive' } as T;
      case 'sync_routers':
        return clone([...this.routers.values()].filter((r) => !args.router_ids || args.router_ids.includes(r.id))) as T;
      case 'get_ports_by_subnet':
        return clone(this.ports.get(args.subnet_id) ?? []) as T;
      case 'get_agent_gateway_port':
        return clone(this.fg) as T;
      case 'update_floatingip_statuses':
        for (const r of this.routers.values()) for (const f of r._floatingips) if (args.fip_statuses[f.id]) f.status = args.fip_statuses[f.id];
        return { ok: true } as T;
    }
    throw new Error(`unscripted call ${method}`);
  }
  async cast() {}
  async fanout() {}
  async serve(topic: string, handlers: Handlers) {
    this.served.set(topic, handlers);
    return async () => void this.served.delete(topic);
  }
  async close() {}

  /** Deliver a cast the way the server would, to compute1's L3 topic. */
  async castToAgent(method: string, args: unknown) {
    await this.served.get('l3_agent.compute1')![method](args, { method, topic: 'l3_agent.compute1' });
  }
  take(): string[] {
    const out = this.calls.map((c) => c.method);
    this.calls = [];
    return out;
  }
}

function config(mode: 'dvr' | 'dvr_snat' = 'dvr', over: Partial<L3AgentConfig> = {}): L3AgentConfig {
  return {
    host: 'compute1',
    state_path: '/nonexistent',
    debug: false,
    agent: { report_interval: 30, availability_zone: 'nova', extensions: [] },
    rpc_response_timeout: 60,
    rpc_response_max_timeout: 600,
    config_files: [],
    raw: {},
    agent_mode: mode,
    interface_driver: 'openvswitch',
    ovs_use_veth: false,
    handle_internal_only_routers: true,
    enable_metadata_proxy: true,
    metadata_port: 9697,
    periodic_interval: 40,
    ipv6_gateway: '',
    use_namespaces: true,
    external_network_bridge: '',
    ...over,
  };
}

async function setup(mode: 'dvr' | 'dvr_snat' = 'dvr', over: Partial<L3AgentConfig> = {}) {
  const world = new World();
  const host = world.addHost('compute1');
  const composer = new HostComposer('compute1', host);
  composer.setFragment('ovs', addBridge(emptyHost(), 'br-int'));
  const server = new ScriptedServer();
  const agent = new L3Agent({ transport: server, composer, config: config(mode, over), statePath: null, reportInterval: 0, resyncInterval: 0 });
  return { world, host, composer, server, agent };
}

const settle = async (a: L3Agent) => {
  await new Promise((r) => setTimeout(r, 5));
  await a.idle();
};

const fip = (n: number, r: RouterInfo, fixed: string, host = 'compute1'): FloatingIpInfo => ({
  id: uuid('f', n),
  floating_ip_address: `203.0.113.${150 + n}`,
  floating_network_id: EXT,
  fixed_ip_address: fixed,
  port_id: uuid('vm', n),
  router_id: r.id,
  status: 'DOWN',
  host,
});

test('casts cost only what they name: routers_updated refetches that router, ARP casts no RPC at all', async () => {
  const { server, agent, composer, host } = await setup();
  const s1 = subnet(1);
  const s2 = subnet(2);
  const r1 = router(1, [s1, s2]);
  server.routers.set(r1.id, r1);
  server.ports.set(s1.id, [port('vm1', s1, '10.1.0.11', 'compute:nova')]);
  server.ports.set(s2.id, []);
  await agent.start();
  assert.deepEqual(server.take().sort(), ['get_ports_by_subnet', 'get_ports_by_subnet', 'report_state', 'sync_routers']);
  const qrouter = routerNamespace(r1.id);
  const qr1 = routerInterfaceDevice(r1._interfaces[0].id);
  assert.deepEqual(composer.fragment('l3')!.namespaces[qrouter].neighbours, [{ dev: qr1, ip: '10.1.0.11', lladdr: server.ports.get(s1.id)![0].mac_address, nud: 'permanent' }]);

  // routers_updated: only that router, no neighbour table refetched.
  await server.castToAgent('routers_updated', { routers: [r1.id] });
  await settle(agent);
  assert.deepEqual(server.calls.map((c) => [c.method, c.args.router_ids]), [['sync_routers', [r1.id]]]);
  server.take();

  // add_arp_entry for a router of this host: patched locally, the rest of the fragment kept as it was.
  const linksBefore = agent.last!.state.namespaces[qrouter].links;
  await server.castToAgent('add_arp_entry', { router_id: r1.id, arp_table: { ip_address: '10.2.0.5', mac_address: 'fa:16:3e:00:02:05', subnet_id: s2.id } });
  await settle(agent);
  assert.deepEqual(server.take(), []);
  assert.equal(agent.last!.state.namespaces[qrouter].links, linksBefore, 'nothing but the neighbours rebuilt');
  assert.ok(itemsOf(host.readState().namespaces[qrouter].neighbours).some((n) => n.ip === '10.2.0.5' && n.lladdr === 'fa:16:3e:00:02:05'));
  await server.castToAgent('del_arp_entry', { router_id: r1.id, arp_table: { ip_address: '10.2.0.5', mac_address: 'fa:16:3e:00:02:05', subnet_id: s2.id } });
  await settle(agent);
  assert.ok(!itemsOf(host.readState().namespaces[qrouter].neighbours).some((n) => n.ip === '10.2.0.5'));

  // A burst as one message (the server's add_arp_entries / del_arp_entries), in order.
  const burst = ['10.2.0.6', '10.2.0.7'].map((ip, k) => ({ router_id: r1.id, arp_table: { ip_address: ip, mac_address: `fa:16:3e:00:02:0${6 + k}`, subnet_id: s2.id } }));
  await server.castToAgent('add_arp_entries', { entries: burst });
  await settle(agent);
  assert.deepEqual(server.take(), []);
  const learnt = () => itemsOf(host.readState().namespaces[qrouter].neighbours).filter((n) => n.ip === '10.2.0.6' || n.ip === '10.2.0.7').map((n) => `${n.ip} ${n.lladdr}`).sort();
  assert.deepEqual(learnt(), ['10.2.0.6 fa:16:3e:00:02:06', '10.2.0.7 fa:16:3e:00:02:07']);
  await server.castToAgent('del_arp_entries', { entries: burst });
  await settle(agent);
  assert.deepEqual(learnt(), []);

  // For a router elsewhere: nothing at all.
  const syncs = agent.syncs;
  await server.castToAgent('add_arp_entry', { router_id: 'elsewhere', arp_table: { ip_address: '10.9.0.5', mac_address: 'fa:16:3e:00:09:05', subnet_id: 'sub-9' } });
  await settle(agent);
  assert.equal(agent.syncs, syncs);

  // A new interface: only the new subnet's neighbours are fetched.
  const s3 = subnet(3);
  server.ports.set(s3.id, [port('vm3', s3, '10.3.0.11', 'compute:nova')]);
  server.routers.set(r1.id, router(1, [s1, s2, s3]));
  await server.castToAgent('routers_updated', { routers: [r1.id] });
  await settle(agent);
  assert.deepEqual(server.calls.map((c) => `${c.method} ${c.args.subnet_id ?? c.args.router_ids}`), [`sync_routers ${r1.id}`, 'get_ports_by_subnet sub-3']);
  server.take();

  // Removed from this agent: gone without asking.
  await server.castToAgent('router_removed_from_agent', { router_id: r1.id });
  await settle(agent);
  assert.deepEqual(server.take(), []);
  assert.ok(!host.readState().namespaces[qrouter]);
  await agent.stop();
});

test('a full resync drops routers the server no longer lists (a lost cast heals)', async () => {
  const { server, agent, host } = await setup();
  const r1 = router(1, [subnet(1)]);
  const r2 = router(2, [subnet(2)]);
  server.routers.set(r1.id, r1);
  server.routers.set(r2.id, r2);
  await agent.start();
  assert.ok(host.readState().namespaces[routerNamespace(r2.id)]);
  server.routers.delete(r2.id); // its router_removed_from_agent never arrived
  await agent.resync();
  assert.ok(!host.readState().namespaces[routerNamespace(r2.id)]);
  assert.ok(host.readState().namespaces[routerNamespace(r1.id)]);
  await agent.stop();
});

test('floating IPs: the fg port is asked for when missing; ERROR without one; DOWN on an admin-down router', async () => {
  const { server, agent, host, composer } = await setup();
  const s1 = subnet(1);
  const r1 = router(1, [s1], { gw: true });
  r1._floatingips = [fip(1, r1, '10.1.0.11')];
  server.routers.set(r1.id, r1);
  server.fg = null;
  await agent.start();
  assert.deepEqual(
    server.calls.filter((c) => c.method === 'get_agent_gateway_port' || c.method === 'update_floatingip_statuses').map((c) => [c.method, c.args]),
    [
      ['get_agent_gateway_port', { network_id: EXT, host: 'compute1' }],
      ['update_floatingip_statuses', { router_id: r1.id, fip_statuses: { [r1._floatingips[0].id]: 'ERROR' } }],
    ],
  );
  assert.ok(!host.readState().namespaces[fipNamespace(EXT)]);
  server.take();
  // The server can make one now: asked again on the next pass, the floating IP goes ACTIVE.
  server.fg = port('fgport-0001', EXT_SUBNET, '203.0.113.140', 'network:floatingip_agent_gateway');
  await agent.resync();
  assert.deepEqual(server.calls.filter((c) => c.method === 'update_floatingip_statuses').map((c) => c.args.fip_statuses), [{ [r1._floatingips[0].id]: 'ACTIVE' }]);
  assert.ok(host.readState().namespaces[fipNamespace(EXT)]);
  assert.deepEqual(diff(host.readState(), composer.desired()), []);
  server.take();
  // Same again: nothing to report.
  await agent.resync();
  assert.deepEqual(server.take().filter((m) => m === 'update_floatingip_statuses'), []);
  // Admin down: the router is not set up here and its floating IP is DOWN.
  server.routers.get(r1.id)!.admin_state_up = false;
  await agent.resync();
  assert.deepEqual(server.calls.filter((c) => c.method === 'update_floatingip_statuses').map((c) => c.args.fip_statuses), [{ [r1._floatingips[0].id]: 'DOWN' }]);
  assert.ok(!host.readState().namespaces[routerNamespace(r1.id)]);
  assert.ok(!host.readState().namespaces[fipNamespace(EXT)]);
  await agent.stop();
});

test('two routers on one external network share the fip namespace; each gets its own /31, table and rule priorities', async () => {
  const { server, agent, composer } = await setup();
  const r1 = router(1, [subnet(1)], { gw: true });
  const r2 = router(2, [subnet(2)], { gw: true });
  r1._floatingips = [fip(1, r1, '10.1.0.11'), fip(2, r1, '10.1.0.12')];
  r2._floatingips = [fip(3, r2, '10.2.0.11')];
  const fg = port('fgport-0001', EXT_SUBNET, '203.0.113.140', 'network:floatingip_agent_gateway');
  r1.fip_agent_gw_port = fg;
  r2.fip_agent_gw_port = fg;
  server.routers.set(r1.id, r1);
  server.routers.set(r2.id, r2);
  await agent.start();
  assert.equal(server.calls.filter((c) => c.method === 'get_agent_gateway_port').length, 0, 'the server sent it');
  const s = composer.fragment('l3')!;
  const f = s.namespaces[fipNamespace(EXT)];
  assert.deepEqual(f.rules.map((r) => r.priority).sort(), [2852012033, 2852012035]);
  assert.deepEqual(s.namespaces[routerNamespace(r1.id)].rules.filter((r) => r.table === 16).map((r) => `${r.from} ${r.priority}`).sort(), ['10.1.0.11 32768', '10.1.0.12 32769']);
  assert.deepEqual(s.namespaces[routerNamespace(r2.id)].rules.filter((r) => r.table === 16).map((r) => `${r.from} ${r.priority}`), ['10.2.0.11 32770']);
  // r1's floating IPs go; r2 keeps its /31 and priority, r1's are free again.
  r1._floatingips = [];
  await agent.resync();
  const s2 = composer.fragment('l3')!;
  assert.deepEqual(s2.namespaces[fipNamespace(EXT)].rules.map((r) => r.priority), [2852012035]);
  assert.deepEqual(s2.namespaces[routerNamespace(r2.id)].rules.filter((r) => r.table === 16).map((r) => `${r.from} ${r.priority}`), ['10.2.0.11 32770']);
  r1._floatingips = [fip(4, r1, '10.1.0.13')];
  await agent.resync();
  assert.deepEqual(composer.fragment('l3')!.namespaces[routerNamespace(r1.id)].rules.filter((r) => r.table === 16).map((r) => `${r.from} ${r.priority}`), ['10.1.0.13 32768']);
  await agent.stop();
});

test('dvr_snat: snat namespace only where gw_port_host is this host; extra routes in qrouter and snat', async () => {
  const { server, agent, composer, host } = await setup('dvr_snat');
  const s1 = subnet(1);
  const here = router(1, [s1], { gw: true, snatHost: 'compute1', routes: [{ destination: '172.16.0.0/16', nexthop: '10.1.0.254' }, { destination: '172.17.0.0/16', nexthop: '192.0.2.1' }] });
  const there = router(2, [subnet(2)], { gw: true, snatHost: 'network9' });
  server.routers.set(here.id, here);
  server.routers.set(there.id, there);
  await agent.start();
  const s = composer.fragment('l3')!;
  assert.ok(s.namespaces[snatNamespace(here.id)]);
  assert.ok(!s.namespaces[snatNamespace(there.id)]);
  const qr = routerInterfaceDevice(here._interfaces[0].id);
  assert.deepEqual(s.namespaces[routerNamespace(here.id)].routes.filter((r) => r.table === 254), [{ dst: '172.16.0.0/16', via: '10.1.0.254', dev: qr, table: 254, type: 'unicast' }]);
  assert.ok(s.namespaces[snatNamespace(here.id)].routes.some((r) => r.dst === '172.16.0.0/16' && r.via === '10.1.0.254'));
  assert.deepEqual(diff(host.readState(), composer.desired()), []);
  await agent.stop();
});

test('handle_internal_only_routers = False skips routers without a gateway; unsupported modes are refused', async () => {
  const { server, agent, composer } = await setup('dvr', { handle_internal_only_routers: false });
  const internal = router(1, [subnet(1)]);
  const external = router(2, [subnet(2)], { gw: true });
  server.routers.set(internal.id, internal);
  server.routers.set(external.id, external);
  await agent.start();
  assert.deepEqual(Object.keys(composer.fragment('l3')!.namespaces).filter((n) => n).sort(), [routerNamespace(external.id)]);
  await agent.stop();
  const c = new HostComposer('x', new World().addHost('x'));
  assert.throws(() => new L3Agent({ transport: new ScriptedServer(), composer: c, config: config('dvr', { agent_mode: 'legacy' }) }), /agent_mode "legacy" is not supported/);
  assert.throws(() => new L3Agent({ transport: new ScriptedServer(), composer: c, config: config('dvr', { ovs_use_veth: true }) }), /ovs_use_veth/);
});

test('a host with 10 routers of 10 subnets of 100 ports builds and applies in well under a second', async () => {
  const { server, agent, composer } = await setup();
  for (let r = 1; r <= 10; r++) {
    const subs = Array.from({ length: 10 }, (_, i) => subnet(r * 10 + i));
    for (const s of subs) server.ports.set(s.id, Array.from({ length: 100 }, (_, k) => port(`p${r}${s.id}${k}`.slice(-11), s, s.cidr.replace('0/24', String(k + 10)), 'compute:nova', `fa:16:3e:${r.toString(16).padStart(2, '0')}:${(subs.indexOf(s)).toString(16).padStart(2, '0')}:${k.toString(16).padStart(2, '0')}`)));
    const rt = router(r, subs, { gw: true });
    server.routers.set(rt.id, rt);
  }
  const t0 = performance.now();
  await agent.start();
  const first = performance.now() - t0;
  const neigh = Object.values(composer.fragment('l3')!.namespaces).reduce((n, ns) => n + ns.neighbours.length, 0);
  assert.equal(neigh, 10 * 10 * 100);
  const t1 = performance.now();
  await agent.resync();
  const again = performance.now() - t1;
  console.log(`10 routers x 10 subnets x 100 ports: first sync ${first.toFixed(0)} ms, resync ${again.toFixed(0)} ms`);
  assert.ok(first < 3000 && again < 1500, `first ${first.toFixed(0)} ms, again ${again.toFixed(0)} ms`);
  await agent.stop();
});

test('an ARP cast that arrives while the tables are being fetched is not lost under the older answer', async () => {
  const { server, agent, host } = await setup();
  const s1 = subnet(1);
  const r1 = router(1, [s1]);
  server.routers.set(r1.id, r1);
  server.ports.set(s1.id, []);
  await agent.start();
  let release!: () => void;
  server.hold = new Promise((r) => (release = r));
  const full = agent.resync(); // the answer is computed now, delivered later
  await new Promise((r) => setTimeout(r, 5));
  await server.castToAgent('add_arp_entry', { router_id: r1.id, arp_table: { ip_address: '10.1.0.77', mac_address: 'fa:16:3e:00:00:77', subnet_id: s1.id } });
  release();
  await full;
  await settle(agent);
  assert.ok(itemsOf(host.readState().namespaces[routerNamespace(r1.id)].neighbours).some((n) => n.ip === '10.1.0.77'));
  await agent.stop();
});
