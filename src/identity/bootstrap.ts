// What `keystone-manage bootstrap` does, run at every start and idempotent: the Default
// domain, the admin/member/reader roles, the admin and demo projects and users (passwords
// from [identity], reset when the configuration changes them), region RegionOne, and the
// catalog's identity and network endpoints (URLs follow the running servers, which matters
// when a port is chosen at start).

import type { Kysely } from 'kysely';
import { hashPassword, verifyPassword } from './password.js';
import type { IdentityDatabase } from './schema.js';
import { DEFAULT_DOMAIN } from './service.js';
import { newId } from './tokens.js';

export const REGION = 'RegionOne';
export const ROLES = ['admin', 'member', 'reader'] as const;
const INTERFACES = ['public', 'internal', 'admin'] as const;

export interface BootstrapOptions {
  /** Absent: the user is not created (or left as it is). */
  adminPassword?: string;
  demoPassword?: string;
  identityUrl: string;
  /** The network API's public URL; absent: the network service is left out of the catalog. */
  networkUrl?: string;
}

/** The scenario's clouds: user, project and role of each. */
export const CLOUDS = {
  admin: { user: 'admin', project: 'admin', role: 'admin' },
  demo: { user: 'demo', project: 'demo', role: 'member' },
} as const;

export async function bootstrap(db: Kysely<IdentityDatabase>, o: BootstrapOptions): Promise<void> {
  await db.insertInto('identity_domains').values(DEFAULT_DOMAIN).onConflict((c) => c.doNothing()).execute();
  const roleIds: Record<string, string> = {};
  for (const name of ROLES) roleIds[name] = await ensure(db, 'identity_roles', { name }, () => ({ id: newId(), name }));

  const passwords = { admin: o.adminPassword, demo: o.demoPassword };
  for (const [cloud, c] of Object.entries(CLOUDS)) {
    const projectId = await ensure(db, 'identity_projects', { name: c.project, domain_id: DEFAULT_DOMAIN.id }, () => ({
      id: newId(),
      name: c.project,
      domain_id: DEFAULT_DOMAIN.id,
      description: cloud === 'admin' ? 'Bootstrap project for initializing the cloud.' : 'Demo Project',
      enabled: 1,
    }));
    const password = passwords[cloud as keyof typeof passwords];
    if (password === undefined) continue;
    const existing = await db.selectFrom('identity_users').selectAll().where('name', '=', c.user).where('domain_id', '=', DEFAULT_DOMAIN.id).executeTakeFirst();
    let userId: string;
    if (!existing) {
      userId = newId();
      await db
        .insertInto('identity_users')
        .values({ id: userId, name: c.user, domain_id: DEFAULT_DOMAIN.id, password_hash: await hashPassword(password), enabled: 1, default_project_id: projectId })
        .execute();
    } else {
      userId = existing.id;
      if (!(await verifyPassword(password, existing.password_hash)))
        await db.updateTable('identity_users').set({ password_hash: await hashPassword(password) }).where('id', '=', userId).execute();
    }
    await db
      .insertInto('identity_assignments')
      .values({ user_id: userId, project_id: projectId, role_id: roleIds[c.role] })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }

  await db.insertInto('identity_regions').values({ id: REGION, description: '' }).onConflict((c) => c.doNothing()).execute();
  await ensureService(db, 'identity', 'keystone', 'Identity Service', o.identityUrl);
  if (o.networkUrl) await ensureService(db, 'network', 'neutron', 'OpenStack Networking', o.networkUrl);
}

/** The id of the row matching `where`, inserting `make()` first when there is none. */
async function ensure<T extends 'identity_roles' | 'identity_projects'>(
  db: Kysely<IdentityDatabase>,
  table: T,
  where: Record<string, string>,
  make: () => IdentityDatabase[T],
): Promise<string> {
  const find = async () => {
    let q = db.selectFrom(table as 'identity_roles').select('id');
    for (const [k, v] of Object.entries(where)) q = q.where(k as 'name', '=', v);
    return (await q.executeTakeFirst())?.id;
  };
  const found = await find();
  if (found) return found;
  await db.insertInto(table).values(make() as never).onConflict((c) => c.doNothing()).execute();
  return (await find())!;
}

/** A service with one endpoint URL on every interface (created, or its URL updated). */
export async function ensureService(db: Kysely<IdentityDatabase>, type: string, name: string, description: string, url: string): Promise<void> {
  let service = await db.selectFrom('identity_services').select('id').where('type', '=', type).executeTakeFirst();
  if (!service) {
    service = { id: newId() };
    await db.insertInto('identity_services').values({ id: service.id, type, name, description, enabled: 1 }).execute();
  }
  for (const iface of INTERFACES) {
    const e = await db
      .selectFrom('identity_endpoints')
      .selectAll()
      .where('service_id', '=', service.id)
      .where('interface', '=', iface)
      .where('region_id', '=', REGION)
      .executeTakeFirst();
    if (!e)
      await db.insertInto('identity_endpoints').values({ id: newId(), service_id: service.id, region_id: REGION, interface: iface, url, enabled: 1 }).execute();
    else if (e.url !== url) await db.updateTable('identity_endpoints').set({ url }).where('id', '=', e.id).execute();
  }
}
