// The base agent: requests gather into one pass, longer while they keep coming.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Agent } from './agent.js';
import { HostComposer } from './composer.js';
import { World } from '../dataplane/emulated/world.js';
import { InProcessTransport } from '../rpc/inproc.js';

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
