// Floating IPs (l3_db + l3_dvr_db): an address of an external network's pool, held by a
// network:floatingip port, associated with a fixed IP whose subnet is on a router with a
// gateway on that network. With a distributed router, the instance's host needs its
// floating-IP agent gateway port (fg) on the external network; it is created here.

import { DEVICE_OWNER } from '../../common/constants.js';
import { Faults, NeutronError } from '../../common/errors.js';
import type { Db } from '../../db/connect.js';
import type { FloatingIpRow } from '../../db/schema.js';
import { inTransaction, type Tx } from '../../db/tx.js';
import { adminContext, type RequestContext } from '../context.js';
import type { Events, FipTarget } from '../events.js';
import { listRows, type Columns, type ListQuery } from '../listing.js';
import { checkOwner } from '../policy.js';
import type { PortService } from '../ports.js';
import { newId, timestamp } from '../util.js';
import type { DvrService } from './dvr.js';

const ADMIN = adminContext();

export interface FloatingIpCreate {
  project_id: string;
  floating_network_id: string;
  floating_ip_address?: string;
  subnet_id?: string;
  port_id?: string | null;
  fixed_ip_address?: string | null;
  description?: string;
}

export interface FloatingIpUpdate {
  port_id?: string | null;
  fixed_ip_address?: string | null;
  description?: string;
}

export type FloatingIpStatus = 'ACTIVE' | 'DOWN' | 'ERROR';

const badFip = (msg: string) => new NeutronError('BadRequest', 400, `Bad floatingip request: ${msg}.`);
export const fipNotFound = (id: string) => new NeutronError('FloatingIPNotFound', 404, `Floating IP ${id} could not be found`);

const COLUMNS: Columns = {
  id: { col: 'f.id' },
  description: { col: 'f.description' },
  project_id: { col: 'f.project_id' },
  tenant_id: { col: 'f.project_id' },
  floating_ip_address: { col: 'f.floating_ip_address' },
  floating_network_id: { col: 'f.floating_network_id' },
  router_id: { col: 'f.router_id' },
  port_id: { col: 'f.fixed_port_id' },
  fixed_ip_address: { col: 'f.fixed_ip_address' },
  status: { col: 'f.status' },
  revision_number: { col: 'f.revision_number' },
  created_at: { col: 'f.created_at' },
  updated_at: { col: 'f.updated_at' },
};

const visible = (qb: any, ctx: RequestContext) => (ctx.isAdmin ? qb : qb.where('f.project_id', '=', ctx.projectId));

export type FloatingIpView = ReturnType<typeof view>;

function view(f: FloatingIpRow) {
  return {
    id: f.id,
    tenant_id: f.project_id,
    project_id: f.project_id,
    floating_ip_address: f.floating_ip_address,
    floating_network_id: f.floating_network_id,
    router_id: f.router_id,
    port_id: f.fixed_port_id,
    fixed_ip_address: f.fixed_ip_address,
    status: f.status,
    description: f.description,
    port_forwardings: [] as unknown[],
    tags: [] as string[],
    created_at: f.created_at,
    updated_at: f.updated_at,
    revision_number: Number(f.revision_number),
  };
}

/** Ports a floating IP may point at: instances and the like, never the network's own ports. */
const isFipServiced = (owner: string) => !owner.startsWith('network:') || owner === 'network:loadbalancer';

export class FloatingIpService {
  constructor(
    private readonly db: Db,
    private readonly events: Events,
    private readonly ports: PortService,
    private readonly dvr: DvrService,
  ) {}

  async list(ctx: RequestContext, q: ListQuery): Promise<FloatingIpView[]> {
    const k = this.db.kysely;
    const { rows } = await listRows<FloatingIpRow>(visible(k.selectFrom('floatingips as f').selectAll('f'), ctx), COLUMNS, 'f.id', q, fipNotFound);
    return rows.map(view);
  }

  async get(ctx: RequestContext, id: string): Promise<FloatingIpView> {
    const [f] = await this.list(ctx, { filters: { id: [id] }, sort: [] });
    if (!f) throw fipNotFound(id);
    return f;
  }

  private async row(tx: Tx, ctx: RequestContext, id: string): Promise<FloatingIpRow> {
    const f = await visible(tx.selectFrom('floatingips as f').selectAll('f'), ctx).where('f.id', '=', id).executeTakeFirst();
    if (!f) throw fipNotFound(id);
    return f as FloatingIpRow;
  }

  async createBulk(ctx: RequestContext, bodies: FloatingIpCreate[]): Promise<FloatingIpView[]> {
    const ids = await inTransaction(this.db, async (tx) => {
      const out: string[] = [];
      for (const body of bodies) out.push(await this.insert(tx, ctx, body));
      return out;
    });
    for (const id of ids) await this.changed('create', id);
    return Promise.all(ids.map((id) => this.get(ctx, id)));
  }

  private async insert(tx: Tx, ctx: RequestContext, body: FloatingIpCreate): Promise<string> {
    const net = await tx.selectFrom('networks').selectAll().where('id', '=', body.floating_network_id).executeTakeFirst();
    if (!net) throw Faults.networkNotFound(body.floating_network_id);
    if (!net.router_external) throw badFip(`Network ${net.id} is not a valid external network`);
    const subnets = await tx.selectFrom('subnets').select(['id', 'ip_version']).where('network_id', '=', net.id).execute();
    if (!subnets.some((s) => s.ip_version === 4)) throw badFip(`Network ${net.id} does not contain any IPv4 subnet`);
    const id = newId();
    const fixed = body.floating_ip_address
      ? [{ ip_address: body.floating_ip_address, ...(body.subnet_id ? { subnet_id: body.subnet_id } : {}) }]
      : body.subnet_id
        ? [{ subnet_id: body.subnet_id }]
        : undefined;
    let portId: string;
    try {
      portId = await this.ports.createInTx(tx, ADMIN, {
        project_id: '',
        network_id: net.id,
        fixed_ips: fixed,
        device_id: id,
        device_owner: DEVICE_OWNER.floatingIp,
        admin_state_up: true,
      });
    } catch (err) {
      if (err instanceof NeutronError && err.type === 'IpAddressGenerationFailure')
        throw new NeutronError('ExternalIpAddressExhausted', 400, `Unable to find any IP address on external network ${net.id}.`);
      throw err;
    }
    const ip = await tx.selectFrom('ipallocations').select('ip_address').where('port_id', '=', portId).executeTakeFirstOrThrow();
    const now = timestamp();
    const row: FloatingIpRow = {
      id,
      project_id: body.project_id,
      description: body.description ?? '',
      revision_number: 0,
      created_at: now,
      updated_at: now,
      floating_ip_address: ip.ip_address,
      floating_network_id: net.id,
      floating_port_id: portId,
      fixed_port_id: null,
      fixed_ip_address: null,
      router_id: null,
      status: 'DOWN',
    };
    await tx.insertInto('floatingips').values(row).execute();
    if (body.port_id) await this.associate(tx, ctx, row, body.port_id, body.fixed_ip_address ?? undefined);
    else if (body.fixed_ip_address) throw badFip('fixed_ip_address cannot be specified without a port_id');
    return id;
  }

  async update(ctx: RequestContext, id: string, body: FloatingIpUpdate): Promise<FloatingIpView> {
    const before = await inTransaction(this.db, async (tx) => {
      const f = await this.row(tx, ctx, id);
      checkOwner(ctx, 'floatingip', 'update', f.project_id);
      if (body.description !== undefined)
        await tx.updateTable('floatingips').set({ description: body.description }).where('id', '=', id).execute();
      if (body.port_id !== undefined) {
        if (body.port_id === null) {
          if (body.fixed_ip_address) throw badFip('fixed_ip_address cannot be specified without a port_id');
          await this.disassociate(tx, f);
        } else await this.associate(tx, ctx, f, body.port_id, body.fixed_ip_address ?? undefined);
      } else if (body.fixed_ip_address !== undefined) {
        if (!f.fixed_port_id) throw badFip('fixed_ip_address cannot be specified without a port_id');
        await this.associate(tx, ctx, f, f.fixed_port_id, body.fixed_ip_address ?? undefined);
      }
      await tx.updateTable('floatingips').set({ revision_number: Number(f.revision_number) + 1, updated_at: timestamp() }).where('id', '=', id).execute();
      return f;
    });
    await this.changed('update', id, await this.targets(before));
    return this.get(ctx, id);
  }

  async delete(ctx: RequestContext, id: string): Promise<void> {
    const f = await inTransaction(this.db, async (tx) => {
      const f = await this.row(tx, ctx, id);
      checkOwner(ctx, 'floatingip', 'delete', f.project_id);
      await tx.deleteFrom('floatingips').where('id', '=', id).execute();
      await this.ports.deleteInTx(tx, [f.floating_port_id]);
      await this.dvr.pruneFipGatewayPorts(tx, f.floating_network_id);
      return f;
    });
    await this.events.emit({ kind: 'floatingip', op: 'delete', id, routers: await this.targets(f) });
  }

  /**
   * Point the floating IP at (port, fixed IP): the fixed IP's subnet must be on a router
   * whose gateway is on the floating IP's network; one floating IP per fixed IP.
   */
  private async associate(tx: Tx, ctx: RequestContext, f: FloatingIpRow, portId: string, fixedIp: string | undefined) {
    const port = await tx.selectFrom('ports').selectAll().where('id', '=', portId).executeTakeFirst();
    if (!port || (!ctx.isAdmin && port.project_id !== ctx.projectId)) throw Faults.portNotFound(portId);
    if (!isFipServiced(port.device_owner)) throw badFip(`Port ${port.id} is unable to be assigned a floating IP`);
    const ips = (await tx.selectFrom('ipallocations').selectAll().where('port_id', '=', port.id).execute()).filter((a) => a.ip_address.includes('.'));
    let alloc;
    if (fixedIp) {
      alloc = ips.find((a) => a.ip_address === fixedIp);
      if (!alloc) throw badFip(`Port ${port.id} does not have fixed ip ${fixedIp}`);
    } else {
      if (!ips.length) throw badFip(`Cannot add floating IP to port ${port.id} that has no fixed IPv4 addresses`);
      if (ips.length > 1) throw badFip(`Port ${port.id} has multiple fixed IPv4 addresses.  Must provide a specific IPv4 address when assigning a floating IP`);
      alloc = ips[0];
    }
    const router = await tx
      .selectFrom('routers as r')
      .innerJoin('ports as itf', 'itf.device_id', 'r.id')
      .innerJoin('ipallocations as ia', 'ia.port_id', 'itf.id')
      .innerJoin('ports as gw', 'gw.id', 'r.gw_port_id')
      .selectAll('r')
      .where('ia.subnet_id', '=', alloc.subnet_id)
      .where('itf.device_owner', 'in', [DEVICE_OWNER.routerInterface, DEVICE_OWNER.routerInterfaceDistributed])
      .where('gw.network_id', '=', f.floating_network_id)
      .executeTakeFirst();
    if (!router)
      throw new NeutronError(
        'ExternalGatewayForFloatingIPNotFound',
        404,
        `External network ${f.floating_network_id} is not reachable from subnet ${alloc.subnet_id}.  Therefore, cannot associate Port ${port.id} with a Floating IP.`,
      );
    const taken = await tx
      .selectFrom('floatingips')
      .select(['id', 'floating_ip_address'])
      .where('floating_network_id', '=', f.floating_network_id)
      .where('fixed_port_id', '=', port.id)
      .where('fixed_ip_address', '=', alloc.ip_address)
      .where('id', '!=', f.id)
      .executeTakeFirst();
    if (taken)
      throw new NeutronError(
        'FloatingIPPortAlreadyAssociated',
        409,
        `Cannot associate floating IP ${f.floating_ip_address} (${f.id}) with port ${port.id} using fixed IP ${alloc.ip_address}, as that fixed IP already has a floating IP on external network ${f.floating_network_id}.`,
      );
    await tx
      .updateTable('floatingips')
      .set({ fixed_port_id: port.id, fixed_ip_address: alloc.ip_address, router_id: router.id, status: 'DOWN' })
      .where('id', '=', f.id)
      .execute();
    if (router.distributed && port.binding_host_id) await this.dvr.ensureFipGatewayPort(tx, f.floating_network_id, port.binding_host_id);
    await this.dvr.pruneFipGatewayPorts(tx, f.floating_network_id);
  }

  private async disassociate(tx: Tx, f: FloatingIpRow) {
    await tx.updateTable('floatingips').set({ fixed_port_id: null, fixed_ip_address: null, router_id: null, status: 'DOWN' }).where('id', '=', f.id).execute();
    await this.dvr.pruneFipGatewayPorts(tx, f.floating_network_id);
  }

  /** A port being deleted takes its floating IPs' association with it (not the addresses). */
  disassociatePort = async (tx: Tx, port: { id: string }) => {
    const fips = await tx.selectFrom('floatingips').selectAll().where('fixed_port_id', '=', port.id).execute();
    for (const f of fips) await this.disassociate(tx, f);
  };

  /**
   * A port moved to another host: its floating IPs need that host's fg port (DVR). Called
   * after port updates; cheap when the port has no floating IP.
   */
  async portBound(portId: string, host: string): Promise<void> {
    if (!host) return;
    await inTransaction(this.db, async (tx) => {
      const fips = await tx
        .selectFrom('floatingips as f')
        .innerJoin('routers as r', 'r.id', 'f.router_id')
        .select(['f.floating_network_id'])
        .where('f.fixed_port_id', '=', portId)
        .where('r.distributed', '=', 1)
        .execute();
      for (const f of fips) {
        await this.dvr.ensureFipGatewayPort(tx, f.floating_network_id, host);
        await this.dvr.pruneFipGatewayPorts(tx, f.floating_network_id);
      }
    });
  }

  /** What the host's L3 agent reports once it has (or could not) set floating IPs up. */
  async setStatuses(statuses: Record<string, FloatingIpStatus>): Promise<void> {
    for (const [id, status] of Object.entries(statuses))
      await this.db.kysely.updateTable('floatingips').set({ status }).where('id', '=', id).execute();
  }

  private async changed(op: 'create' | 'update', id: string, before: FipTarget[] = []) {
    const f = await this.db.kysely.selectFrom('floatingips').select(['router_id', 'fixed_port_id']).where('id', '=', id).executeTakeFirst();
    const after = f ? await this.targets(f) : [];
    const same = (a: FipTarget, b: FipTarget) => a.routerId === b.routerId && String(a.hosts) === String(b.hosts);
    await this.events.emit({ kind: 'floatingip', op, id, routers: [...before, ...after.filter((t) => !before.some((b) => same(b, t)))] });
  }

  /**
   * Whose L3 agents an association concerns (l3_dvr_db's _notify_floating_ip_change): with a
   * distributed router, only the host of the fixed port, where the floating IP lives (the
   * agents hosting the router's SNAT while the port is unbound); a centralized router's
   * every host. Not every host of a distributed router: at a thousand hosts, every floating
   * IP would cost a thousand router syncs for one host's change.
   */
  private async targets(f: { router_id: string | null; fixed_port_id: string | null }): Promise<FipTarget[]> {
    if (!f.router_id) return [];
    const r = await this.db.kysely.selectFrom('routers').select('distributed').where('id', '=', f.router_id).executeTakeFirst();
    if (!r?.distributed || !f.fixed_port_id) return [{ routerId: f.router_id }];
    const port = await this.db.kysely.selectFrom('ports').select('binding_host_id').where('id', '=', f.fixed_port_id).executeTakeFirst();
    const host = port?.binding_host_id || (await this.dvr.snatHost(undefined, f.router_id));
    return [{ routerId: f.router_id, hosts: host ? [host] : [] }];
  }
}
