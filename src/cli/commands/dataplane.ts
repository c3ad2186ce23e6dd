// Looking into the running cloud's dataplane through the compute service's /dvrnet/v1
// endpoints: an instance's console (`exec INSTANCE ping ...`, ping's own output and exit
// status), `trace` (a packet's steps across hosts), and for admins a host's namespaces
// (`ip netns`) and a bridge's flows (`ovs-ofctl dump-flows`).

import { UsageError, type OptionSpec } from '../core/args.js';
import type { CliCommand } from '../core/command.js';
import { needPositionals } from '../core/resource.js';
import { CliError } from '../core/session.js';

/** ping's own command line: `ping [-c COUNT] DESTINATION` (-c4 and -c 4 alike). */
export function parsePing(args: string[]): { count: number; dst: string } {
  let count = 4;
  let dst: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const m = /^-c(\d*)$/.exec(a);
    if (m) {
      const v = m[1] || args[++i];
      if (v === undefined) throw new UsageError('ping: option requires an argument -- c');
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1000) throw new UsageError(`ping: invalid argument: '${v}': out of range: 1 <= value <= 1000`);
      count = Number(v);
    } else if (/^-/.test(a)) throw new UsageError(`ping: option '${a}' is not available in an emulated instance (only -c COUNT)`);
    else if (dst === undefined) dst = a;
    else throw new UsageError(`ping: unexpected argument '${a}'`);
  }
  if (dst === undefined) throw new UsageError('ping: usage error: Destination address required');
  return { count, dst };
}

const exec: CliCommand = {
  name: 'exec',
  summary: "Run a command on an instance's console; ping is the one there is: exec INSTANCE ping [-c COUNT] DESTINATION.",
  usage: 'INSTANCE ping [-c COUNT] DESTINATION',
  options: [],
  remainderAfter: 1,
  async run(p, io) {
    needPositionals(p, ['INSTANCE', 'COMMAND'], Array(p.positionals.length).fill('ARG'));
    const [from, command, ...args] = p.positionals;
    if (command !== 'ping') throw new CliError(`${command}: not available on the console of an emulated instance (only ping)`);
    const { count, dst } = parsePing(args);
    const r = await io.session.compute('POST', '/dvrnet/v1/ping', { from, dst, count });
    io.out(`PING ${dst} (${dst}) 56(84) bytes of data.`);
    io.out('');
    io.out(`--- ${dst} ping statistics ---`);
    io.out(r.summary);
    // ping's exit status: 0 only when every echo was answered here (the scenario's checks).
    return r.received === r.sent ? 0 : 1;
  },
};

const PROTOS = ['icmp', 'udp', 'tcp'];

const trace: CliCommand = {
  name: 'trace',
  summary: "Trace a packet from an instance (or, for admins, HOST[/NAMESPACE]) to an address across the cloud's hosts.",
  usage: 'FROM DESTINATION [--proto {icmp,udp,tcp}] [--dport PORT] [--json]',
  options: [
    { flags: ['--proto'], kind: 'string', metavar: '{icmp,udp,tcp}', help: 'protocol (default icmp)' },
    { flags: ['--dport'], kind: 'int', metavar: 'PORT', help: 'destination port (udp, tcp)' },
    { flags: ['--json'], kind: 'flag', help: 'the trace record as JSON' },
  ],
  async run(p, io) {
    needPositionals(p, ['FROM', 'DESTINATION']);
    const [from, dst] = p.positionals;
    const proto = (p.options.get('--proto') as string | undefined) ?? 'icmp';
    if (!PROTOS.includes(proto)) throw new UsageError(`argument --proto: invalid choice: '${proto}' (choose from 'icmp', 'udp', 'tcp')`);
    const dport = p.options.get('--dport') as number | undefined;
    if (dport !== undefined) {
      if (proto === 'icmp') throw new UsageError('argument --dport: only with --proto udp or tcp');
      if (dport < 1 || dport > 65535) throw new UsageError(`argument --dport: invalid port: '${dport}' (1-65535)`);
    }
    const json = p.options.has('--json') || io.format === 'json';
    const r = await io.session.compute('POST', '/dvrnet/v1/trace', { from, dst, proto, ...(dport !== undefined ? { dport } : {}), json });
    io.out(json ? JSON.stringify(r, null, 2) : String(r.text));
  },
};

const HOST: OptionSpec = { flags: ['--host'], kind: 'string', metavar: 'HOST', help: 'the host (network1, compute1, ...)' };

const needHost = (p: { options: Map<string, unknown> }) => {
  const host = p.options.get('--host') as string | undefined;
  if (!host) throw new UsageError('the following arguments are required: --host');
  return encodeURIComponent(host);
};

const netns: CliCommand = {
  name: 'netns',
  summary: "A host's network namespaces, as `ip netns` lists them there (admin).",
  usage: '--host HOST',
  options: [HOST],
  async run(p, io) {
    needPositionals(p, []);
    const r = await io.session.compute('GET', `/dvrnet/v1/hosts/${needHost(p)}/netns`);
    if (io.format === 'json') return io.out(JSON.stringify(r.namespaces, null, 2));
    if (r.namespaces.length) io.out((r.namespaces as string[]).join('\n'));
  },
};

const dumpFlows: CliCommand = {
  name: 'dump-flows',
  summary: "The OpenFlow flows of a host's bridge, as `ovs-ofctl dump-flows BRIDGE` prints them there (admin).",
  usage: '--host HOST --bridge BRIDGE',
  options: [HOST, { flags: ['--bridge'], kind: 'string', metavar: 'BRIDGE', help: 'the bridge (br-int, br-tun, br-ex, ...)' }],
  async run(p, io) {
    // `dump-flows --host H br-int` reads as ovs-ofctl's own order.
    needPositionals(p, [], p.options.has('--bridge') ? [] : ['BRIDGE']);
    const bridge = (p.options.get('--bridge') as string | undefined) ?? p.positionals[0];
    if (!bridge) throw new UsageError('the following arguments are required: --bridge');
    const r = await io.session.compute('GET', `/dvrnet/v1/hosts/${needHost(p)}/bridges/${encodeURIComponent(bridge)}/flows`);
    if (r.flows) io.out(r.flows);
  },
};

export const dataplaneCommands: CliCommand[] = [exec, trace, netns, dumpFlows];
