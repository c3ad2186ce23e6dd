// The API server's behaviour over real HTTP on a real database. Run once per database
// kind by api.sqlite.test.ts and api.postgres.test.ts (Hono's *.case pattern).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { admin, client, demo, startTestServer, type DbKind, type Reply, type TestServer } from './testing.js';

const err = (r: Reply, status: number, type?: string) => {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.ok(r.body?.NeutronError, `a NeutronError body: ${JSON.stringify(r.body)}`);
  if (type) assert.equal(r.body.NeutronError.type, type, r.body.NeutronError.message);
  assert.equal(typeof r.body.NeutronError.message, 'string');
  assert.equal(r.body.NeutronError.detail, '');
};

export function apiSuite(kind: DbKind, opts: { skip?: string } = {}) {
  describe(`API server on ${kind}`, { skip: opts.skip }, () => {
    let srv: TestServer;
    let call: ReturnType<typeof client>;
    before(async () => {
      srv = await startTestServer(kind);
      call = client(srv.url);
    });
    after(async () => srv?.destroy());

    const net = async (body: object, as = admin) => {
      const r = await call('POST', '/v2.0/networks', { network: body }, as);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.network;
    };
    const subnet = async (body: object, as = admin) => {
      const r = await call('POST', '/v2.0/subnets', { subnet: { ip_version: 4, ...body } }, as);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.subnet;
    };
    const port = async (body: object, as = admin) => {
      const r = await call('POST', '/v2.0/ports', { port: body }, as);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.port;
    };

    describe('discovery', () => {
      it('answers GET / with the v2.0 version', async () => {
        const r = await call('GET', '/');
        assert.equal(r.status, 200);
        assert.equal(r.body.versions[0].id, 'v2.0');
        assert.equal(r.body.versions[0].status, 'CURRENT');
        assert.match(r.body.versions[0].links[0].href, /\/v2\.0\/$/);
      });
      it('lists the resources under /v2.0', async () => {
        const r = await call('GET', '/v2.0');
        assert.deepEqual(
          r.body.resources.map((x: any) => x.collection).sort(),
          ['agents', 'floatingips', 'networks', 'ports', 'routers', 'security_group_rules', 'security_groups', 'subnets'],
        );
      });
      it('lists extensions and shows one by alias', async () => {
        const r = await call('GET', '/v2.0/extensions');
        const aliases = r.body.extensions.map((e: any) => e.alias);
        for (const a of ['provider', 'external-net', 'binding', 'security-group', 'port-security', 'allowed-address-pairs', 'pagination', 'sorting'])
          assert.ok(aliases.includes(a), a);
        assert.equal((await call('GET', '/v2.0/extensions/provider')).body.extension.name, 'Provider Network');
        err(await call('GET', '/v2.0/extensions/nope'), 404);
      });
      it('accepts the .json suffix older clients send', async () => {
        const r = await call('GET', '/v2.0/networks.json');
        assert.equal(r.status, 200);
        assert.ok(Array.isArray(r.body.networks));
      });
    });

    describe("the scenario's steps 2-5", () => {
      let extNet: any, demoNet: any;
      it('step 2: admin creates ext-net, flat on physnet external', async () => {
        extNet = await net({ name: 'ext-net', 'router:external': true, 'provider:physical_network': 'external', 'provider:network_type': 'flat' });
        assert.equal(extNet.status, 'ACTIVE');
        assert.equal(extNet['router:external'], true);
        assert.equal(extNet['provider:network_type'], 'flat');
        assert.equal(extNet['provider:physical_network'], 'external');
        assert.equal(extNet['provider:segmentation_id'], null);
        assert.equal(extNet.mtu, 1500);
        assert.equal(extNet.shared, false);
      });
      it('step 3: its subnet with the floating IP pool, DHCP off', async () => {
        const s = await subnet({ network_id: extNet.id, cidr: '203.0.113.0/24', allocation_pools: [{ start: '203.0.113.101', end: '203.0.113.200' }], enable_dhcp: false, gateway_ip: '203.0.113.1', name: 'ext-subnet' });
        assert.deepEqual(s.allocation_pools, [{ start: '203.0.113.101', end: '203.0.113.200' }]);
        assert.equal(s.enable_dhcp, false);
        assert.equal(s.gateway_ip, '203.0.113.1');
        assert.deepEqual((await call('GET', `/v2.0/networks/${extNet.id}`)).body.network.subnets, [s.id]);
      });
      it('step 4: admin creates demo-net as vxlan for the demo project (segmentation id 1)', async () => {
        demoNet = await net({ name: 'demo-net', tenant_id: 'demo', 'provider:network_type': 'vxlan' });
        assert.equal(demoNet.project_id, 'demo');
        assert.equal(demoNet.tenant_id, 'demo');
        assert.equal(demoNet['provider:segmentation_id'], 1);
        assert.equal(demoNet.mtu, 1450);
      });
      it('step 5: demo creates demo-subnet (pool .2-.254, DHCP on)', async () => {
        const s = await subnet({ network_id: demoNet.id, name: 'demo-subnet', gateway_ip: '192.168.1.1', cidr: '192.168.1.0/24' }, demo);
        assert.deepEqual(s.allocation_pools, [{ start: '192.168.1.2', end: '192.168.1.254' }]);
        assert.equal(s.enable_dhcp, true);
        assert.equal(s.project_id, 'demo');
      });
      it('demo sees its network without provider attributes, and ext-net read-only', async () => {
        const r = await call('GET', '/v2.0/networks', undefined, demo);
        const names = r.body.networks.map((n: any) => n.name).sort();
        assert.ok(names.includes('demo-net') && names.includes('ext-net'));
        for (const n of r.body.networks) assert.ok(!('provider:network_type' in n), 'provider attributes hidden');
        err(await call('PUT', `/v2.0/networks/${extNet.id}`, { network: { name: 'mine' } }, demo), 403, 'PolicyNotAuthorized');
        err(await call('DELETE', `/v2.0/networks/${extNet.id}`, undefined, demo), 403);
      });
      it("another project sees neither demo's network nor its subnet", async () => {
        const other = { project: 'other' };
        const r = await call('GET', '/v2.0/networks', undefined, other);
        assert.deepEqual(r.body.networks.map((n: any) => n.name), ['ext-net']);
        err(await call('GET', `/v2.0/networks/${demoNet.id}`, undefined, other), 404, 'NetworkNotFound');
        assert.deepEqual((await call('GET', '/v2.0/subnets', undefined, other)).body.subnets.map((s: any) => s.name), ['ext-subnet']);
        err(await call('POST', '/v2.0/ports', { port: { network_id: demoNet.id } }, other), 404, 'NetworkNotFound');
        err(await call('POST', '/v2.0/subnets', { subnet: { network_id: extNet.id, ip_version: 4, cidr: '10.9.0.0/24' } }, other), 403);
      });
    });

    describe('ML2 type drivers', () => {
      it('gives project networks the first tenant type with a free segment, lowest id first', async () => {
        const a = await net({ name: 't1' }, { project: 'p1' });
        const b = await net({ name: 't2' }, { project: 'p1' });
        const [sa, sb] = await Promise.all([a, b].map(async (n) => (await call('GET', `/v2.0/networks/${n.id}`)).body.network));
        assert.equal(sa['provider:network_type'], 'vlan');
        assert.equal(sa['provider:physical_network'], 'vlan');
        assert.deepEqual([sa['provider:segmentation_id'], sb['provider:segmentation_id']], [100, 101]);
        assert.equal(sa.mtu, 1500);
      });
      it('lets an admin choose provider attributes within the configured ranges', async () => {
        const v = await net({ 'provider:network_type': 'vlan', 'provider:physical_network': 'external', 'provider:segmentation_id': 3000 });
        assert.equal(v['provider:segmentation_id'], 3000); // physnet without a range: any id
        const g = await net({ 'provider:network_type': 'gre' });
        assert.equal(g.mtu, 1458);
        assert.equal(g['provider:segmentation_id'], 1);
        const x = await net({ 'provider:network_type': 'vxlan', 'provider:segmentation_id': 5000 });
        assert.equal(x['provider:segmentation_id'], 5000);
      });
      it('refuses provider values outside what the config allows', async () => {
        const bad = async (body: object, status: number, type?: string) => err(await call('POST', '/v2.0/networks', { network: body }), status, type);
        await bad({ 'provider:network_type': 'vlan', 'provider:physical_network': 'vlan', 'provider:segmentation_id': 5000 }, 400);
        await bad({ 'provider:network_type': 'flat', 'provider:physical_network': 'nowhere' }, 400, 'InvalidInput');
        await bad({ 'provider:network_type': 'flat', 'provider:physical_network': 'external', 'provider:segmentation_id': 3 }, 400);
        await bad({ 'provider:network_type': 'vxlan', 'provider:physical_network': 'vlan' }, 400);
        await bad({ 'provider:network_type': 'geneve' }, 400);
        await bad({ 'provider:network_type': 'vxlan', 'provider:segmentation_id': 2 ** 24 }, 400);
        await bad({ 'provider:network_type': 'vxlan', 'provider:segmentation_id': 'x' }, 400);
      });
      it('never hands a segment out twice, and frees it on delete', async () => {
        const a = await net({ 'provider:network_type': 'vxlan', 'provider:segmentation_id': 77 });
        err(await call('POST', '/v2.0/networks', { network: { 'provider:network_type': 'vxlan', 'provider:segmentation_id': 77 } }), 409, 'TunnelIdInUse');
        err(await call('POST', '/v2.0/networks', { network: { 'provider:network_type': 'flat', 'provider:physical_network': 'external' } }), 409, 'FlatNetworkInUse');
        const v = await net({ 'provider:network_type': 'vlan', 'provider:physical_network': 'vlan', 'provider:segmentation_id': 150 });
        err(await call('POST', '/v2.0/networks', { network: { 'provider:network_type': 'vlan', 'provider:physical_network': 'vlan', 'provider:segmentation_id': 150 } }), 409, 'VlanIdInUse');
        assert.equal((await call('DELETE', `/v2.0/networks/${a.id}`)).status, 204);
        assert.equal((await call('DELETE', `/v2.0/networks/${v.id}`)).status, 204);
        assert.equal((await net({ 'provider:network_type': 'vxlan', 'provider:segmentation_id': 77 }))['provider:segmentation_id'], 77);
      });
      it('allocates distinct segments under concurrent creation', async () => {
        const rs = await Promise.all(Array.from({ length: 20 }, (_, k) => call('POST', '/v2.0/networks', { network: { name: `c${k}`, 'provider:network_type': 'vxlan' } })));
        for (const r of rs) assert.equal(r.status, 201, JSON.stringify(r.body));
        const ids = rs.map((r) => r.body.network['provider:segmentation_id']);
        assert.equal(new Set(ids).size, ids.length);
      });
      it('keeps provider attributes admin-only', async () => {
        err(await call('POST', '/v2.0/networks', { network: { 'provider:network_type': 'vxlan' } }, demo), 403, 'PolicyNotAuthorized');
        err(await call('POST', '/v2.0/networks', { network: { shared: true } }, demo), 403);
        err(await call('POST', '/v2.0/networks', { network: { 'router:external': true } }, demo), 403);
        const n = await net({ name: 'mine' }, demo);
        assert.ok(!('provider:segmentation_id' in n));
        err(await call('PUT', `/v2.0/networks/${n.id}`, { network: { 'provider:segmentation_id': 9 } }, demo), 403);
        err(await call('PUT', `/v2.0/networks/${n.id}`, { network: { 'provider:segmentation_id': 9 } }), 400, 'InvalidInput');
      });
    });

    describe('IPAM', () => {
      let n: any;
      before(async () => {
        n = await net({ name: 'ipam' });
      });
      it('defaults the gateway to the first host and the pool to the rest', async () => {
        const s = await subnet({ network_id: n.id, cidr: '10.1.0.0/24' });
        assert.equal(s.gateway_ip, '10.1.0.1');
        assert.deepEqual(s.allocation_pools, [{ start: '10.1.0.2', end: '10.1.0.254' }]);
        const s2 = await subnet({ network_id: n.id, cidr: '10.2.0.0/29', gateway_ip: null });
        assert.equal(s2.gateway_ip, null);
        assert.deepEqual(s2.allocation_pools, [{ start: '10.2.0.1', end: '10.2.0.6' }]);
        const s3 = await subnet({ network_id: n.id, cidr: '10.3.0.0/24', gateway_ip: '10.3.0.100' });
        assert.deepEqual(s3.allocation_pools, [{ start: '10.3.0.1', end: '10.3.0.99' }, { start: '10.3.0.101', end: '10.3.0.254' }]);
      });
      it('validates CIDRs, gateways and pools', async () => {
        const bad = async (body: object, status = 400, type?: string) => err(await call('POST', '/v2.0/subnets', { subnet: { ip_version: 4, network_id: n.id, ...body } }), status, type);
        await bad({ cidr: '10.5.0.0/33' });
        await bad({ cidr: '10.5.0.1/24' });
        await bad({ cidr: 'banana' });
        await bad({ cidr: '10.5.0.0/24', gateway_ip: '10.5.0.0' });
        await bad({ cidr: '10.5.0.0/24', allocation_pools: [{ start: '10.5.0.10', end: '10.5.1.20' }] });
        await bad({ cidr: '10.5.0.0/24', allocation_pools: [{ start: '10.5.0.20', end: '10.5.0.10' }] });
        await bad({ cidr: '10.5.0.0/24', allocation_pools: [{ start: '10.5.0.10', end: '10.5.0.20' }, { start: '10.5.0.15', end: '10.5.0.30' }] });
        await bad({ cidr: '10.5.0.0/24', allocation_pools: [{ start: '10.5.0.1', end: '10.5.0.20' }] }, 409, 'GatewayConflictWithAllocationPools');
        await bad({ cidr: '10.1.0.128/25' }, 400, 'InvalidInput'); // overlaps 10.1.0.0/24 on this network
        await bad({ cidr: '10.5.0.0/24', ip_version: 5 });
        await bad({ cidr: '10.5.0.0/24', network_id: '00000000-0000-0000-0000-000000000000' }, 404, 'NetworkNotFound');
        await bad({ cidr: '10.5.0.0/24', dns_nameservers: ['8.8.8.8', '8.8.8.8'] });
        await bad({ cidr: '10.5.0.0/24', host_routes: [{ destination: '10.9.0.0/16' }] });
      });
      it('allows the same CIDR on another network (allow_overlapping_ips)', async () => {
        const other = await net({ name: 'ipam2' });
        await subnet({ network_id: other.id, cidr: '10.1.0.0/24' });
      });
      it('gives ports the lowest free address, the requested one, or a clear error', async () => {
        const m = await net({ name: 'ports' });
        const s = await subnet({ network_id: m.id, cidr: '10.7.0.0/29' }); // pool .2-.6
        const p1 = await port({ network_id: m.id });
        assert.deepEqual(p1.fixed_ips, [{ subnet_id: s.id, ip_address: '10.7.0.2' }]);
        const p2 = await port({ network_id: m.id, fixed_ips: [{ ip_address: '10.7.0.5' }] });
        assert.equal(p2.fixed_ips[0].ip_address, '10.7.0.5');
        err(await call('POST', '/v2.0/ports', { port: { network_id: m.id, fixed_ips: [{ ip_address: '10.7.0.5' }] } }), 409, 'IpAddressInUse');
        err(await call('POST', '/v2.0/ports', { port: { network_id: m.id, fixed_ips: [{ ip_address: '10.7.0.1' }] } }), 409, 'IpAddressInUse'); // the gateway
        err(await call('POST', '/v2.0/ports', { port: { network_id: m.id, fixed_ips: [{ ip_address: '10.8.0.5' }] } }), 400);
        err(await call('POST', '/v2.0/ports', { port: { network_id: m.id, fixed_ips: [{ ip_address: '10.7.0.7' }] } }), 400); // broadcast
        const more = [await port({ network_id: m.id }), await port({ network_id: m.id }), await port({ network_id: m.id, fixed_ips: [{ subnet_id: s.id }] })];
        assert.deepEqual(more.map((p) => p.fixed_ips[0].ip_address), ['10.7.0.3', '10.7.0.4', '10.7.0.6']);
        err(await call('POST', '/v2.0/ports', { port: { network_id: m.id } }), 409, 'IpAddressGenerationFailure');
        assert.equal((await call('DELETE', `/v2.0/ports/${more[0].id}`)).status, 204);
        assert.equal((await port({ network_id: m.id })).fixed_ips[0].ip_address, '10.7.0.3');
        // A port may also take an address outside the pools but inside the subnet, and none at all.
        const none = await port({ network_id: m.id, fixed_ips: [] });
        assert.deepEqual(none.fixed_ips, []);
        const upd = await call('PUT', `/v2.0/ports/${p2.id}`, { port: { fixed_ips: [{ ip_address: '10.7.0.5' }, { subnet_id: s.id }] } });
        assert.equal(upd.status, 409, 'the pool is full');
        const upd2 = await call('PUT', `/v2.0/ports/${p2.id}`, { port: { fixed_ips: [] } });
        assert.deepEqual(upd2.body.port.fixed_ips, []);
        assert.equal((await port({ network_id: m.id })).fixed_ips[0].ip_address, '10.7.0.5');
      });
      it('never gives one address to two ports under 50 concurrent creations', async () => {
        const m = await net({ name: 'concurrent' });
        await subnet({ network_id: m.id, cidr: '10.20.0.0/24' });
        const rs = await Promise.all(Array.from({ length: 50 }, () => call('POST', '/v2.0/ports', { port: { network_id: m.id } })));
        for (const r of rs) assert.equal(r.status, 201, JSON.stringify(r.body));
        const ips = rs.map((r) => r.body.port.fixed_ips[0].ip_address);
        const macs = rs.map((r) => r.body.port.mac_address);
        assert.equal(new Set(ips).size, 50);
        assert.equal(new Set(macs).size, 50);
        const nums = ips.map((ip) => Number(ip.split('.')[3])).sort((a, b) => a - b);
        assert.deepEqual(nums, Array.from({ length: 50 }, (_, k) => k + 2), 'the lowest 50 addresses of the pool');
      });
      it('refuses to delete a subnet or network still in use', async () => {
        const m = await net({ name: 'busy' });
        const s = await subnet({ network_id: m.id, cidr: '10.30.0.0/24' });
        const p = await port({ network_id: m.id });
        await port({ network_id: m.id, device_owner: 'network:dhcp' });
        err(await call('DELETE', `/v2.0/subnets/${s.id}`), 409, 'SubnetInUse');
        err(await call('DELETE', `/v2.0/networks/${m.id}`), 409, 'NetworkInUse');
        assert.equal((await call('DELETE', `/v2.0/ports/${p.id}`)).status, 204);
        assert.equal((await call('DELETE', `/v2.0/networks/${m.id}`)).status, 204, 'the DHCP port goes with the network');
        err(await call('GET', `/v2.0/subnets/${s.id}`), 404, 'SubnetNotFound');
      });
    });

    describe('ports', () => {
      let n: any;
      before(async () => {
        n = await net({ name: 'portnet', tenant_id: 'demo' });
        await subnet({ network_id: n.id, cidr: '172.16.0.0/24' }, demo);
      });
      it('takes MACs from base_mac and refuses a duplicate', async () => {
        const p = await port({ network_id: n.id }, demo);
        assert.match(p.mac_address, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
        err(await call('POST', '/v2.0/ports', { port: { network_id: n.id, mac_address: p.mac_address } }), 409, 'MacAddressInUse');
        err(await call('POST', '/v2.0/ports', { port: { network_id: n.id, mac_address: 'zz:16:3e:00:00:01' } }), 400);
        const q = await port({ network_id: n.id, mac_address: 'FA:16:3E:AA:BB:CC' });
        assert.equal(q.mac_address, 'fa:16:3e:aa:bb:cc');
      });
      it('starts DOWN and unbound; binding attributes are admin-only', async () => {
        const p = await port({ network_id: n.id, name: 'vm1' }, demo);
        assert.equal(p.status, 'DOWN');
        assert.ok(!('binding:vif_type' in p), 'hidden from members');
        const a = (await call('GET', `/v2.0/ports/${p.id}`)).body.port;
        assert.equal(a['binding:vif_type'], 'unbound');
        assert.equal(a['binding:host_id'], '');
        assert.equal(a['binding:vnic_type'], 'normal');
        err(await call('PUT', `/v2.0/ports/${p.id}`, { port: { 'binding:host_id': 'compute1' } }, demo), 403, 'PolicyNotAuthorized');
        const bound = await call('PUT', `/v2.0/ports/${p.id}`, { port: { 'binding:host_id': 'compute1' } });
        assert.equal(bound.body.port['binding:host_id'], 'compute1');
        assert.equal(bound.body.port['binding:vif_type'], 'binding_failed', 'no OVS agent serves compute1');
      });
      it('wires the status transitions agents will report', async () => {
        const p = await port({ network_id: n.id }, demo);
        await srv.plugin.ports.setStatus(p.id, 'ACTIVE');
        const a = (await call('GET', `/v2.0/ports/${p.id}`, undefined, demo)).body.port;
        assert.equal(a.status, 'ACTIVE');
        assert.equal(a.revision_number, p.revision_number + 1);
        await srv.plugin.ports.setStatus(p.id, 'DOWN');
        assert.equal((await call('GET', `/v2.0/ports/${p.id}`)).body.port.status, 'DOWN');
        await assert.rejects(srv.plugin.ports.setStatus('00000000-0000-0000-0000-000000000000', 'ACTIVE'), /could not be found/);
      });
      it("gives the project's default group, except to network:* ports", async () => {
        const p = await port({ network_id: n.id }, demo);
        const groups = (await call('GET', '/v2.0/security-groups?name=default', undefined, demo)).body.security_groups;
        assert.equal(groups.length, 1);
        assert.deepEqual(p.security_groups, [groups[0].id]);
        const r = await port({ network_id: n.id, device_owner: 'network:router_interface', tenant_id: 'demo' });
        assert.deepEqual(r.security_groups, []);
      });
      it('enforces port security rules', async () => {
        const p = await port({ network_id: n.id }, demo);
        err(await call('PUT', `/v2.0/ports/${p.id}`, { port: { port_security_enabled: false } }, demo), 409, 'PortSecurityPortHasSecurityGroup');
        const off = await call('PUT', `/v2.0/ports/${p.id}`, { port: { port_security_enabled: false, security_groups: [] } }, demo);
        assert.equal(off.status, 200, JSON.stringify(off.body));
        assert.equal(off.body.port.port_security_enabled, false);
        err(await call('PUT', `/v2.0/ports/${p.id}`, { port: { allowed_address_pairs: [{ ip_address: '10.0.0.9' }] } }, demo), 409, 'AddressPairAndPortSecurityRequired');
        const insecure = await net({ name: 'insecure', port_security_enabled: false });
        await subnet({ network_id: insecure.id, cidr: '172.17.0.0/24' });
        const q = await port({ network_id: insecure.id });
        assert.equal(q.port_security_enabled, false, "inherits the network's value");
        assert.deepEqual(q.security_groups, []);
        err(await call('POST', '/v2.0/ports', { port: { network_id: insecure.id, security_groups: [p.security_groups[0] ?? '00000000-0000-0000-0000-000000000000'] } }), 400);
      });
      it('lists every change of a port, although whole lists reuse serialised documents', async () => {
        const m = await net({ name: 'listed', tenant_id: 'demo' });
        const s = await subnet({ network_id: m.id, cidr: '172.18.0.0/24' }, demo);
        const p = await port({ network_id: m.id, name: 'before' }, demo);
        const dhcp = await port({ network_id: m.id, device_owner: 'network:dhcp', tenant_id: 'demo' });
        const find = async (as = admin, id = p.id) => (await call('GET', `/v2.0/ports?network_id=${m.id}`, undefined, as)).body.ports.find((x: any) => x.id === id);
        assert.equal((await find()).name, 'before');
        await call('PUT', `/v2.0/ports/${p.id}`, { port: { name: 'after' } }, demo);
        assert.equal((await find()).name, 'after');
        await srv.plugin.ports.setStatus(p.id, 'ACTIVE');
        assert.equal((await find()).status, 'ACTIVE');
        const member = await find(demo);
        assert.equal(member.name, 'after');
        assert.ok(!('binding:vif_type' in member), 'binding attributes stay hidden from members');
        assert.equal((await find())['binding:vif_type'], 'unbound', 'and shown to admins');
        assert.equal((await find(admin, dhcp.id)).fixed_ips.length, 1);
        await call('DELETE', `/v2.0/ports/${p.id}`, undefined, demo);
        assert.equal((await call('DELETE', `/v2.0/subnets/${s.id}`, undefined, demo)).status, 204);
        assert.deepEqual((await find(admin, dhcp.id)).fixed_ips, [], "the DHCP port's address went with the subnet");
        assert.equal(await find(), undefined);
      });

      it('keeps allowed address pairs', async () => {
        const p = await port({ network_id: n.id, allowed_address_pairs: [{ ip_address: '172.16.0.200' }, { ip_address: '10.10.0.0/24', mac_address: 'fa:16:3e:00:00:99' }] }, demo);
        assert.deepEqual(
          p.allowed_address_pairs.sort((a: any, b: any) => a.ip_address.localeCompare(b.ip_address)),
          [{ ip_address: '10.10.0.0/24', mac_address: 'fa:16:3e:00:00:99' }, { ip_address: '172.16.0.200', mac_address: p.mac_address }],
        );
        err(await call('POST', '/v2.0/ports', { port: { network_id: n.id, allowed_address_pairs: [{ ip_address: 'x' }] } }, demo), 400);
      });
    });

    describe('security groups', () => {
      const P = { project: 'sgproj' };
      let def: any, web: any;
      it("creates the project's default group with Neutron's default rules", async () => {
        const r = await call('GET', '/v2.0/security-groups', undefined, P);
        assert.equal(r.body.security_groups.length, 1);
        def = r.body.security_groups[0];
        assert.equal(def.name, 'default');
        const rules = def.security_group_rules.map((x: any) => `${x.direction}/${x.ethertype}/${x.remote_group_id === def.id ? 'self' : x.remote_group_id}`).sort();
        assert.deepEqual(rules, ['egress/IPv4/null', 'egress/IPv6/null', 'ingress/IPv4/self', 'ingress/IPv6/self']);
      });
      it('creates groups and validates rules as Neutron does', async () => {
        web = (await call('POST', '/v2.0/security-groups', { security_group: { name: 'web' } }, P)).body.security_group;
        assert.equal(web.security_group_rules.length, 2, 'egress defaults');
        const rule = (body: object) => call('POST', '/v2.0/security-group-rules', { security_group_rule: { security_group_id: web.id, direction: 'ingress', ...body } }, P);
        const ok = await rule({ protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '0.0.0.0/0' });
        assert.equal(ok.status, 201, JSON.stringify(ok.body));
        err(await rule({ protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '0.0.0.0/0' }), 409, 'SecurityGroupRuleExists');
        err(await rule({ protocol: '6', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '0.0.0.0/0' }), 409, 'SecurityGroupRuleExists');
        err(await rule({ protocol: 'tcp', port_range_min: 90, port_range_max: 80 }), 400, 'SecurityGroupInvalidPortRange');
        err(await rule({ protocol: 'tcp', port_range_min: 0, port_range_max: 80 }), 400, 'SecurityGroupInvalidPortValue');
        err(await rule({ port_range_min: 80, port_range_max: 80 }), 400, 'SecurityGroupProtocolRequiredWithPorts');
        err(await rule({ protocol: 'icmp', port_range_max: 0 }), 400, 'SecurityGroupMissingIcmpType');
        err(await rule({ protocol: 'icmp', port_range_min: 300 }), 400);
        err(await rule({ protocol: 'gre', port_range_min: 1, port_range_max: 2 }), 400, 'SecurityGroupInvalidProtocolForPortRange');
        err(await rule({ protocol: 'banana' }), 400, 'SecurityGroupRuleInvalidProtocol');
        err(await rule({ remote_ip_prefix: '2001:db8::/32' }), 400, 'SecurityGroupRuleParameterConflict');
        err(await rule({ ethertype: 'IPv4', protocol: 'icmpv6' }), 400);
        err(await rule({ remote_ip_prefix: '10.0.0.0/8', remote_group_id: def.id }), 400);
        err(await rule({ direction: 'sideways' }), 400);
        err(await rule({ remote_group_id: '00000000-0000-0000-0000-000000000000' }), 404, 'SecurityGroupNotFound');
        const icmp = await rule({ protocol: 'icmp', port_range_min: 8, port_range_max: 0 });
        assert.equal(icmp.status, 201);
        const host = await rule({ protocol: 'udp', remote_ip_prefix: '10.1.2.3/8' });
        assert.equal(host.body.security_group_rule.normalized_cidr, '10.0.0.0/8');
        err(await call('POST', '/v2.0/security-groups', { security_group: { name: 'default' } }, P), 409);
      });
      it('refuses to delete a group in use, or the default group by its project', async () => {
        const n = await net({ name: 'sgnet', tenant_id: 'sgproj' });
        const p = await port({ network_id: n.id, security_groups: [web.id] }, P);
        err(await call('DELETE', `/v2.0/security-groups/${web.id}`, undefined, P), 409, 'SecurityGroupInUse');
        err(await call('DELETE', `/v2.0/security-groups/${def.id}`, undefined, P), 409);
        assert.equal((await call('DELETE', `/v2.0/ports/${p.id}`, undefined, P)).status, 204);
        assert.equal((await call('DELETE', `/v2.0/security-groups/${web.id}`, undefined, P)).status, 204);
        err(await call('GET', `/v2.0/security-groups/${web.id}`, undefined, P), 404);
        err(await call('GET', `/v2.0/security-groups/${def.id}`, undefined, demo), 404, 'SecurityGroupNotFound');
      });
    });

    describe('the API mechanics', () => {
      before(async () => {
        for (const k of [3, 1, 2, 5, 4]) await net({ name: `page-${k}`, tenant_id: 'pager', admin_state_up: k % 2 === 0 });
      });
      const P = { project: 'pager' };
      it('returns only the requested fields', async () => {
        const r = await call('GET', '/v2.0/networks?fields=id&fields=name', undefined, P);
        for (const n of r.body.networks) assert.deepEqual(Object.keys(n).sort(), ['id', 'name']);
        const one = await call('GET', `/v2.0/networks/${r.body.networks[0].id}?fields=status`, undefined, P);
        assert.deepEqual(Object.keys(one.body.network), ['status']);
      });
      it('filters, a repeated filter meaning OR, booleans converted', async () => {
        const r = await call('GET', '/v2.0/networks?name=page-1&name=page-4', undefined, P);
        assert.deepEqual(r.body.networks.map((n: any) => n.name).sort(), ['page-1', 'page-4']);
        const up = await call('GET', '/v2.0/networks?admin_state_up=True&tenant_id=pager', undefined, P);
        assert.deepEqual(up.body.networks.map((n: any) => n.name).sort(), ['page-2', 'page-4']);
        err(await call('GET', '/v2.0/networks?colour=red', undefined, P), 400);
        err(await call('GET', '/v2.0/networks?admin_state_up=maybe', undefined, P), 400);
      });
      it('sorts by keys and directions', async () => {
        const r = await call('GET', '/v2.0/networks?sort_key=name&sort_dir=desc&project_id=pager', undefined, P);
        assert.deepEqual(r.body.networks.map((n: any) => n.name), ['page-5', 'page-4', 'page-3', 'page-2', 'page-1']);
        err(await call('GET', '/v2.0/networks?sort_key=colour', undefined, P), 400);
        err(await call('GET', '/v2.0/networks?sort_key=name&sort_dir=sideways', undefined, P), 400);
      });
      it('pages with limit and marker, with next and previous links', async () => {
        const seen: string[] = [];
        let path = '/v2.0/networks?sort_key=name&sort_dir=asc&limit=2&project_id=pager';
        let pages = 0;
        for (;;) {
          const r = await call('GET', path, undefined, P);
          assert.equal(r.status, 200);
          pages++;
          seen.push(...r.body.networks.map((n: any) => n.name));
          const next = r.body.networks_links.find((l: any) => l.rel === 'next');
          if (pages > 1) assert.ok(r.body.networks_links.find((l: any) => l.rel === 'previous'));
          if (!next) break;
          path = next.href.slice(new URL(next.href).origin.length);
        }
        assert.deepEqual(seen, ['page-1', 'page-2', 'page-3', 'page-4', 'page-5']);
        assert.equal(pages, 3);
        const r = await call('GET', '/v2.0/networks?sort_key=name&limit=2&project_id=pager', undefined, P);
        const back = await call('GET', `/v2.0/networks?sort_key=name&limit=2&project_id=pager&marker=${r.body.networks[1].id}&page_reverse=True`, undefined, P);
        assert.deepEqual(back.body.networks.map((n: any) => n.name), ['page-1']);
        err(await call('GET', '/v2.0/networks?limit=-1', undefined, P), 400);
      });
      it('creates in bulk, all or nothing', async () => {
        const ok = await call('POST', '/v2.0/networks', { networks: [{ name: 'bulk-a' }, { name: 'bulk-b' }] }, P);
        assert.equal(ok.status, 201);
        assert.deepEqual(ok.body.networks.map((n: any) => n.name), ['bulk-a', 'bulk-b']);
        const bad = await call('POST', '/v2.0/networks', { networks: [{ name: 'bulk-c' }, { name: 'bulk-d', admin_state_up: 'perhaps' }] }, P);
        err(bad, 400);
        const ports = await call('POST', '/v2.0/subnets', { subnets: [{ network_id: ok.body.networks[0].id, ip_version: 4, cidr: '10.40.0.0/24' }, { network_id: ok.body.networks[0].id, ip_version: 4, cidr: '10.40.0.0/25' }] }, P);
        err(ports, 400, 'InvalidInput');
        const names = (await call('GET', '/v2.0/networks?name=bulk-c', undefined, P)).body.networks;
        assert.equal(names.length, 0, 'nothing of a failed bulk request remains');
        assert.equal((await call('GET', `/v2.0/subnets?network_id=${ok.body.networks[0].id}`, undefined, P)).body.subnets.length, 0);
      });
      it('answers bad requests with 400 in Neutron format, never 500', async () => {
        err(await call('POST', '/v2.0/networks', '{"network": {', P), 400);
        err(await call('POST', '/v2.0/networks', '[1,2]', P), 400);
        err(await call('POST', '/v2.0/networks', { net: {} }, P), 400);
        err(await call('POST', '/v2.0/networks', { network: 'x' }, P), 400);
        err(await call('POST', '/v2.0/networks', { network: { colour: 'red' } }, P), 400);
        err(await call('POST', '/v2.0/networks', { network: { name: 42 } }, P), 400);
        err(await call('POST', '/v2.0/networks', { network: { name: 'x'.repeat(256) } }, P), 400);
        err(await call('POST', '/v2.0/networks', { network: { status: 'DOWN' } }, P), 400);
        err(await call('POST', '/v2.0/networks', { network: { mtu: 9000 } }, P), 400);
        err(await call('POST', '/v2.0/subnets', { subnet: { ip_version: 4, cidr: '10.0.0.0/24' } }, P), 400);
        err(await call('POST', '/v2.0/ports', { port: { network_id: 'not-a-uuid' } }, P), 400);
        err(await call('GET', '/v2.0/networks/00000000-0000-0000-0000-000000000000', undefined, P), 404, 'NetworkNotFound');
        err(await call('GET', '/v2.0/ports/nope', undefined, P), 404, 'PortNotFound');
        err(await call('GET', '/v2.0/routers-of-doom', undefined, P), 404);
        const big = { network: { name: 'x', description: 'y'.repeat(200_000) } };
        err(await call('POST', '/v2.0/networks', big, P), 413);
      });
      it('refuses read-only attributes on update and bumps revision_number', async () => {
        const n = await net({ name: 'rev', tenant_id: 'pager' });
        assert.equal(n.revision_number, 0);
        assert.match(n.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        err(await call('PUT', `/v2.0/networks/${n.id}`, { network: { status: 'DOWN' } }, P), 400);
        err(await call('PUT', `/v2.0/networks/${n.id}`, { network: { id: 'x' } }, P), 400);
        const u = await call('PUT', `/v2.0/networks/${n.id}`, { network: { name: 'rev2', description: 'd' } }, P);
        assert.equal(u.body.network.revision_number, 1);
        assert.equal(u.body.network.description, 'd');
      });
      it("refuses a member's resource for another project, allows an admin's", async () => {
        err(await call('POST', '/v2.0/networks', { network: { tenant_id: 'someone-else' } }, P), 400);
        err(await call('POST', '/v2.0/networks', { network: { tenant_id: 'a', project_id: 'b' } }), 400);
        const n = await net({ project_id: 'someone-else' });
        assert.equal(n.tenant_id, 'someone-else');
      });
      it('keeps its state across a restart', async () => {
        const n = await net({ name: 'survivor' });
        srv = await srv.restart();
        call = client(srv.url);
        const r = await call('GET', `/v2.0/networks/${n.id}`);
        assert.equal(r.body.network.name, 'survivor');
        const again = await net({ name: 'after-restart', 'provider:network_type': 'vxlan' });
        assert.notEqual(again['provider:segmentation_id'], n['provider:segmentation_id']);
      });
    });
  });
}
