// The base agent: requests gather into one pass, longer while they keep coming.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Agent } from './agent.js';
import { HostComposer } from './composer.js';
import { World } from '../dataplane/emulated/world.js';
import { InProcessTransport } from '../rpc/inproc.js';
import { RpcTimeout, type Transport } from '../rpc/transport.js';
import { SERVER_TOPICS } from '../rpc/messages.js';

class Counting extends Agent {
  readonly agentType = 'Test agent';
  readonly binary = 'test-agent';
  readonly topic = 'N/A';
  protected readonly serveBase = undefined;
  passes = 0;
  protected configurations() {
    return {};
  }
  /** How long a pass takes (ms). */
  passMs = 0;
  protected async sync() {
    this.passes++;
    if (this.passMs) await new Promise((r) => setTimeout(r, this.passMs));
  }
  gather(ms: number) {
    return this.gatherMs(ms);
  }
}

describe('Agent passes', () => {
  it('requests made together make one pass; a busy agent gathers longer than an idle one', async () => {
    const host = new World().addHost('h1');
    const a = new Counting({ transport: new InProcessTransport(), host: 'h1', composer: new HostComposer('h1', host.driver) });
    assert.equal(a.gather(20), 20, 'idle: the requested delay');
    for (let i = 0; i < 5; i++) a.requestSync(20);
    await a.idle();
    assert.equal(a.passes, 1, 'one pass for the requests of one moment');
    assert.equal(a.gather(20), 20, 'and they do not make the agent busy');
    // Changes one after the other, each handled before the next: quick.
    for (let i = 0; i < 4; i++) {
      a.requestSync(1);
      await a.idle();
    }
    assert.equal(a.gather(20), 20, 'changes one after the other');
    // Requests that keep coming while one gathers: a stream (a cloud coming up).
    a.requestSync(50);
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 3));
      a.requestSync(50);
    }
    assert.ok(a.gather(20) > 20, 'casts keep coming: longer');
    assert.equal(a.gather(500), 500, 'never shorter than asked');
    await a.idle();
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(a.gather(20), 20, 'idle again');
  });

  it('a failed pass is tried again by itself, sooner than later, with no periodic resync and no cast', async (ctx) => {
    ctx.mock.method(console, 'error', () => {});
    const host = new World().addHost('h1');
    class Failing extends Counting {
      protected override async sync() {
        await super.sync();
        if (this.passes <= 2) throw new Error(`pass ${this.passes} fails`);
      }
    }
    const a = new Failing({ transport: new InProcessTransport(), host: 'h1', composer: new HostComposer('h1', host.driver), resyncInterval: 0 });
    a.requestSync();
    await a.idle();
    assert.equal(a.passes, 1);
    assert.match(String(a.lastError), /pass 1 fails/);
    const t0 = performance.now();
    while (a.passes < 3 && performance.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
    await a.idle();
    assert.equal(a.passes, 3, 'retried after 1 s, then after 2 s');
    assert.equal(a.lastError, undefined);
    assert.ok(performance.now() - t0 >= 2500, 'the second retry waited twice as long');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(a.passes, 3, 'no retry once a pass succeeded');
    await a.stop();
  });

  it('a connection back after a loss makes a started agent resync (the outage may have lost casts); a stopped one does not hear it', async () => {
    const host = new World().addHost('h1');
    const t = new InProcessTransport();
    await t.serve(SERVER_TOPICS.reports, { report_state: () => ({}) });
    const listeners = new Set<() => void>();
    (t as Transport).onReconnect = (l: () => void) => {
      listeners.add(l);
      return () => void listeners.delete(l);
    };
    const a = new Counting({ transport: t, host: 'h1', composer: new HostComposer('h1', host.driver) });
    await a.start();
    await a.idle();
    const before = a.passes;
    for (const l of listeners) l();
    await a.idle();
    assert.equal(a.passes, before + 1);
    await a.stop();
    assert.equal(listeners.size, 0, 'stop() unsubscribes');
  });

  it('agents started together report at points of the interval of their own, then every interval', async () => {
    const t = new InProcessTransport();
    const reports = new Map<string, number[]>();
    await t.serve(SERVER_TOPICS.reports, {
      report_state: (a: { agent_state: { host: string; start_flag?: boolean } }) => {
        if (!a.agent_state.start_flag) reports.set(a.agent_state.host, [...(reports.get(a.agent_state.host) ?? []), performance.now()]);
        return {};
      },
    });
    const world = new World();
    const agents = Array.from({ length: 20 }, (_, i) => {
      const name = `compute${i + 1}`;
      return new Counting({ transport: t, host: name, composer: new HostComposer(name, world.addHost(name).driver), reportInterval: 1 });
    });
    const t0 = performance.now();
    await Promise.all(agents.map((a) => a.start()));
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal(reports.size, 20, 'every agent reported within the interval after its start');
    const firsts = [...reports.values()].map((ts) => ts[0] - t0);
    assert.ok(firsts.every((ms) => ms <= 1100), `no first periodic report later than one interval: ${firsts.map(Math.round)}`);
    assert.ok(Math.max(...firsts) - Math.min(...firsts) > 500, `spread over the interval, not one burst: ${firsts.map(Math.round)}`);
    for (const ts of reports.values()) if (ts.length > 1) assert.ok(Math.abs(ts[1] - ts[0] - 1000) < 150, `then every interval: ${ts.map((x) => Math.round(x - t0))}`);
    assert.ok([...reports.values()].some((ts) => ts.length > 1), 'some reported twice in 2.1 s');
    // The event loop held for longer than the interval (a long pass, a collection): every
    // timer comes due at once, and the reports still go out spread, not in one burst.
    reports.clear();
    const held = performance.now();
    while (performance.now() - held < 2500);
    const back = performance.now();
    await new Promise((r) => setTimeout(r, 1100));
    await Promise.all(agents.map((a) => a.stop()));
    const after = [...reports.values()].map((ts) => ts[0] - back);
    assert.equal(after.length, 20, 'every agent reported within a second after the stall');
    assert.ok(Math.max(...after) - Math.min(...after) > 500, `after the stall too: ${after.map(Math.round)}`);
  });

  it('requests during a running pass make one more pass, not one per timer that waited on it', async () => {
    const host = new World().addHost('h1');
    const a = new Counting({ transport: new InProcessTransport(), host: 'h1', composer: new HostComposer('h1', host.driver) });
    a.passMs = 40;
    a.requestSync(0);
    await new Promise((r) => setTimeout(r, 10)); // the first pass is running
    a.requestSync(0); // its timer fires and waits on the running pass...
    await new Promise((r) => setTimeout(r, 5));
    a.requestSync(0); // ...and so does this one's
    await a.idle();
    assert.equal(a.passes, 2, 'the pass after the running one took both requests in');
  });
});

describe('Agent calls to the server', () => {
  /** A transport whose calls to the server are lost (or fail at once), recording each call's timeout. */
  function lossy(opts: { failAtOnce?: boolean } = {}) {
    const t = new InProcessTransport();
    t.inject({ drop: () => true });
    const timeouts: Array<[string, number | undefined]> = [];
    const call = t.call.bind(t);
    t.call = (topic: string, method: string, args: unknown, o: { timeoutMs?: number } = {}) => {
      timeouts.push([method, o.timeoutMs]);
      return opts.failAtOnce ? Promise.reject(new RpcTimeout(topic, method, o.timeoutMs ?? 0)) : call(topic, method, args, o);
    };
    return { t, timeouts };
  }

  it("back off as Neutron's agents do: a method that timed out waits twice as long next time, up to the maximum; others keep the default", async (ctx) => {
    ctx.mock.method(Math, 'random', () => 0); // no wait between attempts
    const errors = ctx.mock.method(console, 'error', () => {});
    const { t, timeouts } = lossy();
    const host = new World().addHost('h1');
    const a = new Counting({ transport: t, host: 'h1', composer: new HostComposer('h1', host.driver), rpcResponseTimeout: 0.02, rpcResponseMaxTimeout: 0.07 });
    for (let i = 0; i < 4; i++) await assert.rejects(a.call('get_dvr_mac_address_list', {}), RpcTimeout);
    await assert.rejects(a.call('get_dvr_mac_address_by_host', { host: 'h1' }), RpcTimeout);
    assert.deepEqual(timeouts, [
      ['get_dvr_mac_address_list', 20],
      ['get_dvr_mac_address_list', 40],
      ['get_dvr_mac_address_list', 70],
      ['get_dvr_mac_address_list', 70],
      ['get_dvr_mac_address_by_host', 20],
    ]);
    const said = errors.mock.calls.map((c) => String(c.arguments[0]));
    assert.ok(said.some((m) => m.includes('Timeout in RPC method get_dvr_mac_address_list. Waiting for 0 seconds before next attempt')), said.join('\n'));
    assert.ok(said.some((m) => m.includes('Increasing timeout for get_dvr_mac_address_list calls to 0.04 seconds')), said.join('\n'));
  });

  it('the caller of a call that timed out waits a random while before its next attempt, cut short when the agent stops', async (ctx) => {
    ctx.mock.method(Math, 'random', () => 0.99);
    ctx.mock.method(console, 'error', () => {});
    const { t } = lossy({ failAtOnce: true });
    const host = new World().addHost('h1');
    const a = new Counting({ transport: t, host: 'h1', composer: new HostComposer('h1', host.driver), rpcResponseTimeout: 0.1 });
    let t0 = performance.now();
    await assert.rejects(a.call('get_dvr_mac_address_list', {}), RpcTimeout);
    const waited = performance.now() - t0;
    assert.ok(waited >= 90, `waited ${waited} ms: 0.99 of the 100 ms timeout`);
    // A long wait (30 s at most 60) ends with the agent.
    const b = new Counting({ transport: t, host: 'h1', composer: new HostComposer('h1', host.driver), rpcResponseTimeout: 60 });
    t0 = performance.now();
    const attempt = assert.rejects(b.call('get_dvr_mac_address_list', {}), RpcTimeout);
    await new Promise((r) => setTimeout(r, 20));
    await b.stop();
    await attempt;
    assert.ok(performance.now() - t0 < 5000, 'stop() ended the wait');
  });
});
