// The endpoints agents call (plugin_rpc, dvr_rpc, l3_rpc, dhcp_rpc, securitygroups_rpc,
// metadata): what a device, a router, a network or a security group looks like from one host.

import { DEVICE_OWNER, ROUTER_INTERFACE_OWNERS, isDvrServiced } from '../../common/constants.js';
import { inTransaction } from '../../db/tx.js';
import { type DeviceDetails, type FdbEntries, type SecurityGroupInfo, type ServerMethod, type ServerMethods } from '../../rpc/messages.js';
import { AGENT_TYPES } from '../agents.js';
import { adminContext } from '../context.js';
import type { CorePlugin } from '../plugin.js';
import { b } from '../util.js';
import type { AgentNotifier } from './notifier.js';
import { HostViews } from './views.js';
const ADMIN = adminContext();

type Endpoints = { [M in ServerMethod]: (args: ServerMethods[M][0]) => Promise<ServerMethods[M][1]> };

/** The endpoints agents call. */
export function serverEndpoints(p: CorePlugin, views: HostViews, notifier: AgentNotifier): Endpoints {
  const k = p.db.kysely;
  return {
    async report_state({ agent_state }) {
      await p.reportState(agent_state);
      if (agent_state.agent_type === AGENT_TYPES.ovs && agent_state.configurations?.enable_distributed_routing) {
        const had = await k.selectFrom('dvr_host_macs').select('host').where('host', '=', agent_state.host).executeTakeFirst();
        await p.dvr.hostMac(agent_state.host);
        if (!had) notifier.dvrMacsChanged();
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

    async update_device_list({ devices_up, devices_down, host }) {
      const out = { devices_up: [] as string[], devices_down: [] as string[], failed_devices_up: [] as string[], failed_devices_down: [] as string[] };
      for (const [devices, status, ok, failed] of [
        [devices_up, 'ACTIVE', out.devices_up, out.failed_devices_up],
        [devices_down, 'DOWN', out.devices_down, out.failed_devices_down],
      ] as const) {
        if (!devices.length) continue;
        const rows = await k.selectFrom('ports').select(['id', 'binding_host_id']).where('id', 'in', devices).execute();
        const bound = new Map(rows.map((r) => [r.id, r.binding_host_id]));
        for (const device of devices) {
          const h = bound.get(device);
          // Unknown, or reported from a host the port is not bound to (it moved): stale.
          if (h === undefined || (h && h !== host)) {
            failed.push(device);
            continue;
          }
          await p.ports.setStatus(device, status);
          ok.push(device);
        }
      }
      return out;
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
      for (const g of remotes) info.sg_member_ips[g] = await views.memberIps(g);
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
      return views.portsBySubnet(subnet_id);
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

