// Which agents run on a node, built from the shipped agent config files (etc/ plus the
// node's own overrides when etc/<node>/ exists, else values derived from the topology).
// Each role's factory returns nothing for nodes it does not serve.

import type { Agent } from '../agents/agent.js';
import type { HostComposer } from '../agents/composer.js';
import type { Transport } from '../rpc/transport.js';
import type { NodeSpec } from './topology.js';

export type AgentRole = 'ovs' | 'l3' | 'dhcp' | 'metadata';

export interface AgentContext {
  spec: NodeSpec;
  composer: HostComposer;
  transport: Transport;
  etc: string;
  stateDir: string;
  tunnelIp: string;
  resyncInterval?: number;
}

export type AgentFactory = (ctx: AgentContext) => Agent[];

/** Filled as the agents land (src/agents/<kind>/). */
export const AGENT_FACTORIES: Record<AgentRole, AgentFactory> = {
  ovs: () => [],
  l3: () => [],
  dhcp: () => [],
  metadata: () => [],
};
