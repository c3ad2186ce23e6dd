// Which agents run on a node, configured as a deployment would configure them: the shipped
// files in etc/ (neutron.conf and the agent's own file), then etc/<node>/ overrides when
// they exist, then what the topology decides for this node (host name, state_path,
// local_ip, agent_mode) in a generated file under the cloud's state directory.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Agent } from '../agents/agent.js';
import type { HostComposer } from '../agents/composer.js';
import { DhcpAgent } from '../agents/dhcp/agent.js';
import { L3Agent } from '../agents/l3/agent.js';
import { MetadataAgent, type NovaMetadataClient } from '../agents/metadata/agent.js';
import { metadataProxySocket } from '../agents/metadata/socket.js';
import { OvsAgent } from '../agents/ovs/agent.js';
import { loadDhcpAgentConfig, loadL3AgentConfig, loadMetadataAgentConfig, loadOvsAgentConfig } from '../config/load.js';
import { registerMetadataUpstream } from '../dataplane/emulated/apps/metadata.js';
import type { EmulatedHost } from '../dataplane/emulated/linux/host.js';
import type { Transport } from '../rpc/transport.js';
import type { NodeSpec } from './topology.js';

export type AgentRole = 'ovs' | 'l3' | 'dhcp' | 'metadata';

export interface AgentContext {
  spec: NodeSpec;
  /** The emulated host (the metadata proxies there reach their agent through it); absent on the linux dataplane. */
  host?: EmulatedHost;
  /** `[ovs] datapath_type` of the node's OVS agent (netdev: Open vSwitch's userspace datapath). */
  datapathType?: 'system' | 'netdev';
  composer: HostComposer;
  transport: Transport;
  etc: string;
  stateDir: string;
  tunnelIp: string;
  resyncInterval?: number;
  /** The compute metadata service the metadata agents forward to (in-process). */
  nova: NovaMetadataClient;
}

export type AgentFactory = (ctx: AgentContext) => Agent[];

const quiet = { warn: () => {} };
const unplug = new WeakMap<EmulatedHost, () => void>();

/** The config files of one agent kind on one node, the generated node file last. */
function files(ctx: AgentContext, agentFile: string, extra: string): string[] {
  const nodeDir = join(ctx.stateDir, 'nodes', ctx.spec.name);
  mkdirSync(nodeDir, { recursive: true });
  const generated = join(nodeDir, agentFile.replace(/\.ini$/, '.generated.ini'));
  writeFileSync(generated, `[DEFAULT]\nhost = ${ctx.spec.name}\nstate_path = ${nodeDir}\n${extra}`);
  const list = [join(ctx.etc, 'neutron.conf'), join(ctx.etc, agentFile)];
  for (const f of [join(ctx.etc, ctx.spec.name, 'neutron.conf'), join(ctx.etc, ctx.spec.name, agentFile)]) if (existsSync(f)) list.push(f);
  return [...list, generated];
}

const isNetwork = (s: NodeSpec) => s.roles.includes('network');
const isCompute = (s: NodeSpec) => s.roles.includes('compute');
const common = (ctx: AgentContext) => ({ transport: ctx.transport, composer: ctx.composer, resyncInterval: ctx.resyncInterval });

export const AGENT_FACTORIES: Record<AgentRole, AgentFactory> = {
  ovs: (ctx) =>
    isNetwork(ctx.spec) || isCompute(ctx.spec)
      ? [new OvsAgent({ ...common(ctx), config: loadOvsAgentConfig(files(ctx, 'openvswitch_agent.ini', `[ovs]\nlocal_ip = ${ctx.tunnelIp}\n${ctx.datapathType ? `datapath_type = ${ctx.datapathType}\n` : ''}`), quiet) })]
      : [],
  l3: (ctx) =>
    isNetwork(ctx.spec) || isCompute(ctx.spec)
      ? [new L3Agent({ ...common(ctx), config: loadL3AgentConfig(files(ctx, 'l3_agent.ini', `agent_mode = ${isNetwork(ctx.spec) ? 'dvr_snat' : 'dvr'}\n`), quiet) })]
      : [],
  dhcp: (ctx) => (isNetwork(ctx.spec) ? [new DhcpAgent({ ...common(ctx), host: ctx.spec.name, config: loadDhcpAgentConfig(files(ctx, 'dhcp_agent.ini', ''), quiet) })] : []),
  metadata: (ctx) => {
    if (!isNetwork(ctx.spec) && !isCompute(ctx.spec)) return [];
    const config = loadMetadataAgentConfig(files(ctx, 'metadata_agent.ini', ''), quiet);
    // On a real host the proxies (processes in the host's namespaces) reach the agent through
    // its UNIX socket `metadata_proxy_socket`: the agent serves it. The emulated proxies reach
    // it through the emulated host instead (a restarted agent takes the socket over).
    const agent = new MetadataAgent({ ...common(ctx), host: ctx.spec.name, config, nova: ctx.nova, listen: !ctx.host });
    if (ctx.host) {
      unplug.get(ctx.host)?.();
      unplug.set(ctx.host, registerMetadataUpstream(ctx.host, metadataProxySocket(config), (req) => agent.handle(req as never) as never));
    }
    return [agent];
  },
};
