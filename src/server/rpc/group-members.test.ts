// A security group's members and their hosts kept port by port: after every kind of port
// change (new port, new address, a pair naming another member's address, a binding, a move,
// leaving the group, deletion) the kept answer is what reading the group whole gives, and the
// group is not read whole again.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KyselyPlugin } from 'kysely';
import { client, startTestServer } from '../../api/testing.js';
import { GroupHosts, GroupMembers } from './group-members.js';

/** A test server with one network and subnet, its API, and a plugin that counts whole reads (selects with a join). */
async function lab() {
  const srv = await startTestServer('sqlite');
  const call = client(srv.url);
  const ok = async (p: Promise<{ status: number; body: any }>) => {
    const r = await p;
    assert.ok(r.status < 300, JSON.stringify(r.body));
    return r.body;
  };
  const net = (await ok(call('POST', '/v2.0/networks', { network: { name: 'n' } }))).network;
  const subnet = (await ok(call('POST', '/v2.0/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.0.0.0/24', tenant_id: net.tenant_id } }))).subnet;
  const joins = { n: 0 };
  const counting: KyselyPlugin = {
    transformQuery: ({ node }) => ((node.kind === 'SelectQueryNode' && node.joins?.length && joins.n++), node),
    transformResult: async ({ result }) => result,
  };
  return { srv, call, ok, net, subnet, joins, db: () => srv.plugin.db.kysely.withPlugin(counting), plain: () => srv.plugin.db.kysely };
}

test('group members: kept port by port, equal to a whole read after each kind of change', async () => {
  const { srv, call, ok, net, subnet, joins, db, plain } = await lab();
  try {
    const port = async (ip: string) =>
      (await ok(call('POST', '/v2.0/ports', { port: { network_id: net.id, tenant_id: net.tenant_id, fixed_ips: [{ subnet_id: subnet.id, ip_address: ip }] } }))).port;
    const a = await port('10.0.0.9');
    const sg = a.security_groups[0];

    // Whole reads counted: a select with a join (a port's own rows need none).
    const kept = new GroupMembers(db, true);
    const whole = () => new GroupMembers(plain, false).memberIps(sg);
    const check = async (what: string) => assert.deepEqual(await kept.memberIps(sg), await whole(), what);

    await check('read whole');
    assert.equal(joins.n, 2);
    const b = await port('10.0.0.10');
    kept.portChanged(b.id);
    await check('a new port');
    assert.deepEqual((await kept.memberIps(sg)).IPv4, ['10.0.0.9', '10.0.0.10'], 'in ipset order');
    await ok(call('PUT', `/v2.0/ports/${b.id}`, { port: { fixed_ips: [{ subnet_id: subnet.id, ip_address: '10.0.0.11' }] } }));
    kept.portChanged(b.id);
    await check('a new address');
    await ok(call('PUT', `/v2.0/ports/${b.id}`, { port: { allowed_address_pairs: [{ ip_address: '10.0.0.9' }, { ip_address: '10.0.1.0/24' }, { ip_address: 'fd00::11' }] } }));
    kept.portChanged(b.id);
    await check('pairs, one of them another member\'s address, one IPv6');
    assert.deepEqual((await kept.memberIps(sg)).IPv6, ['fd00::11']);
    await ok(call('DELETE', `/v2.0/ports/${a.id}`));
    kept.portChanged(a.id);
    await check('the address stays while a pair still holds it');
    assert.ok((await kept.memberIps(sg)).IPv4.includes('10.0.0.9'));
    await ok(call('PUT', `/v2.0/ports/${b.id}`, { port: { security_groups: [] , allowed_address_pairs: [] } }));
    await ok(call('PUT', `/v2.0/ports/${b.id}`, { port: { security_groups: [sg] } }));
    await ok(call('PUT', `/v2.0/ports/${b.id}`, { port: { security_groups: [] } }));
    kept.portChanged(b.id);
    kept.portChanged(b.id);
    await check('out of the group (several changes, one catch-up)');
    assert.deepEqual(await kept.memberIps(sg), { IPv4: [], IPv6: [] });
    const c = await port('10.0.0.200');
    kept.portChanged(c.id);
    await ok(call('DELETE', `/v2.0/ports/${c.id}`));
    kept.portChanged(c.id);
    await check('a port that came and went between two questions');
    // A question waits for the ports changed before it, not for those that keep changing after.
    kept.portChanged(b.id);
    let answered = false;
    const asked = kept.memberIps(sg).then(() => (answered = true));
    for (let i = 0; i < 200 && !answered; i++) {
      kept.portChanged(b.id);
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(answered, 'answered while ports kept changing');
    await asked;
    assert.equal(joins.n, 2, 'the group was never read whole again');
    // What the caller gets is its own copy.
    (await kept.memberIps(sg)).IPv4.push('10.9.9.9');
    await check('a caller changing its answer changes nothing kept');
    kept.clear();
    await check('cleared: read whole again');
    assert.equal(joins.n, 4);
  } finally {
    await srv.destroy();
  }
});

test('group hosts: kept port by port, equal to a whole read after bindings, moves and leaving', async () => {
  const { srv, call, ok, net, joins, db, plain } = await lab();
  try {
    const port = async (host: string) => (await ok(call('POST', '/v2.0/ports', { port: { network_id: net.id, tenant_id: net.tenant_id, 'binding:host_id': host } }))).port;
    const a = await port('compute1');
    const sg = a.security_groups[0];
    const kept = new GroupHosts(db, true);
    const whole = async () => (await new GroupHosts(plain, false).hostsFor([sg])).sort();
    const check = async (what: string) => assert.deepEqual((await kept.hostsFor([sg])).sort(), await whole(), what);

    await check('read whole');
    assert.deepEqual(await kept.hostsFor([sg]), ['compute1']);
    const b = await port('');
    kept.portChanged(b.id);
    await check('an unbound port is on no host');
    await ok(call('PUT', `/v2.0/ports/${b.id}`, { port: { 'binding:host_id': 'compute2' } }));
    kept.portChanged(b.id);
    await check('bound');
    await ok(call('PUT', `/v2.0/ports/${a.id}`, { port: { 'binding:host_id': 'compute2' } }));
    kept.portChanged(a.id);
    await check('moved: compute1 has none left');
    assert.deepEqual(await kept.hostsFor([sg]), ['compute2']);
    await ok(call('PUT', `/v2.0/ports/${b.id}`, { port: { security_groups: [] } }));
    kept.portChanged(b.id);
    await check('one of two ports on a host leaves the group: the host stays');
    await ok(call('DELETE', `/v2.0/ports/${a.id}`));
    kept.portChanged(a.id);
    await check('the last one goes');
    assert.deepEqual(await kept.hostsFor([sg]), []);
    assert.equal(joins.n, 1, 'read whole once');
  } finally {
    await srv.destroy();
  }
});
