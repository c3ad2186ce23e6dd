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

test("boolean options (neutronclient's add_boolean_argument) and argparse REMAINDER after N positionals", () => {
  const opts: OptionSpec[] = [{ flags: ['--distributed'], attr: 'distributed', kind: 'bool', help: '' }];
  assert.equal(parseArgs(['r', '--distributed', 'False'], opts).options.get('--distributed'), false);
  assert.equal(parseArgs(['r', '--distributed=true'], opts).options.get('--distributed'), true);
  assert.throws(() => parseArgs(['r', '--distributed', 'yes'], opts), /argument --distributed: invalid choice: 'yes' \(choose from 'True', 'False'\)/);
  // `exec VM ping -c 4 X`: -c is ping's, not the output column option
  const p = parseArgs(['--os-username', 'demo', 'vm1', 'ping', '-c', '4', '10.0.0.1'], [], { remainderAfter: 1 });
  assert.deepEqual(p.positionals, ['vm1', 'ping', '-c', '4', '10.0.0.1']);
  assert.deepEqual(p.format.columns, []);
  assert.equal(p.global['--os-username'], 'demo');
});
