// Keystone's v3 API (the subset real clients use) on Fastify: version discovery, password
// and token authentication, token validation and revocation, and read access to projects,
// users, roles, role assignments, domains, regions, services, endpoints and the catalog.
// Policy follows Keystone's defaults: admins read everything; a project member may read its
// own project, its own user, its own role assignments and its own tokens.

import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { IdentityFaults as F, KeystoneError } from './errors.js';
import type { DomainRow, ProjectRow, RoleRow, UserRow } from './schema.js';
import type { AuthRequest, CatalogEntry, IdentityService, ResolvedToken, ScopeSpec } from './service.js';
import { keystoneTime } from './tokens.js';

/** The identity API version dvrnet speaks (Keystone Ussuri and later report v3.14). */
export const IDENTITY_VERSION = 'v3.14';
const VERSION_UPDATED = '2020-04-07T00:00:00Z';
const MEDIA_TYPES = [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }];

type Req = FastifyRequest;
type Json = Record<string, unknown>;

const header = (req: Req, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

export function buildIdentityApp(svc: IdentityService, opts: { logger?: boolean } = {}): FastifyInstance {
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: 114688 });
  const base = (req: Req) => `${req.protocol}://${req.headers.host ?? 'localhost'}`;

  app.setErrorHandler((err: unknown, req, reply) => {
    const e = err as { statusCode?: number; message?: string; code?: string };
    let fault: KeystoneError;
    if (err instanceof KeystoneError) fault = err;
    else if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') fault = new KeystoneError(415, 'Unsupported Media Type', 'The request has an unsupported media type.');
    else if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) fault = F.validation(`Invalid request: ${e.message ?? ''}`);
    else {
      if (!opts.logger) console.error(err);
      req.log.error(err);
      fault = F.internal();
    }
    reply.code(fault.code).send(fault.body());
  });
  app.setNotFoundHandler((_req, reply) => {
    const f = F.notFound();
    reply.code(404).send(f.body());
  });

  /** The caller's token (X-Auth-Token), or 401. */
  const caller = async (req: Req): Promise<ResolvedToken> => {
    const t = header(req, 'x-auth-token');
    const resolved = t ? await svc.validate(t) : undefined;
    if (!resolved) throw F.unauthorized();
    return resolved;
  };
  const isAdmin = (t: ResolvedToken) => t.roles.some((r) => r.name === 'admin');
  const requireAdmin = async (req: Req, action: string) => {
    const t = await caller(req);
    if (!isAdmin(t)) throw F.forbidden(`identity:${action}`);
    return t;
  };

  // ---- discovery ------------------------------------------------------------------------

  const version = (req: Req) => ({
    id: IDENTITY_VERSION,
    status: 'stable',
    updated: VERSION_UPDATED,
    links: [{ rel: 'self', href: `${base(req)}/v3/` }],
    'media-types': MEDIA_TYPES,
  });
  app.get('/', async (req, reply) => reply.code(300).send({ versions: { values: [version(req)] } }));
  app.get('/v3', async (req) => ({ version: version(req) }));
  app.get('/v3/', async (req) => ({ version: version(req) }));

  // ---- tokens ---------------------------------------------------------------------------

  const tokenBody = (t: ResolvedToken, catalog: CatalogEntry[] | undefined) => {
    const token: Json = {
      methods: t.methods,
      user: { domain: t.user.domain, id: t.user.id, name: t.user.name, password_expires_at: null },
      audit_ids: [t.auditId],
      expires_at: keystoneTime(t.expiresAt),
      issued_at: keystoneTime(t.issuedAt),
    };
    if (t.project) {
      token.project = t.project;
      token.is_domain = false;
      token.roles = t.roles;
      if (catalog) token.catalog = catalog;
    }
    return { token };
  };
  const wantsCatalog = (req: Req) => !('nocatalog' in (req.query as Json));

  app.post('/v3/auth/tokens', async (req, reply) => {
    const auth = parseAuth(req.body);
    const { token, resolved } = await svc.authenticate(auth);
    reply.code(201).header('X-Subject-Token', token);
    return tokenBody(resolved, resolved.project && wantsCatalog(req) ? await svc.catalog() : undefined);
  });

  /** The subject token of a validate/revoke call, after the caller's right to look at it. */
  const subject = async (req: Req, action: string): Promise<{ token: string; resolved: ResolvedToken }> => {
    const me = await caller(req);
    const token = header(req, 'x-subject-token');
    if (!token) throw F.validation(validationMessage('X-Subject-Token', 'header'));
    const resolved = await svc.validate(token);
    if (!resolved) throw F.tokenNotFound(token);
    if (!isAdmin(me) && me.user.id !== resolved.user.id) throw F.forbidden(`identity:${action}`);
    return { token, resolved };
  };
  app.get('/v3/auth/tokens', { exposeHeadRoute: false }, async (req, reply) => {
    const { token, resolved } = await subject(req, 'validate_token');
    reply.header('X-Subject-Token', token);
    return tokenBody(resolved, resolved.project && wantsCatalog(req) ? await svc.catalog() : undefined);
  });
  app.head('/v3/auth/tokens', async (req, reply) => {
    const { token } = await subject(req, 'check_token');
    reply.code(200).header('X-Subject-Token', token).send();
  });
  app.delete('/v3/auth/tokens', async (req, reply) => {
    const { token } = await subject(req, 'revoke_token');
    await svc.revoke(token);
    reply.code(204).send();
  });

  app.get('/v3/auth/catalog', async (req) => {
    const me = await caller(req);
    if (!me.project) throw F.forbidden('identity:get_auth_catalog');
    return { catalog: await svc.catalog(), links: { self: `${base(req)}/v3/auth/catalog` } };
  });
  app.get('/v3/auth/projects', async (req) => {
    const me = await caller(req);
    return collection(req, 'projects', (await svc.projectsOf(me.user.id)).map((p) => project(req, p)));
  });

  // ---- projects, users, roles, domains ---------------------------------------------------

  const project = (req: Req, p: ProjectRow) => ({
    id: p.id,
    name: p.name,
    domain_id: p.domain_id,
    description: p.description,
    enabled: !!p.enabled,
    is_domain: false,
    parent_id: p.domain_id,
    tags: [],
    options: {},
    links: { self: `${base(req)}/v3/projects/${p.id}` },
  });
  const user = (req: Req, u: UserRow) => ({
    id: u.id,
    name: u.name,
    domain_id: u.domain_id,
    enabled: !!u.enabled,
    ...(u.default_project_id ? { default_project_id: u.default_project_id } : {}),
    password_expires_at: null,
    options: {},
    links: { self: `${base(req)}/v3/users/${u.id}` },
  });
  const role = (req: Req, r: RoleRow) => ({
    id: r.id,
    name: r.name,
    domain_id: null,
    description: null,
    options: {},
    links: { self: `${base(req)}/v3/roles/${r.id}` },
  });
  const domain = (req: Req, d: DomainRow) => ({
    id: d.id,
    name: d.name,
    description: d.description,
    enabled: !!d.enabled,
    tags: [],
    options: {},
    links: { self: `${base(req)}/v3/domains/${d.id}` },
  });
  const q = (req: Req) => req.query as Record<string, string | undefined>;
  const bool = (v: string | undefined) => (v === undefined ? undefined : !['false', '0', 'no', 'off'].includes(v.toLowerCase()));

  app.get('/v3/projects', async (req) => {
    await requireAdmin(req, 'list_projects');
    const { name, domain_id, enabled } = q(req);
    return collection(req, 'projects', (await svc.listProjects({ name, domain_id, enabled: bool(enabled) })).map((p) => project(req, p)));
  });
  app.get<{ Params: { id: string } }>('/v3/projects/:id', async (req) => {
    const me = await caller(req);
    // Keystone checks policy against the target: a member asking for another (or no) project gets 403.
    if (!isAdmin(me) && me.project?.id !== req.params.id) throw F.forbidden('identity:get_project');
    const p = await svc.getProject(req.params.id);
    if (!p) throw F.projectNotFound(req.params.id);
    return { project: project(req, p) };
  });
  app.get<{ Params: { id: string } }>('/v3/users/:id/projects', async (req) => {
    const me = await caller(req);
    if (!isAdmin(me) && me.user.id !== req.params.id) throw F.forbidden('identity:list_user_projects');
    if (!(await svc.getUser(req.params.id))) throw F.userNotFound(req.params.id);
    return collection(req, 'projects', (await svc.projectsOf(req.params.id)).map((p) => project(req, p)));
  });

  app.get('/v3/users', async (req) => {
    await requireAdmin(req, 'list_users');
    const { name, domain_id } = q(req);
    return collection(req, 'users', (await svc.listUsers({ name, domain_id })).map((u) => user(req, u)));
  });
  app.get<{ Params: { id: string } }>('/v3/users/:id', async (req) => {
    const me = await caller(req);
    if (!isAdmin(me) && me.user.id !== req.params.id) throw F.forbidden('identity:get_user');
    const u = await svc.getUser(req.params.id);
    if (!u) throw F.userNotFound(req.params.id);
    return { user: user(req, u) };
  });

  app.get('/v3/roles', async (req) => {
    await requireAdmin(req, 'list_roles');
    return collection(req, 'roles', (await svc.listRoles({ name: q(req).name })).map((r) => role(req, r)));
  });
  app.get<{ Params: { id: string } }>('/v3/roles/:id', async (req) => {
    await requireAdmin(req, 'get_role');
    const r = await svc.getRole(req.params.id);
    if (!r) throw F.roleNotFound(req.params.id);
    return { role: role(req, r) };
  });

  app.get('/v3/role_assignments', async (req) => {
    const me = await caller(req);
    const query = q(req);
    const filter = { user_id: query['user.id'], project_id: query['scope.project.id'], role_id: query['role.id'] };
    if (!isAdmin(me) && filter.user_id !== me.user.id) throw F.forbidden('identity:list_role_assignments');
    const names = 'include_names' in query && bool(query.include_names || 'true');
    const rows = await svc.listAssignments(filter);
    const items = rows.map((a) => ({
      role: names ? { id: a.role_id, name: a.role_name } : { id: a.role_id },
      user: names ? { id: a.user_id, name: a.user_name, domain: { id: a.user_domain_id } } : { id: a.user_id },
      scope: { project: names ? { id: a.project_id, name: a.project_name, domain: { id: a.project_domain_id } } : { id: a.project_id } },
      links: { assignment: `${base(req)}/v3/projects/${a.project_id}/users/${a.user_id}/roles/${a.role_id}` },
    }));
    return collection(req, 'role_assignments', items);
  });

  app.get('/v3/domains', async (req) => {
    await requireAdmin(req, 'list_domains');
    return collection(req, 'domains', (await svc.listDomains({ name: q(req).name })).map((d) => domain(req, d)));
  });
  app.get<{ Params: { id: string } }>('/v3/domains/:id', async (req) => {
    const me = await caller(req);
    if (!isAdmin(me) && me.project?.domain.id !== req.params.id) throw F.forbidden('identity:get_domain');
    const d = await svc.getDomain(req.params.id);
    if (!d) throw F.domainNotFound(req.params.id);
    return { domain: domain(req, d) };
  });

  // ---- catalog rows ---------------------------------------------------------------------

  app.get('/v3/regions', async (req) => {
    await caller(req);
    const regions = await svc.db.selectFrom('identity_regions').selectAll().orderBy('id').execute();
    return collection(req, 'regions', regions.map((r) => ({ id: r.id, description: r.description, parent_region_id: null, links: { self: `${base(req)}/v3/regions/${r.id}` } })));
  });
  app.get('/v3/services', async (req) => {
    await requireAdmin(req, 'list_services');
    const rows = await svc.db.selectFrom('identity_services').selectAll().orderBy('type').execute();
    return collection(req, 'services', rows.map((s) => ({ id: s.id, type: s.type, name: s.name, description: s.description, enabled: !!s.enabled, links: { self: `${base(req)}/v3/services/${s.id}` } })));
  });
  app.get('/v3/endpoints', async (req) => {
    await requireAdmin(req, 'list_endpoints');
    const rows = await svc.db.selectFrom('identity_endpoints').selectAll().orderBy('service_id').orderBy('interface').execute();
    return collection(
      req,
      'endpoints',
      rows.map((e) => ({ id: e.id, service_id: e.service_id, region: e.region_id, region_id: e.region_id, interface: e.interface, url: e.url, enabled: !!e.enabled, links: { self: `${base(req)}/v3/endpoints/${e.id}` } })),
    );
  });

  const collection = (req: Req, key: string, items: unknown[]) => ({
    [key]: items,
    links: { self: `${base(req)}${req.url}`, previous: null, next: null },
  });

  return app;
}

function validationMessage(attribute: string, target: string): string {
  return `Expecting to find ${attribute} in ${target}. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.`;
}

const isObj = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);
const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);
const ref = (x: unknown) => (isObj(x) ? { id: str(x.id), name: str(x.name) } : undefined);

/** Check the shape of POST /v3/auth/tokens' body (Keystone answers 400 for a malformed one). */
export function parseAuth(body: unknown): AuthRequest {
  if (!isObj(body) || !isObj(body.auth)) throw F.validation(validationMessage('auth', 'request body'));
  const auth = body.auth;
  if (!isObj(auth.identity)) throw F.validation(validationMessage('identity', 'auth'));
  const methods = auth.identity.methods;
  if (!Array.isArray(methods) || methods.length === 0) throw F.validation(validationMessage('methods', 'identity'));
  let scope: ScopeSpec;
  if (auth.scope !== undefined && auth.scope !== 'unscoped') {
    if (!isObj(auth.scope)) throw F.validation(validationMessage('scope', 'auth'));
    if (!isObj(auth.scope.project)) throw F.unauthorized(); // domain and system scopes: not offered here
    const p = auth.scope.project;
    if (str(p.id) === undefined && (str(p.name) === undefined || !isObj(p.domain)))
      throw F.validation(validationMessage(str(p.name) === undefined ? 'id or name' : 'domain', 'project'));
    scope = { project: { id: str(p.id), name: str(p.name), domain: ref(p.domain) } };
  }
  if (methods.includes('password')) {
    const pw = auth.identity.password;
    if (!isObj(pw) || !isObj(pw.user)) throw F.validation(validationMessage('user', 'password'));
    const u = pw.user;
    if (str(u.password) === undefined) throw F.validation(validationMessage('password', 'user'));
    if (str(u.id) === undefined && (str(u.name) === undefined || !isObj(u.domain)))
      throw F.validation(validationMessage(str(u.name) === undefined ? 'id or name' : 'domain', 'user'));
    return { method: 'password', user: { id: str(u.id), name: str(u.name), domain: ref(u.domain) }, password: str(u.password)!, scope };
  }
  if (methods.includes('token')) {
    const t = auth.identity.token;
    if (!isObj(t) || str(t.id) === undefined) throw F.validation(validationMessage('id', 'token'));
    return { method: 'token', token: str(t.id)!, scope };
  }
  throw F.unauthorized(); // an auth method this service does not offer
}

