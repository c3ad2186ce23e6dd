// The conformance suite over a real RabbitMQ, plus what only a broker connection can do.
// Runs when DVRNET_TEST_AMQP names a broker (CI sets amqp://guest:guest@127.0.0.1:5672/).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AmqpTransport } from './amqp.js';
import { transportSuite, type TestTransport } from './transport.case.js';
import { RpcConnectionError } from './transport.js';

const url = process.env.DVRNET_TEST_AMQP;
const skip = url ? false : 'DVRNET_TEST_AMQP is not set (e.g. amqp://guest:guest@127.0.0.1:5672/)';

const quiet = { onHandlerError: () => {}, log: () => {}, exchange: 'dvrnet_test', queueExpiresMs: 60_000, reconnectInitialMs: 50 };

if (url) {
  transportSuite(
    'AMQP',
    async () => {
      // Connected up front, so short timeouts in the suite measure calls, not connection setup.
      const t = new AmqpTransport({ url, ...quiet });
      await t.connect();
      return t;
    },
    {
      callAfterStop: 'timeout',
      payloads: 'copied',
      dropConnection: (t: TestTransport) => (t as AmqpTransport).dropConnectionForTest(),
    },
  );
}

describe('AmqpTransport', { skip }, () => {
  it('connects lazily and reports whether it is connected', async () => {
    const t = new AmqpTransport({ url: url!, ...quiet });
    assert.equal(t.connected, false);
    await t.connect();
    assert.equal(t.connected, true);
    await t.close();
    assert.equal(t.connected, false);
  });

  it('fails clearly, naming the broker and the cause, when the broker cannot be reached', async () => {
    // Port 1 on localhost: nothing listens there, so the connection is refused at once.
    const t = new AmqpTransport({ url: 'rabbit://guest:secret@127.0.0.1:1/', ...quiet, sendWaitMs: 400 });
    const t0 = Date.now();
    await assert.rejects(t.cast('q-plugin', 'report_state', {}), (e: Error) => {
      assert.ok(e instanceof RpcConnectionError, String(e));
      assert.match(e.message, /amqp:\/\/guest@127\.0\.0\.1:1\/ within 400 ms for report_state on topic 'q-plugin': .*ECONNREFUSED/);
      assert.doesNotMatch(e.message, /secret/);
      return true;
    });
    assert.ok(Date.now() - t0 < 2000);
    await assert.rejects(t.call('q-plugin', 'get_devices_details_list', {}, { timeoutMs: 300 }), /No connection to the broker .* within 300 ms/);
    await assert.rejects(t.serve('q-plugin', {}), RpcConnectionError);
    await t.close();
  });

  it('transports on different exchanges share no queues', async () => {
    const a = new AmqpTransport({ url: url!, ...quiet, exchange: 'dvrnet_test_a' });
    const b = new AmqpTransport({ url: url!, ...quiet, exchange: 'dvrnet_test_b' });
    const topic = `q-plugin.${process.pid}`;
    const got: string[] = [];
    await a.serve(topic, { who: () => 'a', note: () => void got.push('a') }, { fanout: true });
    await b.serve(topic, { who: () => 'b', note: () => void got.push('b') }, { fanout: true });
    for (let i = 0; i < 4; i++) assert.equal(await a.call(topic, 'who', {}), 'a');
    await b.fanout(topic, 'note', {});
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got, ['b']);
    await Promise.all([a.close(), b.close()]);
  });

  it('close during a reconnect stops the retries', async () => {
    const t = new AmqpTransport({ url: 'amqp://127.0.0.1:1/', ...quiet, sendWaitMs: 100_000 });
    const p = t.cast('q-plugin', 'x', {});
    await new Promise((r) => setTimeout(r, 200));
    await t.close();
    await assert.rejects(p, /Transport is closed/);
  });
});
