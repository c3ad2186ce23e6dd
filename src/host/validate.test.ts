import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addAddress,
  addBridge,
  addDhcpServer,
  addFlows,
  addInternalPort,
  addLinuxBridge,
  addLink,
  addMetadataProxy,
  addNamespace,
  addNeighbour,
  addPatchPair,
  addPhysical,
  addPort,
  addRoute,
  addRule,
  addTap,
  addVethPair,
  emptyHost,
  patchPort,
  removeLink,
  setIptables,
  setLink,
  setSysctl,
  systemPort,
  tunnelPort,
} from './build.js';
import { sampleComputeHost, sampleNetworkHost } from './samples.js';
import { itemsOf } from './chunks.js';
import type { HostState } from './state.js';
import { assertValidHost, InvalidHostStateError, validateHost } from './validate.js';

/** Asserts that validation reports exactly one problem matching `re`. */
function rejects(s: HostState, re: RegExp): void {
  const problems = validateHost(s);
  assert.ok(problems.some((p) => re.test(p)), `expected a problem matching ${re}, got:\n${problems.join('\n')}`);
}

test('the samples and an empty host are valid', () => {
  assert.deepEqual(validateHost(emptyHost()), []);
  assert.deepEqual(validateHost(sampleComputeHost()), []);
  assert.deepEqual(validateHost(sampleNetworkHost()), []);
});

test('a veth whose peer is missing or does not point back', () => {
  let s = addVethPair(addNamespace(emptyHost(), 'ns1'), '', 'a', 'ns1', 'b');
  s = { ...s, namespaces: { ...s.namespaces, ns1: { ...s.namespaces.ns1, links: {} } } };
  rejects(s, /^Link "a" in the root namespace: veth peer "b" does not exist in namespace "ns1"$/);
  let t = addVethPair(emptyHost(), '', 'a', '', 'b');
  t = addVethPair(t, '', 'c', '', 'd');
  t = setLink(t, '', 'a', {});
  t.namespaces[''].links.a = { ...t.namespaces[''].links.a, peer: 'd' } as never;
  rejects(t, /^Link "a" in the root namespace: veth peer "d" in the root namespace does not point back to it$/);
  rejects(addLink(emptyHost(), '', { kind: 'veth', name: 'x', up: true, addresses: [], peer: 'y', peer_namespace: 'nope' }), /veth peer namespace "nope" does not exist/);
});

test('a port on a missing bridge cannot even be built; a system port needs its device', () => {
  assert.throws(() => addPort(emptyHost(), 'br-int', systemPort('eth9')), /No bridge "br-int"/);
  const s = addPort(addBridge(emptyHost(), 'br-int'), 'br-int', systemPort('eth9'));
  rejects(s, /^Port "eth9" on bridge "br-int": system port has no device "eth9" in the root namespace$/);
});

test('a port hand-written onto a bridge that is not in the state is reported', () => {
  const s = addBridge(emptyHost(), 'br-int');
  s.ovs.bridges['br-int'].ports.p = patchPort('p', 'q');
  rejects(s, /^Port "p" on bridge "br-int": patch peer "q" does not exist$/);
});

test('a link whose master is not a Linux bridge in the same namespace', () => {
  let s = addTap(addDummy(emptyHost()), '', 'tap1', { master: 'dummy0' });
  rejects(s, /^Link "tap1" in the root namespace: master "dummy0" is a dummy, not a Linux bridge$/);
  s = addTap(emptyHost(), '', 'tap1', { master: 'qbr1' });
  rejects(s, /^Link "tap1" in the root namespace: master "qbr1" does not exist in the root namespace$/);
  s = addLinuxBridge(addNamespace(emptyHost(), 'ns1'), 'ns1', 'qbr1');
  s = addTap(s, '', 'tap1', { master: 'qbr1' });
  rejects(s, /master "qbr1" does not exist in the root namespace/);
});

function addDummy(s: HostState): HostState {
  return addLink(s, '', { kind: 'dummy', name: 'dummy0', up: true, addresses: [] });
}

test('addresses must be in CIDR form', () => {
  const s = addPhysical(emptyHost(), 'eth0', { addresses: ['10.0.0.1', '10.0.0.300/24', 'fe80::1/64', '10.0.0.2/33'] });
  rejects(s, /^Link "eth0" in the root namespace: address "10.0.0.1" is not in CIDR form/);
  rejects(s, /address "10.0.0.300\/24" is not in CIDR form/);
  rejects(s, /address "10.0.0.2\/33" is not in CIDR form/);
  assert.equal(validateHost(s).length, 3); // fe80::1/64 is fine
});

test('routes need an existing dev, a clean destination and a local src', () => {
  let s = addPhysical(emptyHost(), 'eth0', { addresses: ['10.0.0.5/24'] });
  s = addRoute(s, '', { dst: '10.1.0.0/16', via: '10.0.0.1', dev: 'eth9' });
  rejects(s, /^Route "10.1.0.0\/16 via 10.0.0.1 dev eth9 table 254" in the root namespace: dev "eth9" does not exist in the root namespace$/);
  s = addRoute(addPhysical(emptyHost(), 'eth0'), '', { dst: '10.1.0.1/16', dev: 'eth0' });
  rejects(s, /destination "10.1.0.1\/16" is not "default" or a CIDR with host bits clear/);
  s = addRoute(addPhysical(emptyHost(), 'eth0'), '', { dst: 'default', dev: 'eth0', src: '10.9.9.9' });
  rejects(s, /src "10.9.9.9" is not an address of the root namespace/);
  s = addRoute(emptyHost(), '', { dst: '10.0.0.0/8', type: 'blackhole' });
  assert.deepEqual(validateHost(s), []);
  s = addRoute(emptyHost(), '', { dst: '10.0.0.0/8' });
  rejects(s, /names no dev/);
});

test('rules, neighbours and sysctls name devices of their namespace', () => {
  let s = addRule(emptyHost(), '', { priority: 5, iif: 'fpr-x', table: 5 });
  rejects(s, /^Rule "priority 5 iif fpr-x lookup 5" in the root namespace: iif "fpr-x" does not exist/);
  s = addNeighbour(emptyHost(), '', { dev: 'qr-x', ip: '10.0.0.1', lladdr: 'fa:16:3e:00:00:01' });
  rejects(s, /^Neighbour "10.0.0.1 dev qr-x" in the root namespace: dev "qr-x" does not exist/);
  s = addNeighbour(addPhysical(emptyHost(), 'eth0'), '', { dev: 'eth0', ip: '10.0.0.1', lladdr: 'FA:16:3E:00:00:01' });
  rejects(s, /lladdr "FA:16:3E:00:00:01" is not aa:bb:cc:dd:ee:ff/);
  s = setSysctl(emptyHost(), '', 'net.ipv4.conf.fg-1234.proxy_arp', 1);
  rejects(s, /^Sysctl "net.ipv4.conf.fg-1234.proxy_arp" in the root namespace names device "fg-1234" that does not exist there$/);
  assert.deepEqual(validateHost(setSysctl(emptyHost(), '', 'net.ipv4.conf.all.forwarding', 1)), []);
});

test('Linux device names longer than 15 characters (IFNAMSIZ)', () => {
  const s = addTap(emptyHost(), '', 'tap0123456789abcdef');
  rejects(s, /^Link "tap0123456789abcdef" in the root namespace: name is 19 characters long \(at most 15, IFNAMSIZ\)$/);
  rejects(addBridge(emptyHost(), 'br-much-too-long-name'), /^Bridge name "br-much-too-long-name" is 21 characters long/);
  rejects(addTap(emptyHost(), '', 'tap;rm -rf'), /has characters other than letters/);
});

test('duplicate names: a port on two bridges, a key that differs from the name, an OVS name taken by a link', () => {
  let s = addBridge(addBridge(emptyHost(), 'br-a'), 'br-b');
  s = addPort(s, 'br-a', tunnelPort('vxlan', '10.0.1.2'));
  s.ovs.bridges['br-b'].ports['vxlan-0a000102'] = tunnelPort('vxlan', '10.0.1.2');
  rejects(s, /^Port "vxlan-0a000102" on bridge "br-b": a port of that name is also on bridge "br-a"$/);
  s = addPhysical(emptyHost(), 'eth0');
  s.namespaces[''].links.eth1 = s.namespaces[''].links.eth0;
  rejects(s, /^Link recorded under "eth1" in the root namespace is named "eth0"$/);
  s = addBridge(emptyHost(), 'br-int');
  s.namespaces[''].links.x = { kind: 'dummy', name: 'br-int', up: true, addresses: [] };
  rejects(s, /the name is taken by OVS bridge "br-int"/);
  s = addFlows(addBridge(emptyHost(), 'br-int'), 'br-int', [{ table: 0, priority: 1, match: 'ip', actions: 'drop' }]);
  const one = itemsOf(s.ovs.bridges['br-int'].flows);
  s.ovs.bridges['br-int'].flows = [...one, { ...one[0], actions: 'NORMAL' }];
  rejects(s, /^Flow "table=0,priority=1,ip" on bridge "br-int": another flow has the same table, priority and match$/);
});

test('OVS devices: every internal port has exactly one device, bridge devices stay in the root namespace', () => {
  let s = addInternalPort(addBridge(addNamespace(emptyHost(), 'ns1'), 'br-int'), 'br-int', 'qr-1', { namespace: 'ns1' });
  assert.deepEqual(validateHost(s), []);
  s = removeLink(s, 'ns1', 'qr-1');
  rejects(s, /^OVS internal port "qr-1" has no "ovs-internal" link for its device in any namespace$/);
  s = addLink(emptyHost(), '', { kind: 'ovs-internal', name: 'qr-2', up: true, addresses: [] });
  rejects(s, /^Link "qr-2" in the root namespace: no OVS bridge or internal port has this name$/);
});

test('patch pairs must point at each other across bridges; tunnels need addresses', () => {
  let s = addPatchPair(addBridge(addBridge(emptyHost(), 'br-int'), 'br-tun'), 'br-int', 'patch-tun', 'br-tun', 'patch-int');
  assert.deepEqual(validateHost(s), []);
  s = addPort(addBridge(emptyHost(), 'br-int'), 'br-int', tunnelPort('vxlan', '10.0.1.2', { name: 'vx', local_ip: 'x', key: 1 << 24 }));
  rejects(s, /^Port "vx" on bridge "br-int": local_ip "x" is not an IP address$/);
  rejects(s, /key "16777216" is not "flow" or 0-16777215/);
});

test('iptables text: one whole table, and the ipsets it uses exist', () => {
  let s = setIptables(emptyHost(), '', 'filter', '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m set --match-set NIPv4x src -j ACCEPT\nCOMMIT\n');
  rejects(s, /^iptables table "filter" in the root namespace: rule uses ipset "NIPv4x" that does not exist in the root namespace$/);
  s = setIptables(emptyHost(), '', 'nat', '*filter\nCOMMIT\n');
  rejects(s, /text must start with "\*nat", found "\*filter"/);
  s = setIptables(emptyHost(), '', 'nat', '*nat\n-A POSTROUTING -j ACCEPT\n');
  rejects(s, /text must end with "COMMIT"/);
});

test('services live in existing namespaces and interfaces', () => {
  let s = addDhcpServer(emptyHost(), { id: 'net1', namespace: 'qdhcp-net1', interface: 'tap1' });
  rejects(s, /^DHCP server "net1": namespace "qdhcp-net1" does not exist$/);
  s = addDhcpServer(addNamespace(emptyHost(), 'qdhcp-net1'), {
    id: 'net1',
    namespace: 'qdhcp-net1',
    interface: 'tap1',
    hosts: [{ mac: 'fa:16:3e:00:00:01', ip: '10.0.0.5', hostname: 'host 1' }],
    options: [{ tag: 'subnet-x', option: 3, values: ['10.0.0.1'] }],
  });
  rejects(s, /interface "tap1" does not exist in namespace "qdhcp-net1"/);
  rejects(s, /hostname "host 1" is not a DNS label/);
  rejects(s, /option 3 uses tag "subnet-x" that no range sets/);
  s = addMetadataProxy(emptyHost(), { id: 'r', namespace: 'qrouter-r', listen_ip: '0.0.0.0', listen_port: 0, upstream: '/x' });
  rejects(s, /^Metadata proxy "r": namespace "qrouter-r" does not exist$/);
  rejects(s, /listen_port 0 is not 1-65535/);
});

test('a DHCP server that passed before is checked for where it lives; a new one in full', () => {
  const base = addInternalPort(addBridge(addNamespace(emptyHost(), 'qdhcp-net1'), 'br-int'), 'br-int', 'tap1', { namespace: 'qdhcp-net1' });
  const server = { id: 'net1', namespace: 'qdhcp-net1', interface: 'tap1', hosts: [{ mac: 'fa:16:3e:00:00:01', ip: '10.0.0.5', hostname: 'host-10-0-0-5' }] };
  const prev = addDhcpServer(base, server);
  assert.deepEqual(validateHost(prev), []);
  // The same server object: its interface going is still seen.
  const gone = { ...prev, namespaces: { ...prev.namespaces, 'qdhcp-net1': { ...prev.namespaces['qdhcp-net1'], links: {} } }, dhcp: prev.dhcp };
  assert.ok(validateHost(gone, prev).some((p) => /^DHCP server "net1": interface "tap1" does not exist/.test(p)));
  // A new object of the same id: its hosts are checked again.
  const bad = addDhcpServer(base, { ...server, hosts: [{ mac: 'nonsense', ip: '10.0.0.5', hostname: 'host-10-0-0-5' }] });
  assert.ok(validateHost(bad, prev).some((p) => /host MAC "nonsense"/.test(p)));
});

test('assertValidHost throws every problem at once', () => {
  const s = addAddress(addPhysical(emptyHost(), 'eth0'), '', 'eth0', 'nonsense');
  const s2 = addTap(s, '', 'tap-with-a-very-long-name');
  assert.throws(
    () => assertValidHost(s2),
    (e: unknown) => e instanceof InvalidHostStateError && e.problems.length === 2 && /nonsense/.test(e.message) && /tap-with-a-very-long-name/.test(e.message),
  );
});

test('a namespace that passed before is still checked against the rest of the host', () => {
  let prev = addVethPair(addNamespace(addNamespace(emptyHost(), 'qrouter-r'), 'fip-x'), 'qrouter-r', 'rfp-r', 'fip-x', 'fpr-r');
  prev = addNeighbour(prev, 'qrouter-r', { ip: '10.0.0.5', lladdr: 'fa:16:3e:00:00:05', dev: 'rfp-r', nud: 'permanent' });
  assert.deepEqual(validateHost(prev), []);
  // qrouter-r is the very same object; its veth peer's namespace is gone.
  const { ['fip-x']: _gone, ...namespaces } = prev.namespaces;
  const s: HostState = { ...prev, namespaces };
  assert.equal(s.namespaces['qrouter-r'], prev.namespaces['qrouter-r']);
  assert.match(validateHost(s, prev).join('\n'), /^Link "rfp-r" in namespace "qrouter-r": veth peer namespace "fip-x" does not exist$/);
  // And an internal port's device placed in two namespaces, one of them unchanged.
  let t = addInternalPort(addBridge(addNamespace(emptyHost(), 'qdhcp-n'), 'br-int'), 'br-int', 'tap1', { namespace: 'qdhcp-n' });
  assert.deepEqual(validateHost(t), []);
  const before = t;
  t = addLink(addNamespace(t, 'qdhcp-m'), 'qdhcp-m', { kind: 'ovs-internal', name: 'tap1', up: true, addresses: [] });
  assert.equal(t.namespaces['qdhcp-n'], before.namespaces['qdhcp-n']);
  assert.match(validateHost(t, before).join('\n'), /the same OVS device is also in namespace "qdhcp-n"/);
});

test('what changed in a namespace is checked even where the rest is the same object as before', () => {
  let prev = addPhysical(addNamespace(emptyHost(), 'qrouter-r'), 'eth0');
  prev = addTap(prev, 'qrouter-r', 'qr-1');
  prev = setIptables(prev, 'qrouter-r', 'filter', '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n');
  assert.deepEqual(validateHost(prev), []);
  // Same links record, a new route through a device that does not exist.
  const routed = addRoute(prev, 'qrouter-r', { dst: '10.1.0.0/16', dev: 'qr-9' });
  assert.equal(routed.namespaces['qrouter-r'].links, prev.namespaces['qrouter-r'].links);
  assert.match(validateHost(routed, prev).join('\n'), /dev "qr-9" does not exist in namespace "qrouter-r"/);
  // Same iptables text, but a set it names went away.
  const withSet: HostState = structuredClone(prev);
  withSet.namespaces['qrouter-r'].ipsets = { NIPv4a: { name: 'NIPv4a', type: 'hash:ip', family: 'inet', members: [] } };
  withSet.namespaces['qrouter-r'].iptables.filter = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m set --match-set NIPv4a src -j ACCEPT\nCOMMIT\n';
  assert.deepEqual(validateHost(withSet), []);
  const ns = withSet.namespaces['qrouter-r'];
  const noSet: HostState = { ...withSet, namespaces: { ...withSet.namespaces, 'qrouter-r': { ...ns, ipsets: {} } } };
  assert.match(validateHost(noSet, withSet).join('\n'), /uses ipset "NIPv4a" that does not exist/);
});

test('a bridge whose ports passed before is still checked against the rest of the host', () => {
  let prev = addPort(addBridge(addBridge(emptyHost(), 'br-int'), 'br-tun'), 'br-tun', tunnelPort('vxlan', '10.0.1.21'));
  prev = addPatchPair(prev, 'br-int', 'patch-tun', 'br-tun', 'patch-int');
  assert.deepEqual(validateHost(prev), []);
  const tunnel = Object.keys(prev.ovs.bridges['br-tun'].ports).find((n) => n.startsWith('vxlan-'))!;
  // br-tun's ports are the same record; a port of one of their names appears on br-int.
  const int = prev.ovs.bridges['br-int'];
  const dup: HostState = { ...prev, ovs: { bridges: { ...prev.ovs.bridges, 'br-int': { ...int, ports: { ...int.ports, [tunnel]: { ...tunnelPort('vxlan', '10.0.1.22'), name: tunnel } } } } } };
  assert.equal(dup.ovs.bridges['br-tun'].ports, prev.ovs.bridges['br-tun'].ports);
  assert.match(validateHost(dup, prev).join('\n'), new RegExp(`^Port "${tunnel}" on bridge "br-int": a port of that name is also on bridge "br-tun"$`, 'm'));
  // A new bridge named like one of them.
  const clash: HostState = { ...prev, ovs: { bridges: { ...prev.ovs.bridges, [tunnel]: { ...int, name: tunnel, ports: {}, flows: [] } } } };
  assert.match(validateHost(clash, prev).join('\n'), new RegExp(`Port "${tunnel}" on bridge "br-tun": a bridge has the same name`));
  // Its patch port's peer went away with br-int's changed ports.
  const { ['patch-tun']: _gone, ...intPorts } = prev.ovs.bridges['br-int'].ports;
  const unpatched: HostState = { ...prev, ovs: { bridges: { ...prev.ovs.bridges, 'br-int': { ...prev.ovs.bridges['br-int'], ports: intPorts } } } };
  assert.match(validateHost(unpatched, prev).join('\n'), /Port "patch-int" on bridge "br-tun": patch peer "patch-tun" does not exist/);
});

test('a pass that changed no device (flows, neighbours, ipset members) is checked for what it changed', () => {
  const prev = sampleComputeHost();
  assert.deepEqual(validateHost(prev), []);
  const ns = Object.values(prev.namespaces).find((n) => n.name.startsWith('qrouter-'))!;
  const dev = Object.keys(ns.links).find((l) => l.startsWith('qr-'))!;
  // The same links and ports records as before: the device cross-checks are skipped, the rest is not.
  const bad: HostState = {
    ...prev,
    namespaces: { ...prev.namespaces, [ns.name]: { ...ns, neighbours: [...itemsOf(ns.neighbours), { dev: 'qr-gone', ip: '10.9.9.9', lladdr: 'fa:16:3e:00:00:99', nud: 'permanent' }] } },
    ovs: { bridges: { ...prev.ovs.bridges, 'br-tun': { ...prev.ovs.bridges['br-tun'], flows: [...itemsOf(prev.ovs.bridges['br-tun'].flows), { table: 300, priority: 1, cookie: '0x0', match: '', actions: 'drop' }] } } },
  };
  const problems = validateHost(bad, prev).join('\n');
  assert.match(problems, /Neighbour "10\.9\.9\.9 dev qr-gone" in namespace "qrouter-[^"]+": dev "qr-gone" does not exist/);
  assert.match(problems, /table 300 is not 0-254/);
  const good: HostState = { ...prev, namespaces: { ...prev.namespaces, [ns.name]: { ...ns, neighbours: [...itemsOf(ns.neighbours), { dev, ip: '10.9.9.9', lladdr: 'fa:16:3e:00:00:99', nud: 'permanent' }] } } };
  assert.deepEqual(validateHost(good, prev), []);
  // A namespace renamed under its key is still caught.
  assert.match(validateHost({ ...prev, namespaces: { ...prev.namespaces, [ns.name]: { ...ns, name: 'other', neighbours: [] } } }, prev).join('\n'), /is named "other"/);
});
