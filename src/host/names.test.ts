import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as n from './names.js';

const PORT = 'd1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6';
const ROUTER = '4b2f8c1e-7a3d-4e59-9c0b-1d2e3f405162';

test('port devices are the prefix and the first 11 characters of the port id (14 in all)', () => {
  assert.equal(n.routerInterfaceDevice(PORT), 'qr-d1e2f3a4-b5');
  assert.equal(n.routerGatewayDevice(PORT), 'qg-d1e2f3a4-b5');
  assert.equal(n.snatDevice(PORT), 'sg-d1e2f3a4-b5');
  assert.equal(n.fipGatewayDevice(PORT), 'fg-d1e2f3a4-b5');
  assert.equal(n.haDevice(PORT), 'ha-d1e2f3a4-b5');
  assert.equal(n.tapDevice(PORT), 'tapd1e2f3a4-b5');
  assert.equal(n.hybridBridge(PORT), 'qbrd1e2f3a4-b5');
  assert.equal(n.hybridVethBridgeEnd(PORT), 'qvbd1e2f3a4-b5');
  assert.equal(n.hybridVethOvsEnd(PORT), 'qvod1e2f3a4-b5');
  for (const f of [n.routerInterfaceDevice, n.tapDevice, n.hybridVethOvsEnd]) assert.equal(f(PORT).length, n.LINUX_DEV_LEN);
  assert.throws(() => n.tapDevice(''), /Empty id/);
});

test('rfp-/fpr- take the first 10 characters of the router id', () => {
  assert.equal(n.routerToFipDevice(ROUTER), 'rfp-4b2f8c1e-7');
  assert.equal(n.fipToRouterDevice(ROUTER), 'fpr-4b2f8c1e-7');
});

test('namespaces carry the whole id', () => {
  assert.equal(n.routerNamespace(ROUTER), `qrouter-${ROUTER}`);
  assert.equal(n.snatNamespace(ROUTER), `snat-${ROUTER}`);
  assert.equal(n.fipNamespace('ext'), 'fip-ext');
  assert.equal(n.dhcpNamespace('net'), 'qdhcp-net');
});

test('patch ports towards physical bridges, hashed when too long like get_interface_name', () => {
  assert.equal(n.PATCH_INT, 'patch-int');
  assert.equal(n.PATCH_TUN, 'patch-tun');
  assert.equal(n.intToPhysPatch('br-ex'), 'int-br-ex');
  assert.equal(n.physToIntPatch('br-ex'), 'phy-br-ex');
  // sha1('br-physnet-external')[:6] = c0bd8f (computed with Python's hashlib).
  assert.equal(n.intToPhysPatch('br-physnet-external'), 'int-br-phc0bd8f');
  assert.equal(n.intToPhysPatch('br-physnet-external').length, n.DEVICE_NAME_MAX_LEN);
  assert.throws(() => n.interfaceName('x', 'a-very-long-prefix'), /Prefix "a-very-long-prefix" too long/);
});

test('tunnel ports are <type>-<remote IPv4 as 8 hex digits>', () => {
  assert.equal(n.tunnelPortName('vxlan', '10.0.1.2'), 'vxlan-0a000102');
  assert.equal(n.tunnelPortName('gre', '192.168.0.255'), 'gre-c0a800ff');
  assert.throws(() => n.tunnelPortName('vxlan', '10.0.1'), /Tunnel remote_ip "10.0.1" is not an IPv4 address/);
});

test('DVR tables and priorities are the integers of addresses', () => {
  assert.equal(n.snatRedirectTable('10.0.0.1'), 167772161);
  assert.equal(n.fipRouterTable('169.254.64.1'), 2852012033);
  assert.equal(n.FIP_RT_TBL, 16);
  assert.equal(n.FIP_PR_END - n.FIP_PR_START, 40000);
});

test('ipset and chain names fit the kernel limits as Neutron cuts them', () => {
  const sg = '5c4b3a29-1807-46f5-a4b3-c2d1e0f9a8b7';
  assert.equal(n.securityGroupIpset(sg, 'IPv4'), 'NIPv45c4b3a29-1807-46f5-a4b3-');
  assert.equal(n.securityGroupIpset(sg, 'IPv4').length, 29);
  assert.equal(n.portChain('ingress', PORT), 'neutron-openvswi-id1e2f3a4-b');
  assert.equal(n.portChain('egress', PORT), 'neutron-openvswi-od1e2f3a4-b');
  assert.equal(n.portChain('spoof', PORT), 'neutron-openvswi-sd1e2f3a4-b');
  assert.equal(n.portChain('ingress', PORT).length, n.MAX_CHAIN_LEN);
  assert.equal(n.wrappedChain(n.L3_AGENT_CHAIN_PREFIX, 'float-snat'), 'neutron-l3-agent-float-snat');
});
