// The RPC transport between the server and its agents: oslo.messaging's three patterns
// (call, cast, fanout) over named topics, with two implementations behind this one interface
// (inproc.ts for tests and all-in-one, amqp.ts for RabbitMQ). Typed messages and endpoints
// live above this layer (messages.ts, endpoints*.ts); here payloads are plain JSON values.

export type Handler = (args: any, meta: { method: string; topic: string }) => unknown;
export type Handlers = Record<string, Handler>;

/** oslo.messaging-like semantics: topics, one consumer per call/cast, fanout to all. */
export interface Transport {
  /** Request/response to one server of `topic` (e.g. 'q-plugin'; or 'l3_agent.compute1'). Rejects with RpcError on remote error (keeps the remote error's `type`/name and message), RpcTimeout after opts.timeoutMs (default 60000), RpcNoServer (in-process only) when nobody serves the topic. */
  call<T = unknown>(topic: string, method: string, args: unknown, opts?: { timeoutMs?: number }): Promise<T>;
  /** Fire and forget to one server of `topic` (round-robin among several). */
  cast(topic: string, method: string, args: unknown): Promise<void>;
  /** To every server subscribed to `topic` with fanout. */
  fanout(topic: string, method: string, args: unknown): Promise<void>;
  /** Serve `handlers` on `topic`; with { fanout: true } also receive that topic's fanouts. Unknown method -> RpcError 'UnsupportedVersion'-like ('NoSuchMethod'). Returns a function that stops serving. */
  serve(topic: string, handlers: Handlers, opts?: { fanout?: boolean }): Promise<() => Promise<void>>;
  close(): Promise<void>;
  /**
   * Hear when a lost connection is back (AMQP): what was fanned out meanwhile is lost (fanout
   * queues go with the connection), so an agent resyncs. Returns the unsubscribe. The
   * in-process bus loses nothing and has none.
   */
  onReconnect?(listener: () => void): () => void;
}

export const DEFAULT_CALL_TIMEOUT_MS = 60_000;

/** What a fault-injection predicate sees: one message as it leaves its sender. */
export interface WireMessage {
  kind: 'call' | 'cast' | 'fanout' | 'reply';
  topic: string;
  /** For a reply, the method of the call it answers. */
  method: string;
  /** A copy of the payload (args, or the reply envelope); changing it changes nothing. */
  body: unknown;
}

export interface FaultRules {
  /** Messages for which this returns true are not delivered. */
  drop?: (m: WireMessage) => boolean;
  /** Messages for which this returns true are delivered twice. */
  duplicate?: (m: WireMessage) => boolean;
}

/** Both transports accept fault rules for what they send (calls, casts, fanouts, replies). */
export interface FaultInjectable {
  /** Adds rules; returns a function that removes them. Rules added later are consulted too. */
  inject(rules: FaultRules): () => void;
}

/** A predicate that holds only for the `n`th (1-based) message matching `pred`. */
export function nth(n: number, pred: (m: WireMessage) => boolean = () => true): (m: WireMessage) => boolean {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`nth: n must be a positive integer, got ${n}`);
  let seen = 0;
  return (m) => pred(m) && ++seen === n;
}

// --- Errors. Callers tell them apart by class; `name` is set so they also print clearly.

/** The remote handler failed: `type` is its error's class name (NeutronError.type, else Error.name). */
export class RpcError extends Error {
  override name = 'RpcError';
  constructor(
    readonly type: string,
    message: string,
    readonly topic: string,
    readonly method: string,
    /** The remote error's HTTP-like status when it had one (NeutronError). */
    readonly status?: number,
  ) {
    super(message);
  }
}

export class RpcTimeout extends Error {
  override name = 'RpcTimeout';
  constructor(
    readonly topic: string,
    readonly method: string,
    readonly timeoutMs: number,
  ) {
    super(`Timed out after ${timeoutMs} ms waiting for a reply to ${method} on topic '${topic}'`);
  }
}

export class RpcNoServer extends Error {
  override name = 'RpcNoServer';
  constructor(
    readonly topic: string,
    readonly method: string,
  ) {
    super(`No server is consuming topic '${topic}' (call ${method})`);
  }
}

/** The transport cannot deliver: closed, broker unreachable, or the connection dropped mid-call. */
export class RpcConnectionError extends Error {
  override name = 'RpcConnectionError';
}

/** A payload that JSON cannot carry faithfully; raised at send time, naming the path. */
export class RpcPayloadError extends TypeError {
  override name = 'RpcPayloadError';
}
