// The cloud's dataplane seam: what the all-in-one cloud, the compute service and the
// walk-through need from "the machines" — make a node's host (a HostDriver the node's
// composer applies states with, plus the operator's setup), boot and delete a VM behind its
// tap, ping from an endpoint, list a host's namespaces, and the world outside (the external
// router EG and the internet host). Two implementations: the emulated World (in-process,
// traced; the default) and real Linux namespaces with Open vSwitch (linux-dataplane.ts).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostDriver } from '../agents/composer.js';
import type { DhcpLease } from '../dataplane/emulated/apps/dhcp.js';
import type { EmulatedHost } from '../dataplane/emulated/linux/host.js';
import { ping } from '../dataplane/emulated/ping.js';
import { World } from '../dataplane/emulated/world.js';
import { addBridge, addPhysical, addPort, emptyHost, systemPort } from '../host/build.js';
import type { HostState } from '../host/state.js';
import type { TraceRecord } from '../trace/record.js';
import type { VmRuntime, VmSpec } from '../compute/compute.js';
import { nodeAddress, type NodeSpec, type Topology } from './topology.js';

export type { VmRuntime, VmSpec };

/** A place packets start from: a node or an outside host, optionally one of its namespaces or instances (by name). */
export interface Endpoint {
  host: string;
  ns?: string;
}

export interface PingOutcome {
  sent: number;
  received: number;
  /** ping's own summary line. */
  summary: string;
  /** The emulated record of the first echo (what a trace shows); absent on a real dataplane. */
  first?: TraceRecord;
}

export interface NodeHost {
  driver: HostDriver;
  /** What the operator set up before the agents run (NICs, addresses, br-ex, br-vlan...). */
  setup: HostState;
  /** The emulated host (emulated dataplane only: the metadata proxies reach their agent through it). */
  emulated?: EmulatedHost;
}

export interface Dataplane extends VmRuntime {
  readonly kind: 'emulated' | 'linux';
  /** The emulated world (on the linux dataplane: an empty one; nothing runs in it). */
  readonly world: World;
  /** `[ovs] datapath_type` for the nodes' OVS agents. */
  readonly datapathType: 'system' | 'netdev';
  /** The external router EG (external <-> internet) and the internet host. */
  outside(topology: Topology): Promise<void>;
  /** One node's host: its NICs on the segments, and the driver of its state. */
  addHost(topology: Topology, spec: NodeSpec, stateDir: string): Promise<NodeHost>;
  ping(from: Endpoint, dst: string, count?: number): Promise<PingOutcome>;
  /** The namespaces of a host as `ip netns` lists them on the machine (with any host prefix). */
  namespaces(host: string): Promise<string[]>;
  /** What a namespace of `host` is called on the machine (`dvr-network1-` + name on the linux dataplane). */
  netnsName(host: string, ns: string): string;
}

export const SEGMENTS = ['management', 'tunnel', 'external', 'vlan', 'internet'] as const;

/** NIC MACs: 52:54:00 (QEMU's prefix), then the segment and the node index. */
export const nicMac = (seg: number, index: number) =>
  `52:54:00:${seg.toString(16).padStart(2, '0')}:${((index >> 8) & 255).toString(16).padStart(2, '0')}:${(index & 255).toString(16).padStart(2, '0')}`;

/**
 * What the operator set up on a node before Neutron's agents run: the NICs and their
 * addresses, br-ex on the external NIC and br-vlan on the VLAN NIC (bridge_mappings).
 */
export function setupState(topology: Topology, spec: NodeSpec): HostState {
  let s = emptyHost();
  s = addPhysical(s, 'eth0', { addresses: [nodeAddress(topology.management, spec.index)] });
  s = addPhysical(s, 'eth1', { addresses: [nodeAddress(topology.tunnel, spec.index)] });
  s = addPhysical(s, 'eth2', {});
  s = addPhysical(s, 'eth3', {});
  s = addBridge(s, 'br-ex');
  s = addPort(s, 'br-ex', systemPort('eth2'));
  s = addBridge(s, 'br-vlan');
  s = addPort(s, 'br-vlan', systemPort('eth3'));
  return s;
}

/** The emulated dataplane: every host, segment and VM in one in-process World. */
export class EmulatedDataplane implements Dataplane {
  readonly kind = 'emulated';
  readonly datapathType = 'system';
  readonly world = new World();

  constructor() {
    for (const seg of SEGMENTS) this.world.addSegment(seg);
  }

  async outside(topology: Topology): Promise<void> {
    const world = this.world;
    const eg = world.addPlainHost('extrouter', { segment: 'external', ip: `${topology.external.gateway}/${topology.external.cidr.split('/')[1]}`, mac: topology.external.gatewayMac, forward: true });
    eg.addNic('eth1', world.segment('internet'), { mac: 'fa:16:3e:ee:00:02' });
    eg.root.addAddr('eth1', `${topology.outside.router}/24`);
    world.addPlainHost('internet', { segment: 'internet', ip: `${topology.outside.host}/24`, gateway: topology.outside.router });
  }

  async addHost(topology: Topology, spec: NodeSpec, stateDir: string): Promise<NodeHost> {
    const host = this.world.addHost(spec.name);
    SEGMENTS.slice(0, 4).forEach((seg, k) => host.addNic(`eth${k}`, this.world.segment(seg), { mac: nicMac(k, spec.index) }));
    // The host as it was when the cloud last stopped (real hosts keep their OVSDB and kernel
    // state when the agents restart): the agents recover their local VLANs, zones and
    // link-local addresses from it, and reconcile what is stale.
    const saved = join(stateDir, 'hosts', `${spec.name}.json`);
    if (existsSync(saved)) host.driver.applyState(JSON.parse(readFileSync(saved, 'utf8')));
    return { driver: host.driver, setup: setupState(topology, spec), emulated: host };
  }

  async startVm(vm: VmSpec): Promise<void> {
    const wh = this.world.host(vm.host);
    if (wh.instances.has(vm.name)) return;
    // A VM keeps the address of its lease while the cloud's services restart.
    const l = vm.lease;
    wh.addInstance(vm.name, { tap: vm.tap, mac: vm.mac, ...(l ? { ip: `${l.ip}/${l.cidr.split('/')[1]}`, gateway: l.router, mtu: l.mtu } : {}) });
  }

  async deleteVm(vm: VmSpec): Promise<void> {
    const wh = this.world.hosts.get(vm.host);
    if (wh?.instances.has(vm.name)) wh.delInstance(vm.name);
  }

  dhcp(vm: VmSpec): DhcpLease | undefined {
    let lease: DhcpLease | undefined;
    // Only the lease is wanted: no record of the exchange.
    this.world.unrecorded(() => this.world.dhcp({ host: vm.host, ns: vm.name }, (l) => (lease = l)));
    return lease;
  }

  async ping(from: Endpoint, dst: string, count = 4): Promise<PingOutcome> {
    return ping(this.world, from, dst, count);
  }

  async namespaces(host: string): Promise<string[]> {
    return [...this.world.host(host).namespaces.keys()].filter((n) => n).sort();
  }

  netnsName(_host: string, ns: string): string {
    return ns;
  }
}
