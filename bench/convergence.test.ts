// The convergence benchmark's --rpc-timeout option: refused when it is not a positive integer,
// and given to the agents (the result states the timeout they run with) when it is.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const bench = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'bench/convergence.ts', ...args], { timeout: 120_000 });

test('bench:convergence refuses an --rpc-timeout that is not a positive integer, with its usage', async () => {
  await assert.rejects(bench('--hosts', '1', '--rpc-timeout', '0'), (e: { code: number; stderr: string }) => {
    assert.equal(e.code, 2);
    assert.match(e.stderr, /--rpc-timeout must be a positive integer, got '0'/);
    assert.match(e.stderr, /usage: npm run bench:convergence .*\[--rpc-timeout S\]/);
    return true;
  });
});

test('bench:convergence runs the agents with the --rpc-timeout given, and with Neutron\'s 60 s otherwise', async () => {
  const last = (out: string) => JSON.parse(out.trim().split('\n').pop()!);
  const given = last((await bench('--hosts', '1', '--one-more', '1', '--pings', '2', '--rpc-timeout', '7')).stdout);
  assert.equal(given.rpc_response_timeout_s, 7);
  assert.equal(given.ping_failures, 0);
  const shipped = last((await bench('--hosts', '1', '--one-more', '1', '--pings', '2')).stdout);
  assert.equal(shipped.rpc_response_timeout_s, 60);
});
