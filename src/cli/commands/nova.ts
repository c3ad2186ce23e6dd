// nova-style commands against the compute API of the catalog (service type compute):
// boot, list, show, delete as novaclient prints them (Property/Value tables, `nova list`'s
// columns), and the two network-side nova commands of the scenario: secgroup-add-rule (nova's
// GROUP PROTO FROM TO CIDR form, turned into a network API rule) and floating-ip-associate.

import { UsageError } from '../core/args.js';
import type { CliCommand, CommandIo } from '../core/command.js';
import { pyJson, table, type Row } from '../core/format.js';
import { findId, needPositionals } from '../core/resource.js';
import { CliError, type Session } from '../core/session.js';

/** novaclient's server.networks: the addresses of each network, fixed before floating as the server lists them. */
function networks(server: Row): Array<[string, string[]]> {
  return Object.entries((server.addresses as Record<string, Array<{ addr: string }>>) ?? {}).map(([net, addrs]) => [net, addrs.map((a) => a.addr)]);
}

/** novaclient's print_dict: sorted properties, dicts and lists as JSON, None as '-'. */
function propertyTable(info: Row): string {
  const rows = Object.keys(info)
    .sort()
    .map((k) => {
      const v = info[k];
      return [k, v === null || v === undefined ? '-' : typeof v === 'object' ? pyJson(v) : v === true ? 'True' : v === false ? 'False' : String(v)];
    });
  return table(['Property', 'Value'], rows);
}

/** novaclient's _print_server: a `<network> network` row per network, groups joined, no addresses/links. */
function printServer(io: CommandIo, server: Row, extra: Row = {}) {
  if (io.format === 'json') return io.out(JSON.stringify({ ...server, ...extra }, null, 2));
  const info: Row = { ...server, ...extra };
  for (const [net, addrs] of networks(server)) info[`${net} network`] = addrs.join(', ');
  if (Array.isArray(info.security_groups)) info.security_groups = [...new Set((info.security_groups as Row[]).map((g) => String(g.name)))].sort().join(', ');
  delete info.addresses;
  delete info.links;
  io.out(propertyTable(info));
}

/** A server by name or id; novaclient's message when there is none. */
async function findServer(s: Session, ref: string): Promise<Row> {
  try {
    return (await s.compute('GET', `/servers/${encodeURIComponent(ref)}`)).server;
  } catch (err) {
    if (err instanceof CliError && err.status === 404) throw new CliError(`No server with a name or ID of '${ref}' exists.`, 404);
    throw err;
  }
}

const boot: CliCommand = {
  name: 'boot',
  summary: 'Boot a new server (nova boot).',
  usage: '--flavor FLAVOR --image IMAGE --nic net-id=NETWORK [--security-group GROUP]... [--availability-zone nova:HOST] NAME',
  options: [
    { flags: ['--flavor'], kind: 'string', metavar: 'FLAVOR', help: 'flavor (shown, not used: emulated instances have no size)' },
    { flags: ['--image'], kind: 'string', metavar: 'IMAGE', help: 'image (shown, not used)' },
    { flags: ['--nic'], kind: 'multi', metavar: 'net-id=NETWORK', help: 'the network to attach (net-id=<id or name> or net-name=<name>; one)' },
    { flags: ['--security-group'], kind: 'multi', metavar: 'GROUP', help: 'a security group (repeatable, name or id)' },
    { flags: ['--availability-zone'], kind: 'string', metavar: 'nova:HOST', help: 'place the instance on HOST (admin only)' },
  ],
  async run(p, io) {
    needPositionals(p, ['NAME']);
    const flavor = p.options.get('--flavor') as string | undefined;
    const image = p.options.get('--image') as string | undefined;
    if (!flavor) throw new UsageError('you need to specify a Flavor ID.');
    if (!image) throw new UsageError('you need to specify an Image ID (--image).');
    const nics = (p.options.get('--nic') as string[] | undefined) ?? [];
    if (nics.length !== 1) throw new UsageError(`exactly one --nic net-id=NETWORK is supported, got ${nics.length}`);
    const m = /^(net-id|net-name)=(.+)$/.exec(nics[0]);
    if (!m) throw new UsageError(`Invalid nic argument '${nics[0]}'. Nic arguments must be of the form --nic net-id=NETWORK or net-name=NAME.`);
    const netId = await findId(io.session, 'networks', 'network', m[2]);
    const server: Row = { name: p.positionals[0], flavorRef: flavor, imageRef: image, networks: [{ uuid: netId }] };
    const groups = p.options.get('--security-group') as string[] | undefined;
    if (groups) server.security_groups = groups.map((name) => ({ name }));
    const az = p.options.get('--availability-zone') as string | undefined;
    if (az) server.availability_zone = az;
    const r = await io.session.compute('POST', '/servers', { server });
    printServer(io, r.server, { flavor, image });
  },
};

const POWER_STATES = ['NOSTATE', 'Running', '', 'Paused', 'Shutdown', '', 'Crashed', 'Suspended'];

const list: CliCommand = {
  name: 'list',
  summary: 'List servers (nova list).',
  usage: '[--all-tenants] [--name NAME]',
  options: [
    { flags: ['--all-tenants'], kind: 'flag', help: 'servers of every project (admin), with a Tenant ID column' },
    { flags: ['--name'], kind: 'string', metavar: 'NAME', help: 'only servers whose name matches this regular expression' },
  ],
  async run(p, io) {
    if (p.positionals.length) throw new UsageError(`unrecognized arguments: ${p.positionals.join(' ')}`);
    let servers = (await io.session.compute('GET', '/servers/detail')).servers as Row[];
    const all = p.options.has('--all-tenants');
    // Nova lists an admin's own project unless asked for all of them.
    const project = await io.session.projectId();
    if (!all && project) servers = servers.filter((x) => x.tenant_id === undefined || x.tenant_id === project);
    const name = p.options.get('--name') as string | undefined;
    if (name) servers = servers.filter((x) => new RegExp(name).test(String(x.name)));
    const rows = servers.map((x) => {
      // novaclient: a missing extended state is N/A, a null one '-'.
      const task = 'OS-EXT-STS:task_state' in x ? (x['OS-EXT-STS:task_state'] ?? '-') : 'N/A';
      const power = 'OS-EXT-STS:power_state' in x ? (POWER_STATES[x['OS-EXT-STS:power_state'] as number] ?? '-') : 'N/A';
      const nets = networks(x)
        .filter(([, a]) => a.length)
        .map(([n, a]) => `${n}=${a.join(', ')}`)
        .join('; ');
      return [String(x.id), String(x.name), String(x.status ?? '-'), String(task), String(power), nets, String(x.tenant_id ?? '-')];
    });
    const headers = ['ID', 'Name', 'Status', 'Task State', 'Power State', 'Networks'];
    if (io.format === 'json') return io.out(JSON.stringify(rows.map((r) => Object.fromEntries(headers.map((h, i) => [h, r[i]]))), null, 2));
    // prettytable's sortby='Name': by name, then by the whole row.
    rows.sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a.join('\0') < b.join('\0') ? -1 : 1));
    const shown = all ? rows.map((r) => [r[0], r[1], r[6], ...r.slice(2, 6)]) : rows.map((r) => r.slice(0, 6));
    io.out(table(all ? ['ID', 'Name', 'Tenant ID', ...headers.slice(2)] : headers, shown));
  },
};

const show: CliCommand = {
  name: 'show',
  summary: 'Show details about the given server (nova show).',
  usage: 'SERVER',
  options: [],
  async run(p, io) {
    needPositionals(p, ['SERVER']);
    printServer(io, await findServer(io.session, p.positionals[0]));
  },
};

const del: CliCommand = {
  name: 'delete',
  summary: 'Immediately shut down and delete the specified server(s) (nova delete).',
  usage: 'SERVER [SERVER ...]',
  options: [],
  async run(p, io) {
    if (p.positionals.length === 0) throw new UsageError('the following arguments are required: SERVER');
    const failed: string[] = [];
    for (const ref of p.positionals) {
      try {
        const server = await findServer(io.session, ref);
        await io.session.compute('DELETE', `/servers/${server.id}`);
        io.out(`Request to delete server ${ref} has been accepted.`);
      } catch (err) {
        if (!(err instanceof CliError)) throw err;
        failed.push(err.message);
      }
    }
    if (failed.length) throw new CliError(failed.join('\n'));
  },
};

/** nova's ports: an integer, -1 meaning "any" for ICMP type and code. */
function port(text: string, what: string): number {
  if (!/^-?\d+$/.test(text)) throw new UsageError(`${what} must be an integer, got '${text}'`);
  return Number(text);
}

const secgroupAddRule: CliCommand = {
  name: 'secgroup-add-rule',
  summary: 'Add a rule to a security group (nova secgroup-add-rule: ingress from CIDR).',
  usage: 'GROUP IP_PROTO FROM_PORT TO_PORT CIDR',
  options: [],
  async run(p, io) {
    needPositionals(p, ['GROUP', 'IP_PROTO', 'FROM_PORT', 'TO_PORT', 'CIDR']);
    const [group, protoText, fromText, toText, cidr] = p.positionals;
    const proto = protoText.toLowerCase();
    if (!['icmp', 'tcp', 'udp'].includes(proto)) throw new CliError(`Invalid IP protocol '${protoText}': use icmp, tcp or udp`);
    const [from, to] = [port(fromText, 'FROM_PORT'), port(toText, 'TO_PORT')];
    const rule: Row = { direction: 'ingress', ethertype: cidr.includes(':') ? 'IPv6' : 'IPv4', protocol: proto, remote_ip_prefix: cidr };
    if (proto === 'icmp') {
      // FROM is the ICMP type, TO the code; -1 leaves them out (any).
      if (from < -1 || from > 255) throw new CliError(`Invalid ICMP type '${fromText}': -1 (any) or 0-255`);
      if (to < -1 || to > 255) throw new CliError(`Invalid ICMP code '${toText}': -1 (any) or 0-255`);
      if (from === -1 && to !== -1) throw new CliError(`An ICMP code (${toText}) needs an ICMP type, not -1`);
      if (from !== -1) rule.port_range_min = from;
      if (to !== -1) rule.port_range_max = to;
    } else {
      if (from < 1 || from > 65535 || to < 1 || to > 65535) throw new CliError(`Invalid port range ${fromText}-${toText}: ports are 1-65535`);
      if (from > to) throw new CliError(`Invalid port range ${fromText}-${toText}: FROM_PORT is greater than TO_PORT`);
      Object.assign(rule, { port_range_min: from, port_range_max: to });
    }
    rule.security_group_id = await findId(io.session, 'security_groups', 'security_group', group);
    const r = (await io.session.neutron('POST', '/security-group-rules', { security_group_rule: rule })).security_group_rule as Row;
    const shownPort = (v: unknown) => (v === null || v === undefined ? '-1' : String(v));
    const row = [String(r.protocol), shownPort(r.port_range_min), shownPort(r.port_range_max), String(r.remote_ip_prefix ?? ''), ''];
    if (io.format === 'json') return io.out(JSON.stringify(r, null, 2));
    io.out(table(['IP Protocol', 'From Port', 'To Port', 'IP Range', 'Source Group'], [row]));
  },
};

const floatingIpAssociate: CliCommand = {
  name: 'floating-ip-associate',
  summary: 'Associate a floating IP address to a server (nova floating-ip-associate).',
  usage: 'SERVER ADDRESS [--fixed-address FIXED_ADDRESS]',
  options: [{ flags: ['--fixed-address'], kind: 'string', metavar: 'FIXED_ADDRESS', help: 'the fixed IP of the server to map to' }],
  async run(p, io) {
    needPositionals(p, ['SERVER', 'ADDRESS']);
    const [ref, address] = p.positionals;
    const s = io.session;
    const server = await findServer(s, ref);
    const fips = (await s.neutron('GET', `/floatingips?floating_ip_address=${encodeURIComponent(address)}`)).floatingips as Row[];
    if (fips.length !== 1) throw new CliError(`No floating IP with address '${address}' found.`);
    const ports = (await s.neutron('GET', `/ports?device_id=${encodeURIComponent(String(server.id))}`)).ports as Row[];
    const fixed = p.options.get('--fixed-address') as string | undefined;
    const port = fixed ? ports.find((x) => (x.fixed_ips as Row[]).some((ip) => ip.ip_address === fixed)) : ports[0];
    if (!port) throw new CliError(fixed ? `Server ${ref} has no fixed IP ${fixed}.` : `Server ${ref} has no port to associate a floating IP with.`);
    await s.neutron('PUT', `/floatingips/${fips[0].id}`, { floatingip: { port_id: port.id, ...(fixed ? { fixed_ip_address: fixed } : {}) } });
  },
};

export const novaCommands: CliCommand[] = [boot, list, show, del, secgroupAddRule, floatingIpAssociate];
