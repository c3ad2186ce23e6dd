// The identity service's behaviour, without HTTP: password and token authentication, token
// validation and revocation, and the read side of projects, users, roles, assignments and
// the catalog. The HTTP layer (./app.ts) maps it to Keystone's v3 API; the network API
// validates tokens through `validate` when both run in one process.

import type { Kysely } from 'kysely';
import { IdentityFaults as F } from './errors.js';
import { verifyPassword } from './password.js';
import type { DomainRow, IdentityDatabase, ProjectRow, RoleRow, UserRow } from './schema.js';
import { newAuditId, newToken, tokenHash } from './tokens.js';

export const DEFAULT_DOMAIN: DomainRow = { id: 'default', name: 'Default', description: 'The default domain', enabled: 1 };

/** Keystone's bootstrap creates these implications: admin implies member implies reader. */
const IMPLIES: Record<string, string[]> = { admin: ['member'], member: ['reader'] };

/** How long a validated token is trusted from memory before the database is asked again. */
const CACHE_MS = 5_000;
const CACHE_MAX = 10_000;

export interface Ref {
  id: string;
  name: string;
}

/** What a token stands for, resolved against the current users, projects and roles. */
export interface ResolvedToken {
  user: Ref & { domain: Ref };
  project?: Ref & { domain: Ref };
  roles: Ref[];
  methods: string[];
  auditId: string;
  issuedAt: number;
  expiresAt: number;
}

export type ScopeSpec = { project: { id?: string; name?: string; domain?: { id?: string; name?: string } } } | undefined;

/** The `auth` object of POST /v3/auth/tokens, already checked for shape by the caller. */
export type AuthRequest =
  | { method: 'password'; user: { id?: string; name?: string; domain?: { id?: string; name?: string } }; password: string; scope: ScopeSpec }
  | { method: 'token'; token: string; scope: ScopeSpec };

export interface IdentityOptions {
  /** Token lifetime in seconds ([identity] token_expiration). */
  tokenExpiration: number;
  /** Milliseconds since the epoch; tests move it forward to expire tokens. */
  clock?: () => number;
}

export class IdentityService {
  private readonly clock: () => number;
  private readonly cache = new Map<string, { token: ResolvedToken; checkedAt: number }>();
  private lastPurge = 0;

  constructor(
    readonly db: Kysely<IdentityDatabase>,
    readonly opts: IdentityOptions,
  ) {
    this.clock = opts.clock ?? Date.now;
  }

  // ---- authentication -------------------------------------------------------------------

  /** Issue a token. Any failure (unknown user, wrong password, no role on the scope) is the same 401. */
  async authenticate(req: AuthRequest): Promise<{ token: string; resolved: ResolvedToken }> {
    const now = this.clock();
    let user: UserRow;
    let methods: string[];
    let expiresAt = now + this.opts.tokenExpiration * 1000;
    const auditId = newAuditId();
    if (req.method === 'password') {
      const found = await this.findUser(req.user);
      // Verify even for an unknown user, so timing does not reveal which names exist.
      const ok = await verifyPassword(req.password, found?.password_hash ?? DUMMY_HASH);
      if (!found || !ok || !found.enabled) throw F.unauthorized();
      user = found;
      methods = ['password'];
    } else {
      const prior = await this.validate(req.token);
      if (!prior) throw F.unauthorized();
      const found = await this.db.selectFrom('identity_users').selectAll().where('id', '=', prior.user.id).executeTakeFirst();
      if (!found) throw F.unauthorized();
      user = found;
      methods = ['token'];
      // A token made from a token never outlives it (Keystone keeps the original expiry).
      expiresAt = prior.expiresAt;
    }
    let project: ProjectRow | undefined;
    if (req.scope) {
      project = await this.findProject(req.scope.project);
      if (!project || !project.enabled) throw F.unauthorized();
    } else if (user.default_project_id) {
      project = await this.db.selectFrom('identity_projects').selectAll().where('id', '=', user.default_project_id).executeTakeFirst();
      if (project && (!project.enabled || (await this.rolesOf(user.id, project.id)).length === 0)) project = undefined;
    }
    const token = newToken();
    const row = {
      token_hash: tokenHash(token),
      user_id: user.id,
      project_id: project?.id ?? null,
      methods: methods.join(','),
      audit_id: auditId,
      issued_at: now,
      expires_at: expiresAt,
      revoked: 0,
    };
    const resolved = await this.resolve(row);
    if (!resolved) throw F.unauthorized();
    await this.purgeExpired(now);
    await this.db.insertInto('identity_tokens').values(row).execute();
    return { token, resolved };
  }

  /** The token's meaning now, or undefined when it is unknown, expired, revoked or no longer backed by roles. */
  async validate(token: string): Promise<ResolvedToken | undefined> {
    const now = this.clock();
    const key = tokenHash(token);
    const hit = this.cache.get(key);
    if (hit && now - hit.checkedAt < CACHE_MS && now < hit.token.expiresAt) return hit.token;
    if (hit) this.cache.delete(key);
    const row = await this.db.selectFrom('identity_tokens').selectAll().where('token_hash', '=', key).executeTakeFirst();
    if (!row || row.revoked || now >= Number(row.expires_at)) return undefined;
    const resolved = await this.resolve(row);
    if (!resolved) return undefined;
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(key, { token: resolved, checkedAt: now });
    return resolved;
  }

  /** Revoke a valid token; false when it was not valid to begin with. */
  async revoke(token: string): Promise<boolean> {
    if (!(await this.validate(token))) return false;
    const key = tokenHash(token);
    await this.db.updateTable('identity_tokens').set({ revoked: 1 }).where('token_hash', '=', key).execute();
    this.cache.delete(key);
    return true;
  }

  private async resolve(row: { user_id: string; project_id: string | null; methods: string; audit_id: string; issued_at: number; expires_at: number }): Promise<ResolvedToken | undefined> {
    const user = await this.db.selectFrom('identity_users').selectAll().where('id', '=', row.user_id).executeTakeFirst();
    if (!user || !user.enabled) return undefined;
    const out: ResolvedToken = {
      user: { id: user.id, name: user.name, domain: await this.domainRef(user.domain_id) },
      roles: [],
      methods: row.methods.split(','),
      auditId: row.audit_id,
      issuedAt: Number(row.issued_at),
      expiresAt: Number(row.expires_at),
    };
    if (row.project_id) {
      const p = await this.db.selectFrom('identity_projects').selectAll().where('id', '=', row.project_id).executeTakeFirst();
      if (!p || !p.enabled) return undefined;
      const roles = await this.rolesOf(user.id, p.id);
      if (roles.length === 0) return undefined;
      out.project = { id: p.id, name: p.name, domain: await this.domainRef(p.domain_id) };
      out.roles = roles;
    }
    return out;
  }

  private async purgeExpired(now: number): Promise<void> {
    if (now - this.lastPurge < 600_000) return;
    this.lastPurge = now;
    await this.db.deleteFrom('identity_tokens').where('expires_at', '<', now).execute();
  }

  // ---- lookups --------------------------------------------------------------------------

  private async domainRef(id: string): Promise<Ref> {
    const d = await this.getDomain(id);
    return { id, name: d?.name ?? id };
  }

  async getDomain(id: string): Promise<DomainRow | undefined> {
    return this.db.selectFrom('identity_domains').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async listDomains(filter: { name?: string } = {}): Promise<DomainRow[]> {
    let q = this.db.selectFrom('identity_domains').selectAll().orderBy('name');
    if (filter.name !== undefined) q = q.where('name', '=', filter.name);
    return q.execute();
  }

  private async domainId(d: { id?: string; name?: string } | undefined): Promise<string | undefined> {
    if (!d) return undefined;
    if (d.id !== undefined) return d.id;
    if (d.name === undefined) return undefined;
    return (await this.db.selectFrom('identity_domains').select('id').where('name', '=', d.name).executeTakeFirst())?.id;
  }

  async findUser(u: { id?: string; name?: string; domain?: { id?: string; name?: string } }): Promise<UserRow | undefined> {
    if (u.id !== undefined) return this.db.selectFrom('identity_users').selectAll().where('id', '=', u.id).executeTakeFirst();
    const domainId = await this.domainId(u.domain);
    if (u.name === undefined || domainId === undefined) return undefined;
    return this.db.selectFrom('identity_users').selectAll().where('name', '=', u.name).where('domain_id', '=', domainId).executeTakeFirst();
  }

  async findProject(p: { id?: string; name?: string; domain?: { id?: string; name?: string } }): Promise<ProjectRow | undefined> {
    if (p.id !== undefined) return this.getProject(p.id);
    const domainId = await this.domainId(p.domain);
    if (p.name === undefined || domainId === undefined) return undefined;
    return this.db.selectFrom('identity_projects').selectAll().where('name', '=', p.name).where('domain_id', '=', domainId).executeTakeFirst();
  }

  async getProject(id: string): Promise<ProjectRow | undefined> {
    return this.db.selectFrom('identity_projects').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async listProjects(filter: { name?: string; domain_id?: string; enabled?: boolean; ids?: string[] } = {}): Promise<ProjectRow[]> {
    let q = this.db.selectFrom('identity_projects').selectAll().orderBy('name');
    if (filter.name !== undefined) q = q.where('name', '=', filter.name);
    if (filter.domain_id !== undefined) q = q.where('domain_id', '=', filter.domain_id);
    if (filter.enabled !== undefined) q = q.where('enabled', '=', filter.enabled ? 1 : 0);
    if (filter.ids !== undefined) {
      if (filter.ids.length === 0) return [];
      q = q.where('id', 'in', filter.ids);
    }
    return q.execute();
  }

  /** Projects on which the user holds at least one role (GET /v3/auth/projects). */
  async projectsOf(userId: string): Promise<ProjectRow[]> {
    const ids = await this.db.selectFrom('identity_assignments').select('project_id').distinct().where('user_id', '=', userId).execute();
    return this.listProjects({ ids: ids.map((r) => r.project_id) });
  }

  async getUser(id: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('identity_users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async listUsers(filter: { name?: string; domain_id?: string } = {}): Promise<UserRow[]> {
    let q = this.db.selectFrom('identity_users').selectAll().orderBy('name');
    if (filter.name !== undefined) q = q.where('name', '=', filter.name);
    if (filter.domain_id !== undefined) q = q.where('domain_id', '=', filter.domain_id);
    return q.execute();
  }

  async getRole(id: string): Promise<RoleRow | undefined> {
    return this.db.selectFrom('identity_roles').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async listRoles(filter: { name?: string } = {}): Promise<RoleRow[]> {
    let q = this.db.selectFrom('identity_roles').selectAll().orderBy('name');
    if (filter.name !== undefined) q = q.where('name', '=', filter.name);
    return q.execute();
  }

  /** Direct assignments, optionally filtered (GET /v3/role_assignments). */
  async listAssignments(filter: { user_id?: string; project_id?: string; role_id?: string } = {}) {
    let q = this.db
      .selectFrom('identity_assignments as a')
      .innerJoin('identity_users as u', 'u.id', 'a.user_id')
      .innerJoin('identity_projects as p', 'p.id', 'a.project_id')
      .innerJoin('identity_roles as r', 'r.id', 'a.role_id')
      .select(['a.user_id', 'a.project_id', 'a.role_id', 'u.name as user_name', 'u.domain_id as user_domain_id', 'p.name as project_name', 'p.domain_id as project_domain_id', 'r.name as role_name'])
      .orderBy('u.name')
      .orderBy('p.name')
      .orderBy('r.name');
    if (filter.user_id !== undefined) q = q.where('a.user_id', '=', filter.user_id);
    if (filter.project_id !== undefined) q = q.where('a.project_id', '=', filter.project_id);
    if (filter.role_id !== undefined) q = q.where('a.role_id', '=', filter.role_id);
    return q.execute();
  }

  /** The user's roles on the project, direct ones first, then the ones they imply. */
  async rolesOf(userId: string, projectId: string): Promise<Ref[]> {
    const direct = await this.db
      .selectFrom('identity_assignments as a')
      .innerJoin('identity_roles as r', 'r.id', 'a.role_id')
      .select(['r.id', 'r.name'])
      .where('a.user_id', '=', userId)
      .where('a.project_id', '=', projectId)
      .orderBy('r.name')
      .execute();
    const out = [...direct];
    const names = new Set(direct.map((r) => r.name));
    for (let i = 0; i < out.length; i++) {
      for (const implied of IMPLIES[out[i].name] ?? []) {
        if (names.has(implied)) continue;
        const role = await this.db.selectFrom('identity_roles').select(['id', 'name']).where('name', '=', implied).executeTakeFirst();
        if (!role) continue;
        names.add(implied);
        out.push(role);
      }
    }
    return out;
  }

  // ---- catalog --------------------------------------------------------------------------

  async catalog(): Promise<CatalogEntry[]> {
    const services = await this.db.selectFrom('identity_services').selectAll().where('enabled', '=', 1).orderBy('type').execute();
    const endpoints = await this.db.selectFrom('identity_endpoints').selectAll().where('enabled', '=', 1).orderBy('interface').execute();
    return services.map((s) => ({
      id: s.id,
      type: s.type,
      name: s.name,
      endpoints: endpoints
        .filter((e) => e.service_id === s.id)
        .map((e) => ({ id: e.id, interface: e.interface, region: e.region_id, region_id: e.region_id, url: e.url })),
    }));
  }
}

export interface CatalogEntry {
  id: string;
  type: string;
  name: string;
  endpoints: Array<{ id: string; interface: string; region: string; region_id: string; url: string }>;
}

/** A valid hash of a random password, verified against when the user does not exist. */
const DUMMY_HASH = 'scrypt$32768$8$1$c2FsdHNhbHRzYWx0c2FsdA==$' + Buffer.alloc(32).toString('base64');
