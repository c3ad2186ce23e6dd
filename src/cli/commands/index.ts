// Every client command of `dvrnet`, in help order. A new resource adds one module beside
// these and one line here.

import type { CliCommand } from '../core/command.js';
import { identityCommands } from './identity.js';
import { networkCommands } from './network.js';
import { portCommands } from './port.js';
import { securityGroupCommands, securityGroupRuleCommands } from './security_group.js';
import { subnetCommands } from './subnet.js';

export const COMMANDS: CliCommand[] = [
  ...networkCommands,
  ...subnetCommands,
  ...portCommands,
  ...securityGroupCommands,
  ...securityGroupRuleCommands,
  ...identityCommands,
];
