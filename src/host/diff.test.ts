import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyOps } from './apply.js';
import {
  addAddress,
  addBridge,
  addDhcpServer,
  addFlows,
  addInternalPort,
  addIpset,
  addLinuxBridge,
  addLink,
  addMetadataProxy,
  addNamespace,
  addNeighbour,
  addPhysical,
  addPort,
  addRoute,
  addTap,
  addVethPair,
  emptyHost,
  iptablesText,
  removeLink,
  removeNamespace,
  removePort,
  replaceCookieFlows,
  setIptables,
  setLink,
  setPort,
  setSysctl,
  systemPort,
} from './build.js';
import { canonicalize } from './canonical.js';
import { diff } from './diff.js';
import { flow } from './flow.js';
import { routeKey, sameDevices } from './keys.js';
import { fipNamespace, hybridVethOvsEnd, routerNamespace, routerToFipDevice, INTEGRATION_BRIDGE } from './names.js';
import { describeOp, OP_KINDS, type HostOp, type HostOpKind } from './ops.js';
import { SAMPLE_IDS, sampleComputeHost, sampleNetworkHost } from './samples.js';
import type { HostState } from './state.js';
import { validateHost } from './validate.js';
import { itemsOf } from './chunks.js';

/**
 * The contract: diff(a, b) applied to a gives b (on every attribute b spells out: a MAC or
 * MTU or route scope that b leaves to the kernel keeps whatever a had), and then there is
 * nothing left to do.
 */
function roundTrip(a: HostState, b: HostState): HostOp[] {
  const ops = diff(a, b);
  let r: HostState;
  try {
    r = applyOps(a, ops);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nops:\n${ops.map(describeOp).join('\n')}`);
  }
  assert.deepEqual(canonicalize(maskUnspecified(r, b)), canonicalize(b), `ops:\n${ops.map(describeOp).join('\n')}`);
  assert.deepEqual(diff(r, b), [], 'a second diff finds nothing');
  return ops;
}

function maskUnspecified(result: HostState, expected: HostState): HostState {
  const r = structuredClone(result);
  for (const [nsName, ns] of Object.entries(r.namespaces)) {
    const e = expected.namespaces[nsName];
    if (!e) continue;
    for (const l of Object.values(ns.links)) {
      const el = e.links[l.name];
      if (!el) continue;
      if (el.mac === undefined) delete l.mac;
      if (el.mtu === undefined) delete l.mtu;
    }
    const want = new Map(e.routes.map((x) => [routeKey(x), x]));
    for (const route of ns.routes) if (want.get(routeKey(route))?.scope === undefined) delete route.scope;
  }
  return r;
}

const kinds = (ops: HostOp[]) => ops.map((o) => o.op);
const DELETIONS = new Set<HostOpKind>([
  'metadata.stop',
  'dhcp.stop',
  'neigh.del',
  'rule.del',
  'route.del',
  'address.del',
  'port.del',
  'bridge.delete',
  'link.delete',
  'sysctl.unset',
  'netns.delete',
]);

test('a state diffed with itself, a clone or a JSON round trip of itself is empty', () => {
  for (const s of [emptyHost(), sampleComputeHost(), sampleNetworkHost()]) {
    assert.deepEqual(diff(s, s), []);
    assert.deepEqual(diff(s, structuredClone(s)), []);
    assert.deepEqual(diff(s, JSON.parse(JSON.stringify(s))), []);
  }
});

test('building a host from nothing creates in dependency order', () => {
  for (const s of [sampleComputeHost(), sampleNetworkHost()]) {
    const ops = roundTrip(emptyHost(), s);
    const at = (pred: (o: HostOp) => boolean) => ops.findIndex(pred);
    const firstUse = (ns: string) => at((o) => 'namespace' in o && o.namespace === ns && o.op !== 'netns.create');
    for (const name of Object.keys(s.namespaces).filter((n) => n)) {
      assert.ok(at((o) => o.op === 'netns.create' && o.namespace === name) < firstUse(name), `namespace ${name} first`);
    }
    for (const o of ops) {
      if (o.op === 'address.add') assert.ok(at((x) => x.op === 'link.create' && (x.link.name === o.dev || x.peer?.name === o.dev)) < ops.indexOf(o));
      if (o.op === 'port.add') assert.ok(at((x) => x.op === 'bridge.create' && x.bridge.name === o.bridge) < ops.indexOf(o));
      if (o.op === 'flows.update') assert.ok(at((x) => x.op === 'port.add' && x.bridge === o.bridge) < ops.indexOf(o));
      if (o.op === 'route.replace') assert.ok(at((x) => x.op === 'address.add') < ops.indexOf(o));
      if (o.op === 'iptables.restore' && /match-set/.test(o.text ?? '')) assert.ok(at((x) => x.op === 'ipset.create') < ops.indexOf(o));
      if (o.op === 'dhcp.start' || o.op === 'metadata.start') assert.equal(ops.indexOf(o) >= ops.length - 2, true);
    }
    assert.ok(!ops.some((o) => DELETIONS.has(o.op)));
  }
});

test('tearing a host down deletes in reverse order and leaves what the kernel removes by itself', () => {
  for (const s of [sampleComputeHost(), sampleNetworkHost()]) {
    const ops = roundTrip(s, emptyHost());
    const ks = kinds(ops);
    // Deletions only (emptying a table is iptables-restore with no text; ipsets go after it).
    assert.ok(ks.every((k) => DELETIONS.has(k) || k === 'ipset.destroy' || k === 'iptables.restore'), ks.join(' '));
    assert.ok(ops.every((o) => o.op !== 'iptables.restore' || o.text === null));
    // Services stop first, namespaces go last; nothing inside a deleted namespace is deleted one by one.
    assert.ok(ks.indexOf('netns.delete') > ks.lastIndexOf('bridge.delete'));
    assert.ok(!ks.includes('route.del') && !ks.includes('address.del') && !ks.includes('port.del'));
  }
  assert.deepEqual(kinds(diff(sampleNetworkHost(), emptyHost())).slice(0, 2), ['metadata.stop', 'dhcp.stop']);
});

test('one changed flow among 5,000 is one modify', () => {
  let s = addBridge(emptyHost(), 'br-int');
  const flows = Array.from({ length: 5000 }, (_, i) => flow({ table: i % 50, priority: 10, cookie: i % 7, match: `reg5=${i}`, actions: 'NORMAL' }));
  s = addFlows(s, 'br-int', flows);
  const b = structuredClone(s);
  const changed = [...itemsOf(b.ovs.bridges['br-int'].flows)];
  changed[1234] = { ...changed[1234], actions: 'drop' };
  b.ovs.bridges['br-int'].flows = changed;
  const ops = roundTrip(s, b);
  assert.deepEqual(ops, [{ op: 'flows.update', bridge: 'br-int', add: [], modify: [changed[1234]], delete: [] }]);
});

test('flows: a new cookie is a modify, a changed match is a delete and an add', () => {
  const a = addFlows(addBridge(emptyHost(), 'br-tun'), 'br-tun', [
    { table: 22, priority: 1, cookie: 1, match: 'dl_vlan=1', actions: 'strip_vlan,output:2' },
    { table: 22, priority: 1, cookie: 1, match: 'dl_vlan=2', actions: 'strip_vlan,output:3' },
  ]);
  let b = replaceCookieFlows(a, 'br-tun', 1, [{ table: 22, priority: 1, match: 'dl_vlan=3', actions: 'strip_vlan,output:3' }]);
  b = replaceCookieFlows(b, 'br-tun', 2, [{ table: 22, priority: 1, match: 'dl_vlan=1', actions: 'strip_vlan,output:2' }]);
  const [op] = roundTrip(a, b) as [Extract<HostOp, { op: 'flows.update' }>];
  assert.deepEqual(op.modify.map((f) => [f.match, f.cookie]), [['dl_vlan=1', '0x2']]);
  assert.deepEqual(op.add.map((f) => f.match), ['dl_vlan=3']);
  assert.deepEqual(op.delete, [{ table: 22, priority: 1, match: 'dl_vlan=2' }]);
});

test('an internal port moved to another namespace is re-plugged and reconfigured there', () => {
  let a = addBridge(addNamespace(addNamespace(emptyHost(), 'ns1'), 'ns2'), 'br-int');
  a = addInternalPort(a, 'br-int', 'qr-1', { namespace: 'ns1', tag: 1, addresses: ['10.0.0.1/24'], mac: 'fa:16:3e:00:00:01' });
  a = addRoute(a, 'ns1', { dst: '10.9.0.0/16', via: '10.0.0.9', dev: 'qr-1' });
  a = addFlows(a, 'br-int', [{ table: 0, priority: 5, match: 'in_port=qr-1', actions: 'NORMAL' }, { table: 0, priority: 1, match: 'in_port=qr-10', actions: 'drop' }]);
  let b = removePort(a, 'br-int', 'qr-1');
  b = { ...b, namespaces: { ...b.namespaces, ns1: { ...b.namespaces.ns1, routes: [] } } };
  b = addInternalPort(b, 'br-int', 'qr-1', { namespace: 'ns2', tag: 1, addresses: ['10.0.0.1/24'], mac: 'fa:16:3e:00:00:01' });
  b = addRoute(b, 'ns2', { dst: '10.9.0.0/16', via: '10.0.0.9', dev: 'qr-1' });
  const ops = roundTrip(a, b);
  assert.deepEqual(ops.map(describeOp), [
    'port.del br-int qr-1',
    'port.add br-int qr-1 (internal)',
    'link.create ns2 qr-1 (ovs-internal)',
    'address.add ns2 10.0.0.1/24 dev qr-1',
    'route.replace ns2 {"dst":"10.9.0.0/16","via":"10.0.0.9","dev":"qr-1","table":254,"type":"unicast"}',
    // The port may have a new OpenFlow number: the flow naming it is sent again, its look-alike is not.
    'flows.update br-int +0 ~1 -0',
  ]);
  const fl = ops.at(-1) as Extract<HostOp, { op: 'flows.update' }>;
  assert.equal(fl.modify[0].match, 'in_port=qr-1');
});

test('a veth pair whose peer changes is deleted once and created once, with both ends configured', () => {
  let a = addNamespace(emptyHost(), 'ns1');
  a = addVethPair(a, '', 'va', 'ns1', 'vb', { b: { addresses: ['10.1.0.2/24'] } });
  let b = removeLink(a, '', 'va');
  b = addVethPair(b, '', 'va', 'ns1', 'vc', { a: { mtu: 1400 }, b: { addresses: ['10.1.0.3/24'] } });
  const ops = roundTrip(a, b);
  assert.deepEqual(ops.map(describeOp), ['link.delete root va', 'link.create root va (veth peer ns1 vc)', 'address.add ns1 10.1.0.3/24 dev vc']);
});

test('a re-created link gets back its addresses, routes, neighbours and device sysctls', () => {
  let a = addLink(emptyHost(), '', { kind: 'dummy', name: 'd0', up: true, addresses: ['10.5.0.1/24'] });
  a = addRoute(a, '', { dst: '10.6.0.0/16', via: '10.5.0.254', dev: 'd0' });
  a = addNeighbour(a, '', { dev: 'd0', ip: '10.5.0.254', lladdr: 'fa:16:3e:00:00:fe' });
  a = setSysctl(a, '', 'net.ipv4.conf.d0.proxy_arp', 1);
  const b = structuredClone(a);
  b.namespaces[''].links.d0 = { ...b.namespaces[''].links.d0, kind: 'tap' };
  assert.deepEqual(kinds(roundTrip(a, b)), ['link.delete', 'link.create', 'address.add', 'route.replace', 'neigh.replace', 'sysctl.set']);
});

test('members follow their bridge: moving from a deleted Linux bridge to a new one', () => {
  let a = addLinuxBridge(emptyHost(), '', 'qbr1');
  a = addTap(a, '', 'tap1', { master: 'qbr1' });
  let b = removeLink(a, '', 'qbr1');
  b = addLinuxBridge(b, '', 'qbr2');
  b = setLink(b, '', 'tap1', { master: 'qbr2' });
  assert.deepEqual(roundTrip(a, b).map(describeOp), ['link.delete root qbr1', 'link.create root qbr2 (bridge)', 'link.set root tap1 master qbr2']);
  // Detaching happens before the device becomes an OVS port.
  const d = addPort(addBridge(setLink(a, '', 'tap1', { master: undefined }), 'br-int'), 'br-int', systemPort('tap1'));
  const ops = roundTrip(a, d).map(describeOp);
  assert.ok(ops.indexOf('link.set root tap1 nomaster') < ops.indexOf('port.add br-int tap1 (system)'), ops.join('\n'));
});

test('a system port whose device is re-created is re-added, and flows naming it are re-sent', () => {
  const a = sampleComputeHost();
  const qvo = hybridVethOvsEnd(SAMPLE_IDS.vmPort);
  let withFlow = addFlows(a, INTEGRATION_BRIDGE, [{ table: 0, priority: 9, cookie: 5, match: `in_port=${qvo}`, actions: 'resubmit(,24)' }]);
  const b = structuredClone(withFlow);
  const qvb = b.namespaces[''].links[qvo];
  b.namespaces[''].links[qvo] = { ...qvb, mac: 'fa:16:3e:0f:0f:0f' };
  assert.deepEqual(kinds(roundTrip(withFlow, b)), ['link.set']); // a MAC change is done in place
  // Re-pairing qvo with a new qvb re-creates qvo.
  let c = removeLink(withFlow, '', qvo);
  c = addVethPair(c, '', 'qvbnew', '', qvo, { a: { master: Object.values(a.namespaces[''].links).find((l) => l.kind === 'bridge')!.name } });
  const ops = roundTrip(withFlow, c).map(describeOp);
  assert.deepEqual(ops, [
    `port.del br-int ${qvo}`,
    `link.delete root qvbd1e2f3a4-b5`,
    `link.create root qvbnew (veth peer root ${qvo})`,
    `port.add br-int ${qvo} (system)`,
    'flows.update br-int +0 ~1 -0',
  ]);
  withFlow = c;
});

test('deleting the fip namespace: the crossing veth is deleted from the surviving end, what was inside goes with it', () => {
  const a = sampleComputeHost();
  const fip = fipNamespace(SAMPLE_IDS.extNet);
  const qrouter = routerNamespace(SAMPLE_IDS.router);
  const rfp = routerToFipDevice(SAMPLE_IDS.router);
  let b = removeNamespace(a, fip);
  b = removePort({ ...b, namespaces: { ...b.namespaces, [fip]: a.namespaces[fip] } }, INTEGRATION_BRIDGE, 'fg-fe11a600-aa');
  b = removeNamespace(b, fip);
  b = removeLink(b, qrouter, rfp);
  b = {
    ...b,
    namespaces: {
      ...b.namespaces,
      [qrouter]: { ...b.namespaces[qrouter], routes: b.namespaces[qrouter].routes.filter((r) => r.dev !== rfp) },
    },
  };
  assert.deepEqual(roundTrip(a, b).map(describeOp), [
    'port.del br-int fg-fe11a600-aa',
    `link.delete ${qrouter} ${rfp}`,
    `netns.delete ${fip}`,
  ]);
});

test('attributes left to the kernel are not chased; OVS columns change in place', () => {
  const a = sampleComputeHost();
  const b = structuredClone(a);
  delete b.namespaces[''].links.eth0.mtu;
  assert.deepEqual(diff(a, b), []);
  let c = setPort(a, INTEGRATION_BRIDGE, hybridVethOvsEnd(SAMPLE_IDS.vmPort), { tag: 7 });
  c = { ...c, ovs: { bridges: { ...c.ovs.bridges, 'br-tun': { ...c.ovs.bridges['br-tun'], fail_mode: 'standalone' } } } };
  assert.deepEqual(roundTrip(a, c).map(describeOp), ['bridge.set br-tun fail_mode', `port.set br-int ${hybridVethOvsEnd(SAMPLE_IDS.vmPort)} tag`]);
});

test('ipsets: exact member changes, swap on type change, destroyed only after the rules stop using them', () => {
  let a = addPhysical(emptyHost(), 'eth0');
  a = addIpset(a, '', { name: 'NIPv4sg1', type: 'hash:net', members: ['10.0.0.1', '10.0.0.2'] });
  a = addIpset(a, '', { name: 'NIPv4sg2', type: 'hash:net', members: ['10.0.0.9'] });
  const rule = (set: string) => iptablesText('filter', [['INPUT', 'ACCEPT']], [`-A INPUT -m set --match-set ${set} src -j ACCEPT`]);
  a = setIptables(a, '', 'filter', rule('NIPv4sg2'));
  const b = structuredClone(a);
  b.namespaces[''].ipsets.NIPv4sg1.members = ['10.0.0.2', '10.0.0.3'];
  b.namespaces[''].ipsets.NIPv4sg1.type = 'hash:ip';
  assert.deepEqual(kinds(roundTrip(a, b)), ['ipset.replace']);
  const c = structuredClone(a);
  c.namespaces[''].ipsets.NIPv4sg1.members = ['10.0.0.2', '10.0.0.3'];
  const [upd] = roundTrip(a, c) as [Extract<HostOp, { op: 'ipset.update' }>];
  assert.deepEqual([upd.add, upd.del], [['10.0.0.3'], ['10.0.0.1']]);
  const d = structuredClone(a);
  delete d.namespaces[''].ipsets.NIPv4sg2;
  d.namespaces[''].iptables.filter = rule('NIPv4sg1');
  assert.deepEqual(kinds(roundTrip(a, d)), ['iptables.restore', 'ipset.destroy']);
  const e = structuredClone(a);
  delete e.namespaces[''].iptables.filter;
  assert.deepEqual(roundTrip(a, e), [{ op: 'iptables.restore', namespace: '', table: 'filter', text: null }]);
});

test('dnsmasq is reloaded for hosts and options, restarted for ranges, lease and a re-created interface', () => {
  const a = sampleNetworkHost();
  const id = SAMPLE_IDS.net;
  const withHost = structuredClone(a);
  withHost.dhcp[id].hosts.push({ mac: 'fa:16:3e:00:00:99', ip: '192.168.1.99', hostname: 'host-192-168-1-99' });
  assert.deepEqual(kinds(roundTrip(a, withHost)), ['dhcp.reload']);
  const lease = structuredClone(a);
  lease.dhcp[id].lease_time = 600;
  assert.deepEqual(kinds(roundTrip(a, lease)), ['dhcp.restart']);
  const proxy = structuredClone(a);
  proxy.metadata[SAMPLE_IDS.router].listen_port = 8775;
  assert.deepEqual(kinds(roundTrip(a, proxy)), ['metadata.stop', 'metadata.start']);
  // The DHCP port moves to another bridge: its device is re-created, dnsmasq must rebind.
  const tap = a.dhcp[id].interface;
  const moved = structuredClone(a);
  const port = moved.ovs.bridges[INTEGRATION_BRIDGE].ports[tap];
  delete moved.ovs.bridges[INTEGRATION_BRIDGE].ports[tap];
  moved.ovs.bridges['br-ex'].ports[tap] = port;
  const ops = roundTrip(a, moved);
  assert.deepEqual(kinds(ops), ['port.del', 'port.add', 'link.create', 'address.add', 'address.add', 'dhcp.restart']);
});

test('a namespace created with a veth to an existing one, and services in it', () => {
  const a = sampleNetworkHost();
  let b = addNamespace(a, 'qdhcp-net2');
  b = addVethPair(b, '', 'ns-x', 'qdhcp-net2', 'tap-x', { b: { addresses: ['10.7.0.2/24'] } });
  b = addDhcpServer(b, { id: 'net2', namespace: 'qdhcp-net2', interface: 'tap-x', ranges: [{ tag: 'subnet-2', cidr: '10.7.0.0/24' }] });
  b = addMetadataProxy(b, { id: 'net2', namespace: 'qdhcp-net2', listen_ip: '169.254.169.254', listen_port: 80, upstream: '/var/lib/neutron/metadata_proxy', network_id: 'net2' });
  assert.deepEqual(roundTrip(a, b).map(describeOp), [
    'netns.create qdhcp-net2',
    'link.create qdhcp-net2 lo (loopback)',
    'link.create root ns-x (veth peer qdhcp-net2 tap-x)',
    'address.add qdhcp-net2 10.7.0.2/24 dev tap-x',
    'dhcp.start net2',
    'metadata.start net2',
  ]);
  roundTrip(b, a);
});

test('structural sharing: a builder change touches only its namespace, found without walking the rest', () => {
  const a = sampleComputeHost();
  const qrouter = routerNamespace(SAMPLE_IDS.router);
  const b = addNeighbour(a, qrouter, { dev: 'qr-c0ffee00-12', ip: '192.168.1.77', lladdr: 'fa:16:3e:00:00:77' });
  assert.equal(b.namespaces[''], a.namespaces['']);
  assert.equal(b.ovs, a.ovs);
  assert.deepEqual(roundTrip(a, b).map(describeOp), [`neigh.replace ${qrouter} 192.168.1.77 dev qr-c0ffee00-12`]);
});

// ---------------------------------------------------------------- randomised round trips

/** mulberry32: a small seeded PRNG, so a failing case can be replayed from its seed. */
function prng(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;
const int = (rng: Rng, n: number) => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: T[]): T | undefined => (xs.length ? xs[int(rng, xs.length)] : undefined);
const hex2 = (rng: Rng) => int(rng, 256).toString(16).padStart(2, '0');
const mac = (rng: Rng) => `fa:16:3e:${hex2(rng)}:${hex2(rng)}:${hex2(rng)}`;

/** Drops a link and everything in its namespace that points at it (and its veth peer, and its OVS system port). */
function purgeLink(s: HostState, ns: string, name: string): void {
  const n = s.namespaces[ns];
  const l = n?.links[name];
  if (!l) return;
  delete n.links[name];
  n.routes = n.routes.filter((r) => r.dev !== name);
  n.rules = n.rules.filter((r) => r.iif !== name);
  n.neighbours = itemsOf(n.neighbours).filter((x) => x.dev !== name);
  for (const k of Object.keys(n.sysctls)) if (k.includes(`.${name}.`)) delete n.sysctls[k];
  for (const o of Object.values(n.links)) if (o.master === name) delete o.master;
  for (const [id, d] of Object.entries(s.dhcp)) if (d.namespace === ns && d.interface === name) delete s.dhcp[id];
  if (ns === '') for (const b of Object.values(s.ovs.bridges)) if (b.ports[name]?.type === 'system') delete b.ports[name];
  if (l.kind === 'veth') purgeLink(s, l.peer_namespace, l.peer);
  const src = new Set(l.addresses.map((x) => x.split('/')[0]));
  n.routes = n.routes.filter((r) => !r.src || !src.has(r.src));
}

const mutations: Array<(s: HostState, rng: Rng) => void> = [
  (s, rng) => {
    const l = pick(rng, Object.values(pick(rng, Object.values(s.namespaces))!.links));
    if (l) l.up = !l.up;
  },
  (s, rng) => {
    const l = pick(rng, Object.values(pick(rng, Object.values(s.namespaces))!.links));
    if (l) l.mtu = 1280 + int(rng, 8000);
  },
  (s, rng) => {
    const l = pick(rng, Object.values(pick(rng, Object.values(s.namespaces))!.links));
    if (l && l.kind !== 'loopback') l.mac = mac(rng);
  },
  (s, rng) => {
    const l = pick(rng, Object.values(pick(rng, Object.values(s.namespaces))!.links));
    const a = `10.${int(rng, 250)}.${int(rng, 250)}.${1 + int(rng, 250)}/24`;
    if (l && !l.addresses.includes(a)) l.addresses.push(a);
  },
  (s, rng) => {
    const l = pick(rng, Object.values(pick(rng, Object.values(s.namespaces))!.links));
    if (l && l.addresses.length) l.addresses.splice(int(rng, l.addresses.length), 1);
  },
  (s, rng) => {
    const n = pick(rng, Object.values(s.namespaces))!;
    const l = pick(rng, Object.values(n.links).filter((x) => x.kind !== 'loopback'));
    const table = pick(rng, [254, 16, 1000 + int(rng, 3)])!;
    const dst = `10.200.${int(rng, 250)}.0/24`;
    if (l && !n.routes.some((r) => r.dst === dst && r.table === table)) n.routes.push({ dst, dev: l.name, table, type: 'unicast', ...(rng() < 0.5 ? { scope: 'link' as const } : {}) });
  },
  (s, rng) => {
    const n = pick(rng, Object.values(s.namespaces))!;
    if (n.routes.length) n.routes.splice(int(rng, n.routes.length), 1);
  },
  (s, rng) => {
    const n = pick(rng, Object.values(s.namespaces))!;
    if (rng() < 0.5 && n.rules.length) n.rules.splice(int(rng, n.rules.length), 1);
    else n.rules.push({ priority: 1000 + int(rng, 100), from: `10.${int(rng, 250)}.0.0/16`, table: 100 + int(rng, 5) });
  },
  (s, rng) => {
    const n = pick(rng, Object.values(s.namespaces))!;
    const l = pick(rng, Object.values(n.links));
    const r = rng();
    const nb = (n.neighbours = [...itemsOf(n.neighbours)]);
    if (r < 0.4 && l) nb.push({ dev: l.name, ip: `10.99.${int(rng, 250)}.${int(rng, 250)}`, lladdr: mac(rng), nud: rng() < 0.5 ? 'permanent' : 'reachable' });
    else if (r < 0.7 && nb.length) nb[int(rng, nb.length)].lladdr = mac(rng);
    else if (nb.length) nb.splice(int(rng, nb.length), 1);
  },
  (s, rng) => {
    const n = pick(rng, Object.values(s.namespaces))!;
    const keys = Object.keys(n.sysctls);
    const l = pick(rng, Object.values(n.links));
    const r = rng();
    if (r < 0.3) n.sysctls['net.ipv4.ip_forward'] = String(int(rng, 2));
    else if (r < 0.6 && l) n.sysctls[`net.ipv4.conf.${l.name}.proxy_arp`] = String(int(rng, 2));
    else if (keys.length) delete n.sysctls[pick(rng, keys)!];
  },
  (s, rng) => {
    const n = pick(rng, Object.values(s.namespaces))!;
    const tables = Object.keys(n.iptables) as (keyof typeof n.iptables)[];
    const r = rng();
    if (r < 0.4 && tables.length) {
      const t = pick(rng, tables)!;
      n.iptables[t] = n.iptables[t]!.replace(/COMMIT\n$/, `-A ${t === 'nat' ? 'POSTROUTING' : 'OUTPUT'} -m comment --comment "r${int(rng, 1000)}" -j ACCEPT\nCOMMIT\n`);
    } else if (r < 0.7 && tables.length) delete n.iptables[pick(rng, tables)!];
    else {
      const sets = Object.keys(n.ipsets);
      const use = sets.length && rng() < 0.5 ? `-A INPUT -m set --match-set ${pick(rng, sets)} src -j DROP\n` : '';
      n.iptables.filter = `*filter\n:INPUT ACCEPT [0:0]\n${use}-A INPUT -p tcp --dport ${int(rng, 65535)} -j DROP\nCOMMIT\n`;
    }
  },
  (s, rng) => {
    const n = pick(rng, Object.values(s.namespaces))!;
    const set = pick(rng, Object.values(n.ipsets));
    const r = rng();
    if (r < 0.3 || !set) n.ipsets[`set${int(rng, 5)}`] = { name: `set${int(rng, 5)}`, type: 'hash:ip', family: 'inet', members: ['10.1.1.1'] };
    else if (r < 0.5) set.members.push(`10.2.${int(rng, 250)}.${int(rng, 250)}`);
    else if (r < 0.7 && set.members.length) set.members.splice(int(rng, set.members.length), 1);
    else if (r < 0.85) set.type = set.type === 'hash:ip' ? 'hash:net' : 'hash:ip';
    else delete n.ipsets[set.name];
  },
  (s, rng) => {
    const b = pick(rng, Object.values(s.ovs.bridges));
    if (!b) return;
    const r = rng();
    const fl = (b.flows = [...itemsOf(b.flows)]);
    if (r < 0.35) fl.push(flow({ table: int(rng, 30), priority: int(rng, 5), cookie: int(rng, 4), match: `reg1=${int(rng, 50)}`, actions: pick(rng, ['drop', 'NORMAL', 'resubmit(,60)'])! }));
    else if (r < 0.6 && fl.length) fl.splice(int(rng, fl.length), 1);
    else if (r < 0.8 && fl.length) fl[int(rng, fl.length)] = { ...fl[int(rng, fl.length)], actions: 'drop' };
    else if (fl.length) {
      const i = int(rng, fl.length);
      fl[i] = { ...fl[i], cookie: '0x' + int(rng, 9).toString(16) };
    }
  },
  (s, rng) => {
    const b = pick(rng, Object.values(s.ovs.bridges));
    const p = b && pick(rng, Object.values(b.ports));
    if (!p) return;
    const r = rng();
    if (r < 0.4) p.tag = int(rng, 4096);
    else if (r < 0.6) delete p.tag;
    else if (r < 0.8) p.external_ids = { ...(p.external_ids ?? {}), 'iface-status': pick(rng, ['active', 'down'])! };
    else if (p.type === 'vxlan' || p.type === 'gre') delete b.ports[p.name];
  },
  (s, rng) => {
    // Move an internal port's device to another namespace.
    const from = pick(rng, Object.values(s.namespaces))!;
    const l = pick(rng, Object.values(from.links).filter((x) => x.kind === 'ovs-internal' && !s.ovs.bridges[x.name]));
    const to = pick(rng, Object.values(s.namespaces));
    if (!l || !to || to === from || to.links[l.name]) return;
    const copy = structuredClone(l);
    purgeLink(s, from.name, l.name);
    for (const b of Object.values(s.ovs.bridges)) if (b.ports[l.name]) return void (to.links[l.name] = copy);
  },
  (s, rng) => {
    const name = `ns${int(rng, 6)}`;
    if (s.namespaces[name]) return;
    let t = addNamespace(s, name);
    t = addLink(t, name, { kind: 'dummy', name: 'd0', up: true, addresses: ['10.77.0.1/24'] });
    t = addRoute(t, name, { dst: 'default', via: '10.77.0.254', dev: 'd0' });
    const dev = `v${int(rng, 1000)}`;
    if (!t.namespaces[''].links[dev]) t = addVethPair(t, '', dev, name, 'eth0', { b: { addresses: ['10.78.0.2/30'] } });
    Object.assign(s, t);
  },
  (s, rng) => {
    const ns = pick(rng, Object.keys(s.namespaces).filter((n) => n));
    if (!ns) return;
    for (const [id, d] of Object.entries(s.dhcp)) if (d.namespace === ns) delete s.dhcp[id];
    for (const [id, m] of Object.entries(s.metadata)) if (m.namespace === ns) delete s.metadata[id];
    for (const l of Object.values(s.namespaces[ns].links)) {
      if (l.kind === 'veth') purgeLink(s, l.peer_namespace, l.peer);
      if (l.kind === 'ovs-internal') for (const b of Object.values(s.ovs.bridges)) delete b.ports[l.name];
    }
    delete s.namespaces[ns];
  },
  (s, rng) => {
    const n = pick(rng, Object.values(s.namespaces))!;
    const l = pick(rng, Object.values(n.links).filter((x) => x.kind === 'dummy' || x.kind === 'tap'));
    if (l) n.links[l.name] = { ...l, kind: l.kind === 'dummy' ? 'tap' : 'dummy' };
  },
  (s, rng) => {
    // Give a veth end a new name (its peer is then re-created too).
    const n = pick(rng, Object.values(s.namespaces))!;
    const l = pick(rng, Object.values(n.links).filter((x) => x.kind === 'veth'));
    if (!l || l.kind !== 'veth' || l.name.length > 13 || n.links[l.name + 'x']) return;
    for (const b of Object.values(s.ovs.bridges)) if (b.ports[l.name]) return;
    const copy = structuredClone(l);
    const peer = structuredClone(s.namespaces[l.peer_namespace].links[l.peer]);
    purgeLink(s, n.name, l.name);
    if (peer.kind !== 'veth' || s.namespaces[l.peer_namespace].links[l.peer]) return;
    for (const b of Object.values(s.ovs.bridges)) if (b.ports[peer.name]) return;
    n.links[l.name + 'x'] = { ...copy, name: l.name + 'x', master: undefined };
    delete n.links[l.name + 'x'].master;
    s.namespaces[l.peer_namespace].links[peer.name] = { ...peer, peer: l.name + 'x' };
  },
  (s, rng) => {
    const d = pick(rng, Object.values(s.dhcp));
    const m = pick(rng, Object.values(s.metadata));
    const r = rng();
    if (d && r < 0.25) d.hosts.push({ mac: mac(rng), ip: `192.168.1.${100 + int(rng, 100)}`, hostname: `host-${int(rng, 1000)}` });
    else if (d && r < 0.5) d.lease_time = 120 + int(rng, 1000);
    else if (d && r < 0.6) d.options = d.options.slice(1);
    else if (m && r < 0.8) m.listen_port = 1 + int(rng, 65535);
    else if (d) delete s.dhcp[d.id];
  },
  (s, rng) => {
    const b = pick(rng, Object.values(s.ovs.bridges));
    if (!b) return;
    if (rng() < 0.5) b.fail_mode = b.fail_mode === 'secure' ? 'standalone' : 'secure';
    else b.protocols = rng() < 0.5 ? ['OpenFlow13'] : undefined;
    if (!b.protocols) delete b.protocols;
  },
  (s, rng) => {
    const n = s.namespaces[''];
    const bridges = Object.values(n.links).filter((l) => l.kind === 'bridge');
    const l = pick(rng, Object.values(n.links).filter((x) => x.kind === 'tap' || x.kind === 'veth' || x.kind === 'dummy'));
    if (!l) return;
    for (const b of Object.values(s.ovs.bridges)) if (b.ports[l.name]) return;
    const br = pick(rng, bridges);
    if (br && rng() < 0.6) l.master = br.name;
    else delete l.master;
  },
  (s, rng) => {
    const r = rng();
    if (r < 0.5) {
      const name = `br-x${int(rng, 3)}`;
      if (s.ovs.bridges[name] || s.namespaces[''].links[name]) return;
      let t = addBridge(s, name);
      const ns = pick(rng, Object.keys(t.namespaces))!;
      if (!t.namespaces[ns].links[`int${name.slice(4)}`]) t = addInternalPort(t, name, `int${name.slice(4)}`, { namespace: ns, addresses: ['10.88.0.1/24'] });
      t = addFlows(t, name, [{ table: 0, priority: 0, actions: 'NORMAL' }]);
      Object.assign(s, t);
    } else {
      const b = pick(rng, Object.values(s.ovs.bridges));
      if (!b) return;
      for (const p of Object.values(b.ports)) {
        if (p.type === 'internal') for (const n of Object.values(s.namespaces)) if (n.links[p.name]?.kind === 'ovs-internal') purgeLink(s, n.name, p.name);
        if (p.type === 'patch') for (const o of Object.values(s.ovs.bridges)) delete o.ports[p.peer];
      }
      purgeLink(s, '', b.name);
      delete s.ovs.bridges[b.name];
    }
  },
];

function perturb(base: HostState, rng: Rng, count: number): HostState {
  const s = structuredClone(base);
  for (let i = 0; i < count; i++) mutations[int(rng, mutations.length)](s, rng);
  return s;
}

function seedHost(rng: Rng): HostState {
  const r = rng();
  if (r < 0.4) return sampleComputeHost();
  if (r < 0.8) return sampleNetworkHost();
  let s = addPhysical(emptyHost(), 'eth0', { addresses: ['10.0.0.5/24'] });
  s = addNamespace(s, 'ns-a');
  s = addVethPair(s, '', 'veth-a', 'ns-a', 'eth0', { b: { addresses: ['10.3.0.2/24'] } });
  return addAddress(s, '', 'veth-a', '10.3.0.1/24');
}

test('random states that keep their devices: the same operations and problems as unshared copies', () => {
  let shared = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const rng = prng(seed);
    const a = perturb(seedHost(rng), rng, int(rng, 3));
    if (validateHost(a).length) continue;
    const b = perturb(a, rng, 1 + int(rng, 4));
    // Where a namespace's links or a bridge's ports came out equal, share the record as agents do.
    for (const [k, n] of Object.entries(b.namespaces)) if (a.namespaces[k] && JSON.stringify(a.namespaces[k].links) === JSON.stringify(n.links)) n.links = a.namespaces[k].links;
    for (const [k, br] of Object.entries(b.ovs.bridges)) if (a.ovs.bridges[k] && JSON.stringify(a.ovs.bridges[k].ports) === JSON.stringify(br.ports)) br.ports = a.ovs.bridges[k].ports;
    if (!sameDevices(a, b)) continue;
    shared++;
    try {
      assert.deepEqual(diff(a, b), diff(structuredClone(a), structuredClone(b)));
      assert.deepEqual(validateHost(b, a).sort(), validateHost(b).sort());
    } catch (e) {
      throw new Error(`seed ${seed}: ${(e as Error).message}`);
    }
  }
  assert.ok(shared > 50, `only ${shared} cases kept their devices`);
});

test('random states: apply(a, diff(a, b)) is b and a second diff is empty, both ways', (t) => {
  const RUNS = 300;
  let checked = 0;
  const seen = new Set<HostOpKind>();
  for (let seed = 1; seed <= RUNS; seed++) {
    const rng = prng(seed);
    const base = seedHost(rng);
    const a = perturb(base, rng, int(rng, 4));
    const b = rng() < 0.8 ? perturb(a, rng, 1 + int(rng, 6)) : perturb(base, rng, 1 + int(rng, 6));
    if (validateHost(a).length || validateHost(b).length) continue; // a mutation broke consistency: not a case
    checked++;
    try {
      for (const o of [...roundTrip(a, b), ...roundTrip(b, a)]) seen.add(o.op);
      assert.deepEqual(diff(b, structuredClone(b)), []);
    } catch (e) {
      throw new Error(`seed ${seed}: ${(e as Error).message}`);
    }
  }
  assert.ok(checked > RUNS * 0.6, `only ${checked} of ${RUNS} random cases were valid states`);
  t.diagnostic(`random round trips: ${checked} valid cases of ${RUNS}`);
  // The random cases reach every kind of operation.
  assert.deepEqual(OP_KINDS.filter((k) => !seen.has(k)), []);
});
