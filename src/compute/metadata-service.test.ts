// The compute metadata service trusts an instance id only with the right signature, and
// serves the instance's EC2 tree and meta_data.json.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetadataService, type MetadataInstance } from './metadata-service.js';
import { signInstanceId, verifyInstanceSignature } from '../agents/metadata/signature.js';

const SECRET = 'lab-metadata-secret';
const VM: MetadataInstance = { id: '5f0c0c3e-1111-4222-8333-444455556666', name: 'demo-instance1', project_id: 'demo', host: 'compute1', fixed_ip: '192.168.1.11', floating_ip: '203.0.113.102', security_groups: ['default', 'web'] };
const service = new MetadataService({ secret: SECRET, instances: { instance: (id) => (id === VM.id ? VM : undefined) } });
const signed = (path: string, over: Record<string, string | undefined> = {}) => {
  const headers: Record<string, string> = {};
  const all = { 'X-Forwarded-For': VM.fixed_ip, 'X-Instance-ID': VM.id, 'X-Tenant-ID': VM.project_id, 'X-Instance-ID-Signature': signInstanceId(SECRET, VM.id), ...over };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) headers[k] = v;
  return service.handle({ method: 'GET', path, headers });
};

test('the signature is the hex HMAC-SHA256 of the instance id under the shared secret', () => {
  // Python: hmac.new(b'lab-metadata-secret', b'5f0c...', hashlib.sha256).hexdigest()
  assert.equal(signInstanceId(SECRET, VM.id), 'a06c02e930b274a9a0d1fcd006c6b865fff348aa1aee5b6a6cce3bcf0b11efb7');
  assert.equal(signInstanceId('s', 'i'), '039eccdc05c37ddf27d88efacce251eafdc7ad504881fa42209f446e71533ed1');
  assert.ok(verifyInstanceSignature(SECRET, VM.id, signInstanceId(SECRET, VM.id)));
  assert.ok(!verifyInstanceSignature(SECRET, VM.id, signInstanceId('other-secret', VM.id)));
  assert.ok(!verifyInstanceSignature(SECRET, VM.id, signInstanceId(SECRET, VM.id).toUpperCase()));
  assert.ok(!verifyInstanceSignature(SECRET, VM.id, undefined));
});

test('a good signature gets the metadata; a bad or missing one gets 403', () => {
  const ok = signed('/latest/meta-data/instance-id');
  assert.deepEqual([ok.status, ok.body], [200, VM.id]);
  const bad = signed('/latest/meta-data/instance-id', { 'X-Instance-ID-Signature': signInstanceId('wrong', VM.id) });
  assert.equal(bad.status, 403);
  assert.ok(!bad.body.includes(VM.fixed_ip));
  assert.equal(signed('/latest/meta-data/instance-id', { 'X-Instance-ID-Signature': undefined }).status, 403);
  // A signature for another instance id does not carry over.
  const other = 'aaaaaaaa-1111-4222-8333-444455556666';
  assert.equal(signed('/latest/meta-data/instance-id', { 'X-Instance-ID': other }).status, 403);
  assert.equal(signed('/latest/meta-data/instance-id', { 'X-Instance-ID': other, 'X-Instance-ID-Signature': signInstanceId(SECRET, other) }).status, 404);
  assert.equal(signed('/latest/meta-data/instance-id', { 'X-Instance-ID': undefined }).status, 400);
  assert.equal(signed('/latest/meta-data/instance-id', { 'X-Tenant-ID': 'someone-else' }).status, 404, 'project mismatch');
  // Header names are case-insensitive.
  const lower = service.handle({ method: 'GET', path: '/latest/meta-data/local-ipv4', headers: { 'x-instance-id': VM.id, 'x-tenant-id': 'demo', 'x-instance-id-signature': signInstanceId(SECRET, VM.id) } });
  assert.deepEqual([lower.status, lower.body], [200, '192.168.1.11']);
});

test('EC2 tree and meta_data.json', () => {
  assert.equal(signed('/latest/meta-data/').body, ['hostname', 'instance-id', 'local-hostname', 'local-ipv4', 'placement/', 'public-hostname', 'public-ipv4', 'security-groups'].join('\n'));
  assert.equal(signed('/latest/meta-data/hostname').body, 'demo-instance1.novalocal');
  assert.equal(signed('/2009-04-04/meta-data/public-ipv4').body, '203.0.113.102');
  assert.equal(signed('/latest/meta-data/security-groups').body, 'default\nweb');
  assert.equal(signed('/latest/meta-data/placement/availability-zone').body, 'nova');
  assert.equal(signed('/latest/meta-data/nothing').status, 404);
  assert.equal(signed('/latest/meta-data/instance-id/deeper').status, 404);
  const j = signed('/openstack/latest/meta_data.json');
  assert.equal(j.headers['Content-Type'], 'application/json');
  const md = JSON.parse(j.body);
  assert.deepEqual([md.uuid, md.name, md.hostname, md.project_id, md.availability_zone], [VM.id, 'demo-instance1', 'demo-instance1.novalocal', 'demo', 'nova']);
  assert.equal(signed('/').body.split('\n').at(-1), 'latest');
  assert.equal(service.handle({ method: 'POST', path: '/latest/meta-data/', headers: {} }).status, 405);
});

test('served over HTTP', async () => {
  const s = await service.listen({ port: 0 });
  try {
    const r = await fetch(`${s.url}/latest/meta-data/instance-id`, { headers: { 'X-Instance-ID': VM.id, 'X-Tenant-ID': 'demo', 'X-Instance-ID-Signature': signInstanceId(SECRET, VM.id) } });
    assert.deepEqual([r.status, await r.text()], [200, VM.id]);
    const f = await fetch(`${s.url}/latest/meta-data/instance-id`, { headers: { 'X-Instance-ID': VM.id, 'X-Tenant-ID': 'demo' } });
    assert.equal(f.status, 403);
  } finally {
    await s.close();
  }
});
