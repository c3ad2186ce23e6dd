import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { suiteDirs } from '../common/testing.js';
import { Journal } from './journal.js';

interface Rec {
  id: string;
  v: number;
}

const freshDir = suiteDirs('dvrnet-journal-');
const fresh = () => join(freshDir(), 'recs.jsonl');

describe('instance journal', () => {
  it('reads back what was put and not deleted, the last put of each id winning', () => {
    const file = fresh();
    const live = new Map<string, Rec>();
    const j = new Journal<Rec>(file, live);
    assert.deepEqual(j.load(), [], 'no file: nothing');
    const put = (...rs: Rec[]) => {
      for (const r of rs) live.set(r.id, r);
      j.put(rs);
    };
    put({ id: 'a', v: 1 }, { id: 'b', v: 1 });
    put({ id: 'a', v: 2 });
    live.delete('b');
    j.del('b');
    assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 4, 'a line per change');
    assert.deepEqual(new Journal<Rec>(file, new Map()).load(), [{ id: 'a', v: 2 }]);
  });

  it('rewrites itself as a line per record once it has grown to twice their number, losing none', () => {
    const file = fresh();
    const live = new Map<string, Rec>();
    const j = new Journal<Rec>(file, live);
    for (let i = 0; i < 300; i++) {
      const r = { id: `r${i % 10}`, v: i };
      live.set(r.id, r);
      j.put([r]);
    }
    const lines = readFileSync(file, 'utf8').trim().split('\n').length;
    assert.ok(lines <= 2 * 10 + 64 + 1, `compacted: ${lines} lines`);
    const back = new Journal<Rec>(file, new Map()).load();
    assert.deepEqual(back.sort((x, y) => x.id.localeCompare(y.id)), [...live.values()].sort((x, y) => x.id.localeCompare(y.id)));
  });

  it('skips a last line a crash cut short, and refuses a broken line before it', () => {
    const file = fresh();
    const live = new Map<string, Rec>([['a', { id: 'a', v: 1 }]]);
    new Journal<Rec>(file, live).put([...live.values()]);
    appendFileSync(file, '{"put":{"id":"b",');
    assert.deepEqual(new Journal<Rec>(file, new Map()).load(), [{ id: 'a', v: 1 }]);
    appendFileSync(file, '\n{"del":"a"}\n');
    assert.throws(() => new Journal<Rec>(file, new Map()).load(), /line 2 is not JSON/);
  });
});
