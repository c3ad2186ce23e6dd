// AMQP 0-9-1 transport for RabbitMQ, laid out as oslo.messaging's rabbit driver does it:
//
//   call/cast  -> topic exchange `exchange` (default 'dvrnet'), routing key = topic, into one
//                 shared queue `<exchange>.<topic>`; its servers are competing consumers, so
//                 the broker hands messages round-robin. The queue outlives its servers (an agent
//                 that restarts finds what was sent meanwhile); calls carry a TTL equal to their
//                 timeout so nobody answers a caller that has given up.
//   fanout     -> fanout exchange `<exchange>.<topic>_fanout`; every fanout subscriber binds its
//                 own exclusive, auto-delete queue.
//   replies    -> one exclusive reply queue per connection, matched by correlation id.
//
// Publishes go through a confirm channel, so a cast resolves once the broker has the message.
// Calls are published `mandatory`: a topic nobody has ever served is reported at once
// (RpcNoServer) instead of by the timeout.
//
// When the connection drops, in-flight calls fail with RpcConnectionError (their reply queue is
// gone with the connection), and the transport reconnects with exponential backoff, declares
// its exchanges and queues again and re-subscribes every server. Casts and fanouts that were
// not yet confirmed, and sends made while disconnected, wait for the new connection (up to
// `sendWaitMs`) and then go out in their original order: at-least-once, so a message may arrive
// twice, which receivers must tolerate anyway (agents resync in full).

import { randomUUID } from 'node:crypto';
import { connect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Message, type Options } from 'amqplib';
import { dispatch, reportHandlerError } from './dispatch.js';
import { describe, FaultInjector } from './faults.js';
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
  type WireMessage,
} from './transport.js';
import { describeHost, parseTransportUrl, TransportUrlError, type AmqpHost } from './url.js';
import { checkTopic, decodeReply, encodeMessage } from './wire.js';

export interface AmqpTransportOptions {
  /** rabbit://, amqp:// or amqps:// (oslo transport_url syntax; several hosts separated by ','). */
  url: string;
  /** The topic exchange for call/cast (oslo's control_exchange). Default 'dvrnet'. */
  exchange?: string;
  /** Unacknowledged messages per server (handlers running at once per subscription). Default 64. */
  prefetch?: number;
  /** AMQP heartbeat in seconds (the URL's ?heartbeat= wins). Default 30. */
  heartbeatS?: number;
  /** Reconnect delays: initial, doubled per failure up to max, with 20% jitter. Default 100 / 5000 ms. */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  /** How long cast, fanout and serve wait for a connection before failing. Default 10000 ms. */
  sendWaitMs?: number;
  /** A topic queue with no consumer for this long is deleted by the broker (x-expires). Default 30 min. */
  queueExpiresMs?: number;
  /** Failures of cast/fanout handlers (nobody waits for them). Default: one line on stderr. */
  onHandlerError?: (err: unknown, meta: { topic: string; method: string }) => void;
  /** Connection events (lost, reconnected, retrying). Default: one line on stderr. */
  log?: (line: string) => void;
}

interface Session {
  gen: number;
  where: string;
  model: ChannelModel;
  pub: ConfirmChannel;
  sub: Channel;
  replyQueue: string;
  fanoutExchanges: Map<string, Promise<void>>;
  dead: boolean;
}

interface Registration {
  topic: string;
  handlers: Handlers;
  fanout: boolean;
  /** The session it is subscribed on (-1: none yet), and the subscription in progress. */
  gen: number;
  ready: Promise<void>;
  tags: string[];
  stopped: boolean;
}

interface PendingCall {
  topic: string;
  method: string;
  /** The session the request was published on; -1 while waiting for a connection. */
  gen: number;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface Waiter {
  resolve: (s: Session) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class AmqpTransport implements Transport, FaultInjectable {
  readonly exchange: string;
  private readonly hosts: AmqpHost[];
  private readonly vhost: string;
  private readonly tls: boolean;
  private readonly heartbeatS: number;
  private readonly prefetch: number;
  private readonly reconnectInitialMs: number;
  private readonly reconnectMaxMs: number;
  private readonly sendWaitMs: number;
  private readonly queueExpiresMs: number;
  private readonly onHandlerError: NonNullable<AmqpTransportOptions['onHandlerError']>;
  private readonly log: (line: string) => void;

  private readonly faults = new FaultInjector();
  private readonly regs = new Set<Registration>();
  private readonly pending = new Map<string, PendingCall>();
  private waiters: Waiter[] = [];
  private session: Session | null = null;
  private connecting: Promise<void> | null = null;
  private wakeBackoff: (() => void) | null = null;
  private nextGen = 0;
  private nextHost = 0;
  private lastError: Error | null = null;
  private everConnected = false;
  private readonly reconnectListeners = new Set<() => void>();
  private closed = false;

  constructor(opts: AmqpTransportOptions) {
    const u = parseTransportUrl(opts.url);
    if (u.driver !== 'amqp') throw new TransportUrlError(`AmqpTransport needs a rabbit:// or amqp:// URL, not ${JSON.stringify(opts.url)}`);
    this.hosts = u.hosts;
    this.vhost = u.vhost;
    this.tls = u.tls;
    this.heartbeatS = u.heartbeatS ?? opts.heartbeatS ?? 30;
    this.exchange = opts.exchange ?? 'dvrnet';
    this.prefetch = opts.prefetch ?? 64;
    this.reconnectInitialMs = opts.reconnectInitialMs ?? 100;
    this.reconnectMaxMs = opts.reconnectMaxMs ?? 5000;
    this.sendWaitMs = opts.sendWaitMs ?? 10_000;
    this.queueExpiresMs = opts.queueExpiresMs ?? 30 * 60_000;
    this.onHandlerError = opts.onHandlerError ?? reportHandlerError;
    this.log = opts.log ?? ((line) => process.stderr.write(`rpc: ${line}\n`));
  }

  /** Connects now rather than at first use; rejects if the broker stays unreachable for sendWaitMs. */
  async connect(): Promise<void> {
    await this.waitSession(this.sendWaitMs, 'connecting');
  }

  inject(rules: FaultRules): () => void {
    return this.faults.inject(rules);
  }

  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => void this.reconnectListeners.delete(listener);
  }

  /** For tests: cut the TCP connection under the transport, as a broker crash or network loss would. */
  dropConnectionForTest(): void {
    const s = this.session;
    if (!s) return;
    socketOf(s.model)?.destroy(new Error('connection dropped by test'));
  }

  /** Whether a connection is up (for health reporting). */
  get connected(): boolean {
    return this.session !== null;
  }

  call<T = unknown>(topic: string, method: string, args: unknown, opts: { timeoutMs?: number } = {}): Promise<T> {
    let text: string;
    try {
      this.checkOpen();
      text = encodeMessage(topic, method, args);
    } catch (e) {
      return Promise.reject(e);
    }
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const id = randomUUID();
    return new Promise<T>((resolve, reject) => {
      const p: PendingCall = {
        topic,
        method,
        gen: -1,
        resolve: resolve as (v: unknown) => void,
        reject,
        timer: setTimeout(() => {
          // Never published: the connection is what failed, so say so rather than "timed out".
          const err = p.gen < 0 ? this.noConnection(timeoutMs, `${method} on topic '${topic}'`) : new RpcTimeout(topic, method, timeoutMs);
          this.settle(id, undefined, err);
        }, timeoutMs),
      };
      this.pending.set(id, p);
      const send = (s: Session) => {
        if (!this.pending.has(id)) return;
        p.gen = s.gen;
        const props: Options.Publish = { correlationId: id, replyTo: s.replyQueue, mandatory: true, expiration: String(timeoutMs) };
        for (let i = this.copies('call', topic, method, text); i > 0; i--) {
          this.publish(s, this.exchange, topic, text, props).catch((e) => this.settle(id, undefined, e));
        }
      };
      if (this.session) send(this.session);
      else this.waitSession(timeoutMs, `${method} on topic '${topic}'`).then(send, (e) => this.settle(id, undefined, e));
    });
  }

  cast(topic: string, method: string, args: unknown): Promise<void> {
    try {
      this.checkOpen();
      const text = encodeMessage(topic, method, args);
      const n = this.copies('cast', topic, method, text);
      return this.sendReliably(`${method} on topic '${topic}'`, (s) =>
        Promise.all(Array.from({ length: n }, () => this.publish(s, this.exchange, topic, text, {}))),
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  fanout(topic: string, method: string, args: unknown): Promise<void> {
    try {
      this.checkOpen();
      const text = encodeMessage(topic, method, args);
      const n = this.copies('fanout', topic, method, text);
      const exchange = this.fanoutExchange(topic);
      return this.sendReliably(`fanout ${method} on topic '${topic}'`, (s) =>
        // Chained on the declaration, so fanouts to one topic leave in the order they were made.
        this.declareFanout(s, exchange).then(() => Promise.all(Array.from({ length: n }, () => this.publish(s, exchange, '', text, {})))),
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async serve(topic: string, handlers: Handlers, opts: { fanout?: boolean } = {}): Promise<() => Promise<void>> {
    this.checkOpen();
    checkTopic(topic);
    const reg: Registration = { topic, handlers, fanout: opts.fanout === true, gen: -1, ready: Promise.resolve(), tags: [], stopped: false };
    this.regs.add(reg);
    try {
      // If the connection drops while subscribing, the new session subscribes `reg` itself
      // (it is in this.regs); we only wait for that to finish.
      const deadline = Date.now() + this.sendWaitMs;
      for (;;) {
        const s = this.session ?? (await this.waitSession(Math.max(1, deadline - Date.now()), `serving topic '${topic}'`));
        if (reg.gen !== s.gen) reg.ready = this.subscribe(s, reg);
        try {
          await reg.ready;
          break;
        } catch (e) {
          if (!s.dead || this.closed) throw e;
        }
      }
    } catch (e) {
      this.regs.delete(reg);
      throw e;
    }
    return async () => {
      if (reg.stopped) return;
      reg.stopped = true;
      this.regs.delete(reg);
      const s = this.session;
      if (s && reg.gen === s.gen) {
        await reg.ready.catch(() => {});
        // After cancel-ok the broker delivers nothing more to these consumers; the exclusive
        // fanout queue goes away with its consumer (auto-delete).
        await Promise.all(reg.tags.map((tag) => s.sub.cancel(tag).catch(() => {})));
      }
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wakeBackoff?.();
    const closedErr = () => new RpcConnectionError('Transport is closed');
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(closedErr());
    }
    for (const [id, p] of this.pending) {
      this.settle(id, undefined, new RpcConnectionError(`Transport closed while waiting for a reply to ${p.method} on topic '${p.topic}'`));
    }
    this.regs.clear();
    const s = this.session;
    this.session = null;
    if (s) {
      // Let casts already handed to the broker be confirmed, so close() right after a cast
      // neither loses it nor fails it.
      await Promise.race([s.pub.waitForConfirms().catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
      s.dead = true;
      await closeModel(s.model);
    }
    await this.connecting?.catch(() => {});
  }

  // --- sending

  private checkOpen(): void {
    if (this.closed) throw new RpcConnectionError('Transport is closed');
  }

  private copies(kind: WireMessage['kind'], topic: string, method: string, text: string): number {
    return this.faults.copies(() => describe(kind, topic, method, text));
  }

  /**
   * Runs `send` on the current session, or on the next one if there is none; if the session
   * dies before the broker confirmed, once more on the next. Waiting and retrying keep the
   * order of sends, because waiters are served first-in, first-out.
   */
  private sendReliably(what: string, send: (s: Session) => Promise<unknown>): Promise<void> {
    const attempt = (s: Session, retries: number): Promise<void> =>
      send(s).then(
        () => undefined,
        (e) => {
          if (!s.dead || this.closed || retries === 0) throw e;
          return this.waitSession(this.sendWaitMs, what).then((next) => attempt(next, retries - 1));
        },
      );
    if (this.session) return attempt(this.session, 1);
    return this.waitSession(this.sendWaitMs, what).then((s) => attempt(s, 1));
  }

  private publish(s: Session, exchange: string, key: string, text: string, props: Options.Publish): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (e: unknown) =>
        reject(new RpcConnectionError(`Broker ${s.where} did not take the message for '${key || exchange}': ${(e as Error)?.message ?? e}`));
      try {
        s.pub.publish(exchange, key, Buffer.from(text), { contentType: 'application/json', ...props }, (err) => (err ? fail(err) : resolve()));
      } catch (e) {
        fail(e);
      }
    });
  }

  private declareFanout(s: Session, exchange: string): Promise<void> {
    let p = s.fanoutExchanges.get(exchange);
    if (!p) {
      // Not auto-delete: senders cache the declaration, and it must not vanish under them.
      p = s.pub.assertExchange(exchange, 'fanout', { durable: false, autoDelete: false }).then(() => undefined);
      s.fanoutExchanges.set(exchange, p);
    }
    return p;
  }

  // --- names: everything is prefixed with the control exchange, so two deployments (or two
  // test runs) with different exchanges share nothing on one virtual host.

  private topicQueue(topic: string): string {
    return `${this.exchange}.${topic}`;
  }

  private fanoutExchange(topic: string): string {
    return `${this.exchange}.${topic}_fanout`;
  }

  // --- receiving

  private async subscribe(s: Session, reg: Registration): Promise<void> {
    reg.gen = s.gen;
    reg.tags = [];
    const onMessage = (m: ConsumeMessage | null) => this.onRequest(s, reg, m);
    // The fanout queue first: once the topic queue is consumed (and calls get answered),
    // fanouts already reach this server.
    if (reg.fanout) {
      const exchange = this.fanoutExchange(reg.topic);
      await this.declareFanout(s, exchange);
      const q = await s.sub.assertQueue(`${exchange}_${randomUUID().replaceAll('-', '')}`, { exclusive: true, autoDelete: true, durable: false });
      await s.sub.bindQueue(q.queue, exchange, '');
      reg.tags.push((await s.sub.consume(q.queue, onMessage, { noAck: false })).consumerTag);
    }
    const queue = this.topicQueue(reg.topic);
    await s.sub.assertQueue(queue, { durable: false, autoDelete: false, expires: this.queueExpiresMs });
    await s.sub.bindQueue(queue, this.exchange, reg.topic);
    reg.tags.push((await s.sub.consume(queue, onMessage, { noAck: false })).consumerTag);
    if (reg.stopped) await Promise.all(reg.tags.map((tag) => s.sub.cancel(tag).catch(() => {})));
  }

  private onRequest(s: Session, reg: Registration, msg: ConsumeMessage | null): void {
    if (!msg) {
      // The broker cancelled the consumer (its queue was deleted): start over on a new connection.
      this.lose(s, `the broker cancelled the consumer of topic '${reg.topic}'`);
      return;
    }
    const { replyTo, correlationId } = msg.properties as { replyTo?: string; correlationId?: string };
    void dispatch(reg.handlers, msg.content.toString('utf8'), reg.topic).then((d) => {
      if (replyTo) {
        // Reply on the connection the request came from, or the current one if that died; a
        // caller whose reply queue is gone simply never gets it (the broker drops it).
        const rs = s.dead ? this.session : s;
        if (rs) {
          for (let i = this.copies('reply', reg.topic, d.method, d.reply); i > 0; i--) {
            this.publish(rs, '', replyTo, d.reply, { correlationId }).catch(() => {});
          }
        }
      } else if (d.error !== undefined) {
        this.onHandlerError(d.error, { topic: reg.topic, method: d.method });
      }
      // Acknowledged after the handler: prefetch then bounds the handlers running at once.
      if (!s.dead) {
        try {
          s.sub.ack(msg);
        } catch {
          // The channel closed meanwhile; the broker requeues the message for another server.
        }
      }
    });
  }

  private onReply(msg: ConsumeMessage): void {
    const id = msg.properties.correlationId as string | undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || id === undefined) return; // timed out, or a duplicate
    try {
      const env = decodeReply(msg.content.toString('utf8'));
      if ('error' in env) this.settle(id, undefined, new RpcError(env.error.type, env.error.message, p.topic, p.method, env.error.status));
      else this.settle(id, env.result);
    } catch (e) {
      this.settle(id, undefined, e as Error);
    }
  }

  /** A mandatory call that no queue took: nobody has ever served the topic. */
  private onReturn(msg: Message): void {
    const id = msg.properties.correlationId as string | undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (p && id !== undefined) this.settle(id, undefined, new RpcNoServer(p.topic, p.method));
  }

  private settle(id: string, value: unknown, err?: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(value);
  }

  // --- connection life cycle

  private waitSession(timeoutMs: number, what: string): Promise<Session> {
    if (this.closed) return Promise.reject(new RpcConnectionError('Transport is closed'));
    if (this.session) return Promise.resolve(this.session);
    this.ensureConnecting();
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(this.noConnection(timeoutMs, what));
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  private noConnection(ms: number, what: string): RpcConnectionError {
    const where = this.hosts.map((h) => describeHost(h, this.tls, this.vhost)).join(', ');
    const why = this.lastError ? `: ${this.lastError.message}` : ' (still connecting)';
    return new RpcConnectionError(`No connection to the broker ${where} within ${ms} ms for ${what}${why}`);
  }

  private ensureConnecting(): void {
    if (this.session || this.connecting || this.closed) return;
    this.connecting = this.connectLoop().finally(() => {
      this.connecting = null;
    });
  }

  private async connectLoop(): Promise<void> {
    for (let failures = 0; !this.closed; failures++) {
      const host = this.hosts[this.nextHost++ % this.hosts.length];
      try {
        const s = await this.open(host);
        if (this.closed) {
          s.dead = true;
          await closeModel(s.model);
          return;
        }
        this.session = s;
        const back = this.everConnected;
        if (back) this.log(`reconnected to ${s.where}`);
        this.everConnected = true;
        this.lastError = null;
        // All at once, in arrival order: their continuations then publish in that order.
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.resolve(s);
        }
        if (back) for (const l of this.reconnectListeners) l();
        return;
      } catch (e) {
        this.lastError = e as Error;
        const base = Math.min(this.reconnectMaxMs, this.reconnectInitialMs * 2 ** failures);
        const delay = Math.round(base * (0.8 + Math.random() * 0.4));
        if (failures === 0 || failures % 10 === 0) {
          this.log(`cannot connect to ${describeHost(host, this.tls, this.vhost)}: ${(e as Error).message}; retrying in ${delay} ms`);
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          this.wakeBackoff = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wakeBackoff = null;
      }
    }
  }

  /** Connects and declares everything this transport needs: exchange, reply queue, servers. */
  private async open(host: AmqpHost): Promise<Session> {
    const where = describeHost(host, this.tls, this.vhost);
    const model = await connect(
      {
        protocol: this.tls ? 'amqps' : 'amqp',
        hostname: host.hostname,
        port: host.port,
        username: host.username,
        password: host.password,
        vhost: this.vhost,
        heartbeat: this.heartbeatS,
      },
      { timeout: 10_000, noDelay: true },
    );
    const s: Session = {
      gen: ++this.nextGen,
      where,
      model,
      pub: undefined as unknown as ConfirmChannel,
      sub: undefined as unknown as Channel,
      replyQueue: '',
      fanoutExchanges: new Map(),
      dead: false,
    };
    model.on('error', (e: Error) => {
      this.lastError = e;
    });
    model.on('close', (e?: Error) => this.lose(s, e?.message ?? 'connection closed'));
    // amqplib watches the socket's 'end' and 'error' only; a socket closed under it otherwise
    // (destroyed locally) would leave it waiting for the next missed heartbeat.
    socketOf(model)?.on('close', () => this.lose(s, 'socket closed'));
    try {
      s.pub = await model.createConfirmChannel();
      s.sub = await model.createChannel();
      for (const ch of [s.pub, s.sub]) {
        ch.on('error', (e: Error) => {
          this.lastError = e;
        });
        // A channel error (e.g. a declaration that conflicts with the broker's) closes only the
        // channel; start over on a fresh connection rather than limp on without it.
        ch.on('close', () => this.lose(s, this.lastError?.message ?? 'channel closed'));
      }
      s.pub.on('return', (m: Message) => this.onReturn(m));
      await s.sub.prefetch(this.prefetch);
      await s.pub.assertExchange(this.exchange, 'topic', { durable: false, autoDelete: false });
      const rq = await s.sub.assertQueue(`${this.exchange}.reply_${randomUUID().replaceAll('-', '')}`, { exclusive: true, autoDelete: true, durable: false });
      s.replyQueue = rq.queue;
      await s.sub.consume(rq.queue, (m) => (m ? this.onReply(m) : this.lose(s, 'the broker cancelled the reply consumer')), { noAck: true });
      for (const reg of this.regs) {
        reg.ready = this.subscribe(s, reg);
        await reg.ready;
      }
    } catch (e) {
      s.dead = true;
      await closeModel(model);
      throw e;
    }
    if (s.dead) throw new RpcConnectionError(`Connection to ${where} lost while setting up: ${this.lastError?.message ?? 'closed'}`);
    return s;
  }

  /** The session's connection is gone (or unusable): fail what waited on it, then reconnect. */
  private lose(s: Session, reason: string): void {
    if (s.dead) return;
    s.dead = true;
    if (this.session === s) this.session = null;
    for (const [id, p] of this.pending) {
      if (p.gen === s.gen) {
        this.settle(id, undefined, new RpcConnectionError(`Connection to ${s.where} lost while waiting for the reply to ${p.method} on topic '${p.topic}': ${reason}`));
      }
    }
    void closeModel(s.model);
    if (this.closed) return;
    this.log(`connection to ${s.where} lost: ${reason}; reconnecting`);
    this.ensureConnecting();
  }
}

/** amqplib's socket (not in its typings): for noticing a locally closed socket, and for tests. */
function socketOf(model: ChannelModel): { on(ev: 'close', f: () => void): void; destroy(err?: Error): void } | undefined {
  const stream = (model.connection as unknown as { stream?: { on?: unknown; destroy?: unknown } }).stream;
  return stream && typeof stream.on === 'function' && typeof stream.destroy === 'function' ? (stream as ReturnType<typeof socketOf>) : undefined;
}

/** A polite close (close, close-ok) when the broker answers; the socket is cut after 2 s otherwise. */
async function closeModel(model: ChannelModel): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const cut = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      socketOf(model)?.destroy();
      resolve();
    }, 2000);
  });
  await Promise.race([model.close().catch(() => {}), cut]);
  clearTimeout(timer);
}

