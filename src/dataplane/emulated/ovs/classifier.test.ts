// The tuple-space classifier: priority order across shapes and masks, replacement of an
// identical flow, deletion (by cookie, table, match, strict), replace-by-cookie, timeouts,
// and a randomised comparison against a plain linear scan.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OvsBridge, parseFlow, Rule, type OvsBridge as Bridge } from './index.js';
import { frameToKey } from './key.js';
import { MAC, icmp, tcp } from './fixtures.test-util.js';

function br(flows: string[] = [], clock?: () => number): Bridge {
  const b = new OvsBridge('br-test', clock ? { clock } : {});
  b.addPort('p1');
  b.addPort('p2');
  b.addPort('p3');
  b.addFlows(flows);
  return b;
}

function hit(b: Bridge, f = icmp(MAC.vm1, MAC.vm2), inPort = 'p1'): string | undefined {
  const s = b.process(f, inPort).steps[0];
  return s.kind === 'flow' ? s.flow : undefined;
}

describe('OVS classifier', () => {
  it('the highest priority wins across different shapes', () => {
    const b = br([
      'priority=10,ip,actions=output:2',
      'priority=30,dl_dst=fa:16:3e:00:00:02,actions=output:3',
      'priority=20,in_port=1,actions=drop',
    ]);
    assert.equal(hit(b), 'priority=30,dl_dst=fa:16:3e:00:00:02,actions=output:3');
    assert.equal(hit(b, icmp(MAC.vm1, MAC.vm3)), 'priority=20,in_port=1,actions=drop');
    assert.equal(hit(b, icmp(MAC.vm1, MAC.vm3), 'p2'), 'priority=10,ip,actions=output:2');
  });

  it('masks: longer prefix at higher priority, shorter as fallback', () => {
    const b = br(['priority=24,ip,nw_dst=10.0.0.0/24,actions=output:2', 'priority=16,ip,nw_dst=10.0.0.0/16,actions=output:3', 'priority=0,actions=drop']);
    assert.equal(hit(b, icmp(MAC.vm1, MAC.vm2, '1.1.1.1', '10.0.0.9')), 'priority=24,ip,nw_dst=10.0.0.0/24,actions=output:2');
    assert.equal(hit(b, icmp(MAC.vm1, MAC.vm2, '1.1.1.1', '10.0.7.9')), 'priority=16,ip,nw_dst=10.0.0.0/16,actions=output:3');
    assert.equal(hit(b, icmp(MAC.vm1, MAC.vm2, '1.1.1.1', '10.1.0.9')), 'priority=0,actions=drop');
  });

  it('within one shape, same key at two priorities: the higher one', () => {
    const b = br(['priority=5,in_port=1,actions=output:2', 'priority=9,in_port=1,actions=output:3']);
    assert.equal(hit(b), 'priority=9,in_port=1,actions=output:3');
    b.delFlows('--strict priority=9,in_port=1');
    assert.equal(hit(b), 'priority=5,in_port=1,actions=output:2');
  });

  it('adding a flow with the same match and priority replaces it, keeping counters', () => {
    const b = br(['table=0,priority=5,in_port=1,actions=output:2']);
    b.process(icmp(MAC.vm1, MAC.vm2), 'p1');
    b.addFlow('table=0,priority=5,in_port=1,actions=output:3');
    const flows = b.dumpFlows();
    assert.equal(flows.length, 1);
    assert.equal(flows[0].actions, 'output:3');
    assert.equal(flows[0].nPackets, 1);
    // Different spellings of the same match are the same flow.
    b.addFlow('table=0,priority=5,in_port=p1,reset_counts,actions=output:2');
    assert.equal(b.dumpFlows().length, 1);
    assert.equal(b.dumpFlows()[0].nPackets, 0);
    b.addFlow('priority=1,tcp,actions=drop');
    b.addFlow('priority=1,ip,nw_proto=6,actions=output:2');
    assert.equal(b.dumpFlows().length, 2);
  });

  it('del-flows by cookie/mask, by table, by match (non-strict) and --strict', () => {
    const b = br([
      'table=0,cookie=0x11,priority=1,in_port=1,actions=drop',
      'table=0,cookie=0x12,priority=2,in_port=1,dl_src=fa:16:3e:00:00:01,actions=drop',
      'table=1,cookie=0x11,priority=1,in_port=2,actions=drop',
      'table=2,cookie=0x21,priority=1,ip,actions=drop',
      'table=2,cookie=0x22,priority=1,arp,actions=drop',
    ]);
    assert.equal(b.delFlows('cookie=0x11/-1'), 2);
    assert.equal(b.delFlows('cookie=0x20/0xf0'), 2);
    assert.deepEqual(b.dumpFlows().map((f) => f.cookie), [0x12n]);
    const c = br([
      'table=0,priority=1,in_port=1,actions=drop',
      'table=0,priority=2,in_port=1,dl_src=fa:16:3e:00:00:01,actions=drop',
      'table=0,priority=3,dl_src=fa:16:3e:00:00:01,actions=drop',
      'table=1,priority=1,in_port=1,actions=drop',
    ]);
    // Non-strict: every flow at least as specific as in_port=1, in table 0 only.
    assert.equal(c.delFlows('table=0,in_port=1'), 2);
    assert.deepEqual(c.dumpFlows().map((f) => [f.table, f.priority]), [
      [0, 3],
      [1, 1],
    ]);
    // Strict needs the same priority too.
    assert.equal(c.delFlows('--strict table=0,priority=2,dl_src=fa:16:3e:00:00:01'), 0);
    assert.equal(c.delFlows('--strict table=0,priority=3,dl_src=fa:16:3e:00:00:01'), 1);
    assert.equal(c.delFlows('table=1'), 1);
    assert.equal(c.flowCount, 0);
    const d = br(['priority=1,actions=drop', 'table=4,priority=1,actions=drop']);
    assert.equal(d.delFlows(''), 2);
  });

  it('replaceFlowsByCookie swaps one agent\'s flows, keeping unchanged ones and their counters', () => {
    const b = br([
      'cookie=0x1,priority=1,in_port=1,actions=output:2',
      'cookie=0x1,priority=1,in_port=2,actions=output:1',
      'cookie=0x9,priority=0,actions=drop',
    ]);
    b.process(icmp(MAC.vm1, MAC.vm2), 'p1');
    const res = b.replaceFlowsByCookie(1, ['priority=1,in_port=1,actions=output:2', 'cookie=0x1,priority=1,in_port=3,actions=output:1']);
    assert.deepEqual(res, { added: 1, deleted: 1, kept: 1 });
    const flows = b.dumpFlows().map((f) => [f.cookie, f.match, f.nPackets]);
    assert.deepEqual(flows, [
      [1n, 'in_port=1', 1],
      [1n, 'in_port=3', 0],
      [9n, '', 0],
    ]);
    assert.throws(() => b.replaceFlowsByCookie(1, ['cookie=0x2,priority=1,actions=drop']), /cookie differs/);
    assert.throws(() => b.replaceFlowsByCookie(1, ['priority=1,actions=drop', 'bad']), /must specify an action/);
    assert.equal(b.flowCount, 3);
  });

  it('a flow kept as its spec until first hit keeps its creation time, counters and identity through hits, replacement and deletion', () => {
    let now = 5_000;
    // Two flows in one bucket (same key, two priorities) and one alone: both ways of keeping a flow.
    const b = br(['priority=5,in_port=1,actions=output:2', 'priority=3,in_port=1,actions=output:3', 'priority=7,in_port=2,actions=output:1'], () => now);
    now = 7_500;
    const dump = () => new Map(b.dumpFlows().map((f) => [f.priority, f]));
    assert.match(dump().get(7)!.dump, /duration=2\.500s, table=0, n_packets=0,/);
    hit(b, icmp(MAC.vm1, MAC.vm2), 'p2');
    hit(b, icmp(MAC.vm1, MAC.vm2), 'p2');
    hit(b);
    now = 9_000;
    const d = dump();
    assert.match(d.get(7)!.dump, /duration=4\.000s, table=0, n_packets=2,/);
    assert.equal(d.get(5)!.nPackets, 1);
    assert.equal(d.get(3)!.nPackets, 0);
    // A rule found by match is the one packets count on.
    const r = b.addFlow('priority=7,in_port=2,actions=output:1');
    assert.equal(r.nPackets, 2); // replaced, counters carried
    hit(b, icmp(MAC.vm1, MAC.vm2), 'p2');
    assert.equal(dump().get(7)!.nPackets, 3);
    assert.equal(b.delFlows('--strict priority=5,in_port=1'), 1);
    assert.equal(hit(b), 'priority=3,in_port=1,actions=output:3');
    assert.equal(b.replaceFlowsByCookie(0, ['priority=3,in_port=1,actions=output:3']).kept, 1);
    assert.equal(b.flowCount, 1);
    assert.equal(hit(b), 'priority=3,in_port=1,actions=output:3');
    assert.equal(dump().get(3)!.nPackets, 2);
  });

  it('a flow written again before any packet hit it stays one flow, its duration from the new write', () => {
    let now = 1_000;
    const b = br(['priority=7,in_port=2,actions=output:1', 'priority=6,in_port=2,actions=output:3'], () => now);
    now = 3_000;
    b.addFlows(['priority=7,in_port=2,actions=output:1']);
    assert.equal(b.flowCount, 2);
    now = 3_500;
    const dump = new Map(b.dumpFlows().map((f) => [f.priority, f.dump]));
    assert.match(dump.get(7)!, /duration=0\.500s, table=0, n_packets=0,/);
    assert.match(dump.get(6)!, /duration=2\.500s, table=0, n_packets=0,/);
    assert.equal(hit(b, icmp(MAC.vm1, MAC.vm2), 'p2'), 'priority=7,in_port=2,actions=output:1');
  });

  it('hard_timeout and idle_timeout expire flows on the bridge clock', () => {
    let now = 1_000_000;
    const b = br(['priority=5,hard_timeout=10,in_port=1,actions=output:2', 'priority=4,idle_timeout=15,in_port=1,actions=output:3', 'priority=0,actions=drop'], () => now);
    assert.match(hit(b)!, /hard_timeout=10/);
    now += 9_999;
    assert.match(hit(b)!, /hard_timeout=10/); // hits do not extend a hard timeout
    now += 1;
    assert.match(hit(b)!, /idle_timeout=15/);
    now += 14_000;
    assert.match(hit(b)!, /idle_timeout=15/); // each hit restarts the idle timer
    now += 14_000;
    assert.match(hit(b)!, /idle_timeout=15/);
    now += 15_000;
    assert.equal(hit(b), 'priority=0,actions=drop');
    assert.equal(b.flowCount, 1);
  });

  it('agrees with a linear scan on random flows and packets', () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const macs = [MAC.vm1, MAC.vm2, MAC.vm3, MAC.qr];
    const b = br();
    const texts: string[] = [];
    for (let i = 0; i < 400; i++) {
      const parts = [`priority=${rnd(50)}`];
      if (rnd(2)) parts.push(`in_port=${1 + rnd(3)}`);
      if (rnd(2)) parts.push(`dl_dst=${macs[rnd(4)]}`);
      if (rnd(3) === 0) parts.push(`dl_src=${macs[rnd(4)]}${rnd(2) ? '/ff:ff:ff:00:00:00' : ''}`);
      if (rnd(2)) parts.push(`tcp,tp_dst=${rnd(2) ? 80 : 443}`);
      else if (rnd(2)) parts.push(`ip,nw_dst=10.0.${rnd(3)}.0/${[16, 24][rnd(2)]}`);
      parts.push(`actions=output:${1 + rnd(3)}`);
      texts.push(parts.join(','));
    }
    b.addFlows(texts);
    const rules = texts.map((t) => new Rule({ ...parseFlow(t), actions: [], cookie: 0n }));
    for (let i = 0; i < 500; i++) {
      const f = tcp(macs[rnd(4)], macs[rnd(4)], 1000, rnd(2) ? 80 : 443, '1.1.1.1', `10.0.${rnd(3)}.${rnd(9)}`);
      const inPort = 1 + rnd(3);
      const w = frameToKey(f, inPort, undefined);
      const best = Math.max(-1, ...rules.filter((r) => r.match.matches(w)).map((r) => r.priority));
      const got = b.flows.lookup(0, w);
      assert.equal(got?.priority ?? -1, best);
      if (got) assert.ok(got.match.matches(w));
    }
  });

  it('tables keep one subtable per shape, not per flow', () => {
    const b = br();
    const texts: string[] = [];
    for (let i = 0; i < 2000; i++) texts.push(`table=60,priority=20,dl_vlan=${1 + (i % 4000)},dl_dst=fa:16:3e:00:${((i >> 8) & 255).toString(16)}:${(i & 255).toString(16)},actions=strip_vlan,output:2`);
    b.addFlows(texts);
    assert.equal(b.flows.table(60).shapes, 1);
    assert.equal(b.flows.table(60).count, 2000);
  });
});
