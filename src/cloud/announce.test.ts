// Gratuitous ARP: addresses a host takes over are announced once their device is wired, as
// Neutron's L3 agent does (send_ip_addr_adv_notif), so the outside router's ARP cache follows
// a floating IP that moves to an instance on another host.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { client, type As, ok } from '../api/testing.js';
import { ping } from '../dataplane/emulated/ping.js';
import { startCloud, type Cloud } from './cloud.js';
import { makeScenario, type Scenario } from './testing.js';

const demo: As = { project: 'demo' };

describe('gratuitous ARP from the L3 agent (emulated)', () => {
  let cloud: Cloud;
  let dir: string;
  let sc: Scenario;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dvrnet-garp-'));
    cloud = await startCloud({ stateDir: dir, apiPort: 0, identityPort: 0, computePort: 0, auth: 'noauth', resyncInterval: 0 });
    sc = await makeScenario(cloud, { floatingIp: true });
    for (const vm of [sc.vm1, sc.vm2]) assert.ok(cloud.compute.dhcp(vm), `${vm.name} gets a DHCP lease`);
  });
  after(async () => {
    await cloud?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The outside router's cached MAC for an address on the external network. */
  const cached = (ip: string) => {
    const eg = cloud.world.host('extrouter');
    for (const ns of [eg.root, ...eg.namespaces.values()])
      for (const d of ns.devices.values())
        for (const n of d.neigh.values()) if ([24, 16, 8, 0].map((s) => (n.ip >>> s) & 255).join('.') === ip) return n.mac;
    return undefined;
  };
  const fgMac = (host: string) => {
    for (const ns of cloud.world.host(host).namespaces.values()) for (const d of ns.devices.values()) if (d.name.startsWith('fg-')) return d.mac;
    return undefined;
  };

  it('a floating IP moved to an instance on another host is reachable from the outside at once', async () => {
    const fip = sc.ids.fip.floating_ip_address;
    assert.match(ping(cloud.world, { host: 'internet' }, fip, 2).summary, / 0% packet loss/);
    assert.equal(cached(fip), fgMac('compute1'), "the outside router reaches it through compute1's fg-");
    await ok(client(cloud.servers.api.url)('PUT', `/v2.0/floatingips/${sc.ids.fip.id}`, { floatingip: { port_id: sc.vm2.port_id } }, demo));
    await cloud.settle();
    // No traffic since the move: only compute2's announcement can have told the router.
    assert.equal(cached(fip), fgMac('compute2'), "compute2's fg- announced it");
    assert.match(ping(cloud.world, { host: 'internet' }, fip, 2).summary, / 0% packet loss/);
  });
});
