// Flows parsed once per text are shared across bridges only where port names resolve alike.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OvsBridge } from './index.js';
import { MAC, icmp } from './fixtures.test-util.js';

const FLOW = 'table=0,priority=1,in_port=qvo1,actions=output:vxlan-0a000102';

describe('parsed flows shared across bridges', () => {
  it('outputs by each bridge own port numbers when the same text names ports numbered differently', () => {
    const a = new OvsBridge('br-a');
    a.addPort('qvo1');
    a.addPort('vxlan-0a000102');
    const b = new OvsBridge('br-b');
    b.addPort('vxlan-0a000102'); // ofport 1 here, 2 on br-a
    b.addPort('qvo1');
    a.addFlows([FLOW]);
    b.addFlows([FLOW]);
    assert.equal(a.parseFlow(FLOW), a.parseFlow(FLOW), 'the same parse again on the same bridge');
    assert.notEqual(a.parseFlow(FLOW), b.parseFlow(FLOW));
    assert.equal(a.parseFlow(FLOW), a.parseFlow(FLOW), 'both numberings are remembered');
    for (const br of [a, b]) {
      const r = br.process(icmp(MAC.vm1, MAC.vm2), 'qvo1');
      assert.deepEqual(r.outputs.map((o) => o.port), ['vxlan-0a000102'], br.name);
    }
    // A third bridge numbered like br-a reuses br-a's parse; counters stay per bridge.
    const c = new OvsBridge('br-c');
    c.addPort('qvo1');
    c.addPort('vxlan-0a000102');
    c.addFlows([FLOW]);
    assert.equal(c.parseFlow(FLOW), a.parseFlow(FLOW));
    c.process(icmp(MAC.vm1, MAC.vm2), 'qvo1');
    assert.deepEqual([a, b, c].map((br) => br.dumpFlows()[0].nPackets), [1, 1, 1]);
  });
});
