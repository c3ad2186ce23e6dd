// buildL3 for a centralized router: built only by the dvr_snat agent it is scheduled to, as
// Neutron's LegacyRouter (qr- with the interface's own MAC, qg- holding the gateway address
// and the floating IPs, SNAT and floating-IP NAT in qrouter-, no permanent neighbours).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PortInfo, RouterInfo, SubnetInfo } from '../../rpc/messages.js';
import { buildL3, type L3BuildInput } from './build.js';

const subnet = (id: string, cidr: string, gateway_ip: string): SubnetInfo => ({ id, cidr, gateway_ip, ip_version: 4, network_id: `net-${id}`, enable_dhcp: false, dns_nameservers: [], host_routes: [], allocation_pools: [] });
const port = (id: string, owner: string, mac: string, ip: string, s: SubnetInfo): PortInfo => ({
  id,
  network_id: `net-${s.id}`,
  mac_address: mac,
  fixed_ips: [{ subnet_id: s.id, ip_address: ip, prefixlen: Number(s.cidr.split('/')[1]) }],
  subnets: [s],
  device_owner: owner,
  device_id: 'r1',
  binding_host_id: 'network1',
  admin_state_up: true,
  status: 'ACTIVE',
  mtu: 1450,
});

const s1 = subnet('s1', '192.168.1.0/24', '192.168.1.1');
const ext = subnet('se', '203.0.113.0/24', '203.0.113.1');
const router: RouterInfo = {
  id: 'r1',
  name: 'central',
  project_id: 'demo',
  admin_state_up: true,
  distributed: false,
  ha: false,
  enable_snat: true,
  routes: [],
  gw_port: port('gwport00000aaaa', 'network:router_gateway', 'fa:16:3e:00:00:0e', '203.0.113.110', ext),
  gw_port_host: 'network1',
  _interfaces: [port('itfport0000aaaa', 'network:router_interface', 'fa:16:3e:00:00:01', '192.168.1.1', s1)],
  _snat_router_interfaces: [],
  _floatingips: [{ id: 'f1', floating_ip_address: '203.0.113.120', floating_network_id: 'net-se', fixed_ip_address: '192.168.1.11', port_id: 'p', router_id: 'r1', status: 'DOWN', host: 'compute1' }],
  fip_agent_gw_port: null,
};

const build = (host: string, mode: L3BuildInput['mode']) =>
  buildL3({
    host,
    mode,
    integrationBridge: 'br-int',
    routers: [router],
    arp: () => {
      throw new Error('a centralized router needs no neighbour table');
    },
    fgPort: () => null,
    linkLocal: () => {
      throw new Error('a centralized router has no rfp/fpr link');
    },
    fipPriority: () => {
      throw new Error('a centralized router has no floating-IP rules');
    },
  });

test('a centralized router is built only on the dvr_snat host it is scheduled to', () => {
  assert.deepEqual(Object.keys(build('compute1', 'dvr').state.namespaces), ['']);
  assert.deepEqual(Object.keys(build('network2', 'dvr_snat').state.namespaces), ['']);
  const out = build('network1', 'dvr_snat');
  assert.deepEqual(Object.keys(out.state.namespaces).sort(), ['', 'qrouter-r1']);
  assert.deepEqual(out.counts, { routers: 1, interfaces: 1, ex_gw_ports: 1, floating_ips: 1 });
  assert.deepEqual(out.fipStatuses.get('r1'), { f1: 'ACTIVE' });
});

test('qrouter- of a centralized router: qr-, qg- with the floating IP, default route, SNAT and floating-IP NAT', () => {
  const ns = build('network1', 'dvr_snat').state.namespaces['qrouter-r1'];
  const qr = ns.links['qr-itfport0000'];
  assert.equal(qr.mac, 'fa:16:3e:00:00:01');
  assert.deepEqual(qr.addresses, ['192.168.1.1/24']);
  assert.deepEqual(ns.links['qg-gwport00000'].addresses, ['203.0.113.110/24', '203.0.113.120/32']);
  assert.deepEqual(
    ns.routes.map((r) => `${r.dst} via ${r.via} dev ${r.dev}`),
    ['default via 203.0.113.1 dev qg-gwport00000'],
  );
  assert.deepEqual(ns.neighbours, [], 'neighbours are learnt by ARP');
  assert.equal(ns.sysctls['net.ipv4.ip_forward'], '1');
  const nat = ns.iptables.nat!.split('\n');
  for (const rule of [
    '-A neutron-l3-agent-PREROUTING -d 203.0.113.120/32 -j DNAT --to-destination 192.168.1.11',
    '-A neutron-l3-agent-OUTPUT -d 203.0.113.120/32 -j DNAT --to-destination 192.168.1.11',
    '-A neutron-l3-agent-float-snat -s 192.168.1.11/32 -j SNAT --to-source 203.0.113.120 --random-fully',
    '-A neutron-l3-agent-snat -o qg-gwport00000 -j SNAT --to-source 203.0.113.110 --random-fully',
    '-A neutron-l3-agent-POSTROUTING ! -o qg-gwport00000 -m conntrack ! --ctstate DNAT -j ACCEPT',
    '-A neutron-l3-agent-snat -m mark ! --mark 0x2/0xffff -m conntrack --ctstate DNAT -j SNAT --to-source 203.0.113.110 --random-fully',
  ])
    assert.ok(nat.includes(rule), rule);
  assert.ok(ns.iptables.mangle!.includes('-A neutron-l3-agent-mark -i qg-gwport00000 -j MARK --set-xmark 0x2/0xffff'));
});
