// A minimal compute service (Nova's part in the scenario): boot an instance on a network,
// place it on a compute host, create and bind its port, plug its VIF the way os-vif's
// hybrid plug does (tap -> qbr -> qvb/qvo -> br-int), start the VM behind the tap (on the
// cloud's dataplane: emulated, or a real namespace) and let it take its address by DHCP.
// Instances are kept in a journal (journal.ts) so a restarted cloud plugs the same VIFs again.

import { randomUUID } from 'node:crypto';
import type { HostComposer } from '../agents/composer.js';
import type { DhcpLease } from '../dataplane/emulated/apps/dhcp.js';
import { addBridge, addLinuxBridge, addPort, addTap, addVethPair, emptyHost, setSysctl, systemPort } from '../host/build.js';
import { INTEGRATION_BRIDGE, hybridBridge, hybridVethBridgeEnd, hybridVethOvsEnd, tapDevice } from '../host/names.js';
import type { HostState } from '../host/state.js';
import { NeutronError } from '../common/errors.js';
import type { RequestContext } from '../server/context.js';
import type { CorePlugin } from '../server/plugin.js';
import { Journal } from './journal.js';
import type { InstanceDirectory, MetadataInstance } from './metadata-service.js';

export interface Instance {
  id: string;
  name: string;
  project_id: string;
  host: string;
  network_id: string;
  port_id: string;
  mac: string;
  fixed_ip: string;
  security_groups: string[];
  status: 'BUILD' | 'ACTIVE' | 'ERROR';
  created_at: string;
  /** What the instance's DHCP client got (address, router, MTU). */
  lease?: DhcpLease;
  /** The port binding's `vif_details.datapath_type`: what os-vif makes br-int with if it is missing. */
  datapath_type?: 'system' | 'netdev';
}

const datapathOf = (port: { 'binding:vif_details'?: unknown }) => ((port['binding:vif_details'] as { datapath_type?: string } | undefined)?.datapath_type === 'netdev' ? 'netdev' : 'system');

/** An instance as the dataplane sees it: the VM behind its tap on a compute host. */
export interface VmSpec {
  id: string;
  name: string;
  host: string;
  tap: string;
  /** The bridge os-vif's hybrid plug made for the tap (qbr-). */
  bridge: string;
  mac: string;
  /** The address a previous DHCP lease gave it (a restarted cloud keeps it). */
  lease?: DhcpLease;
}

/** What the compute service needs from the cloud's dataplane to run VMs (cloud/dataplane.ts implements it). */
export interface VmRuntime {
  /** Start the VM behind its (already plugged) tap; starting a running VM does nothing. */
  startVm(vm: VmSpec): Promise<void>;
  deleteVm(vm: VmSpec): Promise<void>;
  /** The VM's DHCP lease: the emulated dataplane runs the exchange now; a real VM's client runs on its own and this reports what it got so far. */
  dhcp(vm: VmSpec): DhcpLease | undefined;
}

export interface ComputeNode {
  name: string;
  composer: HostComposer;
}

export interface BootRequest {
  name: string;
  network_id: string;
  security_groups?: string[];
  /** An admin may place the instance (nova boot --availability-zone nova:<host>). */
  host?: string;
}

export const instanceNotFound = (id: string) => new NeutronError('InstanceNotFound', 404, `Instance ${id} could not be found.`);

export class ComputeService implements InstanceDirectory {
  private readonly instances = new Map<string, Instance>();
  /** The instances of each host: what a host's VIF fragment and the placement count (a cloud of thousands plugs per host). */
  private readonly byHost = new Map<string, Map<string, Instance>>();
  /** Where the instances are kept (none: in memory only). */
  private readonly journal?: Journal<Instance>;

  constructor(
    private readonly plugin: CorePlugin,
    private readonly nodes: Map<string, ComputeNode>,
    private readonly vms: VmRuntime,
    stateFile?: string,
  ) {
    this.journal = stateFile ? new Journal<Instance>(stateFile, this.instances) : undefined;
    for (const i of this.journal?.load() ?? []) this.add(i);
  }

  /** The metadata service's view of an instance (InstanceDirectory). */
  instance(id: string): MetadataInstance | undefined {
    const i = this.instances.get(id);
    return i && { id: i.id, name: i.name, project_id: i.project_id, host: i.host, fixed_ip: i.lease?.ip ?? i.fixed_ip, security_groups: i.security_groups, availability_zone: 'nova' };
  }

  private add(i: Instance): void {
    this.instances.set(i.id, i);
    let mine = this.byHost.get(i.host);
    if (!mine) this.byHost.set(i.host, (mine = new Map()));
    mine.set(i.id, i);
  }

  private remove(i: Instance): void {
    this.instances.delete(i.id);
    const mine = this.byHost.get(i.host);
    mine?.delete(i.id);
    if (mine && !mine.size) this.byHost.delete(i.host);
  }

  list(ctx: RequestContext): Instance[] {
    return [...this.instances.values()].filter((i) => ctx.isAdmin || i.project_id === ctx.projectId).sort((a, b) => a.created_at.localeCompare(b.created_at) || a.name.localeCompare(b.name));
  }

  get(ctx: RequestContext, idOrName: string): Instance {
    const found = this.list(ctx).filter((i) => i.id === idOrName || i.name === idOrName);
    if (found.length !== 1) throw found.length ? new NeutronError('InstanceNameNotUnique', 409, `Multiple instances named ${idOrName}`) : instanceNotFound(idOrName);
    return found[0];
  }

  /** The compute node an instance goes to: the one the admin named, else the least loaded. */
  private place(ctx: RequestContext, load: Map<string, number>, host?: string): string {
    if (host) {
      if (!ctx.isAdmin) throw new NeutronError('Forbidden', 403, 'Only an admin may choose the host of an instance');
      if (!this.nodes.has(host)) throw new NeutronError('ComputeHostNotFound', 404, `Compute host ${host} could not be found.`);
      return host;
    }
    return [...load].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))[0][0];
  }

  /** Boot: port on the network (bound to the chosen host), VIF plugged, VM started. */
  async boot(ctx: RequestContext, req: BootRequest): Promise<Instance> {
    return (await this.bootMany(ctx, [req]))[0];
  }

  /**
   * Boot instances (one, or many as a scale test or `nova boot --min-count` does): their
   * ports in one bulk create, each bound at creation to the host chosen for it, then one VIF
   * plug per host. Ports are created as the requester, so the network API's checks on the
   * network and groups apply; only the binding is Nova's (a service's) business.
   */
  async bootMany(ctx: RequestContext, reqs: BootRequest[]): Promise<Instance[]> {
    const load = new Map([...this.nodes.keys()].map((n) => [n, 0]));
    for (const [h, mine] of this.byHost) load.set(h, (load.get(h) ?? 0) + mine.size);
    const hosts = reqs.map((r) => {
      const h = this.place(ctx, load, r.host);
      load.set(h, (load.get(h) ?? 0) + 1);
      return h;
    });
    const ids = reqs.map(() => randomUUID());
    const ports = await this.plugin.ports.createBulk(
      ctx,
      reqs.map((r, k) => ({
        project_id: ctx.projectId,
        network_id: r.network_id,
        name: '',
        device_id: ids[k],
        device_owner: 'compute:nova',
        'binding:host_id': hosts[k],
        ...(r.security_groups ? { security_groups: r.security_groups } : {}),
      })),
    );
    const byDevice = new Map(ports.map((p) => [p.device_id, p]));
    const created: Instance[] = reqs.map((r, k) => {
      const port = byDevice.get(ids[k])!;
      const inst: Instance = {
        id: ids[k],
        name: r.name,
        project_id: ctx.projectId,
        host: hosts[k],
        network_id: r.network_id,
        port_id: port.id,
        mac: port.mac_address,
        fixed_ip: port.fixed_ips[0]?.ip_address ?? '',
        security_groups: port.security_groups,
        status: 'BUILD',
        created_at: new Date().toISOString(),
        datapath_type: datapathOf(port),
      };
      this.add(inst);
      return inst;
    });
    this.journal?.put(created);
    // The hosts plug their VIFs side by side, as Nova's compute services do (each waits for its host's turn: agents/turns.ts).
    await Promise.all([...new Set(hosts)].map((h) => this.plug(h)));
    for (const inst of created) await this.startVm(inst);
    return created;
  }

  async delete(ctx: RequestContext, idOrName: string): Promise<void> {
    const inst = this.get(ctx, idOrName);
    await this.vms.deleteVm(this.vmSpec(inst));
    this.remove(inst);
    this.journal?.del(inst.id);
    await this.plug(inst.host);
    try {
      await this.plugin.ports.delete({ ...ctx, isAdmin: true }, inst.port_id);
    } catch (err) {
      if (!(err instanceof NeutronError && err.status === 404)) throw err;
    }
  }

  /** The 'compute' fragment of a host: every instance's VIF, os-vif hybrid style. */
  vifState(host: string): HostState {
    let s = emptyHost();
    // os-vif makes the bridge with the binding's datapath type when it is missing (the OVS
    // agent's: the userspace datapath's bridges are netdev).
    const mine = [...(this.byHost.get(host)?.values() ?? [])];
    s = addBridge(s, INTEGRATION_BRIDGE, { datapath_type: mine.find((i) => i.datapath_type)?.datapath_type ?? 'system' });
    s = setSysctl(s, '', 'net.bridge.bridge-nf-call-iptables', 1);
    for (const i of mine) {
      const qbr = hybridBridge(i.port_id);
      s = addLinuxBridge(s, '', qbr);
      // The tap's own MAC is the port's with fe: in front, as libvirt makes it.
      s = addTap(s, '', tapDevice(i.port_id), { master: qbr, mac: `fe${i.mac.slice(2)}` });
      s = addVethPair(s, '', hybridVethBridgeEnd(i.port_id), '', hybridVethOvsEnd(i.port_id), { a: { master: qbr } });
      s = addPort(
        s,
        INTEGRATION_BRIDGE,
        systemPort(hybridVethOvsEnd(i.port_id), { external_ids: { 'iface-id': i.port_id, 'attached-mac': i.mac, 'iface-status': 'active', 'vm-uuid': i.id } }),
      );
    }
    return s;
  }

  /** Re-plug every VIF of a host (boot, delete, and a restarted cloud). */
  async plug(host: string): Promise<void> {
    const node = this.nodes.get(host);
    if (!node) throw new Error(`no compute node ${host}`);
    node.composer.setFragment('compute', this.vifState(host));
    await node.composer.reconcile();
  }

  private vmSpec(inst: Instance): VmSpec {
    return { id: inst.id, name: inst.name, host: inst.host, tap: tapDevice(inst.port_id), bridge: hybridBridge(inst.port_id), mac: inst.mac, lease: inst.lease };
  }

  /** The VM behind the tap (no address until DHCP gives it one; a restarted cloud's VM keeps its lease's). */
  private startVm(inst: Instance): Promise<void> {
    return this.vms.startVm(this.vmSpec(inst));
  }

  /** The instance's DHCP client (what it got); the lease (address, router, MTU) is kept on the record. */
  dhcp(inst: Instance): DhcpLease | undefined {
    const lease = this.vms.dhcp(this.vmSpec(inst));
    if (lease) {
      inst.lease = lease;
      this.journal?.put([inst]);
    }
    return lease;
  }

  /** A restarted cloud, first half: every host's VIF fragment again. */
  async plugAll(): Promise<void> {
    for (const host of [...this.byHost.keys()]) await this.plug(host);
  }

  /** Second half, once the VIFs exist: the VMs, with the addresses their leases gave them. */
  async startVms(): Promise<void> {
    for (const i of this.instances.values()) await this.startVm(i);
  }

  /** Instance status follows its port: ACTIVE once the host's OVS agent wired it. */
  async refreshStatus(): Promise<void> {
    const ports = await this.plugin.db.kysely.selectFrom('ports').select(['id', 'status']).execute();
    const st = new Map(ports.map((p) => [p.id, p.status]));
    for (const i of this.instances.values()) i.status = st.get(i.port_id) === 'ACTIVE' ? 'ACTIVE' : st.has(i.port_id) ? 'BUILD' : 'ERROR';
  }
}
