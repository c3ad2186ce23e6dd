// Issue 7's last point: the emulator and real Open vSwitch agree on the flows. The packets of
// the scenario's three flows (section 4), as `ovs-appctl ofproto/trace` walks them through the
// real per-host ovs-vswitchd's tables (the linux cloud of linux-testing.ts), against the
// tables the emulated dataplane hits for the same packets in an emulated cloud built the same
// way through the API. The comparison is structural: bridges, tables in order, the ports a
// leg leaves by and the key actions, not flow text (the two clouds' ids and MACs differ).
// Then the other half of the dataplane: the iptables rules the emulated traces name (NAT in
// qrouter-/snat-, the instance ports' firewall chains) count the real packets of real pings.
// Needs root, Open vSwitch, dnsmasq and busybox; skipped otherwise (as linux-heal.test.ts).

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { client, ok } from '../api/testing.js';
import type { Instance } from '../compute/compute.js';
import { fipGatewayDevice, hybridVethOvsEnd, routerGatewayDevice, routerInterfaceDevice, snatDevice, tunnelPortName } from '../host/names.js';
import { ROOT_NS, type IptablesTable } from '../host/state.js';
import { run } from '../dataplane/linux/exec.js';
import type { NfStep } from '../dataplane/emulated/netfilter/types.js';
import type { OvsStep } from '../dataplane/emulated/ovs/bridge.js';
import { ETH_TYPE_ARP } from '../dataplane/emulated/packet.js';
import type { Endpoint } from '../dataplane/emulated/world.js';
import type { TraceRecord, TraceStep } from '../trace/record.js';
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

/** One leg of a flow on one host: the bridge passes from its in_port across patch ports, and the ports it leaves by. */
interface Leg {
  passes: Pass[];
  /** Non-patch output ports, as roles (see `Facts.role`); a tunnel is `vxlan-<remote hex>` on both sides. */
  outputs: string[];
  /** The trace text (real) or the leg's steps (emulated), for the key-action checks. */
  text: string;
  steps: TraceStep[];
}

const patchPeer = (p: string) => (p === 'patch-tun' ? 'patch-int' : p === 'patch-int' ? 'patch-tun' : p.startsWith('int-') ? `phy-${p.slice(4)}` : p.startsWith('phy-') ? `int-${p.slice(4)}` : undefined);

/**
 * The emulated leg: the run of OVS steps of one `process()` (same host, in_port and packet,
 * contiguous) starting at `inPort` for a packet with these addresses, then the runs its patch
 * outputs start on the peer bridges (the emulator schedules a patch crossing as a new event).
 */
function emulatedLeg(rec: TraceRecord, host: string, inPort: string, ip: { src: string; dst: string }, role: (dev: string) => string): Leg {
  const steps = rec.steps;
  const isOvs = (s: TraceStep) => s.kind === 'ovs' && s.host === host;
  const at = (from: number, dev: string, pkt?: number) =>
    steps.findIndex((s, i) => i >= from && isOvs(s) && s.dev === dev && Number(s.table) === 0 && (s.detail as OvsStep).depth === 0 && (pkt === undefined ? s.before.ip?.src === ip.src && s.before.ip?.dst === ip.dst : s.pkt === pkt));
  const first = at(0, inPort);
  assert.ok(first >= 0, `emulated: no OVS step on ${host} from ${inPort} for ${ip.src} > ${ip.dst}`);
  const pkt = steps[first].pkt;
  const legSteps: TraceStep[] = [];
  const outputs: string[] = [];
  const queue = [first];
  while (queue.length) {
    const i = queue.shift()!;
    const dev = steps[i].dev;
    for (let j = i; j < steps.length && isOvs(steps[j]) && steps[j].dev === dev && steps[j].pkt === pkt && (j === i || (steps[j].detail as OvsStep).depth > 0 || Number(steps[j].table) !== 0); j++) {
      legSteps.push(steps[j]);
      for (const out of (steps[j].detail as OvsStep).outputs) {
        const peer = patchPeer(out);
        if (!peer) outputs.push(role(out));
        else {
          const next = at(j + 1, peer, pkt);
          assert.ok(next >= 0, `emulated: ${out} on ${host} leads nowhere`);
          queue.push(next);
        }
      }
    }
  }
  return { passes: emulatedPasses(legSteps), outputs: outputs.sort(), text: legSteps.map((s) => `${s.bridge} ${s.table} ${s.rule} ${s.action}`).join('\n'), steps: legSteps };
}


/** The emulated cloud, made through the API as the linux one (src/cloud/testing.ts). */
async function startEmulated(dir: string) {
  const topology = scenarioTopology(2);
  topology.nodes = topology.nodes.filter((n) => n.name !== 'controller');
  const cloud = await startCloud({ stateDir: dir, topology, apiPort: 0, identityPort: 0, computePort: 0, auth: 'noauth', resyncInterval: 0 });
  const { ids, vm1, vm2 } = await makeScenario(cloud, { floatingIp: true });
  for (const vm of [vm1, vm2]) assert.ok(cloud.compute.dhcp(vm), `${vm.name} gets a DHCP lease`);
  await cloud.settle();
  return { cloud, ids, vm1, vm2 };
}

/** What one cloud's API says about the router's ports and the hosts' DVR MACs; `role` names a device the same way in both clouds. */
async function routerFacts(cloud: Cloud, ids: Record<string, any>, vm1: Instance, vm2: Instance) {
  const call = client(cloud.servers.api.url);
  const ports = (await ok(call('GET', `/v2.0/ports?device_id=${ids.router.id}`))).ports as any[];
  const bySubnet = (owner: string, id: string) => ports.find((p) => p.device_owner === owner && p.fixed_ips[0].subnet_id === id);
  const qr1 = bySubnet('network:router_interface_distributed', ids.sub1.id);
  const qr2 = bySubnet('network:router_interface_distributed', ids.sub2.id);
  const sg2 = bySubnet('network:router_centralized_snat', ids.sub2.id);
  const qg = ports.find((p) => p.device_owner === 'network:router_gateway');
  const fg = ((await ok(call('GET', '/v2.0/ports?device_owner=network:floatingip_agent_gateway'))).ports as any[]).find((p) => p['binding:host_id'] === 'compute1');
  for (const [what, p] of Object.entries({ qr1, qr2, sg2, qg, fg })) assert.ok(p, `${what} port`);
  const macs = new Map((await cloud.servers.api.plugin.dvr.hostMacs()).map((m) => [m.host, m.mac_address]));
  const sg = (await ok(call('GET', '/v2.0/security-groups?name=default', undefined, { project: 'demo' }))).security_groups[0];
  const roles = new Map<string, string>([
    [hybridVethOvsEnd(vm1.port_id), 'qvo of vm1'],
    [hybridVethOvsEnd(vm2.port_id), 'qvo of vm2'],
    [routerInterfaceDevice(qr1.id), 'qr- of network 1'],
    [routerInterfaceDevice(qr2.id), 'qr- of network 2'],
    [snatDevice(sg2.id), 'sg- of network 2'],
    [routerGatewayDevice(qg.id), 'qg-'],
    [fipGatewayDevice(fg.id), 'fg- of compute1'],
  ]);
  return {
    qr1,
    qr2,
    sg2,
    qg,
    fg,
    tr: qg.fixed_ips[0].ip_address as string,
    fip: ids.fip.floating_ip_address as string,
    sgId: sg.id as string,
    d1: macs.get('compute1')!,
    d2: macs.get('compute2')!,
    role: (dev: string) => roles.get(dev) ?? dev,
    dev: (role: string) => [...roles].find(([, r]) => r === role)?.[0] ?? role,
  };
}
type Facts = Awaited<ReturnType<typeof routerFacts>>;

/**
 * A translator of the emulated cloud's names into the linux cloud's: ids (and the prefixes
 * device, chain and namespace names cut from them), MACs and addresses differ between the two.
 */
function translator(pairs: Array<[string, string]>): (text: string) => string {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const subs: Array<(t: string) => string> = [];
  for (const [a, b] of pairs) {
    if (a === b) continue;
    if (/^[0-9a-f]{8}-[0-9a-f-]{27}$/.test(a)) {
      // Any prefix of 8 or more characters of the id, e.g. `tap<11>`, `neutron-openvswi-i<10>`.
      subs.push((t) =>
        t.replace(new RegExp(`${esc(a.slice(0, 8))}[0-9a-f-]*`, 'g'), (m) => {
          let n = 8;
          while (n < m.length && n < a.length && m[n] === a[n]) n++;
          return b.slice(0, n) + m.slice(n);
        }),
      );
    } else if (/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(a)) subs.push((t) => t.replace(new RegExp(esc(a), 'gi'), (m) => (m === a.toUpperCase() ? b.toUpperCase() : b)));
    else subs.push((t) => t.replace(new RegExp(`(?<![\\d.])${esc(a)}(?![\\d])`, 'g'), b));
  }
  return (text) => subs.reduce((t, f) => f(t), text);
}

/** Packet counters of every rule of a table in a namespace of the machine, per chain in order (`iptables-save -c`). */
async function ruleCounters(netns: string, table: IptablesTable): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const line of (await run(['ip', 'netns', 'exec', netns, 'iptables-save', '-c', '-t', table])).stdout.split('\n')) {
    const m = /^\[(\d+):\d+\] -A (\S+)/.exec(line);
    if (m) out.set(m[2], [...(out.get(m[2]) ?? []), Number(m[1])]);
  }
  return out;
}

/** The `-A` rules of each chain of an iptables-restore text, in order. */
function chainRules(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^-A (\S+)/.exec(line);
    if (m) out.set(m[1], [...(out.get(m[1]) ?? []), line.trim()]);
  }
  return out;
}

describe('the emulator and real Open vSwitch and iptables agree on the three flows', { skip, timeout: 300_000 }, () => {
  const tag = `lo${process.pid % 100000}-`;
  let s: LinuxScenario | undefined;
  let dir: string | undefined;
  let dataplane: LinuxDataplane | undefined;
  let emuDir: string | undefined;
  let emu: Awaited<ReturnType<typeof startEmulated>> | undefined;
  let real: Facts;
  let emf: Facts;

  before(async () => {
    emuDir = mkdtempSync(join(tmpdir(), 'dvrnet-ofproto-emu-'));
    emu = await startEmulated(emuDir);
    s = await startLinuxScenario(tag, (c) => {
      dir = c.dir;
      dataplane = c.dataplane;
    });
    real = await routerFacts(s.cloud, s.ids, s.vm1, s.vm2);
    emf = await routerFacts(emu.cloud, emu.ids, emu.vm1, emu.vm2);
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

  /** The control socket of a host's ovs-vswitchd (in the host's rundir). */
  const ctlOf = (host: string) => {
    const rundir = join(dir!, 'linux', host);
    const ctl = readdirSync(rundir).find((f) => /^ovs-vswitchd\.\d+\.ctl$/.test(f));
    assert.ok(ctl, `ovs-vswitchd's control socket in ${rundir}`);
    return join(rundir, ctl);
  };

  /**
   * `ofproto/trace` on a host's real ovs-vswitchd, as a leg: the passes (br-phy, where the
   * userspace datapath's native tunnel routes the encapsulated packet, is not the agents' and
   * is left out), and the datapath's output ports by name (a tunnel as its OVS port).
   */
  const realLeg = async (host: string, bridge: string, flow: string): Promise<Leg> => {
    const ctl = ctlOf(host);
    const text = (await run(['ovs-appctl', '-t', ctl, 'ofproto/trace', bridge, flow])).stdout;
    const { passes } = parseOfprotoTrace(text);
    const ovsPasses = passes.filter((p) => p.bridge !== 'br-phy');
    assert.deepEqual(passes.slice(ovsPasses.length).map((p) => p.bridge), passes.slice(ovsPasses.length).map(() => 'br-phy'), `only br-phy after the agents' bridges\n${text}`);
    // dpif/show: "  br-int:" then "    qr-xxx 5/10: (system)" (name ofport/datapath port).
    const byOdp = new Map<string, { name: string; bridge: string }>();
    let br = '';
    for (const line of (await run(['ovs-appctl', '-t', ctl, 'dpif/show'])).stdout.split('\n')) {
      const b = /^ {2}(\S+):$/.exec(line);
      if (b) br = b[1];
      const p = /^ {4}(\S+) \d+\/(\d+):/.exec(line);
      if (p) byOdp.set(p[2], { name: p[1], bridge: br });
    }
    let actions = /^Datapath actions: (.*)$/m.exec(text)?.[1] ?? '';
    while (/tnl_push\([^()]*(\([^()]*\))*[^()]*\)/.test(actions)) actions = actions.replace(/\([^()]*\)/g, ''); // strip nested parentheses
    const outputs = actions
      .split(',')
      .filter((a) => /^\d+$/.test(a.trim()))
      .map((a) => byOdp.get(a.trim()))
      .filter((p): p is { name: string; bridge: string } => p !== undefined && p.bridge !== 'br-phy')
      .map((p) => p.name);
    for (const m of text.matchAll(/-> tunneling to (\d+\.\d+\.\d+\.\d+)/g)) outputs.push(tunnelPortName('vxlan', m[1]));
    return { passes: ovsPasses, outputs: outputs.map(real.role).sort(), text, steps: [] };
  };

  /** Warm and record one echo (seq 2: ARP caches and learnt MACs are warm, as for the real pings). */
  const emulatedEcho = (from: Endpoint, dst: string) => {
    emu!.cloud.world.ping(from, dst);
    return emu!.cloud.world.ping(from, dst, { seq: 2 });
  };

  /** Asserts that the real leg and the emulated leg walk the same bridges and tables and leave by the same ports. */
  const sameLeg = (what: string, r: Leg, e: Leg) => {
    assert.deepEqual(r.passes, e.passes, `${what}: bridges and tables, real (left) and emulated (right)\nreal:\n${r.text}\nemulated:\n${e.text}`);
    assert.deepEqual(r.outputs, e.outputs, `${what}: the ports the leg leaves by, real (left) and emulated (right)\nreal:\n${r.text}`);
    assert.ok(r.outputs.length > 0, `${what}: the packet leaves`);
  };

  it('vm1 -> vm2 on compute1: the same bridges, tables and key actions', async () => {
    const { vm1, vm2, ids, pingOk } = s!;
    await pingOk({ host: 'compute1', ns: 'vm1' }, vm2.fixed_ip, 2); // learnt MACs and flows
    const { qr1, qr2, d1 } = real;

    // Real: ofproto/trace on compute1's ovs-vswitchd (its unixctl socket in the host's rundir).
    const ctl = ctlOf('compute1');
    const rundir = join(dir!, 'linux', 'compute1');
    const trace = async (flow: string) => (await run(['ovs-appctl', '-t', ctl, 'ofproto/trace', 'br-int', flow])).stdout;
    const ip = `icmp,nw_src=${vm1.fixed_ip},nw_dst=${vm2.fixed_ip},icmp_type=8`;
    const leg1 = await trace(`in_port=${hybridVethOvsEnd(vm1.port_id)},dl_src=${vm1.mac},dl_dst=${qr1.mac_address},${ip}`);
    const leg2 = await trace(`in_port=${routerInterfaceDevice(qr2.id)},dl_src=${qr2.mac_address},dl_dst=${vm2.mac},${ip}`);
    const real1 = parseOfprotoTrace(leg1);
    const real2 = parseOfprotoTrace(leg2);

    // Emulated: the same ping, and the OVS steps compute1 took for vm1's echo request.
    const rec = emulatedEcho({ host: 'compute1', ns: 'vm1' }, emu!.vm2.fixed_ip);
    const steps = rec.steps.filter((x) => x.host === 'compute1' && x.kind === 'ovs' && x.before.ip?.src === emu!.vm1.fixed_ip && x.before.ip?.dst === emu!.vm2.fixed_ip);
    const emulated = emulatedPasses(steps);

    // Leg 1, vm1's frame into br-int: the same tables (0 -> 25 -> 30 -> 59 -> 60), NORMAL to network 1's qr-.
    const qr1Dev = routerInterfaceDevice(qr1.id);
    assert.deepEqual(real1.passes, [emulated[0]], 'leg 1: bridges and tables, real (left) and emulated (right)');
    assert.deepEqual(real1.passes[0].tables.slice(0, 1).concat(real1.passes[0].tables.slice(-1)), [0, 60], 'leg 1 enters at table 0 and leaves from table 60');
    assert.match(leg1, /60\. .*\n\s+NORMAL\n\s+-> forwarding to learned port/, 'real: table 60 NORMAL to a learnt port');
    const ofport = (await run(['ovs-vsctl', `--db=unix:${join(rundir, 'db.sock')}`, 'get', 'Interface', qr1Dev, 'ofport'])).stdout.trim();
    const fdb = (await run(['ovs-appctl', '-t', ctl, 'fdb/show', 'br-int'])).stdout;
    assert.ok(fdb.split('\n').some((l) => l.trim().split(/\s+/)[0] === ofport && l.includes(qr1.mac_address)), `real: ${qr1.mac_address} learnt on ${qr1Dev} (ofport ${ofport})\n${fdb}`);
    const emuQr1 = routerInterfaceDevice(emf.qr1.id);
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
    // Table 1 (DVR_PROCESS): the router's source MAC becomes the host's DVR MAC.
    assert.match(leg2, new RegExp(` 1\\. dl_vlan=\\d+,dl_src=${qr2.mac_address}.*\\n\\s+set_field:${d1}->eth_src`), 'real: br-tun table 1 sets the source MAC to D1');
    const emuT1 = steps.find((x) => x.bridge === 'br-tun' && Number(x.table) === 1);
    assert.equal(emuT1?.after?.eth.src, emf.d1, 'emulated: br-tun table 1 sets the source MAC to D1');
    // Table 20 (UCAST_TO_TUN): network 2's VNI, out of the VXLAN port to compute2.
    assert.match(leg2, new RegExp(`20\\. dl_vlan=\\d+,dl_dst=${vm2.mac}.*\\n\\s+pop_vlan\\n\\s+load:0x${vni.toString(16)}->NXM_NX_TUN_ID\\[\\]\\n\\s+output:\\d+\\n\\s+-> output to native tunnel\\n\\s+-> tunneling to 10\\.0\\.1\\.32`), 'real: table 20 tunnels to compute2 with the VNI');
    assert.match(leg2, new RegExp(`vxlan\\(flags=0x8000000,vni=0x${vni.toString(16)}\\)`), 'real: the datapath pushes VXLAN with the VNI');
    const emuT20 = steps.find((x) => x.bridge === 'br-tun' && Number(x.table) === 20);
    assert.match(emuT20?.rule ?? '', new RegExp(`strip_vlan,load:0x${emuVni.toString(16)}->NXM_NX_TUN_ID\\[\\],output:vxlan-0a000120`), 'emulated: table 20 tunnels to compute2 with the VNI');
    assert.match(emuT20?.action ?? '', /^output vxlan-0a000120\b/);
  });

  it('outside -> the floating IP on compute1 and the reply: br-ex -> br-int -> fg-, qr- -> br-int -> qvo, and back', async () => {
    const { vm1, pingOk, cloud } = s!;
    const outside = cloud.topology.outside.host;
    const eg = cloud.topology.external.gatewayMac;
    await pingOk({ host: 'internet' }, real.fip, 2);
    const rec = emulatedEcho({ host: 'internet' }, emf.fip);
    const icmp = (src: string, dst: string, type: number) => `icmp,nw_src=${src},nw_dst=${dst},icmp_type=${type}`;
    const legs: Array<[string, Leg, Leg]> = [
      [
        'inbound: eth2 -> br-ex -> br-int -> fg- (the fip namespace)',
        await realLeg('compute1', 'br-ex', `in_port=eth2,dl_src=${eg},dl_dst=${real.fg.mac_address},${icmp(outside, real.fip, 8)}`),
        emulatedLeg(rec, 'compute1', 'eth2', { src: outside, dst: emf.fip }, emf.role),
      ],
      [
        'inbound, routed and DNATed: qr- of network 1 -> br-int -> qvo of vm1',
        await realLeg('compute1', 'br-int', `in_port=${real.dev('qr- of network 1')},dl_src=${real.qr1.mac_address},dl_dst=${vm1.mac},${icmp(outside, vm1.fixed_ip, 8)}`),
        emulatedLeg(rec, 'compute1', emf.dev('qr- of network 1'), { src: outside, dst: emu!.vm1.fixed_ip }, emf.role),
      ],
      [
        'reply: qvo of vm1 -> br-int -> qr- of network 1',
        await realLeg('compute1', 'br-int', `in_port=${real.dev('qvo of vm1')},dl_src=${vm1.mac},dl_dst=${real.qr1.mac_address},${icmp(vm1.fixed_ip, outside, 0)}`),
        emulatedLeg(rec, 'compute1', emf.dev('qvo of vm1'), { src: emu!.vm1.fixed_ip, dst: outside }, emf.role),
      ],
      [
        'reply, SNATed and routed by the fip namespace: fg- -> br-int -> br-ex -> eth2',
        await realLeg('compute1', 'br-int', `in_port=${real.dev('fg- of compute1')},dl_src=${real.fg.mac_address},dl_dst=${eg},${icmp(real.fip, outside, 0)}`),
        emulatedLeg(rec, 'compute1', emf.dev('fg- of compute1'), { src: emf.fip, dst: outside }, emf.role),
      ],
    ];
    for (const [what, r, e] of legs) sameLeg(what, r, e);
    assert.deepEqual(legs.map(([, r]) => r.outputs), [['fg- of compute1'], ['qvo of vm1'], ['qr- of network 1'], ['eth2']]);
    assert.deepEqual(legs[0][1].passes.map((p) => p.bridge), ['br-ex', 'br-int'], 'inbound crosses br-ex into br-int');
    assert.deepEqual(legs[3][1].passes.map((p) => p.bridge), ['br-int', 'br-ex'], 'the reply crosses br-int into br-ex');
    // br-ex hands the reply out untagged (the flat external network): strip_vlan in both.
    assert.match(legs[3][1].text, /bridge\("br-ex"\)[\s\S]*pop_vlan/, 'real: br-ex pops the local VLAN');
    assert.ok(legs[3][2].steps.some((x) => x.bridge === 'br-ex' && x.rule?.includes('strip_vlan')), 'emulated: br-ex strips the local VLAN');
  });

  it('vm2 -> the outside host by SNAT on network1: compute2 br-int -> qr-, qr- -> br-tun (DVR MAC) -> network1 br-tun -> br-int -> sg-, qg- -> br-ex', async () => {
    // vm1 has the scenario's floating IP, so its packets to the outside leave through the fip
    // namespace; vm2 (network 2, compute2, D2) has none: its packets take section 4.1's path.
    const { vm2, pingOk, cloud, ids } = s!;
    const outside = cloud.topology.outside.host;
    const eg = cloud.topology.external.gatewayMac;
    await pingOk({ host: 'compute2', ns: 'vm2' }, outside, 2);
    // NORMAL on compute2's br-int forwards to TN (the SNAT port's MAC) only once it has seen a
    // frame from it. The real sg- sends IPv6 router solicitations once it is up (multicast,
    // flooded to every host of the network), and nothing else from TN crosses compute2's
    // NORMAL (frames to vm2 take table 60's direct DVR output). The emulator sends no such
    // frames, and the L3 agent's gratuitous ARP from the new sg- went out before compute2 had
    // a port on that network: replay that announcement, so that both sides' MAC tables agree
    // before the traces.
    const emuSnatNs = `snat-${emu!.ids.router.id}`;
    const sgIp = emf.sg2.fixed_ips[0].ip_address as string;
    emu!.cloud.world.inject({ host: 'network1', ns: emuSnatNs, dev: emf.dev('sg- of network 2') }, { eth: { src: emf.sg2.mac_address, dst: 'ff:ff:ff:ff:ff:ff', type: ETH_TYPE_ARP }, arp: { op: 1, sha: emf.sg2.mac_address, spa: sgIp, tha: '00:00:00:00:00:00', tpa: sgIp } });
    const rec = emulatedEcho({ host: 'compute2', ns: 'vm2' }, outside);
    const vni = ids.net2['provider:segmentation_id'] as number;
    const emuVm2 = emu!.vm2.fixed_ip;
    const req = (src: string) => `icmp,nw_src=${src},nw_dst=${outside},icmp_type=8`;
    const c2 = tunnelPortName('vxlan', s!.cloud.nodes.get('compute2')!.tunnelIp);
    const legs: Array<[string, Leg, Leg]> = [
      [
        'compute2: qvo of vm2 -> br-int -> qr- of network 2',
        await realLeg('compute2', 'br-int', `in_port=${real.dev('qvo of vm2')},dl_src=${vm2.mac},dl_dst=${real.qr2.mac_address},${req(vm2.fixed_ip)}`),
        emulatedLeg(rec, 'compute2', emf.dev('qvo of vm2'), { src: emuVm2, dst: outside }, emf.role),
      ],
      [
        "compute2: qr- of network 2 (to the SNAT port's MAC) -> br-int -> br-tun -> the tunnel to network1",
        await realLeg('compute2', 'br-int', `in_port=${real.dev('qr- of network 2')},dl_src=${real.qr2.mac_address},dl_dst=${real.sg2.mac_address},${req(vm2.fixed_ip)}`),
        emulatedLeg(rec, 'compute2', emf.dev('qr- of network 2'), { src: emuVm2, dst: outside }, emf.role),
      ],
      [
        'network1: the tunnel from compute2 -> br-tun -> br-int -> sg- of network 2 (the snat namespace)',
        await realLeg('network1', 'br-tun', `in_port=${c2},tun_id=0x${vni.toString(16)},tun_src=${s!.cloud.nodes.get('compute2')!.tunnelIp},tun_dst=${s!.cloud.nodes.get('network1')!.tunnelIp},dl_src=${real.d2},dl_dst=${real.sg2.mac_address},${req(vm2.fixed_ip)}`),
        emulatedLeg(rec, 'network1', c2, { src: emuVm2, dst: outside }, emf.role),
      ],
      [
        'network1, SNATed to TR: qg- -> br-int -> br-ex -> eth2',
        await realLeg('network1', 'br-int', `in_port=${real.dev('qg-')},dl_src=${real.qg.mac_address},dl_dst=${eg},${req(real.tr)}`),
        emulatedLeg(rec, 'network1', emf.dev('qg-'), { src: emf.tr, dst: outside }, emf.role),
      ],
    ];
    for (const [what, r, e] of legs) sameLeg(what, r, e);
    const n1 = tunnelPortName('vxlan', s!.cloud.nodes.get('network1')!.tunnelIp);
    assert.deepEqual(legs.map(([, r]) => r.outputs), [['qr- of network 2'], [n1], ['sg- of network 2'], ['eth2']]);
    // compute2's br-tun table 1 (DVR_PROCESS): the router's MAC TG2 becomes D2 (both sides).
    assert.match(legs[1][1].text, new RegExp(` 1\\. dl_vlan=\\d+,dl_src=${real.qr2.mac_address}.*\\n\\s+set_field:${real.d2}->eth_src`), 'real: compute2 br-tun sets the source MAC to D2');
    assert.ok(legs[1][2].steps.some((x) => x.bridge === 'br-tun' && x.before.eth.src === emf.qr2.mac_address && x.after?.eth.src === emf.d2), 'emulated: compute2 br-tun sets the source MAC to D2');
    assert.match(legs[1][1].text, new RegExp(`vxlan\\(flags=0x8000000,vni=0x${vni.toString(16)}\\)`), "real: network 2's VNI on the wire");
    // network1's br-int (DVR_TO_SRC_MAC): D2 becomes TG2 again before sg-.
    assert.match(legs[2][1].text, new RegExp(`set_field:${real.qr2.mac_address}->eth_src`), 'real: network1 br-int sets the source MAC back to TG2');
    assert.ok(legs[2][2].steps.some((x) => x.bridge === 'br-int' && x.before.eth.src === emf.d2 && x.after?.eth.src === emf.qr2.mac_address), 'emulated: network1 br-int sets the source MAC back to TG2');
  });

  it("the iptables rules the emulated traces name count the real pings' packets (NAT in qrouter/snat, the ports' firewall chains)", async () => {
    const { cloud, vm1, vm2, ids, dataplane } = s!;
    const outside = cloud.topology.outside.host;
    const translate = translator([
      [emu!.ids.router.id, ids.router.id],
      [emu!.ids.ext.id, ids.ext.id],
      [emu!.vm1.port_id, vm1.port_id],
      [emu!.vm2.port_id, vm2.port_id],
      [emf.sgId, real.sgId],
      [emu!.vm1.mac, vm1.mac],
      [emu!.vm2.mac, vm2.mac],
      [emu!.vm1.fixed_ip, vm1.fixed_ip],
      [emu!.vm2.fixed_ip, vm2.fixed_ip],
      [emf.fip, real.fip],
      [emf.tr, real.tr],
      ...(['qr1', 'qr2', 'sg2', 'qg', 'fg'] as const).map((k): [string, string] => [emf[k].id, real[k].id]),
    ]);
    const flows: Array<{ name: string; from: Endpoint; emuDst: string; dst: string }> = [
      { name: 'east-west', from: { host: 'compute1', ns: 'vm1' }, emuDst: emu!.vm2.fixed_ip, dst: vm2.fixed_ip },
      { name: 'floating IP', from: { host: 'internet' }, emuDst: emf.fip, dst: real.fip },
      { name: 'SNAT', from: { host: 'compute2', ns: 'vm2' }, emuDst: outside, dst: outside },
    ];
    let icmpId = 100;
    for (const f of flows) {
      // Emulated: the first packet of a new ICMP "connection" (a fresh id, as each real ping
      // process has), so that the nat table's rules are walked, not only conntrack.
      emu!.cloud.world.send(f.from, { proto: 'icmp', dst: f.emuDst, id: icmpId++ });
      const rec = emu!.cloud.world.send(f.from, { proto: 'icmp', dst: f.emuDst, id: icmpId++ });
      assert.ok(rec.delivered.some((d) => d.host === f.from.host && (d.ns ?? '') === (f.from.ns ?? '') && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0), `emulated ${f.name}: the echo is answered`);
      // The rules: those of the Neutron namespaces, and of the hosts' root namespaces where the
      // hybrid firewall sees bridged packets. (The emulator models the kernel datapath, whose
      // VXLAN packets cross the root namespace's OUTPUT/INPUT; the userspace datapath's native
      // tunnels never reach the kernel's netfilter, so those walks are not compared.)
      const named = new Map<string, { host: string; ns: string; table: IptablesTable; chain: string; index: number; rule: string; chainRules: string[] }>();
      for (const st of rec.steps) {
        if (st.kind !== 'netfilter') continue;
        const neutronNs = /^(qrouter|snat|fip)-/.test(st.ns ?? '');
        if (!neutronNs && !(st.ns === undefined && st.action.includes('(bridged)'))) continue;
        for (const d of st.detail as NfStep[]) {
          if (d.table === 'conntrack' || !d.rule.startsWith('-A ')) continue;
          const chain = d.rule.split(' ')[1];
          const list = emu!.cloud.world.host(st.host).ns(st.ns).netfilter!.rules(d.table, chain).map((x) => x.rule);
          const index = list.indexOf(d.rule);
          assert.ok(index >= 0, `emulated: ${d.rule} in ${st.host}/${st.ns ?? ''} ${d.table}`);
          named.set(`${st.host}|${st.ns ?? ''}|${d.table}|${chain}|${index}`, { host: st.host, ns: st.ns ?? ROOT_NS, table: d.table, chain, index, rule: d.rule, chainRules: list.map(translate) });
        }
      }
      const rules = [...named.values()];
      if (f.name !== 'east-west') assert.ok(rules.some((r) => / -j (SNAT|DNAT) /.test(r.rule)), `emulated ${f.name}: a NAT rule decides\n${rules.map((r) => r.rule).join('\n')}`);
      assert.ok(rules.some((r) => r.ns === ROOT_NS && /^-A neutron-openvswi-[io]/.test(r.rule)), `emulated ${f.name}: an instance port's firewall chain`);

      // The same rules on the linux hosts: the real state's text holds each, at the same place of its chain.
      const states = new Map(await Promise.all([...new Set(rules.map((r) => r.host))].map(async (h) => [h, await cloud.nodes.get(h)!.composer.current()] as const)));
      const where = await Promise.all(
        rules.map(async (r) => {
          const ns = translate(r.ns);
          const state = states.get(r.host)!;
          const text = state.namespaces[ns]?.iptables[r.table];
          assert.ok(text, `real: ${r.table} table in ${r.host}/${ns}`);
          const chain = translate(r.chain);
          const realRules = chainRules(text).get(chain) ?? [];
          const index = realRules.indexOf(translate(r.rule));
          assert.ok(index >= 0, `real: ${translate(r.rule)} in ${r.host}/${ns} ${r.table}\n${realRules.join('\n')}`);
          return { ...r, chain, index, emuIndex: r.index, realRules, netns: ns === ROOT_NS ? dataplane.machine.hostNetns(r.host) : dataplane.netnsName(r.host, ns) };
        }),
      );
      const counters = async () => new Map(await Promise.all([...new Set(where.map((w) => `${w.netns} ${w.table}`))].map(async (k) => [k, await ruleCounters(k.split(' ')[0], k.split(' ')[1] as IptablesTable)] as const)));
      const before = await counters();
      const r = await dataplane.ping(f.from, f.dst, 2);
      assert.equal(r.received, r.sent, `real ${f.name}: ${r.summary}`);
      const after = await counters();
      const rose = (w: (typeof where)[number], i: number) => {
        const k = `${w.netns} ${w.table}`;
        return (after.get(k)!.get(w.chain)?.[i] ?? 0) > (before.get(k)!.get(w.chain)?.[i] ?? 0);
      };
      const target = (rule: string) => / -j (\S+)/.exec(rule)?.[1];
      const still = where.filter((w) => {
        if (rose(w, w.index)) return false;
        // A port chain orders its groups' rules by rule id, and the two clouds' ids differ: where
        // one packet matches several of them (vm1 -> vm2: the default group's remote-group rule
        // and the scenario's ICMP rule), each side decides by its own first one. The named rule
        // is then answered by an earlier real rule with the same target that counted, one the
        // emulated chain holds after the named rule.
        return !w.realRules.slice(0, w.index).some((x, i) => target(x) === target(w.rule) && rose(w, i) && w.chainRules.indexOf(x) > w.emuIndex);
      });
      assert.deepEqual(still.map((w) => `${w.host}/${w.ns} ${w.table}: ${translate(w.rule)}`), [], `real ${f.name}: every rule the emulated trace names counted packets (${where.length} rules)`);
    }
  });
});
