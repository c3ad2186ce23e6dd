import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipsets, IpsetError } from './ipset.js';

test('hash:net membership by prefix, as Neutron fills NIPv4<sg> sets', () => {
  const s = new Ipsets();
  s.restore('create NIPv4sg1 hash:net family inet hashsize 1024 maxelem 65536\nadd NIPv4sg1 10.0.0.5\nadd NIPv4sg1 192.168.0.0/16\n');
  assert.equal(s.has('NIPv4sg1', '10.0.0.5'), true);
  assert.equal(s.has('NIPv4sg1', '10.0.0.6'), false);
  assert.equal(s.has('NIPv4sg1', '192.168.77.1'), true);
  assert.equal(s.has('NIPv4sg1', '192.169.0.1'), false);
});

test('hash:ip holds addresses; a network is expanded into them', () => {
  const s = new Ipsets();
  s.restore('create ips hash:ip\nadd ips 10.1.1.1\nadd ips 10.2.0.0/30');
  assert.equal(s.has('ips', '10.1.1.1'), true);
  assert.equal(s.has('ips', '10.2.0.3'), true);
  assert.equal(s.has('ips', '10.2.0.4'), false);
  assert.equal(s.get('ips')!.size, 5);
});

test('swap exchanges contents behind the names (Neutron refresh through a -n set)', () => {
  const s = new Ipsets();
  s.restore('create NIPv4sg hash:net family inet\nadd NIPv4sg 10.0.0.5');
  const bound = s.get('NIPv4sg')!; // what a rule holds
  s.restore('create NIPv4sg-n hash:net family inet\nadd NIPv4sg-n 10.0.0.9\nswap NIPv4sg-n NIPv4sg\ndestroy NIPv4sg-n');
  assert.equal(bound.has('10.0.0.9'), true);
  assert.equal(bound.has('10.0.0.5'), false);
  assert.deepEqual(s.names(), ['NIPv4sg']);
});

test('del, flush and destroy', () => {
  const s = new Ipsets();
  s.restore('create a hash:net\nadd a 10.0.0.0/24\nadd a 10.0.1.1\ndel a 10.0.0.0/24');
  assert.equal(s.has('a', '10.0.0.1'), false);
  assert.equal(s.has('a', '10.0.1.1'), true);
  s.restore('flush a');
  assert.equal(s.has('a', '10.0.1.1'), false);
  s.restore('destroy a');
  assert.throws(() => s.has('a', '10.0.1.1'), /does not exist: a/);
});

test('-exist makes repeated create/add/del idempotent; without it they fail quoting the line', () => {
  const s = new Ipsets();
  s.restore('create a hash:net\nadd a 10.0.0.1');
  s.restore('create a hash:net\nadd a 10.0.0.1\ndel a 10.9.9.9', { exist: true });
  s.restore('add -exist a 10.0.0.1');
  assert.throws(
    () => s.restore('add a 10.0.0.2\nadd a 10.0.0.1'),
    (e: unknown) => e instanceof IpsetError && e.line === 2 && /^ipset restore: line 2: .*already added.*: add a 10\.0\.0\.1$/.test(e.message),
  );
  // ipset restore is not atomic: the first line stayed.
  assert.equal(s.has('a', '10.0.0.2'), true);
  assert.throws(() => s.restore('create a hash:net'), /already exists/);
  assert.throws(() => s.restore('del a 10.7.7.7'), /not added/);
});

test('update deletes then adds members as del/add lines would, and fails as they do', () => {
  const s = new Ipsets();
  s.restore('create a hash:net\nadd a 10.0.0.1\nadd a 10.0.0.2');
  s.update('a', ['10.0.0.1'], ['10.0.0.3', '10.1.0.0/16']);
  assert.deepEqual(s.get('a')!.members(), ['10.0.0.2', '10.0.0.3', '10.1.0.0/16']);
  assert.throws(() => s.update('a', ['10.7.7.7'], []), /not added/);
  assert.throws(() => s.update('a', [], ['10.0.0.2']), /already added/);
  assert.throws(() => s.update('b', [], ['10.0.0.2']), /does not exist: b/);
});

test('IPv6 sets', () => {
  const s = new Ipsets();
  s.restore('create NIPv6sg hash:net family inet6\nadd NIPv6sg fd00::5\nadd NIPv6sg 2001:db8::/32');
  assert.equal(s.has('NIPv6sg', 'fd00::5'), true);
  assert.equal(s.has('NIPv6sg', '2001:db8:1::1'), true);
  assert.equal(s.has('NIPv6sg', '10.0.0.5'), false);
  assert.match(s.save(), /add NIPv6sg 2001:db8::\/32\nadd NIPv6sg fd00::5/);
});

test('save lists sets as ipset save does, and restores back', () => {
  const s = new Ipsets();
  s.restore('create b hash:ip\nadd b 10.0.0.2\nadd b 10.0.0.1\ncreate a hash:net maxelem 10\nadd a 10.0.0.0/8');
  const text = s.save();
  assert.equal(
    text,
    'create a hash:net family inet hashsize 1024 maxelem 10\nadd a 10.0.0.0/8\ncreate b hash:ip family inet hashsize 1024 maxelem 65536\nadd b 10.0.0.1\nadd b 10.0.0.2\n',
  );
  const t = new Ipsets();
  t.restore(text);
  assert.equal(t.save(), text);
});

test('unsupported or invalid ipset input is an error naming it', () => {
  const s = new Ipsets();
  const cases: [string, RegExp][] = [
    ['create x hash:ip,port', /unsupported set type "hash:ip,port"/],
    ['create x hash:net timeout 60', /unsupported create option "timeout"/],
    ['create x hash:net family inet7', /unsupported family "inet7"/],
    ['create x hash:net\nadd x 10.0.0.0/0', /\/0 network/],
    ['create y hash:net\nadd y 10.0.0.1-10.0.0.9', /unsupported address range/],
    ['create z hash:net\nadd z 10.0.0.1 nomatch', /unsupported entry option "nomatch"/],
    ['create w hash:net\nadd w 300.1.1.1', /invalid inet entry "300\.1\.1\.1"/],
    ['list', /unsupported command "list"/],
    ['add nosuch 10.0.0.1', /does not exist: nosuch/],
    ['create v hash:net -quiet', /unsupported option "-quiet"/],
    ['create m hash:ip maxelem 2\nadd m 10.0.0.0/24', /expands beyond maxelem/],
    ['create q hash:net family inet6\ncreate r hash:net\nswap q r', /type does not match/],
  ];
  for (const [text, re] of cases) assert.throws(() => s.restore(text), re, text);
});

test('a set referenced by a rule cannot be destroyed', () => {
  const s = new Ipsets();
  s.inUse = (n) => n === 'used';
  s.restore('create used hash:net\ncreate free hash:net');
  assert.throws(() => s.restore('destroy used'), /in use by a kernel component: used/);
  s.restore('destroy free');
  assert.deepEqual(s.names(), ['used']);
});
