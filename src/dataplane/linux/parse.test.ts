// The linux driver's parsers and command builders, without root: what the tools print is
// turned into the state's spelling, and what goes to the tools is built from validated values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dumpLineSig, numberPorts, parseFlowsLineSig, portRefs, readBackFlows, bundleInput } from './flows.js';
import { isEmptyTable, parseIpsetSave, splitIptablesSave } from './driver.js';
import { parseIpBatch, routeArgs, ruleArgs } from './netlinux.js';
import { parseOvsList, portAddArgs } from './ovsdb.js';
import { commandProblems } from './safety.js';
import { quoteArgv } from './exec.js';
import { dnsmasqArgs, dnsmasqOpts } from './services.js';
import { emptyHost, addLinuxBridge } from '../../host/build.js';

test('a dumped flow and the parse-flows line of the same state flow have one signature', () => {
  const dumped = dumpLineSig(' cookie=0x1a2b, table=20, priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:02:11 actions=strip_vlan,load:0x65->NXM_NX_TUN_ID[],output:1')!;
  const parsed = parseFlowsLineSig('NXT_FLOW_MOD (xid=0x6): ADD table:20 priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:02:11 cookie:0x1a2b actions=strip_vlan,load:0x65->NXM_NX_TUN_ID[],output:1');
  assert.equal(dumped.sig, parsed);
  assert.equal(dumped.flow.match, 'dl_vlan=1,dl_dst=fa:16:3e:00:02:11');
  assert.equal(dumpLineSig(' cookie=0x1a2c, table=20, hard_timeout=300, priority=1,vlan_tci=0x0001/0x0fff,dl_dst=fa:16:3e:00:01:11 actions=output:2'), undefined, 'learnt flows are not state');
  const flow = { table: 20, priority: 2, cookie: '0x1a2b', match: 'dl_vlan=1,dl_dst=fa:16:3e:00:02:11', actions: 'strip_vlan,load:101->NXM_NX_TUN_ID[],output:vxlan-0a000120' };
  assert.deepEqual(readBackFlows(' cookie=0x1a2b, table=20, priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:02:11 actions=strip_vlan,load:0x65->NXM_NX_TUN_ID[],output:1\n', new Map([[parsed!, flow]])), [flow]);
});

test('port names become numbers for parse-flows; NXM fields are not ports', () => {
  const text = 'table=10,priority=1,cookie=0x1,actions=learn(table=20,output:NXM_OF_IN_PORT[]),output:patch-int';
  assert.deepEqual(portRefs(text), ['patch-int']);
  assert.equal(numberPorts(text, { 'patch-int': 1 }), 'table=10,priority=1,cookie=0x1,actions=learn(table=20,output:NXM_OF_IN_PORT[]),output:1');
  assert.equal(numberPorts('in_port="qvo1",actions=resubmit(patch-tun,2)', { qvo1: 5, 'patch-tun': 7 }), 'in_port=5,actions=resubmit(7,2)');
  assert.equal(bundleInput([{ table: 0, priority: 1, cookie: '0x1', match: 'in_port=1', actions: 'drop' }], [], [{ table: 2, priority: 3, match: '' }]), 'delete_strict table=2,priority=3\nadd table=0,priority=1,cookie=0x1,in_port=1,actions=drop\n');
});

test('iptables-save splits per table without counters; an untouched table reads as absent', () => {
  const t = splitIptablesSave('# Generated\n*filter\n:INPUT ACCEPT [10:20]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:X - [0:0]\n-A PREROUTING -j X\nCOMMIT\n');
  assert.equal(t.filter, '*filter\n:INPUT ACCEPT\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\nCOMMIT\n');
  assert.ok(isEmptyTable('filter', t.filter!));
  assert.ok(!isEmptyTable('nat', t.nat!));
});

test('ipset save and ip -j batch output are read as the state spells them', () => {
  assert.deepEqual(parseIpsetSave('create NIPv4x hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12\nadd NIPv4x 10.0.0.5\nadd NIPv4x 10.1.0.0/16\n'), {
    NIPv4x: { name: 'NIPv4x', type: 'hash:net', family: 'inet', members: ['10.0.0.5', '10.1.0.0/16'] },
  });
  const d = parseIpBatch(
    [
      '[]',
      '[{"type":"unicast","dst":"10.9.9.0/24","dev":"vA","table":"main","protocol":"kernel","scope":"link"},{"dst":"default","gateway":"169.254.64.1","dev":"rfp-1","table":"16","protocol":"boot","flags":[]},{"type":"local","dst":"10.9.9.1","dev":"vA","table":"local","protocol":"kernel"},{"type":"blackhole","dst":"10.5.0.5","table":"main","protocol":"boot"}]',
      '[{"priority":0,"src":"all","table":"local"},{"priority":32766,"src":"all","table":"main"},{"priority":32767,"src":"all","table":"default"},{"priority":32768,"src":"192.168.1.11","table":"16"},{"priority":100,"src":"10.0.0.0","srclen":8,"iif":"fpr-1","table":"100"}]',
      '[{"dst":"10.9.9.7","dev":"vA","lladdr":"FA:16:3E:00:00:01","state":["PERMANENT"]},{"dst":"10.9.9.8","dev":"vA","state":["FAILED"]}]',
      '[{"nsid":0,"name":"other"}]',
    ].join('\n'),
  );
  assert.deepEqual(d.routes, [
    { dst: 'default', via: '169.254.64.1', dev: 'rfp-1', table: 16, type: 'unicast', scope: 'global' },
    { dst: '10.5.0.5/32', table: 254, type: 'blackhole', scope: 'global' },
  ]);
  assert.deepEqual(d.rules, [
    { priority: 32768, table: 16, from: '192.168.1.11' },
    { priority: 100, table: 100, from: '10.0.0.0/8', iif: 'fpr-1' },
  ]);
  assert.deepEqual(d.neighbours, [{ dev: 'vA', ip: '10.9.9.7', lladdr: 'fa:16:3e:00:00:01', nud: 'permanent' }]);
  assert.equal(d.nsids.get(0), 'other');
  assert.deepEqual(routeArgs('replace', { dst: 'default', via: '169.254.64.1', dev: 'rfp-1', table: 16, type: 'unicast' }), ['route', 'replace', 'default', 'via', '169.254.64.1', 'dev', 'rfp-1', 'table', '16']);
  assert.deepEqual(ruleArgs('add', { priority: 32768, from: '192.168.1.11', table: 16 }), ['rule', 'add', 'from', '192.168.1.11', 'lookup', '16', 'priority', '32768']);
});

test('ovs-vsctl list output becomes bridges and ports; a veth-realised port reads as internal', () => {
  const out = [
    '{"data":[["br-int","netdev","secure",["set",[]],["map",[]],["map",[]],["set",[["uuid","p1"],["uuid","p2"],["uuid","p0"]]]]],"headings":["name","datapath_type","fail_mode","protocols","external_ids","other_config","ports"]}',
    '{"data":[[["uuid","p1"],"qr-1",3,["map",[]],["map",[["dvrnet-veth-internal","true"]]],["uuid","i1"]],[["uuid","p2"],"vxlan-0a000120",["set",[]],["map",[]],["map",[]],["uuid","i2"]],[["uuid","p0"],"br-int",["set",[]],["map",[]],["map",[]],["uuid","i0"]]],"headings":["_uuid","name","tag","other_config","external_ids","interfaces"]}',
    '{"data":[[["uuid","i1"],"qr-1","",["map",[]],["set",[]],["map",[["iface-id","x"]]],4],[["uuid","i2"],"vxlan-0a000120","vxlan",["map",[["df_default","true"],["key","flow"],["local_ip","10.0.1.31"],["remote_ip","10.0.1.32"]]],["set",[]],["map",[]],2],[["uuid","i0"],"br-int","internal",["map",[]],["set",[]],["map",[]],65534]],"headings":["_uuid","name","type","options","ofport_request","external_ids","ofport"]}',
  ].join('\n');
  const r = parseOvsList(out);
  assert.deepEqual(r.bridges['br-int'].ports, {
    'qr-1': { name: 'qr-1', type: 'internal', tag: 3, external_ids: { 'iface-id': 'x' } },
    'vxlan-0a000120': { name: 'vxlan-0a000120', type: 'vxlan', remote_ip: '10.0.1.32', local_ip: '10.0.1.31', key: 'flow', options: { df_default: 'true' } },
  });
  assert.ok(r.vethPorts.has('qr-1'));
  assert.equal(r.ofports['br-int']['vxlan-0a000120'], 2);
  assert.deepEqual(portAddArgs('br-int', { name: 'qr-1', type: 'internal', tag: 3, external_ids: { 'iface-id': 'a"b' } }, true), [
    '--', '--may-exist', 'add-port', 'br-int', 'qr-1',
    '--', 'set', 'Port', 'qr-1', 'external_ids:dvrnet-veth-internal=true',
    '--', 'set', 'Port', 'qr-1', 'tag=3',
    '--', 'set', 'Interface', 'qr-1', 'external_ids={"iface-id"="a\\"b"}',
  ]);
});

test('names that would read as options or split lines are refused before any command', () => {
  assert.match(commandProblems(addLinuxBridge(emptyHost(), '', '-n'))[0], /"-n"/);
  assert.equal(quoteArgv(['ip', 'link', 'add', "a b'c"]), `ip link add 'a b'\\''c'`);
});

test('dnsmasq gets Neutron-style options and files', () => {
  const d = { id: 'n1', namespace: 'qdhcp-n1', interface: 'tap1', domain: 'openstacklocal', lease_time: 86400, ranges: [{ tag: 'subnet-1', cidr: '192.168.1.0/24' }], hosts: [], options: [{ tag: 'subnet-1', option: 3, values: ['192.168.1.1'] }, { option: 26, values: ['1450'], force: true }] };
  const args = dnsmasqArgs(d, '/s');
  assert.ok(args.includes('--dhcp-range=set:subnet-1,192.168.1.0,static,255.255.255.0,86400s'));
  assert.ok(args.includes('--dhcp-option-force=26,1450'));
  assert.equal(dnsmasqOpts(d), 'tag:subnet-1,3,192.168.1.1\n');
});
