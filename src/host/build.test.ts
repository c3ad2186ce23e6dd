import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addBridge,
  addDhcpServer,
  addFlows,
  addInternalPort,
  addNamespace,
  addPatchPair,
  addRoute,
  addTap,
  addVethPair,
  emptyHost,
  flowsOfCookie,
  iptablesText,
  removeBridge,
  removeCookieFlows,
  removePort,
  replaceCookieFlows,
  setLink,
  tunnelPort,
} from './build.js';
import { validateHost } from './validate.js';
import { itemsOf } from './chunks.js';

test('an empty host has only the root namespace; a namespace comes with lo up', () => {
  const h = emptyHost();
  assert.deepEqual(Object.keys(h.namespaces), ['']);
  const s = addNamespace(h, 'qrouter-1');
  assert.deepEqual(s.namespaces['qrouter-1'].links.lo, { kind: 'loopback', name: 'lo', up: true, addresses: [] });
  assert.equal(addNamespace(s, 'qrouter-1'), s, 'adding an existing namespace changes nothing');
  assert.deepEqual(Object.keys(h.namespaces), [''], 'builders never modify their input');
});

test('builders share what they do not change', () => {
  const a = addNamespace(addNamespace(emptyHost(), 'ns1'), 'ns2');
  const b = addTap(a, 'ns1', 'tap1');
  assert.equal(b.namespaces.ns2, a.namespaces.ns2);
  assert.equal(b.namespaces[''], a.namespaces['']);
  assert.notEqual(b.namespaces.ns1, a.namespaces.ns1);
  assert.equal(a.namespaces.ns1.links.tap1, undefined);
});

test('names already taken are refused with the name', () => {
  const s = addTap(emptyHost(), '', 'tap1');
  assert.throws(() => addTap(s, '', 'tap1'), /Link "tap1" already exists in the root namespace/);
  assert.throws(() => addTap(s, 'nowhere', 'tap2'), /No namespace "nowhere"/);
  const b = addBridge(emptyHost(), 'br-int');
  assert.throws(() => addBridge(b, 'br-int'), /Bridge "br-int" already exists/);
  assert.throws(() => addRoute(addRoute(s, '', { dst: '10.0.0.0/8', dev: 'tap1' }), '', { dst: '10.0.0.0/8', dev: 'tap1' }), /Route to 10.0.0.0\/8 \(table 254\) already exists/);
});

test('a veth pair is two links pointing at each other; routes default to main and unicast', () => {
  let s = addVethPair(addNamespace(emptyHost(), 'fip-x'), 'fip-x', 'fpr-1', '', 'rfp-1', { a: { mtu: 1450 } });
  assert.deepEqual(s.namespaces['fip-x'].links['fpr-1'], { kind: 'veth', name: 'fpr-1', up: true, addresses: [], mtu: 1450, peer: 'rfp-1', peer_namespace: '' });
  s = addRoute(s, 'fip-x', { dst: 'default', dev: 'fpr-1' });
  assert.deepEqual(s.namespaces['fip-x'].routes, [{ dst: 'default', dev: 'fpr-1', table: 254, type: 'unicast' }]);
  assert.deepEqual(validateHost(s), []);
  assert.throws(() => addVethPair(s, '', 'x', '', 'x'), /cannot be its own peer/);
});

test('a bridge brings its own device; an internal port brings its device where it is asked', () => {
  let s = addBridge(addNamespace(emptyHost(), 'qrouter-1'), 'br-int', { datapath_type: 'netdev' });
  assert.deepEqual(s.namespaces[''].links['br-int'], { kind: 'ovs-internal', name: 'br-int', up: false, addresses: [] });
  s = addInternalPort(s, 'br-int', 'qr-1', { namespace: 'qrouter-1', tag: 3, mac: 'fa:16:3e:00:00:01', addresses: ['10.0.0.1/24'] });
  assert.deepEqual(s.ovs.bridges['br-int'].ports['qr-1'], { name: 'qr-1', tag: 3, type: 'internal' });
  assert.equal(s.namespaces['qrouter-1'].links['qr-1'].kind, 'ovs-internal');
  assert.deepEqual(validateHost(s), []);
  const r = removePort(s, 'br-int', 'qr-1');
  assert.equal(r.namespaces['qrouter-1'].links['qr-1'], undefined);
  const gone = removeBridge(addPatchPair(addBridge(s, 'br-tun'), 'br-int', 'patch-tun', 'br-tun', 'patch-int'), 'br-tun');
  assert.equal(gone.namespaces[''].links['br-tun'], undefined);
});

test('tunnel ports are named as Neutron names them and use key=flow', () => {
  assert.deepEqual(tunnelPort('vxlan', '10.0.1.21', { local_ip: '10.0.1.31' }), {
    name: 'vxlan-0a000115',
    type: 'vxlan',
    remote_ip: '10.0.1.21',
    key: 'flow',
    local_ip: '10.0.1.31',
  });
});

test('flows: OVS add semantics, ownership by cookie', () => {
  let s = addBridge(emptyHost(), 'br-int');
  s = addFlows(s, 'br-int', [
    { table: 0, priority: 1, cookie: 1, match: 'in_port=1', actions: 'NORMAL' },
    { table: 0, priority: 2, cookie: 1, match: 'in_port=2', actions: 'NORMAL' },
    { table: 0, priority: 3, cookie: 2, match: 'in_port=3', actions: 'NORMAL' },
  ]);
  s = addFlows(s, 'br-int', [{ table: 0, priority: 1, cookie: 9, match: 'in_port=1', actions: 'drop' }]);
  assert.equal(s.ovs.bridges['br-int'].flows.length, 3, 'the same key replaces');
  s = replaceCookieFlows(s, 'br-int', 1, [{ table: 0, priority: 5, match: 'in_port=5', actions: 'drop' }]);
  assert.deepEqual(flowsOfCookie(s.ovs.bridges['br-int'], 1).map((f) => f.match), ['in_port=5']);
  assert.deepEqual(flowsOfCookie(s.ovs.bridges['br-int'], '0x9').map((f) => f.actions), ['drop']);
  s = removeCookieFlows(s, 'br-int', 2);
  assert.deepEqual(itemsOf(s.ovs.bridges['br-int'].flows).map((f) => f.cookie).sort(), ['0x1', '0x9']);
});

test('setLink detaches with master: undefined; DHCP defaults are Neutron\'s; iptables text is restore input', () => {
  let s = addTap(emptyHost(), '', 'tap1', { master: 'qbr1' });
  s = setLink(s, '', 'tap1', { master: undefined, mtu: 1400 });
  assert.deepEqual(s.namespaces[''].links.tap1, { kind: 'tap', name: 'tap1', up: true, addresses: [], mtu: 1400 });
  const d = addDhcpServer(emptyHost(), { id: 'n', namespace: 'qdhcp-n', interface: 'tap2' }).dhcp.n;
  assert.equal(d.domain, 'openstacklocal');
  assert.equal(d.lease_time, 86400);
  assert.equal(iptablesText('raw', [['PREROUTING', 'ACCEPT']], ['-A PREROUTING -j CT --notrack']), '*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j CT --notrack\nCOMMIT\n');
});
