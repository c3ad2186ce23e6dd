// The agent-scheduler extensions (l3_agent_scheduler, dhcp_agent_scheduler): which agents
// host a router or a network, and an admin's explicit placement.

import type { FastifyInstance } from 'fastify';
import { Faults, NeutronError } from '../common/errors.js';
import { AGENT_TYPES, agentNotFound, configOf } from '../server/agents.js';
import type { CorePlugin } from '../server/plugin.js';
import { inTransaction } from '../db/tx.js';
import * as v from './validators.js';

type P = { Params: { id: string; sub?: string } };

export function schedulerRoutes(app: FastifyInstance, p: CorePlugin) {
  const k = p.db.kysely;
  const admin = (req: { ctx: { isAdmin: boolean } }, rule: string) => {
    if (!req.ctx.isAdmin) throw Faults.policy(rule);
  };
  const agentOf = async (id: string, type: string) => {
    const a = await p.agents.byId(undefined, id);
    if (!a || a.agent_type !== type) throw agentNotFound(id);
    return a;
  };

  app.get<P>('/v2.0/agents/:id/l3-routers', async (req) => {
    admin(req, 'get_l3-routers');
    await agentOf(req.params.id, AGENT_TYPES.l3);
    const ids = (await k.selectFrom('routerl3agentbindings').select('router_id').where('l3_agent_id', '=', req.params.id).execute()).map((r) => r.router_id);
    return { routers: ids.length ? await p.routers.list(req.ctx, { filters: { id: ids }, sort: [] }) : [] };
  });
  app.post<P>('/v2.0/agents/:id/l3-routers', async (req, reply) => {
    admin(req, 'create_l3-router');
    const agent = await agentOf(req.params.id, AGENT_TYPES.l3);
    const routerId = v.uuid((req.body as { router_id?: unknown })?.router_id, 'router_id');
    await inTransaction(p.db, async (tx) => {
      const r = await p.routers.row(tx, req.ctx, routerId);
      const mode = configOf(agent).agent_mode ?? 'legacy';
      if (r.distributed ? mode !== 'dvr_snat' : !['legacy', 'dvr_snat'].includes(mode))
        throw new NeutronError('RouterL3AgentMismatch', 409, `Cannot host ${r.distributed ? 'distributed' : 'centralized'} router ${r.id} on ${mode} L3 agent ${agent.id}.`);
      await p.scheduler.bindRouterTo(tx, r, agent);
    });
    await p.events.emit({ kind: 'router', op: 'update', id: routerId, hosts: await p.dvr.routerHosts(undefined, routerId) });
    reply.code(201);
    return null;
  });
  app.delete<P>('/v2.0/agents/:id/l3-routers/:sub', async (req, reply) => {
    admin(req, 'delete_l3-router');
    await agentOf(req.params.id, AGENT_TYPES.l3);
    const hosts = await p.dvr.routerHosts(undefined, req.params.sub!);
    const r = await k.deleteFrom('routerl3agentbindings').where('l3_agent_id', '=', req.params.id).where('router_id', '=', req.params.sub!).executeTakeFirst();
    if (!r.numDeletedRows) throw new NeutronError('RouterNotHostedByL3Agent', 409, `The router ${req.params.sub} is not hosted by L3 agent ${req.params.id}.`);
    await p.events.emit({ kind: 'router', op: 'update', id: req.params.sub!, hosts });
    reply.code(204).send();
  });
  app.get<P>('/v2.0/routers/:id/l3-agents', async (req) => {
    admin(req, 'get_l3-agents');
    await p.routers.get(req.ctx, req.params.id);
    const ids = (await k.selectFrom('routerl3agentbindings').select('l3_agent_id').where('router_id', '=', req.params.id).execute()).map((r) => r.l3_agent_id);
    return { agents: ids.length ? await p.agents.list(req.ctx, { filters: { id: ids }, sort: [] }) : [] };
  });

  app.get<P>('/v2.0/agents/:id/dhcp-networks', async (req) => {
    admin(req, 'get_dhcp-networks');
    await agentOf(req.params.id, AGENT_TYPES.dhcp);
    const ids = (await k.selectFrom('networkdhcpagentbindings').select('network_id').where('dhcp_agent_id', '=', req.params.id).execute()).map((r) => r.network_id);
    return { networks: ids.length ? await p.networks.list(req.ctx, { filters: { id: ids }, sort: [] }) : [] };
  });
  app.post<P>('/v2.0/agents/:id/dhcp-networks', async (req, reply) => {
    admin(req, 'create_dhcp-network');
    const agent = await agentOf(req.params.id, AGENT_TYPES.dhcp);
    const networkId = v.uuid((req.body as { network_id?: unknown })?.network_id, 'network_id');
    await p.networks.get(req.ctx, networkId);
    const have = await k.selectFrom('networkdhcpagentbindings').select('network_id').where('network_id', '=', networkId).where('dhcp_agent_id', '=', req.params.id).executeTakeFirst();
    if (have) throw new NeutronError('NetworkHostedByDHCPAgent', 409, `The network ${networkId} has been already hosted by the DHCP Agent ${req.params.id}.`);
    await k.insertInto('networkdhcpagentbindings').values({ network_id: networkId, dhcp_agent_id: req.params.id }).execute();
    await p.events.emit({ kind: 'dhcp_binding', op: 'add', networkId, host: agent.host });
    reply.code(201);
    return null;
  });
  app.delete<P>('/v2.0/agents/:id/dhcp-networks/:sub', async (req, reply) => {
    admin(req, 'delete_dhcp-network');
    const r = await k.deleteFrom('networkdhcpagentbindings').where('dhcp_agent_id', '=', req.params.id).where('network_id', '=', req.params.sub!).executeTakeFirst();
    if (!r.numDeletedRows) throw new NeutronError('NetworkNotHostedByDhcpAgent', 409, `The network ${req.params.sub} is not hosted by the DHCP agent ${req.params.id}.`);
    const agent = await p.agents.byId(undefined, req.params.id);
    if (agent) await p.events.emit({ kind: 'dhcp_binding', op: 'remove', networkId: req.params.sub!, host: agent.host });
    reply.code(204).send();
  });
  app.get<P>('/v2.0/networks/:id/dhcp-agents', async (req) => {
    admin(req, 'get_dhcp-agents');
    await p.networks.get(req.ctx, req.params.id);
    const ids = (await k.selectFrom('networkdhcpagentbindings').select('dhcp_agent_id').where('network_id', '=', req.params.id).execute()).map((r) => r.dhcp_agent_id);
    return { agents: ids.length ? await p.agents.list(req.ctx, { filters: { id: ids }, sort: [] }) : [] };
  });
}
