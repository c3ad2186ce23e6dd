// In-process transport: a bus object plays the broker for every transport attached to it
// (server and agents of a test or an all-in-one process). It behaves like the AMQP transport
// where it matters to callers: every delivery is a later macrotask (never inside the sender's
// stack), payloads are checked as the wire checks them and then frozen and shared, not copied
// (wire.ts sealJson: neither side can change what the other sees, and a thousand hosts'
// casts cost no thousand encodings and parses), call/cast go round-robin to one
// server of the topic, fanout reaches every fanout subscriber, and messages from one sender on
// one topic arrive in the order sent (setImmediate runs callbacks first-in, first-out).
//
// Differences from RabbitMQ, by design: nothing is queued for a topic that has no server (a
// call rejects with RpcNoServer, a cast or fanout is dropped), and nothing is ever lost
// unless a fault rule says so.

import { dispatchSealed, reportHandlerError } from './dispatch.js';
import { describeSealed, FaultInjector } from './faults.js';
import {
  DEFAULT_CALL_TIMEOUT_MS,
  RpcConnectionError,
  RpcError,
  RpcNoServer,
  RpcTimeout,
  type FaultInjectable,
  type FaultRules,
  type Handlers,
  type Transport,
} from './transport.js';
import { checkTopic, sealMessage, type ReplyEnvelope, type RequestEnvelope } from './wire.js';

interface Server {
  topic: string;
  handlers: Handlers;
  owner: InProcessTransport;
  active: boolean;
  /** Handlers of this server running now, and the deliveries waiting for one of them to end. */
  running: number;
  waiting: Array<() => Promise<unknown>>;
}

interface Pending {
  topic: string;
  method: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class InProcessBus {
  private static readonly registry = new Map<string, InProcessBus>();

  /** The bus behind `inproc://<name>`: every transport made from the same URL shares it. */
  static named(name: string): InProcessBus {
    let bus = InProcessBus.registry.get(name);
    if (!bus) InProcessBus.registry.set(name, (bus = new InProcessBus()));
    return bus;
  }

  private readonly topics = new Map<string, { servers: Server[]; next: number }>();
  private readonly fanouts = new Map<string, Server[]>();

  /**
   * Cast and fanout deliveries handed to the bus, and those whose handler has ended (or that
   * were dropped): casts are quiet when the two are equal and neither moved while one looked
   * (what a test or benchmark waits for: the casts a call's handler sends may go out after the
   * caller's pass ended). Calls are left out: an agent's wait for its pass covers its calls, and
   * the report_state of a thousand hosts never stops.
   */
  sent = 0;
  done = 0;

  transport(opts: Omit<InProcessTransportOptions, 'bus'> = {}): InProcessTransport {
    return new InProcessTransport({ ...opts, bus: this });
  }

  /** Round-robin among the topic's servers; undefined when nobody serves it. */
  pick(topic: string): Server | undefined {
    const t = this.topics.get(topic);
    if (!t || t.servers.length === 0) return undefined;
    const s = t.servers[t.next % t.servers.length];
    t.next = (t.next + 1) % t.servers.length;
    return s;
  }

  fanoutServers(topic: string): readonly Server[] {
    return this.fanouts.get(topic) ?? [];
  }

  add(server: Server, fanout: boolean): void {
    let t = this.topics.get(server.topic);
    if (!t) this.topics.set(server.topic, (t = { servers: [], next: 0 }));
    t.servers.push(server);
    if (fanout) this.fanouts.set(server.topic, [...this.fanoutServers(server.topic), server]);
  }

  remove(server: Server): void {
    server.active = false;
    const t = this.topics.get(server.topic);
    if (t) {
      const i = t.servers.indexOf(server);
      if (i >= 0) t.servers.splice(i, 1);
      if (i >= 0 && i < t.next) t.next--;
      if (t.servers.length === 0) this.topics.delete(server.topic);
    }
    const f = this.fanoutServers(server.topic).filter((s) => s !== server);
    if (f.length) this.fanouts.set(server.topic, f);
    else this.fanouts.delete(server.topic);
    // What waited for its turn goes to another server now (or is dropped), not after handlers
    // that may never end; once it is out of the topic, so the requeue cannot pick it again.
    for (const run of server.waiting.splice(0)) void run();
  }
}

export interface InProcessTransportOptions {
  /** The bus to attach to; a private one by default (useful only for a single-transport test). */
  bus?: InProcessBus;
  /** Failures of cast/fanout handlers (nobody waits for them). Default: one line on stderr. */
  onHandlerError?: (err: unknown, meta: { topic: string; method: string }) => void;
  /**
   * Handlers each of this transport's servers runs at once (default 64, as the AMQP
   * transport's prefetch and Neutron's executor_thread_pool_size); further deliveries wait
   * their turn in order. Unbounded, handlers that wait for a database that answers later
   * (PostgreSQL) would all run interleaved, each finishing only when nearly all had, and a
   * thousand hosts' burst would time out as a whole.
   */
  prefetch?: number;
}

export class InProcessTransport implements Transport, FaultInjectable {
  readonly bus: InProcessBus;
  private readonly faults = new FaultInjector();
  private readonly servers = new Set<Server>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private readonly onHandlerError: NonNullable<InProcessTransportOptions['onHandlerError']>;
  /** Handlers each server of this transport runs at once (see the option). */
  readonly prefetch: number;

  constructor(opts: InProcessTransportOptions = {}) {
    this.bus = opts.bus ?? new InProcessBus();
    this.onHandlerError = opts.onHandlerError ?? reportHandlerError;
    this.prefetch = opts.prefetch ?? 64;
    if (!(this.prefetch >= 1)) throw new Error(`prefetch must be at least 1, not ${opts.prefetch}`);
  }

  inject(rules: FaultRules): () => void {
    return this.faults.inject(rules);
  }

  call<T = unknown>(topic: string, method: string, args: unknown, opts: { timeoutMs?: number } = {}): Promise<T> {
    let env: RequestEnvelope;
    try {
      this.checkOpen();
      env = sealMessage(topic, method, args);
    } catch (e) {
      return Promise.reject(e);
    }
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    return new Promise<T>((resolve, reject) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcTimeout(topic, method, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { topic, method, resolve: resolve as (v: unknown) => void, reject, timer });
      const n = this.faults.copies(() => describeSealed('call', topic, method, env.args));
      if (n === 0) return; // lost: the caller finds out by its timeout, as over a broker
      const server = this.bus.pick(topic);
      if (!server) {
        this.settle(id, undefined, new RpcNoServer(topic, method));
        return;
      }
      for (let i = 0; i < n; i++) {
        const target = i === 0 ? server : this.bus.pick(topic) ?? server;
        setImmediate(() => this.deliverCall(target, env, id, method));
      }
    });
  }

  cast(topic: string, method: string, args: unknown): Promise<void> {
    try {
      this.checkOpen();
      const env = sealMessage(topic, method, args);
      const n = this.faults.copies(() => describeSealed('cast', topic, method, env.args));
      for (let i = 0; i < n; i++) {
        const server = this.bus.pick(topic);
        if (!server) continue;
        this.bus.sent++;
        setImmediate(() => this.deliverOneWay(server, env));
      }
      return afterDelivery();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  fanout(topic: string, method: string, args: unknown): Promise<void> {
    try {
      this.checkOpen();
      const env = sealMessage(topic, method, args);
      const n = this.faults.copies(() => describeSealed('fanout', topic, method, env.args));
      const targets = this.bus.fanoutServers(topic);
      for (let i = 0; i < n; i++) {
        for (const server of targets) {
          this.bus.sent++;
          setImmediate(() => this.deliverOneWay(server, env));
        }
      }
      return afterDelivery();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async serve(topic: string, handlers: Handlers, opts: { fanout?: boolean } = {}): Promise<() => Promise<void>> {
    this.checkOpen();
    checkTopic(topic);
    const server: Server = { topic, handlers, owner: this, active: true, running: 0, waiting: [] };
    this.servers.add(server);
    this.bus.add(server, opts.fanout === true);
    return async () => {
      this.servers.delete(server);
      this.bus.remove(server);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.servers) this.bus.remove(s);
    this.servers.clear();
    for (const [id, p] of this.pending) this.settle(id, undefined, new RpcConnectionError(`Transport closed while waiting for a reply to ${p.method} on topic '${p.topic}'`));
  }

  private checkOpen(): void {
    if (this.closed) throw new RpcConnectionError('Transport is closed');
  }

  /** Runs on the server's side of the bus; `this` is the caller, `server.owner` the server. */
  private deliverCall(server: Server, env: RequestEnvelope, id: number, method: string): void {
    // The server may have stopped since the message was sent: like a requeue, try another.
    const target = server.active ? server : this.bus.pick(server.topic);
    if (!target) {
      this.settle(id, undefined, new RpcNoServer(server.topic, method));
      return;
    }
    admit(target, () => {
      // Stopped while the call waited its turn: to another server, as a requeue would.
      if (!target.active) return Promise.resolve(this.deliverCall(target, env, id, method));
      return dispatchSealed(target.handlers, env, target.topic).then((d) => {
        const n = target.owner.faults.copies(() => describeSealed('reply', target.topic, method, d.reply));
        for (let i = 0; i < n; i++) setImmediate(() => this.receiveReply(id, d.reply));
      });
    });
  }

  private deliverOneWay(server: Server, env: RequestEnvelope): void {
    if (!server.active) {
      this.bus.done++;
      return;
    }
    admit(server, () => {
      if (!server.active) {
        this.bus.done++;
        return Promise.resolve();
      }
      return dispatchSealed(server.handlers, env, server.topic).finally(() => this.bus.done++).then((d) => {
        if (d.error !== undefined) server.owner.onHandlerError(d.error, { topic: server.topic, method: d.method });
      });
    });
  }

  private receiveReply(id: number, env: ReplyEnvelope): void {
    const p = this.pending.get(id);
    if (!p) return; // timed out, closed, or a duplicate reply
    if ('error' in env) this.settle(id, undefined, new RpcError(env.error.type, env.error.message, p.topic, p.method, env.error.status));
    else this.settle(id, env.result);
  }

  private settle(id: number, value: unknown, err?: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(value);
  }
}

/** Run a delivery on `server` now if fewer than its owner's prefetch are running, else in turn after them. */
function admit(server: Server, run: () => Promise<unknown>): void {
  if (server.running >= server.owner.prefetch) {
    server.waiting.push(run);
    return;
  }
  server.running++;
  void run().finally(() => {
    server.running--;
    const next = server.waiting.shift();
    if (next) admit(server, next);
  });
}

/**
 * Casts and fanouts resolve once their deliveries have run, as a broker's confirm would come
 * later: a sender that awaits casts in a loop thus yields to the event loop instead of queueing
 * everything before anything is delivered.
 */
function afterDelivery(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
