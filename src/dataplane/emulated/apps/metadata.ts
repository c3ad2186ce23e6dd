// The metadata proxy (haproxy as Neutron runs it): an HTTP listener in a router or DHCP
// namespace that adds the instance's identity headers and forwards to the metadata agent.
// The agent and Nova are outside the emulated network, so the proxy answers itself with
// what it would have forwarded: the request, the headers it added and the upstream. That
// is what a test of the metadata path needs to see.

import type { Namespace, SocketMessage } from '../linux/namespace.js';
import type { MetadataProxy } from '../../../host/state.js';

export interface ProxiedRequest {
  upstream: string;
  request: unknown;
  headers: Record<string, string>;
}

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
    const headers: Record<string, string> = { 'X-Forwarded-For': m.src };
    if (c.router_id) headers['X-Neutron-Router-ID'] = c.router_id;
    if (c.network_id) headers['X-Neutron-Network-ID'] = c.network_id;
    const out: ProxiedRequest = { upstream: c.upstream, request: m.data, headers };
    return out;
  };
}
