// The hybrid iptables firewall: the text Neutron's iptables_firewall/iptables_manager write,
// checked line by line, parsed by the netfilter model, and run on an emulated compute host
// with two instances behind qbr/qvb/qvo on br-int. The security group info comes from a
// real server through the agents' RPC, so the contract is the server's.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { client, demo, startTestServer, type TestServer } from '../../api/testing.js';
import { InProcessBus } from '../../rpc/inproc.js';
import type { SecurityGroupInfo } from '../../rpc/messages.js';
import { FakeAgent } from '../../server/fake_agents.js';
import { AGENT_TYPES } from '../../server/agents.js';
import {
  addBridge,
  addDhcpServer,
  addFlows,
  addInternalPort,
  addIpset,
  addLinuxBridge,
  addNamespace,
  addPort,
  addTap,
  addVethPair,
  emptyHost,
  setIptables,
  setSysctl,
  systemPort,
} from '../../host/build.js';
import { diff } from '../../host/diff.js';
import { assertValidHost } from '../../host/validate.js';
import { hybridBridge, hybridVethBridgeEnd, hybridVethOvsEnd, securityGroupIpset, tapDevice } from '../../host/names.js';
import type { HostState } from '../../host/state.js';
import { Netfilter } from '../../dataplane/emulated/netfilter/index.js';
import { World } from '../../dataplane/emulated/world.js';
import { renderTrace } from '../../trace/render.js';
import type { TraceRecord } from '../../trace/record.js';
import { COMMENTS, firewallIpsets, hybridFirewall, zonesFromRaw, type FirewallPort, type HybridFirewall } from './firewall.js';

const W = 'neutron-openvswi';
const DHCP_SERVER_IP = '192.168.1.254';
const PEER_IP = '192.168.1.100';

/** Loads a firewall into a fresh netfilter model (ipsets first, as the host diff orders them). */
function load(fw: HybridFirewall): Netfilter {
  const nf = new Netfilter();
  for (const s of fw.ipsets) nf.ipset.restore([`create ${s.name} ${s.type} family ${s.family}`, ...s.members.map((m) => `add ${s.name} ${m}`)].join('\n'));
  nf.restore(fw.raw);
  nf.restore(fw.filter);
  return nf;
}

const lines = (text: string) => text.trimEnd().split('\n');
const chainRules = (text: string, chain: string) => lines(text).filter((l) => l.startsWith(`-A ${chain} `));

describe('hybrid iptables firewall with the server\'s security group info', () => {
  let srv: TestServer;
  let bus: InProcessBus;
  let ovs: FakeAgent;
  let call: ReturnType<typeof client>;
  let netId: string;
  let sgId: string;
  const vms: Array<{ id: string; mac: string; ip: string }> = [];

  const info = (): Promise<SecurityGroupInfo> => ovs.call('security_group_info_for_devices', { devices: vms.map((v) => v.id) });
  const portsOf = (i: SecurityGroupInfo): FirewallPort[] => vms.map((v) => i.devices[v.id]);
  const newPort = async (name: string, host: string) => {
    const r = await call('POST', '/v2.0/ports', { port: { network_id: netId, name, device_owner: 'compute:nova', device_id: name } }, demo);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const bound = await call('PUT', `/v2.0/ports/${r.body.port.id}`, { port: { 'binding:host_id': host } });
    assert.equal(bound.status, 200, JSON.stringify(bound.body));
    return { id: r.body.port.id as string, mac: r.body.port.mac_address as string, ip: r.body.port.fixed_ips[0].ip_address as string };
  };

  before(async () => {
    bus = new InProcessBus();
    srv = await startTestServer('sqlite', { transport: bus.transport() });
    call = client(srv.url);
    ovs = await new FakeAgent(bus.transport(), 'compute1', AGENT_TYPES.ovs, 'neutron-openvswitch-agent', 'N/A', { ovs_hybrid_plug: true }).start();
    netId = (await call('POST', '/v2.0/networks', { network: { name: 'demo-net' } }, demo)).body.network.id;
    const sub = await call('POST', '/v2.0/subnets', { subnet: { network_id: netId, ip_version: 4, cidr: '192.168.1.0/24', gateway_ip: '192.168.1.1', allocation_pools: [{ start: '192.168.1.10', end: '192.168.1.99' }] } }, demo);
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
    vms.push(await newPort('vm1', 'compute1'), await newPort('vm2', 'compute1'));
    sgId = (await call('GET', '/v2.0/security-groups?name=default', undefined, demo)).body.security_groups[0].id;
  });
  after(async () => {
    await ovs?.close();
    await srv?.destroy();
  });

  it('writes the chains, jumps, state, DHCP, anti-spoofing and remote-group rules Neutron writes', async () => {
    const i = await info();
    const fw = hybridFirewall(portsOf(i), i, { enableIpset: true });
    const sorted = [...vms].sort((a, b) => (a.id < b.id ? -1 : 1));
    const [a] = sorted;
    const tap = tapDevice(a.id);
    const ic = `${W}-i${a.id.slice(0, 10)}`;
    const oc = `${W}-o${a.id.slice(0, 10)}`;
    const sc = `${W}-s${a.id.slice(0, 10)}`;
    const set = `NIPv4${sgId}`.slice(0, 29);
    assert.equal(set, securityGroupIpset(sgId, 'IPv4'));
    const f = lines(fw.filter);
    // Declarations: built-ins, then every user chain sorted.
    assert.deepEqual(f.slice(0, 4), ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]']);
    const declared = f.filter((l) => l.startsWith(':') && l.endsWith(' - [0:0]')).map((l) => l.slice(1, -8));
    assert.deepEqual(declared, [...declared].sort());
    assert.ok(declared.includes(ic) && declared.includes(oc) && declared.includes(sc) && declared.includes('neutron-filter-top'));
    assert.ok(declared.every((c) => c.length <= 28), 'iptables chain names are at most 28 characters');
    assert.deepEqual(chainRules(fw.filter, 'FORWARD'), ['-A FORWARD -j neutron-filter-top', `-A FORWARD -j ${W}-FORWARD`]);
    assert.deepEqual(chainRules(fw.filter, 'INPUT'), [`-A INPUT -j ${W}-INPUT`]);
    assert.deepEqual(chainRules(fw.filter, 'neutron-filter-top'), [`-A neutron-filter-top -j ${W}-local`]);
    const toSg = `-m comment --comment "${COMMENTS.VM_INT_SG}" -j ${W}-sg-chain`;
    assert.deepEqual(chainRules(fw.filter, `${W}-FORWARD`).slice(0, 2), [
      `-A ${W}-FORWARD -m physdev --physdev-out ${tap} --physdev-is-bridged ${toSg}`,
      `-A ${W}-FORWARD -m physdev --physdev-in ${tap} --physdev-is-bridged ${toSg}`,
    ]);
    assert.deepEqual(chainRules(fw.filter, `${W}-sg-chain`).slice(0, 2), [
      `-A ${W}-sg-chain -m physdev --physdev-out ${tap} --physdev-is-bridged -m comment --comment "Jump to the VM specific chain." -j ${ic}`,
      `-A ${W}-sg-chain -m physdev --physdev-in ${tap} --physdev-is-bridged -m comment --comment "Jump to the VM specific chain." -j ${oc}`,
    ]);
    assert.equal(chainRules(fw.filter, `${W}-sg-chain`).at(-1), `-A ${W}-sg-chain -j ACCEPT`);
    assert.equal(chainRules(fw.filter, `${W}-INPUT`)[0], `-A ${W}-INPUT -m physdev --physdev-in ${tap} --physdev-is-bridged -m comment --comment "${COMMENTS.INPUT_TO_SG}" -j ${oc}`);
    const assoc = `-m state --state RELATED,ESTABLISHED -m comment --comment "${COMMENTS.ALLOW_ASSOC}" -j RETURN`;
    const invalid = `-m state --state INVALID -m comment --comment "${COMMENTS.INVALID_DROP}" -j DROP`;
    const fallback = `-m comment --comment "${COMMENTS.UNMATCHED}" -j ${W}-sg-fallback`;
    assert.deepEqual(chainRules(fw.filter, ic), [
      `-A ${ic} ${assoc}`,
      `-A ${ic} -d ${a.ip}/32 -p udp -m udp --sport 67 --dport 68 -j RETURN`,
      `-A ${ic} -d 255.255.255.255/32 -p udp -m udp --sport 67 --dport 68 -j RETURN`,
      `-A ${ic} -m set --match-set ${set} src -j RETURN`,
      `-A ${ic} ${invalid}`,
      `-A ${ic} ${fallback}`,
    ]);
    const dhcpClient = `-m comment --comment "${COMMENTS.DHCP_CLIENT}" -j RETURN`;
    assert.deepEqual(chainRules(fw.filter, oc), [
      `-A ${oc} -s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 ${dhcpClient}`,
      `-A ${oc} -j ${sc}`,
      `-A ${oc} -p udp -m udp --sport 68 --dport 67 ${dhcpClient}`,
      `-A ${oc} -p udp -m udp --sport 67 --dport 68 -m comment --comment "${COMMENTS.DHCP_SPOOF}" -j DROP`,
      `-A ${oc} ${assoc}`,
      `-A ${oc} -j RETURN`,
      `-A ${oc} ${invalid}`,
      `-A ${oc} ${fallback}`,
    ]);
    assert.deepEqual(chainRules(fw.filter, sc), [
      `-A ${sc} -s ${a.ip}/32 -m mac --mac-source ${a.mac.toUpperCase()} -m comment --comment "${COMMENTS.PAIR_ALLOW}" -j RETURN`,
      `-A ${sc} -m comment --comment "${COMMENTS.PAIR_DROP}" -j DROP`,
    ]);
    assert.deepEqual(chainRules(fw.filter, `${W}-sg-fallback`), [`-A ${W}-sg-fallback -m comment --comment "${COMMENTS.UNMATCH_DROP}" -j DROP`]);
    // raw: a zone per port, from 4097 in port order, for frames from qvb (bridged and routed) and tap.
    const zoneRules = sorted.flatMap((v, n) => {
      const c = `-m comment --comment "Set zone for ${v.id}" -j CT --zone ${4097 + n}`;
      return [`-m physdev --physdev-in ${hybridVethBridgeEnd(v.id)} ${c}`, `-i ${hybridVethBridgeEnd(v.id)} ${c}`, `-m physdev --physdev-in ${tapDevice(v.id)} ${c}`];
    });
    assert.equal(
      fw.raw,
      [
        '*raw',
        ':PREROUTING ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        `:${W}-OUTPUT - [0:0]`,
        `:${W}-PREROUTING - [0:0]`,
        `-A PREROUTING -j ${W}-PREROUTING`,
        `-A OUTPUT -j ${W}-OUTPUT`,
        ...zoneRules.map((r) => `-A ${W}-PREROUTING ${r}`),
        'COMMIT',
        '',
      ].join('\n'),
    );
    // ipsets: the group's members (both ports), and the (empty) IPv6 set of the IPv6 rule.
    assert.deepEqual(fw.ipsets, [
      { name: set, type: 'hash:net', family: 'inet', members: vms.map((v) => v.ip).sort() },
      { name: securityGroupIpset(sgId, 'IPv6'), type: 'hash:net', family: 'inet6', members: [] },
    ]);
    assert.deepEqual(fw.sysctls, { 'net.bridge.bridge-nf-call-iptables': '1' });
    assert.deepEqual([...fw.zones.values()], [4097, 4098]);
    assert.deepEqual(zonesFromRaw(fw.raw), fw.zones, 'a restarted agent reads the same zones back from the raw table');
    // The netfilter model takes all of it.
    const nf = load(fw);
    assert.equal(nf.rules('filter', oc).length, 8);
  });

  it('is deterministic: the same input (in any order) gives byte-identical text; zones stay with their ports', async () => {
    const i = await info();
    const one = hybridFirewall(portsOf(i), i, { enableIpset: true });
    const two = hybridFirewall(portsOf(i), structuredClone(i), { enableIpset: true });
    assert.deepEqual(two, one);
    const shuffled: SecurityGroupInfo = { ...i, security_groups: Object.fromEntries(Object.entries(i.security_groups).map(([k, v]) => [k, [...v].reverse()])) };
    const three = hybridFirewall([...portsOf(i)].reverse(), shuffled, { enableIpset: true, zones: one.zones });
    assert.equal(three.filter, one.filter);
    assert.equal(three.raw, one.raw);
    // A port sorting before the others keeps the existing zones and gets the next one.
    const early: FirewallPort = { ...portsOf(i)[0], id: '00000000-0000-4000-8000-000000000001', mac_address: 'fa:16:3e:00:00:99', fixed_ips: ['192.168.1.77'] };
    const four = hybridFirewall([...portsOf(i), early], i, { enableIpset: true, zones: one.zones });
    assert.deepEqual([...four.zones.entries()].sort(), [...one.zones.entries(), ['00000000-00', 4099]].sort());
    assert.match(four.raw, /--physdev-in tap00000000-00 -m comment --comment "Set zone for 00000000-0000-4000-8000-000000000001" -j CT --zone 4099/);
    // Without the map the numbering restarts in port order (Neutron's fresh agent).
    assert.equal(hybridFirewall([...portsOf(i), early], i, { enableIpset: true }).zones.get('00000000-00'), 4097);
    // A removed port keeps its zone in the map (Neutron frees zones only when they run out).
    const five = hybridFirewall([portsOf(i)[0]], i, { enableIpset: true, zones: four.zones });
    assert.deepEqual(five.zones, four.zones);
    assert.equal((five.raw.match(/CT --zone/g) ?? []).length, 3);
  });

  it('on an emulated host: members pass, outsiders are dropped until an ICMP rule, replies are ESTABLISHED, spoofing and rogue DHCP are dropped', async () => {
    const i = await info();
    let fw = hybridFirewall(portsOf(i), i, { enableIpset: true });
    const { w, h, state } = computeHost(vms, fw, { addresses: true });
    assert.deepEqual(diff(h.readState(), state), [], 'the host took the whole state');
    const [vm1, vm2] = vms;
    const echoAt = (rec: TraceRecord, ns: string) => rec.delivered.some((d) => d.ns === ns && d.to === 'icmp echo');
    const droppedBy = (rec: TraceRecord, re: RegExp) => rec.dropped.some((d) => re.test(d.reason));

    // Instance to instance in the same group: the remote-group ipset lets it in, the reply is ESTABLISHED.
    const east = w.ping({ host: 'compute1', ns: 'vm1' }, vm2.ip);
    assert.ok(echoAt(east, 'vm2'), renderTrace(east));
    assert.ok(east.delivered.some((d) => d.ns === 'vm1' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0), renderTrace(east));
    const viaSet = east.steps.find((s) => s.kind === 'netfilter' && s.dev === tapDevice(vm2.id) && s.before.ip?.src === vm1.ip);
    assert.ok((viaSet?.detail as Array<{ rule: string }>).some((s) => /--match-set NIPv4\S+ src -j RETURN/.test(s.rule)), renderTrace(east));

    // A source outside the group, no rule for it: dropped by the fallback.
    const inbound = w.ping({ host: 'compute1', ns: 'peer' }, vm1.ip);
    assert.ok(!echoAt(inbound, 'vm1'), renderTrace(inbound));
    assert.ok(droppedBy(inbound, /sg-fallback -m comment --comment "Default drop rule for unmatched traffic." -j DROP/), renderTrace(inbound));

    // The instance's own connection to it: the reply comes back as ESTABLISHED.
    const outbound = w.ping({ host: 'compute1', ns: 'vm1' }, PEER_IP);
    assert.ok(echoAt(outbound, 'peer'), renderTrace(outbound));
    assert.ok(outbound.delivered.some((d) => d.ns === 'vm1' && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0), renderTrace(outbound));
    const back = outbound.steps.find((s) => s.kind === 'netfilter' && s.dev === tapDevice(vm1.id) && s.before.ip?.src === PEER_IP && s.action.startsWith('FORWARD'));
    assert.ok((back?.detail as Array<{ rule: string }>).some((s) => /-A neutron-openvswi-i\S+ -m state --state RELATED,ESTABLISHED/.test(s.rule)), renderTrace(outbound));
    const zone = fw.zones.get(vm1.id.slice(0, 11));
    assert.ok(h.root.nf().conntrack.list().some((c) => c.includes(`zone=${zone}`) && c.includes(`src=${vm1.ip} dst=${PEER_IP}`)), h.root.nf().conntrack.list().join('\n'));

    // Forged source MAC, forged source IP: dropped by the port's spoof chain.
    const spoofDrop = /-A neutron-openvswi-s\S+ -m comment --comment "Drop traffic without an IP\/MAC allow rule." -j DROP/;
    const forgedIp = w.send({ host: 'compute1', ns: 'vm1' }, { proto: 'udp', src: '192.168.1.99', dst: vm2.ip, dport: 5000 });
    assert.ok(droppedBy(forgedIp, spoofDrop), renderTrace(forgedIp));
    assert.ok(!forgedIp.delivered.some((d) => d.ns === 'vm2'), renderTrace(forgedIp));
    const realMac = h.ns('vm1').device('eth0').mac;
    h.ns('vm1').device('eth0').mac = 'fa:16:3e:99:99:99';
    const forgedMac = w.ping({ host: 'compute1', ns: 'vm1' }, vm2.ip);
    assert.ok(!echoAt(forgedMac, 'vm2'), renderTrace(forgedMac));
    assert.ok(droppedBy(forgedMac, spoofDrop), renderTrace(forgedMac));
    h.ns('vm1').device('eth0').mac = realMac;

    // DHCP: a client request to the server passes; the instance answering as a server is dropped.
    const got: string[] = [];
    h.ns('qdhcp').udp.set(67, (m) => void got.push(`${m.src}:${m.sport}`));
    w.send({ host: 'compute1', ns: 'vm1' }, { proto: 'udp', dst: DHCP_SERVER_IP, sport: 68, dport: 67 });
    assert.deepEqual(got, [`${vm1.ip}:68`]);
    const rogue = w.send({ host: 'compute1', ns: 'vm2' }, { proto: 'udp', dst: vm1.ip, sport: 67, dport: 68 });
    assert.ok(droppedBy(rogue, /Prevent DHCP Spoofing by VM\./), renderTrace(rogue));
    assert.ok(!rogue.delivered.some((d) => d.ns === 'vm1'), renderTrace(rogue));

    // The ICMP rule (0.0.0.0/0): only the filter table changes, and the outsider's ping passes.
    const r = await call('POST', '/v2.0/security-group-rules', { security_group_rule: { security_group_id: sgId, direction: 'ingress', protocol: 'icmp', remote_ip_prefix: '0.0.0.0/0' } }, demo);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const i2 = await info();
    const fw2 = hybridFirewall(portsOf(i2), i2, { enableIpset: true, zones: fw.zones });
    assert.equal(fw2.raw, fw.raw);
    assert.match(fw2.filter, /-A neutron-openvswi-i\S+ -p icmp -j RETURN\n/, 'a /0 prefix is no constraint: no -s');
    const ops = h.applyState(computeHost(vms, fw2, { addresses: true }).state);
    assert.deepEqual(ops.map((o) => `${o.op} ${'table' in o ? o.table : ''}`), ['iptables.restore filter']);
    const allowed = w.ping({ host: 'compute1', ns: 'peer' }, vm1.ip);
    assert.ok(echoAt(allowed, 'vm1'), renderTrace(allowed));
    fw = fw2;

    // A new member of the group (a port on another host): only the ipset changes.
    const third = await newPort('vm3', 'compute2');
    const heard: string[] = [];
    h.ns('vm1').udp.set(7000, (m) => void heard.push(m.src));
    try {
      const blocked = w.send({ host: 'compute1', ns: 'peer' }, { proto: 'udp', src: third.ip, dst: vm1.ip, dport: 7000 });
      assert.ok(droppedBy(blocked, /sg-fallback/), renderTrace(blocked));
      const i3 = await info();
      const fw3 = hybridFirewall(portsOf(i3), i3, { enableIpset: true, zones: fw.zones });
      assert.equal(fw3.filter, fw.filter);
      assert.equal(fw3.raw, fw.raw);
      const ops3 = h.applyState(computeHost(vms, fw3, { addresses: true }).state);
      assert.deepEqual(ops3, [{ op: 'ipset.update', namespace: '', name: securityGroupIpset(sgId, 'IPv4'), add: [third.ip], del: [], members: [...vms.map((v) => v.ip), third.ip].sort() }]);
      const passes = w.send({ host: 'compute1', ns: 'peer' }, { proto: 'udp', src: third.ip, dst: vm1.ip, dport: 7000 });
      assert.deepEqual(heard, [third.ip], renderTrace(passes));
    } finally {
      await call('DELETE', `/v2.0/ports/${third.id}`, undefined, demo);
    }
  });

  it('DHCP through the firewall: DISCOVER from 0.0.0.0 and the server\'s OFFER/ACK to the port\'s address reach their ends', async () => {
    const i = await info();
    const fw = hybridFirewall(portsOf(i), i, { enableIpset: true });
    const { w } = computeHost(vms, fw, { addresses: false });
    let lease: { ip: string } | undefined;
    const rec = w.dhcp({ host: 'compute1', ns: 'vm1' }, (l) => (lease = l));
    assert.equal(lease?.ip, vms[0].ip, renderTrace(rec));
    const kinds = rec.delivered.filter((d) => d.to.includes('udp:6')).map((d) => `${d.ns} ${(d.frame.data as { dhcp: string }).dhcp}`);
    assert.deepEqual(kinds, ['qdhcp DISCOVER', 'vm1 OFFER', 'qdhcp REQUEST', 'vm1 ACK']);
  });

  it('without ipsets a remote group is one rule per member address, the port\'s own left out; packets behave the same', async () => {
    const i = await info();
    const fw = hybridFirewall(portsOf(i), i, { enableIpset: false });
    assert.deepEqual(fw.ipsets, []);
    assert.doesNotMatch(fw.filter, /match-set/);
    for (const v of vms) {
      const others = vms.filter((o) => o !== v).map((o) => `-A ${W}-i${v.id.slice(0, 10)} -s ${o.ip}/32 -j RETURN`);
      const mine = chainRules(fw.filter, `${W}-i${v.id.slice(0, 10)}`).filter((l) => / -s \S+ -j RETURN$/.test(l));
      assert.deepEqual(mine, others);
    }
    const { w } = computeHost(vms, fw, { addresses: true });
    const rec = w.ping({ host: 'compute1', ns: 'vm2' }, vms[0].ip);
    assert.ok(rec.delivered.some((d) => d.ns === 'vm1' && d.to === 'icmp echo'), renderTrace(rec));
    // (The group has the ICMP rule by now: UDP from a non-member has no rule.)
    const out = w.send({ host: 'compute1', ns: 'peer' }, { proto: 'udp', dst: vms[0].ip, dport: 7000 });
    assert.ok(!out.delivered.some((d) => d.ns === 'vm1'), renderTrace(out));
  });
});

// ------------------------------------------------------------------------------ synthetic

const SG = '3f0e8a1b-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const SG2 = '7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d';
const P1 = 'a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d';
const P2 = 'b2c3d4e5-f6a7-4b6c-9d0e-1f2a3b4c5d6e';
const NOSEC = 'c3d4e5f6-a7b8-4c7d-8e9f-2a3b4c5d6e7f';
const ROUTER = 'd4e5f6a7-b8c9-4d8e-9f0a-3b4c5d6e7f80';

function port(id: string, o: Partial<FirewallPort> = {}): FirewallPort {
  return {
    id,
    mac_address: 'fa:16:3e:0a:0b:0c',
    fixed_ips: ['10.0.0.5'],
    allowed_address_pairs: [],
    security_groups: [SG],
    port_security_enabled: true,
    device_owner: 'compute:nova',
    network_id: 'net-1',
    ...o,
  };
}

let ruleSeq = 0;
function rule(sg: string, o: Partial<SecurityGroupInfo['security_groups'][string][number]>): SecurityGroupInfo['security_groups'][string][number] {
  ruleSeq++;
  return {
    id: `r${String(ruleSeq).padStart(3, '0')}`,
    security_group_id: sg,
    direction: 'ingress',
    ethertype: 'IPv4',
    protocol: null,
    port_range_min: null,
    port_range_max: null,
    remote_ip_prefix: null,
    remote_group_id: null,
    ...o,
  };
}

function syntheticInfo(): SecurityGroupInfo {
  return {
    devices: {},
    security_groups: {
      [SG]: [
        rule(SG, { protocol: 'tcp', port_range_min: 22, port_range_max: 22 }),
        rule(SG, { protocol: 'tcp', port_range_min: 1000, port_range_max: 2000, remote_ip_prefix: '198.51.100.7/24' }),
        rule(SG, { protocol: 'udp', port_range_min: 53, port_range_max: 53, remote_ip_prefix: '203.0.113.9' }),
        rule(SG, { protocol: 'icmp', port_range_min: 8, port_range_max: 0 }),
        rule(SG, { protocol: 'icmp', port_range_min: 3, port_range_max: null }),
        rule(SG, { protocol: '6', port_range_min: 80, port_range_max: 80 }),
        rule(SG, { protocol: '47' }),
        rule(SG, { protocol: '0', remote_ip_prefix: '0.0.0.0/0' }),
        rule(SG, { remote_group_id: SG2 }),
        rule(SG, { protocol: 'tcp', port_range_min: 443, port_range_max: 443, remote_group_id: SG2 }),
        rule(SG, { direction: 'egress', protocol: 'tcp', port_range_min: 25, port_range_max: 25, remote_ip_prefix: '192.0.2.0/24' }),
        rule(SG, { direction: 'egress', remote_group_id: SG2 }),
        rule(SG, { ethertype: 'IPv6', protocol: 'tcp', port_range_min: 22, port_range_max: 22 }),
      ],
      [SG2]: [rule(SG2, { protocol: 'tcp', port_range_min: 22, port_range_max: 22 })],
    },
    sg_member_ips: { [SG2]: { IPv4: ['10.0.0.9', '10.0.0.5', '10.2.0.0/16', '0.0.0.0/0'], IPv6: ['2001:db8::5'] } },
  };
}

describe('hybrid iptables firewall: rule forms', () => {
  const ports = [
    port(P1, { allowed_address_pairs: [{ ip_address: '10.0.0.50', mac_address: 'fa:16:3e:aa:bb:cc' }, { ip_address: '10.1.0.0/24', mac_address: 'fa:16:3e:0a:0b:0c' }] }),
    port(P2, { fixed_ips: [], mac_address: 'fa:16:3e:0d:0e:0f', security_groups: [SG, SG2] }),
    port(NOSEC, { port_security_enabled: false, security_groups: [] }),
    port(ROUTER, { device_owner: 'network:router_interface_distributed', security_groups: [] }),
  ];

  it('a member change makes only the sets: the same array while the members are, an unchanged set kept', () => {
    const base = syntheticInfo();
    base.devices = Object.fromEntries(ports.map((p) => [p.id, p]));
    base.security_groups[SG].push(rule(SG, { ethertype: 'IPv6', remote_group_id: SG2 }));
    const first = firewallIpsets(base);
    assert.deepEqual(first, hybridFirewall(ports, base, { enableIpset: true }).ipsets);
    assert.deepEqual(first.map((s) => s.name), [securityGroupIpset(SG2, 'IPv4'), securityGroupIpset(SG2, 'IPv6')].sort());
    assert.equal(firewallIpsets({ ...base }, first), first);
    const members = base.sg_member_ips[SG2];
    const changed = { ...base, sg_member_ips: { [SG2]: { ...members, IPv4: [...members.IPv4, '10.0.0.77'] } } };
    const next = firewallIpsets(changed, first);
    assert.deepEqual(next, hybridFirewall(ports, changed, { enableIpset: true }).ipsets);
    const v6 = securityGroupIpset(SG2, 'IPv6');
    assert.equal(next.find((s) => s.name === v6), first.find((s) => s.name === v6));
    assert.ok(next.find((s) => s.name !== v6)!.members.includes('10.0.0.77'));
  });

  it('protocols, ports, ICMP type/code, prefixes and remote groups as Neutron spells them; the model parses every rule', () => {
    const info = syntheticInfo();
    const fw = hybridFirewall(ports, info, { enableIpset: true });
    const i1 = `${W}-i${P1.slice(0, 10)}`;
    const set2 = securityGroupIpset(SG2, 'IPv4');
    assert.deepEqual(
      chainRules(fw.filter, i1).map((l) => l.slice(i1.length + 4)),
      [
        `-m state --state RELATED,ESTABLISHED -m comment --comment "${COMMENTS.ALLOW_ASSOC}" -j RETURN`,
        '-d 10.0.0.5/32 -p udp -m udp --sport 67 --dport 68 -j RETURN',
        '-d 255.255.255.255/32 -p udp -m udp --sport 67 --dport 68 -j RETURN',
        '-p tcp -m tcp --dport 22 -j RETURN',
        '-s 198.51.100.0/24 -p tcp -m tcp -m multiport --dports 1000:2000 -j RETURN',
        '-s 203.0.113.9/32 -p udp -m udp --dport 53 -j RETURN',
        '-p icmp -m icmp --icmp-type 8/0 -j RETURN',
        '-p icmp -m icmp --icmp-type 3 -j RETURN',
        '-p tcp -m tcp --dport 80 -j RETURN',
        '-p gre -j RETURN',
        '-j RETURN',
        `-m set --match-set ${set2} src -j RETURN`,
        `-p tcp -m tcp --dport 443 -m set --match-set ${set2} src -j RETURN`,
        `-m state --state INVALID -m comment --comment "${COMMENTS.INVALID_DROP}" -j DROP`,
        `-m comment --comment "${COMMENTS.UNMATCHED}" -j ${W}-sg-fallback`,
      ],
    );
    const o1 = `${W}-o${P1.slice(0, 10)}`;
    const egress = chainRules(fw.filter, o1).map((l) => l.slice(o1.length + 4));
    assert.deepEqual(egress.slice(5, 7), ['-d 192.0.2.0/24 -p tcp -m tcp --dport 25 -j RETURN', `-m set --match-set ${set2} dst -j RETURN`]);
    // Anti-spoofing: allowed address pairs first, then the fixed IPs, MACs in upper case.
    const s1 = `${W}-s${P1.slice(0, 10)}`;
    assert.deepEqual(
      chainRules(fw.filter, s1).map((l) => l.slice(s1.length + 4)),
      [
        `-s 10.0.0.50/32 -m mac --mac-source FA:16:3E:AA:BB:CC -m comment --comment "${COMMENTS.PAIR_ALLOW}" -j RETURN`,
        `-s 10.1.0.0/24 -m mac --mac-source FA:16:3E:0A:0B:0C -m comment --comment "${COMMENTS.PAIR_ALLOW}" -j RETURN`,
        `-s 10.0.0.5/32 -m mac --mac-source FA:16:3E:0A:0B:0C -m comment --comment "${COMMENTS.PAIR_ALLOW}" -j RETURN`,
        `-m comment --comment "${COMMENTS.PAIR_DROP}" -j DROP`,
      ],
    );
    // A port without fixed IPs: only its MAC is checked; its ingress has only the broadcast DHCP rule.
    const s2 = `${W}-s${P2.slice(0, 10)}`;
    assert.deepEqual(chainRules(fw.filter, s2)[0], `-A ${s2} -m mac --mac-source FA:16:3E:0D:0E:0F -m comment --comment "${COMMENTS.PAIR_ALLOW}" -j RETURN`);
    const i2 = chainRules(fw.filter, `${W}-i${P2.slice(0, 10)}`);
    assert.equal(i2.filter((l) => l.includes('--sport 67 --dport 68')).length, 1);
    // Rules from two groups: the duplicate (tcp 22 in SG and SG2) is written once.
    assert.equal(i2.filter((l) => l.endsWith('-p tcp -m tcp --dport 22 -j RETURN')).length, 1);
    // Port security disabled: ACCEPT in FORWARD and INPUT, no chains, no zone. Trusted (network:*): ACCEPT in FORWARD.
    const fwd = chainRules(fw.filter, `${W}-FORWARD`);
    const nosecTap = tapDevice(NOSEC);
    const routerTap = tapDevice(ROUTER);
    assert.deepEqual(fwd.slice(4), [
      `-A ${W}-FORWARD -m physdev --physdev-out ${routerTap} --physdev-is-bridged -m comment --comment "${COMMENTS.TRUSTED_ACCEPT}" -j ACCEPT`,
      `-A ${W}-FORWARD -m physdev --physdev-in ${routerTap} --physdev-is-bridged -m comment --comment "${COMMENTS.TRUSTED_ACCEPT}" -j ACCEPT`,
      `-A ${W}-FORWARD -m physdev --physdev-out ${nosecTap} --physdev-is-bridged -m comment --comment "${COMMENTS.PORT_SEC_ACCEPT}" -j ACCEPT`,
      `-A ${W}-FORWARD -m physdev --physdev-in ${nosecTap} --physdev-is-bridged -m comment --comment "${COMMENTS.PORT_SEC_ACCEPT}" -j ACCEPT`,
    ]);
    assert.equal(chainRules(fw.filter, `${W}-INPUT`).at(-1), `-A ${W}-INPUT -m physdev --physdev-in ${nosecTap} --physdev-is-bridged -m comment --comment "${COMMENTS.PORT_SEC_ACCEPT}" -j ACCEPT`);
    for (const id of [NOSEC, ROUTER]) {
      assert.ok(!fw.filter.includes(`:${W}-i${id.slice(0, 10)}`) && !fw.filter.includes(`:${W}-o${id.slice(0, 10)}`), `no chains for ${id}`);
      assert.ok(!fw.raw.includes(id), `no zone for ${id}`);
    }
    assert.deepEqual([...fw.zones.keys()], [P1.slice(0, 11), P2.slice(0, 11)]);
    // ipsets: members as ipset lists them, /0 as two /1s; IPv6 set for the IPv6 group only if a rule needs it.
    assert.deepEqual(fw.ipsets, [{ name: set2, type: 'hash:net', family: 'inet', members: ['0.0.0.0/1', '10.0.0.5', '10.0.0.9', '10.2.0.0/16', '128.0.0.0/1'] }]);
    // No IPv6 rules in the IPv4 table.
    assert.doesNotMatch(fw.filter, /ipv6|icmp6/);
    const nf = load(fw);
    assert.ok(nf.chains('filter').includes(i1));
  });

  it('without ipsets: one rule per member address except the port\'s own, /0 without -s', () => {
    const fw = hybridFirewall(ports, syntheticInfo(), { enableIpset: false });
    const i1 = `${W}-i${P1.slice(0, 10)}`;
    const rg = chainRules(fw.filter, i1).map((l) => l.slice(i1.length + 4)).slice(10, -2);
    assert.deepEqual(rg, [
      '-j RETURN', // the "any protocol from 0.0.0.0/0" rule; the member 0.0.0.0/0 gives it again and is pruned
      '-s 10.0.0.9/32 -j RETURN',
      '-s 10.2.0.0/16 -j RETURN',
      '-p tcp -m tcp --dport 443 -j RETURN',
      '-s 10.0.0.9/32 -p tcp -m tcp --dport 443 -j RETURN',
      '-s 10.2.0.0/16 -p tcp -m tcp --dport 443 -j RETURN',
    ]);
    load(fw);
  });

  it('a stateless group gets CT --notrack instead of a zone', () => {
    const info = syntheticInfo();
    info.security_groups[SG] = info.security_groups[SG].map((r) => ({ ...r, stateful: false }));
    const fw = hybridFirewall([ports[0]], info, { enableIpset: true });
    assert.match(fw.raw, new RegExp(`-i ${hybridVethBridgeEnd(P1)} -m comment --comment "Make ${P1} stateless" -j CT --notrack\n`));
    load(fw);
  });

  it('no ports: the base chains only (sg-chain accepting), still valid for the model', () => {
    const fw = hybridFirewall([], { devices: {}, security_groups: {}, sg_member_ips: {} }, { enableIpset: true });
    assert.deepEqual(chainRules(fw.filter, `${W}-sg-chain`), [`-A ${W}-sg-chain -j ACCEPT`]);
    assert.equal(fw.zones.size, 0);
    load(fw);
  });
});

// ------------------------------------------------------------------------------ the host

/**
 * compute1's root namespace: br-int (NORMAL), each instance plugged tap -> qbr -> qvb/qvo as
 * os-vif's hybrid plug does, a peer namespace and a DHCP server namespace on br-int, and
 * the firewall's tables, ipsets and sysctls.
 */
function computeHost(vms: Array<{ id: string; mac: string; ip: string }>, fw: HybridFirewall, o: { addresses: boolean }) {
  let s: HostState = emptyHost();
  s = addBridge(s, 'br-int');
  s = addFlows(s, 'br-int', [{ table: 0, priority: 0, actions: 'NORMAL' }]);
  for (const v of vms) {
    const qbr = hybridBridge(v.id);
    s = addLinuxBridge(s, '', qbr);
    s = addTap(s, '', tapDevice(v.id), { master: qbr, mac: 'fe' + v.mac.slice(2) });
    s = addVethPair(s, '', hybridVethBridgeEnd(v.id), '', hybridVethOvsEnd(v.id), { a: { master: qbr } });
    s = addPort(s, 'br-int', systemPort(hybridVethOvsEnd(v.id), { tag: 1, external_ids: { 'iface-id': v.id, 'attached-mac': v.mac, 'iface-status': 'active' } }));
  }
  s = addNamespace(s, 'peer');
  s = addInternalPort(s, 'br-int', 'tap-peer', { namespace: 'peer', tag: 1, mac: 'fa:16:3e:00:00:64', addresses: [`${PEER_IP}/24`] });
  s = addNamespace(s, 'qdhcp');
  s = addInternalPort(s, 'br-int', 'tap-dhcp', { namespace: 'qdhcp', tag: 1, mac: 'fa:16:3e:00:00:fe', addresses: [`${DHCP_SERVER_IP}/24`] });
  s = addDhcpServer(s, {
    id: 'net',
    namespace: 'qdhcp',
    interface: 'tap-dhcp',
    ranges: [{ tag: 'subnet-1', cidr: '192.168.1.0/24' }],
    hosts: vms.map((v) => ({ mac: v.mac, ip: v.ip, hostname: `host-${v.ip.replaceAll('.', '-')}` })),
    options: [{ tag: 'subnet-1', option: 3, values: ['192.168.1.1'] }],
  });
  for (const [k, v] of Object.entries(fw.sysctls)) s = setSysctl(s, '', k, v);
  for (const set of fw.ipsets) s = addIpset(s, '', set);
  s = setIptables(s, '', 'raw', fw.raw);
  s = setIptables(s, '', 'filter', fw.filter);
  assertValidHost(s);
  const w = new World();
  const h = w.addHost('compute1');
  h.applyState(s);
  vms.forEach((v, n) => h.addInstance(`vm${n + 1}`, { tap: tapDevice(v.id), mac: v.mac, ...(o.addresses ? { ip: `${v.ip}/24` } : {}) }));
  return { w, h, state: s };
}
