import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InProcessBus, InProcessTransport } from './inproc.js';
import { transportSuite, until } from './transport.case.js';

const bus = new InProcessBus();
transportSuite('in-process', async () => bus.transport({ onHandlerError: () => {} }), { callAfterStop: 'no-server', payloads: 'frozen' });

describe('InProcessTransport', () => {
  it('transports on different buses do not see each other', async () => {
    const a = new InProcessTransport();
    const b = new InProcessTransport();
    await a.serve('q-plugin', { ping: () => 'pong' });
    await assert.rejects(b.call('q-plugin', 'ping', {}), { name: 'RpcNoServer' });
    assert.equal(await a.call('q-plugin', 'ping', {}), 'pong');
    await Promise.all([a.close(), b.close()]);
  });

  it('named buses are shared by name', async () => {
    const a = InProcessBus.named('inproc-test').transport();
    const b = InProcessBus.named('inproc-test').transport();
    await a.serve('q-plugin', { ping: () => 'pong' });
    assert.equal(await b.call('q-plugin', 'ping', {}), 'pong');
    await Promise.all([a.close(), b.close()]);
  });

  it('counts casts and fanouts until their handlers end, a dropped one too (what settling waits for)', async () => {
    const b = new InProcessBus();
    const t = b.transport();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const stop = await t.serve('l2pop.compute1', { add_fdb_entries: () => held }, { fanout: true });
    await t.serve('l2pop.compute2', { add_fdb_entries: () => {} }, { fanout: true });
    await t.cast('l2pop.compute1', 'add_fdb_entries', {});
    await t.fanout('l2pop.compute2', 'add_fdb_entries', {});
    assert.deepEqual([b.sent, b.done], [2, 1], 'the held handler has not ended');
    release();
    await until(() => b.done === 2);
    await t.cast('l2pop.compute1', 'add_fdb_entries', {}); // handled: ends at once now
    await t.cast('nobody.here', 'add_fdb_entries', {}); // no server: not sent
    await until(() => b.done === 3);
    const late = t.cast('l2pop.compute1', 'add_fdb_entries', {});
    await stop(); // stopped before the delivery: dropped, and counted as done
    await late;
    await until(() => b.done === 4);
    assert.deepEqual([b.sent, b.done], [4, 4]);
    await t.close();
  });

  it('reports cast handler failures to onHandlerError', async () => {
    const errors: string[] = [];
    const t = new InProcessTransport({ onHandlerError: (e, m) => errors.push(`${m.topic} ${m.method} ${(e as Error).message}`) });
    await t.serve('dhcp_agent.network1', {
      network_create_end: () => {
        throw new Error('boom');
      },
    });
    await t.cast('dhcp_agent.network1', 'network_create_end', {});
    await t.cast('dhcp_agent.network1', 'missing', {});
    await until(() => errors.length === 2);
    assert.deepEqual(errors, [
      'dhcp_agent.network1 network_create_end boom',
      "dhcp_agent.network1 missing Endpoint on topic 'dhcp_agent.network1' does not support RPC method 'missing'",
    ]);
    await t.close();
  });

  it('a call whose server stops before delivery goes to another server', async () => {
    const t = new InProcessTransport();
    const stopA = await t.serve('l3_agent', { who: () => 'a' });
    await t.serve('l3_agent', { who: () => 'b' });
    const p = t.call('l3_agent', 'who', {}); // round-robin picked a
    await stopA();
    assert.equal(await p, 'b');
    await t.close();
  });

  it('runs at most prefetch handlers of a server at once, the others in the order sent', async () => {
    const bus = new InProcessBus();
    const srv = bus.transport({ prefetch: 2 });
    const client = bus.transport();
    const release: Array<() => void> = [];
    const started: number[] = [];
    await srv.serve('q-plugin', {
      work: (a: { i: number }) => {
        started.push(a.i);
        return new Promise<number>((resolve) => release.push(() => resolve(a.i)));
      },
    });
    const calls = [1, 2, 3, 4].map((i) => client.call<number>('q-plugin', 'work', { i }));
    await until(() => started.length === 2);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(started, [1, 2]); // 3 and 4 wait for a handler to end
    release.shift()!();
    assert.equal(await calls[0], 1);
    await until(() => started.length === 3);
    assert.deepEqual(started, [1, 2, 3]);
    while (started.length < 4 || release.length) {
      release.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await Promise.all(calls), [1, 2, 3, 4]);
    await Promise.all([srv.close(), client.close()]);
  });

  it('a call waiting for its turn on a server that stops goes to another server', async () => {
    const bus = new InProcessBus();
    const a = bus.transport({ prefetch: 1 });
    const b = bus.transport();
    const client = bus.transport();
    const stopA = await a.serve('l3_agent', { who: () => new Promise(() => {}) }); // never ends
    await b.serve('l3_agent', { who: () => 'b' });
    void client.call('l3_agent', 'who', {}, { timeoutMs: 60_000 }).catch(() => {}); // a, for ever
    assert.equal(await client.call('l3_agent', 'who', {}), 'b'); // round-robin: b
    const waiting = client.call('l3_agent', 'who', {}); // a again: behind the one that never ends
    await new Promise((r) => setTimeout(r, 20));
    await stopA();
    assert.equal(await waiting, 'b');
    await Promise.all([a.close(), b.close(), client.close()]);
  });

  it('refuses a prefetch below one', () => {
    assert.throws(() => new InProcessTransport({ prefetch: 0 }), /prefetch must be at least 1/);
  });
});
