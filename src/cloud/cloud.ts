// The whole cloud in one process: the API server and identity (controller), one host per
// network/compute node with its agents, the physical segments joining them, the external
// router (EG, 203.0.113.1) and a host standing for the internet, and the compute service.
// The hosts are the dataplane's (dataplane.ts): emulated by default, or real namespaces
// with Open vSwitch (linux-dataplane.ts). `dvrnet up`, `dvrnet demo`, the tests of the
// packet flows and the convergence benchmark all start clouds here.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HostComposer } from '../agents/composer.js';
import type { Agent } from '../agents/agent.js';
import { loadMetadataAgentConfig, loadServerConfig } from '../config/load.js';
import type { ServerConfig } from '../config/server.js';
import { ComputeService, type ComputeNode } from '../compute/compute.js';
import { buildComputeApp } from '../compute/api.js';
import { MetadataService } from '../compute/metadata-service.js';
import type { World } from '../dataplane/emulated/world.js';
import type { EmulatedHost } from '../dataplane/emulated/linux/host.js';
import { InProcessBus } from '../rpc/inproc.js';
import type { Transport } from '../rpc/transport.js';
import { startServers, type Servers } from '../cli/serve.js';
import { nodeAddress, scenarioTopology, type NodeSpec, type Topology } from './topology.js';
import { AGENT_FACTORIES, type AgentRole } from './agents.js';
import { EmulatedDataplane, type Dataplane } from './dataplane.js';

export { setupState } from './dataplane.js';

export interface CloudOptions {
  topology?: Topology;
  /** Where the database, the compute state and credentials go (created if missing). */
  stateDir: string;
  /** etc/ with the shipped config files (default: ./etc). */
  etcDir?: string;
  apiPort?: number;
  identityPort?: number;
  /** The compute API (Nova subset + dataplane endpoints), default 8774. */
  computePort?: number;
  /** keystone (default, as the shipped config) or noauth (tests, benchmarks). */
  auth?: 'keystone' | 'noauth';
  /** Seconds between agents' periodic full resyncs (default 0: none, as Neutron's agents). */
  resyncInterval?: number;
  /** Agent kinds to run (default all); tests may leave some out. */
  agents?: AgentRole[];
  /** The hosts' dataplane (default: a fresh emulated one). */
  dataplane?: Dataplane;
}

export interface CloudNode {
  spec: NodeSpec;
  /** The emulated host (emulated dataplane only). */
  host?: EmulatedHost;
  composer: HostComposer;
  agents: Agent[];
  tunnelIp: string;
}

export interface Cloud {
  conf: ServerConfig;
  servers: Servers;
  dataplane: Dataplane;
  /** The emulated world (on the linux dataplane an empty one). */
  world: World;
  transport: { bus: InProcessBus; server: Transport; agents: Transport };
  nodes: Map<string, CloudNode>;
  compute: ComputeService;
  /** URL of the compute API. */
  computeUrl: string;
  topology: Topology;
  stateDir: string;
  /** Wait until every agent is idle (no resync scheduled or running). */
  settle(): Promise<void>;
  /** Stop one node's agents and start fresh ones (what an agent restart does). */
  restartAgents(node: string): Promise<void>;
  close(): Promise<void>;
}

/** The per-cloud overrides of the shipped neutron.conf: state, database, listeners. */
function cloudConf(o: CloudOptions, stateDir: string): string {
  return [
    '[DEFAULT]',
    `state_path = ${stateDir}`,
    `auth_strategy = ${o.auth ?? 'keystone'}`,
    ...(o.apiPort !== undefined ? [`bind_port = ${o.apiPort}`] : []),
    '[database]',
    `connection = sqlite:///${join(stateDir, 'neutron.sqlite')}`,
    ...(o.identityPort !== undefined ? ['[identity]', `bind_port = ${o.identityPort}`] : []),
    '',
  ].join('\n');
}

export async function startCloud(o: CloudOptions): Promise<Cloud> {
  const topology = o.topology ?? scenarioTopology();
  const stateDir = resolve(o.stateDir);
  const etc = resolve(o.etcDir ?? 'etc');
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(join(stateDir, 'cloud.conf'), cloudConf(o, stateDir));
  const conf = loadServerConfig([join(etc, 'neutron.conf'), join(etc, 'ml2_conf.ini'), join(stateDir, 'cloud.conf')], { warn: () => {} });

  const bus = new InProcessBus();
  const server = bus.transport();
  const agentsTransport = bus.transport();
  const servers = await startServers(conf, { transport: server, apiPort: o.apiPort, identityPort: o.identityPort });

  const nodes = new Map<string, CloudNode>();
  // A cloud that fails to start stops what it started (agents, listeners), so the process can exit.
  const abort = async (err: unknown): Promise<never> => {
    for (const n of nodes.values()) for (const a of n.agents) await a.stop().catch(() => undefined);
    await servers.close().catch(() => undefined);
    await server.close().catch(() => undefined);
    await agentsTransport.close().catch(() => undefined);
    throw err;
  };
  const dataplane = o.dataplane ?? new EmulatedDataplane();
  const world = dataplane.world;
  // The external router EG between the external network and the internet, and a host there.
  await dataplane.outside(topology).catch(abort);

  const roles = new Set(o.agents ?? (Object.keys(AGENT_FACTORIES) as AgentRole[]));
  for (const spec of topology.nodes) {
    if (!spec.roles.includes('network') && !spec.roles.includes('compute')) continue;
    const { driver, setup, emulated: host } = await dataplane.addHost(topology, spec, stateDir).catch(abort);
    const composer = new HostComposer(spec.name, driver);
    composer.setFragment('setup', setup);
    // Each host applies once all its agents have declared their fragments (no churn).
    composer.hold();
    const tunnelIp = nodeAddress(topology.tunnel, spec.index).split('/')[0];
    nodes.set(spec.name, { spec, host, composer, agents: [], tunnelIp });
  }

  const computeNodes = new Map<string, ComputeNode>(
    [...nodes.values()].filter((n) => n.spec.roles.includes('compute')).map((n) => [n.spec.name, { name: n.spec.name, composer: n.composer }]),
  );
  const compute = new ComputeService(servers.api.plugin, computeNodes, dataplane, join(stateDir, 'instances.jsonl'));
  // Nova's metadata API behind the metadata agents, sharing their secret.
  const secret = loadMetadataAgentConfig([join(etc, 'neutron.conf'), join(etc, 'metadata_agent.ini')], { warn: () => {} }).metadata_proxy_shared_secret;
  const metadata = new MetadataService({ secret, instances: compute });
  const makeAgents = (n: CloudNode) =>
    Object.entries(AGENT_FACTORIES)
      .filter(([role]) => roles.has(role as AgentRole))
      .flatMap(([, f]) =>
        f({ spec: n.spec, host: n.host, datapathType: dataplane.datapathType, composer: n.composer, transport: agentsTransport, etc, stateDir, tunnelIp: n.tunnelIp, resyncInterval: o.resyncInterval, nova: (req) => metadata.handle(req) }),
      );
  for (const n of nodes.values()) n.agents = makeAgents(n);
  await compute.plugAll().catch(abort);
  for (const n of nodes.values()) for (const a of n.agents) await a.start().catch(abort);
  for (const n of nodes.values()) await n.composer.release().catch(abort);
  await compute.startVms().catch(abort);

  const machines = {
    kind: dataplane.kind,
    hosts: () => [...nodes.keys(), 'extrouter', 'internet'],
    ping: (from: { host: string; ns?: string }, dst: string, count: number) => dataplane.ping(from, dst, count),
    namespaces: (host: string) => dataplane.namespaces(host),
  };
  const computeApp = buildComputeApp({ compute, plugin: servers.api.plugin, world, machines, auth: servers.auth, settle: () => settle() });
  const computeUrl = (await computeApp.listen({ host: conf.bind_host, port: o.computePort ?? 8774 }).catch(abort)).replace('//0.0.0.0:', '//127.0.0.1:');
  await servers.identity?.publishService('compute', 'nova', 'OpenStack Compute', `${computeUrl}/v2.1`);

  // Quiet: a round in which no agent made a pass and the bus carried no cast or fanout. Looking at the
  // agents alone missed the casts of a pass that ended just before its agent was looked at
  // (a port's FDB casts to every host, sent after its host's agent had already been seen idle).
  const syncs = () => {
    let n = 0;
    for (const node of nodes.values()) for (const a of node.agents) n += a.syncs;
    return n;
  };
  const settle = async () => {
    for (let round = 0; round < 50; round++) {
      await new Promise((r) => setTimeout(r, 5));
      await servers.api.rpcIdle();
      const [sent, done, passes] = [bus.sent, bus.done, syncs()];
      for (const n of nodes.values()) for (const a of n.agents) await a.idle();
      if (sent === done && bus.sent === sent && bus.done === done && syncs() === passes) return;
    }
  };

  const cloud: Cloud = {
    conf,
    servers,
    dataplane,
    world,
    transport: { bus, server, agents: agentsTransport },
    nodes,
    compute,
    computeUrl,
    topology,
    stateDir,
    settle,
    async restartAgents(name) {
      const n = nodes.get(name)!;
      for (const a of n.agents) await a.stop();
      n.agents = makeAgents(n);
      for (const a of n.agents) await a.start();
    },
    async close() {
      for (const n of nodes.values()) for (const a of n.agents) await a.stop();
      mkdirSync(join(stateDir, 'hosts'), { recursive: true });
      for (const n of nodes.values()) writeFileSync(join(stateDir, 'hosts', `${n.spec.name}.json`), JSON.stringify(await n.composer.current()));
      await computeApp.close();
      await servers.close();
      await server.close();
      await agentsTransport.close();
    },
  };
  return cloud;
}
