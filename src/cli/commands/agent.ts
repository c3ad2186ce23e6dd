// neutron agent-* commands and the agent-scheduler ones: which L3 agents host a router,
// which routers an L3 agent hosts, which DHCP agents serve a network (and an admin's
// explicit placement). Agents are named by id only, as neutronclient does.

import type { CliCommand } from '../core/command.js';
import type { Row } from '../core/format.js';
import { DESCRIPTION, findId, needPositionals, printList, resourceCommands } from '../core/resource.js';
import { gatewayCell } from './router.js';

/** neutronclient's extend_list: `:-)` for a live agent, `xxx` for a dead one. */
const aliveFace = async (rows: Row[]) => rows.map((a) => ('alive' in a ? { ...a, alive: a.alive ? ':-)' : 'xxx' } : a));

const agentResource = resourceCommands({
  resource: 'agent',
  collection: 'agents',
  prefix: 'agent',
  idsOnly: true,
  jsonIndent: 5,
  listColumns: ['id', 'agent_type', 'host', 'availability_zone', 'alive', 'admin_state_up', 'binary'],
  listRows: aliveFace,
  update: {
    options: [{ flags: ['--admin-state-down'], attr: 'admin_state_up', kind: 'flag', value: false, help: 'set admin state up of the agent to false' }, DESCRIPTION],
    async build(_p, body) {
      // neutronclient always sends the admin state: up unless --admin-state-down.
      body.admin_state_up ??= true;
    },
  },
});

const HOSTING_AGENT = { listColumns: ['id', 'host', 'admin_state_up', 'alive'], listRows: aliveFace };

const l3AgentsHostingRouter: CliCommand = {
  name: 'l3-agent-list-hosting-router',
  summary: 'List L3 agents hosting a router.',
  usage: 'ROUTER',
  options: [],
  async run(p, io) {
    needPositionals(p, ['ROUTER']);
    const id = await findId(io.session, 'routers', 'router', p.positionals[0]);
    const agents = (await io.session.neutron('GET', `/routers/${id}/l3-agents`)).agents as Row[];
    // The ha_state column only when the server gives it (HA routers).
    await printList(io, agents, { ...HOSTING_AGENT, listColumns: [...HOSTING_AGENT.listColumns, ...(agents.some((a) => 'ha_state' in a) ? ['ha_state'] : [])] });
  },
};

const routersOnL3Agent: CliCommand = {
  name: 'router-list-on-l3-agent',
  summary: 'List the routers on a L3 agent.',
  usage: 'L3_AGENT',
  options: [],
  async run(p, io) {
    needPositionals(p, ['L3_AGENT']);
    const routers = (await io.session.neutron('GET', `/agents/${encodeURIComponent(p.positionals[0])}/l3-routers`)).routers as Row[];
    await printList(io, routers, { listColumns: ['id', 'name', 'external_gateway_info'], listCells: { external_gateway_info: gatewayCell } });
  },
};

const dhcpAgentsHostingNet: CliCommand = {
  name: 'dhcp-agent-list-hosting-net',
  summary: 'List DHCP agents hosting a network.',
  usage: 'NETWORK',
  options: [],
  async run(p, io) {
    needPositionals(p, ['NETWORK']);
    const id = await findId(io.session, 'networks', 'network', p.positionals[0]);
    await printList(io, (await io.session.neutron('GET', `/networks/${id}/dhcp-agents`)).agents, HOSTING_AGENT);
  },
};

const netsOnDhcpAgent: CliCommand = {
  name: 'net-list-on-dhcp-agent',
  summary: 'List the networks on a DHCP agent.',
  usage: 'DHCP_AGENT',
  options: [],
  async run(p, io) {
    needPositionals(p, ['DHCP_AGENT']);
    const nets = (await io.session.neutron('GET', `/agents/${encodeURIComponent(p.positionals[0])}/dhcp-networks`)).networks as Row[];
    // As net-list: each subnet as "<id> <cidr>".
    const subnets = nets.some((n) => (n.subnets as string[])?.length) ? ((await io.session.neutron('GET', '/subnets?fields=id&fields=cidr')).subnets as Row[]) : [];
    const cidr = new Map(subnets.map((x) => [x.id, x.cidr]));
    const rows = nets.map((n) => ({ ...n, subnets: ((n.subnets as string[]) ?? []).map((id) => `${id} ${cidr.get(id) ?? ''}`.trim()) }));
    await printList(io, rows, { listColumns: ['id', 'name', 'subnets'] });
  },
};

/** l3-agent-router-add/remove, dhcp-agent-network-add/remove: an admin's explicit placement. */
const placement = (o: { name: string; summary: string; agent: string; what: 'router' | 'network'; sub: string; add: boolean; message: (ref: string) => string }): CliCommand => ({
  name: o.name,
  summary: o.summary,
  usage: `${o.agent} ${o.what.toUpperCase()}`,
  options: [],
  async run(p, io) {
    needPositionals(p, [o.agent, o.what.toUpperCase()]);
    const [agent, ref] = p.positionals;
    const id = await findId(io.session, `${o.what}s`, o.what, ref);
    const base = `/agents/${encodeURIComponent(agent)}/${o.sub}`;
    if (o.add) await io.session.neutron('POST', base, { [`${o.what}_id`]: id });
    else await io.session.neutron('DELETE', `${base}/${id}`);
    io.out(o.message(ref));
  },
});

export const agentCommands: CliCommand[] = [
  ...agentResource,
  l3AgentsHostingRouter,
  routersOnL3Agent,
  placement({ name: 'l3-agent-router-add', summary: 'Add a router to a L3 agent.', agent: 'L3_AGENT', what: 'router', sub: 'l3-routers', add: true, message: (r) => `Added router ${r} to L3 agent` }),
  placement({ name: 'l3-agent-router-remove', summary: 'Remove a router from a L3 agent.', agent: 'L3_AGENT', what: 'router', sub: 'l3-routers', add: false, message: (r) => `Removed router ${r} from L3 agent` }),
  dhcpAgentsHostingNet,
  netsOnDhcpAgent,
  placement({ name: 'dhcp-agent-network-add', summary: 'Add a network to a DHCP agent.', agent: 'DHCP_AGENT', what: 'network', sub: 'dhcp-networks', add: true, message: (r) => `Added network ${r} to DHCP agent` }),
  placement({ name: 'dhcp-agent-network-remove', summary: 'Remove a network from a DHCP agent.', agent: 'DHCP_AGENT', what: 'network', sub: 'dhcp-networks', add: false, message: (r) => `Removed network ${r} from DHCP agent` }),
];
