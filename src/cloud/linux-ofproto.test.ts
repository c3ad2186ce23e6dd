// Issue 7's last point: the emulator and real Open vSwitch agree on the flows. The east-west
// packet (vm1 -> vm2) on compute1, as `ovs-appctl ofproto/trace` walks it through the real
// ovs-vswitchd's tables (the linux cloud of linux-testing.ts), against the tables the emulated
// dataplane hits for the same packet in an emulated cloud built the same way. Two legs:
// vm1's frame into br-int (qvo -> qr- of network 1), and the routed frame from qrouter's qr-
// of network 2 through br-int into br-tun (DVR MAC rewrite, unicast to the tunnel). The
// comparison is structural: bridges, tables in order and the key actions, not flow text.
// Needs root, Open vSwitch, dnsmasq and busybox; skipped otherwise (as linux-heal.test.ts).

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { client } from '../api/testing.js';
import { hybridVethOvsEnd, routerInterfaceDevice } from '../host/names.js';
import { run } from '../dataplane/linux/exec.js';
import type { TraceStep } from '../trace/record.js';
import { startCloud, type Cloud } from './cloud.js';
import { linuxDataplaneUnavailable, type LinuxDataplane } from './linux-dataplane.js';
import { processesMentioning, scenarioNamespaces, startLinuxScenario, type LinuxScenario } from './linux-testing.js';
import { makeScenario } from './testing.js';
import { scenarioTopology } from './topology.js';

const skip = linuxDataplaneUnavailable() ?? false;

/** One bridge pass of a trace: the bridge and the OpenFlow tables hit, in order. */
interface Pass {
  bridge: string;
  tables: number[];
}

/** `ofproto/trace` output as bridge passes; `actions` is every action line, for the key-action checks. */
function parseOfprotoTrace(text: string): { passes: Pass[]; actions: string } {
  const passes: Pass[] = [];
  for (const line of text.split('\n')) {
    const b = /^bridge\("([^"]+)"\)/.exec(line);
    if (b) passes.push({ bridge: b[1], tables: [] });
    const t = /^\s*(\d+)\.\s/.exec(line);
    if (t && passes.length) {
      const p = passes[passes.length - 1];
      if (p.tables[p.tables.length - 1] !== Number(t[1])) p.tables.push(Number(t[1]));
    }
  }
  return { passes, actions: text };
}

/** The emulated trace's OVS steps as bridge passes (a new pass where a bridge's walk starts again at depth 0, table 0). */
function emulatedPasses(steps: TraceStep[]): Pass[] {
  const passes: Pass[] = [];
  for (const s of steps) {
    const depth = (s.detail as { depth?: number } | undefined)?.depth ?? 0;
    const table = Number(s.table);
    const last = passes[passes.length - 1];
    if (!last || last.bridge !== s.bridge || (depth === 0 && table === 0 && last.tables.length)) passes.push({ bridge: s.bridge!, tables: [table] });
    else if (last.tables[last.tables.length - 1] !== table) last.tables.push(table);
  }
  return passes;
}

const ok = async (p: Promise<{ status: number; body: any }>, status = 200) => {
  const r = await p;
  assert.equal(r.status, status, JSON.stringify(r.body));
  return r.body;
};

/** The emulated cloud, made through the API as the linux one (src/cloud/testing.ts). */
async function startEmulated(dir: string) {
  const topology = scenarioTopology(2);
  topology.nodes = topology.nodes.filter((n) => n.name !== 'controller');
  const cloud = await startCloud({ stateDir: dir, topology, apiPort: 0, identityPort: 0, computePort: 0, auth: 'noauth', resyncInterval: 0 });
  const { ids, vm1, vm2 } = await makeScenario(cloud, { floatingIp: false });
  for (const vm of [vm1, vm2]) assert.ok(cloud.compute.dhcp(vm), `${vm.name} gets a DHCP lease`);
  await cloud.settle();
  return { cloud, ids, vm1, vm2 };
}

/** The router's qr- ports by subnet and the hosts' DVR MACs, from the API. */
async function routerFacts(cloud: Cloud, ids: Record<string, any>) {
  const call = client(cloud.servers.api.url);
  const qr = (await ok(call('GET', `/v2.0/ports?device_id=${ids.router.id}&device_owner=network:router_interface_distributed`))).ports as any[];
  const bySubnet = (id: string) => qr.find((p) => p.fixed_ips[0].subnet_id === id);
  const macs = new Map((await cloud.servers.api.plugin.dvr.hostMacs()).map((m) => [m.host, m.mac_address]));
  return { qr1: bySubnet(ids.sub1.id), qr2: bySubnet(ids.sub2.id), d1: macs.get('compute1')! };
}

describe('the emulator and real Open vSwitch agree on the east-west flow (ofproto/trace)', { skip, timeout: 300_000 }, () => {
  const tag = `lo${process.pid % 100000}-`;
  let s: LinuxScenario | undefined;
  let dir: string | undefined;
  let dataplane: LinuxDataplane | undefined;
  let emuDir: string | undefined;
  let emu: Awaited<ReturnType<typeof startEmulated>> | undefined;

  before(async () => {
    emuDir = mkdtempSync(join(tmpdir(), 'dvrnet-ofproto-emu-'));
    emu = await startEmulated(emuDir);
    s = await startLinuxScenario(tag, (c) => {
      dir = c.dir;
      dataplane = c.dataplane;
    });
  });

  after(async () => {
    try {
      await emu?.cloud.close();
      await s?.cloud.close();
    } finally {
      await dataplane?.down();
      if (dir) rmSync(dir, { recursive: true, force: true });
      if (emuDir) rmSync(emuDir, { recursive: true, force: true });
    }
    assert.deepEqual(scenarioNamespaces(tag), [], 'no namespace of the test is left');
    if (dir) assert.deepEqual(processesMentioning(dir), [], 'no process of the test is left');
  });

  it('vm1 -> vm2 on compute1: the same bridges, tables and key actions', async () => {
    const { cloud, vm1, vm2, ids, pingOk } = s!;
    await pingOk({ host: 'compute1', ns: 'vm1' }, vm2.fixed_ip, 2); // learnt MACs and flows
    const { qr1, qr2, d1 } = await routerFacts(cloud, ids);

    // Real: ofproto/trace on compute1's ovs-vswitchd (its unixctl socket in the host's rundir).
    const rundir = join(dir!, 'linux', 'compute1');
    const ctl = readdirSync(rundir).find((f) => /^ovs-vswitchd\.\d+\.ctl$/.test(f));
    assert.ok(ctl, `ovs-vswitchd's control socket in ${rundir}`);
    const trace = async (flow: string) => (await run(['ovs-appctl', '-t', join(rundir, ctl), 'ofproto/trace', 'br-int', flow])).stdout;
    const ip = `icmp,nw_src=${vm1.fixed_ip},nw_dst=${vm2.fixed_ip},icmp_type=8`;
    const leg1 = await trace(`in_port=${hybridVethOvsEnd(vm1.port_id)},dl_src=${vm1.mac},dl_dst=${qr1.mac_address},${ip}`);
    const leg2 = await trace(`in_port=${routerInterfaceDevice(qr2.id)},dl_src=${qr2.mac_address},dl_dst=${vm2.mac},${ip}`);
    const real1 = parseOfprotoTrace(leg1);
    const real2 = parseOfprotoTrace(leg2);

    // Emulated: the same ping, and the OVS steps compute1 took for vm1's echo request.
    emu!.cloud.world.ping({ host: 'compute1', ns: 'vm1' }, emu!.vm2.fixed_ip);
    const rec = emu!.cloud.world.ping({ host: 'compute1', ns: 'vm1' }, emu!.vm2.fixed_ip, { seq: 2 });
    const steps = rec.steps.filter((x) => x.host === 'compute1' && x.kind === 'ovs' && x.before.ip?.src === emu!.vm1.fixed_ip && x.before.ip?.dst === emu!.vm2.fixed_ip);
    const emulated = emulatedPasses(steps);

    // Leg 1, vm1's frame into br-int: the same tables (0 -> 25 -> 30 -> 59 -> 60), NORMAL to network 1's qr-.
    const qr1Dev = routerInterfaceDevice(qr1.id);
    assert.deepEqual(real1.passes, [emulated[0]], 'leg 1: bridges and tables, real (left) and emulated (right)');
    assert.deepEqual(real1.passes[0].tables.slice(0, 1).concat(real1.passes[0].tables.slice(-1)), [0, 60], 'leg 1 enters at table 0 and leaves from table 60');
    assert.match(leg1, /60\. .*\n\s+NORMAL\n\s+-> forwarding to learned port/, 'real: table 60 NORMAL to a learnt port');
    const ofport = (await run(['ovs-vsctl', `--db=unix:${join(rundir, 'db.sock')}`, 'get', 'Interface', qr1Dev, 'ofport'])).stdout.trim();
    const fdb = (await run(['ovs-appctl', '-t', join(rundir, ctl), 'fdb/show', 'br-int'])).stdout;
    assert.ok(fdb.split('\n').some((l) => l.trim().split(/\s+/)[0] === ofport && l.includes(qr1.mac_address)), `real: ${qr1.mac_address} learnt on ${qr1Dev} (ofport ${ofport})\n${fdb}`);
    const emuQr1 = routerInterfaceDevice((await routerFacts(emu!.cloud, emu!.ids)).qr1.id);
    assert.ok(steps.some((x) => x.bridge === 'br-int' && Number(x.table) === 60 && x.action.includes(`output ${emuQr1}`)), 'emulated: table 60 outputs to qr- of network 1');

    // Leg 2, the routed frame from network 2's qr-: br-int 0 -> 59 -> 60 (NORMAL to patch-tun), then
    // br-tun 0 -> 1 (DVR MAC) -> 2 -> 20 (unicast into the tunnel). Real OVS then walks br-phy:
    // the userspace datapath's native tunnel routes the VXLAN packet through that bridge, where
    // the emulator encapsulates at the tunnel port; that pass is not part of the agents' flows.
    const real2Ovs = real2.passes.filter((p) => p.bridge !== 'br-phy');
    assert.deepEqual(real2.passes.slice(real2Ovs.length).map((p) => p.bridge), real2.passes.length > real2Ovs.length ? ['br-phy'] : [], 'only br-phy after br-tun');
    assert.deepEqual(real2Ovs, emulated.slice(1), 'leg 2: bridges and tables, real (left) and emulated (right)');
    assert.deepEqual(real2Ovs.map((p) => p.bridge), ['br-int', 'br-tun']);
    assert.deepEqual(real2Ovs[1].tables, [0, 1, 2, 20], 'br-tun: 0 -> 1 -> 2 -> 20');
    const vni = ids.net2['provider:segmentation_id'];
    const emuVni = emu!.ids.net2['provider:segmentation_id'];
    const emuD1 = (await routerFacts(emu!.cloud, emu!.ids)).d1;
    // Table 1 (DVR_PROCESS): the router's source MAC becomes the host's DVR MAC.
    assert.match(leg2, new RegExp(` 1\\. dl_vlan=\\d+,dl_src=${qr2.mac_address}.*\\n\\s+set_field:${d1}->eth_src`), 'real: br-tun table 1 sets the source MAC to D1');
    const emuT1 = steps.find((x) => x.bridge === 'br-tun' && Number(x.table) === 1);
    assert.equal(emuT1?.after?.eth.src, emuD1, 'emulated: br-tun table 1 sets the source MAC to D1');
    // Table 20 (UCAST_TO_TUN): network 2's VNI, out of the VXLAN port to compute2.
    assert.match(leg2, new RegExp(`20\\. dl_vlan=\\d+,dl_dst=${vm2.mac}.*\\n\\s+pop_vlan\\n\\s+load:0x${vni.toString(16)}->NXM_NX_TUN_ID\\[\\]\\n\\s+output:\\d+\\n\\s+-> output to native tunnel\\n\\s+-> tunneling to 10\\.0\\.1\\.32`), 'real: table 20 tunnels to compute2 with the VNI');
    assert.match(leg2, new RegExp(`vxlan\\(flags=0x8000000,vni=0x${vni.toString(16)}\\)`), 'real: the datapath pushes VXLAN with the VNI');
    const emuT20 = steps.find((x) => x.bridge === 'br-tun' && Number(x.table) === 20);
    assert.match(emuT20?.rule ?? '', new RegExp(`strip_vlan,load:0x${emuVni.toString(16)}->NXM_NX_TUN_ID\\[\\],output:vxlan-0a000120`), 'emulated: table 20 tunnels to compute2 with the VNI');
    assert.match(emuT20?.action ?? '', /^output vxlan-0a000120\b/);
  });
});
