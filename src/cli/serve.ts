// `dvrnet server` as one process: the network API and, with auth_strategy = keystone, the
// identity service beside it (tokens validated in-process). Without identity here
// (`identity: false`), tokens are validated over HTTP against [keystone_authtoken]
// www_authenticate_uri / auth_url, or [identity]'s address.

import type { ServerConfig } from '../config/server.js';
import { httpTokenValidator, keystoneAuth, noauth, type Authenticator, type TokenValidator } from '../api/auth.js';
import { startApiServer, type RunningServer } from '../api/serve.js';
import { startIdentityServer, type RunningIdentity } from '../identity/serve.js';
import type { IdentityService } from '../identity/service.js';
import type { Transport } from '../rpc/transport.js';

export interface Servers {
  api: RunningServer;
  identity?: RunningIdentity;
  /** How requests are authenticated (other APIs of the same cloud use it too). */
  auth: Authenticator;
  close(): Promise<void>;
}

export interface ServeOptions {
  /** Serve identity in this process (default: when auth_strategy = keystone). */
  identity?: boolean;
  host?: string;
  apiPort?: number;
  identityPort?: number;
  logger?: boolean;
  clock?: () => number;
  /** The RPC transport to the agents (default: from transport_url). */
  transport?: Transport;
}

/** The in-process validator: the identity service answers without HTTP. */
export function inProcessValidator(svc: IdentityService): TokenValidator {
  return {
    async validate(token) {
      const r = await svc.validate(token);
      return r && { userId: r.user.id, projectId: r.project?.id, roles: r.roles.map((x) => x.name), expiresAt: r.expiresAt };
    },
  };
}

/** Where tokens are validated when identity runs elsewhere. */
export function remoteIdentityUrl(conf: ServerConfig): string {
  const ka = conf.raw.keystone_authtoken ?? {};
  const configured = ka.www_authenticate_uri ?? ka.auth_uri ?? ka.auth_url;
  if (configured) return configured;
  const ic = conf.identity ?? { bind_host: '127.0.0.1', bind_port: 5000 };
  const host = ic.bind_host === '0.0.0.0' || ic.bind_host === '::' ? '127.0.0.1' : ic.bind_host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${ic.bind_port}/v3`;
}

export async function startServers(conf: ServerConfig, opts: ServeOptions = {}): Promise<Servers> {
  const keystone = conf.auth_strategy === 'keystone';
  const withIdentity = opts.identity ?? keystone;
  let identity: RunningIdentity | undefined;
  if (withIdentity)
    identity = await startIdentityServer(conf, { host: opts.host, port: opts.identityPort, logger: opts.logger, clock: opts.clock, deferBootstrap: true });
  let auth: Authenticator = noauth;
  if (keystone) {
    const validator = identity ? inProcessValidator(identity.service) : httpTokenValidator(remoteIdentityUrl(conf));
    const uri = identity ? identity.authUrl : remoteIdentityUrl(conf);
    auth = keystoneAuth(validator, { identityUri: uri.replace(/\/v3\/?$/, '') });
  }
  let api: RunningServer;
  try {
    api = await startApiServer(conf, { host: opts.host, port: opts.apiPort, auth, logger: opts.logger, transport: opts.transport });
  } catch (err) {
    await identity?.close();
    throw err;
  }
  try {
    await identity?.publishNetwork(api.url);
  } catch (err) {
    await api.close();
    await identity?.close();
    throw err;
  }
  return {
    api,
    identity,
    auth,
    async close() {
      await api.close();
      await identity?.close();
    },
  };
}

/** The network API's public URL as configured (for the catalog when identity runs alone). */
export function configuredNetworkUrl(conf: ServerConfig): string {
  const host = conf.bind_host === '0.0.0.0' || conf.bind_host === '::' ? '127.0.0.1' : conf.bind_host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${conf.bind_port}`;
}

/** `dvrnet identity`: the identity service alone; the catalog names the configured network API. */
export async function startIdentityOnly(conf: ServerConfig, opts: { port?: number; host?: string; logger?: boolean } = {}): Promise<RunningIdentity> {
  return startIdentityServer(conf, { ...opts, networkUrl: configuredNetworkUrl(conf) });
}
