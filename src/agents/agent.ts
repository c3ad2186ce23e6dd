// What every agent shares: it reports its state to the server every report_interval,
// serves its host's RPC topic, and recomputes its whole fragment of the host state when
// told something changed (debounced, level-triggered) and periodically (resync), so a lost
// or duplicated message never leaves it wrong for good.

import { setTimeout as sleep } from 'node:timers/promises';
import {
  AGENT_METHOD_NAMES,
  SERVER_TOPICS,
  hostTopic,
  type AgentMethod,
  type AgentMethods,
  type AgentStateMsg,
  type ServerMethod,
  type ServerMethods,
} from '../rpc/messages.js';
import { RpcTimeout, type Transport } from '../rpc/transport.js';
import { fnv1a } from '../common/hash.js';
import type { AgentCommon } from '../config/agents.js';
import type { HostComposer } from './composer.js';

export interface AgentOptions {
  transport: Transport;
  host: string;
  composer: HostComposer;
  /** Seconds between report_state calls (Neutron's report_interval, default 30). */
  reportInterval?: number;
  /**
   * Seconds between full resyncs even without notifications (default 0: never). As Neutron's
   * agents, an agent resyncs in full at start and after a failed pass; a periodic one on every
   * host costs the server each host's whole view per interval (a thousand hosts: most of a core).
   */
  resyncInterval?: number;
  /** Delay that batches notifications into one resync (ms, default 0: next tick). */
  debounceMs?: number;
  /** Seconds a call waits for its reply at first (rpc_response_timeout, default 60). */
  rpcResponseTimeout?: number;
  /** Seconds a method's timeout may double up to (rpc_response_max_timeout, default 600). */
  rpcResponseMaxTimeout?: number;
}

/** The options an agent's config file sets (a caller's own options override them). */
export const configOptions = (c: AgentCommon): Pick<AgentOptions, 'reportInterval' | 'rpcResponseTimeout' | 'rpcResponseMaxTimeout'> => ({
  reportInterval: c.agent.report_interval,
  rpcResponseTimeout: c.rpc_response_timeout,
  rpcResponseMaxTimeout: c.rpc_response_max_timeout,
});

/** A periodic report this late (ms) waits for its own point of the next such span: the others are late too. */
const LATE_REPORT_MS = 1000;
/** The longest wait before trying a failed pass again (s). */
const RETRY_MAX_S = 60;
/**
 * Busy (see gatherMs): this many requests within this time found a pass already gathering
 * since an earlier moment, or running: casts keep coming (a cloud coming up). The casts of one
 * change arrive together, and changes one after the other leave the agent idle in between.
 */
const BUSY_LATE = 8;
const BUSY_WITHIN_MS = 1000;
const BUSY_GATHER_MS = 150;

export abstract class Agent {
  abstract readonly agentType: string;
  abstract readonly binary: string;
  abstract readonly topic: string;
  /** The agent topic it serves (`q-agent-notifier`, `l3_agent`, `dhcp_agent`), if any. */
  protected abstract readonly serveBase?: string;

  readonly host: string;
  protected readonly transport: Transport;
  protected readonly composer: HostComposer;
  private timers: NodeJS.Timeout[] = [];
  /** The next try after a failed pass, and how many passes failed in a row (what it backs off by). */
  private retry?: NodeJS.Timeout;
  private failures = 0;
  private stops: Array<() => Promise<void>> = [];
  private scheduled?: Promise<void>;
  private dirty = false;
  private syncing?: Promise<void>;
  private started = false;
  /** Resyncs done (tests and benchmarks read it). */
  syncs = 0;
  lastError?: unknown;

  constructor(protected readonly opts: AgentOptions) {
    this.host = opts.host;
    this.transport = opts.transport;
    this.composer = opts.composer;
  }

  /** The agent's `configurations` in report_state. */
  protected abstract configurations(): Record<string, unknown>;

  /** Recompute this agent's fragment(s) from the server's view and hand them to the composer. */
  protected abstract sync(): Promise<void>;

  /** Handlers for what the server casts; by default every cast just schedules a resync. */
  protected handlers(): Partial<{ [M in AgentMethod]: (args: AgentMethods[M]) => void | Promise<void> }> {
    return {};
  }

  /** Seconds a call first waits for its reply (rpc_response_timeout). */
  get rpcResponseTimeout(): number {
    return this.opts.rpcResponseTimeout ?? 60;
  }

  /**
   * A call to the server, backing off as Neutron's agents do (neutron_lib.rpc
   * BackingOffClient): a method that timed out waits twice as long next time (up to
   * rpc_response_max_timeout; never shortened again, as busy servers rather than lost
   * messages are the usual cause), and the failing caller waits a random while before its
   * next attempt. A server swamped by a thousand hosts coming up then sees fewer, spread
   * retries, instead of every agent asking again at once and timing out again.
   */
  async call<M extends ServerMethod>(method: M, args: ServerMethods[M][0]): Promise<ServerMethods[M][1]> {
    const topic = method === 'report_state' ? SERVER_TOPICS.reports : this.topic === 'l3_agent' ? SERVER_TOPICS.l3 : SERVER_TOPICS.plugin;
    const base = this.rpcResponseTimeout;
    const timeout = this.methodTimeouts.get(method) ?? base;
    try {
      return await this.transport.call(topic, method, args, { timeoutMs: timeout * 1000 });
    } catch (err) {
      if (!(err instanceof RpcTimeout)) throw err;
      const wait = Math.random() * Math.min(timeout, base);
      console.error(
        `${this.binary} on ${this.host}: Timeout in RPC method ${method}. Waiting for ${Math.round(wait)} seconds before next attempt. If the server is not down, consider increasing the rpc_response_timeout option as Neutron server(s) may be overloaded and unable to respond quickly enough.`,
      );
      const next = Math.min(timeout * 2, this.opts.rpcResponseMaxTimeout ?? 600);
      if (next > timeout) {
        console.error(`${this.binary} on ${this.host}: Increasing timeout for ${method} calls to ${next} seconds. Restart the agent to restore it to the default value.`);
        this.methodTimeouts.set(method, next);
      }
      await sleep(wait * 1000, undefined, { signal: this.stopping.signal }).catch(() => {}); // cut short by stop()
      throw err;
    }
  }

  /** Per method, the timeout (s) it backed off to; the default for the others. */
  private readonly methodTimeouts = new Map<string, number>();
  /** Aborted by stop(): a caller waiting before its next attempt gives up waiting. */
  private stopping = new AbortController();

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.stopping = new AbortController();
    if (this.serveBase) {
      const own = this.handlers() as Record<string, (a: unknown) => void | Promise<void>>;
      const wrap = Object.fromEntries(
        AGENT_METHOD_NAMES.map((m) => [m, async (args: unknown) => (own[m] ? await own[m](args) : this.requestSync())]),
      );
      this.stops.push(await this.transport.serve(hostTopic(this.serveBase, this.host), wrap));
      this.stops.push(await this.transport.serve(this.serveBase, wrap, { fanout: true }));
    }
    // A connection back after a loss (AMQP): the casts and fanouts of the outage may be lost.
    const off = this.transport.onReconnect?.(() => this.requestSync());
    if (off) this.stops.push(async () => off());
    await this.report(true);
    await this.resync();
    const report = this.opts.reportInterval ?? 30;
    if (report > 0) {
      // At a point of the interval of the agent's own (a hash of host and binary): the agents
      // of a thousand hosts started together reported in one burst every interval, 3000
      // report_state calls the server answered in 0.3 s, ahead of whatever else was waiting.
      const period = report * 1000;
      this.scheduleReport(period, ((fnv1a(`${this.host}|${this.binary}`) % 1000) / 1000) * period, performance.now());
    }
    const resync = this.opts.resyncInterval ?? 0;
    if (resync > 0) this.timers.push(setInterval(() => this.requestSync(), resync * 1000).unref());
  }

  /**
   * The next periodic report_state, `phase` past a multiple of `period` since `origin` (not an
   * interval timer: a late one drifts, and after a stall every agent's would stay together). A
   * timer that fires late (the event loop was held: a long pass, a collection) finds the
   * others late too: its report waits for its own point of the next LATE_REPORT_MS.
   */
  private scheduleReport(period: number, phase: number, origin: number, last = -Infinity): void {
    const now = performance.now();
    // After `last` too: a timer may fire a little before its time by this clock.
    const due = origin + phase + (Math.floor((Math.max(now, last) - origin - phase) / period) + 1) * period;
    const send = () => {
      void this.report(false).catch(() => {});
      this.scheduleReport(period, phase, origin, due);
    };
    this.reportTimer = setTimeout(() => {
      if (performance.now() - due > LATE_REPORT_MS) this.reportTimer = setTimeout(send, (phase / period) * LATE_REPORT_MS).unref();
      else send();
    }, due - now).unref();
  }

  private reportTimer?: NodeJS.Timeout;

  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.reportTimer);
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    clearTimeout(this.retry);
    this.retry = undefined;
    for (const s of this.stops) await s();
    this.stops = [];
    await this.scheduled;
    await this.syncing;
    this.started = false;
  }

  async report(start: boolean): Promise<void> {
    const agent_state: AgentStateMsg = {
      agent_type: this.agentType,
      binary: this.binary,
      topic: this.topic,
      host: this.host,
      configurations: this.configurations(),
      start_flag: start,
    };
    await this.call('report_state', { agent_state });
  }

  /**
   * Mark dirty and resync soon; many requests before it runs make one resync. `delayMs`
   * (default: the debounce option) lets cheap incremental requests gather a burst.
   */
  requestSync(delayMs = this.opts.debounceMs ?? 0): void {
    this.dirty = true;
    const now = performance.now();
    if ((this.scheduled && now - this.scheduledAt >= 1) || this.syncing) {
      this.lateAt.push(now);
      if (this.lateAt.length > BUSY_LATE) this.lateAt.shift();
    }
    if (this.scheduled) return;
    this.scheduledAt = now;
    // Through the composer: the host's agents told of one change start their passes together.
    this.scheduled = new Promise<void>((resolve) =>
      this.composer.after(delayMs, () => {
        this.scheduled = undefined;
        this.resyncIfDirty().finally(resolve);
      }),
    );
  }

  /**
   * How long an incremental request waits to gather more: `ms` for a change on its own (or
   * changes one after the other: each answered quickly), longer while casts keep coming (a
   * cloud coming up casts to every host again and again; each pass then takes in more of them).
   */
  protected gatherMs(ms: number): number {
    const busy = this.lateAt.length === BUSY_LATE && performance.now() - this.lateAt[0] < BUSY_WITHIN_MS;
    return busy ? Math.max(ms, BUSY_GATHER_MS) : ms;
  }

  /** When the pending pass was scheduled, and when the last few late requests came (oldest first). */
  private scheduledAt = 0;
  private lateAt: number[] = [];

  /**
   * The scheduled pass, once the running one ends; none when a pass that started meanwhile
   * took every request in (two timers can wait on one running pass: the second would make a
   * pass with nothing said, which the L3 agent takes as a full resync).
   */
  private async resyncIfDirty(): Promise<void> {
    while (this.syncing) await this.syncing;
    if (this.dirty) await this.resync();
  }

  /** A full resync now (serialised: one at a time; requests during one make one more). */
  async resync(): Promise<void> {
    while (this.syncing) await this.syncing;
    this.dirty = false;
    this.syncing = (async () => {
      try {
        await this.sync();
        this.syncs++;
        this.failures = 0;
        this.lastError = undefined;
      } catch (err) {
        this.lastError = err;
        this.dirty = true; // try again on the next request, or the retry below
        this.failures++;
        this.retryLater();
        console.error(`${this.binary} on ${this.host}: sync failed:`, err);
      }
    })();
    try {
      await this.syncing;
    } finally {
      this.syncing = undefined;
    }
  }

  /**
   * A failed pass is tried again by itself, after 1 s and twice as long each time it fails
   * again (up to a minute), whether or not a cast comes: with no periodic resync, a quiet
   * host would otherwise stay as the failure left it.
   */
  private retryLater(): void {
    if (this.retry || this.stopping.signal.aborted) return;
    const seconds = Math.min(RETRY_MAX_S, 2 ** (this.failures - 1));
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.requestSync();
    }, seconds * 1000);
    this.retry.unref();
  }

  /** Resolves when no resync is scheduled or running (tests, convergence). */
  async idle(): Promise<void> {
    while (this.scheduled || this.syncing) {
      await this.scheduled;
      await this.syncing;
    }
  }
}
