// The benchmark's phases (the same as ../shared/bench/reference-neutron.md, L2 part): every
// request is checked for its expected status, and the data for duplicates and leftovers.
import { readFileSync } from 'node:fs';
import type { BenchArgs } from './args.js';
import type { NeutronClient, Reply } from './neutron.js';
import { runPool } from './pool.js';
import { summarize, type PhaseStats } from './stats.js';

export interface PhaseResult extends PhaseStats {
  key: string;
  label: string;
}

export interface RunResult {
  phases: PhaseResult[];
  errors: string[];
}

/** The server's CPU time so far (ms), from /proc/<pid>/stat (utime + stime, in clock ticks of 10 ms). */
export function serverCpuMs(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

let serverPid: number | undefined;
let lastCpuMs: number | undefined;

/** Runs HTTP operations; each one's latency is the client's send-to-last-byte time. */
const timed = async (n: number, concurrency: number, op: (i: number) => Promise<Reply>) => {
  const c0 = serverCpuMs(serverPid);
  const r = await runPool(n, concurrency, op, (x) => x.ms);
  const c1 = serverCpuMs(serverPid);
  lastCpuMs = c0 !== undefined && c1 !== undefined ? c1 - c0 : undefined;
  return r;
};

/** Records what went wrong; errors never stop a run (cleanup must still happen). */
class Errors {
  readonly list: string[] = [];
  add(phase: string, msg: string) {
    this.list.push(`${phase}: ${msg}`);
  }
  /** True when the reply has the expected status and (for JSON replies) no error. */
  check(phase: string, what: string, r: Reply, expected: number): boolean {
    if (r.status === expected && !r.error) return true;
    const detail = r.error ?? r.text ?? '';
    this.add(phase, `${what}: expected ${expected}, got ${r.status || 'no response'} ${detail}`.trim());
    return false;
  }
}

export async function runOnce(client: NeutronClient, args: BenchArgs, tag: string): Promise<RunResult> {
  const errs = new Errors();
  const phases: PhaseResult[] = [];
  serverPid = args.serverPid;
  const record = (key: string, label: string, lat: number[], wallMs: number, concurrency: number, before: number) => {
    phases.push({ key, label, ...summarize(lat, wallMs, concurrency, errs.list.length - before), server_cpu_ms: lastCpuMs });
  };

  // 1. networks: create N at concurrency 1, then delete them.
  {
    const before = errs.list.length;
    const p = await timed(args.networks, 1, (i) =>
      client.post('/networks', { network: client.withProject({ name: `${tag}-net-${i}` }) }),
    );
    const ids = p.results.map((r, i) => (errs.check('network create', `network ${i}`, r, 201) ? r.body?.network?.id : undefined));
    record('net_create', 'network create', p.latencies, p.wallMs, 1, before);

    const live = ids.filter((id): id is string => typeof id === 'string');
    const before2 = errs.list.length;
    const d = await timed(live.length, 1, (i) => client.delete(`/networks/${live[i]}`));
    d.results.forEach((r, i) => errs.check('network delete', `network ${live[i]}`, r, 204));
    record('net_delete', 'network delete', d.latencies, d.wallMs, 1, before2);
  }

  // 2. one network with one /16 subnet.
  let netId: string | undefined;
  let subnetId: string | undefined;
  {
    const net = await client.post('/networks', { network: client.withProject({ name: `${tag}-ports` }) });
    if (errs.check('setup', 'network create', net, 201)) netId = net.body?.network?.id;
    if (!netId) return { phases, errors: errs.list };
    const before = errs.list.length;
    const s = await timed(1, 1, () =>
      client.post('/subnets', {
        subnet: client.withProject({ name: `${tag}-subnet`, network_id: netId, ip_version: 4, cidr: args.cidr }),
      }),
    );
    if (errs.check('subnet create', 'subnet', s.results[0], 201)) subnetId = s.results[0].body?.subnet?.id;
    record('subnet_create', `subnet create (${args.cidr})`, s.latencies, s.wallMs, 1, before);
  }

  // 3. ports: half at concurrency 1, half at the configured concurrency.
  const portIds: string[] = [];
  const ports: any[] = [];
  const createPorts = async (key: string, n: number, offset: number, concurrency: number) => {
    const before = errs.list.length;
    const p = await timed(n, concurrency, (i) =>
      client.post('/ports', { port: client.withProject({ network_id: netId, name: `${tag}-port-${offset + i}` }) }),
    );
    p.results.forEach((r, i) => {
      if (!errs.check(key, `port ${offset + i}`, r, 201)) return;
      const port = r.body?.port;
      if (typeof port?.id !== 'string') return errs.add(key, `port ${offset + i}: reply without port.id`);
      portIds.push(port.id);
      ports.push(port);
    });
    record(key, `port create`, p.latencies, p.wallMs, concurrency, before);
  };
  const half = Math.floor(args.ports / 2);
  await createPorts('port_create_c1', half, 0, 1);
  await createPorts(`port_create_c${args.concurrency}`, args.ports - half, half, args.concurrency);
  checkPorts(ports, subnetId, errs);

  // 4. listing with all ports present.
  {
    const before = errs.list.length;
    const l = await timed(args.lists, 1, () => client.get('/ports'));
    let present = 0;
    l.results.forEach((r, i) => {
      if (!errs.check('port list', `list ${i}`, r, 200)) return;
      present = Math.max(present, (r.body?.ports ?? []).length);
      const mine = (r.body?.ports ?? []).filter((p: any) => p.network_id === netId).length;
      if (mine !== portIds.length) errs.add('port list', `list ${i}: ${mine} of our ${portIds.length} ports listed`);
    });
    record('port_list', `list all ports (${present} present)`, l.latencies, l.wallMs, 1, before);

    const before2 = errs.list.length;
    const q = `/ports?network_id=${netId}&fields=id&fields=fixed_ips`;
    const f = await timed(args.lists, 1, () => client.get(q));
    f.results.forEach((r, i) => {
      if (!errs.check('port list filtered', `list ${i}`, r, 200)) return;
      const got: any[] = r.body?.ports ?? [];
      if (got.length !== portIds.length) errs.add('port list filtered', `list ${i}: ${got.length} ports, expected ${portIds.length}`);
      const extra = got.find((p) => Object.keys(p).some((k) => k !== 'id' && k !== 'fixed_ips'));
      if (extra) errs.add('port list filtered', `list ${i}: fields=id&fields=fixed_ips returned ${Object.keys(extra).join(',')}`);
    });
    record('port_list_filtered', 'list ports, network filter + fields', f.latencies, f.wallMs, 1, before2);
  }

  // 5. cleanup, measured: ports at the configured concurrency, then subnet and network.
  {
    const before = errs.list.length;
    const d = await timed(portIds.length, args.concurrency, (i) => client.delete(`/ports/${portIds[i]}`));
    d.results.forEach((r, i) => errs.check('port delete', `port ${portIds[i]}`, r, 204));
    record('port_delete', 'port delete', d.latencies, d.wallMs, args.concurrency, before);
  }
  if (subnetId) {
    const before = errs.list.length;
    const d = await timed(1, 1, () => client.delete(`/subnets/${subnetId}`));
    errs.check('subnet delete', 'subnet', d.results[0], 204);
    record('subnet_delete', 'subnet delete', d.latencies, d.wallMs, 1, before);
  }
  {
    const before = errs.list.length;
    const d = await timed(1, 1, () => client.delete(`/networks/${netId}`));
    errs.check('network delete', 'network', d.results[0], 204);
    record('net_delete_last', 'network delete (emptied)', d.latencies, d.wallMs, 1, before);
  }

  await checkNothingLeft(client, tag, netId, errs);
  return { phases, errors: errs.list };
}

/** Every port got one address on our subnet; no address and no MAC was handed out twice. */
function checkPorts(ports: any[], subnetId: string | undefined, errs: Errors) {
  const ips = new Map<string, string>();
  const macs = new Map<string, string>();
  for (const p of ports) {
    const fixed: any[] = p.fixed_ips ?? [];
    if (fixed.length !== 1) errs.add('port check', `port ${p.id} has ${fixed.length} fixed IPs, expected 1`);
    for (const f of fixed) {
      if (subnetId && f.subnet_id !== subnetId) errs.add('port check', `port ${p.id}: address on subnet ${f.subnet_id}`);
      const other = ips.get(f.ip_address);
      if (other) errs.add('port check', `duplicate IP ${f.ip_address} on ports ${other} and ${p.id}`);
      ips.set(f.ip_address, p.id);
    }
    const mac = String(p.mac_address ?? '').toLowerCase();
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) errs.add('port check', `port ${p.id}: bad MAC '${p.mac_address}'`);
    const other = macs.get(mac);
    if (other) errs.add('port check', `duplicate MAC ${mac} on ports ${other} and ${p.id}`);
    macs.set(mac, p.id);
  }
}

/** After cleanup the server holds nothing of this run. */
async function checkNothingLeft(client: NeutronClient, tag: string, netId: string | undefined, errs: Errors) {
  const nets = await client.get('/networks?fields=id&fields=name');
  if (errs.check('leftovers', 'network list', nets, 200)) {
    const left = (nets.body?.networks ?? []).filter((n: any) => String(n.name ?? '').startsWith(`${tag}-`));
    if (left.length) errs.add('leftovers', `${left.length} networks left behind: ${left.map((n: any) => n.name).join(', ')}`);
  }
  if (!netId) return;
  const ports = await client.get(`/ports?network_id=${netId}&fields=id`);
  if (errs.check('leftovers', 'port list', ports, 200) && (ports.body?.ports ?? []).length) {
    errs.add('leftovers', `${ports.body.ports.length} ports left on network ${netId}`);
  }
  const subnets = await client.get(`/subnets?network_id=${netId}&fields=id`);
  if (errs.check('leftovers', 'subnet list', subnets, 200) && (subnets.body?.subnets ?? []).length) {
    errs.add('leftovers', `${subnets.body.subnets.length} subnets left on network ${netId}`);
  }
  errs.check('leftovers', `network ${netId} after delete`, await client.get(`/networks/${netId}`), 404);
}
