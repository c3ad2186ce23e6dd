import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashPassword, verifyPassword } from './password.js';

const FAST = { N: 2 ** 10, r: 8, p: 1 };

test('a hash verifies its own password and nothing else', async () => {
  const h = await hashPassword('s3cret', FAST);
  assert.match(h, /^scrypt\$1024\$8\$1\$[^$]+\$[^$]+$/);
  assert.equal(await verifyPassword('s3cret', h), true);
  assert.equal(await verifyPassword('s3cret ', h), false);
  assert.equal(await verifyPassword('', h), false);
});

test('the same password hashes differently each time (random salt)', async () => {
  assert.notEqual(await hashPassword('x', FAST), await hashPassword('x', FAST));
});

test('the default parameters are memory-hard and are recorded in the hash', async () => {
  const h = await hashPassword('admin');
  assert.match(h, /^scrypt\$32768\$8\$1\$/);
  assert.equal(await verifyPassword('admin', h), true);
});

test('malformed stored values never verify', async () => {
  for (const bad of ['', 'plain', 'scrypt$0$8$1$AA==$AA==', 'bcrypt$1$2$3$4$5', 'scrypt$1024$8$1$$'])
    assert.equal(await verifyPassword('x', bad), false, bad);
});
