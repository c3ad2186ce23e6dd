import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextTurn } from './turns.js';

describe('nextTurn', () => {
  it('gives one waiter per turn of the event loop, in order, with what others queued in between', async () => {
    const seen: string[] = [];
    const waiters = ['a', 'b', 'c'].map((name) => nextTurn().then(() => seen.push(name)));
    setImmediate(() => seen.push('reply 1')); // e.g. an RPC reply the server sent meanwhile
    setImmediate(() => setImmediate(() => seen.push('reply 2')));
    await Promise.all(waiters);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen, ['a', 'reply 1', 'b', 'reply 2', 'c']);
  });

  it('keeps the order of thousands of waiters and ends its pump when none is left', async () => {
    const seen: number[] = [];
    await Promise.all(Array.from({ length: 3000 }, (_, i) => nextTurn().then(() => seen.push(i))));
    assert.deepEqual(seen, Array.from({ length: 3000 }, (_, i) => i));
    // Later waiters start a new pump.
    let later = false;
    await nextTurn().then(() => (later = true));
    assert.equal(later, true);
  });
});
