// neutron floatingip-* commands: create on an external network, list/show/delete (by id,
// as neutronclient), associate with a port (and one of its fixed IPs) and disassociate.

import type { OptionSpec } from '../core/args.js';
import type { CliCommand } from '../core/command.js';
import { DESCRIPTION, TENANT_ID, findId, findIdOnly, needPositionals, resourceCommands } from '../core/resource.js';

const FIXED_IP_ADDRESS: OptionSpec = { flags: ['--fixed-ip-address', '--fixed_ip_address'], attr: 'fixed_ip_address', kind: 'string', metavar: 'FIXED_IP_ADDRESS', help: 'the IP address on the port (when it has several)' };

const floatingIpResource = resourceCommands({
  resource: 'floatingip',
  collection: 'floatingips',
  prefix: 'floatingip',
  noun: 'floating IP',
  idsOnly: true,
  listColumns: ['id', 'fixed_ip_address', 'floating_ip_address', 'port_id'],
  create: {
    positionals: ['FLOATING_NETWORK'],
    options: [
      TENANT_ID,
      DESCRIPTION,
      { flags: ['--port-id', '--port_id'], kind: 'string', metavar: 'PORT', help: 'the port to associate with (name or id)' },
      FIXED_IP_ADDRESS,
      { flags: ['--floating-ip-address'], attr: 'floating_ip_address', kind: 'string', metavar: 'FLOATING_IP_ADDRESS', help: 'the address to take (admin only)' },
      { flags: ['--subnet'], kind: 'string', metavar: 'SUBNET', help: 'the external subnet to take the address from (name or id)' },
    ],
    async build(p, body, s) {
      body.floating_network_id = await findId(s, 'networks', 'network', p.positionals[0]);
      const port = p.options.get('--port-id') as string | undefined;
      if (port) body.port_id = await findId(s, 'ports', 'port', port);
      const subnet = p.options.get('--subnet') as string | undefined;
      if (subnet) body.subnet_id = await findId(s, 'subnets', 'subnet', subnet);
    },
  },
});

const associate: CliCommand = {
  name: 'floatingip-associate',
  summary: 'Create a mapping between a floating IP and a fixed IP.',
  usage: 'FLOATINGIP_ID PORT [--fixed-ip-address FIXED_IP_ADDRESS]',
  options: [FIXED_IP_ADDRESS],
  async run(p, io) {
    needPositionals(p, ['FLOATINGIP_ID', 'PORT']);
    const [fipRef, portRef] = p.positionals;
    const id = await findIdOnly(io.session, 'floatingips', 'floatingip', fipRef);
    const body: Record<string, unknown> = { port_id: await findId(io.session, 'ports', 'port', portRef) };
    if (p.options.has('--fixed-ip-address')) body.fixed_ip_address = p.options.get('--fixed-ip-address');
    await io.session.neutron('PUT', `/floatingips/${id}`, { floatingip: body });
    io.out(`Associated floating IP ${fipRef}`);
  },
};

const disassociate: CliCommand = {
  name: 'floatingip-disassociate',
  summary: 'Remove a mapping from a floating IP to a fixed IP.',
  usage: 'FLOATINGIP_ID',
  options: [],
  async run(p, io) {
    needPositionals(p, ['FLOATINGIP_ID']);
    const id = await findIdOnly(io.session, 'floatingips', 'floatingip', p.positionals[0]);
    await io.session.neutron('PUT', `/floatingips/${id}`, { floatingip: { port_id: null } });
    io.out(`Disassociated floating IP ${p.positionals[0]}`);
  },
};

export const floatingIpCommands: CliCommand[] = [...floatingIpResource, associate, disassociate];
