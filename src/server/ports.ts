// Ports: MAC and fixed-IP allocation, security groups, allowed address pairs, port
// security, binding attributes and status. Allocation runs inside the port's transaction
// with the network's allocation domain locked, so concurrent creators never share an
// address or a MAC (the primary keys would refuse it anyway, and the call would retry).

import { randomInt } from 'node:crypto';
import type { ServerConfig } from '../config/server.js';
import { Faults } from '../common/errors.js';
import type { Db } from '../db/connect.js';
import type { NetworkRow, PortRow, SubnetRow } from '../db/schema.js';
import { afterCommit, inTransaction, lockDomain, type Tx } from '../db/tx.js';
import type { SelectQueryBuilder } from 'kysely';
import { BINDING_FAILED, UNBOUND, type PortBinder } from '../ml2/mech_openvswitch.js';
import type { RequestContext } from './context.js';
import { allocateFromPools, assertAssignable, cidrContains, ipToNum } from './ipam.js';
import { boolColumn, listRows, type Columns, type ListQuery } from './listing.js';
import type { NetworkService } from './networks.js';
import { checkNetworkUse, checkOwner, hideAttributes } from './policy.js';
import type { SecurityGroupService } from './security_groups.js';
import type { SubnetService } from './subnets.js';
import type { Events } from './events.js';
import { b, chunks, i, stdCreate, stdView, timestamp } from './util.js';

export interface FixedIpRequest {
  subnet_id?: string;
  ip_address?: string;
}

export interface AddressPair {
  ip_address: string;
  mac_address?: string;
}

export interface PortCreate {
  project_id: string;
  network_id: string;
  name?: string;
  description?: string;
  admin_state_up?: boolean;
  mac_address?: string;
  fixed_ips?: FixedIpRequest[];
  device_id?: string;
  device_owner?: string;
  security_groups?: string[];
  allowed_address_pairs?: AddressPair[];
  port_security_enabled?: boolean;
  'binding:host_id'?: string;
  'binding:profile'?: Record<string, unknown>;
  'binding:vnic_type'?: string;
}

export type PortUpdate = Partial<Omit<PortCreate, 'project_id' | 'network_id'>>;

export type PortView = ReturnType<typeof view>;

export type PortStatus = 'ACTIVE' | 'DOWN' | 'BUILD' | 'ERROR';

/** Binding without any agent knowledge: nothing can be bound. */
export const noAgentBinder: PortBinder = {
  async bind() {
    return BINDING_FAILED;
  },
};

const COLUMNS: Columns = {
  id: { col: 'p.id' },
  name: { col: 'p.name' },
  description: { col: 'p.description' },
  project_id: { col: 'p.project_id' },
  tenant_id: { col: 'p.project_id' },
  network_id: { col: 'p.network_id' },
  mac_address: { col: 'p.mac_address', toDb: (v) => String(v).toLowerCase() },
  admin_state_up: boolColumn('p.admin_state_up'),
  status: { col: 'p.status' },
  device_id: { col: 'p.device_id' },
  device_owner: { col: 'p.device_owner' },
  port_security_enabled: boolColumn('p.port_security_enabled'),
  'binding:host_id': { col: 'p.binding_host_id' },
  'binding:vif_type': { col: 'p.binding_vif_type' },
  'binding:vnic_type': { col: 'p.binding_vnic_type' },
  revision_number: { col: 'p.revision_number' },
  created_at: { col: 'p.created_at' },
  updated_at: { col: 'p.updated_at' },
};

interface Children {
  ips: Array<{ subnet_id: string; ip_address: string }>;
  sgs: string[];
  pairs: Array<{ ip_address: string; mac_address: string }>;
}

/** The ports table's columns, in the order the list reads them as arrays. */
const PORT_COLUMNS = [
  'id', 'project_id', 'name', 'description', 'revision_number', 'created_at', 'updated_at', 'network_id', 'mac_address', 'admin_state_up',
  'status', 'device_id', 'device_owner', 'port_security_enabled', 'binding_host_id', 'binding_vif_type', 'binding_vif_details', 'binding_profile', 'binding_vnic_type',
] as const satisfies ReadonlyArray<keyof PortRow>;

const portRow = (r: unknown[]): PortRow => ({
  id: r[0] as string,
  project_id: r[1] as string,
  name: r[2] as string,
  description: r[3] as string,
  revision_number: Number(r[4]),
  created_at: r[5] as string,
  updated_at: r[6] as string,
  network_id: r[7] as string,
  mac_address: r[8] as string,
  admin_state_up: Number(r[9]),
  status: r[10] as string,
  device_id: r[11] as string,
  device_owner: r[12] as string,
  port_security_enabled: Number(r[13]),
  binding_host_id: r[14] as string,
  binding_vif_type: r[15] as string,
  binding_vif_details: r[16] as string,
  binding_profile: r[17] as string,
  binding_vnic_type: r[18] as string,
});

/** Most ports have empty binding dicts: skip JSON.parse for them (list hot path). */
const parseDict = (s: string): Record<string, unknown> => (s === '{}' ? {} : JSON.parse(s));

// Built as one literal (no spreads) so V8 keeps a fast object shape for 1000-port lists.
function view(p: PortRow, c: Children) {
  return {
    id: p.id,
    name: p.name,
    tenant_id: p.project_id,
    project_id: p.project_id,
    description: p.description,
    created_at: p.created_at,
    updated_at: p.updated_at,
    revision_number: Number(p.revision_number),
    network_id: p.network_id,
    mac_address: p.mac_address,
    admin_state_up: p.admin_state_up === 1,
    status: p.status,
    device_id: p.device_id,
    device_owner: p.device_owner,
    fixed_ips: c.ips,
    allowed_address_pairs: c.pairs,
    extra_dhcp_opts: [] as unknown[],
    security_groups: c.sgs,
    port_security_enabled: p.port_security_enabled === 1,
    ip_allocation: 'immediate',
    tags: [] as string[],
    'binding:host_id': p.binding_host_id,
    'binding:vnic_type': p.binding_vnic_type,
    'binding:profile': parseDict(p.binding_profile),
    'binding:vif_type': p.binding_vif_type,
    'binding:vif_details': parseDict(p.binding_vif_details),
  };
}

/** Members see their own ports and every port on networks they own. */
function visible(qb: any, ctx: RequestContext) {
  if (ctx.isAdmin) return qb;
  return qb.where((eb: any) =>
    eb.or([
      eb('p.project_id', '=', ctx.projectId),
      eb.exists(eb.selectFrom('networks as vn').select('vn.id').whereRef('vn.id', '=', 'p.network_id').where('vn.project_id', '=', ctx.projectId)),
    ]),
  );
}

/** `fixed_ips=ip_address=X` / `fixed_ips=subnet_id=Y` filters, as Neutron's client sends them. */
function fixedIpFilter(qb: any, values: unknown[]) {
  const conds = values.map((v) => {
    const [key, val] = String(v).split('=', 2);
    if ((key !== 'ip_address' && key !== 'subnet_id' && key !== 'ip_address_substr') || val === undefined)
      throw Faults.badRequest(`Invalid fixed_ips filter '${String(v)}': use ip_address=IP or subnet_id=ID`);
    return { key, val };
  });
  for (const { key, val } of conds)
    qb = qb.where((eb: any) =>
      eb.exists(
        eb
          .selectFrom('ipallocations as fa')
          .select('fa.port_id')
          .whereRef('fa.port_id', '=', 'p.id')
          .where(key === 'ip_address_substr' ? 'fa.ip_address' : `fa.${key}`, key === 'ip_address_substr' ? 'like' : '=', key === 'ip_address_substr' ? `%${val}%` : val),
      ),
    );
  return qb;
}

/** A check run before a port is deleted through the API, inside its transaction (may throw). */
export type DeleteGuard = (tx: Tx, port: PortRow) => Promise<void>;

export class PortService {
  binder: PortBinder = noAgentBinder;
  readonly deleteGuards: DeleteGuard[] = [];

  constructor(
    private readonly db: Db,
    private readonly events: Events,
    private readonly conf: ServerConfig,
    private readonly networks: NetworkService,
    private readonly subnets: SubnetService,
    private readonly groups: SecurityGroupService,
  ) {}

  /** The port filters that are not plain columns: fixed_ips and security_groups. */
  private narrow(q: ListQuery) {
    return (qb: any) => {
      if (q.filters.fixed_ips) qb = fixedIpFilter(qb, q.filters.fixed_ips);
      if (q.filters.security_groups)
        qb = qb.where((eb: any) =>
          eb.exists(eb.selectFrom('securitygroupportbindings as fb').select('fb.port_id').whereRef('fb.port_id', '=', 'p.id').where('fb.security_group_id', 'in', q.filters.security_groups)),
        );
      return qb;
    };
  }

  async list(ctx: RequestContext, q: ListQuery): Promise<PortView[]> {
    const k = this.db.kysely;
    const { rows, filtered } = await listRows<PortRow>(visible(k.selectFrom('ports as p').selectAll('p'), ctx), COLUMNS, 'p.id', q, Faults.portNotFound, this.narrow(q), async (qb) =>
      (await this.db.arrays(qb.clearSelect().select(PORT_COLUMNS.map((c) => `p.${c}`)).compile())).map(portRow),
    );
    // A whole (filtered) collection: children by the same filter, not by a long id list.
    // An admin's unfiltered list is every port: its child rows are whole tables.
    const everything = ctx.isAdmin && !Object.keys(q.filters).length;
    const scope = q.limit === undefined && !q.marker ? (everything ? 'all' : filtered.clearSelect().select('p.id')) : undefined;
    const children = await this.children(rows.map((r) => r.id), scope);
    return rows.map((r) => view(r, children.get(r.id)!));
  }

  /**
   * A whole list as the JSON text of its reply: each port's document is serialised once
   * per revision (every change of a port or of its addresses, groups and pairs bumps
   * revision_number) and reused, so a list of unchanged ports costs one small query and a
   * join of strings. Undefined for what it does not serve (paging, sorting).
   */
  async listJson(ctx: RequestContext, q: ListQuery): Promise<string | undefined> {
    if (q.limit !== undefined || q.marker || q.sort.length) return undefined;
    const k = this.db.kysely;
    const { rows } = await listRows<[string, number]>(visible(k.selectFrom('ports as p').selectAll('p'), ctx), COLUMNS, 'p.id', q, Faults.portNotFound, this.narrow(q), async (qb) =>
      (await this.db.arrays(qb.clearSelect().select(['p.id', 'p.revision_number']).compile())) as Array<[string, number]>,
    );
    const variant = ctx.isAdmin ? 'admin' : 'member';
    const fresh = (id: string, rev: number) => {
      const d = this.docs.get(id);
      return d && d.rev === Number(rev) ? d[variant] : undefined;
    };
    const missing = rows.filter(([id, rev]) => fresh(id, rev) === undefined).map(([id]) => id);
    for (const part of chunks(missing, 900)) {
      for (const v of await this.list(ctx, { filters: { id: part }, sort: [] })) {
        const d = this.docs.get(v.id);
        const doc = d && d.rev === v.revision_number ? d : { rev: v.revision_number };
        doc[variant] = JSON.stringify(ctx.isAdmin ? v : hideAttributes(ctx, 'port', { ...v }));
        this.docs.set(v.id, doc);
      }
    }
    if (this.docs.size > 4 * rows.length + 10_000) this.docs.clear(); // deleted ports' documents
    return `{"ports":[${rows.map(([id, rev]) => fresh(id, rev) ?? '').filter(Boolean).join(',')}]}`;
  }

  private readonly docs = new Map<string, { rev: number; admin?: string; member?: string }>();

  /** Fixed IPs, groups and address pairs of many ports in a few queries. */
  private async children(ids: string[], scope?: SelectQueryBuilder<any, any, { id: string }> | 'all'): Promise<Map<string, Children>> {
    const out = new Map<string, Children>(ids.map((id) => [id, { ips: [], sgs: [], pairs: [] }]));
    const k = this.db.kysely;
    const of = <Q extends SelectQueryBuilder<any, any, any>>(qb: Q, part: (typeof parts)[number]) => (part === 'all' ? qb : qb.where('port_id', 'in', part));
    const parts: Array<string[] | SelectQueryBuilder<any, any, { id: string }> | 'all'> = scope ? [scope] : chunks(ids, 900);
    for (const part of parts) {
      // Rows as arrays (the hot path of big lists); no ORDER BY: it would steer SQLite onto
      // the (subnet, ip_num) index, a full scan.
      const [ips, sgs, pairs] = await Promise.all([
        this.db.arrays(of(k.selectFrom('ipallocations').select(['port_id', 'subnet_id', 'ip_address', 'ip_num']), part).compile()),
        this.db.arrays(of(k.selectFrom('securitygroupportbindings').select(['port_id', 'security_group_id']), part).compile()),
        this.db.arrays(of(k.selectFrom('allowedaddresspairs').select(['port_id', 'ip_address', 'mac_address']), part).compile()),
      ]);
      ips.sort((x, y) => Number(x[3]) - Number(y[3]));
      for (const a of ips) out.get(a[0] as string)?.ips.push({ subnet_id: a[1] as string, ip_address: a[2] as string });
      for (const g of sgs) out.get(g[0] as string)?.sgs.push(g[1] as string);
      for (const p of pairs) out.get(p[0] as string)?.pairs.push({ ip_address: p[1] as string, mac_address: p[2] as string });
    }
    return out;
  }

  async get(ctx: RequestContext, id: string): Promise<PortView> {
    const [p] = await this.list(ctx, { filters: { id: [id] }, sort: [] });
    if (!p) throw Faults.portNotFound(id);
    return p;
  }

  async create(ctx: RequestContext, body: PortCreate): Promise<PortView> {
    const [v] = await this.createBulk(ctx, [body]);
    return v;
  }

  async createBulk(ctx: RequestContext, bodies: PortCreate[]): Promise<PortView[]> {
    // The views come from what was written: no read-back after the commit.
    return inTransaction(this.db, async (tx) => {
      const out: PortView[] = [];
      for (const body of bodies) out.push((await this.insert(tx, ctx, body)).view);
      return out;
    });
  }

  /** Tell listeners about ports after their transaction committed. */
  async emitRows(op: 'create' | 'update', ids: string[], before?: Map<string, PortRow>) {
    if (!ids.length) return;
    const rows = await this.db.kysely.selectFrom('ports').selectAll().where('id', 'in', ids).execute();
    for (const r of rows) await this.events.emit({ kind: 'port', op, before: before?.get(r.id), after: r });
  }

  /** Create a port inside the caller's transaction (router and floating-IP ports use this). */
  async createInTx(tx: Tx, ctx: RequestContext, body: PortCreate): Promise<string> {
    return (await this.insert(tx, ctx, body)).row.id;
  }

  private async insert(tx: Tx, ctx: RequestContext, body: PortCreate): Promise<{ row: PortRow; view: PortView }> {
    await lockDomain(this.db, tx, `network:${body.network_id}`);
    const net = await this.networks.row(tx, ctx, body.network_id);
    checkNetworkUse(ctx, 'port', net);
    const row = stdCreate(body.project_id, body.name, body.description);
    const mac = await this.chooseMac(tx, net.id, body.mac_address);
    const portSecurity = body.port_security_enabled ?? b(net.port_security_enabled);
    const owner = body.device_owner ?? '';
    const sgs = await this.securityGroupsFor(tx, ctx, body.project_id, portSecurity, owner, body.security_groups);
    const pairs = this.addressPairs(portSecurity, mac, body.allowed_address_pairs ?? []);
    const host = body['binding:host_id'] ?? '';
    const vnic = body['binding:vnic_type'] ?? 'normal';
    const binding = host ? await this.binder.bind(tx, { id: row.id, network_id: net.id, host, vnic_type: vnic, device_owner: owner }) : UNBOUND;
    const port: PortRow = {
      ...row,
      network_id: net.id,
      mac_address: mac,
      admin_state_up: i(body.admin_state_up ?? true),
      status: 'DOWN',
      device_id: body.device_id ?? '',
      device_owner: owner,
      port_security_enabled: i(portSecurity),
      binding_host_id: host,
      binding_vif_type: binding.vif_type,
      binding_vif_details: JSON.stringify(binding.vif_details),
      binding_profile: JSON.stringify(body['binding:profile'] ?? {}),
      binding_vnic_type: vnic,
    };
    await tx.insertInto('ports').values(port).execute();
    const ips = await this.allocateIps(tx, net, row.id, body.fixed_ips, owner);
    if (sgs.length) await tx.insertInto('securitygroupportbindings').values(sgs.map((s) => ({ port_id: row.id, security_group_id: s }))).execute();
    if (pairs.length) await tx.insertInto('allowedaddresspairs').values(pairs.map((p) => ({ port_id: row.id, ...p }))).execute();
    afterCommit(tx, () => this.emitRows('create', [row.id]));
    return { row: port, view: view(port, { ips, sgs, pairs }) };
  }

  /**
   * A requested MAC must be free on the network; a generated one keeps base_mac's first
   * three octets (and the fourth when it is not 00) and randomises the rest.
   */
  private async chooseMac(tx: Tx, networkId: string, requested?: string): Promise<string> {
    const taken = async (m: string) =>
      !!(await tx.selectFrom('ports').select('id').where('network_id', '=', networkId).where('mac_address', '=', m).executeTakeFirst());
    if (requested) {
      if (await taken(requested)) throw Faults.macAddressInUse(networkId, requested);
      return requested;
    }
    const base = this.conf.base_mac.toLowerCase().split(':');
    for (let attempt = 0; attempt < 16; attempt++) {
      const m = base.map((o, k) => (k < 3 || (k === 3 && o !== '00') ? o : randomInt(256).toString(16).padStart(2, '0'))).join(':');
      if (!(await taken(m))) return m;
    }
    throw Faults.macGenerationFailure(networkId);
  }

  private async securityGroupsFor(
    tx: Tx,
    ctx: RequestContext,
    projectId: string,
    portSecurity: boolean,
    owner: string,
    requested: string[] | undefined,
  ): Promise<string[]> {
    if (requested !== undefined) {
      if (requested.length && !portSecurity) throw Faults.portSecurityAndIPRequiredForSecurityGroups();
      return this.groups.resolveForPort(tx, ctx, [...new Set(requested)]);
    }
    // Neutron gives the project's default group to ports with port security, except the
    // network's own ports (router, DHCP...).
    if (!portSecurity || owner.startsWith('network:')) return [];
    return [await this.groups.ensureDefault(tx, projectId)];
  }

  private addressPairs(portSecurity: boolean, mac: string, pairs: AddressPair[]) {
    if (pairs.length && !portSecurity) throw Faults.addressPairAndPortSecurityRequired();
    const out = pairs.map((p) => ({ ip_address: p.ip_address, mac_address: p.mac_address ?? mac }));
    const keys = new Set(out.map((p) => `${p.mac_address}/${p.ip_address}`));
    if (keys.size !== out.length) throw Faults.invalidAttribute('allowed_address_pairs', 'Duplicate address pair found');
    return out;
  }

  /**
   * Neutron's rules: no fixed_ips -> one address from the first IPv4 subnet with room;
   * `{subnet_id}` -> any address of that subnet; `{ip_address[, subnet_id]}` -> exactly it
   * (any address of the subnet, pool or not, but not one in use).
   */
  /** Allocate and write the port's fixed IPs; returns them as the API shows them. */
  private async allocateIps(tx: Tx, net: NetworkRow, portId: string, requested: FixedIpRequest[] | undefined, owner: string) {
    const subnets = await this.subnets.ofNetwork(tx, net.id);
    const out: Array<{ subnet_id: string; ip_address: string }> = [];
    // Each address is written at once, so the next request of the same call sees it taken.
    const add = async (s: SubnetRow, ip: string) => {
      await tx.insertInto('ipallocations').values({ port_id: portId, network_id: net.id, subnet_id: s.id, ip_address: ip, ip_num: ipToNum(ip) }).execute();
      out.push({ subnet_id: s.id, ip_address: ip });
    };
    if (requested === undefined) {
      for (const s of subnets.filter((x) => x.ip_version === 4)) {
        const ip = await allocateFromPools(tx, s.id, await this.pools(tx, s.id));
        if (ip) {
          await add(s, ip);
          return out;
        }
      }
      if (subnets.length) throw Faults.ipAddressGenerationFailure(net.id);
      return out;
    }
    for (const r of requested) {
      const s = this.subnetFor(subnets, net.id, r);
      if (r.ip_address) {
        assertAssignable(s, r.ip_address);
        const isGateway = s.gateway_ip === r.ip_address && !owner.startsWith('network:router');
        if (isGateway || (await this.ipTaken(tx, s.id, r.ip_address))) throw Faults.ipAddressInUse(net.id, r.ip_address);
        await add(s, r.ip_address);
      } else {
        const ip = await allocateFromPools(tx, s.id, await this.pools(tx, s.id));
        if (!ip) throw Faults.ipAddressGenerationFailure(net.id);
        await add(s, ip);
      }
    }
    out.sort((a, b) => ipToNum(a.ip_address) - ipToNum(b.ip_address));
    return out;
  }

  private subnetFor(subnets: SubnetRow[], netId: string, r: FixedIpRequest): SubnetRow {
    if (r.subnet_id) {
      const s = subnets.find((x) => x.id === r.subnet_id);
      if (!s) throw Faults.invalidInput(`Failed to create port on network ${netId}, because fixed_ips included invalid subnet ${r.subnet_id}`);
      if (r.ip_address && !cidrContains(s.cidr, r.ip_address))
        throw Faults.invalidInput(`IP address ${r.ip_address} is not a valid IP for the specified subnet.`);
      return s;
    }
    if (!r.ip_address) throw Faults.invalidInput('IP allocation requires subnet_id or ip_address');
    const s = subnets.find((x) => cidrContains(x.cidr, r.ip_address!));
    if (!s) throw Faults.invalidInput(`IP address ${r.ip_address} is not a valid IP for any of the subnets on the specified network.`);
    return s;
  }

  private async ipTaken(tx: Tx, subnetId: string, ip: string) {
    return !!(await tx.selectFrom('ipallocations').select('port_id').where('subnet_id', '=', subnetId).where('ip_address', '=', ip).executeTakeFirst());
  }

  private pools(tx: Tx, subnetId: string) {
    return tx.selectFrom('ipallocationpools').select(['first_num', 'last_num']).where('subnet_id', '=', subnetId).orderBy('first_num').execute();
  }

  private async row(tx: Tx, ctx: RequestContext, id: string): Promise<PortRow> {
    const p = await visible(tx.selectFrom('ports as p').selectAll('p'), ctx).where('p.id', '=', id).executeTakeFirst();
    if (!p) throw Faults.portNotFound(id);
    return p as PortRow;
  }

  async update(ctx: RequestContext, id: string, body: PortUpdate): Promise<PortView> {
    await inTransaction(this.db, async (tx) => {
      const p = await this.row(tx, ctx, id);
      await this.updateInTx(tx, ctx, p, body);
    });
    return this.get(ctx, id);
  }

  /** Apply a port update inside the caller's transaction. */
  async updateInTx(tx: Tx, ctx: RequestContext, p: PortRow, body: PortUpdate): Promise<void> {
    const id = p.id;
    afterCommit(tx, () => this.emitRows('update', [id], new Map([[id, p]])));
    checkOwner(ctx, 'port', 'update', p.project_id);
    await lockDomain(this.db, tx, `network:${p.network_id}`);
    const set: Partial<PortRow> = {};
    const portSecurity = body.port_security_enabled ?? b(p.port_security_enabled);
    if (body.mac_address !== undefined && body.mac_address !== p.mac_address) {
      if (p.binding_vif_type !== 'unbound' && p.binding_vif_type !== 'binding_failed')
        throw Faults.badRequest(`Port ${id} is bound: its MAC address cannot be changed`);
      set.mac_address = await this.chooseMac(tx, p.network_id, body.mac_address);
    }
    const mac = set.mac_address ?? p.mac_address;
    // Groups and pairs after this update: what the body says, else what the port has.
    const sgs =
      body.security_groups !== undefined
        ? body.security_groups
        : (await tx.selectFrom('securitygroupportbindings').select('security_group_id').where('port_id', '=', id).execute()).map((r) => r.security_group_id);
    const hasPairs =
      body.allowed_address_pairs !== undefined
        ? body.allowed_address_pairs.length > 0
        : !!(await tx.selectFrom('allowedaddresspairs').select('port_id').where('port_id', '=', id).limit(1).executeTakeFirst());
    if (!portSecurity) {
      if (sgs.length) throw body.security_groups !== undefined ? Faults.portSecurityAndIPRequiredForSecurityGroups() : Faults.portSecurityPortHasSecurityGroup();
      if (hasPairs) throw Faults.addressPairAndPortSecurityRequired();
    }
    if (body.security_groups !== undefined) {
      const ids = await this.groups.resolveForPort(tx, ctx, [...new Set(body.security_groups)]);
      await tx.deleteFrom('securitygroupportbindings').where('port_id', '=', id).execute();
      if (ids.length) await tx.insertInto('securitygroupportbindings').values(ids.map((s) => ({ port_id: id, security_group_id: s }))).execute();
    }
    if (body.allowed_address_pairs !== undefined) {
      const pairs = this.addressPairs(portSecurity, mac, body.allowed_address_pairs);
      await tx.deleteFrom('allowedaddresspairs').where('port_id', '=', id).execute();
      if (pairs.length) await tx.insertInto('allowedaddresspairs').values(pairs.map((x) => ({ port_id: id, ...x }))).execute();
    }
    if (body.fixed_ips !== undefined) await this.replaceIps(tx, ctx, p, body.fixed_ips, body.device_owner ?? p.device_owner);
    if (body.name !== undefined) set.name = body.name;
    if (body.description !== undefined) set.description = body.description;
    if (body.admin_state_up !== undefined) set.admin_state_up = i(body.admin_state_up);
    if (body.device_id !== undefined) set.device_id = body.device_id;
    if (body.device_owner !== undefined) set.device_owner = body.device_owner;
    if (body.port_security_enabled !== undefined) set.port_security_enabled = i(body.port_security_enabled);
    if (body['binding:profile'] !== undefined) set.binding_profile = JSON.stringify(body['binding:profile']);
    if (body['binding:vnic_type'] !== undefined) set.binding_vnic_type = body['binding:vnic_type'];
    if (body['binding:host_id'] !== undefined && body['binding:host_id'] !== p.binding_host_id) {
      const host = body['binding:host_id'];
      set.binding_host_id = host;
      const bound = host
        ? await this.binder.bind(tx, { id, network_id: p.network_id, host, vnic_type: set.binding_vnic_type ?? p.binding_vnic_type, device_owner: set.device_owner ?? p.device_owner })
        : UNBOUND;
      set.binding_vif_type = bound.vif_type;
      set.binding_vif_details = JSON.stringify(bound.vif_details);
      if (!host) set.status = 'DOWN';
    }
    await tx.updateTable('ports').set({ ...set, revision_number: Number(p.revision_number) + 1, updated_at: timestamp() }).where('id', '=', id).execute();
  }

  /** Keep the addresses the new list still names, free the others, allocate the new ones. */
  private async replaceIps(tx: Tx, ctx: RequestContext, p: PortRow, requested: FixedIpRequest[], owner: string) {
    const current = await tx.selectFrom('ipallocations').selectAll().where('port_id', '=', p.id).execute();
    const keep = current.filter((c) => requested.some((r) => r.ip_address === c.ip_address && (!r.subnet_id || r.subnet_id === c.subnet_id)));
    const fresh = requested.filter((r) => !keep.some((c) => c.ip_address === r.ip_address));
    const drop = current.filter((c) => !keep.includes(c));
    for (const d of drop) await tx.deleteFrom('ipallocations').where('subnet_id', '=', d.subnet_id).where('ip_address', '=', d.ip_address).execute();
    if (fresh.length) {
      const net = await this.networks.row(tx, ctx, p.network_id);
      await this.allocateIps(tx, net, p.id, fresh, owner);
    }
  }

  async delete(ctx: RequestContext, id: string): Promise<void> {
    await inTransaction(this.db, async (tx) => {
      const p = await this.row(tx, ctx, id);
      checkOwner(ctx, 'port', 'delete', p.project_id);
      for (const guard of this.deleteGuards) await guard(tx, p);
      await this.deleteInTx(tx, [id]);
    });
  }

  /** Delete ports inside the caller's transaction, without the API's guards. */
  async deleteInTx(tx: Tx, ids: string[]): Promise<PortRow[]> {
    if (!ids.length) return [];
    const rows = await tx.selectFrom('ports').selectAll().where('id', 'in', ids).execute();
    const ips = await tx.selectFrom('ipallocations').select(['port_id', 'subnet_id', 'ip_address']).where('port_id', 'in', ids).execute();
    const groups = await tx.selectFrom('securitygroupportbindings').selectAll().where('port_id', 'in', ids).execute();
    await tx.deleteFrom('ports').where('id', 'in', ids).execute();
    afterCommit(tx, async () => {
      for (const before of rows) {
        const fixedIps = ips.filter((a) => a.port_id === before.id).map((a) => ({ subnet_id: a.subnet_id, ip_address: a.ip_address }));
        const securityGroups = groups.filter((g) => g.port_id === before.id).map((g) => g.security_group_id);
        await this.events.emit({ kind: 'port', op: 'delete', before, fixedIps, securityGroups });
      }
    });
    return rows;
  }

  /** What an agent reports when it has wired (up) or unwired (down) a port on its host. */
  async setStatus(id: string, status: PortStatus): Promise<void> {
    const before = await this.db.kysely.selectFrom('ports').selectAll().where('id', '=', id).executeTakeFirst();
    const r = await this.db.kysely
      .updateTable('ports')
      .set((eb) => ({ status, updated_at: timestamp(), revision_number: eb('revision_number', '+', 1) }))
      .where('id', '=', id)
      .where('status', '!=', status)
      .executeTakeFirst();
    if (r.numUpdatedRows === 0n && !(await this.db.kysely.selectFrom('ports').select('id').where('id', '=', id).executeTakeFirst()))
      throw Faults.portNotFound(id);
    if (r.numUpdatedRows > 0n) await this.emitRows('update', [id], before ? new Map([[id, before]]) : undefined);
  }
}
