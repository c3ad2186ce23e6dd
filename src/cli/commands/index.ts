// Every client command of `dvrnet`, in help order. A new resource adds one module beside
// these and one line here.

import type { CliCommand } from '../core/command.js';
import { agentCommands } from './agent.js';
import { dataplaneCommands } from './dataplane.js';
import { floatingIpCommands } from './floatingip.js';
import { identityCommands } from './identity.js';
import { networkCommands } from './network.js';
import { novaCommands } from './nova.js';
import { portCommands } from './port.js';
import { routerCommands } from './router.js';
import { securityGroupCommands, securityGroupRuleCommands } from './security_group.js';
import { subnetCommands } from './subnet.js';

export const COMMANDS: CliCommand[] = [
  ...networkCommands,
  ...subnetCommands,
  ...portCommands,
  ...securityGroupCommands,
  ...securityGroupRuleCommands,
  ...routerCommands,
  ...floatingIpCommands,
  ...agentCommands,
  ...identityCommands,
  ...novaCommands,
  ...dataplaneCommands,
];
