// Security groups and their rules, with Neutron's validation, the per-project `default`
// group created on first need, and the in-use guard.

import ipaddr from 'ipaddr.js';
import { Faults, NeutronError } from '../common/errors.js';
import type { Db } from '../db/connect.js';
import type { SecurityGroupRow, SecurityGroupRuleRow } from '../db/schema.js';
import { inTransaction, type Tx } from '../db/tx.js';
import type { RequestContext } from './context.js';
import type { Events } from './events.js';
import { boolColumn, listRows, type Columns, type ListQuery } from './listing.js';
import { checkOwner } from './policy.js';
import { b, chunks, i, newId, stdCreate, stdView, timestamp } from './util.js';

export interface SecurityGroupCreate {
  project_id: string;
  name?: string;
  description?: string;
  stateful?: boolean;
}
export type SecurityGroupUpdate = Partial<Pick<SecurityGroupCreate, 'name' | 'description' | 'stateful'>>;

export interface RuleCreate {
  project_id: string;
  security_group_id: string;
  direction: 'ingress' | 'egress';
  ethertype?: 'IPv4' | 'IPv6';
  protocol?: string | number | null;
  port_range_min?: number | null;
  port_range_max?: number | null;
  remote_ip_prefix?: string | null;
  remote_group_id?: string | null;
  remote_address_group_id?: string | null;
  description?: string;
}

/** IP protocol names Neutron accepts (neutron_lib constants IP_PROTOCOL_MAP). */
const PROTOCOLS: Record<string, number> = {
  ah: 51, dccp: 33, egp: 8, esp: 50, gre: 47, hopopt: 0, icmp: 1, igmp: 2, ipip: 4, 'ipv6-encap': 41,
  'ipv6-frag': 44, 'ipv6-icmp': 58, icmpv6: 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60, 'ipv6-route': 43,
  ospf: 89, pgm: 113, rsvp: 46, sctp: 132, tcp: 6, udp: 17, udplite: 136, vrrp: 112,
};
const PORT_PROTOCOLS = new Set([6, 17, 33, 132, 136]);
const ICMP_PROTOCOLS = new Set([1, 58]);

const bad = (type: string, message: string) => new NeutronError(type, 400, message);

export type SecurityGroupView = ReturnType<typeof groupView>;
export type RuleView = ReturnType<typeof ruleView>;

function ruleView(r: SecurityGroupRuleRow) {
  return {
    id: r.id,
    tenant_id: r.project_id,
    project_id: r.project_id,
    security_group_id: r.security_group_id,
    ethertype: r.ethertype,
    direction: r.direction,
    protocol: r.protocol,
    port_range_min: r.port_range_min,
    port_range_max: r.port_range_max,
    remote_ip_prefix: r.remote_ip_prefix,
    normalized_cidr: r.remote_ip_prefix ? normalize(r.remote_ip_prefix) : null,
    remote_group_id: r.remote_group_id,
    remote_address_group_id: r.remote_address_group_id,
    description: r.description,
    tags: [] as string[],
    created_at: r.created_at,
    updated_at: r.updated_at,
    revision_number: Number(r.revision_number),
  };
}

function groupView(g: SecurityGroupRow, rules: SecurityGroupRuleRow[]) {
  return {
    ...stdView(g),
    stateful: b(g.stateful),
    shared: false,
    tags: [] as string[],
    security_group_rules: rules.map(ruleView),
  };
}

const normalize = (prefix: string): string => {
  const [addr, len] = ipaddr.parseCIDR(prefix);
  const net = addr.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(prefix) : ipaddr.IPv6.networkAddressFromCIDR(prefix);
  return `${net.toString()}/${len}`;
};

const GROUP_COLUMNS: Columns = {
  id: { col: 'g.id' },
  name: { col: 'g.name' },
  description: { col: 'g.description' },
  project_id: { col: 'g.project_id' },
  tenant_id: { col: 'g.project_id' },
  stateful: boolColumn('g.stateful'),
  revision_number: { col: 'g.revision_number' },
  created_at: { col: 'g.created_at' },
  updated_at: { col: 'g.updated_at' },
};

const RULE_COLUMNS: Columns = {
  id: { col: 'r.id' },
  project_id: { col: 'r.project_id' },
  tenant_id: { col: 'r.project_id' },
  security_group_id: { col: 'r.security_group_id' },
  direction: { col: 'r.direction' },
  ethertype: { col: 'r.ethertype' },
  protocol: { col: 'r.protocol', toDb: (v) => String(v) },
  port_range_min: { col: 'r.port_range_min' },
  port_range_max: { col: 'r.port_range_max' },
  remote_ip_prefix: { col: 'r.remote_ip_prefix' },
  remote_group_id: { col: 'r.remote_group_id' },
  description: { col: 'r.description' },
  created_at: { col: 'r.created_at' },
  updated_at: { col: 'r.updated_at' },
};

const visibleGroups = (qb: any, ctx: RequestContext) => (ctx.isAdmin ? qb : qb.where('g.project_id', '=', ctx.projectId));
const visibleRules = (qb: any, ctx: RequestContext) =>
  ctx.isAdmin
    ? qb
    : qb.where((eb: any) =>
        eb.or([
          eb('r.project_id', '=', ctx.projectId),
          eb.exists(eb.selectFrom('securitygroups as vg').select('vg.id').whereRef('vg.id', '=', 'r.security_group_id').where('vg.project_id', '=', ctx.projectId)),
        ]),
      );

export class SecurityGroupService {
  constructor(
    private readonly db: Db,
    private readonly events: Events,
  ) {}

  /**
   * The project's `default` group, created with Neutron's default rules the first time the
   * project needs it: egress anywhere (IPv4, IPv6) and ingress from members of the group.
   */
  async ensureDefault(tx: Tx, projectId: string): Promise<string> {
    const have = await tx.selectFrom('default_security_group').select('security_group_id').where('project_id', '=', projectId).executeTakeFirst();
    if (have) return have.security_group_id;
    const g = stdCreate(projectId, 'default', 'Default security group');
    await tx.insertInto('securitygroups').values({ ...g, stateful: 1 }).execute();
    await tx.insertInto('default_security_group').values({ project_id: projectId, security_group_id: g.id }).execute();
    const rule = (direction: string, ethertype: string, remote: string | null) => ({
      id: newId(), project_id: projectId, security_group_id: g.id, remote_group_id: remote, remote_address_group_id: null,
      direction, ethertype, protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null,
      description: '', revision_number: 0, created_at: g.created_at, updated_at: g.created_at,
    });
    await tx
      .insertInto('securitygrouprules')
      .values([rule('egress', 'IPv4', null), rule('egress', 'IPv6', null), rule('ingress', 'IPv4', g.id), rule('ingress', 'IPv6', g.id)])
      .execute();
    return g.id;
  }

  async list(ctx: RequestContext, q: ListQuery): Promise<SecurityGroupView[]> {
    if (!ctx.isAdmin || q.filters.project_id || q.filters.tenant_id) {
      // Neutron creates the default group when a project first looks at its groups.
      const projects = ctx.isAdmin ? [...(q.filters.project_id ?? []), ...(q.filters.tenant_id ?? [])] : [ctx.projectId];
      await inTransaction(this.db, async (tx) => {
        for (const p of projects) await this.ensureDefault(tx, String(p));
      });
    }
    const k = this.db.kysely;
    const { rows } = await listRows<SecurityGroupRow>(visibleGroups(k.selectFrom('securitygroups as g').selectAll('g'), ctx), GROUP_COLUMNS, 'g.id', q, Faults.securityGroupNotFound);
    const rules = new Map<string, SecurityGroupRuleRow[]>();
    for (const part of chunks(rows.map((r) => r.id), 500))
      for (const r of await k.selectFrom('securitygrouprules').selectAll().where('security_group_id', 'in', part).orderBy('created_at').orderBy('id').execute())
        (rules.get(r.security_group_id) ?? rules.set(r.security_group_id, []).get(r.security_group_id)!).push(r);
    return rows.map((g) => groupView(g, rules.get(g.id) ?? []));
  }

  async get(ctx: RequestContext, id: string): Promise<SecurityGroupView> {
    const [g] = await this.list(ctx, { filters: { id: [id] }, sort: [] });
    if (!g) throw Faults.securityGroupNotFound(id);
    return g;
  }

  async create(ctx: RequestContext, body: SecurityGroupCreate): Promise<SecurityGroupView> {
    const [v] = await this.createBulk(ctx, [body]);
    return v;
  }

  async createBulk(ctx: RequestContext, bodies: SecurityGroupCreate[]): Promise<SecurityGroupView[]> {
    const ids = await inTransaction(this.db, async (tx) => {
      const out: string[] = [];
      for (const body of bodies) {
        if (body.name === 'default') throw new NeutronError('SecurityGroupDefaultAlreadyExists', 409, 'Default security group already exists.');
        await this.ensureDefault(tx, body.project_id);
        const g = stdCreate(body.project_id, body.name, body.description);
        await tx.insertInto('securitygroups').values({ ...g, stateful: i(body.stateful ?? true) }).execute();
        // A new group lets its members talk out, as Neutron's egress defaults do.
        for (const ethertype of ['IPv4', 'IPv6'])
          await tx.insertInto('securitygrouprules').values({
            id: newId(), project_id: body.project_id, security_group_id: g.id, remote_group_id: null, remote_address_group_id: null,
            direction: 'egress', ethertype, protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null,
            description: '', revision_number: 0, created_at: g.created_at, updated_at: g.created_at,
          }).execute();
        out.push(g.id);
      }
      return out;
    });
    return Promise.all(ids.map((id) => this.get(ctx, id)));
  }

  private async groupRow(tx: Tx, ctx: RequestContext, id: string): Promise<SecurityGroupRow> {
    const g = await visibleGroups(tx.selectFrom('securitygroups as g').selectAll('g'), ctx).where('g.id', '=', id).executeTakeFirst();
    if (!g) throw Faults.securityGroupNotFound(id);
    return g as SecurityGroupRow;
  }

  private async isDefault(tx: Tx, id: string) {
    return !!(await tx.selectFrom('default_security_group').select('project_id').where('security_group_id', '=', id).executeTakeFirst());
  }

  private async inUse(tx: Tx, id: string) {
    return !!(await tx.selectFrom('securitygroupportbindings').select('port_id').where('security_group_id', '=', id).limit(1).executeTakeFirst());
  }

  async update(ctx: RequestContext, id: string, body: SecurityGroupUpdate): Promise<SecurityGroupView> {
    await inTransaction(this.db, async (tx) => {
      const g = await this.groupRow(tx, ctx, id);
      checkOwner(ctx, 'security_group', 'update', g.project_id);
      if (body.name !== undefined && body.name !== g.name && (await this.isDefault(tx, id)))
        throw new NeutronError('SecurityGroupCannotUpdateDefault', 409, 'Updating default security group not allowed.');
      if (body.stateful !== undefined && i(body.stateful) !== g.stateful && (await this.inUse(tx, id)))
        throw new NeutronError('SecurityGroupInUse', 409, `Security Group ${id} in use. Cannot change stateful attribute.`);
      const set: Partial<SecurityGroupRow> = {};
      if (body.name !== undefined) set.name = body.name;
      if (body.description !== undefined) set.description = body.description;
      if (body.stateful !== undefined) set.stateful = i(body.stateful);
      await tx.updateTable('securitygroups').set({ ...set, revision_number: Number(g.revision_number) + 1, updated_at: timestamp() }).where('id', '=', id).execute();
    });
    return this.get(ctx, id);
  }

  async delete(ctx: RequestContext, id: string): Promise<void> {
    await inTransaction(this.db, async (tx) => {
      const g = await this.groupRow(tx, ctx, id);
      checkOwner(ctx, 'security_group', 'delete', g.project_id);
      if (!ctx.isAdmin && (await this.isDefault(tx, id))) throw Faults.defaultSecurityGroupDelete();
      if (await this.inUse(tx, id)) throw Faults.securityGroupInUse(id);
      await tx.deleteFrom('default_security_group').where('security_group_id', '=', id).execute();
      await tx.deleteFrom('securitygrouprules').where('security_group_id', '=', id).execute();
      await tx.deleteFrom('securitygrouprules').where('remote_group_id', '=', id).execute();
      await tx.deleteFrom('securitygroups').where('id', '=', id).execute();
    });
  }

  // --- rules ---

  async listRules(ctx: RequestContext, q: ListQuery): Promise<RuleView[]> {
    const k = this.db.kysely;
    const { rows } = await listRows<SecurityGroupRuleRow>(visibleRules(k.selectFrom('securitygrouprules as r').selectAll('r'), ctx), RULE_COLUMNS, 'r.id', q, Faults.securityGroupRuleNotFound);
    return rows.map(ruleView);
  }

  async getRule(ctx: RequestContext, id: string): Promise<RuleView> {
    const [r] = await this.listRules(ctx, { filters: { id: [id] }, sort: [] });
    if (!r) throw Faults.securityGroupRuleNotFound(id);
    return r;
  }

  async createRule(ctx: RequestContext, body: RuleCreate): Promise<RuleView> {
    const [v] = await this.createRules(ctx, [body]);
    return v;
  }

  async createRules(ctx: RequestContext, bodies: RuleCreate[]): Promise<RuleView[]> {
    const ids = await inTransaction(this.db, async (tx) => {
      const out: string[] = [];
      for (const body of bodies) out.push(await this.insertRule(tx, ctx, body));
      return out;
    });
    for (const g of new Set(bodies.map((x) => x.security_group_id))) await this.events.emit({ kind: 'security_group', op: 'rules', id: g });
    return Promise.all(ids.map((id) => this.getRule(ctx, id)));
  }

  private async insertRule(tx: Tx, ctx: RequestContext, body: RuleCreate): Promise<string> {
    const g = await this.groupRow(tx, ctx, body.security_group_id);
    checkOwner(ctx, 'security_group_rule', 'update', g.project_id);
    const rule = validateRule(body);
    if (rule.remote_group_id) await this.groupRow(tx, ctx, rule.remote_group_id);
    const dup = await tx
      .selectFrom('securitygrouprules')
      .selectAll()
      .where('security_group_id', '=', g.id)
      .where('direction', '=', rule.direction)
      .where('ethertype', '=', rule.ethertype)
      .execute();
    const same = dup.find(
      (r) =>
        (r.protocol === null ? null : String(PROTOCOLS[r.protocol] ?? r.protocol)) ===
          (rule.protocol === null ? null : String(PROTOCOLS[rule.protocol] ?? rule.protocol)) &&
        r.port_range_min === rule.port_range_min &&
        r.port_range_max === rule.port_range_max &&
        (r.remote_ip_prefix ? normalize(r.remote_ip_prefix) : null) === (rule.remote_ip_prefix ? normalize(rule.remote_ip_prefix) : null) &&
        r.remote_group_id === rule.remote_group_id,
    );
    if (same) throw Faults.securityGroupRuleExists(same.id);
    const now = timestamp();
    const id = newId();
    await tx
      .insertInto('securitygrouprules')
      .values({ id, project_id: body.project_id, security_group_id: g.id, ...rule, remote_address_group_id: null, description: body.description ?? '', revision_number: 0, created_at: now, updated_at: now })
      .execute();
    await tx.updateTable('securitygroups').set({ revision_number: Number(g.revision_number) + 1, updated_at: now }).where('id', '=', g.id).execute();
    return id;
  }

  async updateRule(ctx: RequestContext, id: string, body: { description?: string }): Promise<RuleView> {
    await inTransaction(this.db, async (tx) => {
      const r = await visibleRules(tx.selectFrom('securitygrouprules as r').selectAll('r'), ctx).where('r.id', '=', id).executeTakeFirst();
      if (!r) throw Faults.securityGroupRuleNotFound(id);
      checkOwner(ctx, 'security_group_rule', 'update', r.project_id);
      if (body.description !== undefined)
        await tx.updateTable('securitygrouprules').set({ description: body.description, revision_number: Number(r.revision_number) + 1, updated_at: timestamp() }).where('id', '=', id).execute();
    });
    return this.getRule(ctx, id);
  }

  async deleteRule(ctx: RequestContext, id: string): Promise<void> {
    const group = await inTransaction(this.db, async (tx) => {
      const r = await visibleRules(tx.selectFrom('securitygrouprules as r').selectAll('r'), ctx).where('r.id', '=', id).executeTakeFirst();
      if (!r) throw Faults.securityGroupRuleNotFound(id);
      checkOwner(ctx, 'security_group_rule', 'delete', r.project_id);
      await tx.deleteFrom('securitygrouprules').where('id', '=', id).execute();
      return r.security_group_id as string;
    });
    await this.events.emit({ kind: 'security_group', op: 'rules', id: group });
  }

  /** Groups a port may use: visible to the context; 404 for any that is not. */
  async resolveForPort(tx: Tx, ctx: RequestContext, ids: string[]): Promise<string[]> {
    for (const id of ids) await this.groupRow(tx, ctx, id);
    return ids;
  }
}

/** Neutron's rule checks (db/securitygroups_db.py _validate_security_group_rule). */
export function validateRule(body: RuleCreate) {
  const ethertype = body.ethertype ?? 'IPv4';
  const protocol = body.protocol === undefined || body.protocol === null || body.protocol === 'any' ? null : String(body.protocol).toLowerCase();
  let num: number | null = null;
  if (protocol !== null) {
    if (/^\d+$/.test(protocol)) {
      num = Number(protocol);
      if (num > 255) throw bad('SecurityGroupRuleInvalidProtocol', `Security group rule protocol ${protocol} not supported. Only protocol values [${Object.keys(PROTOCOLS).join(', ')}] and integer representations [0 to 255] are supported.`);
    } else if (protocol in PROTOCOLS) num = PROTOCOLS[protocol];
    else throw bad('SecurityGroupRuleInvalidProtocol', `Security group rule protocol ${protocol} not supported. Only protocol values [${Object.keys(PROTOCOLS).join(', ')}] and integer representations [0 to 255] are supported.`);
    if (protocol === 'icmpv6' || protocol === 'ipv6-icmp' || num === 58) {
      if (ethertype === 'IPv4') throw bad('SecurityGroupEthertypeConflictWithProtocol', `Ethertype IPv4 is not supported by protocol ${protocol}.`);
    }
  }
  const min = body.port_range_min ?? null;
  const max = body.port_range_max ?? null;
  if (min !== null || max !== null) {
    if (num === null) throw bad('SecurityGroupProtocolRequiredWithPorts', 'Must also specify protocol if port range is given.');
    if (PORT_PROTOCOLS.has(num)) {
      for (const p of [min, max])
        if (p !== null && (p < 1 || p > 65535)) throw bad('SecurityGroupInvalidPortValue', `Invalid value for port ${p}.`);
      if (min !== null && max !== null && min > max)
        throw bad('SecurityGroupInvalidPortRange', 'For TCP/UDP protocols, port_range_min must be <= port_range_max');
    } else if (ICMP_PROTOCOLS.has(num)) {
      for (const [field, v] of [['type', min], ['code', max]] as const)
        if (v !== null && (v < 0 || v > 255)) throw bad('SecurityGroupInvalidIcmpValue', `Invalid value for ICMP ${field} (${field === 'type' ? 'port-range-min' : 'port-range-max'}): ${v}. It must be 0 to 255.`);
      if (min === null && max !== null)
        throw bad('SecurityGroupMissingIcmpType', `ICMP code (port-range-max) ${max} is provided but ICMP type (port-range-min) is missing.`);
    } else {
      throw bad('SecurityGroupInvalidProtocolForPortRange', `Invalid protocol ${protocol} for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP.`);
    }
  }
  const prefix = body.remote_ip_prefix ?? null;
  if (prefix !== null) {
    const v6 = prefix.includes(':');
    if ((ethertype === 'IPv6') !== v6)
      throw bad('SecurityGroupRuleParameterConflict', `Conflicting value ethertype ${ethertype} for CIDR ${prefix}`);
  }
  if (prefix !== null && body.remote_group_id)
    throw bad('SecurityGroupRemoteGroupAndRemoteIpPrefix', 'Only remote_ip_prefix or remote_group_id may be provided.');
  return {
    direction: body.direction,
    ethertype,
    protocol,
    port_range_min: min,
    port_range_max: max,
    remote_ip_prefix: prefix,
    remote_group_id: body.remote_group_id ?? null,
  };
}
