// Routers (Neutron's l3_db + l3_dvr_db): create/update/delete, interfaces by subnet or by
// port, the external gateway, extra routes; distributed by default when router_distributed.
// Every change that moves ports keeps the DVR bookkeeping (SNAT ports, scheduling) in step
// inside the same transaction.

import { DEVICE_OWNER, ROUTER_INTERFACE_OWNERS, ROUTER_PORT_OWNERS } from '../../common/constants.js';
import { Faults, NeutronError } from '../../common/errors.js';
import type { ServerConfig } from '../../config/server.js';
import type { Db } from '../../db/connect.js';
import type { PortRow, RouterRow } from '../../db/schema.js';
import { inTransaction, type Tx } from '../../db/tx.js';
import { adminContext, type RequestContext } from '../context.js';
import type { Events } from '../events.js';
import { cidrContains, cidrsOverlap } from '../ipam.js';
import { boolColumn, listRows, type Columns, type ListQuery } from '../listing.js';
import { checkOwner } from '../policy.js';
import type { PortService } from '../ports.js';
import { b, chunks, i, stdCreate, stdView, timestamp } from '../util.js';
import type { DvrService } from './dvr.js';
import type { Scheduler } from './scheduler.js';

const ADMIN = adminContext();

export interface GatewayInfo {
  network_id: string;
  enable_snat?: boolean;
  external_fixed_ips?: Array<{ subnet_id?: string; ip_address?: string }>;
}

export interface Route {
  destination: string;
  nexthop: string;
}

export interface RouterCreate {
  project_id: string;
  name?: string;
  description?: string;
  admin_state_up?: boolean;
  distributed?: boolean;
  ha?: boolean;
  external_gateway_info?: GatewayInfo | null;
}

export interface RouterUpdate {
  name?: string;
  description?: string;
  admin_state_up?: boolean;
  distributed?: boolean;
  ha?: boolean;
  external_gateway_info?: GatewayInfo | Record<string, never> | null;
  routes?: Route[];
}

export interface InterfaceInfo {
  subnet_id?: string;
  port_id?: string;
}

export const badRouter = (msg: string) => new NeutronError('BadRequest', 400, `Bad router request: ${msg}.`);
export const routerNotFound = (id: string) => new NeutronError('RouterNotFound', 404, `Router ${id} could not be found`);

const COLUMNS: Columns = {
  id: { col: 'r.id' },
  name: { col: 'r.name' },
  description: { col: 'r.description' },
  project_id: { col: 'r.project_id' },
  tenant_id: { col: 'r.project_id' },
  status: { col: 'r.status' },
  admin_state_up: boolColumn('r.admin_state_up'),
  distributed: boolColumn('r.distributed'),
  ha: boolColumn('r.ha'),
  revision_number: { col: 'r.revision_number' },
  created_at: { col: 'r.created_at' },
  updated_at: { col: 'r.updated_at' },
};

const visible = (qb: any, ctx: RequestContext) => (ctx.isAdmin ? qb : qb.where('r.project_id', '=', ctx.projectId));

export type RouterView = ReturnType<typeof view>;

function view(r: RouterRow, gw: { network_id: string; ips: Array<{ subnet_id: string; ip_address: string }> } | undefined, routes: Route[]) {
  return {
    ...stdView(r),
    admin_state_up: b(r.admin_state_up),
    status: r.status,
    external_gateway_info: gw
      ? { network_id: gw.network_id, enable_snat: b(r.enable_snat), external_fixed_ips: gw.ips }
      : null,
    routes,
    distributed: b(r.distributed),
    ha: b(r.ha),
    availability_zone_hints: [] as string[],
    availability_zones: [] as string[],
    flavor_id: null,
    tags: [] as string[],
  };
}

export class RouterService {
  constructor(
    private readonly db: Db,
    private readonly conf: ServerConfig,
    private readonly events: Events,
    private readonly ports: PortService,
    private readonly dvr: DvrService,
    private readonly scheduler: Scheduler,
  ) {}

  async list(ctx: RequestContext, q: ListQuery): Promise<RouterView[]> {
    const k = this.db.kysely;
    const { rows } = await listRows<RouterRow>(visible(k.selectFrom('routers as r').selectAll('r'), ctx), COLUMNS, 'r.id', q, routerNotFound);
    const gws = new Map<string, { network_id: string; ips: Array<{ subnet_id: string; ip_address: string }> }>();
    const routes = new Map<string, Route[]>();
    for (const part of chunks(rows.map((r) => r.id), 500)) {
      const gwRows = await k
        .selectFrom('ports as p')
        .leftJoin('ipallocations as a', 'a.port_id', 'p.id')
        .select(['p.device_id', 'p.network_id', 'a.subnet_id', 'a.ip_address'])
        .where('p.device_id', 'in', part)
        .where('p.device_owner', '=', DEVICE_OWNER.routerGateway)
        .execute();
      for (const g of gwRows) {
        const e = gws.get(g.device_id) ?? gws.set(g.device_id, { network_id: g.network_id, ips: [] }).get(g.device_id)!;
        if (g.subnet_id) e.ips.push({ subnet_id: g.subnet_id, ip_address: g.ip_address! });
      }
      for (const rt of await k.selectFrom('routerroutes').selectAll().where('router_id', 'in', part).execute())
        (routes.get(rt.router_id) ?? routes.set(rt.router_id, []).get(rt.router_id)!).push({ destination: rt.destination, nexthop: rt.nexthop });
    }
    return rows.map((r) => view(r, gws.get(r.id), routes.get(r.id) ?? []));
  }

  async get(ctx: RequestContext, id: string): Promise<RouterView> {
    const [r] = await this.list(ctx, { filters: { id: [id] }, sort: [] });
    if (!r) throw routerNotFound(id);
    return r;
  }

  async row(tx: Tx, ctx: RequestContext, id: string): Promise<RouterRow> {
    const r = await visible(tx.selectFrom('routers as r').selectAll('r'), ctx).where('r.id', '=', id).executeTakeFirst();
    if (!r) throw routerNotFound(id);
    return r as RouterRow;
  }

  async createBulk(ctx: RequestContext, bodies: RouterCreate[]): Promise<RouterView[]> {
    const ids = await inTransaction(this.db, async (tx) => {
      const out: string[] = [];
      for (const body of bodies) {
        if (body.ha) throw badRouter('L3 HA routers are not supported');
        const row: RouterRow = {
          ...stdCreate(body.project_id, body.name, body.description),
          admin_state_up: i(body.admin_state_up ?? true),
          status: 'ACTIVE',
          distributed: i(body.distributed ?? this.conf.router_distributed),
          ha: 0,
          gw_port_id: null,
          enable_snat: 1,
        };
        await tx.insertInto('routers').values(row).execute();
        if (body.external_gateway_info) await this.setGateway(tx, ctx, row, body.external_gateway_info);
        else await this.scheduler.scheduleRouter(tx, row);
        out.push(row.id);
      }
      return out;
    });
    for (const id of ids) await this.changed('create', id);
    return Promise.all(ids.map((id) => this.get(ctx, id)));
  }

  async update(ctx: RequestContext, id: string, body: RouterUpdate): Promise<RouterView> {
    const hostsBefore = await this.dvr.routerHosts(undefined, id).catch(() => []);
    await inTransaction(this.db, async (tx) => {
      let r = await this.row(tx, ctx, id);
      checkOwner(ctx, 'router', 'update', r.project_id);
      if (body.ha) throw badRouter('L3 HA routers are not supported');
      if (body.distributed !== undefined && i(body.distributed) !== r.distributed) {
        const adminUp = body.admin_state_up ?? b(r.admin_state_up);
        if (r.admin_state_up && adminUp !== false)
          throw new NeutronError('BadRequest', 400, "Cannot change the 'distributed' attribute of active routers. Please set router admin_state_up to False prior to upgrade");
        if (!body.distributed) throw badRouter('Migration from distributed router to centralized is not supported');
      }
      const set: Partial<RouterRow> = {};
      if (body.name !== undefined) set.name = body.name;
      if (body.description !== undefined) set.description = body.description;
      if (body.admin_state_up !== undefined) set.admin_state_up = i(body.admin_state_up);
      if (body.distributed !== undefined) set.distributed = i(body.distributed);
      await tx.updateTable('routers').set({ ...set, revision_number: Number(r.revision_number) + 1, updated_at: timestamp() }).where('id', '=', id).execute();
      r = { ...r, ...set };
      if (body.distributed !== undefined) await this.retypeInterfaces(tx, r);
      if (body.external_gateway_info !== undefined) {
        const info = body.external_gateway_info;
        if (info === null || !('network_id' in info) || !info.network_id) await this.clearGateway(tx, r);
        else await this.setGateway(tx, ctx, r, info as GatewayInfo);
      }
      if (body.routes !== undefined) await this.setRoutes(tx, r, body.routes);
    });
    await this.changed('update', id, hostsBefore);
    return this.get(ctx, id);
  }

  async delete(ctx: RequestContext, id: string): Promise<void> {
    const hosts = await this.dvr.routerHosts(undefined, id).catch(() => []);
    await inTransaction(this.db, async (tx) => {
      const r = await this.row(tx, ctx, id);
      checkOwner(ctx, 'router', 'delete', r.project_id);
      const itf = await tx.selectFrom('ports').select('id').where('device_id', '=', id).where('device_owner', 'in', ROUTER_INTERFACE_OWNERS as string[]).limit(1).executeTakeFirst();
      if (itf) throw new NeutronError('RouterInUse', 409, `Router ${id} still has ports`);
      await this.clearGateway(tx, r);
      await tx.deleteFrom('routers').where('id', '=', id).execute();
    });
    await this.events.emit({ kind: 'router', op: 'delete', id, hosts });
  }

  private async changed(op: 'create' | 'update', id: string, hostsBefore: string[] = []) {
    const hosts = await this.dvr.routerHosts(undefined, id);
    await this.events.emit({ kind: 'router', op, id, hosts: [...new Set([...hostsBefore, ...hosts])] });
  }

  // --- gateway ---

  private async setGateway(tx: Tx, ctx: RequestContext, r: RouterRow, info: GatewayInfo): Promise<void> {
    const net = await tx.selectFrom('networks').selectAll().where('id', '=', info.network_id).executeTakeFirst();
    if (!net) throw Faults.networkNotFound(info.network_id);
    if (!net.router_external) throw badRouter(`Network ${info.network_id} is not an external network`);
    const enableSnat = info.enable_snat ?? true;
    const current = r.gw_port_id ? await tx.selectFrom('ports').selectAll().where('id', '=', r.gw_port_id).executeTakeFirst() : undefined;
    if (current && current.network_id !== info.network_id) {
      await this.clearGateway(tx, r);
      r = { ...r, gw_port_id: null };
    }
    let gwPortId = r.gw_port_id;
    if (!gwPortId) {
      await this.checkGatewayOverlap(tx, r.id, info.network_id);
      gwPortId = await this.ports.createInTx(tx, ADMIN, {
        project_id: '',
        network_id: info.network_id,
        fixed_ips: info.external_fixed_ips,
        device_id: r.id,
        device_owner: DEVICE_OWNER.routerGateway,
        admin_state_up: true,
      });
    } else if (info.external_fixed_ips) {
      const p = await tx.selectFrom('ports').selectAll().where('id', '=', gwPortId).executeTakeFirstOrThrow();
      await this.ports.updateInTx(tx, ADMIN, p, { fixed_ips: info.external_fixed_ips });
    }
    await tx.updateTable('routers').set({ gw_port_id: gwPortId, enable_snat: i(enableSnat) }).where('id', '=', r.id).execute();
    const updated = { ...r, gw_port_id: gwPortId, enable_snat: i(enableSnat) };
    await this.scheduler.scheduleRouter(tx, updated);
    await this.dvr.syncSnatPorts(tx, updated);
  }

  private async clearGateway(tx: Tx, r: RouterRow): Promise<void> {
    if (!r.gw_port_id) return;
    const gw = await tx.selectFrom('ports').select(['network_id']).where('id', '=', r.gw_port_id).executeTakeFirst();
    const fip = await tx.selectFrom('floatingips').select('id').where('router_id', '=', r.id).limit(1).executeTakeFirst();
    if (fip && gw)
      throw new NeutronError(
        'RouterExternalGatewayInUseByFloatingIp',
        409,
        `Gateway cannot be updated for router ${r.id}, since a gateway to external network ${gw.network_id} is required by one or more floating IPs.`,
      );
    await tx.updateTable('routers').set({ gw_port_id: null }).where('id', '=', r.id).execute();
    await this.ports.deleteInTx(tx, [r.gw_port_id]);
    const cleared = { ...r, gw_port_id: null };
    await this.dvr.syncSnatPorts(tx, cleared);
    await this.scheduler.scheduleRouter(tx, cleared);
  }

  private async checkGatewayOverlap(tx: Tx, routerId: string, extNetId: string) {
    const ext = await tx.selectFrom('subnets').select(['id', 'cidr']).where('network_id', '=', extNetId).execute();
    for (const s of await this.attachedSubnets(tx, routerId))
      for (const e of ext)
        if (cidrsOverlap(s.cidr, e.cidr))
          throw badRouter(`Cidr ${e.cidr} of subnet ${e.id} overlaps with cidr ${s.cidr} of subnet ${s.id}`);
  }

  // --- interfaces ---

  private async attachedSubnets(tx: Tx, routerId: string) {
    return tx
      .selectFrom('ports as p')
      .innerJoin('ipallocations as a', 'a.port_id', 'p.id')
      .innerJoin('subnets as s', 's.id', 'a.subnet_id')
      .select(['s.id', 's.cidr', 'p.id as port_id', 'p.device_owner', 'a.ip_address'])
      .where('p.device_id', '=', routerId)
      .where('p.device_owner', 'in', [...ROUTER_INTERFACE_OWNERS, DEVICE_OWNER.routerGateway])
      .execute();
  }

  private interfaceOwner(r: RouterRow) {
    return r.distributed ? DEVICE_OWNER.routerInterfaceDistributed : DEVICE_OWNER.routerInterface;
  }

  private async retypeInterfaces(tx: Tx, r: RouterRow) {
    await tx
      .updateTable('ports')
      .set((eb) => ({ device_owner: this.interfaceOwner(r), revision_number: eb('revision_number', '+', 1), updated_at: timestamp() }))
      .where('device_id', '=', r.id)
      .where('device_owner', 'in', ROUTER_INTERFACE_OWNERS as string[])
      .execute();
    await this.dvr.syncSnatPorts(tx, r);
    await this.scheduler.scheduleRouter(tx, r);
  }

  /** Refuse a subnet the router already has, or one overlapping any of its subnets. */
  private async checkNewSubnets(tx: Tx, routerId: string, subnets: Array<{ id: string; cidr: string }>) {
    const attached = await this.attachedSubnets(tx, routerId);
    const gwNets = await tx
      .selectFrom('ports as p')
      .innerJoin('subnets as s', 's.network_id', 'p.network_id')
      .select(['s.id', 's.cidr'])
      .where('p.device_id', '=', routerId)
      .where('p.device_owner', '=', DEVICE_OWNER.routerGateway)
      .execute();
    for (const n of subnets) {
      if (attached.some((a) => a.id === n.id && a.device_owner !== DEVICE_OWNER.routerGateway))
        throw badRouter(`Router already has a port on subnet ${n.id}`);
      for (const s of [...attached.filter((a) => a.device_owner !== DEVICE_OWNER.routerGateway), ...gwNets])
        if (cidrsOverlap(s.cidr, n.cidr))
          throw badRouter(`Cidr ${n.cidr} of subnet ${n.id} overlaps with cidr ${s.cidr} of subnet ${s.id}`);
    }
  }

  async addInterface(ctx: RequestContext, routerId: string, info: InterfaceInfo) {
    if (!info.subnet_id && !info.port_id) throw badRouter('Either subnet_id or port_id must be specified');
    if (info.subnet_id && info.port_id) throw badRouter('Cannot specify both subnet-id and port-id');
    const hostsBefore = await this.dvr.routerHosts(undefined, routerId).catch(() => []);
    const result = await inTransaction(this.db, async (tx) => {
      const r = await this.row(tx, ctx, routerId);
      checkOwner(ctx, 'router', 'update', r.project_id);
      let portId: string;
      if (info.subnet_id) {
        const s = await tx.selectFrom('subnets').selectAll().where('id', '=', info.subnet_id).executeTakeFirst();
        if (!s || (!ctx.isAdmin && s.project_id !== ctx.projectId && !(await this.networkShared(tx, s.network_id)))) throw Faults.subnetNotFound(info.subnet_id);
        if (!s.gateway_ip) throw badRouter('Subnet for router interface must have a gateway IP');
        if (!ctx.isAdmin && s.project_id !== ctx.projectId)
          throw badRouter(`Cannot add interface to router because subnet ${s.id} is not owned by project making the request`);
        await this.checkNewSubnets(tx, r.id, [s]);
        portId = await this.ports.createInTx(tx, ADMIN, {
          project_id: r.project_id,
          network_id: s.network_id,
          fixed_ips: [{ subnet_id: s.id, ip_address: s.gateway_ip }],
          device_id: r.id,
          device_owner: this.interfaceOwner(r),
          admin_state_up: true,
        });
      } else {
        const p = await tx.selectFrom('ports').selectAll().where('id', '=', info.port_id!).executeTakeFirst();
        if (!p || (!ctx.isAdmin && p.project_id !== ctx.projectId)) throw Faults.portNotFound(info.port_id!);
        if (p.device_id || p.device_owner)
          throw new NeutronError('PortInUse', 409, `Unable to complete operation on port ${p.id} for network ${p.network_id}. Port already has an attached device ${p.device_id}.`);
        const ips = await tx.selectFrom('ipallocations as a').innerJoin('subnets as s', 's.id', 'a.subnet_id').select(['s.id', 's.cidr']).where('a.port_id', '=', p.id).execute();
        if (!ips.length) throw badRouter('Router port must have at least one fixed IP');
        await this.checkNewSubnets(tx, r.id, ips);
        await tx
          .updateTable('ports')
          .set({ device_id: r.id, device_owner: this.interfaceOwner(r), revision_number: Number(p.revision_number) + 1, updated_at: timestamp() })
          .where('id', '=', p.id)
          .execute();
        await tx.deleteFrom('securitygroupportbindings').where('port_id', '=', p.id).execute();
        portId = p.id;
      }
      await this.dvr.syncSnatPorts(tx, r);
      await this.scheduler.scheduleRouter(tx, r);
      return this.interfaceInfo(tx, r, portId);
    });
    await this.changed('update', routerId, hostsBefore);
    return result;
  }

  private async networkShared(tx: Tx, networkId: string) {
    const n = await tx.selectFrom('networks').select('shared').where('id', '=', networkId).executeTakeFirst();
    return !!n?.shared;
  }

  private async interfaceInfo(tx: Tx, r: RouterRow, portId: string) {
    const p = await tx.selectFrom('ports').select(['network_id']).where('id', '=', portId).executeTakeFirstOrThrow();
    const subnets = (await tx.selectFrom('ipallocations').select('subnet_id').where('port_id', '=', portId).execute()).map((x) => x.subnet_id);
    return {
      id: r.id,
      tenant_id: r.project_id,
      project_id: r.project_id,
      port_id: portId,
      network_id: p.network_id,
      subnet_id: subnets[0],
      subnet_ids: subnets,
    };
  }

  async removeInterface(ctx: RequestContext, routerId: string, info: InterfaceInfo) {
    if (!info.subnet_id && !info.port_id) throw badRouter('Either subnet_id or port_id must be specified');
    const hostsBefore = await this.dvr.routerHosts(undefined, routerId).catch(() => []);
    const result = await inTransaction(this.db, async (tx) => {
      const r = await this.row(tx, ctx, routerId);
      checkOwner(ctx, 'router', 'update', r.project_id);
      const itfs = await tx
        .selectFrom('ports')
        .selectAll()
        .where('device_id', '=', r.id)
        .where('device_owner', 'in', ROUTER_INTERFACE_OWNERS as string[])
        .execute();
      let port: PortRow | undefined;
      let subnets: string[];
      if (info.port_id) {
        port = itfs.find((p) => p.id === info.port_id);
        if (!port)
          throw new NeutronError('RouterInterfaceNotFound', 404, `Router ${r.id} does not have an interface with id ${info.port_id}`);
        subnets = (await tx.selectFrom('ipallocations').select('subnet_id').where('port_id', '=', port.id).execute()).map((x) => x.subnet_id);
        if (info.subnet_id && !subnets.includes(info.subnet_id))
          throw new NeutronError('SubnetMismatchForPort', 400, `Subnet on port ${port.id} does not match the requested subnet ${info.subnet_id}.`);
      } else {
        const alloc = itfs.length
          ? await tx.selectFrom('ipallocations').selectAll().where('subnet_id', '=', info.subnet_id!).where('port_id', 'in', itfs.map((p) => p.id)).executeTakeFirst()
          : undefined;
        if (!alloc)
          throw new NeutronError('RouterInterfaceNotFoundForSubnet', 404, `Router ${r.id} has no interface on subnet ${info.subnet_id}`);
        port = itfs.find((p) => p.id === alloc.port_id)!;
        subnets = [info.subnet_id!];
      }
      for (const s of subnets) await this.checkFipsNeedSubnet(tx, r.id, s);
      const remaining = await tx.selectFrom('ipallocations').select('subnet_id').where('port_id', '=', port.id).execute();
      if (remaining.every((x) => subnets.includes(x.subnet_id))) await this.ports.deleteInTx(tx, [port.id]);
      else {
        for (const s of subnets) await tx.deleteFrom('ipallocations').where('port_id', '=', port.id).where('subnet_id', '=', s).execute();
        await tx.updateTable('ports').set({ revision_number: Number(port.revision_number) + 1, updated_at: timestamp() }).where('id', '=', port.id).execute();
      }
      await this.dvr.syncSnatPorts(tx, r);
      return { id: r.id, tenant_id: r.project_id, project_id: r.project_id, port_id: port.id, network_id: port.network_id, subnet_id: subnets[0], subnet_ids: subnets };
    });
    await this.changed('update', routerId, hostsBefore);
    return result;
  }

  private async checkFipsNeedSubnet(tx: Tx, routerId: string, subnetId: string) {
    const used = await tx
      .selectFrom('floatingips as f')
      .innerJoin('ipallocations as a', (j) => j.onRef('a.port_id', '=', 'f.fixed_port_id').onRef('a.ip_address', '=', 'f.fixed_ip_address'))
      .select('f.id')
      .where('f.router_id', '=', routerId)
      .where('a.subnet_id', '=', subnetId)
      .limit(1)
      .executeTakeFirst();
    if (used)
      throw new NeutronError(
        'RouterInterfaceInUseByFloatingIP',
        409,
        `Router interface for subnet ${subnetId} on router ${routerId} cannot be deleted, as it is required by one or more floating IPs.`,
      );
  }

  // --- extra routes ---

  private async setRoutes(tx: Tx, r: RouterRow, routes: Route[]) {
    const attached = await this.attachedSubnets(tx, r.id);
    const gwSubnets = r.gw_port_id
      ? await tx.selectFrom('ipallocations as a').innerJoin('subnets as s', 's.id', 'a.subnet_id').select('s.cidr').where('a.port_id', '=', r.gw_port_id).execute()
      : [];
    const cidrs = [...attached.map((a) => a.cidr), ...gwSubnets.map((g) => g.cidr)];
    const ownIps = attached.map((a) => a.ip_address);
    const bad = (route: Route, reason: string) =>
      new NeutronError('InvalidRoutes', 400, `Invalid format for routes: ${JSON.stringify([route])}, ${reason}`);
    if (routes.length > 30) throw new NeutronError('RoutesExhausted', 400, `Unable to complete operation for ${r.id}. The number of routes exceeds the maximum 30.`);
    const seen = new Set<string>();
    for (const rt of routes) {
      if (!cidrs.some((c) => cidrContains(c, rt.nexthop))) throw bad(rt, 'the nexthop is not connected with router');
      if (ownIps.includes(rt.nexthop)) throw bad(rt, 'the nexthop is used by router');
      const key = `${rt.destination}|${rt.nexthop}`;
      if (seen.has(key)) throw bad(rt, 'duplicate route');
      seen.add(key);
    }
    await tx.deleteFrom('routerroutes').where('router_id', '=', r.id).execute();
    if (routes.length) await tx.insertInto('routerroutes').values(routes.map((rt) => ({ router_id: r.id, ...rt }))).execute();
  }

  /** The port API refuses to delete router ports directly (Neutron's prevent_l3_port_deletion). */
  guardPortDelete = async (tx: Tx, p: PortRow) => {
    if (!ROUTER_PORT_OWNERS.includes(p.device_owner) && p.device_owner !== DEVICE_OWNER.floatingIp) return;
    const r = p.device_owner === DEVICE_OWNER.floatingIp
      ? await tx.selectFrom('floatingips').select('id').where('id', '=', p.device_id).executeTakeFirst()
      : await tx.selectFrom('routers').select('id').where('id', '=', p.device_id).executeTakeFirst();
    if (r)
      throw new NeutronError('ServicePortInUse', 409, `Port ${p.id} cannot be deleted directly via the port API: has device owner ${p.device_owner}.`);
  };
}
