// Test support for the L3 agent: a real server on the in-process bus, the scenario's
// network1 (dvr_snat) and compute1 (dvr) as emulated hosts on one external segment with the
// external router EG (203.0.113.1), real L3 agents on them, fake agents (server/fake_agents)
// for the OVS agents' registration, and a stand-in for the OVS agent's dataplane part:
// br-int with NORMAL, br-ex joined by int-br-ex/phy-br-ex with the flat network's VLAN
// translation, and every port that carries an iface-id tagged with its network's local
// VLAN (testbed.ts's floating-IP bridges). No tunnels: each test's packets stay on a host.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { client, startTestServer, type TestServer } from '../../api/testing.js';
import { loadL3AgentConfig } from '../../config/agents.js';
import { addBridge, addFlows, addPhysical, addPort, emptyHost, systemPort } from '../../host/build.js';
import { intToPhysPatch, physToIntPatch, tapDevice } from '../../host/names.js';
import type { HostState, OvsBridge, OvsPort } from '../../host/state.js';
import { InProcessBus } from '../../rpc/inproc.js';
import type { Transport } from '../../rpc/transport.js';
import { FakeAgent } from '../../server/fake_agents.js';
import { AGENT_TYPES } from '../../server/agents.js';
import { World } from '../../dataplane/emulated/world.js';
import { HostComposer } from '../composer.js';
import { L3Agent } from './agent.js';

const ETC = fileURLToPath(new URL('../../../etc/', import.meta.url));
export const EG = { ip: '203.0.113.1', mac: '52:54:00:cc:00:01' };
const COOKIE = 0x3e;

/** The OVS agent's dataplane effect, enough for packets that stay on one host. */
export class MiniOvs {
  private lvids = new Map<string, number>();
  private netOf = new Map<string, string>();
  externalNetwork?: string;

  constructor(
    readonly host: string,
    private readonly composer: HostComposer,
    private readonly rpc: FakeAgent,
  ) {}

  private lvid(net: string): number {
    let v = this.lvids.get(net);
    if (v === undefined) this.lvids.set(net, (v = this.lvids.size + 1));
    return v;
  }

  async sync(): Promise<void> {
    const others = this.composer.desired('ovs');
    const plugged = Object.values(others.ovs.bridges['br-int']?.ports ?? {}).filter((p) => p.external_ids?.['iface-id']);
    const unknown = plugged.map((p) => p.external_ids!['iface-id']).filter((id) => !this.netOf.has(id));
    if (unknown.length) for (const d of await this.rpc.call('get_devices_details_list', { devices: unknown, host: this.host })) this.netOf.set(d.device, d.network_id);
    let s = emptyHost();
    s = addBridge(s, 'br-int');
    const intEx = intToPhysPatch('br-ex');
    const phyEx = physToIntPatch('br-ex');
    const ports: Record<string, OvsPort> = { ...s.ovs.bridges['br-int'].ports, [intEx]: { name: intEx, type: 'patch', peer: phyEx } };
    for (const p of plugged) {
      const net = this.netOf.get(p.external_ids!['iface-id']);
      ports[p.name] = { name: p.name, type: p.type, tag: net ? this.lvid(net) : 4095 } as OvsPort;
    }
    s = { ...s, ovs: { bridges: { 'br-int': { ...s.ovs.bridges['br-int'], ports }, 'br-ex': { name: 'br-ex', datapath_type: 'system', fail_mode: 'secure', ports: { [phyEx]: { name: phyEx, type: 'patch', peer: intEx } }, flows: [] } } } };
    const ext = this.externalNetwork ? this.lvid(this.externalNetwork) : undefined;
    s = addFlows(s, 'br-int', [
      { table: 0, priority: 0, cookie: COOKIE, actions: 'NORMAL' },
      { table: 0, priority: 2, cookie: COOKIE, match: `in_port=${intEx}`, actions: 'drop' },
      ...(ext ? [{ table: 0, priority: 3, cookie: COOKIE, match: `in_port=${intEx},vlan_tci=0x0000/0x1fff`, actions: `mod_vlan_vid:${ext},NORMAL` }] : []),
    ]);
    s = addFlows(s, 'br-ex', [
      { table: 0, priority: 0, cookie: COOKIE, actions: 'NORMAL' },
      { table: 0, priority: 2, cookie: COOKIE, match: `in_port=${phyEx}`, actions: 'drop' },
      ...(ext ? [{ table: 0, priority: 4, cookie: COOKIE, match: `in_port=${phyEx},dl_vlan=${ext}`, actions: 'strip_vlan,NORMAL' }] : []),
    ]);
    this.composer.setFragment('ovs', s);
    await this.composer.reconcile();
    // Wired: up, as the OVS agent reports them (l2population and the routers' ARP entries follow).
    const up = plugged.map((p) => p.external_ids!['iface-id']).filter((id) => this.netOf.has(id) && !this.reported.has(id));
    if (up.length) for (const d of (await this.rpc.call('update_device_list', { devices_up: up, devices_down: [], host: this.host })).devices_up) this.reported.add(d);
  }

  private readonly reported = new Set<string>();
}

/** The operator's part of a node: eth2 on br-ex. */
function setupFragment(): HostState {
  let s = emptyHost();
  s = addPhysical(s, 'eth2');
  s = addBridge(s, 'br-ex');
  return addPort(s, 'br-ex', systemPort('eth2'));
}

export interface Node {
  name: string;
  composer: HostComposer;
  ovs: MiniOvs;
  fakeOvs: FakeAgent;
  l3: L3Agent;
  cwd: string;
  /** Instances plugged by the test (compute fragment): port id -> tap. */
  vms: Map<string, { name: string; mac: string; ip: string; gateway: string }>;
}

export interface Lab {
  srv: TestServer;
  call: ReturnType<typeof client>;
  world: World;
  bus: InProcessBus;
  nodes: Record<'network1' | 'compute1', Node>;
  /** Wait for every agent to finish what casts started, then let the OVS stand-in tag new ports. */
  settle(): Promise<void>;
  /** Plug an instance VIF (tap on br-int, os-vif's external_ids) and boot it behind the tap. */
  boot(node: Node, name: string, port: { id: string; mac_address: string; fixed_ips: Array<{ ip_address: string }> }, gateway: string): Promise<void>;
  unboot(node: Node, portId: string): Promise<void>;
  /** Stop a node's L3 agent and start a fresh one (same config and state path, same host). */
  restartL3(node: Node): Promise<L3Agent>;
  close(): Promise<void>;
}

const tunnelIp: Record<string, string> = { network1: '10.0.1.21', compute1: '10.0.1.31' };

function l3Config(name: string, cwd: string) {
  const files = [join(ETC, 'neutron.conf'), join(ETC, name, 'neutron.conf'), join(ETC, 'l3_agent.ini')];
  if (name === 'network1') files.push(join(ETC, 'network1', 'l3_agent.ini'));
  return loadL3AgentConfig(files, { cwd, warn: () => {} });
}

export async function startLab(): Promise<Lab> {
  const bus = new InProcessBus();
  const serverT = bus.transport();
  const agentsT: Transport = bus.transport();
  const srv = await startTestServer('sqlite', { transport: serverT });
  const call = client(srv.url);
  const world = new World();
  const external = world.addSegment('external');
  world.addPlainHost('router', { segment: 'external', ip: `${EG.ip}/24`, mac: EG.mac });
  const nodes = {} as Lab['nodes'];
  for (const [i, name] of (['network1', 'compute1'] as const).entries()) {
    const h = world.addHost(name);
    h.addNic('eth2', external, { mac: `52:54:00:02:00:${(0x21 + i * 0x10).toString(16)}` });
    const composer = new HostComposer(name, h);
    composer.setFragment('setup', setupFragment());
    const fakeOvs = await new FakeAgent(agentsT, name, AGENT_TYPES.ovs, 'neutron-openvswitch-agent', 'N/A', {
      bridge_mappings: { vlan: 'br-vlan', external: 'br-ex' },
      tunnel_types: ['vxlan'],
      tunneling_ip: tunnelIp[name],
      l2_population: true,
      arp_responder_enabled: true,
      enable_distributed_routing: true,
      integration_bridge: 'br-int',
    }).start();
    const ovs = new MiniOvs(name, composer, fakeOvs);
    await ovs.sync();
    const cwd = mkdtempSync(join(tmpdir(), `dvrnet-l3-${name}-`));
    const l3 = new L3Agent({ transport: agentsT, composer, config: l3Config(name, cwd), reportInterval: 0, resyncInterval: 0 });
    await l3.start();
    nodes[name] = { name, composer, ovs, fakeOvs, l3, cwd, vms: new Map() };
  }
  const all = () => Object.values(nodes);
  /** The compute service's fragment: each VIF's tap and its br-int port (the bridge itself is the OVS agent's). */
  const compute = (n: Node): HostState => {
    const s = emptyHost();
    const ports: Record<string, OvsPort> = {};
    for (const [portId, vm] of n.vms) {
      const tap = tapDevice(portId);
      s.namespaces[''].links[tap] = { kind: 'tap', name: tap, mac: 'fe' + vm.mac.slice(2), up: true, addresses: [] };
      ports[tap] = systemPort(tap, { external_ids: { 'iface-id': portId, 'attached-mac': vm.mac, 'iface-status': 'active', 'vm-uuid': vm.name } });
    }
    if (n.vms.size) s.ovs.bridges['br-int'] = { name: 'br-int', ports, flows: [] } as unknown as OvsBridge;
    return s;
  };
  const lab: Lab = {
    srv,
    call,
    world,
    bus,
    nodes,
    async settle() {
      for (let round = 0; round < 3; round++) {
        await new Promise((r) => setTimeout(r, 20));
        await srv.rpcIdle();
        for (const n of all()) await n.l3.idle();
        for (const n of all()) await n.ovs.sync();
      }
    },
    async boot(node, name, port, gateway) {
      node.vms.set(port.id, { name, mac: port.mac_address, ip: port.fixed_ips[0].ip_address, gateway });
      node.composer.setFragment('compute', compute(node));
      await node.ovs.sync();
      world.host(node.name).addInstance(name, { tap: tapDevice(port.id), mac: port.mac_address, ip: `${port.fixed_ips[0].ip_address}/24`, gateway });
    },
    async unboot(node, portId) {
      node.vms.delete(portId);
      node.composer.setFragment('compute', compute(node));
      await node.ovs.sync();
    },
    async restartL3(node) {
      await node.l3.stop();
      node.l3 = new L3Agent({ transport: agentsT, composer: node.composer, config: l3Config(node.name, node.cwd), reportInterval: 0, resyncInterval: 0 });
      await node.l3.start();
      return node.l3;
    },
    async close() {
      for (const n of all()) {
        await n.l3.stop();
        await n.fakeOvs.close();
        rmSync(n.cwd, { recursive: true, force: true });
      }
      await srv.destroy();
      await serverT.close();
      await agentsT.close();
    },
  };
  return lab;
}
