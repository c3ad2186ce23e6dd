// The metadata proxy (haproxy as Neutron runs it): an HTTP listener in a router or DHCP
// namespace that sets the instance's identity headers (X-Forwarded-For from the source
// address; X-Neutron-Router-ID or X-Neutron-Network-ID, deleting any copy the instance sent)
// and forwards to its upstream, the metadata agent's UNIX socket on the same host.
//
// The agent lives outside the emulated network, so "the socket" is a handler registered
// per host and socket path (`registerMetadataUpstream`): the in-process metadata agent.
// Its answer may come later (an RPC to the server, a call to the metadata service): then
// the proxy answers once it resolves, as a new burst of traffic the world runs by itself
// (the TCP model closes the exchange without data first; the client waits for data).
// `httpRequest` is the instance-side client that waits for that answer.
//
// With no handler registered on the host at all, the proxy answers with what it would have
// forwarded (the request, the headers, the upstream), which is what a dataplane test needs;
// with handlers registered but none for its socket it answers 503, as haproxy does when its
// server is down.

import type { Namespace, SocketMessage } from '../linux/namespace.js';
import type { EmulatedHost } from '../linux/host.js';
import type { MetadataProxy } from '../../../host/state.js';
import type { TraceRecord } from '../../../trace/record.js';
import type { Endpoint, World } from '../world.js';

export interface ProxiedRequest {
  upstream: string;
  request: unknown;
  headers: Record<string, string>;
}

/** An HTTP request as the emulated network carries it (a frame's `data`). */
export interface HttpMessage {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type MetadataUpstream = (req: HttpMessage) => HttpReply | Promise<HttpReply>;

const upstreams = new WeakMap<EmulatedHost, Map<string, MetadataUpstream>>();
const lateListeners = new WeakMap<object, Set<(rec: TraceRecord) => void>>();

/** Plugs `handler` in as the UNIX socket `socketPath` on `host`; returns the unplug. */
export function registerMetadataUpstream(host: EmulatedHost, socketPath: string, handler: MetadataUpstream): () => void {
  let m = upstreams.get(host);
  if (!m) upstreams.set(host, (m = new Map()));
  if (m.has(socketPath)) throw new Error(`Something already listens on ${socketPath} on host '${host.name}'`);
  m.set(socketPath, handler);
  return () => {
    if (m.get(socketPath) === handler) m.delete(socketPath);
  };
}

/** `GET /path HTTP/1.1` text (request line, headers, blank line, body) or a bare `GET /path`. */
export function parseHttpRequest(text: string): HttpMessage {
  const [head, ...rest] = text.split(/\r?\n\r?\n/);
  const lines = head.split(/\r?\n/);
  const m = /^([A-Z]+)\s+(\S+)(?:\s+HTTP\/\d\.\d)?\s*$/.exec(lines[0] ?? '');
  if (!m) throw new Error(`Not an HTTP request line: ${JSON.stringify(lines[0] ?? '')}`);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i <= 0) throw new Error(`Not an HTTP header line: ${JSON.stringify(l)}`);
    headers[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  const body = rest.join('\n\n');
  return { method: m[1], path: m[2], headers, ...(body ? { body } : {}) };
}

const reply = (status: number, text: string): HttpReply => ({ status, headers: { 'Content-Type': 'text/html' }, body: `<html><body><h1>${status} ${text}</h1></body></html>\n` });

export class MetadataProxyApp {
  constructor(
    private ns: Namespace,
    public config: MetadataProxy,
  ) {}

  start(): void {
    if (this.ns.tcp.has(this.config.listen_port)) throw new Error(`metadata proxy ${this.config.id}: tcp:${this.config.listen_port} is already bound in namespace '${this.ns.label}'`);
    this.ns.tcp.set(this.config.listen_port, this.onRequest);
  }

  stop(): void {
    if (this.ns.tcp.get(this.config.listen_port) === this.onRequest) this.ns.tcp.delete(this.config.listen_port);
  }

  private readonly onRequest = (m: SocketMessage): unknown => {
    const c = this.config;
    if (c.listen_ip !== '0.0.0.0' && m.dst !== c.listen_ip) return undefined;
    const added: Record<string, string> = { 'X-Forwarded-For': m.src };
    if (c.router_id) added['X-Neutron-Router-ID'] = c.router_id;
    if (c.network_id) added['X-Neutron-Network-ID'] = c.network_id;
    const registered = upstreams.get(this.ns.host);
    if (!registered?.size) return { upstream: c.upstream, request: m.data, headers: added } satisfies ProxiedRequest;

    let req: HttpMessage;
    try {
      req = typeof m.data === 'string' ? parseHttpRequest(m.data) : (m.data as HttpMessage);
      if (!req || typeof req.method !== 'string' || typeof req.path !== 'string') throw new Error('not an HTTP request');
    } catch {
      return reply(400, 'Bad request');
    }
    // http-request del-header / set-header, and option forwardfor (appends the client address).
    const headers: Record<string, string> = {};
    let forwarded: string | undefined;
    for (const [k, v] of Object.entries(req.headers ?? {})) {
      const l = k.toLowerCase();
      if (l === 'x-neutron-router-id' || l === 'x-neutron-network-id') continue;
      if (l === 'x-forwarded-for') forwarded = v;
      else headers[k] = v;
    }
    headers['X-Forwarded-For'] = forwarded ? `${forwarded}, ${m.src}` : m.src;
    if (c.router_id) headers['X-Neutron-Router-ID'] = c.router_id;
    if (c.network_id) headers['X-Neutron-Network-ID'] = c.network_id;
    const upstream = registered.get(c.upstream);
    if (!upstream) return reply(503, 'Service Unavailable');
    let out: HttpReply | Promise<HttpReply>;
    try {
      out = upstream({ ...req, headers });
    } catch {
      return reply(502, 'Bad Gateway');
    }
    if (!(out instanceof Promise)) return out;
    out.then(
      (r) => this.answerLater(m, r),
      () => this.answerLater(m, reply(502, 'Bad Gateway')),
    );
    return undefined;
  };

  /** The upstream's answer, sent on the connection it belongs to (conntrack undoes the REDIRECT). */
  private answerLater(m: SocketMessage, response: HttpReply): void {
    const ns = this.ns;
    const host = ns.host;
    const send = (pkt: number) =>
      host.stack.send(ns, { src: m.dst, dst: m.src, l4: { kind: 'tcp', sport: m.dport, dport: m.sport, flags: { ack: true, fin: true } }, data: response }, pkt);
    const engine = host.engine as typeof host.engine & { capture?: (fn: (pkt: number) => void, origin?: string) => TraceRecord };
    const origin = `metadata proxy ${this.config.id}: ${response.status} to ${m.src}:${m.sport}`;
    if (!engine.capture) return send(engine.tracer.newPacket(origin, m.pkt));
    const rec = engine.capture(send, origin);
    for (const l of lateListeners.get(engine) ?? []) l(rec);
  }
}

/**
 * An instance's HTTP client (curl): a TCP connection to `dst:dport` carrying `request`; the
 * promise resolves with the response data (undefined when the connection was refused or
 * reset) and the traces of the exchange (one, or two when the server answered later).
 */
export function httpRequest(
  world: World,
  from: Endpoint,
  spec: { dst: string; dport?: number; src?: string; request: string | HttpMessage; timeoutMs?: number },
): Promise<{ response?: unknown; traces: TraceRecord[] }> {
  const ns = world.host(from.host).ns(from.ns);
  const sport = ns.newEphemeralPort();
  const rec = world.send(from, { proto: 'tcp', dst: spec.dst, dport: spec.dport ?? 80, sport, src: spec.src, data: spec.request });
  const nsName = from.ns ?? '';
  const now = rec.delivered.find((d) => d.host === from.host && (d.ns ?? '') === nsName && d.frame.l4?.kind === 'tcp' && d.frame.l4.dport === sport && d.frame.data !== undefined);
  if (now) return Promise.resolve({ response: now.frame.data, traces: [rec] });
  const client = ns.tcpClients.get(sport);
  if (!client) return Promise.resolve({ traces: [rec] });
  return new Promise((resolve, reject) => {
    let got = false;
    let value: unknown;
    let set = lateListeners.get(world);
    if (!set) lateListeners.set(world, (set = new Set()));
    const listener = (late: TraceRecord) => {
      if (!got) return;
      done();
      resolve({ response: value, traces: [rec, late] });
    };
    const timer = setTimeout(() => {
      done();
      ns.tcpClients.delete(sport);
      reject(new Error(`No HTTP response from ${spec.dst}:${spec.dport ?? 80} to ${from.host}/${nsName} within ${spec.timeoutMs ?? 5000} ms`));
    }, spec.timeoutMs ?? 5000);
    const done = () => {
      clearTimeout(timer);
      set.delete(listener);
    };
    set.add(listener);
    client.onResponse = (d) => {
      got = true;
      value = d;
    };
  });
}
