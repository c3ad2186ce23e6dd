// neutron router-* commands: the five resource commands, interfaces (by subnet or port),
// the external gateway, and router-port-list (the ports whose device_id is the router).

import { UsageError, type OptionSpec } from '../core/args.js';
import type { CliCommand } from '../core/command.js';
import { pyJson, type Row } from '../core/format.js';
import { DESCRIPTION, NAME, TENANT_ID, filterQuery, findId, needPositionals, printList, resourceCommands } from '../core/resource.js';

const DISTRIBUTED: OptionSpec = { flags: ['--distributed'], attr: 'distributed', kind: 'bool', metavar: '{True,False}', help: 'a distributed router (admin only)' };
const HA: OptionSpec = { flags: ['--ha'], attr: 'ha', kind: 'bool', metavar: '{True,False}', help: 'a highly available router (admin only)' };

/** neutronclient's _format_external_gateway_info: jsonutils.dumps, so a router without one shows `null`. */
export const gatewayCell = (v: unknown) => pyJson(v ?? null);

const routerResource = resourceCommands({
  resource: 'router',
  collection: 'routers',
  prefix: 'router',
  listColumns: ['id', 'name', 'external_gateway_info', 'distributed', 'ha'],
  listCells: { external_gateway_info: gatewayCell },
  create: {
    positionals: ['NAME'],
    options: [
      TENANT_ID,
      { flags: ['--admin-state-down', '--admin_state_down'], attr: 'admin_state_up', kind: 'flag', value: false, help: 'set admin state up to false' },
      DESCRIPTION,
      DISTRIBUTED,
      HA,
      { flags: ['--availability-zone-hint'], attr: 'availability_zone_hints', kind: 'multi', metavar: 'AVAILABILITY_ZONE', help: 'an availability zone for the router (repeatable)' },
    ],
    async build(p, body) {
      body.name = p.positionals[0];
      // neutronclient always sends the admin state (True unless --admin-state-down).
      body.admin_state_up ??= true;
    },
  },
  update: {
    options: [
      NAME,
      DESCRIPTION,
      { flags: ['--admin-state-up', '--admin_state_up'], attr: 'admin_state_up', kind: 'bool', metavar: '{True,False}', help: 'admin state (True means up)' },
      DISTRIBUTED,
      { flags: ['--route'], attr: 'routes', kind: 'kvmulti', metavar: 'destination=CIDR,nexthop=IP_ADDR', help: 'an extra route (repeatable)' },
      { flags: ['--no-routes'], kind: 'flag', help: 'remove all extra routes' },
    ],
    async build(p, body) {
      if (p.options.has('--no-routes')) {
        if (body.routes) throw new UsageError('argument --no-routes: not allowed with argument --route');
        // neutronclient sends None, which Neutron turns into []; [] says the same to any server.
        body.routes = [];
      }
      for (const r of (body.routes as Array<Record<string, string>> | null | undefined) ?? [])
        if (!r.destination || !r.nexthop) throw new UsageError(`argument --route: expected destination=CIDR,nexthop=IP_ADDR, got '${Object.entries(r).map(([k, v]) => `${k}=${v}`).join(',')}'`);
    },
  },
});

/** INTERFACE is SUBNET, subnet=SUBNET or port=PORT (names or ids). */
async function interfaceBody(s: Parameters<typeof findId>[0], text: string): Promise<Row> {
  let [kind, value] = ['subnet', text];
  const eq = text.indexOf('=');
  if (eq >= 0) [kind, value] = [text.slice(0, eq), text.slice(eq + 1)];
  if (kind !== 'subnet' && kind !== 'port') throw new UsageError(`You must specify either subnet or port for INTERFACE parameter, got '${text}'.`);
  return { [`${kind}_id`]: await findId(s, `${kind}s`, kind, value) };
}

const interfaceCommand = (name: string, action: string, summary: string, message: (router: string, r: Row) => string): CliCommand => ({
  name,
  summary,
  usage: 'ROUTER SUBNET|subnet=SUBNET|port=PORT',
  options: [],
  async run(p, io) {
    needPositionals(p, ['ROUTER', 'INTERFACE']);
    const [routerRef, iface] = p.positionals;
    const id = await findId(io.session, 'routers', 'router', routerRef);
    const body = await interfaceBody(io.session, iface);
    const r = await io.session.neutron('PUT', `/routers/${id}/${action}`, body);
    io.out(message(routerRef, r ?? {}));
  },
});

const gatewaySet: CliCommand = {
  name: 'router-gateway-set',
  summary: 'Set the external network gateway for a router.',
  usage: 'ROUTER EXTERNAL-NETWORK [--enable-snat] [--disable-snat] [--fixed-ip subnet_id=SUBNET,ip_address=IP_ADDR]',
  options: [
    { flags: ['--enable-snat'], kind: 'flag', help: 'enable source NAT on the gateway' },
    { flags: ['--disable-snat'], kind: 'flag', help: 'disable source NAT on the gateway (admin only)' },
    { flags: ['--fixed-ip'], kind: 'kvmulti', metavar: 'subnet_id=SUBNET,ip_address=IP_ADDR', help: 'a desired address and/or subnet on the external network (repeatable)' },
  ],
  async run(p, io) {
    needPositionals(p, ['ROUTER', 'EXTERNAL-NETWORK']);
    const [routerRef, netRef] = p.positionals;
    const s = io.session;
    const id = await findId(s, 'routers', 'router', routerRef);
    const info: Row = { network_id: await findId(s, 'networks', 'network', netRef) };
    if (p.options.has('--enable-snat')) info.enable_snat = true;
    if (p.options.has('--disable-snat')) info.enable_snat = false;
    const ips = p.options.get('--fixed-ip') as Array<Record<string, string>> | undefined;
    if (ips) {
      for (const ip of ips) {
        const unknown = Object.keys(ip).filter((k) => k !== 'subnet_id' && k !== 'ip_address');
        if (unknown.length) throw new UsageError(`argument --fixed-ip: invalid key(s) '${unknown.join(', ')}' (use subnet_id and/or ip_address)`);
      }
      info.external_fixed_ips = await Promise.all(ips.map(async (ip) => (ip.subnet_id ? { ...ip, subnet_id: await findId(s, 'subnets', 'subnet', ip.subnet_id) } : ip)));
    }
    await s.neutron('PUT', `/routers/${id}`, { router: { external_gateway_info: info } });
    io.out(`Set gateway for router ${routerRef}`);
  },
};

const gatewayClear: CliCommand = {
  name: 'router-gateway-clear',
  summary: 'Remove an external network gateway from a router.',
  usage: 'ROUTER',
  options: [],
  async run(p, io) {
    needPositionals(p, ['ROUTER']);
    const id = await findId(io.session, 'routers', 'router', p.positionals[0]);
    await io.session.neutron('PUT', `/routers/${id}`, { router: { external_gateway_info: {} } });
    io.out(`Removed gateway from router ${p.positionals[0]}`);
  },
};

/** Port listing columns as neutronclient's port-list/router-port-list. */
export const PORT_LIST = {
  listColumns: ['id', 'name', 'mac_address', 'fixed_ips'],
  listCells: { fixed_ips: (v: unknown) => ((v as Row[]) ?? []).map(pyJson).join('\n') },
};

const portList: CliCommand = {
  name: 'router-port-list',
  summary: 'List ports that belong to a given tenant, with specified router.',
  usage: 'ROUTER [--KEY VALUE ...]',
  options: [],
  async run(p, io) {
    needPositionals(p, ['ROUTER']);
    const id = await findId(io.session, 'routers', 'router', p.positionals[0]);
    const q = filterQuery({ ...p.extras, device_id: id });
    await printList(io, (await io.session.neutron('GET', `/ports?${q}`)).ports, PORT_LIST);
  },
};

export const routerCommands: CliCommand[] = [
  ...routerResource,
  interfaceCommand('router-interface-add', 'add_router_interface', 'Add an internal network interface to a router.', (router, r) => `Added interface ${r.port_id} to router ${router}.`),
  interfaceCommand('router-interface-delete', 'remove_router_interface', 'Remove an internal network interface from a router.', (router) => `Removed interface from router ${router}.`),
  gatewaySet,
  gatewayClear,
  portList,
];
