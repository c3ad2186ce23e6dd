import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApplyError, applyOps } from './apply.js';
import { addBridge, addIpset, addLinuxBridge, addNamespace, addRoute, addTap, addVethPair, emptyHost, iptablesText, setIptables } from './build.js';
import type { HostOp } from './ops.js';

const fails = (ops: HostOp[], re: RegExp, s = emptyHost()) =>
  assert.throws(() => applyOps(s, ops), (e: unknown) => e instanceof ApplyError && re.test(e.message) && e.operation === ops.at(-1));

test('operations the real tools would refuse at that point are refused', () => {
  fails([{ op: 'address.add', namespace: '', dev: 'eth0', cidr: '10.0.0.1/24' }], /No link "eth0" in the root namespace/);
  fails([{ op: 'route.replace', namespace: '', route: { dst: 'default', dev: 'eth0', table: 254, type: 'unicast' } }], /No link "eth0"/);
  fails([{ op: 'port.add', bridge: 'br-int', port: { name: 'p', type: 'internal' } }], /No bridge "br-int" for port "p"/);
  fails([{ op: 'port.add', bridge: 'br-int', port: { name: 'tap1', type: 'system' } }], /No device "tap1" in the root namespace for system port/, addBridge(emptyHost(), 'br-int'));
  fails([{ op: 'link.create', namespace: '', link: { kind: 'tap', name: 'tap1', up: true, master: 'qbr1' } }], /Master "qbr1" is not a Linux bridge in the root namespace/);
  fails([{ op: 'iptables.restore', namespace: '', table: 'filter', text: '*filter\n-A INPUT -m set --match-set s1 src -j DROP\nCOMMIT\n' }], /uses ipset "s1" that does not exist/);
  let s = addIpset(emptyHost(), '', { name: 's1', type: 'hash:ip', members: [] });
  s = setIptables(s, '', 'filter', iptablesText('filter', [['INPUT', 'ACCEPT']], ['-A INPUT -m set --match-set s1 src -j DROP']));
  fails([{ op: 'ipset.destroy', namespace: '', name: 's1' }], /ipset "s1" is still used by iptables filter/, s);
  fails([{ op: 'netns.delete', namespace: '' }], /root namespace cannot be deleted/);
  fails([{ op: 'dhcp.start', server: { id: 'n', namespace: 'qdhcp-n', interface: 'tap', domain: 'd', lease_time: 600, ranges: [], hosts: [], options: [] } }], /No namespace "qdhcp-n"/);
});

test('the kernel\'s consequences: a veth takes its peer, a link its routes, a bridge its members', () => {
  let s = addNamespace(emptyHost(), 'ns1');
  s = addVethPair(s, '', 'a', 'ns1', 'b');
  s = addRoute(s, 'ns1', { dst: 'default', dev: 'b' });
  s = addLinuxBridge(s, '', 'qbr1');
  s = addTap(s, '', 'tap1', { master: 'qbr1' });
  const r = applyOps(s, [
    { op: 'link.delete', namespace: '', name: 'a' },
    { op: 'link.delete', namespace: '', name: 'qbr1' },
  ]);
  assert.equal(r.namespaces.ns1.links.b, undefined);
  assert.deepEqual(r.namespaces.ns1.routes, []);
  assert.equal(r.namespaces[''].links.tap1.master, undefined);
  assert.notEqual(s.namespaces.ns1.links.b, undefined, 'the input is not modified');
});
