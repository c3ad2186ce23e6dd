// Test support: the scenario's resources in a running cloud, made through the API as a user
// would (ext-net and its subnet, demo-net and demo-net2 on one distributed router with a
// gateway, ICMP allowed in the default group, vm1 and vm2 placed by the compute service on
// compute1 and compute2, a floating IP on vm1 when asked).

import assert from 'node:assert/strict';
import { client, type As, ok } from '../api/testing.js';
import type { Instance } from '../compute/compute.js';
import type { Cloud } from './cloud.js';

const demo: As = { project: 'demo' };

export interface Scenario {
  ids: Record<string, any>;
  vm1: Instance;
  vm2: Instance;
}

/**
 * `distributed: false` makes the router centralized (admin-only while router_distributed =
 * True); `allowIcmp: false` leaves the default group without the ICMP rule (default: added).
 */
export async function makeScenario(cloud: Cloud, opts: { floatingIp: boolean; distributed?: boolean; allowIcmp?: boolean }): Promise<Scenario> {
  const call = client(cloud.servers.api.url);
  const ids: Record<string, any> = {};
  ids.ext = (await ok(call('POST', '/v2.0/networks', { network: { name: 'ext-net', 'router:external': true, 'provider:physical_network': 'external', 'provider:network_type': 'flat' } }), 201)).network;
  await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: ids.ext.id, ip_version: 4, cidr: '203.0.113.0/24', allocation_pools: [{ start: '203.0.113.101', end: '203.0.113.200' }], enable_dhcp: false, gateway_ip: '203.0.113.1' } }), 201);
  ids.net1 = (await ok(call('POST', '/v2.0/networks', { network: { name: 'demo-net', tenant_id: 'demo', 'provider:network_type': 'vxlan' } }), 201)).network;
  ids.sub1 = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: ids.net1.id, ip_version: 4, cidr: '192.168.1.0/24', gateway_ip: '192.168.1.1' } }, demo), 201)).subnet;
  ids.net2 = (await ok(call('POST', '/v2.0/networks', { network: { name: 'demo-net2', tenant_id: 'demo', 'provider:network_type': 'vxlan' } }), 201)).network;
  ids.sub2 = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: ids.net2.id, ip_version: 4, cidr: '192.168.2.0/24', gateway_ip: '192.168.2.1' } }, demo), 201)).subnet;
  ids.router =
    opts.distributed === false
      ? (await ok(call('POST', '/v2.0/routers', { router: { name: 'demo-router', tenant_id: 'demo', distributed: false } }), 201)).router
      : (await ok(call('POST', '/v2.0/routers', { router: { name: 'demo-router' } }, demo), 201)).router;
  await ok(call('PUT', `/v2.0/routers/${ids.router.id}/add_router_interface`, { subnet_id: ids.sub1.id }, demo));
  await ok(call('PUT', `/v2.0/routers/${ids.router.id}/add_router_interface`, { subnet_id: ids.sub2.id }, demo));
  await ok(call('PUT', `/v2.0/routers/${ids.router.id}`, { router: { external_gateway_info: { network_id: ids.ext.id } } }, demo));
  if (opts.allowIcmp !== false) {
    const sg = (await ok(call('GET', '/v2.0/security-groups?name=default', undefined, demo))).security_groups[0];
    await ok(call('POST', '/v2.0/security-group-rules', { security_group_rule: { security_group_id: sg.id, direction: 'ingress', protocol: 'icmp', remote_ip_prefix: '0.0.0.0/0' } }, demo), 201);
  }
  const ctx = { projectId: 'demo', userId: 'demo', roles: ['member'], isAdmin: false };
  const vm1 = await cloud.compute.boot(ctx, { name: 'vm1', network_id: ids.net1.id });
  const vm2 = await cloud.compute.boot(ctx, { name: 'vm2', network_id: ids.net2.id });
  if (opts.floatingIp) ids.fip = (await ok(call('POST', '/v2.0/floatingips', { floatingip: { floating_network_id: ids.ext.id, port_id: vm1.port_id } }, demo), 201)).floatingip;
  await cloud.settle();
  return { ids, vm1, vm2 };
}
