// The agents registry: agents report their state every report_interval; the server keeps
// one row per (agent_type, host), says whether each is alive (heartbeat newer than
// agent_down_time) and serves /v2.0/agents.

import type { ServerConfig } from '../config/server.js';
import { Faults, NeutronError } from '../common/errors.js';
import type { Db } from '../db/connect.js';
import type { AgentRow } from '../db/schema.js';
import { inTransaction, type Tx } from '../db/tx.js';
import type { AgentStateMsg } from '../rpc/messages.js';
import type { RequestContext } from './context.js';
import { boolColumn, listRows, type Columns, type ListQuery } from './listing.js';
import { b, i, newId } from './util.js';

export const AGENT_TYPES = {
  ovs: 'Open vSwitch agent',
  l3: 'L3 agent',
  dhcp: 'DHCP agent',
  metadata: 'Metadata agent',
} as const;

/** What an agent sends in report_state (neutron's agent_state dict): the RPC message's type. */
export type AgentState = AgentStateMsg;

export type AgentView = ReturnType<typeof view>;

/** Agents' timestamps are str(datetime) in Neutron: 2026-11-26 13:10:53. */
export const agentTime = (d = new Date()) => d.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '');
const parseAgentTime = (s: string) => Date.parse(`${s.replace(' ', 'T')}Z`);

function view(a: AgentRow, alive: boolean) {
  return {
    id: a.id,
    agent_type: a.agent_type,
    binary: a.binary,
    topic: a.topic,
    host: a.host,
    admin_state_up: b(a.admin_state_up),
    created_at: a.created_at,
    started_at: a.started_at,
    heartbeat_timestamp: a.heartbeat_timestamp,
    alive,
    availability_zone: a.availability_zone,
    description: a.description,
    configurations: JSON.parse(a.configurations) as Record<string, unknown>,
    resources_synced: a.resources_synced === null ? null : b(a.resources_synced),
  };
}

const COLUMNS: Columns = {
  id: { col: 'a.id' },
  agent_type: { col: 'a.agent_type' },
  binary: { col: 'a.binary' },
  topic: { col: 'a.topic' },
  host: { col: 'a.host' },
  admin_state_up: boolColumn('a.admin_state_up'),
  availability_zone: { col: 'a.availability_zone' },
  description: { col: 'a.description' },
  created_at: { col: 'a.created_at' },
  started_at: { col: 'a.started_at' },
  heartbeat_timestamp: { col: 'a.heartbeat_timestamp' },
};

export class AgentService {
  /** Clock, replaceable in tests that let agents die. */
  now: () => Date = () => new Date();

  constructor(
    private readonly db: Db,
    private readonly conf: ServerConfig,
  ) {}

  get downTimeMs() {
    return (this.conf.agent_down_time ?? 75) * 1000;
  }

  isAlive(a: Pick<AgentRow, 'heartbeat_timestamp'>): boolean {
    return this.now().getTime() - parseAgentTime(a.heartbeat_timestamp) <= this.downTimeMs;
  }

  /** Register or refresh an agent. `created` is true for a new row, `revived` when it was dead. */
  async reportState(state: AgentState): Promise<{ agent: AgentRow; created: boolean; revived: boolean; reconfigured: boolean }> {
    if (!state.agent_type || !state.host) throw Faults.badRequest('agent_state needs agent_type and host');
    return inTransaction(this.db, async (tx) => {
      const now = agentTime(this.now());
      const cur = await tx.selectFrom('agents').selectAll().where('agent_type', '=', state.agent_type).where('host', '=', state.host).executeTakeFirst();
      const fields = {
        binary: state.binary,
        topic: state.topic,
        availability_zone: state.availability_zone ?? null,
        configurations: JSON.stringify(state.configurations ?? {}),
        heartbeat_timestamp: now,
        resources_synced: state.resources_synced === undefined ? null : i(state.resources_synced),
      };
      if (!cur) {
        const row: AgentRow = { id: newId(), agent_type: state.agent_type, host: state.host, admin_state_up: 1, created_at: now, started_at: now, description: '', ...fields };
        await tx.insertInto('agents').values(row).execute();
        return { agent: row, created: true, revived: false, reconfigured: false };
      }
      const revived = !this.isAlive(cur);
      const upd = { ...fields, ...(state.start_flag ? { started_at: now } : {}) };
      await tx.updateTable('agents').set(upd).where('id', '=', cur.id).execute();
      return { agent: { ...cur, ...upd }, created: false, revived, reconfigured: cur.configurations !== fields.configurations };
    });
  }

  async list(ctx: RequestContext, q: ListQuery): Promise<AgentView[]> {
    this.adminOnly(ctx);
    const k = this.db.kysely;
    const filters = { ...q.filters };
    const aliveFilter = filters.alive;
    delete filters.alive;
    const { rows } = await listRows<AgentRow>(k.selectFrom('agents as a').selectAll('a'), COLUMNS, 'a.id', { ...q, filters }, agentNotFound);
    let out = rows.map((r) => view(r, this.isAlive(r)));
    if (aliveFilter) out = out.filter((a) => aliveFilter.some((x) => x === a.alive));
    return out;
  }

  async get(ctx: RequestContext, id: string): Promise<AgentView> {
    this.adminOnly(ctx);
    const a = await this.db.kysely.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
    if (!a) throw agentNotFound(id);
    return view(a, this.isAlive(a));
  }

  async update(ctx: RequestContext, id: string, body: { admin_state_up?: boolean; description?: string }): Promise<AgentView> {
    this.adminOnly(ctx);
    await this.get(ctx, id);
    const set: Partial<AgentRow> = {};
    if (body.admin_state_up !== undefined) set.admin_state_up = i(body.admin_state_up);
    if (body.description !== undefined) set.description = body.description;
    if (Object.keys(set).length) await this.db.kysely.updateTable('agents').set(set).where('id', '=', id).execute();
    return this.get(ctx, id);
  }

  /** Deleting an agent drops its bindings; the host's DVR MAC goes with its last agent. */
  async delete(ctx: RequestContext, id: string): Promise<AgentRow> {
    this.adminOnly(ctx);
    return inTransaction(this.db, async (tx) => {
      const a = await tx.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
      if (!a) throw agentNotFound(id);
      await tx.deleteFrom('routerl3agentbindings').where('l3_agent_id', '=', id).execute();
      await tx.deleteFrom('networkdhcpagentbindings').where('dhcp_agent_id', '=', id).execute();
      await tx.deleteFrom('agents').where('id', '=', id).execute();
      const left = await tx.selectFrom('agents').select('id').where('host', '=', a.host).limit(1).executeTakeFirst();
      if (!left) await tx.deleteFrom('dvr_host_macs').where('host', '=', a.host).execute();
      return a;
    });
  }

  /** Alive, admin-up agents of a type, optionally on one host. */
  async usable(tx: Tx | undefined, type: string, host?: string): Promise<AgentRow[]> {
    let qb = (tx ?? this.db.kysely).selectFrom('agents').selectAll().where('agent_type', '=', type).where('admin_state_up', '=', 1);
    if (host !== undefined) qb = qb.where('host', '=', host);
    return (await qb.execute()).filter((a) => this.isAlive(a));
  }

  /**
   * Hosts with an alive, admin-up agent of a type (reads two columns, not the configurations);
   * only among `among` when given: a port's event concerns one or two hosts of thousands.
   */
  async usableHosts(type: string, among?: string[]): Promise<Set<string>> {
    if (among && !among.length) return new Set();
    let q = this.db.kysely.selectFrom('agents').select(['host', 'heartbeat_timestamp']).where('agent_type', '=', type).where('admin_state_up', '=', 1);
    if (among && among.length <= 100) q = q.where('host', 'in', among);
    const rows = await q.execute();
    return new Set(rows.filter((a) => this.isAlive(a)).map((a) => a.host));
  }

  async byId(tx: Tx | undefined, id: string): Promise<AgentRow | undefined> {
    return (tx ?? this.db.kysely).selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
  }

  private adminOnly(ctx: RequestContext) {
    if (!ctx.isAdmin) throw Faults.policy('get_agent');
  }
}

export const agentNotFound = (id: string) => new NeutronError('AgentNotFound', 404, `Agent ${id} could not be found.`);

/**
 * An agent's `configurations`, parsed once per distinct text (every report_state writes the
 * same text again; the RPC side reads tunnel addresses and modes per port event). Frozen:
 * one parsed value is shared by every caller.
 */
export function configOf(a: Pick<AgentRow, 'configurations'>): Readonly<Record<string, any>> {
  let c = parsedConfigs.get(a.configurations);
  if (!c) {
    c = Object.freeze(JSON.parse(a.configurations) as Record<string, any>);
    if (parsedConfigs.size > 10_000) parsedConfigs.clear();
    parsedConfigs.set(a.configurations, c);
  }
  return c;
}
const parsedConfigs = new Map<string, Readonly<Record<string, any>>>();
