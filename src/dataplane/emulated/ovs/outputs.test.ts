// A long flow (a flood flow: an output per tunnel) written again with outputs added or removed
// is parsed from its last version on the bridge: the same flow a full parse makes, and the same
// refusals.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OvsBridge } from './index.js';
import { parseFlow } from './parse.js';
import { reuseOutputs } from './outputs.js';
import { parseActions } from './actions.js';

const tunnel = (i: number) => `vxlan-0a01${(i >> 8).toString(16).padStart(2, '0')}${(i & 255).toString(16).padStart(2, '0')}`;
/** br-tun's flood flow of VLAN 5 over these tunnels (long enough to be the bridge's own). */
const flood = (peers: number[], head = 'strip_vlan,load:0x64->NXM_NX_TUN_ID[]') =>
  `table=22,priority=1,cookie=0x1,dl_vlan=5,actions=${head}${peers.map((i) => `,output:${tunnel(i)}`).join('')}`;

function bridge(peers: number) {
  const b = new OvsBridge('br-tun');
  b.addPort('patch-int');
  for (let i = 0; i < peers; i++) b.addPort(tunnel(i));
  return b;
}

const full = (b: OvsBridge, text: string) =>
  parseFlow(text, { portNumber: (n) => b.portNumber(n), portKnown: (n) => b.port(n) !== undefined }, 'add');
const texts = (b: OvsBridge, table = 22) => b.dumpFlows({ table }).map((f) => f.actions);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

describe('long flows parsed from their last version', () => {
  it('an output added in the middle, one removed, one at each end: the actions of a full parse, in order', () => {
    const b = bridge(120);
    const v1 = flood(range(0, 100));
    assert.ok(v1.length > 1024);
    b.addFlows([v1]);
    let last = b.parseFlow(v1);
    const versions = [
      flood([...range(0, 50), 110, ...range(50, 100)]),
      flood([...range(0, 50), 110, ...range(51, 100)]),
      flood([111, ...range(0, 50), 110, ...range(51, 100), 112]),
      flood(range(5, 60)),
      flood([...range(5, 60), ...range(60, 119)]),
    ];
    for (const v of versions) {
      const fast = b.parseFlow(v);
      assert.deepEqual(fast.actions, full(b, v).actions);
      assert.equal(fast.actions![1], last.actions![1], 'the load action kept from the last version, not parsed again');
      last = fast;
      assert.equal(fast.text, v);
      b.addFlows([v]);
      const fresh = bridge(120);
      fresh.addFlows([v]);
      assert.deepEqual(texts(b), texts(fresh), 'as on a bridge given only this version');
    }
  });

  it('refuses a version naming a port the bridge does not have, as a full parse does', () => {
    const b = bridge(60);
    b.addFlows([flood(range(0, 50))]);
    assert.throws(() => b.addFlows([flood([...range(0, 25), 999, ...range(25, 50)])]), /unknown port/);
    // An output kept from the last version whose port went since.
    b.delPort(tunnel(3));
    const installed = texts(b);
    assert.throws(() => b.addFlows([flood(range(0, 51))]), /unknown port/);
    assert.deepEqual(texts(b), installed, 'the flow installed before is left as it was');
  });

  it('parses in full what is not only outputs changing', () => {
    const b = bridge(60);
    b.addFlows([flood(range(0, 50))]);
    const other = flood(range(0, 50), 'strip_vlan,load:0x65->NXM_NX_TUN_ID[]');
    assert.deepEqual(b.parseFlow(other).actions, full(b, other).actions);
    assert.equal(b.parseFlow(other).actions![1].text, 'load:0x65->NXM_NX_TUN_ID[]');
  });
});

describe('reuseOutputs', () => {
  const ctx = { portKnown: () => true };
  const parse = (text: string) => parseActions(text, text, ctx, { vlan: undefined, table: 0 });
  const again = (before: string, after: string) => reuseOutputs(before, parse(before), after, (items) => parse(items.join(',')));

  it('keeps the actions around the change and parses the outputs between', () => {
    const before = 'strip_vlan,output:a,output:b,output:c';
    const got = again(before, 'strip_vlan,output:a,output:x,output:y,output:c')!;
    assert.deepEqual(got, parse('strip_vlan,output:a,output:x,output:y,output:c'));
    const kept = parse(before);
    assert.equal(reuseOutputs(before, kept, 'strip_vlan,output:a,output:c', () => [])![1], kept[1], 'the kept actions are the same objects');
  });

  it('gives up where a full parse is needed', () => {
    assert.equal(again('strip_vlan,output:a', 'mod_vlan_vid:5,output:a'), undefined, 'not an output that changed');
    assert.equal(again('output:a,output:b', 'output:a,resubmit(,22)'), undefined, 'parentheses');
    assert.equal(again('output:a,output:b', 'output:a,output:NXM_NX_REG0[0..15]'), undefined, 'an output that reads a field');
    assert.equal(again('output:a,goto_table:5', 'output:a,output:b,goto_table:5'), undefined, 'an instruction whose place counts');
    assert.equal(reuseOutputs('drop', [], 'output:a', () => []), undefined, 'an item that made no action');
  });
});
