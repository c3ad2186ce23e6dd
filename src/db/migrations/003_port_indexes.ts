// Indexes for what the RPC side asks per port event: the hosts of a network (l2population's
// audience), its active ports (the FDB), its distributed router interfaces. Without them
// each such query scanned every port, which made a cloud's convergence quadratic in ports.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('ports_network_host').on('ports').columns(['network_id', 'binding_host_id']).execute();
  await db.schema.createIndex('ports_network_owner').on('ports').columns(['network_id', 'device_owner']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('ports_network_owner').execute();
  await db.schema.dropIndex('ports_network_host').execute();
}
