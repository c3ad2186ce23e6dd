// Test support for the OVS agent: a real server on the in-process bus, emulated hosts with
// the operator's setup, real OVS agents, and test-local stand-ins for the other writers of
// a host (os-vif's hybrid plug as the 'compute' fragment; a hand-built DVR qrouter as 'l3').

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { client, startTestServer, type TestServer } from '../../api/testing.js';
import { setupState } from '../../cloud/cloud.js';
import { scenarioTopology } from '../../cloud/topology.js';
import { loadOvsAgentConfig } from '../../config/load.js';
import { World } from '../../dataplane/emulated/world.js';
import type { EmulatedHost } from '../../dataplane/emulated/linux/host.js';
import {
  addBridge,
  addInternalPort,
  addLinuxBridge,
  addNamespace,
  addNeighbour,
  addPort,
  addTap,
  addVethPair,
  emptyHost,
  setSysctl,
  systemPort,
} from '../../host/build.js';
import { hybridBridge, hybridVethBridgeEnd, hybridVethOvsEnd, INTEGRATION_BRIDGE, routerInterfaceDevice, routerNamespace, tapDevice } from '../../host/names.js';
import type { HostState } from '../../host/state.js';
import { InProcessBus } from '../../rpc/inproc.js';
import type { Transport } from '../../rpc/transport.js';
import { HostComposer } from '../composer.js';
import { OvsAgent } from './agent.js';

const ETC = join(import.meta.dirname, '../../../etc');
const SEGMENTS = ['management', 'tunnel', 'external', 'vlan'] as const;

export interface Node {
  name: string;
  host: EmulatedHost;
  composer: HostComposer;
  agent: OvsAgent;
}

export interface VmPort {
  id: string;
  mac: string;
  ip: string;
  network_id: string;
  host: string;
  name: string;
}

/** The shipped configuration of a node (etc/ plus etc/<node>/). */
export function nodeConfig(name: string) {
  return loadOvsAgentConfig(
    [join(ETC, 'neutron.conf'), join(ETC, name, 'neutron.conf'), join(ETC, 'openvswitch_agent.ini'), join(ETC, name, 'openvswitch_agent.ini')],
    { warn: () => {} },
  );
}

export class Lab {
  nodes = new Map<string, Node>();
  private constructor(
    readonly srv: TestServer,
    readonly world: World,
    readonly bus: InProcessBus,
    readonly serverTransport: Transport,
    readonly agentTransport: Transport,
  ) {}

  call = (method: string, path: string, body?: unknown) => client(this.srv.url)(method, path, body);

  static async start(names: string[]): Promise<Lab> {
    const bus = new InProcessBus();
    const st = bus.transport();
    const at = bus.transport();
    const srv = await startTestServer('sqlite', { transport: st });
    const world = new World();
    for (const seg of SEGMENTS) world.addSegment(seg);
    const lab = new Lab(srv, world, bus, st, at);
    const topo = scenarioTopology();
    for (const name of names) {
      const spec = topo.nodes.find((n) => n.name === name)!;
      const host = world.addHost(name);
      SEGMENTS.forEach((seg, k) => host.addNic(`eth${k}`, world.segment(seg), { mac: `52:54:00:0${k}:00:${spec.index.toString(16).padStart(2, '0')}` }));
      const composer = new HostComposer(name, host.driver);
      composer.setFragment('setup', setupState(topo, spec));
      await composer.reconcile();
      const agent = lab.newAgent(name, composer);
      lab.nodes.set(name, { name, host, composer, agent });
      await agent.start();
    }
    return lab;
  }

  newAgent(name: string, composer: HostComposer): OvsAgent {
    return new OvsAgent({ transport: this.agentTransport, composer, config: nodeConfig(name), reportInterval: 0, resyncInterval: 0 });
  }

  node(name: string): Node {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  async ok(method: string, path: string, body?: unknown, status = method === 'POST' ? 201 : 200) {
    const r = await this.call(method, path, body);
    assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async network(name: string, cidr: string, extra: Record<string, unknown> = { 'provider:network_type': 'vxlan' }) {
    const net = (await this.ok('POST', '/v2.0/networks', { network: { name, tenant_id: 'demo', ...extra } })).network;
    const subnet = (await this.ok('POST', '/v2.0/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr, tenant_id: 'demo' } })).subnet;
    return { net, subnet };
  }

  /** An instance port bound to `host` (as Nova would create and bind it). */
  async vmPort(name: string, networkId: string, host: string, extra: Record<string, unknown> = {}): Promise<VmPort> {
    const p = (
      await this.ok('POST', '/v2.0/ports', {
        port: { network_id: networkId, name, tenant_id: 'demo', device_owner: 'compute:nova', device_id: `instance-${name}`, 'binding:host_id': host, ...extra },
      })
    ).port;
    return { id: p.id, mac: p.mac_address, ip: p.fixed_ips[0].ip_address, network_id: networkId, host, name };
  }

  /** os-vif's hybrid plug of every VM port of a host (the 'compute' fragment), and the VMs behind the taps. */
  async plug(host: string, vms: VmPort[], gateways: Record<string, string> = {}) {
    const n = this.node(host);
    n.composer.setFragment('compute', vifState(vms.filter((v) => v.host === host)));
    await n.composer.reconcile();
    for (const vm of vms) {
      if (vm.host !== host || n.host.instances.has(vm.name)) continue;
      n.host.addInstance(vm.name, { tap: tapDevice(vm.id), mac: vm.mac, ip: `${vm.ip}/24`, gateway: gateways[vm.network_id] });
    }
  }

  async settle() {
    for (let round = 0; round < 100; round++) {
      await new Promise((r) => setTimeout(r, 5));
      await this.srv.rpcIdle(); // a DVR MAC list the server still gathers
      let busy = false;
      for (const n of this.nodes.values()) {
        const before = n.agent.syncs;
        await n.agent.idle();
        if (n.agent.syncs !== before) busy = true;
      }
      if (!busy) return;
    }
  }

  async close() {
    for (const n of this.nodes.values()) await n.agent.stop();
    await this.srv.destroy();
    await this.serverTransport.close();
    await this.agentTransport.close();
  }
}

export function vifState(vms: VmPort[]): HostState {
  let s = emptyHost();
  s = addBridge(s, INTEGRATION_BRIDGE);
  s = setSysctl(s, '', 'net.bridge.bridge-nf-call-iptables', 1);
  for (const vm of vms) {
    const qbr = hybridBridge(vm.id);
    s = addLinuxBridge(s, '', qbr);
    s = addTap(s, '', tapDevice(vm.id), { master: qbr, mac: `fe${vm.mac.slice(2)}` });
    s = addVethPair(s, '', hybridVethBridgeEnd(vm.id), '', hybridVethOvsEnd(vm.id), { a: { master: qbr } });
    s = addPort(s, INTEGRATION_BRIDGE, systemPort(hybridVethOvsEnd(vm.id), { external_ids: { 'iface-id': vm.id, 'attached-mac': vm.mac, 'iface-status': 'active' } }));
  }
  return s;
}

export interface RouterItf {
  portId: string;
  mac: string;
  ip: string;
  prefix: number;
}

/** A DVR qrouter as the L3 agent builds it on every host of the router (same qr- IP and MAC everywhere). */
export function qrouterState(routerId: string, itfs: RouterItf[], neighbours: Array<{ itf: RouterItf; ip: string; mac: string }>): HostState {
  const ns = routerNamespace(routerId);
  let s = emptyHost();
  s = addBridge(s, INTEGRATION_BRIDGE);
  s = addNamespace(s, ns);
  s = setSysctl(s, ns, 'net.ipv4.ip_forward', 1);
  for (const i of itfs) {
    s = addInternalPort(s, INTEGRATION_BRIDGE, routerInterfaceDevice(i.portId), {
      namespace: ns,
      mac: i.mac,
      addresses: [`${i.ip}/${i.prefix}`],
      external_ids: { 'iface-id': i.portId, 'attached-mac': i.mac, 'iface-status': 'active' },
    });
  }
  for (const nb of neighbours) s = addNeighbour(s, ns, { dev: routerInterfaceDevice(nb.itf.portId), ip: nb.ip, lladdr: nb.mac });
  return s;
}
