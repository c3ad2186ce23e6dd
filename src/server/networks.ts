// Networks and their ML2 segments.

import type { NetworkType, ServerConfig } from '../config/server.js';
import { Faults } from '../common/errors.js';
import type { Db } from '../db/connect.js';
import type { NetworkRow, NetworkSegmentRow } from '../db/schema.js';
import { inTransaction, type Tx } from '../db/tx.js';
import type { Segment, TypeManager } from '../ml2/type_drivers.js';
import type { RequestContext } from './context.js';
import type { Events } from './events.js';
import { applyFilters, applyOrderAndPage, boolColumn, type Columns, type ListQuery } from './listing.js';
import { checkOwner } from './policy.js';
import { b, chunks, i, newId, stdCreate, stdView, timestamp } from './util.js';

export interface NetworkCreate {
  project_id: string;
  name?: string;
  description?: string;
  admin_state_up?: boolean;
  shared?: boolean;
  'router:external'?: boolean;
  port_security_enabled?: boolean;
  mtu?: number;
  availability_zone_hints?: string[];
  'provider:network_type'?: NetworkType;
  'provider:physical_network'?: string | null;
  'provider:segmentation_id'?: number | null;
}

export type NetworkUpdate = Partial<Omit<NetworkCreate, 'project_id'>>;

export type NetworkView = ReturnType<typeof view>;

const COLUMNS: Columns = {
  id: { col: 'n.id' },
  name: { col: 'n.name' },
  description: { col: 'n.description' },
  project_id: { col: 'n.project_id' },
  tenant_id: { col: 'n.project_id' },
  status: { col: 'n.status' },
  admin_state_up: boolColumn('n.admin_state_up'),
  shared: boolColumn('n.shared'),
  'router:external': boolColumn('n.router_external'),
  port_security_enabled: boolColumn('n.port_security_enabled'),
  mtu: { col: 'n.mtu' },
  revision_number: { col: 'n.revision_number' },
  created_at: { col: 'n.created_at' },
  updated_at: { col: 'n.updated_at' },
  'provider:network_type': { col: 's.network_type' },
  'provider:physical_network': { col: 's.physical_network' },
  'provider:segmentation_id': { col: 's.segmentation_id' },
};

function view(n: NetworkRow, seg: NetworkSegmentRow | undefined, subnets: string[]) {
  return {
    ...stdView(n),
    admin_state_up: b(n.admin_state_up),
    mtu: n.mtu,
    status: n.status,
    subnets,
    shared: b(n.shared),
    availability_zone_hints: JSON.parse(n.availability_zone_hints) as string[],
    availability_zones: [] as string[],
    ipv4_address_scope: null,
    ipv6_address_scope: null,
    'router:external': b(n.router_external),
    port_security_enabled: b(n.port_security_enabled),
    l2_adjacency: true,
    tags: [] as string[],
    'provider:network_type': seg?.network_type ?? null,
    'provider:physical_network': seg?.physical_network || null,
    'provider:segmentation_id': seg?.segmentation_id ?? null,
  };
}

/** Rows a context may read: its own, shared and external networks (read-only for members). */
function visible(qb: any, ctx: RequestContext) {
  if (ctx.isAdmin) return qb;
  return qb.where((eb: any) =>
    eb.or([eb('n.project_id', '=', ctx.projectId), eb('n.shared', '=', 1), eb('n.router_external', '=', 1)]),
  );
}

export class NetworkService {
  constructor(
    private readonly db: Db,
    private readonly conf: ServerConfig,
    private readonly types: TypeManager,
    private readonly events: Events,
  ) {}

  private async emit(op: 'create' | 'update', ids: string[]) {
    for (const network of await this.db.kysely.selectFrom('networks').selectAll().where('id', 'in', ids).execute())
      await this.events.emit({ kind: 'network', op, network });
  }

  async list(ctx: RequestContext, q: ListQuery): Promise<NetworkView[]> {
    const k = this.db.kysely;
    let qb = visible(
      k
        .selectFrom('networks as n')
        .leftJoin('networksegments as s', (j) => j.onRef('s.network_id', '=', 'n.id').on('s.segment_index', '=', 0))
        .selectAll('n')
        .select(['s.network_type', 's.physical_network', 's.segmentation_id', 's.segment_index', 's.id as segment_id']),
      ctx,
    );
    qb = applyFilters(qb, COLUMNS, q.filters);
    const marker = q.marker ? await this.markerRow(ctx, q.marker) : undefined;
    qb = applyOrderAndPage(qb, COLUMNS, 'n.id', q, marker);
    let rows = (await qb.execute()) as Array<NetworkRow & NetworkSegmentRow & { segment_id: string | null }>;
    if (q.pageReverse) rows = rows.reverse();
    const subnets = new Map<string, string[]>();
    for (const part of chunks(rows.map((r) => r.id), 500)) {
      if (!part.length) break;
      const ss = await k.selectFrom('subnets').select(['id', 'network_id']).where('network_id', 'in', part).orderBy('created_at').orderBy('id').execute();
      for (const s of ss) (subnets.get(s.network_id) ?? subnets.set(s.network_id, []).get(s.network_id)!).push(s.id);
    }
    return rows.map((r) => view(r, r.segment_id ? r : undefined, subnets.get(r.id) ?? []));
  }

  private async markerRow(ctx: RequestContext, id: string) {
    const row = await visible(
      this.db.kysely
        .selectFrom('networks as n')
        .leftJoin('networksegments as s', (j) => j.onRef('s.network_id', '=', 'n.id').on('s.segment_index', '=', 0))
        .selectAll('n')
        .select(['s.network_type', 's.physical_network', 's.segmentation_id']),
      ctx,
    )
      .where('n.id', '=', id)
      .executeTakeFirst();
    if (!row) throw Faults.networkNotFound(id);
    return row;
  }

  async get(ctx: RequestContext, id: string): Promise<NetworkView> {
    const [n] = await this.list(ctx, { filters: { id: [id] }, sort: [] });
    if (!n) throw Faults.networkNotFound(id);
    return n;
  }

  /** The raw row, for other services (subnets, ports) inside their own transaction. */
  async row(tx: Tx, ctx: RequestContext, id: string): Promise<NetworkRow> {
    const n = await visible(tx.selectFrom('networks as n').selectAll('n'), ctx).where('n.id', '=', id).executeTakeFirst();
    if (!n) throw Faults.networkNotFound(id);
    return n as NetworkRow;
  }

  async create(ctx: RequestContext, body: NetworkCreate): Promise<NetworkView> {
    const [v] = await this.createBulk(ctx, [body]);
    return v;
  }

  /** Bulk create is all or nothing: one transaction for the whole list. */
  async createBulk(ctx: RequestContext, bodies: NetworkCreate[]): Promise<NetworkView[]> {
    const ids = await inTransaction(this.db, async (tx) => {
      const out: string[] = [];
      for (const body of bodies) out.push(await this.insert(tx, body));
      return out;
    });
    await this.emit('create', ids);
    return Promise.all(ids.map((id) => this.get(ctx, id)));
  }

  private async insert(tx: Tx, body: NetworkCreate): Promise<string> {
    const row = stdCreate(body.project_id, body.name, body.description);
    const provider = body['provider:network_type'] !== undefined || body['provider:physical_network'] != null || body['provider:segmentation_id'] != null;
    let seg: Segment;
    await tx
      .insertInto('networks')
      .values({
        ...row,
        admin_state_up: i(body.admin_state_up ?? true),
        status: 'ACTIVE',
        shared: i(body.shared ?? false),
        router_external: i(body['router:external'] ?? false),
        mtu: 0,
        port_security_enabled: i(body.port_security_enabled ?? true),
        availability_zone_hints: JSON.stringify(body.availability_zone_hints ?? []),
      })
      .execute();
    if (provider) {
      if (body['provider:network_type'] === undefined)
        throw Faults.invalidInput('provider:network_type required');
      seg = {
        network_type: body['provider:network_type'],
        physical_network: body['provider:physical_network'] ?? null,
        segmentation_id: body['provider:segmentation_id'] ?? null,
      };
      this.types.validateProvider(seg);
      seg = await this.types.reserveProviderSegment(tx, row.id, seg);
    } else {
      seg = await this.types.allocateTenantSegment(tx, row.id);
    }
    await tx
      .insertInto('networksegments')
      .values({
        id: newId(),
        network_id: row.id,
        network_type: seg.network_type,
        physical_network: seg.physical_network ?? '',
        segmentation_id: seg.segmentation_id,
        segment_index: 0,
      })
      .execute();
    const maxMtu = this.types.mtu(seg);
    if (body.mtu !== undefined && body.mtu > maxMtu)
      throw Faults.invalidInput(`Requested MTU is too big, maximum is ${maxMtu}`);
    await tx.updateTable('networks').set({ mtu: body.mtu ?? maxMtu }).where('id', '=', row.id).execute();
    return row.id;
  }

  async update(ctx: RequestContext, id: string, body: NetworkUpdate): Promise<NetworkView> {
    await inTransaction(this.db, async (tx) => {
      const n = await this.row(tx, ctx, id);
      checkOwner(ctx, 'network', 'update', n.project_id);
      const seg = await tx.selectFrom('networksegments').selectAll().where('network_id', '=', id).where('segment_index', '=', 0).executeTakeFirst();
      for (const [attr, cur] of [
        ['provider:network_type', seg?.network_type],
        ['provider:physical_network', seg?.physical_network || null],
        ['provider:segmentation_id', seg?.segmentation_id ?? null],
      ] as const) {
        const want = body[attr];
        if (want !== undefined && want !== cur)
          throw Faults.invalidInput('Plugin does not support updating provider attributes');
      }
      if (body.mtu !== undefined && seg) {
        const max = this.types.mtu({ ...seg, network_type: seg.network_type as NetworkType });
        if (body.mtu > max) throw Faults.invalidInput(`Requested MTU is too big, maximum is ${max}`);
      }
      const set: Partial<NetworkRow> = {};
      if (body.name !== undefined) set.name = body.name;
      if (body.description !== undefined) set.description = body.description;
      if (body.admin_state_up !== undefined) set.admin_state_up = i(body.admin_state_up);
      if (body.shared !== undefined) set.shared = i(body.shared);
      if (body['router:external'] !== undefined) set.router_external = i(body['router:external']);
      if (body.port_security_enabled !== undefined) set.port_security_enabled = i(body.port_security_enabled);
      if (body.mtu !== undefined) set.mtu = body.mtu;
      await tx
        .updateTable('networks')
        .set({ ...set, revision_number: Number(n.revision_number) + 1, updated_at: timestamp() })
        .where('id', '=', id)
        .execute();
    });
    await this.emit('update', [id]);
    return this.get(ctx, id);
  }

  /**
   * Refused while ports other than the DHCP agent's are on it (NetworkInUse); DHCP ports,
   * subnets, segments and the segment allocation go with the network.
   */
  async delete(ctx: RequestContext, id: string): Promise<void> {
    let dhcpHosts: string[] = [];
    const network = await inTransaction(this.db, async (tx) => {
      const n = await this.row(tx, ctx, id);
      checkOwner(ctx, 'network', 'delete', n.project_id);
      dhcpHosts = (
        await tx.selectFrom('networkdhcpagentbindings as b').innerJoin('agents as a', 'a.id', 'b.dhcp_agent_id').select('a.host').where('b.network_id', '=', id).execute()
      ).map((r) => r.host);
      const busy = await tx
        .selectFrom('ports')
        .select('id')
        .where('network_id', '=', id)
        .where('device_owner', '!=', 'network:dhcp')
        .limit(1)
        .executeTakeFirst();
      if (busy) throw Faults.networkInUse(id);
      await tx.deleteFrom('ports').where('network_id', '=', id).execute();
      await tx.deleteFrom('subnets').where('network_id', '=', id).execute();
      await tx.deleteFrom('networksegments').where('network_id', '=', id).execute();
      await this.types.release(tx, id);
      await tx.deleteFrom('networks').where('id', '=', id).execute();
      return n;
    });
    await this.events.emit({ kind: 'network', op: 'delete', network, dhcpHosts });
  }
}
