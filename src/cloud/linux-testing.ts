// Test helper: the scenario's cloud on the linux dataplane (network1, compute1, compute2 as
// namespaces with their own Open vSwitch; ext-net, two tenant networks on one distributed
// router with a gateway, vm1 on compute1 with a floating IP, vm2 on compute2), made through
// the API as src/cloud/linux.test.ts makes it. Needs root and the tools that
// linuxDataplaneUnavailable() checks.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { client, type As } from '../api/testing.js';
import type { Instance } from '../compute/compute.js';
import { startCloud, type Cloud } from './cloud.js';
import { LinuxDataplane } from './linux-dataplane.js';
import { scenarioTopology } from './topology.js';

const demo: As = { project: 'demo' };

export interface LinuxScenario {
  tag: string;
  /** The cloud's state directory; the machine's is `<dir>/linux` (as `dvrnet up` lays it out). */
  dir: string;
  dataplane: LinuxDataplane;
  cloud: Cloud;
  ids: Record<string, any>;
  vm1: Instance;
  vm2: Instance;
  /** Pings (with the dataplane's retries) and asserts that every packet came back. */
  pingOk(from: { host: string; ns?: string }, dst: string, count?: number): Promise<void>;
  /** The machine's namespaces with the scenario's tag. */
  namespaces(): string[];
  /** Processes whose command line names the state directory (OVS daemons, dnsmasq, udhcpc, proxies). */
  processes(): string[];
}

const ok = async (p: Promise<{ status: number; body: any }>, status = 200) => {
  const r = await p;
  assert.equal(r.status, status, JSON.stringify(r.body));
  return r.body;
};

export const scenarioNamespaces = (tag: string) => (existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(tag)) : []);

export const processesMentioning = (text: string) =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text);
      } catch {
        return false;
      }
    });

/**
 * Starts the scenario's cloud on a fresh state directory. On failure the caller's cleanup
 * still finds `dir` and `dataplane` through `onCreated` (called before anything is made).
 */
export async function startLinuxScenario(tag: string, onCreated?: (s: { dir: string; dataplane: LinuxDataplane }) => void): Promise<LinuxScenario> {
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-linux-cloud-'));
  const dataplane = new LinuxDataplane(join(dir, 'linux'), tag);
  onCreated?.({ dir, dataplane });
  const topology = scenarioTopology(2);
  topology.nodes = topology.nodes.filter((n) => n.name !== 'controller');
  const cloud = await startCloud({ stateDir: dir, topology, dataplane, apiPort: 0, identityPort: 0, computePort: 0, auth: 'noauth', resyncInterval: 10 });
  const call = client(cloud.servers.api.url);
  const ids: Record<string, any> = {};
  try {
    ids.ext = (await ok(call('POST', '/v2.0/networks', { network: { name: 'ext-net', 'router:external': true, 'provider:physical_network': 'external', 'provider:network_type': 'flat' } }), 201)).network;
    await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: ids.ext.id, ip_version: 4, cidr: '203.0.113.0/24', allocation_pools: [{ start: '203.0.113.101', end: '203.0.113.200' }], enable_dhcp: false, gateway_ip: '203.0.113.1' } }), 201);
    ids.net1 = (await ok(call('POST', '/v2.0/networks', { network: { name: 'demo-net', tenant_id: 'demo', 'provider:network_type': 'vxlan' } }), 201)).network;
    ids.sub1 = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: ids.net1.id, ip_version: 4, cidr: '192.168.1.0/24', gateway_ip: '192.168.1.1' } }, demo), 201)).subnet;
    ids.net2 = (await ok(call('POST', '/v2.0/networks', { network: { name: 'demo-net2', tenant_id: 'demo', 'provider:network_type': 'vxlan' } }), 201)).network;
    ids.sub2 = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: ids.net2.id, ip_version: 4, cidr: '192.168.2.0/24', gateway_ip: '192.168.2.1' } }, demo), 201)).subnet;
    ids.router = (await ok(call('POST', '/v2.0/routers', { router: { name: 'demo-router' } }, demo), 201)).router;
    await ok(call('PUT', `/v2.0/routers/${ids.router.id}/add_router_interface`, { subnet_id: ids.sub1.id }, demo));
    await ok(call('PUT', `/v2.0/routers/${ids.router.id}/add_router_interface`, { subnet_id: ids.sub2.id }, demo));
    await ok(call('PUT', `/v2.0/routers/${ids.router.id}`, { router: { external_gateway_info: { network_id: ids.ext.id } } }, demo));
    const sg = (await ok(call('GET', '/v2.0/security-groups?name=default', undefined, demo))).security_groups[0];
    await ok(call('POST', '/v2.0/security-group-rules', { security_group_rule: { security_group_id: sg.id, direction: 'ingress', protocol: 'icmp', remote_ip_prefix: '0.0.0.0/0' } }, demo), 201);
    const ctx = { projectId: 'demo', userId: 'demo', roles: ['member'], isAdmin: false };
    const vm1 = await cloud.compute.boot(ctx, { name: 'vm1', network_id: ids.net1.id });
    const vm2 = await cloud.compute.boot(ctx, { name: 'vm2', network_id: ids.net2.id });
    ids.fip = (await ok(call('POST', '/v2.0/floatingips', { floatingip: { floating_network_id: ids.ext.id, port_id: vm1.port_id } }, demo), 201)).floatingip;
    await cloud.settle();
    return {
      tag,
      dir,
      dataplane,
      cloud,
      ids,
      vm1,
      vm2,
      async pingOk(from, dst, count = 3) {
        const r = await dataplane.ping(from, dst, count);
        assert.equal(r.received, r.sent, `ping ${dst} from ${from.host}/${from.ns ?? ''}: ${r.summary}`);
        assert.ok(r.sent > 0, r.summary);
      },
      namespaces: () => scenarioNamespaces(tag),
      processes: () => processesMentioning(dir),
    };
  } catch (err) {
    await cloud.close().catch(() => undefined);
    throw err;
  }
}
