// Convergence benchmark (issue 6 point 9): one network node and N compute hosts in the
// all-in-one cloud (real server, real agents, emulated hosts), ten instances per host spread
// over ten VXLAN networks on one distributed router with its gateway on ext-net, and a
// floating IP on one instance in ten.
//   npm run bench:convergence -- --hosts N [--seed 1] [--timeout 1800] [--pings 20] [--one-more 5] [--rpc-timeout S]
// Measures the time from the first API call until every instance port is ACTIVE, the agents
// are idle and sampled pings pass (east-west pairs, floating IPs from the internet host,
// SNAT to the internet host), the peak RSS, and then for one more instance (added
// --one-more times, one after the other; the median is reported): the time until it is
// programmed on every host that needs it and how many hosts got any update for it.
// Driven through the in-process services (plugin and compute service), in bulk where the
// API allows, not through HTTP. Prints phases as it goes; the LAST line is one JSON object.
// --rpc-timeout S runs the agents with `[DEFAULT] rpc_response_timeout = S` (etc/ as shipped
// otherwise: 60), what Neutron's agents advise when a server is too busy to answer in time.

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startCloud, type Cloud } from '../src/cloud/cloud.js';
import { ping } from '../src/dataplane/emulated/ping.js';
import { scenarioTopology, type Topology } from '../src/cloud/topology.js';
import type { Instance } from '../src/compute/compute.js';
import { itemsOf } from '../src/host/chunks.js';
import type { HostState } from '../src/host/state.js';
import { adminContext, memberContext } from '../src/server/context.js';
import type { WireMessage } from '../src/rpc/transport.js';

const USAGE = 'usage: npm run bench:convergence -- --hosts N [--seed 1] [--timeout 1800] [--pings 20] [--one-more 5] [--rpc-timeout S]';
const NETWORKS = 10;
const PER_HOST = 10;
const PROJECT = 'bench';

function parse() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      hosts: { type: 'string', default: '10' },
      seed: { type: 'string', default: '1' },
      timeout: { type: 'string', default: '1800' },
      pings: { type: 'string', default: '20' },
      'one-more': { type: 'string', default: '5' },
      'rpc-timeout': { type: 'string' },
    },
    strict: true,
  });
  const num = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
  return {
    hosts: num('--hosts', values.hosts),
    seed: num('--seed', values.seed),
    timeout: num('--timeout', values.timeout),
    pings: num('--pings', values.pings),
    oneMore: num('--one-more', values['one-more']),
    rpcTimeout: values['rpc-timeout'] === undefined ? undefined : num('--rpc-timeout', values['rpc-timeout']),
  };
}

/** A copy of etc/ whose neutron.conf (read by every agent) sets rpc_response_timeout. */
function etcWithRpcTimeout(dir: string, seconds: number): string {
  const etc = join(dir, 'etc');
  cpSync('etc', etc, { recursive: true });
  const conf = join(etc, 'neutron.conf');
  const text = readFileSync(conf, 'utf8');
  if (!/^\[DEFAULT\]$/m.test(text) || /^rpc_response_timeout\s*=/m.test(text)) throw new Error(`${conf}: expected a [DEFAULT] section without rpc_response_timeout`);
  writeFileSync(conf, text.replace(/^\[DEFAULT\]$/m, `[DEFAULT]\nrpc_response_timeout = ${seconds}`));
  return etc;
}

/** A small deterministic generator (mulberry32), so runs sample the same pairs. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A cloud of N computes: /16 management and tunnel networks so 1000 hosts fit, and a /16 external network for N fg ports and N floating IPs. */
function benchTopology(computes: number): Topology {
  return {
    ...scenarioTopology(computes),
    management: '10.2.0.0/16',
    tunnel: '10.1.0.0/16',
    external: { cidr: '100.64.0.0/16', gateway: '100.64.0.1', gatewayMac: 'fa:16:3e:ee:00:01' },
  };
}

let peakRss = 0;
// `rss()` alone: the full `memoryUsage()` also walks the heap spaces, ten times a second.
const sampleRss = () => (peakRss = Math.max(peakRss, process.memoryUsage.rss()));

const t0 = performance.now();
const log = (msg: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(7)} s] ${msg}`);

/** Is the instance's MAC (or address) programmed on this host: an l2pop flow on br-tun, or a permanent neighbour in a qrouter namespace. */
function programmed(s: HostState, mac: string, ip: string): { fdb: boolean; arp: boolean } {
  const tun = s.ovs.bridges['br-tun'];
  const fdb = !!tun && itemsOf(tun.flows).some((f) => f.match.includes(mac) || f.actions.includes(mac));
  let arp = false;
  for (const ns of Object.values(s.namespaces)) if (ns.name.startsWith('qrouter-') && itemsOf(ns.neighbours).some((n) => n.ip === ip && n.lladdr === mac)) arp = true;
  return { fdb, arp };
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (e) {
    console.error(`bench:convergence: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const N = args.hosts;
  const rand = rng(args.seed);
  const timer = setInterval(sampleRss, 100).unref();
  const deadline = Date.now() + args.timeout * 1000;
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-bench-conv-'));
  let cloud: Cloud | undefined;
  try {
    const tStart = performance.now();
    const etcDir = args.rpcTimeout === undefined ? undefined : etcWithRpcTimeout(dir, args.rpcTimeout);
    cloud = await startCloud({ stateDir: dir, etcDir, topology: benchTopology(N), apiPort: 0, identityPort: 0, computePort: 0, auth: 'noauth', resyncInterval: 0 });
    sampleRss();
    log(`cloud up: ${cloud.nodes.size} hosts with their agents (${((performance.now() - tStart) / 1000).toFixed(1)} s, not counted)`);
    const p = cloud.servers.api.plugin;
    const admin = adminContext();
    const member = memberContext(PROJECT);

    // ---- The first API call: from here on the clock runs.
    const tApi = performance.now();
    const cpu0 = process.cpuUsage();
    const ext = (await p.networks.createBulk(admin, [{ project_id: 'admin', name: 'ext-net', 'router:external': true, 'provider:physical_network': 'external', 'provider:network_type': 'flat' }]))[0];
    await p.subnets.createBulk(admin, [
      { project_id: 'admin', network_id: ext.id, ip_version: 4, cidr: '100.64.0.0/16', gateway_ip: '100.64.0.1', enable_dhcp: false, allocation_pools: [{ start: '100.64.1.1', end: '100.64.254.254' }] },
    ]);
    const nets = await p.networks.createBulk(
      admin,
      Array.from({ length: NETWORKS }, (_, k) => ({ project_id: PROJECT, name: `net${k}`, 'provider:network_type': 'vxlan' as const })),
    );
    const subnets = await p.subnets.createBulk(
      member,
      nets.map((n, k) => ({ project_id: PROJECT, network_id: n.id, ip_version: 4 as const, cidr: `172.${16 + k}.0.0/16`, gateway_ip: `172.${16 + k}.0.1` })),
    );
    const router = (await p.routers.createBulk(member, [{ project_id: PROJECT, name: 'bench-router', distributed: true }]))[0];
    for (const s of subnets) await p.routers.addInterface(member, router.id, { subnet_id: s.id });
    await p.routers.update(member, router.id, { external_gateway_info: { network_id: ext.id } });
    // Pings from the internet reach the floating IPs (the default group lets only members in).
    const sg = (await p.securityGroups.list(member, { filters: { name: ['default'], project_id: [PROJECT] }, sort: [] }))[0];
    await p.securityGroups.createRule(member, { project_id: PROJECT, security_group_id: sg.id, direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp', remote_ip_prefix: '0.0.0.0/0' });
    log(`networks, subnets, router, gateway, rule: ${((performance.now() - tApi) / 1000).toFixed(1)} s`);

    // Ten instances per host, one on each network, booted in bulk per batch of hosts.
    const computes = [...cloud.nodes.values()].filter((n) => n.spec.roles.includes('compute')).map((n) => n.spec.name);
    const instances: Instance[] = [];
    const BATCH = Math.max(1, Math.floor(500 / PER_HOST));
    for (let h = 0; h < computes.length; h += BATCH) {
      const reqs = computes.slice(h, h + BATCH).flatMap((host) => nets.map((n, k) => ({ name: `${host}-vm${k}`, network_id: n.id, host })));
      instances.push(...(await cloud.compute.bootMany(admin.isAdmin ? { ...member, isAdmin: true, roles: ['member', 'admin'] } : member, reqs)));
      sampleRss();
    }
    log(`${instances.length} instances booted: ${((performance.now() - tApi) / 1000).toFixed(1)} s`);
    // A floating IP on one instance in ten (each host's first).
    const withFip = instances.filter((_, k) => k % PER_HOST === 0);
    const fips: Awaited<ReturnType<typeof p.floatingIps.createBulk>> = [];
    for (let k = 0; k < withFip.length; k += 500)
      fips.push(...(await p.floatingIps.createBulk(member, withFip.slice(k, k + 500).map((i) => ({ project_id: PROJECT, floating_network_id: ext.id, port_id: i.port_id })))));
    log(`${fips.length} floating IPs: ${((performance.now() - tApi) / 1000).toFixed(1)} s`);

    // Until every instance port is ACTIVE and the agents are idle.
    const k = p.db.kysely;
    const notActive = async () =>
      Number((await k.selectFrom('ports').select((eb) => eb.fn.countAll().as('n')).where('device_owner', 'like', 'compute:%').where('status', '!=', 'ACTIVE').executeTakeFirstOrThrow()).n);
    for (;;) {
      await cloud.settle();
      sampleRss();
      const left = await notActive();
      if (left === 0) break;
      if (Date.now() > deadline) throw new Error(`timeout: ${left} instance ports still not ACTIVE`);
      log(`${left} instance ports not ACTIVE yet`);
    }
    const tActive = performance.now();
    log(`every instance port ACTIVE, agents idle: ${((tActive - tApi) / 1000).toFixed(1)} s`);

    // Sampled pings: the instances involved take their addresses by DHCP first.
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
    const pairs: Array<[Instance, Instance]> = [];
    while (pairs.length < args.pings) {
      const a = pick(instances);
      const b = pick(instances);
      if (a.host !== b.host && a.network_id !== b.network_id) pairs.push([a, b]);
      else if (N === 1 && a !== b) pairs.push([a, b]);
    }
    const fipSample = Array.from({ length: Math.min(5, fips.length) }, () => pick(fips));
    const snatSample = Array.from({ length: 5 }, () => pick(instances));
    const leased = new Set<Instance>();
    const byPort = new Map(instances.map((i) => [i.port_id, i]));
    const need = [...pairs.flat(), ...fipSample.map((f) => byPort.get(f.port_id!)!), ...snatSample];
    for (const i of need) {
      if (leased.has(i)) continue;
      if (!cloud.compute.dhcp(i)) throw new Error(`${i.name} on ${i.host} got no DHCP lease`);
      leased.add(i);
    }
    const failures: string[] = [];
    const pass = (r: ReturnType<typeof ping>) => r.received >= r.sent - 1; // the first echo may wait for the underlay's ARP
    for (const [a, b] of pairs) {
      const r = ping(cloud.world, { host: a.host, ns: a.name }, b.fixed_ip, 3);
      if (!pass(r)) failures.push(`east-west ${a.name} -> ${b.name} (${b.fixed_ip}): ${r.summary}`);
    }
    for (const f of fipSample) {
      const r = ping(cloud.world, { host: 'internet' }, f.floating_ip_address, 3);
      if (!pass(r)) failures.push(`internet -> floating IP ${f.floating_ip_address}: ${r.summary}`);
    }
    for (const i of snatSample) {
      const r = ping(cloud.world, { host: i.host, ns: i.name }, cloud.topology.outside.host, 3);
      if (!pass(r)) failures.push(`SNAT ${i.name} -> ${cloud.topology.outside.host}: ${r.summary}`);
    }
    const tConverged = performance.now();
    sampleRss();
    const converge_s = (tConverged - tApi) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const converge_cpu_s = (cpu.user + cpu.system) / 1e6;
    log(`${leased.size} DHCP leases, ${pairs.length + fipSample.length + snatSample.length} pings, ${failures.length} failed: converged in ${converge_s.toFixed(1)} s`);
    for (const f of failures) console.log(`  FAILED ${f}`);

    // ---- One more instance on the largest cloud, several times one after the other (a
    // single add varies with what else the process is doing): who hears of it, how fast.
    // Whether each reached every host that needs it is read from the hosts after the last add:
    // reading every host back between adds made gigabytes of garbage the next add paid for.
    const nodes = [...cloud.nodes.values()];
    const runs: Array<{ ms: number; updated: number; cast: number; fanouts: number; needing: number; missing: number }> = [];
    const added: Array<{ extra: Instance; needing: Set<string>; run: (typeof runs)[number] }> = [];
    for (let i = 0; i < args.oneMore; i++) {
      const net = nets[i % nets.length];
      const appliedBefore = new Map(nodes.map((n) => [n.spec.name, n.composer.applied]));
      const castHosts = new Set<string>();
      let fanouts = 0;
      const stopWatch = (cloud.transport.server as unknown as { inject(r: { drop(m: WireMessage): boolean }): () => void }).inject({
        drop(m) {
          if (m.kind === 'cast') castHosts.add(m.topic.slice(m.topic.lastIndexOf('.') + 1));
          if (m.kind === 'fanout') fanouts++;
          return false;
        },
      });
      const target = computes[Math.floor(rand() * computes.length)];
      const tOne = performance.now();
      const [extra] = await cloud.compute.bootMany({ ...member, isAdmin: true, roles: ['member', 'admin'] }, [{ name: `one-more-${i + 1}`, network_id: net.id, host: target }]);
      for (;;) {
        await cloud.settle();
        const st = await k.selectFrom('ports').select('status').where('id', '=', extra.port_id).executeTakeFirstOrThrow();
        if (st.status === 'ACTIVE') break;
        if (Date.now() > deadline) throw new Error('timeout: the extra port never became ACTIVE');
      }
      const ms = performance.now() - tOne;
      stopWatch();
      const updated = nodes.filter((n) => n.composer.applied !== appliedBefore.get(n.spec.name)).map((n) => n.spec.name);
      // Which hosts had to learn of it: every host with a port on its network (all of them
      // here: the router's hosts too), plus the SNAT host. Check it is programmed there.
      const needing = new Set((await k.selectFrom('ports').select('binding_host_id').distinct().where('network_id', '=', net.id).where('binding_host_id', '!=', '').execute()).map((r) => r.binding_host_id));
      const snatHost = await p.dvr.snatHost(undefined, router.id);
      if (snatHost) needing.add(snatHost);
      log(`one more instance on ${target}: ${ms.toFixed(0)} ms; ${updated.length} hosts applied ops, ${castHosts.size} hosts got casts, ${fanouts} fanouts; ${needing.size} hosts need it`);
      const run = { ms, updated: updated.length, cast: castHosts.size, fanouts, needing: needing.size, missing: 0 };
      runs.push(run);
      added.push({ extra, needing, run });
    }
    const missing = added.map((): string[] => []);
    for (const n of nodes) {
      if (!added.some((a) => a.needing.has(n.spec.name) && a.extra.host !== n.spec.name)) continue;
      const state = await n.composer.current();
      added.forEach(({ extra, needing }, i) => {
        if (n.spec.name === extra.host || !needing.has(n.spec.name)) return;
        const got = programmed(state, extra.mac, extra.fixed_ip);
        if (!got.fdb || !got.arp) missing[i].push(`${n.spec.name}${got.fdb ? '' : ' (no FDB flow)'}${got.arp ? '' : ' (no ARP entry)'}`);
      });
    }
    added.forEach(({ extra, run }, i) => {
      run.missing = missing[i].length;
      log(`${extra.name} on ${extra.host}: missing on ${missing[i].length} of the ${run.needing} hosts that need it`);
      if (missing[i].length) console.log(`  NOT PROGRAMMED on ${missing[i].slice(0, 10).join(', ')}${missing[i].length > 10 ? ', ...' : ''}`);
    });
    sampleRss();
    const sortedMs = runs.map((r) => r.ms).sort((a, b) => a - b);
    const worst = <K extends keyof (typeof runs)[number]>(key: K) => Math.max(...runs.map((r) => r[key]));

    // Agent passes by kind (where the work went).
    const syncs: Record<string, number> = {};
    for (const n of nodes) for (const a of n.agents) syncs[a.binary] = (syncs[a.binary] ?? 0) + a.syncs;
    log(`agent passes: ${Object.entries(syncs).map(([b, c]) => `${b} ${c}`).join(', ')}`);

    const ports = Number((await k.selectFrom('ports').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const result = {
      hosts: N,
      computes: computes.length,
      instances: instances.length,
      ports,
      floating_ips: fips.length,
      active_s: +((tActive - tApi) / 1000).toFixed(2),
      converge_s: +converge_s.toFixed(2),
      // CPU time of this process over the same span (robust on a shared, busy machine).
      converge_cpu_s: +converge_cpu_s.toFixed(2),
      pings: pairs.length + fipSample.length + snatSample.length,
      ping_failures: failures.length,
      // The agents' first wait for a reply (etc/ as shipped: Neutron's default, 60 s).
      rpc_response_timeout_s: cloud.nodes.values().next().value?.agents[0]?.rpcResponseTimeout ?? null,
      peak_rss_mb: Math.round(peakRss / 2 ** 20),
      // The median of the adds; each add's figure below. Host counts: the largest of any add.
      one_port_ms: Math.round(sortedMs[Math.floor((sortedMs.length - 1) / 2)]),
      one_port_ms_runs: runs.map((r) => Math.round(r.ms)),
      hosts_updated_by_one_port: worst('updated'),
      hosts_cast_for_one_port: worst('cast'),
      fanouts_for_one_port: worst('fanouts'),
      hosts_needing_one_port: worst('needing'),
      one_port_missing_on: worst('missing'),
    };
    console.log(JSON.stringify(result));
    return failures.length || result.one_port_missing_on ? 1 : 0;
  } finally {
    clearInterval(timer);
    await cloud?.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench:convergence: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
