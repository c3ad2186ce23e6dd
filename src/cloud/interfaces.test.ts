// A router interface added after the instances exist: the hosts of the router become
// l2population peers of the added network at once (no wait for a periodic resync).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { client, type As, ok } from '../api/testing.js';
import { echoReplied } from '../dataplane/emulated/ping.js';
import { startCloud, type Cloud } from './cloud.js';

const demo: As = { project: 'demo' };

describe('a router interface added to a running cloud', () => {
  let cloud: Cloud;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dvrnet-itf-'));
    cloud = await startCloud({ stateDir: dir, apiPort: 0, identityPort: 0, computePort: 0, auth: 'noauth', resyncInterval: 0 });
  });
  after(async () => {
    await cloud?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('routes east-west as soon as the interface is there', async () => {
    const call = client(cloud.servers.api.url);
    const mk = async (name: string, cidr: string) => {
      const net = (await ok(call('POST', '/v2.0/networks', { network: { name, tenant_id: 'demo', 'provider:network_type': 'vxlan' } }), 201)).network;
      const sub = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr } }, demo), 201)).subnet;
      return { net, sub };
    };
    const a = await mk('a', '192.168.10.0/24');
    const b = await mk('b', '192.168.20.0/24');
    const router = (await ok(call('POST', '/v2.0/routers', { router: { name: 'r' } }, demo), 201)).router;
    await ok(call('PUT', `/v2.0/routers/${router.id}/add_router_interface`, { subnet_id: a.sub.id }, demo));
    const ctx = { projectId: 'demo', userId: 'demo', roles: ['member'], isAdmin: false };
    const vmA = await cloud.compute.boot(ctx, { name: 'vm-a', network_id: a.net.id });
    const vmB = await cloud.compute.boot(ctx, { name: 'vm-b', network_id: b.net.id });
    await cloud.settle();
    cloud.compute.dhcp(vmA);
    cloud.compute.dhcp(vmB);
    assert.notEqual(vmA.host, vmB.host);
    // Only now does network b join the router.
    await ok(call('PUT', `/v2.0/routers/${router.id}/add_router_interface`, { subnet_id: b.sub.id }, demo));
    await cloud.settle();
    cloud.compute.dhcp(vmB); // vm-b's lease now carries the router
    const from = { host: vmA.host, ns: 'vm-a' };
    cloud.world.ping(from, vmB.fixed_ip);
    assert.ok(echoReplied(cloud.world.ping(from, vmB.fixed_ip, { seq: 2 }), from), 'vm-b answers vm-a through the router');
  });
});
