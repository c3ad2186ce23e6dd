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
