// The network API behind keystone tokens (auth_strategy = keystone): what keystonemiddleware
// answers in front of a real Neutron for missing, bad, revoked and expired tokens, and
// Neutron's default policy for the scenario's admin and demo users (steps 2-5).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { httpTokenValidator, keystoneAuth } from './auth.js';
import { startApiServer } from './serve.js';
import { login, postgresUrl, startKeystoneTestServer, tokenClient, type DbKind, type KeystoneTestServer } from './testing.js';

const UNAUTHORIZED = { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } };

for (const kind of ['sqlite', 'postgres'] as DbKind[])
describe(`network API with keystone tokens (${kind})`, { skip: kind === 'postgres' && !postgresUrl() ? 'DVRNET_TEST_POSTGRES is not set' : undefined }, () => {
  let s: KeystoneTestServer;
  let admin: ReturnType<typeof tokenClient>;
  let demo: ReturnType<typeof tokenClient>;
  let demoProject: string;
  before(async () => {
    s = await startKeystoneTestServer(kind);
    admin = tokenClient(s.url, (await login(s.authUrl, 'admin', s.passwords.admin)).token);
    const d = await login(s.authUrl, 'demo', s.passwords.demo);
    demo = tokenClient(s.url, d.token);
    demoProject = d.body.token.project.id;
  });
  after(async () => s?.destroy());

  it('refuses requests without a token or with an unknown one, as keystonemiddleware does', async () => {
    for (const token of [undefined, 'not-a-token', '']) {
      const r = await tokenClient(s.url, token)('GET', '/v2.0/networks');
      assert.equal(r.status, 401, String(token));
      assert.deepEqual(r.body, UNAUTHORIZED);
      assert.equal(r.headers.get('www-authenticate'), `Keystone uri="${s.identityUrl}"`);
    }
  });

  it('serves version discovery without a token, as Neutron does', async () => {
    const r = await tokenClient(s.url, undefined)('GET', '/');
    assert.equal(r.status, 200);
    assert.equal(r.body.versions[0].id, 'v2.0');
  });

  it('refuses a revoked token at once and an expired one', async () => {
    const { token } = await login(s.authUrl, 'demo', s.passwords.demo);
    const c = tokenClient(s.url, token);
    assert.equal((await c('GET', '/v2.0/networks')).status, 200);
    const del = await tokenClient(s.identityUrl, token)('DELETE', '/v3/auth/tokens', undefined, { 'x-subject-token': token });
    assert.equal(del.status, 204);
    const r = await c('GET', '/v2.0/networks');
    assert.equal(r.status, 401);
    assert.deepEqual(r.body, UNAUTHORIZED);

    const { token: t2 } = await login(s.authUrl, 'demo', s.passwords.demo);
    const c2 = tokenClient(s.url, t2);
    assert.equal((await c2('GET', '/v2.0/networks')).status, 200);
    s.advance(3601_000);
    try {
      assert.deepEqual((await c2('GET', '/v2.0/networks')).body, UNAUTHORIZED);
    } finally {
      s.advance(-3601_000);
    }
  });

  it("runs the scenario's steps 2-5, each as the right user", async () => {
    // 2. admin: the external flat network
    const ext = await admin('POST', '/v2.0/networks', { network: { name: 'ext-net', 'router:external': true, 'provider:physical_network': 'external', 'provider:network_type': 'flat' } });
    assert.equal(ext.status, 201, JSON.stringify(ext.body));
    assert.equal(ext.body.network.status, 'ACTIVE');
    assert.equal(ext.body.network['provider:segmentation_id'], null);
    const adminProject = ext.body.network.project_id;
    assert.notEqual(adminProject, demoProject);
    // 3. admin: its subnet
    const extSub = await admin('POST', '/v2.0/subnets', {
      subnet: { network_id: ext.body.network.id, cidr: '203.0.113.0/24', ip_version: 4, allocation_pools: [{ start: '203.0.113.101', end: '203.0.113.200' }], enable_dhcp: false, gateway_ip: '203.0.113.1' },
    });
    assert.equal(extSub.status, 201);
    // 4. admin: demo-net for the demo project, with a type only an admin may choose
    const dn = await admin('POST', '/v2.0/networks', { network: { name: 'demo-net', tenant_id: demoProject, 'provider:network_type': 'vxlan' } });
    assert.equal(dn.status, 201);
    assert.equal(dn.body.network.project_id, demoProject);
    assert.equal(dn.body.network['provider:segmentation_id'], 1);
    // 5. demo: its subnet
    const ds = await demo('POST', '/v2.0/subnets', { subnet: { network_id: dn.body.network.id, name: 'demo-subnet', gateway_ip: '192.168.1.1', cidr: '192.168.1.0/24', ip_version: 4 } });
    assert.equal(ds.status, 201, JSON.stringify(ds.body));
    assert.deepEqual(ds.body.subnet.allocation_pools, [{ start: '192.168.1.2', end: '192.168.1.254' }]);
    assert.equal(ds.body.subnet.enable_dhcp, true);
    assert.equal(ds.body.subnet.project_id, demoProject);

    // demo sees its network and the external one, never the provider attributes
    const list = await demo('GET', '/v2.0/networks');
    assert.deepEqual(list.body.networks.map((n: any) => n.name).sort(), ['demo-net', 'ext-net']);
    for (const n of list.body.networks) assert.ok(!('provider:network_type' in n) && !('provider:segmentation_id' in n), n.name);
    const shown = await demo('GET', `/v2.0/networks/${dn.body.network.id}`);
    assert.equal(shown.body.network['provider:network_type'], undefined);
    // the admin still does
    assert.equal((await admin('GET', `/v2.0/networks/${dn.body.network.id}`)).body.network['provider:network_type'], 'vxlan');
  });

  it("hides another project's network from a member: 404 NetworkNotFound, absent from lists", async () => {
    const priv = await admin('POST', '/v2.0/networks', { network: { name: 'admin-private' } });
    const id = priv.body.network.id;
    const r = await demo('GET', `/v2.0/networks/${id}`);
    assert.equal(r.status, 404);
    assert.deepEqual(r.body, { NeutronError: { type: 'NetworkNotFound', message: `Network ${id} could not be found.`, detail: '' } });
    assert.equal((await demo('PUT', `/v2.0/networks/${id}`, { network: { name: 'mine' } })).status, 404);
    assert.equal((await demo('DELETE', `/v2.0/networks/${id}`)).status, 404);
    assert.ok(!(await demo('GET', '/v2.0/networks')).body.networks.some((n: any) => n.id === id));
    const port = await demo('POST', '/v2.0/ports', { port: { network_id: id } });
    assert.equal(port.status, 404);
  });

  it('refuses a member setting provider:network_type with 403 PolicyNotAuthorized', async () => {
    const r = await demo('POST', '/v2.0/networks', { network: { name: 'x', 'provider:network_type': 'vxlan' } });
    assert.equal(r.status, 403);
    assert.deepEqual(r.body, {
      NeutronError: { type: 'PolicyNotAuthorized', message: '(rule:create_network:provider:network_type) is disallowed by policy', detail: '' },
    });
  });

  it("refuses a member creating a network for another project (the scenario's --tenant-id is admin only)", async () => {
    const r = await demo('POST', '/v2.0/networks', { network: { name: 'x', tenant_id: 'someone-else' } });
    assert.equal(r.status, 400);
    assert.equal(r.body.NeutronError.type, 'HTTPBadRequest');
    assert.match(r.body.NeutronError.message, /requires admin privileges/);
  });

  it('validates over HTTP when identity runs elsewhere (same answers)', async () => {
    const remote = await startApiServer(s.conf, {
      host: '127.0.0.1',
      port: 0,
      auth: keystoneAuth(httpTokenValidator(s.authUrl, { ttlMs: 60_000 }), { identityUri: s.identityUrl }),
    });
    try {
      const { token } = await login(s.authUrl, 'demo', s.passwords.demo);
      const c = tokenClient(remote.url, token);
      const ok = await c('GET', '/v2.0/networks');
      assert.equal(ok.status, 200);
      assert.ok(ok.body.networks.some((n: any) => n.name === 'demo-net'));
      const bad = await tokenClient(remote.url, 'forged')('GET', '/v2.0/networks');
      assert.equal(bad.status, 401);
      assert.deepEqual(bad.body, UNAUTHORIZED);
      const pol = await c('POST', '/v2.0/networks', { network: { name: 'x', 'provider:network_type': 'vxlan' } });
      assert.equal(pol.status, 403);
    } finally {
      await remote.close();
    }
  });
});
