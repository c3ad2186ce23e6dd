// Routers, floating IPs, agents and the DVR bookkeeping (host MACs, SNAT and DHCP
// scheduling). Router ports are ordinary ports: device_id = router id, device_owner says
// which kind (interface, gateway, centralized SNAT); floating-IP agent gateway ports have
// device_id = the L3 agent's id and binding:host_id = its host, as in Neutron.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('routers')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
    .addColumn('name', 'varchar(255)', (c) => c.notNull())
    .addColumn('description', 'varchar(255)', (c) => c.notNull())
    .addColumn('revision_number', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('admin_state_up', 'integer', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('distributed', 'integer', (c) => c.notNull())
    .addColumn('ha', 'integer', (c) => c.notNull())
    .addColumn('gw_port_id', 'varchar(36)')
    .addColumn('enable_snat', 'integer', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('routers_project').on('routers').column('project_id').execute();

  await db.schema
    .createTable('routerroutes')
    .addColumn('router_id', 'varchar(36)', (c) => c.notNull().references('routers.id').onDelete('cascade'))
    .addColumn('destination', 'varchar(64)', (c) => c.notNull())
    .addColumn('nexthop', 'varchar(64)', (c) => c.notNull())
    .addPrimaryKeyConstraint('routerroutes_pk', ['router_id', 'destination', 'nexthop'])
    .execute();

  await db.schema
    .createTable('floatingips')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
    .addColumn('description', 'varchar(255)', (c) => c.notNull())
    .addColumn('revision_number', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('floating_ip_address', 'varchar(64)', (c) => c.notNull())
    .addColumn('floating_network_id', 'varchar(36)', (c) => c.notNull())
    .addColumn('floating_port_id', 'varchar(36)', (c) => c.notNull())
    .addColumn('fixed_port_id', 'varchar(36)')
    .addColumn('fixed_ip_address', 'varchar(64)')
    .addColumn('router_id', 'varchar(36)')
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addUniqueConstraint('floatingips_fixed', ['floating_network_id', 'fixed_port_id', 'fixed_ip_address'])
    .execute();
  await db.schema.createIndex('floatingips_router').on('floatingips').column('router_id').execute();
  await db.schema.createIndex('floatingips_port').on('floatingips').column('fixed_port_id').execute();

  await db.schema
    .createTable('agents')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('agent_type', 'varchar(255)', (c) => c.notNull())
    .addColumn('binary', 'varchar(255)', (c) => c.notNull())
    .addColumn('topic', 'varchar(255)', (c) => c.notNull())
    .addColumn('host', 'varchar(255)', (c) => c.notNull())
    .addColumn('availability_zone', 'varchar(255)')
    .addColumn('admin_state_up', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('started_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('heartbeat_timestamp', 'varchar(32)', (c) => c.notNull())
    .addColumn('description', 'varchar(255)', (c) => c.notNull())
    .addColumn('configurations', 'text', (c) => c.notNull())
    .addColumn('resources_synced', 'integer')
    .addUniqueConstraint('agents_type_host', ['agent_type', 'host'])
    .execute();

  await db.schema
    .createTable('dvr_host_macs')
    .addColumn('host', 'varchar(255)', (c) => c.primaryKey())
    .addColumn('mac_address', 'varchar(32)', (c) => c.notNull().unique())
    .execute();

  // The dvr_snat L3 agent that hosts a router's central SNAT (one per router).
  await db.schema
    .createTable('routerl3agentbindings')
    .addColumn('router_id', 'varchar(36)', (c) => c.primaryKey().references('routers.id').onDelete('cascade'))
    .addColumn('l3_agent_id', 'varchar(36)', (c) => c.notNull().references('agents.id').onDelete('cascade'))
    .execute();

  await db.schema
    .createTable('networkdhcpagentbindings')
    .addColumn('network_id', 'varchar(36)', (c) => c.notNull().references('networks.id').onDelete('cascade'))
    .addColumn('dhcp_agent_id', 'varchar(36)', (c) => c.notNull().references('agents.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('networkdhcpagentbindings_pk', ['network_id', 'dhcp_agent_id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['networkdhcpagentbindings', 'routerl3agentbindings', 'dvr_host_macs', 'agents', 'floatingips', 'routerroutes', 'routers'])
    await db.schema.dropTable(t).execute();
}
