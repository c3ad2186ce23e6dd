// The data paths on the real linux dataplane (issue 7, build point 5): the scenario's hosts
// network1, compute1, compute2 as namespaces with their own Open vSwitch (userspace
// datapath), as src/cloud/linux-testing.ts sets them up, vm1 on compute1 (demo-net) and
// vm2 on compute2 (demo-net2).
//   npm run bench:linux -- [--seconds 5] [--runs 3] [--pings 100]      (as root)
// Measures ping RTT and iperf3 TCP throughput (the median of --runs runs) east-west
// (vm1 -> vm2) through the distributed router, and outside host -> vm1's floating IP; then
// moves the same two networks to a centralized router (distributed: false, routed in
// network1's qrouter-) and measures the same. During the distributed runs tcpdump listens on every NIC of network1:
// how many IP packets of the measured flows it saw is `network_node_packets_seen` (goal 0).
// During the centralized runs network1's NIC counters show it carried them (the control).
// Prints phases as it goes; the LAST line is one JSON object.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { client, type As } from '../src/api/testing.js';
import { linuxDataplaneUnavailable } from '../src/cloud/linux-dataplane.js';
import { startLinuxScenario, type LinuxScenario } from '../src/cloud/linux-testing.js';
import { run } from '../src/dataplane/linux/exec.js';

const USAGE = 'usage: npm run bench:linux -- [--seconds 5] [--runs 3] [--pings 100]   (root; needs iperf3 and tcpdump)';
const NICS = ['eth0', 'eth1', 'eth2', 'eth3']; // management, tunnel, external, vlan
const IPERF_PORT = 5201;
const demo: As = { project: 'demo' };

function parse() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { seconds: { type: 'string', default: '5' }, runs: { type: 'string', default: '3' }, pings: { type: 'string', default: '100' } },
    strict: true,
  });
  const num = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${v}'\n${USAGE}`);
    return n;
  };
  return { seconds: num('--seconds', values.seconds), runs: num('--runs', values.runs), pings: num('--pings', values.pings) };
}

const t0 = performance.now();
const log = (msg: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A long-running command in a namespace, resolved once `ready` appears in its output. */
function startIn(netns: string, argv: string[], ready: RegExp): Promise<{ child: ChildProcess; exited: Promise<void> }> {
  const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${argv[0]} in ${netns} not ready after 10 s: ${out}`)), 10_000);
    const seen = (b: Buffer) => {
      out += b.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ child, exited });
      }
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`${argv[0]} in ${netns} exited (${code}) before it was ready: ${out}`));
    });
  });
}

/** `ping` RTT average in ms over `count` echoes (after a warm-up ping), and the loss. */
async function pingRtt(netns: string, dst: string, count: number): Promise<{ rtt_ms: number; lost: number }> {
  await run(['ip', 'netns', 'exec', netns, 'ping', '-n', '-q', '-c', '3', '-i', '0.2', '-W', '1', dst], { okCodes: [0, 1], timeoutMs: 20_000 });
  const r = await run(['ip', 'netns', 'exec', netns, 'ping', '-n', '-q', '-c', String(count), '-i', '0.05', '-W', '1', dst], { okCodes: [0, 1], timeoutMs: 60_000 + count * 100 });
  const rtt = /= [\d.]+\/([\d.]+)\/[\d.]+\/[\d.]+ ms/.exec(r.stdout);
  const got = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  if (!rtt || !got) throw new Error(`ping ${dst} from ${netns}: ${r.stdout.trim().split('\n').pop()}`);
  return { rtt_ms: Number(rtt[1]), lost: Number(got[1]) - Number(got[2]) };
}

/** iperf3 TCP from `from` to `dst` (server in `serverNs`), Mbit/s as the receiver counted them. */
async function iperf(serverNs: string, from: string, dst: string, seconds: number): Promise<{ mbps: number; retransmits: number }> {
  const server = await startIn(serverNs, ['iperf3', '-s', '-1', '--forceflush', '-p', String(IPERF_PORT)], /Server listening/);
  try {
    // -O 1: the first second (slow start, ARP, learnt flows) is not counted.
    const r = await run(['ip', 'netns', 'exec', from, 'iperf3', '-c', dst, '-p', String(IPERF_PORT), '-t', String(seconds), '-O', '1', '-J'], { timeoutMs: (seconds + 30) * 1000 });
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits?: number } } };
    return { mbps: +(j.end.sum_received.bits_per_second / 1e6).toFixed(1), retransmits: j.end.sum_sent.retransmits ?? 0 };
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
}

/** The median of `runs` iperf3 runs (the machine is shared: one run can catch a busy moment). */
async function iperfMedian(serverNs: string, from: string, dst: string, seconds: number, runs: number): Promise<{ mbps: number; retransmits: number; all: number[] }> {
  const got: Array<{ mbps: number; retransmits: number }> = [];
  for (let k = 0; k < runs; k++) got.push(await iperf(serverNs, from, dst, seconds));
  const sorted = [...got].sort((a, b) => a.mbps - b.mbps);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)], all: got.map((g) => g.mbps) };
}

/** tcpdump on each of network1's NICs, writing pcaps; `stop()` says how many packets of the flows it saw. */
async function captureNetwork1(netns: string, dir: string) {
  const procs = await Promise.all(
    NICS.map(async (nic) => {
      const file = join(dir, `network1-${nic}.pcap`);
      // -U: each packet written as it comes, so nothing is lost in a buffer when stopped.
      const p = await startIn(netns, ['tcpdump', '-i', nic, '-n', '-U', '-s', '128', '-w', file], /listening on/);
      return { nic, file, ...p };
    }),
  );
  return {
    /** Per NIC: every frame captured, and the IP packets to or from one of `addresses` (tcpdump decodes the VXLAN inner frame too). */
    async stop(addresses: string[]): Promise<Record<string, { frames: number; flow: number }>> {
      for (const p of procs) p.child.kill('SIGINT');
      await Promise.all(procs.map((p) => p.exited));
      const out: Record<string, { frames: number; flow: number }> = {};
      const ip = new RegExp(`\\bIP (${addresses.map((a) => a.replace(/\./g, '\\.')).join('|')})[.: >]|> (${addresses.map((a) => a.replace(/\./g, '\\.')).join('|')})[.:]`);
      for (const p of procs) {
        const text = existsSync(p.file) ? (await run(['tcpdump', '-r', p.file, '-n', '-tt'], { timeoutMs: 60_000 })).stdout : '';
        const lines = text.split('\n').filter((l) => l.trim());
        out[p.nic] = { frames: lines.length, flow: lines.filter((l) => ip.test(l)).length };
      }
      return out;
    },
  };
}

/** network1's NIC counters (rx + tx packets). */
async function nicPackets(netns: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const nic of NICS) {
    const j = JSON.parse((await run(['ip', '-n', netns, '-j', '-s', 'link', 'show', 'dev', nic])).stdout) as Array<{ stats64: { rx: { packets: number }; tx: { packets: number } } }>;
    out[nic] = j[0].stats64.rx.packets + j[0].stats64.tx.packets;
  }
  return out;
}
const delta = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(a).map((k) => [k, b[k] - a[k]]));
const total = (r: Record<string, number>) => Object.values(r).reduce((x, y) => x + y, 0);

async function main(): Promise<number> {
  const opts = parse();
  // Every host shares this machine's cores: what else runs matters, so the figures say it.
  const load0 = loadavg()[0];
  const why = linuxDataplaneUnavailable();
  if (why) throw new Error(`${why}\n${USAGE}`);
  for (const tool of ['iperf3', 'tcpdump']) if (!['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, tool)))) throw new Error(`${tool} is not installed (apt-get install ${tool})\n${USAGE}`);
  const tag = `bl${process.pid % 100000}-`;
  let s: LinuxScenario | undefined;
  let made: { dir: string; dataplane: { down(): Promise<void> } } | undefined;
  const pcaps = mkdtempSync(join(tmpdir(), 'dvrnet-bench-linux-pcap-'));
  let cleaning: Promise<void> | undefined;
  // Everything the run made goes, however it ends: namespaces, OVS daemons, state.
  const cleanup = () =>
    (cleaning ??= (async () => {
      try {
        await s?.cloud.close();
      } finally {
        await made?.dataplane.down();
        if (made?.dir) rmSync(made.dir, { recursive: true, force: true });
        rmSync(pcaps, { recursive: true, force: true });
      }
    })());
  const onSignal = () => {
    log('interrupted: cleaning up');
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    log('starting the scenario on the linux dataplane (network1, compute1, compute2, extrouter, internet)');
    s = await startLinuxScenario(tag, (m) => (made = m));
    const { cloud, ids, vm1, vm2, dataplane } = s;
    const call = client(cloud.servers.api.url);
    const ok = async (p: Promise<{ status: number; body: any }>, status = 200) => {
      const r = await p;
      if (r.status !== status) throw new Error(`API answered ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body;
    };
    // The scenario's default group allows ICMP only: let iperf3 in.
    const sg = (await ok(call('GET', '/v2.0/security-groups?name=default', undefined, demo))).security_groups[0];
    await ok(call('POST', '/v2.0/security-group-rules', { security_group_rule: { security_group_id: sg.id, direction: 'ingress', protocol: 'tcp', port_range_min: IPERF_PORT, port_range_max: IPERF_PORT, remote_ip_prefix: '0.0.0.0/0' } }, demo), 201);
    await cloud.settle();
    const vm1ns = dataplane.vmNetns(vm1);
    const vm2ns = dataplane.vmNetns(vm2);
    const internet = `${tag}internet`;
    const n1 = `${tag}network1`;
    const fipAddr: string = ids.fip.floating_ip_address;
    log(`vm1 ${vm1.fixed_ip} on ${vm1.host}, vm2 ${vm2.fixed_ip} on ${vm2.host}, floating IP ${fipAddr}; DVR router ${ids.router.id}`);
    // Leases, ARP caches, MAC learning and learnt flows along the paths, before anything counts.
    await s.pingOk({ host: 'compute1', ns: 'vm1' }, vm2.fixed_ip);
    await s.pingOk({ host: 'compute2', ns: 'vm2' }, vm1.fixed_ip);
    await s.pingOk({ host: 'internet' }, fipAddr);

    // ---- Distributed: east-west and floating IP, with tcpdump on network1.
    const cap = await captureNetwork1(n1, pcaps);
    const ewDvrPing = await pingRtt(vm1ns, vm2.fixed_ip, opts.pings);
    const ewDvr = await iperfMedian(vm2ns, vm1ns, vm2.fixed_ip, opts.seconds, opts.runs);
    log(`east-west, distributed: ${ewDvr.mbps} Mbit/s (runs ${ewDvr.all.join(', ')}; ${ewDvr.retransmits} retransmits), RTT ${ewDvrPing.rtt_ms} ms (${ewDvrPing.lost} lost)`);
    const fipPing = await pingRtt(internet, fipAddr, opts.pings);
    const fip = await iperfMedian(vm1ns, internet, fipAddr, opts.seconds, opts.runs);
    log(`outside -> floating IP, distributed: ${fip.mbps} Mbit/s (runs ${fip.all.join(', ')}; ${fip.retransmits} retransmits), RTT ${fipPing.rtt_ms} ms (${fipPing.lost} lost)`);
    const seen = await cap.stop([vm1.fixed_ip, vm2.fixed_ip, fipAddr, cloud.topology.outside.host]);
    const network_node_packets_seen = Object.values(seen).reduce((n, x) => n + x.flow, 0);
    const network_node_frames_captured = Object.values(seen).reduce((n, x) => n + x.frames, 0);
    log(`network1 during the distributed runs (tcpdump): ${network_node_packets_seen} packets of the flows, ${network_node_frames_captured} frames in all (${NICS.map((n) => `${n} ${seen[n].flow}/${seen[n].frames}`).join(', ')})`);

    // ---- Centralized: the same networks and instances behind a router routed on network1.
    const fipPort = ids.fip.port_id;
    await ok(call('PUT', `/v2.0/floatingips/${ids.fip.id}`, { floatingip: { port_id: null } }, demo));
    for (const sub of [ids.sub1, ids.sub2]) await ok(call('PUT', `/v2.0/routers/${ids.router.id}/remove_router_interface`, { subnet_id: sub.id }, demo));
    // Only an admin may ask for a centralized router while router_distributed = True.
    const central = (await ok(call('POST', '/v2.0/routers', { router: { name: 'central-router', tenant_id: 'demo', distributed: false, external_gateway_info: { network_id: ids.ext.id } } }), 201)).router;
    for (const sub of [ids.sub1, ids.sub2]) await ok(call('PUT', `/v2.0/routers/${central.id}/add_router_interface`, { subnet_id: sub.id }, demo));
    await ok(call('PUT', `/v2.0/floatingips/${ids.fip.id}`, { floatingip: { port_id: fipPort } }, demo));
    await cloud.settle();
    const hostOf = (await ok(call('GET', `/v2.0/routers/${central.id}/l3-agents`))).agents.map((a: any) => a.host);
    log(`centralized router ${central.id} on ${hostOf.join(', ')}; interfaces moved, floating IP re-associated`);
    // The gateway addresses and the floating IP stay, their MACs changed (the floating IP now
    // answers from network1's qg-). Neutron's agent announces them by gratuitous ARP; dvrnet's
    // agents do not, and the instances' and the external router's ARP caches would take a
    // few seconds of failed unicast probes to notice: start them afresh.
    for (const ns of [vm1ns, vm2ns, `${tag}extrouter`]) await run(['ip', '-n', ns, 'neigh', 'flush', 'all']);
    await s.pingOk({ host: 'compute1', ns: 'vm1' }, vm2.fixed_ip);
    await s.pingOk({ host: 'internet' }, fipAddr);

    const c0 = await nicPackets(n1);
    const ewCentralPing = await pingRtt(vm1ns, vm2.fixed_ip, opts.pings);
    const ewCentral = await iperfMedian(vm2ns, vm1ns, vm2.fixed_ip, opts.seconds, opts.runs);
    const c1 = await nicPackets(n1);
    log(`east-west, centralized: ${ewCentral.mbps} Mbit/s (runs ${ewCentral.all.join(', ')}; ${ewCentral.retransmits} retransmits), RTT ${ewCentralPing.rtt_ms} ms (${ewCentralPing.lost} lost); network1's NICs moved ${total(delta(c0, c1))} packets`);
    const fipCentralPing = await pingRtt(internet, fipAddr, opts.pings);
    const fipCentral = await iperfMedian(vm1ns, internet, fipAddr, opts.seconds, opts.runs);
    const c2 = await nicPackets(n1);
    log(`outside -> floating IP, centralized: ${fipCentral.mbps} Mbit/s (runs ${fipCentral.all.join(', ')}; ${fipCentral.retransmits} retransmits), RTT ${fipCentralPing.rtt_ms} ms (${fipCentralPing.lost} lost); network1's NICs moved ${total(delta(c1, c2))} packets`);

    const result = {
      seconds: opts.seconds,
      runs: opts.runs,
      pings: opts.pings,
      ew_dvr_mbps: ewDvr.mbps,
      ew_central_mbps: ewCentral.mbps,
      ew_dvr_vs_central: +(ewDvr.mbps / ewCentral.mbps).toFixed(2),
      fip_mbps: fip.mbps,
      fip_central_mbps: fipCentral.mbps,
      ew_dvr_rtt_ms: ewDvrPing.rtt_ms,
      ew_central_rtt_ms: ewCentralPing.rtt_ms,
      fip_rtt_ms: fipPing.rtt_ms,
      fip_central_rtt_ms: fipCentralPing.rtt_ms,
      network_node_packets_seen,
      network_node_frames_captured,
      network_node_packets_central: total(delta(c0, c2)),
      load_avg_1m: [+load0.toFixed(2), +loadavg()[0].toFixed(2)],
    };
    console.log(JSON.stringify(result));
    return network_node_packets_seen === 0 ? 0 : 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench:linux: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
