import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IntMap } from './intmap.js';

describe('IntMap', () => {
  it('agrees with a Map through sets, replaces and deletes that collide, wrap, grow and shrink', () => {
    const m = new IntMap<string>();
    // Empty: nothing allocated yet, every question answered.
    assert.equal(m.get(0), undefined);
    assert.equal(m.delete(0), false);
    assert.ok(Number.isNaN(m.extra(5)));
    const ref = new Map<number, string>();
    const extra = (v: string) => Number(v.slice(1)) + 0.5;
    let seed = 11;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8);
    // Keys in a few clusters (0 and the extremes included), so runs form and cross the table's end.
    const key = () => ([0, -1, 0x7fffffff, -0x80000000, 1 << 20][rnd() % 5] + (rnd() % 300)) | 0;
    for (let round = 0; round < 4; round++) {
      for (let step = 0; step < 5000; step++) {
        const k = key();
        if (rnd() % (round % 2 ? 2 : 4) === 0) assert.equal(m.delete(k), ref.delete(k));
        else {
          m.set(k, `v${step}`, extra(`v${step}`));
          ref.set(k, `v${step}`);
        }
        if (step % 101 === 0)
          for (const p of [k, key()]) {
            assert.equal(m.get(p), ref.get(p), `key ${p}`);
            const v = ref.get(p);
            assert.equal(m.extra(p), v === undefined ? NaN : extra(v));
          }
      }
      assert.equal(m.size, ref.size);
      assert.deepEqual([...m.values()].sort(), [...ref.values()].sort());
      for (const [k, v] of ref) assert.equal(m.extra(k), extra(v));
    }
    for (const k of [...ref.keys()]) assert.equal(m.delete(k), true);
    assert.equal(m.size, 0);
    assert.deepEqual([...m.values()], []);
    assert.equal(m.has(0), false);
    assert.throws(() => m.set(1, undefined as unknown as string), /undefined/);
    m.set(-5, 'a', 2);
    m.clear();
    assert.equal(m.size, 0);
    assert.equal(m.get(-5), undefined);
    m.set(-5, 'b');
    assert.equal(m.get(-5), 'b');
    assert.equal(m.extra(-5), 0);
  });
});
