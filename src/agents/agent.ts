// What every agent shares: it reports its state to the server every report_interval,
// serves its host's RPC topic, and recomputes its whole fragment of the host state when
// told something changed (debounced, level-triggered) and periodically (resync), so a lost
// or duplicated message never leaves it wrong for good.

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
import type { Transport } from '../rpc/transport.js';
import type { HostComposer } from './composer.js';

export interface AgentOptions {
  transport: Transport;
  host: string;
  composer: HostComposer;
  /** Seconds between report_state calls (Neutron's report_interval, default 30). */
  reportInterval?: number;
  /** Seconds between full resyncs even without notifications (default 60; 0: never). */
  resyncInterval?: number;
  /** Delay that batches notifications into one resync (ms, default 0: next tick). */
  debounceMs?: number;
}

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

  call<M extends ServerMethod>(method: M, args: ServerMethods[M][0]): Promise<ServerMethods[M][1]> {
    const topic = method === 'report_state' ? SERVER_TOPICS.reports : this.topic === 'l3_agent' ? SERVER_TOPICS.l3 : SERVER_TOPICS.plugin;
    return this.transport.call(topic, method, args);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.serveBase) {
      const own = this.handlers() as Record<string, (a: unknown) => void | Promise<void>>;
      const wrap = Object.fromEntries(
        AGENT_METHOD_NAMES.map((m) => [m, async (args: unknown) => (own[m] ? await own[m](args) : this.requestSync())]),
      );
      this.stops.push(await this.transport.serve(hostTopic(this.serveBase, this.host), wrap));
      this.stops.push(await this.transport.serve(this.serveBase, wrap, { fanout: true }));
    }
    await this.report(true);
    await this.resync();
    const report = this.opts.reportInterval ?? 30;
    if (report > 0) this.timers.push(setInterval(() => void this.report(false).catch(() => {}), report * 1000).unref());
    const resync = this.opts.resyncInterval ?? 60;
    if (resync > 0) this.timers.push(setInterval(() => this.requestSync(), resync * 1000).unref());
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
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
    this.scheduled = new Promise<void>((resolve) =>
      setTimeout(() => {
        this.scheduled = undefined;
        this.resyncIfDirty().finally(resolve);
      }, delayMs),
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
        this.lastError = undefined;
      } catch (err) {
        this.lastError = err;
        this.dirty = true; // try again on the next request or resync tick
        console.error(`${this.binary} on ${this.host}: sync failed:`, err);
      }
    })();
    try {
      await this.syncing;
    } finally {
      this.syncing = undefined;
    }
  }

  /** Resolves when no resync is scheduled or running (tests, convergence). */
  async idle(): Promise<void> {
    while (this.scheduled || this.syncing) {
      await this.scheduled;
      await this.syncing;
    }
  }
}
