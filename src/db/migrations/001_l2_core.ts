// The layer-2 core: networks and segments, subnets and IPAM, ports, security groups.
import type { CreateTableBuilder, Kysely } from 'kysely';

/** The standard attributes Neutron gives every top-level resource. */
const std = <T extends string>(t: CreateTableBuilder<T, never>) =>
  t
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
    .addColumn('name', 'varchar(255)', (c) => c.notNull().defaultTo(''))
    .addColumn('description', 'varchar(255)', (c) => c.notNull().defaultTo(''))
    .addColumn('revision_number', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull());

export async function up(db: Kysely<any>): Promise<void> {
  await std(db.schema.createTable('networks'))
    .addColumn('admin_state_up', 'integer', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('shared', 'integer', (c) => c.notNull())
    .addColumn('router_external', 'integer', (c) => c.notNull())
    .addColumn('mtu', 'integer', (c) => c.notNull())
    .addColumn('port_security_enabled', 'integer', (c) => c.notNull())
    .addColumn('availability_zone_hints', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('networks_project').on('networks').column('project_id').execute();

  await db.schema
    .createTable('networksegments')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('network_id', 'varchar(36)', (c) => c.notNull().references('networks.id').onDelete('cascade'))
    .addColumn('network_type', 'varchar(32)', (c) => c.notNull())
    .addColumn('physical_network', 'varchar(64)', (c) => c.notNull())
    .addColumn('segmentation_id', 'integer')
    .addColumn('segment_index', 'integer', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('networksegments_network').on('networksegments').column('network_id').execute();

  await db.schema
    .createTable('ml2_segment_allocations')
    .addColumn('network_type', 'varchar(32)', (c) => c.notNull())
    .addColumn('physical_network', 'varchar(64)', (c) => c.notNull())
    .addColumn('segmentation_id', 'bigint', (c) => c.notNull())
    .addColumn('network_id', 'varchar(36)', (c) => c.notNull())
    .addPrimaryKeyConstraint('ml2_segment_allocations_pk', ['network_type', 'physical_network', 'segmentation_id'])
    .execute();

  await std(db.schema.createTable('subnets'))
    .addColumn('network_id', 'varchar(36)', (c) => c.notNull().references('networks.id'))
    .addColumn('ip_version', 'integer', (c) => c.notNull())
    .addColumn('cidr', 'varchar(64)', (c) => c.notNull())
    .addColumn('gateway_ip', 'varchar(64)')
    .addColumn('enable_dhcp', 'integer', (c) => c.notNull())
    .addColumn('ipv6_ra_mode', 'varchar(16)')
    .addColumn('ipv6_address_mode', 'varchar(16)')
    .addColumn('dns_nameservers', 'text', (c) => c.notNull())
    .addColumn('host_routes', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('subnets_network').on('subnets').column('network_id').execute();

  await db.schema
    .createTable('ipallocationpools')
    .addColumn('subnet_id', 'varchar(36)', (c) => c.notNull().references('subnets.id').onDelete('cascade'))
    .addColumn('first_ip', 'varchar(64)', (c) => c.notNull())
    .addColumn('last_ip', 'varchar(64)', (c) => c.notNull())
    .addColumn('first_num', 'bigint', (c) => c.notNull())
    .addColumn('last_num', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('ipallocationpools_pk', ['subnet_id', 'first_ip'])
    .execute();
  await db.schema.createIndex('ipallocationpools_subnet').on('ipallocationpools').column('subnet_id').execute();

  await std(db.schema.createTable('ports'))
    .addColumn('network_id', 'varchar(36)', (c) => c.notNull().references('networks.id'))
    .addColumn('mac_address', 'varchar(32)', (c) => c.notNull())
    .addColumn('admin_state_up', 'integer', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('device_id', 'varchar(255)', (c) => c.notNull())
    .addColumn('device_owner', 'varchar(255)', (c) => c.notNull())
    .addColumn('port_security_enabled', 'integer', (c) => c.notNull())
    .addColumn('binding_host_id', 'varchar(255)', (c) => c.notNull())
    .addColumn('binding_vif_type', 'varchar(64)', (c) => c.notNull())
    .addColumn('binding_vif_details', 'text', (c) => c.notNull())
    .addColumn('binding_profile', 'text', (c) => c.notNull())
    .addColumn('binding_vnic_type', 'varchar(64)', (c) => c.notNull())
    .addUniqueConstraint('ports_network_mac', ['network_id', 'mac_address'])
    .execute();
  await db.schema.createIndex('ports_project').on('ports').column('project_id').execute();
  await db.schema.createIndex('ports_device').on('ports').column('device_id').execute();
  await db.schema.createIndex('ports_host').on('ports').column('binding_host_id').execute();

  await db.schema
    .createTable('ipallocations')
    .addColumn('port_id', 'varchar(36)', (c) => c.notNull().references('ports.id').onDelete('cascade'))
    .addColumn('network_id', 'varchar(36)', (c) => c.notNull())
    .addColumn('subnet_id', 'varchar(36)', (c) => c.notNull().references('subnets.id'))
    .addColumn('ip_address', 'varchar(64)', (c) => c.notNull())
    .addColumn('ip_num', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('ipallocations_pk', ['subnet_id', 'ip_address'])
    .execute();
  await db.schema.createIndex('ipallocations_subnet_num').on('ipallocations').columns(['subnet_id', 'ip_num']).execute();
  await db.schema.createIndex('ipallocations_port').on('ipallocations').column('port_id').execute();

  await db.schema
    .createTable('allowedaddresspairs')
    .addColumn('port_id', 'varchar(36)', (c) => c.notNull().references('ports.id').onDelete('cascade'))
    .addColumn('ip_address', 'varchar(64)', (c) => c.notNull())
    .addColumn('mac_address', 'varchar(32)', (c) => c.notNull())
    .addPrimaryKeyConstraint('allowedaddresspairs_pk', ['port_id', 'mac_address', 'ip_address'])
    .execute();

  await std(db.schema.createTable('securitygroups'))
    .addColumn('stateful', 'integer', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('securitygroups_project').on('securitygroups').column('project_id').execute();

  await db.schema
    .createTable('securitygrouprules')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
    .addColumn('security_group_id', 'varchar(36)', (c) =>
      c.notNull().references('securitygroups.id').onDelete('cascade'),
    )
    .addColumn('remote_group_id', 'varchar(36)', (c) => c.references('securitygroups.id').onDelete('cascade'))
    .addColumn('remote_address_group_id', 'varchar(36)')
    .addColumn('direction', 'varchar(16)', (c) => c.notNull())
    .addColumn('ethertype', 'varchar(8)', (c) => c.notNull())
    .addColumn('protocol', 'varchar(40)')
    .addColumn('port_range_min', 'integer')
    .addColumn('port_range_max', 'integer')
    .addColumn('remote_ip_prefix', 'varchar(64)')
    .addColumn('description', 'varchar(255)', (c) => c.notNull().defaultTo(''))
    .addColumn('revision_number', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('securitygrouprules_group').on('securitygrouprules').column('security_group_id').execute();

  await db.schema
    .createTable('securitygroupportbindings')
    .addColumn('port_id', 'varchar(36)', (c) => c.notNull().references('ports.id').onDelete('cascade'))
    .addColumn('security_group_id', 'varchar(36)', (c) => c.notNull().references('securitygroups.id'))
    .addPrimaryKeyConstraint('securitygroupportbindings_pk', ['port_id', 'security_group_id'])
    .execute();
  await db.schema
    .createIndex('securitygroupportbindings_group')
    .on('securitygroupportbindings')
    .column('security_group_id')
    .execute();

  await db.schema
    .createTable('default_security_group')
    .addColumn('project_id', 'varchar(255)', (c) => c.primaryKey())
    .addColumn('security_group_id', 'varchar(36)', (c) =>
      c.notNull().references('securitygroups.id').onDelete('cascade'),
    )
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'default_security_group',
    'securitygroupportbindings',
    'securitygrouprules',
    'securitygroups',
    'allowedaddresspairs',
    'ipallocations',
    'ports',
    'ipallocationpools',
    'subnets',
    'ml2_segment_allocations',
    'networksegments',
    'networks',
  ])
    await db.schema.dropTable(t).execute();
}
