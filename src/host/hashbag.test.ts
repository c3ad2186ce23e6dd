import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HashBag, hashString } from './hashbag.js';

describe('HashBag', () => {
  it('agrees with a reference multiset through adds and deletes that collide, wrap and resize', () => {
    const bag = new HashBag();
    const ref = new Map<number, number>();
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8);
    // Few distinct values, many sharing their low bits (0 included: it is the empty slot's marker).
    const pick = () => [0, 1, -1, 16, 32, 0x10000, 0x7fffffff, -0x80000000][rnd() % 8] + (rnd() % 64) * 1024;
    for (let step = 0; step < 20_000; step++) {
      const v = pick() | 0 || 1; // 0 and 1 are one hash (0 marks an empty slot)
      if (rnd() % 3 === 0) {
        const had = ref.get(v) ?? 0;
        assert.equal(bag.delete(v), had > 0);
        if (had > 1) ref.set(v, had - 1);
        else ref.delete(v);
      } else {
        bag.add(v);
        ref.set(v, (ref.get(v) ?? 0) + 1);
      }
      if (step % 997 === 0) for (const probe of [v, pick() | 0 || 1]) assert.equal(bag.has(probe), ref.has(probe), `step ${step} value ${probe}`);
    }
    assert.equal(bag.size, [...ref.values()].reduce((a, b) => a + b, 0));
    for (const [v, n] of ref) for (let i = 0; i < n; i++) assert.equal(bag.delete(v), true);
    assert.equal(bag.size, 0);
    assert.equal(bag.has(pick() | 0), false);
  });

  it('hashes strings to 32-bit integers that differ for near keys', () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `20|2|dl_vlan=1,dl_dst=fa:16:3e:00:${(i >> 8).toString(16)}:${(i & 255).toString(16)}`);
    const hashes = new Set(keys.map(hashString));
    assert.ok(hashes.size > 4990, `${hashes.size} distinct hashes of 5000 keys`);
    for (const h of hashes) assert.equal(h, h | 0);
  });
});
