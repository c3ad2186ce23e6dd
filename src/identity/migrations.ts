// Identity's schema history, kept apart from Neutron's (its own Kysely migration table), so
// either can evolve without renumbering the other. Applied migrations are never edited.

import { Migrator, type Kysely, type Migration } from 'kysely';
import type { IdentityDatabase } from './schema.js';

const m001: Migration = {
  async up(db: Kysely<any>) {
    const id = 'varchar(64)';
    await db.schema
      .createTable('identity_domains')
      .addColumn('id', id, (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
      .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('identity_projects')
      .addColumn('id', id, (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)', (c) => c.notNull())
      .addColumn('domain_id', id, (c) => c.notNull().references('identity_domains.id'))
      .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .addUniqueConstraint('identity_projects_domain_name', ['domain_id', 'name'])
      .execute();
    await db.schema
      .createTable('identity_users')
      .addColumn('id', id, (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)', (c) => c.notNull())
      .addColumn('domain_id', id, (c) => c.notNull().references('identity_domains.id'))
      .addColumn('password_hash', 'varchar(255)', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('default_project_id', id)
      .addUniqueConstraint('identity_users_domain_name', ['domain_id', 'name'])
      .execute();
    await db.schema
      .createTable('identity_roles')
      .addColumn('id', id, (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
      .execute();
    await db.schema
      .createTable('identity_assignments')
      .addColumn('user_id', id, (c) => c.notNull().references('identity_users.id').onDelete('cascade'))
      .addColumn('project_id', id, (c) => c.notNull().references('identity_projects.id').onDelete('cascade'))
      .addColumn('role_id', id, (c) => c.notNull().references('identity_roles.id').onDelete('cascade'))
      .addPrimaryKeyConstraint('identity_assignments_pk', ['user_id', 'project_id', 'role_id'])
      .execute();
    await db.schema
      .createTable('identity_tokens')
      .addColumn('token_hash', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('user_id', id, (c) => c.notNull())
      .addColumn('project_id', id)
      .addColumn('methods', 'varchar(64)', (c) => c.notNull())
      .addColumn('audit_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('issued_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema.createIndex('identity_tokens_expires').on('identity_tokens').column('expires_at').execute();
    await db.schema
      .createTable('identity_regions')
      .addColumn('id', 'varchar(255)', (c) => c.primaryKey())
      .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
      .execute();
    await db.schema
      .createTable('identity_services')
      .addColumn('id', id, (c) => c.primaryKey())
      .addColumn('type', 'varchar(255)', (c) => c.notNull())
      .addColumn('name', 'varchar(255)', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('identity_endpoints')
      .addColumn('id', id, (c) => c.primaryKey())
      .addColumn('service_id', id, (c) => c.notNull().references('identity_services.id').onDelete('cascade'))
      .addColumn('region_id', 'varchar(255)', (c) => c.notNull().references('identity_regions.id'))
      .addColumn('interface', 'varchar(8)', (c) => c.notNull())
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['identity_endpoints', 'identity_services', 'identity_regions', 'identity_tokens', 'identity_assignments', 'identity_roles', 'identity_users', 'identity_projects', 'identity_domains'])
      await db.schema.dropTable(t).execute();
  },
};

const MIGRATIONS: Record<string, Migration> = { '001_identity': m001 };

export async function migrateIdentity(db: Kysely<IdentityDatabase>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => MIGRATIONS },
    migrationTableName: 'identity_migration',
    migrationLockTableName: 'identity_migration_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`identity database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? error}`);
  }
}
