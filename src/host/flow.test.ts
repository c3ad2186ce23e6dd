import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalMatch, cookie, flow, flowKey, parseFlow, renderFlow, renderFlowKey } from './flow.js';

test('cookies are canonical 0x hex', () => {
  assert.equal(cookie(0), '0x0');
  assert.equal(cookie(255), '0xff');
  assert.equal(cookie('0x00FF'), '0xff');
  assert.equal(cookie('0x8d92abaa691e5b6d'), '0x8d92abaa691e5b6d');
  assert.equal(cookie('17'), '0x11');
  assert.throws(() => cookie('0x12345678901234567'), /Cookie "0x12345678901234567" is not 0x followed by 1-16 hex digits/);
  assert.throws(() => cookie(-1), /Cookie -1/);
});

test('a flow renders to one line of ovs-ofctl add-flows input and parses back', () => {
  const f = flow({ table: 21, priority: 1, cookie: 0x3, match: 'dl_vlan=1, arp,arp_tpa=192.168.1.12', actions: 'move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],IN_PORT' });
  assert.equal(f.match, 'dl_vlan=1,arp,arp_tpa=192.168.1.12');
  const text = renderFlow(f);
  assert.equal(text, 'table=21,priority=1,cookie=0x3,dl_vlan=1,arp,arp_tpa=192.168.1.12,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],IN_PORT');
  assert.deepEqual(parseFlow(text), f);
  assert.equal(renderFlow(flow({ actions: 'drop' })), 'table=0,priority=32768,cookie=0x0,actions=drop');
  assert.equal(renderFlowKey(f), 'table=21,priority=1,dl_vlan=1,arp,arp_tpa=192.168.1.12');
});

test('ovs-ofctl dump-flows lines parse, statistics dropped', () => {
  const line = ' cookie=0x8ca031df7a84a666, duration=1178.439s, table=22, n_packets=0, n_bytes=0, idle_age=65534, priority=1,dl_vlan=1 actions=strip_vlan,set_tunnel:0x45,output:2';
  assert.deepEqual(parseFlow(line), {
    table: 22,
    priority: 1,
    cookie: '0x8ca031df7a84a666',
    match: 'dl_vlan=1',
    actions: 'strip_vlan,set_tunnel:0x45,output:2',
  });
  // OVS leaves out priority=32768.
  assert.equal(parseFlow(' cookie=0x0, duration=1s, table=0, n_packets=0, n_bytes=0, in_port=1 actions=NORMAL').priority, 32768);
});

test('learn() keeps its commas inside the actions', () => {
  const f = parseFlow('table=10,priority=1,actions=learn(table=20,priority=1,NXM_OF_VLAN_TCI[0..11]),output:1');
  assert.equal(f.actions, 'learn(table=20,priority=1,NXM_OF_VLAN_TCI[0..11]),output:1');
  assert.equal(canonicalMatch(' in_port=1 ,, ip '), 'in_port=1,ip');
});

test('what cannot be stored is rejected with the flow text', () => {
  assert.throws(() => parseFlow('table=0,priority=1,in_port=1'), /Flow without actions: "table=0,priority=1,in_port=1"/);
  assert.throws(() => parseFlow('table=0,actions='), /Flow with empty actions/);
  assert.throws(() => parseFlow('cookie=0x1/0xff,actions=drop'), /cookie with a mask cannot be stored: "cookie=0x1\/0xff,actions=drop"/);
  assert.throws(() => parseFlow('idle_timeout=10,actions=drop'), /"idle_timeout" is not part of dvrnet's host state/);
  assert.throws(() => parseFlow('table=x,actions=drop'), /Flow table "x" is not a number/);
});

test('the key is table, priority and match, not cookie or actions', () => {
  const a = flow({ table: 1, priority: 2, cookie: 1, match: 'ip', actions: 'drop' });
  const b = flow({ table: 1, priority: 2, cookie: 9, match: 'ip', actions: 'NORMAL' });
  assert.equal(flowKey(a), flowKey(b));
  assert.notEqual(flowKey(a), flowKey({ ...a, priority: 3 }));
});
