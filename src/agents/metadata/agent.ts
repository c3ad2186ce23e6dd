// The metadata agent (neutron-metadata-agent): behind every metadata proxy of its host
// (haproxy in qrouter- and qdhcp- namespaces, which add X-Forwarded-For and
// X-Neutron-Router-ID or X-Neutron-Network-ID), it finds the instance that sent a request
// from its address and the router or network it came through, and forwards the request to
// the compute metadata service with the instance's identity, signed with the shared secret.
//
// `handle(request)` is the whole behaviour as a function (what the emulated proxies call
// in-process); `listen()` serves it on `metadata_proxy_socket` over HTTP for real proxies.
// The agent owns no host state: the proxies belong to the L3 and DHCP agents.

import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname } from 'node:path';
import type { MetadataAgentConfig } from '../../config/agents.js';
import { Agent, configOptions, type AgentOptions } from '../agent.js';
import { errorResponse, header, type HttpRequest, type HttpResponse } from './http.js';
import { signInstanceId } from './signature.js';

export type NovaMetadataClient = (req: HttpRequest) => HttpResponse | Promise<HttpResponse>;

export interface MetadataAgentOptions extends AgentOptions {
  config: MetadataAgentConfig;
  /**
   * How forwarded requests reach the compute metadata service. Default: HTTP(S) to
   * `nova_metadata_protocol://nova_metadata_host:nova_metadata_port`. An all-in-one process
   * passes the service's own `handle` instead.
   */
  nova?: NovaMetadataClient;
  /** Also serve on the UNIX socket `metadata_proxy_socket` once started (default false). */
  listen?: boolean;
}

/** Statuses of the metadata service passed on as they are (Neutron's `_proxy_request`). */
const PASSED_ON = new Set([400, 403, 404, 409, 500]);

export class MetadataAgent extends Agent {
  readonly agentType = 'Metadata agent';
  readonly binary = 'neutron-metadata-agent';
  readonly topic = 'N/A';
  protected readonly serveBase = undefined;
  readonly config: MetadataAgentConfig;
  private readonly nova: NovaMetadataClient;
  private server?: Server;
  /** Requests handled, by the status returned (tests read it). */
  readonly statuses = new Map<number, number>();

  constructor(opts: MetadataAgentOptions) {
    super({ ...configOptions(opts.config), ...opts });
    this.config = opts.config;
    this.nova = opts.nova ?? httpNovaClient(opts.config);
  }

  protected configurations(): Record<string, unknown> {
    return {
      metadata_proxy_socket: this.config.metadata_proxy_socket,
      nova_metadata_host: this.config.nova_metadata_host,
      nova_metadata_port: this.config.nova_metadata_port,
      log_agent_heartbeats: false,
    };
  }

  /** Nothing on the host is the metadata agent's own. */
  protected async sync(): Promise<void> {}

  override async start(): Promise<void> {
    await super.start();
    if ((this.opts as MetadataAgentOptions).listen && !this.server) this.server = await listenUnix(this.config.metadata_proxy_socket, (r) => this.handle(r));
  }

  override async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
    await super.stop();
  }

  /** One request from a proxy, answered as the metadata service answered it. */
  async handle(req: HttpRequest): Promise<HttpResponse> {
    const res = await this.answer(req).catch((err: unknown) => {
      console.error(`${this.binary} on ${this.host}: ${req.method} ${req.path}:`, err);
      return errorResponse(500, 'An unknown error has occurred. Please try your request again.');
    });
    this.statuses.set(res.status, (this.statuses.get(res.status) ?? 0) + 1);
    return res;
  }

  private async answer(req: HttpRequest): Promise<HttpResponse> {
    const forwarded = header(req, 'X-Forwarded-For');
    const routerId = header(req, 'X-Neutron-Router-ID');
    const networkId = header(req, 'X-Neutron-Network-ID');
    // The proxy appends the address it saw; anything before it came from the instance.
    const remote = forwarded?.split(',').pop()?.trim();
    if (!remote) return errorResponse(400, 'X-Forwarded-For header is missing from request.');
    if (routerId && networkId) return errorResponse(404); // only one of the two may come (Neutron drops it)
    if (!routerId && !networkId) return errorResponse(400, 'Neither X-Neutron-Router-ID nor X-Neutron-Network-ID came with the request.');
    const port = await this.call('get_port_by_ip', { ip_address: remote, ...(routerId ? { router_id: routerId } : { network_id: networkId }) });
    if (!port) return errorResponse(404);
    const headers: Record<string, string> = {
      'X-Forwarded-For': remote,
      'X-Instance-ID': port.device_id,
      'X-Tenant-ID': port.project_id,
      'X-Instance-ID-Signature': signInstanceId(this.config.metadata_proxy_shared_secret, port.device_id),
    };
    const res = await this.nova({ method: req.method, path: req.path, headers, ...(req.body !== undefined ? { body: req.body } : {}) });
    if (res.status === 200) {
      const type = header(res, 'Content-Type');
      return { status: 200, headers: type ? { 'Content-Type': type } : {}, body: res.body };
    }
    if (res.status === 403) console.warn(`${this.binary} on ${this.host}: the metadata service answered 403 Forbidden: do the shared secrets match?`);
    if (PASSED_ON.has(res.status)) return errorResponse(res.status, res.status === 500 ? 'Remote metadata server experienced an internal server error.' : '');
    throw new Error(`Unexpected response code from the metadata service: ${res.status}`);
  }
}

/** HTTP(S) to the configured metadata service. */
export function httpNovaClient(c: Pick<MetadataAgentConfig, 'nova_metadata_protocol' | 'nova_metadata_host' | 'nova_metadata_port' | 'nova_metadata_insecure'>): NovaMetadataClient {
  const host = c.nova_metadata_host.includes(':') ? `[${c.nova_metadata_host}]` : c.nova_metadata_host;
  const base = `${c.nova_metadata_protocol}://${host}:${c.nova_metadata_port}`;
  return (req) =>
    new Promise<HttpResponse>((resolve, reject) => {
      const send = c.nova_metadata_protocol === 'https' ? httpsRequest : httpRequest;
      const r = send(new URL(req.path, base), { method: req.method, headers: req.headers, ...(c.nova_metadata_protocol === 'https' ? { rejectUnauthorized: !c.nova_metadata_insecure } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers[k] = v;
          resolve({ status: res.statusCode ?? 500, headers, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      });
      r.on('error', (e) => reject(new Error(`metadata service at ${base}: ${e.message}`)));
      r.end(req.body);
    });
}

/** An HTTP server on a UNIX socket (a stale socket file from an earlier run is replaced). */
export async function listenUnix(path: string, handle: (req: HttpRequest) => Promise<HttpResponse>): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true });
  if (existsSync(path)) rmSync(path);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      const body = Buffer.concat(chunks).toString('utf8');
      void handle({ method: req.method ?? 'GET', path: req.url ?? '/', headers, ...(body ? { body } : {}) }).then((r) => {
        res.writeHead(r.status, r.headers);
        res.end(r.body);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return server;
}
