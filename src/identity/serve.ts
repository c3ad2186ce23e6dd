// Start the identity service: its tables (own migration history) in the server's database,
// the Keystone v3 app on [identity] bind_host:bind_port, and the bootstrap.

import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { ServerConfig } from '../config/server.js';
import { openDatabase, type Db } from '../db/connect.js';
import { buildIdentityApp } from './app.js';
import { bootstrap, ensureService } from './bootstrap.js';
import { migrateIdentity } from './migrations.js';
import type { IdentityDatabase } from './schema.js';
import { IdentityService } from './service.js';

export interface RunningIdentity {
  app: FastifyInstance;
  service: IdentityService;
  /** http://host:port (no /v3) */
  url: string;
  /** The identity endpoint clients use: `${url}/v3`. */
  authUrl: string;
  /** Bootstrap again with the network API's URL in the catalog. */
  publishNetwork(url: string): Promise<void>;
  /** Put another service of the same cloud in the catalog (the compute API of the all-in-one). */
  publishService(type: string, name: string, description: string, url: string): Promise<void>;
  close(): Promise<void>;
}

/** 0.0.0.0 and :: listen everywhere; clients reach such a server on loopback. */
export const reachable = (address: string): string => address.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//127.0.0.1:');

export async function startIdentityServer(
  conf: ServerConfig,
  opts: {
    port?: number;
    host?: string;
    logger?: boolean;
    clock?: () => number;
    networkUrl?: string;
    /** The caller will call publishNetwork() once the network API listens (one bootstrap, not two). */
    deferBootstrap?: boolean;
  } = {},
): Promise<RunningIdentity> {
  const ic = conf.identity ?? { bind_host: '127.0.0.1', bind_port: 5000, token_expiration: 3600 };
  const db: Db = await openDatabase(conf.database.connection);
  const kysely = db.kysely as unknown as Kysely<IdentityDatabase>;
  try {
    await migrateIdentity(kysely);
  } catch (err) {
    await db.close();
    throw err;
  }
  const service = new IdentityService(kysely, { tokenExpiration: ic.token_expiration, clock: opts.clock });
  const app = buildIdentityApp(service, { logger: opts.logger });
  let address: string;
  try {
    address = reachable(await app.listen({ host: opts.host ?? ic.bind_host, port: opts.port ?? ic.bind_port }));
  } catch (err) {
    await db.close();
    throw err;
  }
  const authUrl = `${address}/v3`;
  const boot = (networkUrl?: string) =>
    bootstrap(kysely, { adminPassword: ic.admin_password, demoPassword: ic.demo_password, identityUrl: authUrl, networkUrl });
  try {
    if (!opts.deferBootstrap) await boot(opts.networkUrl);
  } catch (err) {
    await app.close();
    await db.close();
    throw err;
  }
  return {
    app,
    service,
    url: address,
    authUrl,
    publishNetwork: (url) => boot(reachable(url)),
    publishService: (type, name, description, url) => ensureService(kysely, type, name, description, reachable(url)),
    async close() {
      await app.close();
      await db.close();
    },
  };
}
