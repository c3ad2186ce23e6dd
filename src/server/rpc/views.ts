// What one host's agents see: the read-side queries shared by the endpoints and the
// notifier. Views are computed from the database on every call, so an agent that missed or
// doubled a message heals by asking again.

import { DEVICE_OWNER, ROUTER_INTERFACE_OWNERS, isDvrServiced } from '../../common/constants.js';
import type { IpAllocationRow, NetworkRow, PortRow, RouterRow, SubnetRow } from '../../db/schema.js';
import { FLOODING_ENTRY, type DeviceDetails, type FdbEntries, type FloatingIpInfo, type NetworkInfo, type PortInfo, type RouterInfo, type SubnetInfo, type SubnetPortInfo } from '../../rpc/messages.js';
import type { MemberIps } from '../../rpc/members.js';
import { GroupHosts, GroupMembers } from './group-members.js';
import { AGENT_TYPES, configOf } from '../agents.js';
import type { CorePlugin } from '../plugin.js';
import { b, chunks } from '../util.js';

/** A CIDR's prefix length (the server stored it canonical). */
const prefixOf = (cidr: string) => Number(cidr.slice(cidr.indexOf('/') + 1));

export const TUNNEL_TYPES = new Set(['vxlan', 'gre']);

export interface HostViewsOptions {
  /**
   * Remember answers between the changes the notifier reports (see recall()). Only where this
   * process hears every change: the in-process bus, one server. Several servers on one
   * database and broker each hear only their own commits.
   */
  remember?: boolean;
}

interface FdbPortRow {
  id: string;
  mac_address: string;
  binding_host_id: string;
  ip_address: string | null;
}

/** `answer` kept under `key` in `kept` (in place of what was there); a failed answer is forgotten. */
function keep<T>(kept: Map<string, Promise<T>>, key: string, answer: Promise<T>): Promise<T> {
  kept.set(key, answer);
  answer.catch(() => kept.get(key) === answer && kept.delete(key));
  return answer;
}

/** One order for a network's announced ports however they were read (whole, or amended). */
const byHostAndId = (a: FdbPortRow, b: FdbPortRow) =>
  a.binding_host_id < b.binding_host_id ? -1 : a.binding_host_id > b.binding_host_id ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

/** Read-side queries shared by the endpoints and the notifier. */
export class HostViews {
  constructor(
    private readonly p: CorePlugin,
    private readonly opts: HostViewsOptions = {},
  ) {
    this.members = new GroupMembers(() => this.k, !!opts.remember);
    this.groupHosts = new GroupHosts(() => this.k, !!opts.remember);
  }

  private get k() {
    return this.p.db.kysely;
  }

  /**
   * `get()`'s answer kept under `key` in `kept` (when remembering) until the notifier's
   * report of a change that may alter it clears that entry; a failed answer is not kept.
   */
  private recall<T>(kept: Map<string, Promise<T>>, key: string, get: () => Promise<T>): Promise<T> {
    if (!this.opts.remember) return get();
    return kept.get(key) ?? keep(kept, key, get());
  }

  /** The network's first segment; remembered until a network changes (`networksChanged`): every port event asks. */
  segment(networkId: string) {
    return this.recall(this.segments, networkId, async () => {
      const s = await this.k.selectFrom('networksegments').selectAll().where('network_id', '=', networkId).orderBy('segment_index').executeTakeFirst();
      return s
        ? { network_type: s.network_type as DeviceDetails['network_type'], physical_network: s.physical_network || null, segmentation_id: s.segmentation_id }
        : null;
    });
  }

  private readonly segments = new Map<string, Promise<{ network_type: DeviceDetails['network_type']; physical_network: string | null; segmentation_id: number | null } | null>>();

  subnetInfo(s: SubnetRow, pools: Array<{ start: string; end: string }> = []): SubnetInfo {
    return {
      id: s.id,
      cidr: s.cidr,
      gateway_ip: s.gateway_ip,
      ip_version: s.ip_version,
      network_id: s.network_id,
      enable_dhcp: b(s.enable_dhcp),
      dns_nameservers: JSON.parse(s.dns_nameservers),
      host_routes: JSON.parse(s.host_routes),
      allocation_pools: pools,
    };
  }

  /** Ports with their fixed IPs, subnets and network MTU, as agents consume them. */
  async portInfos(ports: PortRow[]): Promise<PortInfo[]> {
    if (!ports.length) return [];
    const ids = ports.map((p) => p.id);
    const allocs: IpAllocationRow[] = [];
    for (const part of chunks(ids, 500)) allocs.push(...(await this.k.selectFrom('ipallocations').selectAll().where('port_id', 'in', part).execute()));
    allocs.sort((x, y) => Number(x.ip_num) - Number(y.ip_num));
    const subnetIds = [...new Set(allocs.map((a) => a.subnet_id))];
    const subnets = subnetIds.length ? await this.k.selectFrom('subnets').selectAll().where('id', 'in', subnetIds).execute() : [];
    const nets = await this.k.selectFrom('networks').select(['id', 'mtu']).where('id', 'in', [...new Set(ports.map((p) => p.network_id))]).execute();
    const mtu = new Map(nets.map((n) => [n.id, n.mtu]));
    const byId = new Map(subnets.map((s) => [s.id, s]));
    const byPort = new Map<string, IpAllocationRow[]>();
    for (const a of allocs) {
      const list = byPort.get(a.port_id);
      if (list) list.push(a);
      else byPort.set(a.port_id, [a]);
    }
    return ports.map((p) => {
      const mine = byPort.get(p.id) ?? [];
      return {
        id: p.id,
        network_id: p.network_id,
        mac_address: p.mac_address,
        fixed_ips: mine.map((a) => ({ subnet_id: a.subnet_id, ip_address: a.ip_address, prefixlen: prefixOf(byId.get(a.subnet_id)!.cidr) })),
        subnets: [...new Set(mine.map((a) => a.subnet_id))].map((id) => this.subnetInfo(byId.get(id)!)),
        device_owner: p.device_owner,
        device_id: p.device_id,
        binding_host_id: p.binding_host_id,
        admin_state_up: b(p.admin_state_up),
        status: p.status,
        mtu: mtu.get(p.network_id) ?? 1500,
      };
    });
  }

  async ovsAgentIp(host: string): Promise<string | undefined> {
    const a = await this.k.selectFrom('agents').selectAll().where('agent_type', '=', AGENT_TYPES.ovs).where('host', '=', host).executeTakeFirst();
    return a ? (configOf(a).tunneling_ip as string | undefined) : undefined;
  }

  /**
   * Tunnel endpoints of the hosts' OVS agents, in one query. Remembered per host until an
   * agent is created, revived, reconfigured or deleted (the notifier says so through
   * `agentChanged`).
   */
  async ovsAgentIps(hosts: string[]): Promise<Map<string, string>> {
    if (!this.opts.remember) return this.queryOvsAgentIps(hosts);
    const wanted = [...new Set(hosts)];
    const known = new Map(wanted.map((h) => [h, this.tunnelIps.get(h)]));
    const missing = wanted.filter((h) => !this.tunnelIps.has(h));
    if (missing.length) {
      const epoch = this.agentEpoch;
      const got = await this.queryOvsAgentIps(missing);
      for (const h of missing) known.set(h, got.get(h));
      // Remembered only if no agent changed while the query was under way (it may predate that).
      if (epoch === this.agentEpoch) for (const h of missing) this.tunnelIps.set(h, got.get(h));
    }
    const out = new Map<string, string>();
    for (const [h, ip] of known) if (ip) out.set(h, ip);
    return out;
  }

  private readonly tunnelIps = new Map<string, string | undefined>();
  private agentEpoch = 0;

  /**
   * An agent appeared, came back, reported another configuration or was deleted. Only OVS
   * agents' tunnel addresses are remembered, and a report changes one only if its address
   * changed: its `devices` count changes with every port of its host, and forgetting every
   * host's address then made the next port's FDB answers ask for a thousand again.
   */
  async agentChanged(e: { op: 'create' | 'revive' | 'update' | 'delete'; agentType: string; host: string }): Promise<void> {
    if (e.agentType !== AGENT_TYPES.ovs) return;
    if (e.op === 'update' && this.tunnelIps.has(e.host) && this.tunnelIps.get(e.host) === (await this.ovsAgentIp(e.host))) return;
    this.tunnelIps.clear();
    this.agentEpoch++;
  }

  private async queryOvsAgentIps(hosts: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const part of chunks([...new Set(hosts)], 500)) {
      if (!part.length) continue;
      const rows = await this.k.selectFrom('agents').select(['host', 'configurations']).where('agent_type', '=', AGENT_TYPES.ovs).where('host', 'in', part).execute();
      for (const a of rows) {
        const ip = configOf(a).tunneling_ip as string | undefined;
        if (ip) out.set(a.host, ip);
      }
    }
    return out;
  }

  /**
   * Hosts with a bound port on the network (the hosts l2population talks to about it), plus,
   * as Neutron's distributed port bindings make them, the hosts where a distributed router
   * with an interface on the network lives (a DVR-serviced port on another of its networks).
   */
  async hostsOnNetwork(networkId: string): Promise<string[]> {
    return [...(await this.recall(this.bindingAnswers, `hosts|${networkId}`, () => this.queryHostsOnNetwork(networkId)))];
  }

  /**
   * Answers about where ports are bound, kept until a port's binding, owner or existence
   * changes (the notifier says so through `bindingsChanged` before it looks): a thousand
   * ports coming up ACTIVE ask the same of the same networks, and each answer is a join
   * over the ports of a router's networks.
   */
  private readonly bindingAnswers = new Map<string, Promise<string[]>>();

  /** A port (`portId`, else any) was bound, unbound, moved, created or deleted: what was kept about bindings may be wrong now. */
  bindingsChanged(portId?: string): void {
    this.bindingAnswers.clear();
    if (portId === undefined) this.groupHosts.clear();
    else this.groupHosts.portChanged(portId);
  }

  /**
   * A port that was nowhere is now bound to `host` (not a distributed router interface: the
   * routers' shape stays). The kept answers only gain the host, so they are amended rather
   * than asked again (a cloud coming up binds thousands of ports, one at a time): the
   * network's hosts and, for the networks sharing a distributed router with it, theirs and
   * (a DVR-serviced port) their DVR peers.
   */
  portBound(networkId: string, host: string, deviceOwner: string, portId: string): void {
    this.groupHosts.portChanged(portId);
    if (!this.bindingAnswers.size) return;
    const routed = this.routerNetworks([networkId]);
    const gains = (key: string, nets: Set<string>) => {
      const [kind, net] = [key.slice(0, key.indexOf('|')), key.slice(key.indexOf('|') + 1)];
      if (kind === 'hosts') return net === networkId || nets.has(net);
      return kind === 'dvr' && isDvrServiced(deviceOwner) && nets.has(net);
    };
    for (const [key, answer] of this.bindingAnswers) {
      keep(this.bindingAnswers, key, Promise.all([answer, routed]).then(([hosts, nets]) => (gains(key, nets) && !hosts.includes(host) ? [...hosts, host] : hosts)));
    }
  }

  /** The networks of the distributed routers with an interface on any of `networkIds` (those included, when they have one). */
  private async routerNetworks(networkIds: string[]): Promise<Set<string>> {
    const rows = await this.k
      .selectFrom('ports as r')
      .innerJoin('ports as r2', 'r2.device_id', 'r.device_id')
      .select('r2.network_id')
      .distinct()
      .where('r.network_id', 'in', networkIds)
      .where('r.device_owner', '=', DEVICE_OWNER.routerInterfaceDistributed)
      .where('r2.device_owner', '=', DEVICE_OWNER.routerInterfaceDistributed)
      .execute();
    return new Set(rows.map((r) => r.network_id));
  }

  /**
   * The addresses of a security group's members (fixed IPs and allowed address pairs), per
   * family, sorted as ipsets list them: what every host with a port in a group that names it
   * as remote asks for after each member change. When remembering, read whole once and then
   * brought up to date port by port (the notifier names each port that changed).
   */
  memberIps(group: string): Promise<MemberIps> {
    return this.members.memberIps(group);
  }
  private readonly members: GroupMembers;

  /** A port's addresses, groups or pairs may have changed (without `portId`: any port's). */
  membersChanged(portId?: string): void {
    if (portId === undefined) this.members.clear(), this.groupHosts.clear();
    else this.members.portChanged(portId), this.groupHosts.portChanged(portId);
  }

  private async queryHostsOnNetwork(networkId: string): Promise<string[]> {
    const rows = await this.k.selectFrom('ports').select('binding_host_id').distinct().where('network_id', '=', networkId).where('binding_host_id', '!=', '').execute();
    const hosts = new Set(rows.map((r) => r.binding_host_id));
    const dvr = await this.k
      .selectFrom('ports as r')
      .innerJoin('ports as r2', 'r2.device_id', 'r.device_id')
      .innerJoin('ports as p', 'p.network_id', 'r2.network_id')
      .select('p.binding_host_id')
      .distinct()
      .where('r.network_id', '=', networkId)
      .where('r.device_owner', '=', DEVICE_OWNER.routerInterfaceDistributed)
      .where('r2.device_owner', '=', DEVICE_OWNER.routerInterfaceDistributed)
      .where('r2.network_id', '!=', networkId)
      .where('p.binding_host_id', '!=', '')
      .execute();
    for (const r of dvr) hosts.add(r.binding_host_id);
    return [...hosts];
  }

  /**
   * The hosts of the distributed routers with an interface on the network: Neutron binds
   * each qr- port of a distributed router on every host the router lives on (distributed
   * port bindings) and l2population makes each of those hosts a flooding peer of the
   * network. So a host with instances only on a router's VLAN (or another tunnel) network
   * still has a tunnel to the hosts it routes into this network for, and they to it.
   */
  async dvrPeers(networkId: string): Promise<string[]> {
    return [...(await this.keptDvrPeers(networkId))];
  }

  /** The remembered answer itself (the same array while it stands): not to be changed. */
  private keptDvrPeers(networkId: string): Promise<string[]> {
    return this.recall(this.bindingAnswers, `dvr|${networkId}`, () => this.queryDvrPeers(networkId));
  }

  private async queryDvrPeers(networkId: string): Promise<string[]> {
    const rows = await this.k
      .selectFrom('ports as r')
      .innerJoin('ports as r2', 'r2.device_id', 'r.device_id')
      .innerJoin('ports as p', 'p.network_id', 'r2.network_id')
      .select(['p.binding_host_id', 'p.device_owner'])
      .distinct()
      .where('r.network_id', '=', networkId)
      .where('r.device_owner', '=', DEVICE_OWNER.routerInterfaceDistributed)
      .where('r2.device_owner', '=', DEVICE_OWNER.routerInterfaceDistributed)
      .where('p.binding_host_id', '!=', '')
      .execute();
    return [...new Set(rows.filter((r) => isDvrServiced(r.device_owner)).map((r) => r.binding_host_id))];
  }

  /** Whether the host has an active port of its own on the network (one l2population announces). */
  async hasActivePort(networkId: string, host: string, exceptPort?: string): Promise<boolean> {
    let q = this.k
      .selectFrom('ports')
      .select('id')
      .where('network_id', '=', networkId)
      .where('binding_host_id', '=', host)
      .where('status', '=', 'ACTIVE')
      .where('device_owner', '!=', DEVICE_OWNER.routerInterfaceDistributed);
    if (exceptPort) q = q.where('id', '!=', exceptPort);
    return !!(await q.limit(1).executeTakeFirst());
  }

  /** Networks whose forwarding entries a host needs: where it has bound ports, and every network of a distributed router it hosts. */
  async networksOfHost(host: string): Promise<string[]> {
    const nets = new Set((await this.k.selectFrom('ports').select('network_id').distinct().where('binding_host_id', '=', host).execute()).map((n) => n.network_id));
    if (!nets.size) return [];
    for (const n of await this.routerNetworks([...nets])) nets.add(n);
    return [...nets];
  }

  /**
   * Ports l2population announces: bound, ACTIVE, and not a distributed router interface.
   * Remembered per network; a port of the network that changed is read again on the next
   * ask (`portsChanged`), everything when a network or subnet changes (`networksChanged`):
   * every host that joins a network asks for all of it, and at a thousand ports per network
   * the network's rows cost milliseconds where the changed port's cost microseconds.
   */
  private fdbPorts(networkId: string): Promise<FdbPortRow[]> {
    const dirty = this.fdbDirty.get(networkId);
    const kept = this.fdbRows.get(networkId);
    if (!this.opts.remember || !kept || !dirty) return this.recall(this.fdbRows, networkId, () => this.queryFdbPorts(networkId));
    this.fdbDirty.delete(networkId);
    return keep(
      this.fdbRows,
      networkId,
      kept.then(async (rows) => [...rows.filter((r) => !dirty.has(r.id)), ...(await this.queryFdbPorts(networkId, [...dirty]))].sort(byHostAndId)),
    );
  }

  private readonly fdbRows = new Map<string, Promise<FdbPortRow[]>>();
  /** Ports changed since the network's rows were kept, per network. */
  private readonly fdbDirty = new Map<string, Set<string>>();

  /** A port of this network was created, changed or deleted. */
  portsChanged(networkId: string, portId: string): void {
    if (this.fdbRows.has(networkId)) {
      let dirty = this.fdbDirty.get(networkId);
      if (!dirty) this.fdbDirty.set(networkId, (dirty = new Set()));
      dirty.add(portId);
    }
    // A subnet whose network is not known yet (its query is under way) is forgotten too.
    for (const subnet of this.subnetPorts.keys()) {
      const net = this.subnetNetworks.get(subnet);
      if (net === networkId || net === undefined) this.subnetPorts.delete(subnet);
    }
  }

  /** A network, subnet or router changed (segments, allocations, which ports are distributed router interfaces). */
  networksChanged(): void {
    this.segments.clear();
    this.fdbRows.clear();
    this.fdbDirty.clear();
    this.subnetPorts.clear();
    this.subnetNetworks.clear();
  }

  /**
   * What a DVR router's neighbour table of a subnet needs (`get_ports_by_subnet`): its bound
   * ports and the SNAT port, never the router's own interfaces. Remembered like `fdbPorts`:
   * every host the router comes to asks for each of its subnets.
   */
  portsBySubnet(subnetId: string): Promise<SubnetPortInfo[]> {
    return this.recall(this.subnetPorts, subnetId, () => this.queryPortsBySubnet(subnetId));
  }

  private readonly subnetPorts = new Map<string, Promise<SubnetPortInfo[]>>();
  /** The network of each subnet asked about (what `portsChanged` forgets by). */
  private readonly subnetNetworks = new Map<string, string>();

  private async queryPortsBySubnet(subnetId: string): Promise<SubnetPortInfo[]> {
    const subnet = await this.k.selectFrom('subnets').select('network_id').where('id', '=', subnetId).executeTakeFirst();
    if (subnet) this.subnetNetworks.set(subnetId, subnet.network_id);
    const rows = await this.k.selectFrom('ports as p').innerJoin('ipallocations as a', 'a.port_id', 'p.id').selectAll('p').where('a.subnet_id', '=', subnetId).execute();
    const infos = await this.portInfos(rows.filter((r) => !ROUTER_INTERFACE_OWNERS.includes(r.device_owner) && (r.binding_host_id || r.device_owner === DEVICE_OWNER.routerSnat)));
    return infos.map(({ subnets: _subnets, mtu: _mtu, ...port }) => port);
  }

  /** The network's announced ports (only `ids` among them, when given), by host and id. */
  private async queryFdbPorts(networkId: string, ids?: string[]): Promise<FdbPortRow[]> {
    let q = this.k
      .selectFrom('ports as p')
      .leftJoin('ipallocations as a', 'a.port_id', 'p.id')
      .select(['p.id', 'p.mac_address', 'p.binding_host_id', 'a.ip_address'])
      .where('p.network_id', '=', networkId)
      .where('p.binding_host_id', '!=', '')
      .where('p.status', '=', 'ACTIVE')
      .where('p.device_owner', '!=', DEVICE_OWNER.routerInterfaceDistributed);
    if (ids) q = q.where('p.id', 'in', ids);
    return (await q.execute()).sort(byHostAndId);
  }

  /**
   * The forwarding entries of a network as seen from `host`: every other host's tunnel
   * endpoint with its flood entry and its ports' [mac, ip], and a flood entry for every
   * other host of a distributed router on the network. Tunnel networks only.
   */
  async fdbFor(networkId: string, exceptHost?: string): Promise<FdbEntries> {
    const seg = await this.segment(networkId);
    if (!seg || !TUNNEL_TYPES.has(seg.network_type)) return {};
    const ports: Record<string, Array<[string, string]>> = {};
    for (const [host, ip, list] of await this.fdbLists(networkId)) {
      if (host === exceptHost) continue;
      // Two hosts on one tunnel address (a misconfiguration) share its list, as on the wire.
      ports[ip] = ports[ip] ? [...ports[ip], ...list.slice(1)] : list;
    }
    return Object.keys(ports).length ? { [networkId]: { network_type: seg.network_type, segment_id: seg.segmentation_id!, ports } } : {};
  }

  /**
   * A network's FDB entry list per host (the flooding entry, then the host's ports) with the
   * host's tunnel address, in host order. Made once per state of the network's rows, DVR peers
   * and tunnel addresses and shared by every host's answer (sent frozen): each host joining a
   * network asked for the whole network, and at a thousand hosts that was ten thousand entries
   * made per answer.
   */
  private async fdbLists(networkId: string): Promise<ReadonlyArray<[string, string, Array<[string, string]>]>> {
    const rows = await this.fdbPorts(networkId);
    const peers = await this.keptDvrPeers(networkId);
    const epoch = this.agentEpoch;
    const kept = this.fdbListsKept.get(networkId);
    if (kept && kept.rows === rows && kept.peers === peers && kept.epoch === epoch) return kept.lists;
    const ips = await this.ovsAgentIps([...rows.map((p) => p.binding_host_id), ...peers]);
    const byHost = new Map<string, Array<[string, string]>>();
    for (const p of rows) {
      if (!ips.has(p.binding_host_id)) continue;
      let list = byHost.get(p.binding_host_id);
      if (!list) byHost.set(p.binding_host_id, (list = [FLOODING_ENTRY]));
      list.push([p.mac_address, p.ip_address ?? '']);
    }
    for (const h of peers) if (ips.has(h) && !byHost.has(h)) byHost.set(h, [FLOODING_ENTRY]);
    // A host's list as made for the network's last state where it is the same: the hosts'
    // agents find the list they hold by identity instead of comparing and interning its content
    // (a network's rows change with every port that binds, and most hosts' lists do not).
    const before = new Map<string, Array<[string, string]>>();
    for (const [h, , list] of kept?.lists ?? []) before.set(h, list);
    const lists = [...byHost].map(([h, list]): [string, string, Array<[string, string]>] => {
      const old = before.get(h);
      return [h, ips.get(h)!, old && samePairs(old, list) ? old : list];
    });
    // Kept only if no agent changed meanwhile (the addresses may predate that), and only where answers are remembered.
    if (this.opts.remember && epoch === this.agentEpoch) this.fdbListsKept.set(networkId, { rows, peers, epoch, lists });
    return lists;
  }

  private readonly fdbListsKept = new Map<string, { rows: FdbPortRow[]; peers: string[]; epoch: number; lists: ReadonlyArray<[string, string, Array<[string, string]>]> }>();

  async routerInfo(r: RouterRow, host: string): Promise<RouterInfo> {
    const ports = await this.k.selectFrom('ports').selectAll().where('device_id', '=', r.id).execute();
    const infos = await this.portInfos(ports);
    const of = (owners: readonly string[]) => infos.filter((p) => owners.includes(p.device_owner));
    const gw = of([DEVICE_OWNER.routerGateway])[0] ?? null;
    const snatHost = (await this.p.dvr.snatHost(undefined, r.id)) ?? null;
    const fipRows = await this.k
      .selectFrom('floatingips as f')
      .innerJoin('ports as p', 'p.id', 'f.fixed_port_id')
      .select(['f.id', 'f.floating_ip_address', 'f.floating_network_id', 'f.fixed_ip_address', 'f.fixed_port_id', 'f.status', 'p.binding_host_id'])
      .where('f.router_id', '=', r.id)
      .$if(!!r.distributed, (q) => q.where('p.binding_host_id', '=', host))
      .execute();
    const fips: FloatingIpInfo[] = fipRows.map((f) => ({
      id: f.id,
      floating_ip_address: f.floating_ip_address,
      floating_network_id: f.floating_network_id,
      fixed_ip_address: f.fixed_ip_address!,
      port_id: f.fixed_port_id!,
      router_id: r.id,
      status: f.status,
      host: f.binding_host_id,
    }));
    let fg: PortInfo | null = null;
    if (r.distributed && gw) {
      const fgRow = await this.k
        .selectFrom('ports')
        .selectAll()
        .where('network_id', '=', gw.network_id)
        .where('device_owner', '=', DEVICE_OWNER.agentGateway)
        .where('binding_host_id', '=', host)
        .executeTakeFirst();
      if (fgRow) [fg] = await this.portInfos([fgRow]);
    }
    return {
      id: r.id,
      name: r.name,
      project_id: r.project_id,
      admin_state_up: b(r.admin_state_up),
      distributed: b(r.distributed),
      ha: false,
      enable_snat: b(r.enable_snat),
      routes: await this.k.selectFrom('routerroutes').select(['destination', 'nexthop']).where('router_id', '=', r.id).execute(),
      gw_port: gw,
      gw_port_host: snatHost,
      _interfaces: of(ROUTER_INTERFACE_OWNERS),
      _snat_router_interfaces: of([DEVICE_OWNER.routerSnat]),
      _floatingips: fips,
      fip_agent_gw_port: fg,
    };
  }

  /** Routers the L3 agent on `host` must run. */
  async routersForHost(host: string): Promise<RouterRow[]> {
    const routers = await this.k.selectFrom('routers').selectAll().execute();
    const distributed = await this.p.dvr.routersOnHost(undefined, host);
    const out: RouterRow[] = [];
    for (const r of routers) {
      if (r.distributed) {
        if (distributed.has(r.id)) out.push(r);
      } else if ((await this.p.dvr.snatHost(undefined, r.id)) === host) out.push(r);
    }
    return out;
  }

  async networkInfo(n: NetworkRow): Promise<NetworkInfo> {
    const subnets = await this.k.selectFrom('subnets').selectAll().where('network_id', '=', n.id).orderBy('created_at').orderBy('id').execute();
    const pools = subnets.length ? await this.k.selectFrom('ipallocationpools').selectAll().where('subnet_id', 'in', subnets.map((s) => s.id)).execute() : [];
    const ports = await this.k.selectFrom('ports').selectAll().where('network_id', '=', n.id).execute();
    return {
      id: n.id,
      project_id: n.project_id,
      name: n.name,
      admin_state_up: b(n.admin_state_up),
      mtu: n.mtu,
      segment: await this.segment(n.id),
      subnets: subnets.map((s) => this.subnetInfo(s, pools.filter((p) => p.subnet_id === s.id).map((p) => ({ start: p.first_ip, end: p.last_ip })))),
      ports: await this.portInfos(ports),
    };
  }

  async dhcpHosts(networkId: string): Promise<string[]> {
    const rows = await this.k
      .selectFrom('networkdhcpagentbindings as b')
      .innerJoin('agents as a', 'a.id', 'b.dhcp_agent_id')
      .select('a.host')
      .where('b.network_id', '=', networkId)
      .execute();
    return rows.map((r) => r.host);
  }

  /**
   * Hosts with ports in any of these groups, or whose ports' rules refer to them as remote.
   * Remembered until a group's rules change (`groupsChanged`); a port that changes in anything
   * but its status, binds or moves amends it (`membersChanged`, `portBound`, `bindingsChanged`).
   */
  async hostsForGroups(groups: string[]): Promise<string[]> {
    if (!groups.length) return [];
    return this.groupHosts.hostsFor(groups);
  }

  private readonly groupHosts: GroupHosts;

  /** A security group's rules changed or it was deleted. */
  groupsChanged(): void {
    this.groupHosts.clear();
  }
}

/** The same pairs in the same order. */
function samePairs(a: ReadonlyArray<readonly [string, string]>, b: ReadonlyArray<readonly [string, string]>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && (a[i][0] !== b[i][0] || a[i][1] !== b[i][1])) return false;
  return true;
}
