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
});
