// The identity service over real HTTP, on a real database, as keystoneauth and the
// OpenStack clients use it.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Kysely, SqliteDialect } from 'kysely';
import SQLite from 'better-sqlite3';
import { login, startKeystoneTestServer, tokenClient, type KeystoneTestServer } from '../api/testing.js';
import { bootstrap } from './bootstrap.js';
import { migrateIdentity } from './migrations.js';
import type { IdentityDatabase } from './schema.js';
import { IdentityService } from './service.js';

const UNAUTHORIZED = { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } };

const passwordAuth = (user: object, password: string, scope?: object) => ({
  auth: { identity: { methods: ['password'], password: { user: { ...user, password } } }, ...(scope ? { scope } : {}) },
});

describe('identity v3 over HTTP', () => {
  let s: KeystoneTestServer;
  let anon: ReturnType<typeof tokenClient>;
  before(async () => {
    s = await startKeystoneTestServer();
    anon = tokenClient(s.identityUrl, undefined);
  });
  after(async () => s?.destroy());

  it('answers version discovery at / (300) and /v3', async () => {
    const root = await anon('GET', '/');
    assert.equal(root.status, 300);
    assert.equal(root.body.versions.values[0].id, 'v3.14');
    const v3 = await anon('GET', '/v3');
    assert.equal(v3.status, 200);
    assert.equal(v3.body.version.status, 'stable');
    assert.equal(v3.body.version.links[0].href, `${s.identityUrl}/v3/`);
  });

  it('issues a project-scoped token with user, project, roles, expiry and catalog', async () => {
    const r = await anon('POST', '/v3/auth/tokens', passwordAuth({ name: 'demo', domain: { name: 'Default' } }, s.passwords.demo, { project: { name: 'demo', domain: { id: 'default' } } }));
    assert.equal(r.status, 201);
    const token = r.headers.get('x-subject-token')!;
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    const t = r.body.token;
    assert.equal(t.user.name, 'demo');
    assert.deepEqual(t.user.domain, { id: 'default', name: 'Default' });
    assert.equal(t.project.name, 'demo');
    assert.deepEqual(t.roles.map((x: any) => x.name), ['member', 'reader']);
    const ttl = Date.parse(t.expires_at) - Date.parse(t.issued_at);
    assert.equal(ttl, 3600_000);
    const types = t.catalog.map((c: any) => c.type).sort();
    assert.deepEqual(types, ['identity', 'network']);
    const net = t.catalog.find((c: any) => c.type === 'network').endpoints.find((e: any) => e.interface === 'public');
    assert.equal(net.url, s.url);
    assert.equal(net.region_id, 'RegionOne');
  });

  it('scopes by project id, and an admin token carries admin and the roles it implies', async () => {
    const { body } = await login(s.authUrl, 'admin', s.passwords.admin);
    const r = await anon('POST', '/v3/auth/tokens', passwordAuth({ id: body.token.user.id }, s.passwords.admin, { project: { id: body.token.project.id } }));
    assert.equal(r.status, 201);
    assert.deepEqual(r.body.token.roles.map((x: any) => x.name), ['admin', 'member', 'reader']);
  });

  it('refuses wrong passwords, unknown users and projects without a role with the same 401', async () => {
    const demoScope = { project: { name: 'demo', domain: { name: 'Default' } } };
    for (const body of [
      passwordAuth({ name: 'demo', domain: { name: 'Default' } }, 'wrong', demoScope),
      passwordAuth({ name: 'nobody', domain: { name: 'Default' } }, 'x', demoScope),
      passwordAuth({ name: 'demo', domain: { name: 'Nowhere' } }, s.passwords.demo, demoScope),
      passwordAuth({ name: 'demo', domain: { name: 'Default' } }, s.passwords.demo, { project: { name: 'admin', domain: { name: 'Default' } } }),
      passwordAuth({ name: 'demo', domain: { name: 'Default' } }, s.passwords.demo, { project: { name: 'missing', domain: { name: 'Default' } } }),
    ]) {
      const r = await anon('POST', '/v3/auth/tokens', body);
      assert.equal(r.status, 401, JSON.stringify(body));
      assert.deepEqual(r.body, UNAUTHORIZED);
      assert.equal(r.headers.get('x-subject-token'), null);
    }
  });

  it('answers a malformed authentication request with 400 naming what is missing', async () => {
    const r = await anon('POST', '/v3/auth/tokens', { auth: { identity: { methods: ['password'], password: { user: { name: 'demo', password: 'x' } } } } });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.title, 'Bad Request');
    assert.match(r.body.error.message, /^Expecting to find domain in user\./);
    const none = await anon('POST', '/v3/auth/tokens', {});
    assert.equal(none.status, 400);
    assert.match(none.body.error.message, /^Expecting to find auth in request body/);
  });

  it('validates (GET, HEAD) and revokes (DELETE) tokens; a revoked token is gone', async () => {
    const { token } = await login(s.authUrl, 'demo', s.passwords.demo);
    const me = tokenClient(s.identityUrl, token);
    const v = await me('GET', '/v3/auth/tokens', undefined, { 'x-subject-token': token });
    assert.equal(v.status, 200);
    assert.equal(v.body.token.project.name, 'demo');
    assert.equal(v.headers.get('x-subject-token'), token);
    const nocat = await me('GET', '/v3/auth/tokens?nocatalog', undefined, { 'x-subject-token': token });
    assert.equal(nocat.body.token.catalog, undefined);
    assert.equal((await me('HEAD', '/v3/auth/tokens', undefined, { 'x-subject-token': token })).status, 200);

    const { token: adminToken } = await login(s.authUrl, 'admin', s.passwords.admin);
    const adm = tokenClient(s.identityUrl, adminToken);
    assert.equal((await adm('DELETE', '/v3/auth/tokens', undefined, { 'x-subject-token': token })).status, 204);
    const gone = await adm('GET', '/v3/auth/tokens', undefined, { 'x-subject-token': token });
    assert.equal(gone.status, 404);
    assert.deepEqual(gone.body, { error: { code: 404, title: 'Not Found', message: `Could not find token: ${token}.` } });
    const self = await me('GET', '/v3/auth/tokens', undefined, { 'x-subject-token': token });
    assert.equal(self.status, 401);
    assert.deepEqual(self.body, UNAUTHORIZED);
  });

  it("does not let a member validate another user's token", async () => {
    const { token: demo } = await login(s.authUrl, 'demo', s.passwords.demo);
    const { token: admin } = await login(s.authUrl, 'admin', s.passwords.admin);
    const r = await tokenClient(s.identityUrl, demo)('GET', '/v3/auth/tokens', undefined, { 'x-subject-token': admin });
    assert.equal(r.status, 403);
    assert.deepEqual(r.body, { error: { code: 403, title: 'Forbidden', message: 'You are not authorized to perform the requested action: identity:validate_token.' } });
  });

  it('expires tokens after token_expiration', async () => {
    const { token } = await login(s.authUrl, 'demo', s.passwords.demo);
    const me = tokenClient(s.identityUrl, token);
    assert.equal((await me('GET', '/v3/auth/projects')).status, 200);
    s.advance(3600_000 + 1000);
    try {
      const r = await me('GET', '/v3/auth/projects');
      assert.equal(r.status, 401);
      assert.deepEqual(r.body, UNAUTHORIZED);
    } finally {
      s.advance(-(3600_000 + 1000));
    }
  });

  it('keeps only a hash of each token', async () => {
    const { token } = await login(s.authUrl, 'demo', s.passwords.demo);
    const db = s.servers.identity!.service.db;
    assert.equal((await db.selectFrom('identity_tokens').select('token_hash').where('token_hash', '=', token).execute()).length, 0);
    const hash = createHash('sha256').update(token).digest('hex');
    assert.equal((await db.selectFrom('identity_tokens').select('token_hash').where('token_hash', '=', hash).execute()).length, 1);
    const users = await db.selectFrom('identity_users').select('password_hash').execute();
    for (const u of users) assert.match(u.password_hash, /^scrypt\$/);
  });

  it('lists and finds projects for admins; a member sees only its own project', async () => {
    const { token: admin } = await login(s.authUrl, 'admin', s.passwords.admin);
    const adm = tokenClient(s.identityUrl, admin);
    const all = await adm('GET', '/v3/projects');
    assert.deepEqual(all.body.projects.map((p: any) => p.name), ['admin', 'demo']);
    const byName = await adm('GET', '/v3/projects?name=demo');
    assert.equal(byName.body.projects.length, 1);
    const demoId = byName.body.projects[0].id;
    const shown = await adm('GET', `/v3/projects/${demoId}`);
    assert.equal(shown.body.project.domain_id, 'default');
    assert.equal(shown.body.project.enabled, true);
    const missing = await adm('GET', '/v3/projects/nope');
    assert.deepEqual(missing.body, { error: { code: 404, title: 'Not Found', message: 'Could not find project: nope.' } });

    const { token: demo } = await login(s.authUrl, 'demo', s.passwords.demo);
    const mem = tokenClient(s.identityUrl, demo);
    assert.equal((await mem('GET', `/v3/projects/${demoId}`)).status, 200);
    const list = await mem('GET', '/v3/projects');
    assert.equal(list.status, 403);
    assert.equal(list.body.error.message, 'You are not authorized to perform the requested action: identity:list_projects.');
    assert.equal((await mem('GET', `/v3/projects/${all.body.projects[0].id}`)).status, 403);
    assert.deepEqual((await mem('GET', '/v3/auth/projects')).body.projects.map((p: any) => p.name), ['demo']);
  });

  it('shows users, roles, domains and role assignments to admins', async () => {
    const { token } = await login(s.authUrl, 'admin', s.passwords.admin);
    const adm = tokenClient(s.identityUrl, token);
    assert.deepEqual((await adm('GET', '/v3/users')).body.users.map((u: any) => u.name), ['admin', 'demo']);
    assert.deepEqual((await adm('GET', '/v3/roles')).body.roles.map((r: any) => r.name), ['admin', 'member', 'reader']);
    assert.equal((await adm('GET', '/v3/domains/default')).body.domain.name, 'Default');
    const ra = await adm('GET', '/v3/role_assignments?include_names');
    assert.deepEqual(
      ra.body.role_assignments.map((a: any) => `${a.user.name}@${a.scope.project.name}:${a.role.name}`),
      ['admin@admin:admin', 'demo@demo:member'],
    );
  });
});

describe('bootstrap', () => {
  it('is idempotent and resets a password the configuration changed', async () => {
    const db = new Kysely<IdentityDatabase>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) });
    try {
      await migrateIdentity(db);
      const o = { adminPassword: 'a1', demoPassword: 'd1', identityUrl: 'http://id/v3', networkUrl: 'http://net:9696' };
      await bootstrap(db, o);
      await bootstrap(db, { ...o, adminPassword: 'a2', networkUrl: 'http://net:19696' });
      assert.equal((await db.selectFrom('identity_users').selectAll().execute()).length, 2);
      assert.equal((await db.selectFrom('identity_projects').selectAll().execute()).length, 2);
      assert.equal((await db.selectFrom('identity_assignments').selectAll().execute()).length, 2);
      const urls = (await db.selectFrom('identity_endpoints').select('url').execute()).map((e) => e.url);
      assert.equal(urls.length, 6);
      assert.ok(urls.includes('http://net:19696') && !urls.includes('http://net:9696'));
      const svc = new IdentityService(db, { tokenExpiration: 60 });
      const auth = (password: string) =>
        svc.authenticate({ method: 'password', user: { name: 'admin', domain: { name: 'Default' } }, password, scope: undefined });
      await assert.rejects(auth('a1'), { code: 401 });
      const { resolved } = await auth('a2');
      // Unscoped request: the user's default project (admin) is used.
      assert.equal(resolved.project?.name, 'admin');
    } finally {
      await db.destroy();
    }
  });
});
