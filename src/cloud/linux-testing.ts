// Test helper: the scenario's cloud on the linux dataplane (network1, compute1, compute2 as
// namespaces with their own Open vSwitch; ext-net, two tenant networks on one distributed
// router with a gateway, vm1 on compute1 with a floating IP, vm2 on compute2), made through
// the API (src/cloud/testing.ts). Needs root and the tools that
// linuxDataplaneUnavailable() checks.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Instance } from '../compute/compute.js';
import { startCloud, type Cloud } from './cloud.js';
import { LinuxDataplane } from './linux-dataplane.js';
import { makeScenario } from './testing.js';
import { scenarioTopology } from './topology.js';

export interface LinuxScenario {
  tag: string;
  /** The cloud's state directory; the machine's is `<dir>/linux` (as `dvrnet up` lays it out). */
  dir: string;
  dataplane: LinuxDataplane;
  cloud: Cloud;
  ids: Record<string, any>;
  vm1: Instance;
  vm2: Instance;
  /** Pings (with the dataplane's retries) and asserts that every packet came back. */
  pingOk(from: { host: string; ns?: string }, dst: string, count?: number): Promise<void>;
  /** The machine's namespaces with the scenario's tag. */
  namespaces(): string[];
  /** Processes whose command line names the state directory (OVS daemons, dnsmasq, udhcpc, proxies). */
  processes(): string[];
}

export const scenarioNamespaces = (tag: string) => (existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(tag)) : []);

export const processesMentioning = (text: string) =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text);
      } catch {
        return false;
      }
    });

/**
 * Starts the scenario's cloud on a fresh state directory. On failure the caller's cleanup
 * still finds `dir` and `dataplane` through `onCreated` (called before anything is made).
 */
export async function startLinuxScenario(tag: string, onCreated?: (s: { dir: string; dataplane: LinuxDataplane }) => void): Promise<LinuxScenario> {
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-linux-cloud-'));
  const dataplane = new LinuxDataplane(join(dir, 'linux'), tag);
  onCreated?.({ dir, dataplane });
  const topology = scenarioTopology(2);
  topology.nodes = topology.nodes.filter((n) => n.name !== 'controller');
  const cloud = await startCloud({ stateDir: dir, topology, dataplane, apiPort: 0, identityPort: 0, computePort: 0, auth: 'noauth', resyncInterval: 10 });
  try {
    const { ids, vm1, vm2 } = await makeScenario(cloud, { floatingIp: true });
    return {
      tag,
      dir,
      dataplane,
      cloud,
      ids,
      vm1,
      vm2,
      async pingOk(from, dst, count = 3) {
        const r = await dataplane.ping(from, dst, count);
        assert.equal(r.received, r.sent, `ping ${dst} from ${from.host}/${from.ns ?? ''}: ${r.summary}`);
        assert.ok(r.sent > 0, r.summary);
      },
      namespaces: () => scenarioNamespaces(tag),
      processes: () => processesMentioning(dir),
    };
  } catch (err) {
    await cloud.close().catch(() => undefined);
    throw err;
  }
}
