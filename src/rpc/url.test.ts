import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { transportFromUrl } from './index.js';
import { AmqpTransport } from './amqp.js';
import { InProcessTransport } from './inproc.js';
import { parseTransportUrl, redact } from './url.js';

describe('transport_url', () => {
  it('reads oslo rabbit:// URLs, one or several hosts', () => {
    assert.deepEqual(parseTransportUrl('rabbit://openstack:RABBIT_PASS@controller:5672/'), {
      driver: 'amqp',
      hosts: [{ hostname: 'controller', port: 5672, username: 'openstack', password: 'RABBIT_PASS' }],
      vhost: '/',
      tls: false,
    });
    assert.deepEqual(parseTransportUrl('rabbit://a:p%40ss@h1:5673,b:q@h2/neutron?heartbeat=10'), {
      driver: 'amqp',
      hosts: [
        { hostname: 'h1', port: 5673, username: 'a', password: 'p@ss' },
        { hostname: 'h2', port: 5672, username: 'b', password: 'q' },
      ],
      vhost: 'neutron',
      tls: false,
      heartbeatS: 10,
    });
    const t = parseTransportUrl('amqps://[::1]');
    assert.deepEqual(t, { driver: 'amqp', hosts: [{ hostname: '::1', port: 5671, username: 'guest', password: 'guest' }], vhost: '/', tls: true });
    assert.equal((parseTransportUrl('rabbit://h/?ssl=1') as { tls: boolean }).tls, true);
    assert.equal((parseTransportUrl('amqp://h/%2F') as { vhost: string }).vhost, '/');
  });

  it('reads inproc:// and the empty URL as the in-process bus', () => {
    assert.deepEqual(parseTransportUrl(''), { driver: 'inproc', name: 'default' });
    assert.deepEqual(parseTransportUrl(undefined), { driver: 'inproc', name: 'default' });
    assert.deepEqual(parseTransportUrl('inproc://'), { driver: 'inproc', name: 'default' });
    assert.deepEqual(parseTransportUrl('inproc://allinone'), { driver: 'inproc', name: 'allinone' });
  });

  it('rejects what it cannot use, quoting the URL without its password', () => {
    assert.throws(() => parseTransportUrl('kafka://u:secret@h:9092/'), /Unsupported transport_url driver 'kafka' in "kafka:\/\/u:\*\*\*@h:9092\/"/);
    assert.throws(() => parseTransportUrl('controller:5672'), /Invalid transport_url "controller:5672"/);
    assert.throws(() => parseTransportUrl('rabbit://u:p@h:99999/'), /Invalid port 99999/);
    assert.throws(() => parseTransportUrl('rabbit:///'), /names no host/);
    assert.throws(() => parseTransportUrl('rabbit://h/?heartbeat=x'), /Invalid heartbeat "x"/);
    assert.throws(() => parseTransportUrl('rabbit://h:p:q/'), /Invalid host "h:p:q"/);
  });

  it('redacts every password', () => {
    assert.equal(redact('rabbit://a:p1@h1:5672,b:p2@h2/'), 'rabbit://a:***@h1:5672,b:***@h2/');
  });

  it('transportFromUrl picks the transport; inproc URLs with the same name share a bus', async () => {
    const a = transportFromUrl('inproc://url-test');
    const b = transportFromUrl('inproc://url-test');
    assert.ok(a instanceof InProcessTransport);
    await a.serve('q-plugin', { ping: () => 'pong' });
    assert.equal(await b.call('q-plugin', 'ping', {}), 'pong');
    await Promise.all([a.close(), b.close()]);
    const r = transportFromUrl('rabbit://guest:guest@127.0.0.1:5672/', { exchange: 'neutron' });
    assert.ok(r instanceof AmqpTransport);
    assert.equal(r.exchange, 'neutron');
    await r.close(); // never connected: nothing to do
  });
});
