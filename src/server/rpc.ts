// The server's side of the agents' RPC: the endpoints agents call (what a device, a router,
// a network or a security group looks like from one host) and the notifier that pushes
// changes to exactly the hosts they concern. Views are computed from the database on every
// call, so an agent that missed or doubled a message heals by asking again.

import { DEVICE_OWNER, ROUTER_INTERFACE_OWNERS, isDvrServiced } from '../common/constants.js';
import type { Db } from '../db/connect.js';
import type { IpAllocationRow, NetworkRow, PortRow, RouterRow, SubnetRow } from '../db/schema.js';
import { inTransaction } from '../db/tx.js';
import {
  AGENT_TOPICS,
  FLOODING_ENTRY,
  SERVER_TOPICS,
  hostTopic,
  type AgentMethod,
  type AgentMethods,
  type DeviceDetails,
  type FdbEntries,
  type FloatingIpInfo,
  type NetworkInfo,
  type PortInfo,
  type RouterInfo,
  type SecurityGroupInfo,
  type ServerMethod,
  type ServerMethods,
  type SubnetInfo,
} from '../rpc/messages.js';
import type { Transport } from '../rpc/transport.js';
import { AGENT_TYPES, configOf } from './agents.js';
import { adminContext } from './context.js';
import type { ChangeEvent } from './events.js';
import { v4Range } from './ipam.js';
import type { CorePlugin } from './plugin.js';
import { b, chunks } from './util.js';

const ADMIN = adminContext();
const TUNNEL_TYPES = new Set(['vxlan', 'gre']);

type Endpoints = { [M in ServerMethod]: (args: ServerMethods[M][0]) => Promise<ServerMethods[M][1]> };

/** Read-side queries shared by the endpoints and the notifier. */
export class HostViews {
  constructor(private readonly p: CorePlugin) {}

  private get k() {
    return this.p.db.kysely;
  }

  async segment(networkId: string) {
    const s = await this.k.selectFrom('networksegments').selectAll().where('network_id', '=', networkId).orderBy('segment_index').executeTakeFirst();
    return s
      ? { network_type: s.network_type as DeviceDetails['network_type'], physical_network: s.physical_network || null, segmentation_id: s.segmentation_id }
      : null;
  }

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
    return ports.map((p) => {
      const mine = allocs.filter((a) => a.port_id === p.id);
      return {
        id: p.id,
        network_id: p.network_id,
        mac_address: p.mac_address,
        fixed_ips: mine.map((a) => ({ subnet_id: a.subnet_id, ip_address: a.ip_address, prefixlen: v4Range(byId.get(a.subnet_id)!.cidr).prefix })),
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

  /** Tunnel endpoints of the hosts' OVS agents, in one query. */
  async ovsAgentIps(hosts: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const part of chunks([...new Set(hosts)], 500)) {
      if (!part.length) continue;
      const rows = await this.k.selectFrom('agents').selectAll().where('agent_type', '=', AGENT_TYPES.ovs).where('host', 'in', part).execute();
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
    const dvr = await this.k
      .selectFrom('ports as r')
      .innerJoin('ports as r2', 'r2.device_id', 'r.device_id')
      .select('r2.network_id')
      .distinct()
      .where('r.network_id', 'in', [...nets])
      .where('r.device_owner', '=', DEVICE_OWNER.routerInterfaceDistributed)
      .where('r2.device_owner', '=', DEVICE_OWNER.routerInterfaceDistributed)
      .execute();
    for (const r of dvr) nets.add(r.network_id);
    return [...nets];
  }

  /** Ports l2population announces: bound, ACTIVE, and not a distributed router interface. */
  private async fdbPorts(networkId: string) {
    return this.k
      .selectFrom('ports as p')
      .leftJoin('ipallocations as a', 'a.port_id', 'p.id')
      .select(['p.id', 'p.mac_address', 'p.binding_host_id', 'a.ip_address'])
      .where('p.network_id', '=', networkId)
      .where('p.binding_host_id', '!=', '')
      .where('p.status', '=', 'ACTIVE')
      .where('p.device_owner', '!=', DEVICE_OWNER.routerInterfaceDistributed)
      .execute();
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
    const rows = (await this.fdbPorts(networkId)).filter((p) => p.binding_host_id !== exceptHost);
    const peers = (await this.dvrPeers(networkId)).filter((h) => h !== exceptHost);
    const ips = await this.ovsAgentIps([...rows.map((p) => p.binding_host_id), ...peers]);
    for (const p of rows) {
      const ip = ips.get(p.binding_host_id);
      if (!ip) continue;
      ports[ip] ??= [FLOODING_ENTRY];
      ports[ip].push([p.mac_address, p.ip_address ?? '']);
    }
    for (const h of peers) {
      const ip = ips.get(h);
      if (ip) ports[ip] ??= [FLOODING_ENTRY];
    }
    return Object.keys(ports).length ? { [networkId]: { network_type: seg.network_type, segment_id: seg.segmentation_id!, ports } } : {};
  }

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
      .execute();
    const fips: FloatingIpInfo[] = fipRows
      .filter((f) => !r.distributed || f.binding_host_id === host)
      .map((f) => ({
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
    const out: RouterRow[] = [];
    for (const r of routers) {
      if (r.distributed) {
        if ((await this.p.dvr.routerHosts(undefined, r.id)).includes(host)) out.push(r);
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

  /** Hosts with ports in any of these groups, or whose ports' rules refer to them as remote. */
  async hostsForGroups(groups: string[]): Promise<string[]> {
    if (!groups.length) return [];
    const referencing = await this.k.selectFrom('securitygrouprules').select('security_group_id').where('remote_group_id', 'in', groups).execute();
    const all = [...new Set([...groups, ...referencing.map((r) => r.security_group_id)])];
    const rows = await this.k
      .selectFrom('securitygroupportbindings as g')
      .innerJoin('ports as p', 'p.id', 'g.port_id')
      .select('p.binding_host_id')
      .distinct()
      .where('g.security_group_id', 'in', all)
      .where('p.binding_host_id', '!=', '')
      .execute();
    return rows.map((r) => r.binding_host_id);
  }
}

/** The endpoints agents call. */
export function serverEndpoints(p: CorePlugin, views: HostViews, notifier: AgentNotifier): Endpoints {
  const k = p.db.kysely;
  return {
    async report_state({ agent_state }) {
      const before = await p.dvr.hostMacs();
      await p.reportState(agent_state);
      if (agent_state.agent_type === AGENT_TYPES.ovs && agent_state.configurations?.enable_distributed_routing) {
        await p.dvr.hostMac(agent_state.host);
        const after = await p.dvr.hostMacs();
        if (after.length !== before.length) await notifier.fanout(AGENT_TOPICS.ovs, 'dvr_mac_address_update', { dvr_macs: after });
      }
      return { status: 'alive' };
    },

    async get_devices_details_list({ devices }) {
      const rows = devices.length ? await k.selectFrom('ports').selectAll().where('id', 'in', devices).execute() : [];
      const out: DeviceDetails[] = [];
      for (const row of rows) {
        const view = await p.ports.get(ADMIN, row.id);
        const seg = await views.segment(row.network_id);
        const net = await k.selectFrom('networks').select('mtu').where('id', '=', row.network_id).executeTakeFirstOrThrow();
        out.push({
          device: row.id,
          port_id: row.id,
          mac_address: row.mac_address,
          admin_state_up: b(row.admin_state_up),
          network_id: row.network_id,
          network_type: seg!.network_type,
          physical_network: seg!.physical_network,
          segmentation_id: seg!.segmentation_id,
          fixed_ips: view.fixed_ips,
          device_owner: row.device_owner,
          device_id: row.device_id,
          port_security_enabled: b(row.port_security_enabled),
          security_groups: view.security_groups,
          allowed_address_pairs: view.allowed_address_pairs,
          mtu: net.mtu,
          status: row.status,
        });
      }
      return out;
    },

    async get_devices_on_host({ host }) {
      return (await k.selectFrom('ports').select('id').where('binding_host_id', '=', host).execute()).map((r) => r.id);
    },

    async update_device_up({ device, host }) {
      const port = await k.selectFrom('ports').select(['binding_host_id']).where('id', '=', device).executeTakeFirst();
      // A report from a host the port is not bound to is stale (the port moved): ignore it.
      if (!port || (port.binding_host_id && port.binding_host_id !== host)) return { ok: false };
      await p.ports.setStatus(device, 'ACTIVE');
      return { ok: true };
    },

    async update_device_down({ device, host }) {
      const port = await k.selectFrom('ports').select(['binding_host_id']).where('id', '=', device).executeTakeFirst();
      if (!port || (port.binding_host_id && port.binding_host_id !== host)) return { ok: false };
      await p.ports.setStatus(device, 'DOWN');
      return { ok: true };
    },

    async get_dvr_mac_address_by_host({ host }) {
      return { host, mac_address: await p.dvr.hostMac(host) };
    },

    async get_dvr_mac_address_list() {
      return p.dvr.hostMacs();
    },

    async get_ports_on_host_by_subnet({ host, subnet }) {
      const rows = await k
        .selectFrom('ports as p')
        .innerJoin('ipallocations as a', 'a.port_id', 'p.id')
        .selectAll('p')
        .where('a.subnet_id', '=', subnet)
        .where('p.binding_host_id', '=', host)
        .execute();
      return views.portInfos(rows.filter((r) => isDvrServiced(r.device_owner) || r.device_owner === DEVICE_OWNER.routerSnat));
    },

    async get_subnet_for_dvr({ subnet }) {
      const s = await k.selectFrom('subnets').selectAll().where('id', '=', subnet).executeTakeFirst();
      if (!s) return null;
      const gw = s.gateway_ip
        ? await k
            .selectFrom('ports as p')
            .innerJoin('ipallocations as a', 'a.port_id', 'p.id')
            .select('p.mac_address')
            .where('a.subnet_id', '=', subnet)
            .where('a.ip_address', '=', s.gateway_ip)
            .where('p.device_owner', 'in', ROUTER_INTERFACE_OWNERS as string[])
            .executeTakeFirst()
        : undefined;
      return { ...views.subnetInfo(s), gateway_mac: gw?.mac_address ?? null };
    },

    async get_fdb_entries({ host }) {
      const out: FdbEntries = {};
      for (const n of await views.networksOfHost(host)) Object.assign(out, await views.fdbFor(n, host));
      return out;
    },

    async security_group_info_for_devices({ devices }) {
      const info: SecurityGroupInfo = { devices: {}, security_groups: {}, sg_member_ips: {} };
      if (!devices.length) return info;
      for (const port of await p.ports.list(ADMIN, { filters: { id: devices }, sort: [] })) {
        info.devices[port.id] = {
          id: port.id,
          mac_address: port.mac_address,
          fixed_ips: port.fixed_ips.map((f) => f.ip_address),
          allowed_address_pairs: port.allowed_address_pairs,
          security_groups: port.security_groups,
          port_security_enabled: port.port_security_enabled,
          device_owner: port.device_owner,
          network_id: port.network_id,
        };
        for (const sg of port.security_groups) info.security_groups[sg] ??= [];
      }
      const groups = Object.keys(info.security_groups);
      const rules = groups.length ? await k.selectFrom('securitygrouprules').selectAll().where('security_group_id', 'in', groups).execute() : [];
      for (const r of rules)
        info.security_groups[r.security_group_id].push({
          id: r.id,
          security_group_id: r.security_group_id,
          direction: r.direction as 'ingress' | 'egress',
          ethertype: r.ethertype as 'IPv4' | 'IPv6',
          protocol: r.protocol,
          port_range_min: r.port_range_min,
          port_range_max: r.port_range_max,
          remote_ip_prefix: r.remote_ip_prefix,
          remote_group_id: r.remote_group_id,
        });
      const remotes = [...new Set(rules.map((r) => r.remote_group_id).filter((x): x is string => !!x))];
      for (const g of remotes) info.sg_member_ips[g] = { IPv4: [], IPv6: [] };
      if (remotes.length) {
        const members = await k
          .selectFrom('securitygroupportbindings as g')
          .innerJoin('ipallocations as a', 'a.port_id', 'g.port_id')
          .select(['g.security_group_id', 'a.ip_address'])
          .where('g.security_group_id', 'in', remotes)
          .execute();
        for (const m of members) info.sg_member_ips[m.security_group_id][m.ip_address.includes(':') ? 'IPv6' : 'IPv4'].push(m.ip_address);
        const pairs = await k
          .selectFrom('securitygroupportbindings as g')
          .innerJoin('allowedaddresspairs as aap', 'aap.port_id', 'g.port_id')
          .select(['g.security_group_id', 'aap.ip_address'])
          .where('g.security_group_id', 'in', remotes)
          .execute();
        for (const m of pairs) info.sg_member_ips[m.security_group_id][m.ip_address.includes(':') ? 'IPv6' : 'IPv4'].push(m.ip_address);
        for (const g of remotes) for (const fam of ['IPv4', 'IPv6'] as const) info.sg_member_ips[g][fam] = [...new Set(info.sg_member_ips[g][fam])].sort();
      }
      return info;
    },

    async sync_routers({ host, router_ids }) {
      let routers = await views.routersForHost(host);
      if (router_ids) routers = routers.filter((r) => router_ids.includes(r.id));
      return Promise.all(routers.map((r) => views.routerInfo(r, host)));
    },

    async get_agent_gateway_port({ network_id, host }) {
      const port = await inTransaction(p.db, (tx) => p.dvr.ensureFipGatewayPort(tx, network_id, host));
      return port ? (await views.portInfos([port]))[0] : null;
    },

    async get_ports_by_subnet({ subnet_id }) {
      const rows = await k
        .selectFrom('ports as p')
        .innerJoin('ipallocations as a', 'a.port_id', 'p.id')
        .selectAll('p')
        .where('a.subnet_id', '=', subnet_id)
        .execute();
      // What a DVR router's neighbour table needs: bound ports and the SNAT port, never the
      // router's own interfaces.
      return views.portInfos(rows.filter((r) => !ROUTER_INTERFACE_OWNERS.includes(r.device_owner) && (r.binding_host_id || r.device_owner === DEVICE_OWNER.routerSnat)));
    },

    async update_floatingip_statuses({ fip_statuses }) {
      await p.floatingIps.setStatuses(fip_statuses);
      return { ok: true };
    },

    async get_active_networks_info({ host }) {
      const nets = await k
        .selectFrom('networkdhcpagentbindings as b')
        .innerJoin('agents as a', 'a.id', 'b.dhcp_agent_id')
        .innerJoin('networks as n', 'n.id', 'b.network_id')
        .selectAll('n')
        .where('a.host', '=', host)
        .execute();
      return Promise.all(nets.map((n) => views.networkInfo(n)));
    },

    async get_network_info({ network_id }) {
      const n = await k.selectFrom('networks').selectAll().where('id', '=', network_id).executeTakeFirst();
      return n ? views.networkInfo(n) : null;
    },

    async create_dhcp_port({ host, network_id, device_id, fixed_ips }) {
      const have = await k.selectFrom('ports').selectAll().where('network_id', '=', network_id).where('device_id', '=', device_id).executeTakeFirst();
      if (have) {
        if (have.binding_host_id !== host) await p.ports.update(ADMIN, have.id, { 'binding:host_id': host });
        return (await views.portInfos([await k.selectFrom('ports').selectAll().where('id', '=', have.id).executeTakeFirstOrThrow()]))[0];
      }
      const net = await k.selectFrom('networks').select('project_id').where('id', '=', network_id).executeTakeFirstOrThrow();
      const [port] = await p.ports.createBulk(ADMIN, [
        { project_id: net.project_id, network_id, device_id, device_owner: DEVICE_OWNER.dhcp, fixed_ips, 'binding:host_id': host },
      ]);
      return (await views.portInfos([await k.selectFrom('ports').selectAll().where('id', '=', port.id).executeTakeFirstOrThrow()]))[0];
    },

    async release_dhcp_port({ network_id, device_id }) {
      const ports = await k.selectFrom('ports').select('id').where('network_id', '=', network_id).where('device_id', '=', device_id).execute();
      for (const port of ports) await p.ports.delete(ADMIN, port.id);
      return { ok: true };
    },

    async get_port_by_ip({ ip_address, network_id, router_id }) {
      let nets: string[] | undefined = network_id ? [network_id] : undefined;
      if (router_id) nets = (await p.dvr.interfaceSubnets(undefined, router_id)).map((s) => s.network_id);
      let qb = k
        .selectFrom('ports as p')
        .innerJoin('ipallocations as a', 'a.port_id', 'p.id')
        .select(['p.id', 'p.device_id', 'p.project_id', 'p.network_id', 'p.device_owner'])
        .where('a.ip_address', '=', ip_address);
      if (nets) qb = nets.length ? qb.where('p.network_id', 'in', nets) : qb.where('p.id', '=', '');
      const row = (await qb.execute()).find((r) => r.device_owner.startsWith('compute:'));
      return row ? { port_id: row.id, device_id: row.device_id, project_id: row.project_id, network_id: row.network_id } : null;
    },
  };
}

/**
 * Pushes changes to the agents they concern. Host-scoped casts go to `<topic>.<host>`;
 * only DVR MAC updates and DVR ARP entries fan out (as Neutron does), and routers unknown
 * to an agent are ignored there.
 */
export class AgentNotifier {
  constructor(
    private readonly p: CorePlugin,
    private readonly views: HostViews,
    private readonly transport: Transport,
  ) {}

  /**
   * Casts and fanouts wait in an outbox until the current burst of changes has been handled
   * (the next turn of the event loop), then go out in order. A bulk create or a host
   * reporting many ports up thus sends each host one add_fdb_entries with every new entry
   * (adjacent ones to the same host merge) and one copy of each resync trigger, instead of
   * one message per port and per host (the notifier's fan-out dominated convergence).
   */
  private outbox: Array<{ kind: 'cast' | 'fanout'; topic: string; method: AgentMethod; args: any; key?: string }> = [];
  private queued = new Set<string>();
  private flushing?: Promise<void>;

  async cast<M extends AgentMethod>(base: string, host: string, method: M, args: AgentMethods[M]) {
    this.enqueue('cast', hostTopic(base, host), method, args);
  }

  async fanout<M extends AgentMethod>(base: string, method: M, args: AgentMethods[M]) {
    this.enqueue('fanout', base, method, args);
  }

  private enqueue(kind: 'cast' | 'fanout', topic: string, method: AgentMethod, args: any) {
    const tk = `${kind}|${topic}`;
    if (method === 'add_fdb_entries' || method === 'remove_fdb_entries') {
      // Merge into the topic's last stateful message when it is of the same kind (order
      // kept: resync triggers in between commute with FDB casts, a full pass rebuilds the FDB).
      const last = this.lastFdb.get(tk);
      if (last && last.method === method) {
        last.args = { fdb_entries: mergeFdb(last.args.fdb_entries, args.fdb_entries) };
        return;
      }
      const m = { kind, topic, method, args: { fdb_entries: mergeFdb({}, args.fdb_entries) } };
      this.outbox.push(m);
      this.bump(kind, topic);
      this.lastFdb.set(tk, m);
    } else if (RESYNC_TRIGGERS.has(method)) {
      // A pure "look again" message: a copy already queued since the topic's last stateful
      // message is as good (router removals count as stateful: an update after one must stay).
      const key = `${kind}|${topic}|${method}|${JSON.stringify(args)}|${this.epochs.get(`${kind}|${topic}`) ?? 0}`;
      if (this.queued.has(key)) return;
      this.queued.add(key);
      this.outbox.push({ kind, topic, method, args, key });
      if (method === 'router_removed_from_agent') this.bump(kind, topic);
    } else {
      this.outbox.push({ kind, topic, method, args });
      this.bump(kind, topic);
      this.lastFdb.delete(tk);
    }
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.send());
  }

  private epochs = new Map<string, number>();
  /** Per topic, its last queued stateful message when that is an FDB cast (what the next FDB cast merges into). */
  private lastFdb = new Map<string, { method: AgentMethod; args: any }>();
  private bump(kind: string, topic: string) {
    const k = `${kind}|${topic}`;
    this.epochs.set(k, (this.epochs.get(k) ?? 0) + 1);
  }

  private async send(): Promise<void> {
    const batch = this.outbox;
    this.outbox = [];
    this.queued = new Set();
    this.epochs = new Map();
    this.lastFdb = new Map();
    this.flushing = undefined;
    const sent: Promise<void>[] = [];
    for (const m of batch) {
      const p = m.kind === 'cast' ? this.transport.cast(m.topic, m.method, m.args) : this.transport.fanout(m.topic, m.method, m.args);
      sent.push(p.catch((err) => console.error(`${m.kind} ${m.method} to ${m.topic} failed:`, err)));
    }
    await Promise.all(sent);
  }

  private async l3Hosts(hosts: string[]) {
    const l3 = await this.p.agents.usable(undefined, AGENT_TYPES.l3);
    return hosts.filter((h) => l3.some((a) => a.host === h));
  }

  async routersUpdated(routerIds: string[], hosts?: string[]) {
    for (const id of routerIds) {
      const targets = hosts ?? (await this.p.dvr.routerHosts(undefined, id));
      for (const h of await this.l3Hosts(targets)) await this.cast(AGENT_TOPICS.l3, h, 'routers_updated', { routers: [id] });
    }
  }

  private async routersOnSubnets(subnets: string[]): Promise<string[]> {
    if (!subnets.length) return [];
    const rows = await this.p.db.kysely
      .selectFrom('ports as p')
      .innerJoin('ipallocations as a', 'a.port_id', 'p.id')
      .select('p.device_id')
      .distinct()
      .where('a.subnet_id', 'in', subnets)
      .where('p.device_owner', 'in', ROUTER_INTERFACE_OWNERS as string[])
      .execute();
    return rows.map((r) => r.device_id);
  }

  async handle(e: ChangeEvent): Promise<void> {
    switch (e.kind) {
      case 'port':
        return this.portChanged(e.before, e.after, e.fixedIps, e.securityGroups);
      case 'network': {
        if (e.op === 'create') return;
        for (const h of e.dhcpHosts ?? (await this.views.dhcpHosts(e.network.id)))
          await this.cast(AGENT_TOPICS.dhcp, h, e.op === 'delete' ? 'network_delete_end' : 'network_update_end', { network_id: e.network.id });
        for (const h of await this.views.hostsOnNetwork(e.network.id)) await this.cast(AGENT_TOPICS.ovs, h, 'network_update', { network_id: e.network.id });
        return;
      }
      case 'subnet': {
        for (const h of await this.views.dhcpHosts(e.subnet.network_id)) await this.cast(AGENT_TOPICS.dhcp, h, 'network_update_end', { network_id: e.subnet.network_id });
        await this.routersUpdated(await this.routersOnSubnets([e.subnet.id]));
        return;
      }
      case 'security_group': {
        for (const h of await this.views.hostsForGroups([e.id])) await this.cast(AGENT_TOPICS.ovs, h, 'security_groups_rule_updated', { security_groups: [e.id] });
        return;
      }
      case 'router':
        if (e.op === 'delete') {
          for (const h of await this.l3Hosts(e.hosts)) await this.cast(AGENT_TOPICS.l3, h, 'router_removed_from_agent', { router_id: e.id });
          return;
        }
        return this.routersUpdated([e.id], [...new Set([...e.hosts, ...(await this.p.dvr.routerHosts(undefined, e.id))])]);
      case 'floatingip':
        return this.routersUpdated(e.routerIds);
      case 'agent':
        return;
    }
  }

  private async fixedIps(port: PortRow) {
    return this.p.db.kysely.selectFrom('ipallocations').select(['subnet_id', 'ip_address']).where('port_id', '=', port.id).execute();
  }

  private async portChanged(
    before: PortRow | undefined,
    after: PortRow | undefined,
    deletedIps: Array<{ subnet_id: string; ip_address: string }> = [],
    deletedGroups: string[] = [],
  ) {
    const port = (after ?? before)!;
    const oldHost = before?.binding_host_id ?? '';
    const newHost = after?.binding_host_id ?? '';
    // The OVS agents of the hosts involved.
    if (after && newHost) await this.cast(AGENT_TOPICS.ovs, newHost, 'port_update', { port_id: port.id, network_id: port.network_id });
    if (oldHost && oldHost !== newHost) await this.cast(AGENT_TOPICS.ovs, oldHost, 'port_delete', { port_id: port.id });
    // l2population: a port that became ACTIVE on a host is announced to the network's
    // other hosts, and that host learns the whole network; one that left is withdrawn.
    const wasActive = before?.status === 'ACTIVE' && !!oldHost;
    const isActive = after?.status === 'ACTIVE' && !!newHost;
    if (port.device_owner !== DEVICE_OWNER.routerInterfaceDistributed && (wasActive !== isActive || (isActive && oldHost !== newHost))) {
      if (wasActive) await this.l2popRemove(before!, oldHost);
      if (isActive) await this.l2popAdd(after!, newHost);
    }
    // DHCP agents of the network.
    for (const h of await this.views.dhcpHosts(port.network_id))
      await this.cast(AGENT_TOPICS.dhcp, h, after ? 'port_update_end' : 'port_delete_end', { port_id: port.id, network_id: port.network_id });
    // Distributed routers: where a served port appears or goes, the router follows, and
    // every host of the router learns its address through an ARP entry.
    if (isDvrServiced(port.device_owner) && oldHost !== newHost) {
      const ips = after ? await this.fixedIps(after) : deletedIps;
      const routers = await this.routersOnSubnets(ips.map((x) => x.subnet_id));
      // Only the hosts the port arrives on and leaves need the router re-synced; the
      // others learn the address from the ARP entry fanned out below (Neutron does the same).
      await this.routersUpdated(routers, [newHost, oldHost].filter((h) => !!h));
      await this.dvrPeersMoved(routers, newHost, oldHost, port.id);
      for (const r of routers)
        for (const ip of ips)
          await this.fanout(AGENT_TOPICS.l3, after ? 'add_arp_entry' : 'del_arp_entry', { router_id: r, arp_table: { ip_address: ip.ip_address, mac_address: port.mac_address, subnet_id: ip.subnet_id } });
    }
    // Security groups whose members changed: only a bound port's address matters to the
    // hosts' ipsets (an unbound port is announced when it binds).
    if ((!before || !after || oldHost !== newHost) && (oldHost || newHost)) {
      const groups = after
        ? (await this.p.db.kysely.selectFrom('securitygroupportbindings').select('security_group_id').where('port_id', '=', port.id).execute()).map((g) => g.security_group_id)
        : deletedGroups;
      for (const h of await this.views.hostsForGroups(groups)) await this.cast(AGENT_TOPICS.ovs, h, 'security_groups_member_updated', { security_groups: groups });
    }
  }

  private async l2popAdd(port: PortRow, host: string) {
    const seg = await this.views.segment(port.network_id);
    if (!seg || !TUNNEL_TYPES.has(seg.network_type)) return;
    const ip = await this.views.ovsAgentIp(host);
    if (!ip) return;
    const addr = (await this.fixedIps(port))[0]?.ip_address ?? '';
    const announce: FdbEntries = { [port.network_id]: { network_type: seg.network_type, segment_id: seg.segmentation_id!, ports: { [ip]: [FLOODING_ENTRY, [port.mac_address, addr]] } } };
    for (const h of await this.views.hostsOnNetwork(port.network_id)) if (h !== host) await this.cast(AGENT_TOPICS.ovs, h, 'add_fdb_entries', { fdb_entries: announce });
    // The host learns the whole network with its first active port there (as Neutron's
    // l2pop does); later ports add nothing it was not told already.
    const others = await this.p.db.kysely
      .selectFrom('ports')
      .select('id')
      .where('network_id', '=', port.network_id)
      .where('binding_host_id', '=', host)
      .where('status', '=', 'ACTIVE')
      .where('device_owner', '!=', DEVICE_OWNER.routerInterfaceDistributed)
      .where('id', '!=', port.id)
      .limit(1)
      .executeTakeFirst();
    if (others) return;
    const full = await this.views.fdbFor(port.network_id, host);
    if (Object.keys(full).length) await this.cast(AGENT_TOPICS.ovs, host, 'add_fdb_entries', { fdb_entries: full });
  }

  /**
   * A served port arrived on or left a host: the host may have become, or stopped being, a
   * host of the distributed routers on the port's subnets, and so a flooding peer on their
   * tunnel networks (in Neutron, the qr- port's distributed binding on that host going
   * ACTIVE or away). The other hosts on each network hear of it; the host itself learns
   * its networks on its own full pass (the port_update above).
   */
  private async dvrPeersMoved(routerIds: string[], newHost: string, oldHost: string, portId: string) {
    const nets = new Set<string>();
    for (const r of routerIds) for (const s of await this.p.dvr.interfaceSubnets(undefined, r)) nets.add(s.network_id);
    if (!nets.size) return;
    // A host with another served port on the routers' networks was, and stays, a peer on all
    // of them: nothing moved (the common case, and the per-network queries below are O(ports)).
    const servedElsewhere = async (host: string) =>
      !!host &&
      (
        await this.p.db.kysely
          .selectFrom('ports')
          .select('device_owner')
          .where('binding_host_id', '=', host)
          .where('network_id', 'in', [...nets])
          .where('id', '!=', portId)
          .execute()
      ).some((r) => isDvrServiced(r.device_owner));
    if ((await servedElsewhere(newHost)) || !newHost) newHost = '';
    if ((await servedElsewhere(oldHost)) || !oldHost) oldHost = '';
    if (!newHost && !oldHost) return;
    for (const net of nets) {
      const seg = await this.views.segment(net);
      if (!seg || !TUNNEL_TYPES.has(seg.network_type)) continue;
      const peers = new Set(await this.views.dvrPeers(net));
      for (const [host, add] of [[newHost, true], [oldHost, false]] as const) {
        if (!host || peers.has(host) !== add) continue;
        if (!add && (await this.views.hasActivePort(net, host))) continue;
        const ip = await this.views.ovsAgentIp(host);
        if (!ip) continue;
        const fdb: FdbEntries = { [net]: { network_type: seg.network_type, segment_id: seg.segmentation_id!, ports: { [ip]: [FLOODING_ENTRY] } } };
        for (const h of await this.views.hostsOnNetwork(net)) if (h !== host) await this.cast(AGENT_TOPICS.ovs, h, add ? 'add_fdb_entries' : 'remove_fdb_entries', { fdb_entries: fdb });
      }
    }
  }

  private async l2popRemove(port: PortRow, host: string) {
    const seg = await this.views.segment(port.network_id);
    if (!seg || !TUNNEL_TYPES.has(seg.network_type)) return;
    const ip = await this.views.ovsAgentIp(host);
    if (!ip) return;
    const addr = (await this.p.db.kysely.selectFrom('ipallocations').select('ip_address').where('port_id', '=', port.id).executeTakeFirst())?.ip_address ?? '';
    // The flood entry goes too when this was the host's last active port on the network.
    const stillThere = await this.p.db.kysely
      .selectFrom('ports')
      .select('id')
      .where('network_id', '=', port.network_id)
      .where('binding_host_id', '=', host)
      .where('status', '=', 'ACTIVE')
      .where('id', '!=', port.id)
      .limit(1)
      .executeTakeFirst();
    // A host of a distributed router on the network stays a flooding peer without ports of its own.
    const keepFlood = !!stillThere || (await this.views.dvrPeers(port.network_id)).includes(host);
    const entries: Array<[string, string]> = keepFlood ? [[port.mac_address, addr]] : [FLOODING_ENTRY, [port.mac_address, addr]];
    const withdraw: FdbEntries = { [port.network_id]: { network_type: seg.network_type, segment_id: seg.segmentation_id!, ports: { [ip]: entries } } };
    for (const h of await this.views.hostsOnNetwork(port.network_id)) if (h !== host) await this.cast(AGENT_TOPICS.ovs, h, 'remove_fdb_entries', { fdb_entries: withdraw });
  }
}

/** Casts whose only effect is that the agent looks again (identical copies in one burst are redundant). */
const RESYNC_TRIGGERS: ReadonlySet<AgentMethod> = new Set<AgentMethod>([
  'port_update',
  'port_delete',
  'network_update',
  'security_groups_rule_updated',
  'security_groups_member_updated',
  'routers_updated',
  'router_removed_from_agent',
  'network_update_end',
  'network_delete_end',
  'port_update_end',
  'port_delete_end',
]);

/** Two add (or two remove) FDB messages as one: entries per network and tunnel endpoint, each pair once. */
function mergeFdb(into: FdbEntries, more: FdbEntries): FdbEntries {
  const out: FdbEntries = { ...into };
  for (const [net, e] of Object.entries(more)) {
    const old = out[net];
    const ports: Record<string, Array<[string, string]>> = { ...(old?.ports ?? {}) };
    for (const [ip, entries] of Object.entries(e.ports)) {
      const list = [...(ports[ip] ?? [])];
      const seen = new Set(list.map((x) => `${x[0]}|${x[1]}`));
      for (const x of entries) if (!seen.has(`${x[0]}|${x[1]}`)) (seen.add(`${x[0]}|${x[1]}`), list.push(x));
      ports[ip] = list;
    }
    out[net] = { network_type: e.network_type, segment_id: e.segment_id, ports };
  }
  return out;
}

/** Serve the server's endpoints on its topics and push changes to agents. */
export async function startServerRpc(p: CorePlugin, transport: Transport): Promise<() => Promise<void>> {
  const views = new HostViews(p);
  const notifier = new AgentNotifier(p, views, transport);
  const endpoints = serverEndpoints(p, views, notifier);
  const handlers = endpoints as unknown as Record<string, (args: any) => unknown>;
  const stops = [
    await transport.serve(SERVER_TOPICS.plugin, handlers),
    await transport.serve(SERVER_TOPICS.reports, { report_state: handlers.report_state }),
    await transport.serve(SERVER_TOPICS.l3, handlers),
  ];
  const off = p.events.on((e) => notifier.handle(e));
  return async () => {
    off();
    for (const s of stops) await s();
  };
}
