import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NeutronError } from '../common/errors.js';
import { dispatch } from './dispatch.js';
import { nth } from './transport.js';
import { decodeReply, decodeRequest, encodeRequest, encodeResult } from './wire.js';

describe('RPC envelope', () => {
  it('is {v, method, args} one way and {result} or {error} the other', () => {
    assert.equal(encodeRequest('get_device_details', { device: 'tap1', agent_id: 'ovs-compute1' }), '{"v":1,"method":"get_device_details","args":{"device":"tap1","agent_id":"ovs-compute1"}}');
    assert.equal(encodeRequest('tick', undefined), '{"v":1,"method":"tick"}');
    assert.equal(encodeResult([1]), '{"result":[1]}');
    assert.equal(encodeResult(undefined), '{}');
    assert.deepEqual(decodeReply('{"error":{"type":"PortNotFound","message":"m","status":404}}'), { error: { type: 'PortNotFound', message: 'm', status: 404 } });
  });

  it('refuses malformed requests and replies, quoting them', () => {
    assert.throws(() => decodeRequest('nope'), /Request is not JSON: "nope"/);
    assert.throws(() => decodeRequest('[1]'), /not an envelope object: "\[1\]"/);
    assert.throws(() => decodeRequest('{"v":2,"method":"x"}'), /version 2 is not 1/);
    assert.throws(() => decodeRequest('{"v":1}'), /has no method/);
    assert.throws(() => decodeReply('{"error":"x"}'), /Reply error has no type and message/);
  });

  it('dispatch turns NeutronError into its wire type and status, and bad requests into MessageFormatError', async () => {
    const d = await dispatch(
      {
        get_port: (a: { id: string }) => {
          throw new NeutronError('PortNotFound', 404, `Port ${a.id} could not be found.`);
        },
      },
      encodeRequest('get_port', { id: 'p1' }),
      'q-plugin',
    );
    assert.deepEqual(JSON.parse(d.reply), { error: { type: 'PortNotFound', message: 'Port p1 could not be found.', status: 404 } });
    const bad = await dispatch({}, '{"v":9,"method":"x"}', 'q-plugin');
    assert.equal(JSON.parse(bad.reply).error.type, 'MessageFormatError');
  });

  it('nth counts only matching messages', () => {
    const p = nth(2, (m) => m.method === 'a');
    const msg = (method: string) => ({ kind: 'cast' as const, topic: 't', method, body: {} });
    assert.deepEqual(['a', 'b', 'a', 'a'].map((m) => p(msg(m))), [false, false, true, false]);
    assert.throws(() => nth(0), /positive integer/);
  });
});

describe('what JSON cannot carry', () => {
  const refused = (args: unknown) => {
    try {
      encodeRequest('m', args);
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };
  it('is refused with the path of the offender', () => {
    assert.equal(refused({ ports: { '10.0.1.2': [['fa:16:3e:00:00:01', '10.0.0.5']], x: [1, 2, NaN] } }), 'args.ports.x[2] is NaN, which JSON cannot carry');
    assert.equal(refused({ 'a-b': [{ when: new Date(0) }] }), 'args["a-b"][0].when is a Date, not a plain object; convert it to JSON values first');
    assert.equal(refused([['ok'], [undefined]]), 'args[1][0] is undefined, which JSON would turn into null');
    assert.equal(refused({ pair: ['fa:16:3e:00:00:01', , '10.0.0.5'] }), 'args.pair[1] is undefined, which JSON would turn into null', 'a hole among strings');
    assert.equal(refused({ n: 1n }), 'args.n is a bigint, which JSON cannot carry');
    const loop: Record<string, unknown> = { a: 'x' };
    loop.self = { again: loop };
    assert.equal(refused(loop), 'args.self.again refers back to one of its parents (a cycle)');
    assert.equal(refused({ skipped: undefined, fine: ['a', 'b'], shared: [loop.a, loop.a] }), 'accepted');
    const body = JSON.parse(encodeResult({ list: ['a', () => 1] }));
    assert.deepEqual(body.error, { type: 'RpcPayloadError', message: 'result.list[1] is a function, which JSON cannot carry' });
  });
});
