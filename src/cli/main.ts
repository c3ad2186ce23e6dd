#!/usr/bin/env node
// The `dvrnet` command.

import { Command } from 'commander';
import { loadServerConfig } from '../config/load.js';
import { startApiServer } from '../api/serve.js';

const collect = (v: string, prev: string[]) => [...prev, v];

const program = new Command('dvrnet').description('OpenStack-style networking with Distributed Virtual Routing');

program
  .command('server')
  .description('run the Neutron v2.0 API server (neutron-server)')
  .option('--config-file <file>', 'Neutron-style INI file; repeat, later files override earlier ones', collect, [])
  .option('--port <port>', 'override bind_port', (v) => Number(v))
  .action(async (o: { configFile: string[]; port?: number }) => {
    let conf;
    try {
      conf = loadServerConfig(o.configFile, { warn: (m) => console.error(`WARNING: ${m}`) });
    } catch (err) {
      console.error(`dvrnet server: ${(err as Error).message}`);
      process.exit(2);
    }
    if (conf.auth_strategy !== 'noauth')
      console.error(`WARNING: auth_strategy = ${conf.auth_strategy}: no identity service in this build, every request will get 401`);
    const srv = await startApiServer(conf, { port: o.port });
    console.error(`dvrnet API server listening on ${srv.url} (database ${conf.database.connection.replace(/\/\/[^@/]*@/, '//***@')})`);
    const stop = async () => {
      await srv.close();
      process.exit(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

program.parseAsync().catch((err) => {
  console.error(`dvrnet: ${(err as Error).message}`);
  process.exit(1);
});
