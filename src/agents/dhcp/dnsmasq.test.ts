// The DHCP agent's pure part: Neutron's device_id, the dnsmasq options per subnet (router,
// DNS, MTU, classless routes with the metadata route), isolated metadata, the namespace.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dhcpDeviceId, uuid5, NAMESPACE_DNS } from './device-id.js';
import { addDhcpNetwork, dnsmasqConfig, isolatedSubnets, parseDnsmasqOptions, shouldEnableMetadata, type DnsmasqSettings } from './dnsmasq.js';
import type { NetworkInfo, PortInfo, SubnetInfo } from '../../rpc/messages.js';
import { emptyHost, addBridge } from '../../host/build.js';
import { assertValidHost } from '../../host/validate.js';

const SUBNET: SubnetInfo = { id: 'sub-1', cidr: '192.168.1.0/24', gateway_ip: '192.168.1.1', ip_version: 4, network_id: 'net-1', enable_dhcp: true, dns_nameservers: [], host_routes: [], allocation_pools: [{ start: '192.168.1.2', end: '192.168.1.254' }] };
const port = (id: string, ip: string, owner = 'compute:nova', mac = 'fa:16:3e:00:00:' + ip.split('.')[3].padStart(2, '0')): PortInfo => ({
  id, network_id: 'net-1', mac_address: mac, fixed_ips: [{ subnet_id: 'sub-1', ip_address: ip, prefixlen: 24 }], subnets: [SUBNET], device_owner: owner, device_id: 'd-' + id, binding_host_id: 'network1', admin_state_up: true, status: 'ACTIVE', mtu: 1450,
});
const DHCP = port('dhcpport-0001-aaaa', '192.168.1.2', 'network:dhcp', 'fa:16:3e:d4:c9:00');
const VM = port('vmport-00001-bbbb', '192.168.1.11');
const QR = port('qrport-00001-cccc', '192.168.1.1', 'network:router_interface_distributed');
const net = (ports: PortInfo[], subnets = [SUBNET], mtu = 1450): NetworkInfo => ({ id: 'net-1', project_id: 'demo', name: 'demo-net', admin_state_up: true, mtu, segment: { network_type: 'vxlan', physical_network: null, segmentation_id: 5 }, subnets, ports });
const SETTINGS: DnsmasqSettings = { domain: 'openstacklocal', lease_time: 86400, enable_isolated_metadata: true, force_metadata: false, enable_metadata_network: false, extra_options: parseDnsmasqOptions([{ key: 'dhcp-option-force', value: '26,1450' }]), metadata_proxy_socket: '/state/metadata_proxy' };
const opt = (server: ReturnType<typeof dnsmasqConfig>, n: number) => server.options.filter((o) => o.option === n);

test("device_id is Neutron's: dhcp + uuid5(NAMESPACE_DNS, short host name) + network id", () => {
  // Python: uuid.uuid5(uuid.NAMESPACE_DNS, 'network1')
  assert.equal(uuid5(NAMESPACE_DNS, 'network1'), '79ac16b7-042f-5762-9c87-2b0b99a9dacb');
  assert.equal(dhcpDeviceId('net-1', 'network1'), 'dhcp79ac16b7-042f-5762-9c87-2b0b99a9dacb-net-1');
  assert.equal(dhcpDeviceId('net-1', 'network1.example.org'), dhcpDeviceId('net-1', 'network1'));
});

test('dnsmasq_config_file options: numbers, names, tags, force; bad ones quoted', () => {
  assert.deepEqual(parseDnsmasqOptions([{ key: 'dhcp-option-force', value: '26,1450' }, { key: 'log-facility', value: '/x' }, { key: 'dhcp-option', value: 'tag:t1,option:ntp-server,10.0.0.5,10.0.0.6' }]), [
    { option: 26, values: ['1450'], force: true },
    { tag: 't1', option: 42, values: ['10.0.0.5', '10.0.0.6'] },
  ]);
  assert.throws(() => parseDnsmasqOptions([{ key: 'dhcp-option', value: 'option:frobnicate,1' }], 'etc/dnsmasq-neutron.conf'), /etc\/dnsmasq-neutron.conf: 'dhcp-option=option:frobnicate,1'.*'option:frobnicate'/);
});

test('a routed subnet: router, DNS from the DHCP port, MTU forced, 121/249 with the metadata route via the gateway; no proxy', () => {
  const n = net([DHCP, VM, QR]);
  assert.deepEqual([...isolatedSubnets(n)], []);
  assert.equal(shouldEnableMetadata(SETTINGS, n), false);
  const s = dnsmasqConfig(n, DHCP, SETTINGS);
  assert.deepEqual([s.id, s.namespace, s.interface, s.domain, s.lease_time], ['net-1', 'qdhcp-net-1', 'tapdhcpport-00', 'openstacklocal', 86400]);
  assert.deepEqual(s.ranges, [{ tag: 'subnet-sub-1', cidr: '192.168.1.0/24' }]);
  assert.deepEqual(s.hosts.map((h) => `${h.mac},${h.hostname},${h.ip}`).sort(), ['fa:16:3e:00:00:01,host-192-168-1-1,192.168.1.1', 'fa:16:3e:00:00:11,host-192-168-1-11,192.168.1.11', 'fa:16:3e:d4:c9:00,host-192-168-1-2,192.168.1.2']);
  assert.deepEqual(opt(s, 3), [{ tag: 'subnet-sub-1', option: 3, values: ['192.168.1.1'] }]);
  assert.deepEqual(opt(s, 6), [{ tag: 'subnet-sub-1', option: 6, values: ['192.168.1.2'] }]);
  assert.deepEqual(opt(s, 26), [{ option: 26, values: ['1450'], force: true }]);
  assert.deepEqual(opt(s, 121)[0].values, ['169.254.169.254/32', '192.168.1.1', '0.0.0.0/0', '192.168.1.1']);
  assert.deepEqual(opt(s, 249)[0].values, opt(s, 121)[0].values);
});

test('the same network, DHCP port and settings give the same server object; a refetched network a new one', () => {
  const n = net([DHCP, VM, QR]);
  const s = dnsmasqConfig(n, DHCP, SETTINGS);
  assert.equal(dnsmasqConfig(n, DHCP, SETTINGS), s);
  assert.notEqual(dnsmasqConfig(n, DHCP, { ...SETTINGS }), s);
  const more = net([DHCP, VM, QR, { ...VM, id: 'vm-port-2', mac_address: 'fa:16:3e:00:00:12', fixed_ips: [{ ...VM.fixed_ips[0], ip_address: '192.168.1.12' }] }]);
  const s2 = dnsmasqConfig(more, DHCP, SETTINGS);
  assert.deepEqual(s2.hosts.map((h) => h.ip).sort(), ['192.168.1.1', '192.168.1.11', '192.168.1.12', '192.168.1.2']);
  assert.equal(dnsmasqConfig(n, DHCP, SETTINGS).hosts.length, 3);
  // The fragment holds that object itself: validate and diff skip an unchanged network's hosts.
  const h = addDhcpNetwork(addBridge(emptyHost(), 'br-int'), n, DHCP, SETTINGS);
  assert.equal(h.dhcp['net-1'], dnsmasqConfig(n, DHCP, SETTINGS));
  assert.equal(isolatedSubnets(n), isolatedSubnets(n), 'once per version of the network');
});

test('an isolated subnet: the metadata route goes to the DHCP port, where a proxy listens on 169.254.169.254:80', () => {
  const n = net([DHCP, VM]);
  assert.deepEqual([...isolatedSubnets(n)], ['sub-1']);
  assert.equal(shouldEnableMetadata(SETTINGS, n), true);
  assert.equal(shouldEnableMetadata({ ...SETTINGS, enable_isolated_metadata: false }, n), false);
  const s = dnsmasqConfig(n, DHCP, SETTINGS);
  assert.deepEqual(opt(s, 121)[0].values, ['169.254.169.254/32', '192.168.1.2', '0.0.0.0/0', '192.168.1.1']);
  let h = addBridge(emptyHost(), 'br-int');
  h = addDhcpNetwork(h, n, DHCP, SETTINGS);
  assertValidHost(h);
  const ns = h.namespaces['qdhcp-net-1'];
  const tap = ns.links['tapdhcpport-00'];
  assert.deepEqual([tap.kind, tap.mac, tap.mtu, tap.up, [...tap.addresses].sort()], ['ovs-internal', 'fa:16:3e:d4:c9:00', 1450, true, ['169.254.169.254/32', '192.168.1.2/24']]);
  assert.deepEqual(h.ovs.bridges['br-int'].ports['tapdhcpport-00'].external_ids, { 'iface-id': DHCP.id, 'iface-status': 'active', 'attached-mac': DHCP.mac_address });
  assert.deepEqual(ns.routes, [{ dst: 'default', via: '192.168.1.1', dev: 'tapdhcpport-00', table: 254, type: 'unicast' }]);
  assert.deepEqual(h.metadata['net-1'], { id: 'net-1', namespace: 'qdhcp-net-1', listen_ip: '169.254.169.254', listen_port: 80, upstream: '/state/metadata_proxy', network_id: 'net-1' });
  // Without a gateway: no router option value, no default route, still the metadata route.
  const noGw = net([DHCP, VM], [{ ...SUBNET, gateway_ip: null }]);
  const s2 = dnsmasqConfig(noGw, DHCP, SETTINGS);
  assert.deepEqual(opt(s2, 3)[0].values, []);
  assert.deepEqual(opt(s2, 121)[0].values, ['169.254.169.254/32', '192.168.1.2']);
});

test('MTU: the network MTU when the file forces none; host routes and the network\'s other subnets', () => {
  const plain = { ...SETTINGS, extra_options: [] };
  assert.deepEqual(opt(dnsmasqConfig(net([DHCP, VM, QR], [SUBNET], 1500), DHCP, plain), 26), [{ option: 26, values: ['1500'], force: true }]);
  assert.deepEqual(opt(dnsmasqConfig(net([DHCP, VM, QR], [SUBNET], 1500), DHCP, SETTINGS), 26)[0].values, ['1450'], 'the file wins');
  const second: SubnetInfo = { ...SUBNET, id: 'sub-2', cidr: '10.5.0.0/24', gateway_ip: '10.5.0.1', dns_nameservers: ['8.8.8.8'], host_routes: [{ destination: '172.16.0.0/16', nexthop: '10.5.0.254' }] };
  const s = dnsmasqConfig(net([DHCP, VM, QR], [SUBNET, second]), DHCP, plain);
  const of = (tag: string, n: number) => s.options.find((o) => o.tag === tag && o.option === n)?.values;
  assert.deepEqual(of('subnet-sub-2', 6), ['8.8.8.8']);
  // sub-2 has no DHCP address of its own here and no router: no metadata route.
  assert.deepEqual(of('subnet-sub-2', 121), ['192.168.1.0/24', '0.0.0.0', '172.16.0.0/16', '10.5.0.254', '0.0.0.0/0', '10.5.0.1']);
  assert.deepEqual(of('subnet-sub-1', 121), ['10.5.0.0/24', '0.0.0.0', '169.254.169.254/32', '192.168.1.1', '0.0.0.0/0', '192.168.1.1']);
});
