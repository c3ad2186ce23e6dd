// Test support: agents that speak the real RPC but touch no dataplane. They register with
// report_state as the scenario's hosts would, record every cast they receive, and let a
// test call the server as that host's agent would.

import { AGENT_METHOD_NAMES, AGENT_TOPICS, SERVER_TOPICS, hostTopic, type AgentMethod, type AgentMethods, type ServerMethod, type ServerMethods } from '../rpc/messages.js';
import type { Transport } from '../rpc/transport.js';
import { AGENT_TYPES } from './agents.js';

export interface Received {
  method: AgentMethod;
  args: AgentMethods[AgentMethod];
  fanout: boolean;
}

export class FakeAgent {
  readonly received: Received[] = [];
  private stop: Array<() => Promise<void>> = [];

  constructor(
    readonly transport: Transport,
    readonly host: string,
    readonly agentType: string,
    readonly binary: string,
    readonly topic: string,
    public configurations: Record<string, unknown>,
  ) {}

  /** Serve the host's topic (and the fanout) for the agent kinds that have one, then register. */
  async start(): Promise<this> {
    const base = this.agentType === AGENT_TYPES.ovs ? AGENT_TOPICS.ovs : this.agentType === AGENT_TYPES.l3 ? AGENT_TOPICS.l3 : this.agentType === AGENT_TYPES.dhcp ? AGENT_TOPICS.dhcp : undefined;
    if (base) {
      const record = (fanout: boolean) =>
        Object.fromEntries(AGENT_METHOD_NAMES.map((method) => [method, (args: any) => void this.received.push({ method, args, fanout })]));
      this.stop.push(await this.transport.serve(hostTopic(base, this.host), record(false)));
      this.stop.push(await this.transport.serve(base, record(true), { fanout: true }));
    }
    await this.report(true);
    return this;
  }

  async report(start = false) {
    await this.call('report_state', {
      agent_state: { agent_type: this.agentType, binary: this.binary, topic: this.topic, host: this.host, configurations: this.configurations, start_flag: start },
    });
  }

  call<M extends ServerMethod>(method: M, args: ServerMethods[M][0]): Promise<ServerMethods[M][1]> {
    const topic = method === 'report_state' ? SERVER_TOPICS.reports : this.agentType === AGENT_TYPES.l3 ? SERVER_TOPICS.l3 : SERVER_TOPICS.plugin;
    return this.transport.call(topic, method, args);
  }

  /** Casts received so far with this method (optionally only those matching `pred`). */
  got<M extends AgentMethod>(method: M, pred: (a: AgentMethods[M]) => boolean = () => true): AgentMethods[M][] {
    return this.received.filter((r) => r.method === method).map((r) => r.args as AgentMethods[M]).filter(pred);
  }

  async close() {
    for (const s of this.stop) await s();
  }
}

/** The scenario's ten agents: network1 (dvr_snat), compute1 and compute2 (dvr). */
export async function scenarioAgents(transport: Transport) {
  const tunnelIp: Record<string, string> = { network1: '10.0.1.21', compute1: '10.0.1.31', compute2: '10.0.1.32' };
  const ovs = (host: string) =>
    new FakeAgent(transport, host, AGENT_TYPES.ovs, 'neutron-openvswitch-agent', 'N/A', {
      bridge_mappings: { vlan: 'br-vlan', external: 'br-ex' },
      tunnel_types: ['gre', 'vxlan'],
      tunneling_ip: tunnelIp[host],
      l2_population: true,
      arp_responder_enabled: true,
      enable_distributed_routing: true,
      integration_bridge: 'br-int',
      datapath_type: 'system',
      ovs_hybrid_plug: true,
    });
  const l3 = (host: string, mode: string) =>
    new FakeAgent(transport, host, AGENT_TYPES.l3, 'neutron-l3-agent', 'l3_agent', { agent_mode: mode, interface_driver: 'openvswitch', handle_internal_only_routers: true });
  const meta = (host: string) => new FakeAgent(transport, host, AGENT_TYPES.metadata, 'neutron-metadata-agent', 'N/A', { nova_metadata_host: 'controller', nova_metadata_port: 8775 });
  const agents = {
    network1: {
      ovs: ovs('network1'),
      l3: l3('network1', 'dvr_snat'),
      dhcp: new FakeAgent(transport, 'network1', AGENT_TYPES.dhcp, 'neutron-dhcp-agent', 'dhcp_agent', { dhcp_driver: 'neutron.agent.linux.dhcp.Dnsmasq', dhcp_lease_duration: 86400 }),
      meta: meta('network1'),
    },
    compute1: { ovs: ovs('compute1'), l3: l3('compute1', 'dvr'), meta: meta('compute1') },
    compute2: { ovs: ovs('compute2'), l3: l3('compute2', 'dvr'), meta: meta('compute2') },
  };
  for (const host of Object.values(agents)) for (const a of Object.values(host)) await a.start();
  const all = Object.values(agents).flatMap((h) => Object.values(h) as FakeAgent[]);
  return { ...agents, all, close: async () => Promise.all(all.map((a) => a.close())) };
}
