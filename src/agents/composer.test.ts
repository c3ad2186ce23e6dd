// The composer's passes: it diffs against the state it last applied while that is trusted,
// and reads the host back in full at first, after a failed apply, after forget(), and once
// the trust interval has passed.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addBridge, addInternalPort, addNamespace, emptyHost, setPort } from '../host/build.js';
import type { HostOp } from '../host/ops.js';
import type { HostState } from '../host/state.js';
import { World } from '../dataplane/emulated/world.js';
import { HostComposer, type HostDriver } from './composer.js';

/** The emulated driver, counting full read-backs and failing an operation on request. */
function counting() {
  const host = new World().addHost('h1');
  const stats = { reads: 0, applied: [] as string[], failNext: false };
  const driver: HostDriver = {
    applyState(desired: HostState) {
      stats.reads++;
      return host.driver.applyState(desired);
    },
    readState: () => host.driver.readState(),
    apply(ops: readonly HostOp[]) {
      if (stats.failNext) {
        stats.failNext = false;
        throw new Error('injected failure');
      }
      stats.applied.push(...ops.map((o) => o.op));
      host.driver.apply(ops);
    },
  };
  return { host, driver, stats };
}

describe('HostComposer passes', () => {
  it('reads the host once, then diffs against what it applied', async () => {
    const { host, driver, stats } = counting();
    const c = new HostComposer('h1', driver);
    c.setFragment('setup', addBridge(emptyHost(), 'br-int'));
    await c.reconcile();
    assert.equal(stats.reads, 1);
    c.setFragment('l3', addNamespace(emptyHost(), 'qrouter-1'));
    const ops = await c.reconcile();
    assert.equal(stats.reads, 1, 'no second read-back');
    assert.equal(ops[0].op, 'netns.create');
    assert.ok(host.namespaces.has('qrouter-1'));
    assert.deepEqual(await c.reconcile(), [], 'nothing to do');
  });

  it('makes one apply of what the agents of a host declare in the same turn, and one more for what comes during it', async () => {
    const { host, driver } = counting();
    const c = new HostComposer('h1', driver);
    c.setFragment('setup', addBridge(emptyHost(), 'br-int'));
    await c.reconcile();
    let calls = 0;
    const apply = driver.apply!.bind(driver);
    driver.apply = (ops) => (calls++, apply(ops));
    // Two agents' passes of one burst (an L3 one and an OVS one), each asking for a reconcile.
    c.setFragment('l3', addNamespace(emptyHost(), 'qrouter-1'));
    const first = c.reconcile();
    c.setFragment('dhcp', addNamespace(emptyHost(), 'qdhcp-1'));
    const second = c.reconcile();
    assert.equal(await first, await second);
    assert.equal(calls, 1, 'one apply for both');
    assert.ok(host.namespaces.has('qrouter-1') && host.namespaces.has('qdhcp-1'));
    // A request while the apply runs is not lost: one more pass after it.
    let late: Promise<unknown> | undefined;
    driver.apply = (ops) => {
      calls++;
      if (!late) {
        c.setFragment('metadata', addNamespace(emptyHost(), 'qdhcp-2'));
        late = c.reconcile();
      }
      return apply(ops);
    };
    c.setFragment('l3', addNamespace(emptyHost(), 'qrouter-2'));
    await c.reconcile();
    await late;
    assert.equal(calls, 3);
    assert.ok(host.namespaces.has('qrouter-2') && host.namespaces.has('qdhcp-2'));
  });

  it("starts the passes of a host's agents that wait for overlapping spans together: their fragments make one apply", async () => {
    const { driver } = counting();
    const c = new HostComposer('h1', driver);
    c.setFragment('setup', addBridge(emptyHost(), 'br-int'));
    await c.reconcile();
    let calls = 0;
    const apply = driver.apply!.bind(driver);
    driver.apply = (ops) => (calls++, apply(ops));
    const ran: string[] = [];
    const pass = (owner: 'ovs' | 'l3', ns: string) => () => {
      ran.push(owner);
      c.setFragment(owner, addNamespace(emptyHost(), ns));
      void c.reconcile();
    };
    // The OVS agent hears of a port, the L3 agent 5 ms later; each gathers for 20 ms.
    c.after(20, pass('ovs', 'ns-ovs'));
    await new Promise((r) => setTimeout(r, 5));
    c.after(20, pass('l3', 'ns-l3'));
    // One that would wait less than the pending moment gets its own, and so does one that
    // would wait much longer (an agent gathering a busy burst).
    let early = 0;
    let late = 0;
    c.after(1, () => early++);
    c.after(100, () => late++);
    await new Promise((r) => setTimeout(r, 3));
    assert.deepEqual([early, ran.length], [1, 0]);
    await new Promise((r) => setTimeout(r, 30));
    await c.reconcile();
    assert.deepEqual(ran, ['ovs', 'l3']);
    assert.equal(calls, 1, 'one apply for both passes');
    assert.equal(late, 0, 'the longer wait did not join the earlier moment');
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(late, 1);
  });

  it('reads the host back after a failed apply, after forget(), and when trust has expired', async () => {
    const { host, driver, stats } = counting();
    const c = new HostComposer('h1', driver);
    c.setFragment('setup', addBridge(emptyHost(), 'br-int'));
    await c.reconcile();
    stats.failNext = true;
    c.setFragment('l3', addNamespace(emptyHost(), 'qrouter-1'));
    await assert.rejects(c.reconcile(), /injected failure/);
    await c.reconcile();
    assert.equal(stats.reads, 2, 'the pass after a failure reads the host');
    assert.ok(host.namespaces.has('qrouter-1'));
    // Something removed the namespace behind the composer's back: forget() heals it.
    host.delNetns('qrouter-1');
    assert.deepEqual(await c.reconcile(), [], 'the trusted state does not see it');
    c.forget();
    assert.equal((await c.reconcile())[0]?.op, 'netns.create');
    assert.equal(stats.reads, 3);
    const untrusting = new HostComposer('h1', driver, { trustMs: 0 });
    untrusting.setFragment('setup', c.desired());
    await untrusting.reconcile();
    await untrusting.reconcile();
    assert.equal(stats.reads, 5, 'trustMs 0 reads on every pass');
  });

  it('trusts a sole-writer driver (the emulated host) until a failure or forget(), however long', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const host = new World().addHost('h1');
    let reads = 0;
    const read = host.driver.readState.bind(host.driver);
    host.driver.readState = () => (reads++, read());
    const c = new HostComposer('h1', host.driver);
    c.setFragment('setup', addBridge(emptyHost(), 'br-int'));
    await c.reconcile();
    assert.equal(reads, 1);
    t.mock.timers.tick(24 * 3600_000);
    c.setFragment('l3', addNamespace(emptyHost(), 'qrouter-1'));
    assert.equal((await c.reconcile())[0]?.op, 'netns.create');
    assert.equal(reads, 1, 'a day later, still no read-back');
    c.forget();
    await c.reconcile();
    assert.equal(reads, 2);
    // Another driver over the same host is read back once its trust (60 s +-25%) has passed.
    const { driver, stats } = counting();
    const other = new HostComposer('h1', driver);
    other.setFragment('setup', addBridge(emptyHost(), 'br-int'));
    await other.reconcile();
    t.mock.timers.tick(76_000);
    await other.reconcile();
    assert.equal(stats.reads, 2);
  });

  it('gives back the same merged namespace and bridge while their fragments are the same objects', () => {
    const c = new HostComposer('h1', counting().driver);
    const setup = addNamespace(addBridge(emptyHost(), 'br-int'), 'qrouter-1');
    c.setFragment('setup', setup);
    c.setFragment('ovs', addBridge(emptyHost(), 'br-int'));
    c.setFragment('l3', addNamespace(emptyHost(), 'qrouter-1'));
    const a = c.desired();
    c.setFragment('dhcp', addNamespace(emptyHost(), 'qdhcp-2'));
    const b = c.desired();
    assert.equal(b.ovs.bridges['br-int'], a.ovs.bridges['br-int'], 'merged from the same two bridges: the same object');
    assert.equal(b.namespaces['qrouter-1'], a.namespaces['qrouter-1']);
    assert.notEqual(b.namespaces['qrouter-1'], setup.namespaces['qrouter-1'], 'two owners: a merged copy');
    c.setFragment('l3', addNamespace(emptyHost(), 'qrouter-1'));
    const d = c.desired();
    assert.notEqual(d.namespaces['qrouter-1'], b.namespaces['qrouter-1'], 'a new input: merged again');
    assert.deepEqual(d.namespaces['qrouter-1'], b.namespaces['qrouter-1']);
    assert.equal(d.namespaces['qdhcp-2'], b.namespaces['qdhcp-2']);
    assert.deepEqual(Object.keys(d.namespaces), Object.keys(b.namespaces), 'first-seen order kept');
    // What an agent sees of the others: merged once per change too, apart from the whole.
    const others = c.desired('dhcp');
    assert.equal(c.desired('dhcp').namespaces['qrouter-1'], others.namespaces['qrouter-1'], 'the same fragments: the same merged namespace');
    assert.equal(others.namespaces['qdhcp-2'], undefined, "the excepted owner's own left out");
    c.setFragment('dhcp', addNamespace(emptyHost(), 'qdhcp-3'));
    assert.equal(c.desired('dhcp').namespaces['qrouter-1'], others.namespaces['qrouter-1'], "a change of the excepted owner's fragment merges nothing again");
    assert.equal(c.desired().namespaces['qdhcp-3']?.name, 'qdhcp-3');
  });

  it('sends an announcement once the device is wired, and drops it when the device goes', async () => {
    const { driver } = counting();
    const sent: string[] = [];
    driver.announce = (ns, dev, ip) => void sent.push(`${ns} ${dev} ${ip}`);
    const c = new HostComposer('h1', driver);
    const plugged = addInternalPort(addNamespace(addBridge(emptyHost(), 'br-int'), 'fip-x'), 'br-int', 'fg-1', { namespace: 'fip-x', tag: 4095 });
    c.setFragment('l3', plugged);
    await c.reconcile();
    await c.announce('fip-x', 'fg-1', '203.0.113.7');
    assert.deepEqual(sent, [], 'on the dead VLAN: held');
    c.setFragment('l3', setPort(plugged, 'br-int', 'fg-1', { tag: 3 }));
    await c.reconcile();
    assert.deepEqual(sent, ['fip-x fg-1 203.0.113.7']);
    await c.reconcile();
    assert.equal(sent.length, 1, 'once');
    c.setFragment('l3', plugged);
    await c.reconcile();
    await c.announce('fip-x', 'fg-1', '203.0.113.8');
    c.setFragment('l3', addBridge(emptyHost(), 'br-int'));
    await c.reconcile();
    c.setFragment('l3', setPort(plugged, 'br-int', 'fg-1', { tag: 3 }));
    await c.reconcile();
    assert.equal(sent.length, 1, 'the device went before it was wired: nothing left to send');
  });
});
