import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkedTable, changedParts, isChunkList, itemsOf, joinChunks, leaves, type Items } from './chunks.js';
import { applyOps } from './apply.js';
import { diff } from './diff.js';
import { addBridge, addNamespace, emptyHost } from './build.js';
import type { Flow, HostState } from './state.js';
import { validateHost } from './validate.js';
import { flowKey } from './flow.js';
import { hashString } from './hashbag.js';

const flow = (n: number, actions = 'drop'): Flow => ({ table: 20, priority: 2, cookie: '0x1', match: `dl_vlan=1,dl_dst=fa:16:3e:00:00:${n.toString(16).padStart(2, '0')}`, actions });
const withFlows = (flows: Items<Flow>): HostState => {
  const s = addBridge(emptyHost(), 'br-tun', { datapath_type: 'netdev' });
  return { ...s, ovs: { bridges: { 'br-tun': { ...s.ovs.bridges['br-tun'], flows } } } };
};

describe('chunks', () => {
  it('joins parts into a list of them: nothing copied, empty parts dropped, a single part as it is', () => {
    const a = [flow(1), flow(2)];
    const b = [flow(3)];
    const ab = joinChunks([a, [], b]);
    assert.ok(isChunkList(ab));
    assert.deepEqual(ab.parts, [a, b]);
    assert.equal(ab.parts[0], a, 'the part itself, not a copy');
    assert.equal(ab.length, 3);
    assert.deepEqual(itemsOf(ab), [...a, ...b]);
    assert.deepEqual([...ab], [...a, ...b]);
    const abc = joinChunks([ab, [flow(4)]]);
    assert.ok(isChunkList(abc));
    assert.equal(abc.parts[0], ab, 'a list is a part of the next: a tree');
    assert.equal(abc.length, 4);
    assert.deepEqual(leaves([abc]), [a, b, [flow(4)]]);
    assert.equal(JSON.stringify(abc), JSON.stringify([flow(1), flow(2), flow(3), flow(4)]), 'JSON is the flat array');
    assert.equal(joinChunks([[], a]), a, 'a single part is returned as it is');
    assert.deepEqual(joinChunks([[], []]), []);
  });

  it('gives back the last list when it was joined from the very same parts', () => {
    const a = [1, 2];
    const b = [3];
    const first = joinChunks([a, b]);
    assert.equal(joinChunks([a, b], first), first);
    assert.notEqual(joinChunks([a, [3]], first), first, 'an equal but new part: a new list');
    assert.notEqual(joinChunks([a], first), first);
    assert.deepEqual(itemsOf(joinChunks([b, a], first)), [3, 1, 2]);
  });

  it('changedParts leaves out the parts both sides share', () => {
    const shared = [flow(1), flow(2)];
    const old = [flow(3)];
    const now = [flow(3, 'output:1'), flow(4)];
    const p = changedParts(joinChunks([shared, old]), joinChunks([shared, now]));
    assert.deepEqual(p.cur, old);
    assert.deepEqual(p.des, now);
    const plain = changedParts(old, now);
    assert.equal(plain.cur, old, 'two plain arrays are all there is to compare');
    assert.equal(plain.des, now);
    assert.deepEqual(changedParts(joinChunks([shared, old]), joinChunks([shared, old])), { cur: [], des: [] }, 'equal parts, nothing');
  });

  it('changedParts leaves out the elements a changed chunk kept as the same objects', () => {
    const kept = [flow(1), flow(2), flow(3)];
    const old = [...kept, flow(4)];
    const now = [kept[0], flow(5), kept[1], kept[2]];
    const head = [flow(9)];
    const p = changedParts(joinChunks([head, old]), joinChunks([head, now]));
    assert.deepEqual(p.cur, [old[3]]);
    assert.deepEqual(p.des, [now[1]]);
  });

  it('changedParts finds what a table block gained, lost or replaced in place, and elements that moved', () => {
    const head = [flow(9)];
    const block = [flow(1), flow(2), flow(3), flow(4)];
    const at = (b: Flow[]) => joinChunks([head, b]);
    const added = [...block, flow(5)];
    assert.deepEqual(changedParts(at(block), at(added)), { cur: [], des: [added[4]] }, 'one added at the end');
    const replaced = [block[0], flow(6), block[2], block[3]];
    assert.deepEqual(changedParts(at(block), at(replaced)), { cur: [block[1]], des: [replaced[1]] }, 'one replaced in place');
    const removed = [block[0], block[2], block[3]];
    assert.deepEqual(changedParts(at(block), at(removed)), { cur: [block[1]], des: [] }, 'one removed');
    const moved = [block[3], block[1], block[2], block[0], flow(7)];
    assert.deepEqual(changedParts(at(block), at(moved)), { cur: [], des: [moved[4]] }, 'the same objects in another order are not changes');
  });

  it('changedParts opens only the list that changed (a bridge of networks of peers)', () => {
    const peers = (net: number, n: number) => Array.from({ length: n }, (_, i) => [flow(net * 16 + i)]);
    const nets = [peers(1, 5), peers(2, 5), peers(3, 5)];
    const bridge = (ns: Flow[][][]) => joinChunks(ns.map((n) => joinChunks(n)));
    const cur = bridge(nets);
    // One peer of the second network gets a flow; a peer joins the third.
    const added = [flow(0x25), flow(0x26)];
    const next = [nets[0], [...nets[1].slice(0, 2), added, ...nets[1].slice(3)], nets[2]];
    const des = bridge(next);
    const p = changedParts(cur, des);
    assert.deepEqual(p.cur, nets[1][2]);
    assert.deepEqual(p.des, added);
    // Parts moved around, several lists changed: still exactly the elements not shared.
    const joiner = [flow(0x3f)];
    const moved = bridge([nets[2], [...nets[1], joiner], nets[0].slice(1)]);
    const q = changedParts(cur, moved);
    assert.deepEqual(q.cur, nets[0][0]);
    assert.deepEqual(q.des, joiner);
  });

  it('a state holding lists is JSON, and applies, as plain arrays; it diffs equal to them', () => {
    const s = withFlows(joinChunks([joinChunks([[flow(1)], [flow(2)]]), [flow(3)]]));
    const back = JSON.parse(JSON.stringify(s)) as HostState;
    assert.deepEqual(back.ovs.bridges['br-tun'].flows, [flow(1), flow(2), flow(3)]);
    assert.deepEqual(validateHost(back), []);
    assert.deepEqual(diff(s, back), [], 'the same flows, whether held as lists or arrays');
    assert.deepEqual(diff(back, s), []);
    assert.deepEqual(applyOps(s, []).ovs.bridges['br-tun'].flows, [flow(1), flow(2), flow(3)]);
  });

  it('diff of chunked flows gives the same operations as a diff of plain copies', () => {
    const shared = Array.from({ length: 50 }, (_, i) => flow(i + 10));
    const cur = withFlows(joinChunks([shared, [flow(1), flow(2)]]));
    const des = withFlows(joinChunks([shared, [flow(2, 'output:3'), flow(4)]]));
    const plain = diff(withFlows([...itemsOf(cur.ovs.bridges['br-tun'].flows)]), withFlows([...itemsOf(des.ovs.bridges['br-tun'].flows)]));
    const chunked = diff(cur, des);
    assert.deepEqual(chunked, plain);
    const up = chunked.find((o) => o.op === 'flows.update');
    assert.ok(up && up.op === 'flows.update');
    assert.deepEqual(up.add.map((f) => f.match), [flow(4).match]);
    assert.deepEqual(up.modify.map((f) => f.actions), ['output:3']);
    assert.deepEqual(up.delete.map((k) => k.match), [flow(1).match]);
  });

  it('validation against the previous state still finds a duplicate between a new chunk and a shared one', () => {
    const shared = [flow(1), flow(2)];
    const prev = withFlows(joinChunks([shared, [flow(3)]]));
    assert.deepEqual(validateHost(prev), []);
    const dup = withFlows(joinChunks([shared, [flow(2, 'output:9')]]));
    const problems = validateHost(dup, prev);
    assert.equal(problems.length, 1);
    assert.match(problems[0], /another flow has the same table, priority and match/);
    // And a clean successor passes, checked against the same previous state afresh.
    const prev2 = withFlows(joinChunks([shared, [flow(3)]]));
    assert.deepEqual(validateHost(prev2), []);
    assert.deepEqual(validateHost(withFlows(joinChunks([shared, [flow(5)]])), prev2), []);
  });

  it('validation tells two keys of one hash from a duplicate (the keys are compared, not the hashes)', () => {
    // Find two flows whose keys hash alike (32-bit hashes: a birthday search over a few hundred thousand).
    const seen = new Map<number, Flow>();
    let pair: [Flow, Flow] | undefined;
    for (let i = 0; !pair; i++) {
      const f: Flow = { table: 20, priority: 2, cookie: '0x1', match: `dl_vlan=${i % 4096},dl_dst=fa:16:3e:00:${(i >> 12).toString(16).padStart(2, '0')}:01`, actions: 'drop' };
      const h = hashString(flowKey(f));
      const other = seen.get(h);
      if (other) pair = [other, f];
      else seen.set(h, f);
    }
    const [a, b] = pair;
    const prev = withFlows(joinChunks([[a], [flow(1)]]));
    assert.deepEqual(validateHost(prev), []);
    assert.deepEqual(validateHost(withFlows(joinChunks([[a], [b]])), prev), []);
    assert.deepEqual(validateHost(withFlows([a, b])), []);
    const dup = validateHost(withFlows([a, b, { ...b, actions: 'output:2' }]));
    assert.equal(dup.length, 1);
    assert.match(dup[0], /another flow has the same table, priority and match/);
  });

  it('validation of neighbours against the previous state sees a device that went away', () => {
    let s = addNamespace(emptyHost(), 'qrouter-1');
    const ns = s.namespaces['qrouter-1'];
    const link = { kind: 'dummy' as const, name: 'qr-1', up: true, addresses: ['10.0.0.1/24'] };
    const nb = [{ dev: 'qr-1', ip: '10.0.0.5', lladdr: 'fa:16:3e:00:00:05', nud: 'permanent' as const }];
    s = { ...s, namespaces: { ...s.namespaces, 'qrouter-1': { ...ns, links: { ...ns.links, 'qr-1': link }, neighbours: joinChunks([nb, []]) } } };
    assert.deepEqual(validateHost(s), []);
    const gone = { ...s, namespaces: { ...s.namespaces, 'qrouter-1': { ...s.namespaces['qrouter-1'], links: { ...ns.links } } } };
    assert.match(validateHost(gone, s).join('\n'), /dev "qr-1" does not exist/);
  });

  it('ChunkedTable counts its changes (what a reader of its chunks compares)', () => {
    const t = new ChunkedTable<{ ip: string; mac: string }>((x) => x.ip, 2);
    const v0 = t.version;
    t.set({ ip: 'a', mac: '1' });
    const v1 = t.version;
    assert.ok(v1 > v0);
    const one = { ip: 'a', mac: '1' };
    assert.equal(t.set(one, (x, y) => x.mac === y.mac), false);
    assert.equal(t.version, v1, 'an equal value changes nothing');
    t.delete('a');
    assert.ok(t.version > v1);
    t.delete('a');
    const v2 = t.version;
    assert.equal(t.delete('nope'), false);
    assert.equal(t.version, v2);
  });

  it('ChunkedTable changes one chunk per change', () => {
    const t = new ChunkedTable<{ ip: string; mac: string }>((x) => x.ip, 2);
    for (let i = 0; i < 5; i++) t.set({ ip: `10.0.0.${i}`, mac: `m${i}` });
    const before = t.chunks();
    assert.deepEqual(before.map((c) => c.length), [2, 2, 1]);
    t.set({ ip: '10.0.0.2', mac: 'changed' });
    const after = t.chunks();
    assert.equal(after[0], before[0]);
    assert.notEqual(after[1], before[1]);
    assert.equal(after[2], before[2]);
    assert.ok(t.delete('10.0.0.4'));
    assert.deepEqual(t.chunks().map((c) => c.length), [2, 2]);
    assert.equal(t.count, 4);
    assert.equal(t.delete('nope'), false);
  });

  it('ChunkedTable never changes a chunk it handed out; changes between two reads share one copy', () => {
    const t = new ChunkedTable<{ ip: string; mac: string }>((x) => x.ip, 4);
    t.set({ ip: 'a', mac: '1' });
    const first = t.chunks();
    const snapshot = first.map((c) => [...c]);
    t.set({ ip: 'b', mac: '2' });
    t.set({ ip: 'c', mac: '3' });
    t.set({ ip: 'a', mac: '9' });
    assert.deepEqual(first.map((c) => [...c]), snapshot, 'what was handed out stays as it was');
    const second = t.chunks();
    assert.deepEqual(second, [[{ ip: 'a', mac: '9' }, { ip: 'b', mac: '2' }, { ip: 'c', mac: '3' }]]);
    assert.equal(t.chunks()[0], second[0], 'no change, the same chunk');
    for (const k of ['a', 'b', 'c']) t.delete(k);
    t.set({ ip: 'd', mac: '4' });
    assert.deepEqual(t.chunks(), [[{ ip: 'd', mac: '4' }]], 'a block emptied and filled again in one pass');
    t.delete('d');
    assert.deepEqual(t.chunks(), [], 'an emptied block goes');
    assert.equal(t.count, 0);
  });
});
