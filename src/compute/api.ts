// The compute API: a Nova v2.1 subset for the scenario's `nova` commands (boot, list, show,
// delete, floating-ip-associate goes through the network API), and the dataplane's own
// endpoints the dvrnet command line uses against a running all-in-one cloud (trace,
// ping from an instance, namespaces and flows of a host).

import Fastify, { type FastifyInstance } from 'fastify';
import type { Authenticator } from '../api/auth.js';
import { NeutronError } from '../common/errors.js';
import type { World } from '../dataplane/emulated/world.js';
import type { RequestContext } from '../server/context.js';
import type { CorePlugin } from '../server/plugin.js';
import { renderTrace, traceToJson } from '../trace/render.js';
import type { ComputeService, Instance } from './compute.js';

declare module 'fastify' {
  interface FastifyRequest {
    computeCtx: RequestContext;
  }
}

export interface ComputeApiOptions {
  compute: ComputeService;
  plugin: CorePlugin;
  /** The emulated world: traces and flow dumps (empty on the real Linux dataplane). */
  world: World;
  /** Pings and namespaces on whichever dataplane the cloud runs. */
  machines: {
    kind: 'emulated' | 'linux';
    hosts(): string[];
    ping(from: { host: string; ns?: string }, dst: string, count: number): Promise<{ sent: number; received: number; summary: string }>;
    namespaces(host: string): Promise<string[]>;
  };
  auth: Authenticator;
  /** Make sure the host's agents have done their work (before a trace or a ping). */
  settle: () => Promise<void>;
}

const fault = (status: number, message: string) => ({ [status === 404 ? 'itemNotFound' : status === 403 ? 'forbidden' : status === 409 ? 'conflictingRequest' : 'badRequest']: { code: status, message } });

export function buildComputeApp(o: ComputeApiOptions): FastifyInstance {
  const app = Fastify({ logger: false });
  app.setErrorHandler((err: any, _req, reply) => {
    const status = err instanceof NeutronError ? err.status : err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    if (status >= 500) console.error(err);
    reply.code(status).send(fault(status, status >= 500 ? 'Unexpected API Error.' : err.message));
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send(fault(404, 'The resource could not be found.')));
  app.addHook('onRequest', async (req) => {
    if (req.url === '/' || req.url === '/v2.1' || req.url === '/v2.1/') return;
    req.computeCtx = await o.auth.authenticate(req.headers);
  });

  app.get('/', async () => ({ versions: [{ id: 'v2.1', status: 'CURRENT', version: '2.1', min_version: '2.1', links: [{ rel: 'self', href: '/v2.1/' }] }] }));
  app.get('/v2.1', async () => ({ version: { id: 'v2.1', status: 'CURRENT', version: '2.1', min_version: '2.1', links: [] } }));

  const view = async (ctx: RequestContext, i: Instance) => {
    await o.compute.refreshStatus();
    const net = await o.plugin.networks.get(ctx, i.network_id).catch(() => undefined);
    const fips = await o.plugin.floatingIps.list(ctx, { filters: { port_id: [i.port_id] }, sort: [] });
    const addrs = [
      { addr: i.lease?.ip ?? i.fixed_ip, version: 4, 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': i.mac },
      ...fips.map((f) => ({ addr: f.floating_ip_address, version: 4, 'OS-EXT-IPS:type': 'floating', 'OS-EXT-IPS-MAC:mac_addr': i.mac })),
    ];
    const groups = await o.plugin.securityGroups.list(ctx, { filters: { id: i.security_groups }, sort: [] }).catch(() => []);
    return {
      id: i.id,
      name: i.name,
      status: i.status,
      tenant_id: i.project_id,
      created: i.created_at.replace(/\.\d+Z$/, 'Z'),
      addresses: { [net?.name ?? i.network_id]: addrs },
      security_groups: groups.map((g) => ({ name: g.name })),
      'OS-EXT-STS:task_state': null,
      'OS-EXT-STS:power_state': i.status === 'ACTIVE' ? 1 : 0,
      'OS-EXT-STS:vm_state': i.status === 'ACTIVE' ? 'active' : i.status === 'ERROR' ? 'error' : 'building',
      ...(ctx.isAdmin ? { 'OS-EXT-SRV-ATTR:host': i.host, 'OS-EXT-SRV-ATTR:hypervisor_hostname': i.host } : {}),
    };
  };

  app.post('/v2.1/servers', async (req, reply) => {
    const s = (req.body as any)?.server;
    if (!s || typeof s.name !== 'string' || !s.name) throw new NeutronError('BadRequest', 400, "Invalid input for field/attribute server. Value: missing 'name'");
    const nets = Array.isArray(s.networks) ? s.networks : [];
    if (nets.length !== 1 || typeof nets[0]?.uuid !== 'string') throw new NeutronError('BadRequest', 400, 'Exactly one network (networks: [{"uuid": ...}]) is supported');
    const ctx = req.computeCtx;
    let groups: string[] | undefined;
    if (Array.isArray(s.security_groups)) {
      const all = await o.plugin.securityGroups.list(ctx, { filters: {}, sort: [] });
      groups = s.security_groups.map((g: { name: string }) => {
        const found = all.filter((x) => x.name === g.name || x.id === g.name);
        if (found.length !== 1) throw new NeutronError('BadRequest', 400, `Security group ${g.name} not found for project ${ctx.projectId}.`);
        return found[0].id;
      });
    }
    const az = typeof s.availability_zone === 'string' ? s.availability_zone : undefined;
    const host = az?.includes(':') ? az.split(':')[1] : undefined;
    const inst = await o.compute.boot(ctx, { name: s.name, network_id: nets[0].uuid, security_groups: groups, host });
    await o.settle();
    o.compute.dhcp(inst);
    await o.settle();
    reply.code(202);
    return { server: await view(ctx, inst) };
  });

  app.get('/v2.1/servers', async (req) => ({ servers: o.compute.list(req.computeCtx).map((i) => ({ id: i.id, name: i.name })) }));
  app.get('/v2.1/servers/detail', async (req) => ({ servers: await Promise.all(o.compute.list(req.computeCtx).map((i) => view(req.computeCtx, i))) }));
  app.get<{ Params: { id: string } }>('/v2.1/servers/:id', async (req) => ({ server: await view(req.computeCtx, o.compute.get(req.computeCtx, req.params.id)) }));
  app.delete<{ Params: { id: string } }>('/v2.1/servers/:id', async (req, reply) => {
    await o.compute.delete(req.computeCtx, req.params.id);
    await o.settle();
    reply.code(204).send();
  });

  // --- the dataplane's endpoints (dvrnet trace / exec / netns / dump-flows) ---

  const endpointOf = (ctx: RequestContext, from: string) => {
    const [host, ns] = from.split('/');
    if (o.machines.hosts().includes(host) && ctx.isAdmin) return { host, ns };
    const i = o.compute.get(ctx, from);
    return { host: i.host, ns: i.name };
  };

  app.post('/dvrnet/v1/ping', async (req) => {
    const b = req.body as { from: string; dst: string; count?: number };
    await o.settle();
    const r = await o.machines.ping(endpointOf(req.computeCtx, b.from), b.dst, b.count ?? 4);
    return { sent: r.sent, received: r.received, summary: r.summary };
  });

  app.post('/dvrnet/v1/trace', async (req) => {
    const b = req.body as { from: string; dst: string; proto?: 'icmp' | 'udp' | 'tcp'; dport?: number; json?: boolean };
    if (o.machines.kind !== 'emulated') throw new NeutronError('NotImplemented', 400, 'Traces need the emulated dataplane (the real one has ovs-appctl ofproto/trace).');
    await o.settle();
    const rec = o.world.send(endpointOf(req.computeCtx, b.from), { proto: b.proto ?? 'icmp', dst: b.dst, dport: b.dport });
    return b.json ? JSON.parse(traceToJson(rec)) : { text: renderTrace(rec) };
  });

  const admin = (ctx: RequestContext) => {
    if (!ctx.isAdmin) throw new NeutronError('Forbidden', 403, 'Policy does not allow this request: admin only');
  };
  app.get<{ Params: { host: string } }>('/dvrnet/v1/hosts/:host/netns', async (req) => {
    admin(req.computeCtx);
    if (!o.machines.hosts().includes(req.params.host)) throw new NeutronError('NotFound', 404, `No host ${req.params.host}`);
    return { namespaces: (await o.machines.namespaces(req.params.host)).sort() };
  });
  app.get<{ Params: { host: string; bridge: string } }>('/dvrnet/v1/hosts/:host/bridges/:bridge/flows', async (req) => {
    admin(req.computeCtx);
    const h = o.world.hosts.get(req.params.host);
    if (!h) throw new NeutronError('NotFound', 404, `No host ${req.params.host}`);
    let br;
    try {
      br = h.vswitch.bridge(req.params.bridge);
    } catch {
      throw new NeutronError('NotFound', 404, `No bridge ${req.params.bridge} on host ${req.params.host}`);
    }
    return { flows: br.model.dumpFlowsText() };
  });
  return app;
}
