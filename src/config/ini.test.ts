import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { suiteDirs } from '../common/testing.js';
import { join } from 'node:path';
import { ConfigError } from './errors.js';
import { parseIni, readIni } from './ini.js';
import { parseBool, parseList } from './values.js';

const freshDir = suiteDirs('dvrnet-ini-');

function files(contents: Record<string, string>): (name: string) => string {
  const dir = freshDir();
  for (const [name, text] of Object.entries(contents)) writeFileSync(join(dir, name), text);
  return (name) => join(dir, name);
}

test('sections, comments, separators, trimming and quotes follow oslo.config', () => {
  const p = parseIni(
    [
      '# comment',
      '; also a comment',
      '[DEFAULT]',
      '  ',
      'a = 1',
      'b:2',
      'c =   spaced value   ',
      'd = "quoted"',
      "e = 'single'",
      'f = x # not a comment',
      'g = url=http://h:1/',
      'h =',
      '[ML2]',
      'type_drivers = flat',
    ].join('\n'),
    'x.ini',
  );
  const get = (s: string, k: string) => p.values.find((v) => v.section === s && v.option === k)?.value;
  assert.equal(get('DEFAULT', 'a'), '1');
  assert.equal(get('DEFAULT', 'b'), '2');
  assert.equal(get('DEFAULT', 'c'), 'spaced value');
  assert.equal(get('DEFAULT', 'd'), 'quoted');
  assert.equal(get('DEFAULT', 'e'), 'single');
  assert.equal(get('DEFAULT', 'f'), 'x # not a comment');
  assert.equal(get('DEFAULT', 'g'), 'url=http://h:1/');
  assert.equal(get('DEFAULT', 'h'), '');
  // Section names other than DEFAULT are case-insensitive.
  assert.equal(get('ml2', 'type_drivers'), 'flat');
  assert.equal(p.values.find((v) => v.option === 'c')?.line, 7);
});

test('indented lines continue a value; a blank line ends it', () => {
  const p = parseIni('[ml2]\ntype_drivers = flat,\n    vlan,\n\tvxlan\n\n[x]\n', 'x.ini');
  assert.equal(p.values[0].value, 'flat,\nvlan,\nvxlan');
  assert.deepEqual(parseList(p.values[0].value), ['flat', 'vlan', 'vxlan']);
});

test('syntax errors name the file and line', () => {
  const cases: Array<[string, RegExp]> = [
    ['a = 1\n', /x\.ini:1: section must be started before assignment: "a = 1"/],
    ['[DEFAULT]\njunk\n', /x\.ini:2: no ':' or '=' found in assignment: "junk"/],
    ['[DEFAULT\n', /x\.ini:1: invalid section \(must end with \]\)/],
    ['[]\n', /x\.ini:1: empty section name/],
    ['[DEFAULT]\n= v\n', /x\.ini:2: key cannot be empty/],
    ['[DEFAULT]\n  cont\n', /x\.ini:2: unexpected continuation line/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseIni(text, 'x.ini'), (e: unknown) => e instanceof ConfigError && re.test(e.message), text);
  }
});

test('later files override earlier ones option by option; a repeated key keeps the last', () => {
  const f = files({
    'a.conf': '[DEFAULT]\nx = 1\ny = 1\ny = 2\n[s]\nk = a\n',
    'b.conf': '[DEFAULT]\nx = 3\n[S]\nother = b\n',
  });
  const ini = readIni([f('a.conf'), f('b.conf')]);
  assert.equal(ini.get('DEFAULT', 'x')?.value, '3');
  assert.equal(ini.get('DEFAULT', 'x')?.file, f('b.conf'));
  assert.equal(ini.get('DEFAULT', 'y')?.value, '2');
  assert.equal(ini.get('s', 'k')?.value, 'a');
  assert.equal(ini.get('s', 'other')?.value, 'b');
  assert.deepEqual(ini.toRaw(), { DEFAULT: { x: '3', y: '2' }, s: { k: 'a', other: 'b' } });
});

test('a missing file stops startup, naming it', () => {
  assert.throws(() => readIni(['/nonexistent/neutron.conf']), /\/nonexistent\/neutron\.conf: cannot read config file \(ENOENT\)/);
});

test('booleans and lists as oslo.config reads them', () => {
  for (const t of ['true', 'True', 'YES', 'on', '1']) assert.equal(parseBool(t), true, t);
  for (const f of ['false', 'False', 'no', 'OFF', '0']) assert.equal(parseBool(f), false, f);
  for (const x of ['', 'y', 'enabled', '2']) assert.equal(parseBool(x), undefined, x);
  assert.deepEqual(parseList(' a , b,c ,'), ['a', 'b', 'c']);
  assert.deepEqual(parseList(''), []);
  assert.deepEqual(parseList('a,,b'), ['a', 'b']);
});
