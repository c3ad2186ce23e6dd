import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgs, UsageError, type OptionSpec } from './args.js';

const OPTS: OptionSpec[] = [
  { flags: ['--name'], attr: 'name', kind: 'string', help: '' },
  { flags: ['--disable-dhcp'], attr: 'enable_dhcp', kind: 'flag', value: false, help: '' },
  { flags: ['--allocation-pool'], attr: 'allocation_pools', kind: 'kvmulti', help: '' },
  { flags: ['--port-range-min'], attr: 'port_range_min', kind: 'int', help: '' },
];

test("the scenario's lines: positionals, known options, value specs without a value are true", () => {
  const p = parseArgs(['ext-net', '--router:external', '--provider:physical_network', 'external', '--provider:network_type', 'flat'], OPTS);
  assert.deepEqual(p.positionals, ['ext-net']);
  assert.deepEqual(p.extras, { 'router:external': true, 'provider:physical_network': 'external', 'provider:network_type': 'flat' });
  const s = parseArgs(['ext-net', '203.0.113.0/24', '--allocation-pool', 'start=203.0.113.101,end=203.0.113.200', '--disable-dhcp', '--name=x'], OPTS);
  assert.deepEqual(s.positionals, ['ext-net', '203.0.113.0/24']);
  assert.deepEqual(s.options.get('--allocation-pool'), [{ start: '203.0.113.101', end: '203.0.113.200' }]);
  assert.equal(s.options.get('--disable-dhcp'), false);
  assert.equal(s.options.get('--name'), 'x');
});

test('global, output and typed value specs', () => {
  const p = parseArgs(['--os-token', 't', 'a', '-f', 'json', '-c', 'id', '-c', 'name', '--mtu', '1400', '--tags', 'list=true', 'x', 'y', '--binding:profile', 'type=dict', 'k=v'], OPTS);
  assert.deepEqual(p.global, { '--os-token': 't' });
  assert.deepEqual(p.format, { format: 'json', columns: ['id', 'name'], help: false });
  assert.deepEqual(p.positionals, ['a']);
  assert.deepEqual(p.extras, { mtu: 1400, tags: ['x', 'y'], 'binding:profile': { k: 'v' } });
});

test('errors quote the offending input', () => {
  assert.throws(() => parseArgs(['--port-range-min', 'ssh'], OPTS), (e: Error) => e instanceof UsageError && /invalid int value: 'ssh'/.test(e.message));
  assert.throws(() => parseArgs(['--allocation-pool', 'start'], OPTS), /expected key=value\[,key=value\.\.\.\], got 'start'/);
  assert.throws(() => parseArgs(['--name'], OPTS), /argument --name: expected one argument/);
  assert.throws(() => parseArgs(['-x'], OPTS), /unrecognized arguments: -x/);
});
