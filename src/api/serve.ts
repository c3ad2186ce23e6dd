// Start the API server from settings: open the database, compose the plugin, listen.
// Used by `dvrnet server`, by tests (port 0) and by the all-in-one cloud.

import type { FastifyInstance } from 'fastify';
import type { ServerConfig } from '../config/server.js';
import { openDatabase, type Db } from '../db/connect.js';
import { CorePlugin } from '../server/plugin.js';
import { buildApp } from './app.js';
import { denyAll, noauth, type Authenticator } from './auth.js';
import { transportFromUrl, type Transport } from '../rpc/index.js';
import { startServerRpc } from '../server/rpc/index.js';

export interface RunningServer {
  app: FastifyInstance;
  plugin: CorePlugin;
  db: Db;
  /** The RPC transport the server talks to its agents on. */
  transport: Transport;
  /** Resolves once the server has nothing waiting to go out to its agents. */
  rpcIdle(): Promise<void>;
  url: string;
  close(): Promise<void>;
}

export async function startApiServer(
  conf: ServerConfig,
  opts: { port?: number; host?: string; auth?: Authenticator; logger?: boolean; transport?: Transport } = {},
): Promise<RunningServer> {
  const db = await openDatabase(conf.database.connection);
  const plugin = new CorePlugin(db, conf);
  const auth = opts.auth ?? (conf.auth_strategy === 'noauth' ? noauth : denyAll);
  const app = buildApp({ plugin, auth, logger: opts.logger });
  // transport_url in neutron.conf: empty or inproc:// for the all-in-one bus, rabbit:// across machines.
  const transport = opts.transport ?? transportFromUrl(conf.raw.DEFAULT?.transport_url || undefined);
  const rpc = await startServerRpc(plugin, transport);
  const host = opts.host ?? conf.bind_host;
  let address: string;
  try {
    address = await app.listen({ host, port: opts.port ?? conf.bind_port });
  } catch (err) {
    await rpc.stop();
    if (!opts.transport) await transport.close();
    await db.close();
    throw err;
  }
  return {
    app,
    plugin,
    db,
    transport,
    rpcIdle: () => rpc.idle(),
    url: address,
    async close() {
      await app.close();
      await rpc.stop();
      if (!opts.transport) await transport.close();
      await db.close();
    },
  };
}
