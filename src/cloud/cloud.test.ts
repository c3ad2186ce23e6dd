import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startCloud } from './cloud.js';
import { diff } from '../host/diff.js';

describe('the all-in-one cloud', () => {
  it('starts the scenario topology: nodes with their NICs and bridges, the server, the outside world', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dvrnet-cloud-'));
    const cloud = await startCloud({ stateDir: dir, apiPort: 0, identityPort: 0, computePort: 0, auth: 'noauth', agents: [] });
    try {
      assert.deepEqual([...cloud.nodes.keys()], ['network1', 'compute1', 'compute2']);
      const c1 = cloud.nodes.get('compute1')!;
      assert.equal(c1.tunnelIp, '10.0.1.31');
      const state = await c1.composer.current();
      assert.deepEqual(diff(state, c1.composer.desired()), [], 'the host matches its setup');
      assert.ok(state.ovs.bridges['br-ex'].ports.eth2);
      // The external router answers from the outside host's side.
      const rec = cloud.world.ping({ host: 'internet' }, '203.0.113.1');
      assert.ok(rec.delivered.length > 0, 'EG answers pings from the internet');
      const r = await fetch(`${cloud.servers.api.url}/v2.0/networks`);
      assert.equal(r.status, 200);
    } finally {
      await cloud.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
