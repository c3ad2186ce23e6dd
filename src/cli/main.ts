#!/usr/bin/env node
// The `dvrnet` command.

import { Command } from 'commander';
import { loadServerConfig } from '../config/load.js';
import { startIdentityOnly, startServers } from './serve.js';
import { findClientCommand, runCommand } from './core/run.js';
import { COMMANDS } from './commands/index.js';
import { registerCloudCommands } from './cloud_commands.js';

const collect = (v: string, prev: string[]) => [...prev, v];

const program = new Command('dvrnet').description('OpenStack-style networking with Distributed Virtual Routing');

program
  .command('server')
  .description('run the Neutron v2.0 API server (neutron-server) and, with auth_strategy = keystone, the identity service')
  .option('--config-file <file>', 'Neutron-style INI file; repeat, later files override earlier ones', collect, [])
  .option('--port <port>', 'override bind_port', (v) => Number(v))
  .option('--identity-port <port>', 'override [identity] bind_port', (v) => Number(v))
  .option('--no-identity', 'do not serve identity here: validate tokens against [keystone_authtoken] www_authenticate_uri')
  .action(async (o: { configFile: string[]; port?: number; identityPort?: number; identity: boolean }) => {
    let conf;
    try {
      conf = loadServerConfig(o.configFile, { warn: (m) => console.error(`WARNING: ${m}`) });
    } catch (err) {
      console.error(`dvrnet server: ${(err as Error).message}`);
      process.exit(2);
    }
    const srv = await startServers(conf, { apiPort: o.port, identityPort: o.identityPort, identity: o.identity ? undefined : false });
    const db = conf.database.connection.replace(/\/\/[^@/]*@/, '//***@');
    console.error(`dvrnet API server listening on ${srv.api.url} (auth_strategy ${conf.auth_strategy}, database ${db})`);
    if (srv.identity) console.error(`dvrnet identity service listening on ${srv.identity.url} (auth URL ${srv.identity.authUrl})`);
    const stop = async () => {
      await srv.close();
      process.exit(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

program
  .command('identity')
  .description('run only the identity service (Keystone v3 subset) on [identity] bind_host:bind_port')
  .option('--config-file <file>', 'Neutron-style INI file; repeat, later files override earlier ones', collect, [])
  .option('--port <port>', 'override [identity] bind_port', (v) => Number(v))
  .action(async (o: { configFile: string[]; port?: number }) => {
    let conf;
    try {
      conf = loadServerConfig(o.configFile, { warn: (m) => console.error(`WARNING: ${m}`) });
    } catch (err) {
      console.error(`dvrnet identity: ${(err as Error).message}`);
      process.exit(2);
    }
    const srv = await startIdentityOnly(conf, { port: o.port });
    console.error(`dvrnet identity service listening on ${srv.url} (auth URL ${srv.authUrl})`);
    const stop = async () => {
      await srv.close();
      process.exit(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

registerCloudCommands(program);

program.addHelpText(
  'after',
  `\nClient commands (neutron-style; dvrnet COMMAND -h for options):\n${COMMANDS.map((c) => `  ${c.name.padEnd(30)} ${c.summary}`).join('\n')}\n`,
);

const found = findClientCommand(process.argv.slice(2));
if (found) {
  runCommand(found.command, found.rest, { env: process.env, out: (t) => console.log(t), err: (t) => console.error(t) }).then(
    (code) => process.exit(code),
    (err) => {
      console.error(`dvrnet ${found.command.name}: ${(err as Error).stack ?? err}`);
      process.exit(1);
    },
  );
} else program.parseAsync().catch((err) => {
  console.error(`dvrnet: ${(err as Error).message}`);
  process.exit(1);
});
