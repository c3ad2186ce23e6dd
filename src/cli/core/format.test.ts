import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cell, formatList, formatOne, pyJson, pyJsonIndent, pyRepr, table } from './format.js';

test('tables look like prettytable under cliff: left aligned, multi-line cells', () => {
  assert.equal(
    table(['id', 'name'], [['a', 'x\nlonger']]),
    ['+----+--------+', '| id | name   |', '+----+--------+', '| a  | x      |', '|    | longer |', '+----+--------+'].join('\n'),
  );
});

test('cells: lists one per line, dicts as Python JSON, null empty, booleans capitalised', () => {
  assert.equal(cell([{ start: '1', end: '2' }]), '{"start": "1", "end": "2"}');
  assert.equal(cell(['a', 'b']), 'a\nb');
  assert.equal(cell(null), '');
  assert.equal(cell(true), 'True');
  assert.equal(pyJson({ a: [1, null] }), '{"a": [1, null]}');
  assert.equal(pyRepr([{ id: 'x', ok: false }]), "[{'id': 'x', 'ok': False}]");
});

test('show: sorted fields, -c picks, json and value formats', () => {
  const o = { name: 'n', id: 'i', shared: false, subnets: [] };
  assert.equal(formatOne(o, 'table', ['name']), '+-------+-------+\n| Field | Value |\n+-------+-------+\n| name  | n     |\n+-------+-------+');
  assert.deepEqual(JSON.parse(formatOne(o, 'json', [])), o);
  assert.equal(formatOne(o, 'value', ['id', 'shared']), 'i\nFalse');
  assert.throws(() => formatOne(o, 'table', ['nope']), /No recognized column names in \["nope"\]/);
});

test('lists: nothing for no rows, space separated values', () => {
  assert.equal(formatList([], ['id'], 'table', []), '');
  assert.equal(formatList([{ id: 'a', name: 'x' }], ['id', 'name'], 'value', []), 'a x');
  assert.equal(formatList([], ['id'], 'json', []), '[]');
});

test("json_indent: Python's json.dumps(v, indent=5), as agent-show prints configurations", () => {
  assert.equal(
    pyJsonIndent({ a: [1, { b: true }], c: {}, d: [] }, 5),
    ['{', '     "a": [', '          1,', '          {', '               "b": true', '          }', '     ],', '     "c": {},', '     "d": []', '}'].join('\n'),
  );
  assert.equal(cell({ x: null }, 5), '{\n     "x": null\n}');
  assert.equal(cell({ x: null }), '{"x": null}');
});
