// The layer map, checked: every import of a module (tests aside) points down this table.
// A new dependency between parts is a design decision: make it here, on purpose.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { it } from 'node:test';

/** part -> the parts it may import (besides itself). */
const ALLOWED: Record<string, string[]> = {
  common: [],
  config: ['common'],
  host: [],
  db: ['common'],
  ml2: ['common', 'config', 'db'],
  rpc: ['common'],
  server: ['common', 'config', 'db', 'ml2', 'rpc'],
  identity: ['common', 'config', 'db'],
  api: ['common', 'config', 'db', 'server', 'rpc', 'identity'],
  trace: ['dataplane'],
  dataplane: ['common', 'host', 'trace'],
  agents: ['common', 'config', 'host', 'rpc'],
  compute: ['common', 'config', 'host', 'server', 'agents', 'dataplane', 'trace', 'api'],
  cloud: ['common', 'config', 'host', 'server', 'agents', 'dataplane', 'trace', 'api', 'rpc', 'compute', 'identity', 'cli'],
  cli: ['common', 'config', 'api', 'server', 'rpc', 'identity', 'cloud', 'compute', 'trace', 'host', 'dataplane'],
};

const SRC = resolve('src');
function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.case.ts') && !/testing\.ts$|fake_agents\.ts$/.test(name)) out.push(p);
  }
  return out;
}
const partOf = (file: string) => relative(SRC, file).split('/')[0];

it('imports point down the layer map', () => {
  const bad: string[] = [];
  for (const f of files(SRC)) {
    const from = partOf(f);
    if (!(from in ALLOWED)) continue;
    for (const m of readFileSync(f, 'utf8').matchAll(/^(?:import|export)[^;]*?from '(\.[^']+)'/gms)) {
      const to = partOf(resolve(dirname(f), m[1]));
      if (to !== from && !ALLOWED[from].includes(to)) bad.push(`${relative(SRC, f)} imports ${m[1]} (${from} -> ${to})`);
    }
  }
  assert.deepEqual(bad, []);
});

it('the desired-state code never runs processes', () => {
  for (const f of files(join(SRC, 'host'))) assert.doesNotMatch(readFileSync(f, 'utf8'), /node:child_process/, f);
});
