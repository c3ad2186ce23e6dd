// The core plugin and the L3 service plugin: the services composed over one database and
// configuration. This is the single place that wires them together (no mixins: each
// service gets what it uses, and cross-cutting reactions are event listeners named here).

import type { ServerConfig } from '../config/server.js';
import type { Db } from '../db/connect.js';
import { OpenvswitchMechanismDriver } from '../ml2/mech_openvswitch.js';
import { TypeManager } from '../ml2/type_drivers.js';
import { AGENT_TYPES, AgentService, configOf, type AgentState } from './agents.js';
import type { RequestContext } from './context.js';
import { Events } from './events.js';
import { DvrService } from './l3/dvr.js';
import { FloatingIpService } from './l3/floatingips.js';
import { RouterService } from './l3/routers.js';
import { Scheduler } from './l3/scheduler.js';
import { NetworkService } from './networks.js';
import { PortService } from './ports.js';
import { SecurityGroupService } from './security_groups.js';
import { SubnetService } from './subnets.js';
import { inTransaction } from '../db/tx.js';

export class CorePlugin {
  readonly events = new Events();
  readonly types: TypeManager;
  readonly networks: NetworkService;
  readonly subnets: SubnetService;
  readonly securityGroups: SecurityGroupService;
  readonly ports: PortService;
  readonly agents: AgentService;
  readonly dvr: DvrService;
  readonly scheduler: Scheduler;
  readonly routers: RouterService;
  readonly floatingIps: FloatingIpService;

  constructor(
    readonly db: Db,
    readonly conf: ServerConfig,
  ) {
    this.types = new TypeManager(db, conf);
    this.networks = new NetworkService(db, conf, this.types, this.events);
    this.subnets = new SubnetService(db, conf, this.networks, this.events);
    this.securityGroups = new SecurityGroupService(db, this.events);
    this.ports = new PortService(db, this.events, conf, this.networks, this.subnets, this.securityGroups);
    this.agents = new AgentService(db, conf);
    this.dvr = new DvrService(db, conf, this.agents, this.ports);
    this.scheduler = new Scheduler(db, conf, this.agents, this.dvr);
    this.routers = new RouterService(db, conf, this.events, this.ports, this.dvr, this.scheduler);
    this.floatingIps = new FloatingIpService(db, this.events, this.ports, this.dvr);

    this.ports.binder = new OpenvswitchMechanismDriver(async (tx, host) =>
      (await this.agents.usable(tx, AGENT_TYPES.ovs, host)).map((a) => configOf(a) as any),
    );
    this.ports.deleteGuards.push(this.routers.guardPortDelete, this.floatingIps.disassociatePort);

    this.events.on(async (e) => {
      // A subnet with DHCP needs its network on a DHCP agent.
      if (e.kind === 'subnet' && e.op !== 'delete' && e.subnet.enable_dhcp)
        await inTransaction(db, (tx) => this.scheduler.scheduleNetwork(tx, e.subnet.network_id));
      // A port that moved host takes its floating IPs' fg port along (DVR).
      if (e.kind === 'port' && e.after && e.after.binding_host_id !== e.before?.binding_host_id)
        await this.floatingIps.portBound(e.after.id, e.after.binding_host_id);
    });
  }

  /**
   * report_state from an agent: register it, give an OVS agent in distributed mode its DVR
   * MAC, and hand a new or revived agent what waited for one of its kind.
   */
  async reportState(state: AgentState) {
    const { agent, created, revived, reconfigured } = await this.agents.reportState(state);
    if (reconfigured && !created && !revived) await this.events.emit({ kind: 'agent', op: 'update', id: agent.id, agentType: agent.agent_type, host: agent.host });
    if (created || revived) {
      await this.events.emit({ kind: 'agent', op: created ? 'create' : 'revive', id: agent.id, agentType: agent.agent_type, host: agent.host });
      const got = await this.scheduler.autoSchedule(agent);
      for (const id of got.routers) await this.events.emit({ kind: 'router', op: 'update', id, hosts: await this.dvr.routerHosts(undefined, id) });
    }
    return agent;
  }

  /** An admin deletes an agent (its bindings and perhaps the host's DVR MAC go with it). */
  async deleteAgent(ctx: RequestContext, id: string) {
    const a = await this.agents.delete(ctx, id);
    await this.events.emit({ kind: 'agent', op: 'delete', id: a.id, agentType: a.agent_type, host: a.host });
    return a;
  }
}
