// Subnets: CIDR and pool validation, overlap rules, and their life on a network.

import type { ServerConfig } from '../config/server.js';
import { Faults } from '../common/errors.js';
import type { Db } from '../db/connect.js';
import type { AllocationPoolRow, SubnetRow } from '../db/schema.js';
import { inTransaction, type Tx } from '../db/tx.js';
import type { RequestContext } from './context.js';
import type { Events } from './events.js';
import { cidrsOverlap, defaultGateway, ipToNum, resolvePools, type Pool } from './ipam.js';
import { boolColumn, listRows, type Columns, type ListQuery } from './listing.js';
import type { NetworkService } from './networks.js';
import { checkNetworkUse, checkOwner } from './policy.js';
import { b, chunks, i, stdCreate, stdView, timestamp } from './util.js';

export interface HostRoute {
  destination: string;
  nexthop: string;
}

export interface SubnetCreate {
  project_id: string;
  network_id: string;
  ip_version: 4 | 6;
  cidr: string;
  name?: string;
  description?: string;
  gateway_ip?: string | null;
  allocation_pools?: Pool[];
  dns_nameservers?: string[];
  host_routes?: HostRoute[];
  enable_dhcp?: boolean;
  ipv6_ra_mode?: string | null;
  ipv6_address_mode?: string | null;
}

export type SubnetUpdate = Partial<
  Pick<SubnetCreate, 'name' | 'description' | 'gateway_ip' | 'allocation_pools' | 'dns_nameservers' | 'host_routes' | 'enable_dhcp'>
>;

export type SubnetView = ReturnType<typeof view>;

const COLUMNS: Columns = {
  id: { col: 's.id' },
  name: { col: 's.name' },
  description: { col: 's.description' },
  project_id: { col: 's.project_id' },
  tenant_id: { col: 's.project_id' },
  network_id: { col: 's.network_id' },
  ip_version: { col: 's.ip_version' },
  cidr: { col: 's.cidr' },
  gateway_ip: { col: 's.gateway_ip' },
  enable_dhcp: boolColumn('s.enable_dhcp'),
  ipv6_ra_mode: { col: 's.ipv6_ra_mode' },
  ipv6_address_mode: { col: 's.ipv6_address_mode' },
  revision_number: { col: 's.revision_number' },
  created_at: { col: 's.created_at' },
  updated_at: { col: 's.updated_at' },
};

function view(s: SubnetRow, pools: Pool[]) {
  return {
    ...stdView(s),
    network_id: s.network_id,
    ip_version: s.ip_version,
    subnetpool_id: null,
    enable_dhcp: b(s.enable_dhcp),
    ipv6_ra_mode: s.ipv6_ra_mode,
    ipv6_address_mode: s.ipv6_address_mode,
    gateway_ip: s.gateway_ip,
    cidr: s.cidr,
    allocation_pools: pools,
    host_routes: JSON.parse(s.host_routes) as HostRoute[],
    dns_nameservers: JSON.parse(s.dns_nameservers) as string[],
    service_types: [] as string[],
    segment_id: null,
    tags: [] as string[],
  };
}

/** Members read their own subnets and those of shared and external networks. */
function visible(qb: any, ctx: RequestContext) {
  if (ctx.isAdmin) return qb;
  return qb.where((eb: any) =>
    eb.or([
      eb('s.project_id', '=', ctx.projectId),
      eb.exists(
        eb
          .selectFrom('networks as vn')
          .select('vn.id')
          .whereRef('vn.id', '=', 's.network_id')
          .where((e2: any) => e2.or([e2('vn.shared', '=', 1), e2('vn.router_external', '=', 1)])),
      ),
    ]),
  );
}

const poolsOf = (rows: AllocationPoolRow[]) =>
  rows.sort((x, y) => Number(x.first_num) - Number(y.first_num)).map((p) => ({ start: p.first_ip, end: p.last_ip }));

export class SubnetService {
  constructor(
    private readonly db: Db,
    private readonly conf: ServerConfig,
    private readonly networks: NetworkService,
    private readonly events: Events,
  ) {}

  private async emit(op: 'create' | 'update', ids: string[]) {
    for (const subnet of await this.db.kysely.selectFrom('subnets').selectAll().where('id', 'in', ids).execute())
      await this.events.emit({ kind: 'subnet', op, subnet });
  }

  async list(ctx: RequestContext, q: ListQuery): Promise<SubnetView[]> {
    const k = this.db.kysely;
    const { rows } = await listRows<SubnetRow>(visible(k.selectFrom('subnets as s').selectAll('s'), ctx), COLUMNS, 's.id', q, Faults.subnetNotFound);
    const pools = new Map<string, AllocationPoolRow[]>();
    for (const part of chunks(rows.map((r) => r.id), 500)) {
      for (const p of await k.selectFrom('ipallocationpools').selectAll().where('subnet_id', 'in', part).execute())
        (pools.get(p.subnet_id) ?? pools.set(p.subnet_id, []).get(p.subnet_id)!).push(p);
    }
    return rows.map((r) => view(r, poolsOf(pools.get(r.id) ?? [])));
  }

  async get(ctx: RequestContext, id: string): Promise<SubnetView> {
    const [s] = await this.list(ctx, { filters: { id: [id] }, sort: [] });
    if (!s) throw Faults.subnetNotFound(id);
    return s;
  }

  async create(ctx: RequestContext, body: SubnetCreate): Promise<SubnetView> {
    const [v] = await this.createBulk(ctx, [body]);
    return v;
  }

  async createBulk(ctx: RequestContext, bodies: SubnetCreate[]): Promise<SubnetView[]> {
    const ids = await inTransaction(this.db, async (tx) => {
      const out: string[] = [];
      for (const body of bodies) out.push(await this.insert(tx, ctx, body));
      return out;
    });
    await this.emit('create', ids);
    return Promise.all(ids.map((id) => this.get(ctx, id)));
  }

  private async insert(tx: Tx, ctx: RequestContext, body: SubnetCreate): Promise<string> {
    const net = await this.networks.row(tx, ctx, body.network_id);
    checkNetworkUse(ctx, 'subnet', net);
    if (body.ip_version !== 4) throw Faults.invalidInput('Only IPv4 subnets are supported by this server yet');
    if (!body.cidr.includes('.')) throw Faults.invalidInput(`Cidr ${body.cidr} does not match ip_version 4`);
    if (body.cidr === '0.0.0.0/0') throw Faults.invalidInput('0.0.0.0/0 is not allowed as subnet CIDR');
    await this.checkOverlap(tx, body.network_id, body.project_id, body.cidr);
    const gateway = body.gateway_ip === undefined ? defaultGateway(body.cidr) : body.gateway_ip;
    if (gateway !== null && !gateway.includes('.')) throw Faults.invalidInput(`Gateway ${gateway} does not match ip_version 4`);
    const pools = resolvePools(body.cidr, gateway, body.allocation_pools);
    this.checkRoutes(body.host_routes ?? []);
    const row = stdCreate(body.project_id, body.name, body.description);
    await tx
      .insertInto('subnets')
      .values({
        ...row,
        network_id: body.network_id,
        ip_version: 4,
        cidr: body.cidr,
        gateway_ip: gateway,
        enable_dhcp: i(body.enable_dhcp ?? true),
        ipv6_ra_mode: null,
        ipv6_address_mode: null,
        dns_nameservers: JSON.stringify(body.dns_nameservers ?? []),
        host_routes: JSON.stringify(body.host_routes ?? []),
      })
      .execute();
    await this.writePools(tx, row.id, pools);
    return row.id;
  }

  private checkRoutes(routes: HostRoute[]) {
    for (const r of routes)
      if (r.destination.includes(':') !== r.nexthop.includes(':'))
        throw Faults.invalidInput(`Host route ${r.destination} via ${r.nexthop}: address families differ`);
  }

  private async writePools(tx: Tx, subnetId: string, pools: Pool[]) {
    await tx.deleteFrom('ipallocationpools').where('subnet_id', '=', subnetId).execute();
    if (pools.length)
      await tx
        .insertInto('ipallocationpools')
        .values(
          pools.map((p) => ({
            subnet_id: subnetId,
            first_ip: p.start,
            last_ip: p.end,
            first_num: ipToNum(p.start),
            last_num: ipToNum(p.end),
          })),
        )
        .execute();
  }

  /**
   * Neutron's rule: never two overlapping subnets on one network; subnets of different
   * networks may overlap only with allow_overlapping_ips (routers refuse overlaps later).
   */
  private async checkOverlap(tx: Tx, networkId: string, _projectId: string, cidr: string) {
    let qb = tx.selectFrom('subnets').select(['cidr', 'network_id', 'id']);
    if (this.conf.allow_overlapping_ips) qb = qb.where('network_id', '=', networkId);
    for (const s of await qb.execute())
      if (cidrsOverlap(s.cidr, cidr))
        throw Faults.invalidInput(
          s.network_id === networkId
            ? `Requested subnet with cidr: ${cidr} for network: ${networkId} overlaps with another subnet`
            : `Requested subnet with cidr: ${cidr} for network: ${networkId} overlaps with subnet ${s.id}`,
        );
  }

  async update(ctx: RequestContext, id: string, body: SubnetUpdate): Promise<SubnetView> {
    await inTransaction(this.db, async (tx) => {
      const s = (await visible(tx.selectFrom('subnets as s').selectAll('s'), ctx).where('s.id', '=', id).executeTakeFirst()) as
        | SubnetRow
        | undefined;
      if (!s) throw Faults.subnetNotFound(id);
      checkOwner(ctx, 'subnet', 'update', s.project_id);
      const gateway = body.gateway_ip === undefined ? s.gateway_ip : body.gateway_ip;
      if (body.gateway_ip !== undefined || body.allocation_pools !== undefined) {
        const current = poolsOf(await tx.selectFrom('ipallocationpools').selectAll().where('subnet_id', '=', id).execute());
        const pools = resolvePools(s.cidr, gateway, body.allocation_pools ?? current);
        await this.writePools(tx, id, pools);
      }
      if (body.host_routes) this.checkRoutes(body.host_routes);
      const set: Partial<SubnetRow> = {};
      if (body.name !== undefined) set.name = body.name;
      if (body.description !== undefined) set.description = body.description;
      if (body.gateway_ip !== undefined) set.gateway_ip = body.gateway_ip;
      if (body.enable_dhcp !== undefined) set.enable_dhcp = i(body.enable_dhcp);
      if (body.dns_nameservers !== undefined) set.dns_nameservers = JSON.stringify(body.dns_nameservers);
      if (body.host_routes !== undefined) set.host_routes = JSON.stringify(body.host_routes);
      await tx
        .updateTable('subnets')
        .set({ ...set, revision_number: Number(s.revision_number) + 1, updated_at: timestamp() })
        .where('id', '=', id)
        .execute();
    });
    await this.emit('update', [id]);
    return this.get(ctx, id);
  }

  /** Refused while a port other than the DHCP port holds an address from it (SubnetInUse). */
  async delete(ctx: RequestContext, id: string): Promise<void> {
    const subnet = await inTransaction(this.db, async (tx) => {
      const s = (await visible(tx.selectFrom('subnets as s').selectAll('s'), ctx).where('s.id', '=', id).executeTakeFirst()) as
        | SubnetRow
        | undefined;
      if (!s) throw Faults.subnetNotFound(id);
      checkOwner(ctx, 'subnet', 'delete', s.project_id);
      const busy = await tx
        .selectFrom('ipallocations as a')
        .innerJoin('ports as p', 'p.id', 'a.port_id')
        .select('p.id')
        .where('a.subnet_id', '=', id)
        .where('p.device_owner', '!=', 'network:dhcp')
        .limit(1)
        .executeTakeFirst();
      if (busy) throw Faults.subnetInUse(id);
      // The DHCP ports lose their address here: a new revision, as every change of a port.
      await tx
        .updateTable('ports')
        .set((eb) => ({ revision_number: eb('revision_number', '+', 1), updated_at: timestamp() }))
        .where('id', 'in', (eb) => eb.selectFrom('ipallocations').select('port_id').where('subnet_id', '=', id))
        .execute();
      await tx.deleteFrom('ipallocations').where('subnet_id', '=', id).execute();
      await tx.deleteFrom('subnets').where('id', '=', id).execute();
      return s;
    });
    await this.events.emit({ kind: 'subnet', op: 'delete', subnet });
  }

  /** Subnets of a network, for IPAM. */
  async ofNetwork(tx: Tx, networkId: string): Promise<SubnetRow[]> {
    return tx.selectFrom('subnets').selectAll().where('network_id', '=', networkId).orderBy('created_at').orderBy('id').execute();
  }
}
