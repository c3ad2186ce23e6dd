// Scheduling (Neutron's l3_agent_scheduler and dhcp_agent_scheduler, least-loaded): a
// distributed router's SNAT goes to one alive dvr_snat L3 agent, a centralized router to a
// legacy or dvr_snat one; each network with DHCP to dhcp_agents_per_network DHCP agents.
// Agents that register or come back pick up what is still unscheduled.

import { DEVICE_OWNER, ROUTER_INTERFACE_OWNERS } from '../../common/constants.js';
import type { ServerConfig } from '../../config/server.js';
import type { Db } from '../../db/connect.js';
import type { AgentRow, RouterRow } from '../../db/schema.js';
import { inTransaction, type Tx } from '../../db/tx.js';
import { AGENT_TYPES, configOf, type AgentService } from '../agents.js';
import type { DvrService } from './dvr.js';

export class Scheduler {
  constructor(
    private readonly db: Db,
    private readonly conf: ServerConfig,
    private readonly agents: AgentService,
    private readonly dvr: DvrService,
  ) {}

  private eligibleModes(router: RouterRow) {
    return router.distributed ? ['dvr_snat'] : ['legacy', 'dvr_snat'];
  }

  /** Does the router need an L3 agent of its own (SNAT host or centralized router)? */
  needsAgent(router: RouterRow) {
    return router.distributed ? !!router.gw_port_id : true;
  }

  /**
   * Bind the router to an agent if it needs one and has none alive; then bind the ports that
   * live on that host (gateway and SNAT ports; every port of a centralized router).
   * Returns the agent's host, if any.
   */
  async scheduleRouter(tx: Tx, router: RouterRow): Promise<string | undefined> {
    if (!this.needsAgent(router)) {
      await this.unscheduleRouter(tx, router.id);
      return undefined;
    }
    const cur = await tx.selectFrom('routerl3agentbindings').select('l3_agent_id').where('router_id', '=', router.id).executeTakeFirst();
    let agent = cur ? await this.agents.byId(tx, cur.l3_agent_id) : undefined;
    if (!agent || !this.agents.isAlive(agent) || !agent.admin_state_up || !this.eligibleModes(router).includes(configOf(agent).agent_mode ?? 'legacy')) {
      const candidates = (await this.agents.usable(tx, AGENT_TYPES.l3)).filter((a) => this.eligibleModes(router).includes(configOf(a).agent_mode ?? 'legacy'));
      const picked = await this.leastLoaded(tx, candidates, 'routerl3agentbindings');
      // Without a candidate the router stays where it was (a dead agent still names the
      // host operators look at) until an agent comes back or the admin moves it.
      if (picked) {
        await tx.deleteFrom('routerl3agentbindings').where('router_id', '=', router.id).execute();
        await tx.insertInto('routerl3agentbindings').values({ router_id: router.id, l3_agent_id: picked.id }).execute();
        agent = picked;
      }
    }
    if (!agent) return undefined;
    await this.bindRouterPorts(tx, router, agent.host);
    return agent.host;
  }

  async bindRouterPorts(tx: Tx, router: RouterRow, host: string) {
    const owners: string[] = router.distributed
      ? [DEVICE_OWNER.routerGateway, DEVICE_OWNER.routerSnat]
      : [DEVICE_OWNER.routerGateway, ...ROUTER_INTERFACE_OWNERS];
    const ports = await tx.selectFrom('ports').select('id').where('device_id', '=', router.id).where('device_owner', 'in', owners).execute();
    for (const p of ports) await this.dvr.rebind(tx, p.id, host);
  }

  async unscheduleRouter(tx: Tx, routerId: string) {
    await tx.deleteFrom('routerl3agentbindings').where('router_id', '=', routerId).execute();
  }

  /** Explicit placement by an admin (POST /v2.0/agents/<id>/l3-routers). */
  async bindRouterTo(tx: Tx, router: RouterRow, agent: AgentRow) {
    await tx.deleteFrom('routerl3agentbindings').where('router_id', '=', router.id).execute();
    await tx.insertInto('routerl3agentbindings').values({ router_id: router.id, l3_agent_id: agent.id }).execute();
    await this.bindRouterPorts(tx, router, agent.host);
  }

  private async leastLoaded(tx: Tx, candidates: AgentRow[], table: 'routerl3agentbindings' | 'networkdhcpagentbindings') {
    if (!candidates.length) return undefined;
    const col = table === 'routerl3agentbindings' ? 'l3_agent_id' : 'dhcp_agent_id';
    const loads = await tx
      .selectFrom(table)
      .select([col, (eb) => eb.fn.countAll<number>().as('n')])
      .where(col, 'in', candidates.map((c) => c.id))
      .groupBy(col)
      .execute();
    const load = new Map(loads.map((l: any) => [l[col] as string, Number(l.n)]));
    return [...candidates].sort((a, b) => (load.get(a.id) ?? 0) - (load.get(b.id) ?? 0) || a.host.localeCompare(b.host))[0];
  }

  /** Give a network with DHCP-enabled subnets its DHCP agents. Returns the hosts. */
  async scheduleNetwork(tx: Tx, networkId: string): Promise<string[]> {
    const dhcp = await tx.selectFrom('subnets').select('id').where('network_id', '=', networkId).where('enable_dhcp', '=', 1).limit(1).executeTakeFirst();
    if (!dhcp) return [];
    const want = this.conf.dhcp_agents_per_network ?? 1;
    const bound = await tx
      .selectFrom('networkdhcpagentbindings as b')
      .innerJoin('agents as a', 'a.id', 'b.dhcp_agent_id')
      .selectAll('a')
      .where('b.network_id', '=', networkId)
      .execute();
    const hosts = bound.map((a) => a.host);
    let missing = want - bound.filter((a) => this.agents.isAlive(a)).length;
    if (missing <= 0) return hosts;
    let candidates = (await this.agents.usable(tx, AGENT_TYPES.dhcp)).filter((a) => !bound.some((b) => b.id === a.id));
    while (missing-- > 0 && candidates.length) {
      const a = (await this.leastLoaded(tx, candidates, 'networkdhcpagentbindings'))!;
      await tx.insertInto('networkdhcpagentbindings').values({ network_id: networkId, dhcp_agent_id: a.id }).execute();
      hosts.push(a.host);
      candidates = candidates.filter((c) => c.id !== a.id);
    }
    return hosts;
  }

  /**
   * An agent registered or came back: give it what waits for an agent of its kind.
   * Returns the routers and networks that got (re)scheduled.
   */
  async autoSchedule(agent: AgentRow): Promise<{ routers: string[]; networks: string[] }> {
    return inTransaction(this.db, async (tx) => {
      const out = { routers: [] as string[], networks: [] as string[] };
      if (agent.agent_type === AGENT_TYPES.l3) {
        // Only for the routers its mode may host: a compute host's dvr agent hosts none (after a
        // pause every one of a thousand comes back, each rescheduling every router: the agents
        // read whole, for nothing, a thousand times).
        const mode = configOf(agent).agent_mode ?? 'legacy';
        const routers = await tx.selectFrom('routers').selectAll().execute();
        for (const r of routers) {
          if (!this.needsAgent(r) || !this.eligibleModes(r).includes(mode)) continue;
          const before = await this.dvr.snatHost(tx, r.id);
          const after = await this.scheduleRouter(tx, r);
          if (after && after !== before) out.routers.push(r.id);
        }
      } else if (agent.agent_type === AGENT_TYPES.dhcp) {
        const nets = await tx.selectFrom('subnets').select('network_id').where('enable_dhcp', '=', 1).distinct().execute();
        for (const n of nets) {
          const before = await tx.selectFrom('networkdhcpagentbindings').select('dhcp_agent_id').where('network_id', '=', n.network_id).execute();
          const hosts = await this.scheduleNetwork(tx, n.network_id);
          if (hosts.length > before.length) out.networks.push(n.network_id);
        }
      }
      return out;
    });
  }

  /**
   * allow_automatic_l3agent_failover: move routers off L3 agents that are no longer alive.
   * Returns the ids of routers that moved.
   */
  async failoverDeadL3Agents(): Promise<string[]> {
    return inTransaction(this.db, async (tx) => {
      const bindings = await tx
        .selectFrom('routerl3agentbindings as b')
        .innerJoin('agents as a', 'a.id', 'b.l3_agent_id')
        .select(['b.router_id', 'a.heartbeat_timestamp', 'a.admin_state_up'])
        .execute();
      const moved: string[] = [];
      for (const b of bindings) {
        if (this.agents.isAlive(b)) continue;
        const r = await tx.selectFrom('routers').selectAll().where('id', '=', b.router_id).executeTakeFirstOrThrow();
        const before = await this.dvr.snatHost(tx, r.id);
        const host = await this.scheduleRouter(tx, r);
        if (host && host !== before) moved.push(r.id);
      }
      return moved;
    });
  }
}
