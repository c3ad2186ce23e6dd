// The conformance suite every Transport passes: inproc.test.ts runs it always, amqp.test.ts
// against RabbitMQ when DVRNET_TEST_AMQP is set. Each test uses its own random topics, so
// tests never see each other's servers, even on a shared bus or broker.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import {
  nth,
  RpcConnectionError,
  RpcError,
  RpcNoServer,
  RpcPayloadError,
  RpcTimeout,
  type FaultInjectable,
  type Transport,
} from './transport.js';

export type TestTransport = Transport & FaultInjectable;

export interface SuiteOptions {
  /** Cuts the transport's connection as a broker failure would (AMQP only). */
  dropConnection?: (t: TestTransport) => void;
  /** After the last server of a topic stops, a call finds no server (inproc) or waits in a queue (AMQP). */
  callAfterStop: 'no-server' | 'timeout';
  /** Payloads cross as copies (AMQP) or as the sender's objects, frozen (in one process). */
  payloads: 'copied' | 'frozen';
}

export function transportSuite(name: string, make: () => Promise<TestTransport>, opts: SuiteOptions): void {
  describe(`Transport conformance: ${name}`, () => {
    let opened: TestTransport[] = [];
    const open = async () => {
      const t = await make();
      opened.push(t);
      return t;
    };
    afterEach(async () => {
      await Promise.all(opened.map((t) => t.close()));
      opened = [];
    });

    it('call returns the handler result; the handler sees args, method and topic', async () => {
      const [srv, cli] = [await open(), await open()];
      const t = topic('call');
      await srv.serve(t, {
        add: (a: { x: number; y: number }, meta) => ({ sum: a.x + a.y, meta }),
        later: async (a: { ms: number }) => {
          await sleep(a.ms);
          return ['done', null, true, 1.5, { nested: [] }];
        },
        nothing: () => undefined,
      });
      assert.deepEqual(await cli.call(t, 'add', { x: 2, y: 40 }), { sum: 42, meta: { method: 'add', topic: t } });
      assert.deepEqual(await cli.call(t, 'later', { ms: 5 }), ['done', null, true, 1.5, { nested: [] }]);
      assert.equal(await cli.call(t, 'nothing', undefined), undefined);
    });

    it('a transport can call a topic it serves itself', async () => {
      const one = await open();
      const t = topic('self');
      await one.serve(t, { echo: (a) => a });
      assert.deepEqual(await one.call(t, 'echo', { a: [1, 2] }), { a: [1, 2] });
    });

    it('shares nothing either side can change: arguments and results are copies, or frozen', async () => {
      const [srv, cli] = [await open(), await open()];
      const t = topic('copy');
      const kept = { list: [1, 2, 3] };
      let seen: { list: number[] } | undefined;
      const tryPush = (list: number[], n: number) => {
        try {
          list.push(n);
        } catch (e) {
          assert.ok(e instanceof TypeError, String(e)); // frozen
        }
      };
      await srv.serve(t, {
        take: (a: { list: number[] }) => {
          seen = a;
          tryPush(a.list, 99);
          return kept;
        },
      });
      const sent = { list: [1] };
      const got = await cli.call<{ list: number[] }>(t, 'take', sent);
      assert.deepEqual(sent, { list: [1] }, 'the handler changed the caller object');
      tryPush(got.list, 4);
      assert.deepEqual(kept, { list: [1, 2, 3] }, 'the caller changed the server object');
      if (opts.payloads === 'copied') {
        assert.notEqual(seen, sent);
        assert.notEqual(got, kept);
      } else {
        assert.ok(Object.isFrozen(sent) && Object.isFrozen(sent.list) && Object.isFrozen(kept.list), 'what was sent is frozen');
        assert.deepEqual(got, kept);
      }
    });

    it('never delivers inside the sender\'s stack', async () => {
      const [srv, cli] = [await open(), await open()];
      const t = topic('async');
      let returned = false;
      let sawReturned: boolean | undefined;
      const got = new Deferred<void>();
      await srv.serve(t, {
        ping: () => {
          sawReturned = returned;
          got.resolve();
        },
      });
      const sent = cli.cast(t, 'ping', {});
      returned = true;
      await got.promise;
      await sent;
      assert.equal(sawReturned, true);
    });

    it('remote errors keep their type, message and status', async () => {
      const [srv, cli] = [await open(), await open()];
      const t = topic('err');
      class NeutronLike extends Error {
        constructor(
          readonly type: string,
          readonly status: number,
          message: string,
        ) {
          super(message);
        }
      }
      class ValueError extends Error {
        override name = 'ValueError';
      }
      await srv.serve(t, {
        neutron: () => {
          throw new NeutronLike('PortNotFound', 404, 'Port 42 could not be found.');
        },
        named: async () => {
          throw new ValueError('bad value "x"');
        },
        builtin: () => (null as unknown as { x: number }).x,
        thrownString: () => {
          throw 'just a string';
        },
      });
      const e1 = await rejection(cli.call(t, 'neutron', {}));
      assert.ok(e1 instanceof RpcError, String(e1));
      assert.equal(e1.type, 'PortNotFound');
      assert.equal(e1.message, 'Port 42 could not be found.');
      assert.equal(e1.status, 404);
      assert.equal(e1.topic, t);
      assert.equal(e1.method, 'neutron');
      const e2 = await rejection(cli.call(t, 'named', {}));
      assert.ok(e2 instanceof RpcError);
      assert.deepEqual([e2.type, e2.message, e2.status], ['ValueError', 'bad value "x"', undefined]);
      const e3 = await rejection(cli.call(t, 'builtin', {}));
      assert.ok(e3 instanceof RpcError);
      assert.equal(e3.type, 'TypeError');
      const e4 = await rejection(cli.call(t, 'thrownString', {}));
      assert.ok(e4 instanceof RpcError);
      assert.deepEqual([e4.type, e4.message], ['Error', 'just a string']);
    });

    it('an unknown method is a NoSuchMethod error naming it', async () => {
      const [srv, cli] = [await open(), await open()];
      const t = topic('nomethod');
      await srv.serve(t, { known: () => 1 });
      for (const m of ['unknown', 'toString', '__proto__']) {
        const e = await rejection(cli.call(t, m, {}));
        assert.ok(e instanceof RpcError, String(e));
        assert.equal(e.type, 'NoSuchMethod');
        assert.match(e.message, new RegExp(`'${m}'`));
      }
    });

    it('a call times out with RpcTimeout after timeoutMs', async () => {
      const [srv, cli] = [await open(), await open()];
      const t = topic('slow');
      await srv.serve(t, { hang: () => new Promise(() => {}), slow: () => sleep(400).then(() => 'late') });
      const t0 = Date.now();
      const e = await rejection(cli.call(t, 'hang', {}, { timeoutMs: 150 }));
      const took = Date.now() - t0;
      assert.ok(e instanceof RpcTimeout, String(e));
      assert.equal(e.timeoutMs, 150);
      assert.match(e.message, /hang/);
      assert.ok(took >= 140 && took < 1500, `took ${took} ms`);
      // A reply that arrives after the timeout is ignored, and the transport keeps working.
      assert.ok((await rejection(cli.call(t, 'slow', {}, { timeoutMs: 100 }))) instanceof RpcTimeout);
      await sleep(400);
      assert.equal(await cli.call(t, 'slow', {}, { timeoutMs: 2000 }), 'late');
    });

    it('a call to a topic nobody has served rejects with RpcNoServer', async () => {
      const cli = await open();
      const t = topic('nobody');
      const e = await rejection(cli.call(t, 'anything', {}, { timeoutMs: 5000 }));
      assert.ok(e instanceof RpcNoServer, String(e));
      assert.match(e.message, new RegExp(t));
    });

    it('cast and call go round-robin across the servers of a topic', async () => {
      const [a, b, cli] = [await open(), await open(), await open()];
      const t = topic('rr');
      const got = { a: 0, b: 0 };
      const serverOf = { a: 0, b: 0 };
      await a.serve(t, { hit: () => void got.a++, who: () => 'a' });
      await b.serve(t, { hit: () => void got.b++, who: () => 'b' });
      for (let i = 0; i < 10; i++) await cli.cast(t, 'hit', { i });
      await until(() => got.a + got.b === 10);
      assert.deepEqual(got, { a: 5, b: 5 });
      for (let i = 0; i < 10; i++) serverOf[await cli.call<'a' | 'b'>(t, 'who', {})]++;
      assert.deepEqual(serverOf, { a: 5, b: 5 });
    });

    it('fanout reaches every fanout subscriber, and only them', async () => {
      const [s1, s2, s3, plain, cli] = [await open(), await open(), await open(), await open(), await open()];
      const t = topic('fan');
      const got: Record<string, unknown[]> = { s1: [], s2: [], s3: [], plain: [] };
      await s1.serve(t, { update: (a) => void got.s1.push(a) }, { fanout: true });
      await s2.serve(t, { update: (a) => void got.s2.push(a) }, { fanout: true });
      // Two fanout subscribers in one transport each get their copy.
      await s2.serve(t, { update: (a) => void got.s3.push(a) }, { fanout: true });
      await plain.serve(t, { update: (a) => void got.plain.push(a) });
      await cli.fanout(t, 'update', { port: 'p1' });
      await until(() => got.s1.length + got.s2.length + got.s3.length === 3);
      await sleep(50);
      assert.deepEqual(got, { s1: [{ port: 'p1' }], s2: [{ port: 'p1' }], s3: [{ port: 'p1' }], plain: [] });
      // A fanout subscriber also serves the topic's calls.
      const only = topic('fanonly');
      await s3.serve(only, { q: () => 'fan-subscriber' }, { fanout: true });
      assert.equal(await cli.call(only, 'q', {}), 'fan-subscriber');
      // A fanout to a topic without subscribers goes nowhere, without error.
      await cli.fanout(topic('empty'), 'update', {});
    });

    it('a stopped server receives nothing more', async () => {
      const [a, b, cli] = [await open(), await open(), await open()];
      const t = topic('stop');
      const got = { a: 0, b: 0, fa: 0, fb: 0 };
      const stopA = await a.serve(t, { hit: () => void got.a++, fan: () => void got.fa++ }, { fanout: true });
      const stopB = await b.serve(t, { hit: () => void got.b++, fan: () => void got.fb++ }, { fanout: true });
      await stopA();
      for (let i = 0; i < 6; i++) await cli.cast(t, 'hit', {});
      await cli.fanout(t, 'fan', {});
      await until(() => got.b === 6 && got.fb === 1);
      await sleep(50);
      assert.deepEqual(got, { a: 0, b: 6, fa: 0, fb: 1 });
      await stopB();
      await cli.fanout(t, 'fan', {});
      const e = await rejection(cli.call(t, 'hit', {}, { timeoutMs: 300 }));
      assert.ok(e instanceof (opts.callAfterStop === 'no-server' ? RpcNoServer : RpcTimeout), String(e));
      await sleep(50);
      assert.deepEqual(got, { a: 0, b: 6, fa: 0, fb: 1 });
    });

    it('keeps the order of one sender\'s messages on a topic', async () => {
      const [srv, cli] = [await open(), await open()];
      const t = topic('order');
      const seen: number[] = [];
      const fans: number[] = [];
      await srv.serve(t, { seq: (a: { i: number }) => void seen.push(a.i), fan: (a: { i: number }) => void fans.push(a.i) }, { fanout: true });
      const sends: Promise<unknown>[] = [];
      for (let i = 0; i < 300; i++) {
        // Interleave the three kinds without awaiting: each kind keeps its own order.
        if (i % 3 === 0) sends.push(cli.call(t, 'seq', { i }));
        else if (i % 3 === 1) sends.push(cli.cast(t, 'seq', { i }));
        else sends.push(cli.fanout(t, 'fan', { i }));
      }
      await Promise.all(sends);
      await until(() => seen.length === 200 && fans.length === 100);
      assert.deepEqual(seen, range(300).filter((i) => i % 3 !== 2));
      assert.deepEqual(fans, range(300).filter((i) => i % 3 === 2));
    });

    it('accepts only JSON payloads, naming the offending path, and sends nothing else', async () => {
      const [srv, cli] = [await open(), await open()];
      const t = topic('json');
      let calls = 0;
      await srv.serve(t, {
        echo: (a) => {
          calls++;
          return a;
        },
        date: () => ({ at: new Date(0) }),
      });
      class Port {
        id = 'p';
      }
      const cycle: Record<string, unknown> = {};
      cycle.self = cycle;
      const bad: Array<[unknown, RegExp]> = [
        [{ when: new Date() }, /args\.when is a Date/],
        [{ m: new Map() }, /args\.m is a Map/],
        [{ f: () => 1 }, /args\.f is a function/],
        [{ n: NaN }, /args\.n is NaN/],
        [{ big: 10n }, /args\.big is a bigint/],
        [{ list: [1, undefined] }, /args\.list\[1\] is undefined/],
        [{ port: new Port() }, /args\.port is a Port/],
        [{ buf: Buffer.from('x') }, /args\.buf is a Buffer/],
        [cycle, /args\.self refers back/],
        [{ 'odd key': [Infinity] }, /args\["odd key"\]\[0\] is Infinity/],
      ];
      for (const [args, msg] of bad) {
        for (const send of [() => cli.call(t, 'echo', args), () => cli.cast(t, 'echo', args), () => cli.fanout(t, 'echo', args)]) {
          const e = await rejection(send());
          assert.ok(e instanceof RpcPayloadError, String(e));
          assert.match(e.message, msg);
        }
      }
      // Undefined properties are left out, as JSON does, so optional fields may stay unset.
      assert.deepEqual(await cli.call(t, 'echo', { a: 1, b: undefined, c: null }), { a: 1, c: null });
      assert.equal(calls, 1);
      const e = await rejection(cli.call(t, 'date', {}));
      assert.ok(e instanceof RpcError);
      assert.equal(e.type, 'RpcPayloadError');
      assert.match(e.message, /result\.at is a Date/);
      await assert.rejects(cli.call('bad topic', 'echo', {}), /Invalid RPC topic "bad topic"/);
      await assert.rejects(cli.cast(t, '', {}), /Invalid RPC method name ""/);
    });

    it('serves 100 concurrent calls, each getting its own answer', async () => {
      const [srv, cli] = [await open(), await open()];
      const t = topic('many');
      let inFlight = 0;
      let maxInFlight = 0;
      await srv.serve(t, {
        square: async (a: { n: number }) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await sleep(20 + (a.n % 7) * 3);
          inFlight--;
          return { n: a.n, sq: a.n * a.n };
        },
      });
      const results = await Promise.all(range(100).map((n) => cli.call<{ n: number; sq: number }>(t, 'square', { n }, { timeoutMs: 20_000 })));
      assert.deepEqual(results, range(100).map((n) => ({ n, sq: n * n })));
      assert.ok(maxInFlight > 1, `handlers ran one at a time (max in flight ${maxInFlight})`);
    });

    it('closing fails pending calls and refuses new work', async () => {
      const [srv, cli] = [await open(), await open()];
      const t = topic('close');
      await srv.serve(t, { hang: () => new Promise(() => {}) });
      const pending = rejection(cli.call(t, 'hang', {}, { timeoutMs: 10_000 }));
      await sleep(50);
      await cli.close();
      const e = await pending;
      assert.ok(e instanceof RpcConnectionError, String(e));
      assert.match(e.message, /hang/);
      assert.ok((await rejection(cli.cast(t, 'hang', {}))) instanceof RpcConnectionError);
      await cli.close(); // idempotent
    });

    it('fault rules drop or duplicate the nth matching message', async () => {
      const [srv, cli] = [await open(), await open()];
      const t = topic('faults');
      const seen: number[] = [];
      let calls = 0;
      await srv.serve(t, { note: (a: { i: number }) => void seen.push(a.i), count: () => ++calls }, { fanout: true });
      const undo = cli.inject({ drop: nth(2, (m) => m.method === 'note'), duplicate: nth(4, (m) => m.method === 'note' && m.kind === 'cast') });
      for (let i = 1; i <= 5; i++) await cli.cast(t, 'note', { i });
      await cli.fanout(t, 'note', { i: 6 });
      await until(() => seen.length === 6);
      await sleep(50);
      assert.deepEqual(seen, [1, 3, 4, 4, 5, 6]);
      undo();
      // A dropped call is found out by its timeout; a duplicated reply is harmless.
      const undoCall = cli.inject({ drop: (m) => m.kind === 'call' && (m.body as { lose?: boolean }).lose === true });
      assert.ok((await rejection(cli.call(t, 'count', { lose: true }, { timeoutMs: 150 }))) instanceof RpcTimeout);
      undoCall();
      const undoReply = srv.inject({ duplicate: (m) => m.kind === 'reply' });
      assert.equal(await cli.call(t, 'count', {}), 1);
      assert.equal(await cli.call(t, 'count', {}), 2);
      undoReply();
      // A duplicated call runs twice on the server but settles once.
      const undoDup = cli.inject({ duplicate: (m) => m.kind === 'call' });
      const first = await cli.call<number>(t, 'count', {});
      await until(() => calls === 4);
      undoDup();
      assert.equal(first, 3);
    });

    if (opts.dropConnection) {
      const drop = opts.dropConnection;

      it('after a lost connection, a server comes back and serves calls, casts and fanouts again', async () => {
        const [srv, cli] = [await open(), await open()];
        const t = topic('reconnect');
        const fans: number[] = [];
        await srv.serve(t, { echo: (a) => a, fan: (a: { i: number }) => void fans.push(a.i) }, { fanout: true });
        assert.deepEqual(await cli.call(t, 'echo', { before: 1 }), { before: 1 });
        drop(srv);
        // Calls made while the server reconnects wait in its queue and are answered afterwards.
        assert.deepEqual(await cli.call(t, 'echo', { after: 1 }, { timeoutMs: 15_000 }), { after: 1 });
        // The fanout queue is exclusive and was re-created: fanouts reach the server again.
        await cli.fanout(t, 'fan', { i: 1 });
        await until(() => fans.length === 1, 5000);
        assert.deepEqual(fans, [1]);
      });

      it('a transport whose connection is back tells its listeners (what was fanned out meanwhile is lost)', async () => {
        const t = await open();
        let heard = 0;
        const off = t.onReconnect!(() => heard++);
        await t.serve(topic('back'), { echo: (a) => a });
        drop(t);
        await until(() => heard === 1, 10_000);
        off();
        drop(t);
        await t.serve(topic('back-again'), { echo: (a) => a }); // connected again
        assert.equal(heard, 1, 'an unsubscribed listener hears nothing');
      });

      it('in-flight calls fail with a clear error when the caller loses its connection, then calls work again', async () => {
        const [srv, cli] = [await open(), await open()];
        const t = topic('inflight');
        let started = new Deferred<void>();
        await srv.serve(t, {
          slow: () => {
            started.resolve();
            return sleep(300).then(() => 'ok');
          },
        });
        const pending = rejection(cli.call(t, 'slow', {}, { timeoutMs: 10_000 }));
        await started.promise; // the request is out: only its reply is outstanding
        started = new Deferred<void>();
        const t0 = Date.now();
        drop(cli);
        const e = await pending;
        assert.ok(e instanceof RpcConnectionError, String(e));
        assert.match(e.message, /slow/);
        assert.ok(Date.now() - t0 < 2000, 'the call hung instead of failing');
        assert.equal(await cli.call(t, 'slow', {}, { timeoutMs: 15_000 }), 'ok');
        await cli.cast(t, 'slow', {});
      });

      it('sends made while reconnecting are delivered in order after the connection is back', async () => {
        const [srv, cli] = [await open(), await open()];
        const t = topic('resend');
        const seen: number[] = [];
        await srv.serve(t, { seq: (a: { i: number }) => void seen.push(a.i) });
        await cli.cast(t, 'seq', { i: 0 });
        drop(cli);
        const sends = range(20).map((i) => cli.cast(t, 'seq', { i: i + 1 }));
        await Promise.all(sends);
        await until(() => seen.length === 21, 5000);
        assert.deepEqual(seen, range(21));
      });
    }
  });
}

// --- helpers

const suiteRun = randomBytes(3).toString('hex');
let topicSeq = 0;
function topic(what: string): string {
  return `test.${suiteRun}.${what}.${++topicSeq}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Condition not met within ${timeoutMs} ms: ${cond.toString()}`);
    await sleep(5);
  }
}

async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    const v = await p;
    throw new assert.AssertionError({ message: `expected a rejection, got ${JSON.stringify(v)}` });
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    return e;
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

class Deferred<T> {
  resolve!: (v: T) => void;
  readonly promise = new Promise<T>((r) => (this.resolve = r));
}
