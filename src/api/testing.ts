// Test support: a real API server on a real database (a fresh SQLite file, or a fresh
// PostgreSQL database when DVRNET_TEST_POSTGRES names a server), spoken to over real HTTP.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadServerConfig } from '../config/load.js';
import type { ServerConfig } from '../config/server.js';
import { startServers, type Servers } from '../cli/serve.js';
import type { Transport } from '../rpc/transport.js';
import { startApiServer, type RunningServer } from './serve.js';

export type DbKind = 'sqlite' | 'postgres';

/** The scenario's ml2_conf.ini (spec section 5) with the ranges filled in. */
export const SCENARIO_ML2 = `
[ml2]
type_drivers = flat,vlan,gre,vxlan
tenant_network_types = vlan,gre,vxlan
mechanism_drivers = openvswitch,l2population
extension_drivers = port_security
[ml2_type_flat]
flat_networks = external
[ml2_type_vlan]
network_vlan_ranges = external,vlan:100:200
[ml2_type_gre]
tunnel_id_ranges = 1:1000
[ml2_type_vxlan]
vni_ranges = 1:1000
[securitygroup]
enable_ipset = True
`;

export interface TestServer extends RunningServer {
  conf: ServerConfig;
  dir: string;
  /** Stop and start again on the same database (state must survive). */
  restart(): Promise<TestServer>;
  destroy(): Promise<void>;
}

export const postgresUrl = (): string | undefined => process.env.DVRNET_TEST_POSTGRES;

async function freshPostgres(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = postgresUrl()!;
  const name = `dvrnet_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`create database ${name}`);
  await c.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const d = new pg.Client({ connectionString: admin });
      await d.connect();
      await d.query(`drop database if exists ${name} with (force)`);
      await d.end();
    },
  };
}

export async function startTestServer(kind: DbKind = 'sqlite', opts: { ml2?: string; neutron?: string; transport?: Transport } = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-test-'));
  const pgdb = kind === 'postgres' ? await freshPostgres() : undefined;
  const connection = pgdb ? pgdb.url : `sqlite:///${join(dir, 'neutron.sqlite')}`;
  writeFileSync(
    join(dir, 'neutron.conf'),
    `[DEFAULT]\ncore_plugin = ml2\nservice_plugins = router\nallow_overlapping_ips = True\nrouter_distributed = True\nauth_strategy = noauth\n${opts.neutron ?? ''}\n[database]\nconnection = ${connection}\n`,
  );
  writeFileSync(join(dir, 'ml2_conf.ini'), opts.ml2 ?? SCENARIO_ML2);
  const conf = loadServerConfig([join(dir, 'neutron.conf'), join(dir, 'ml2_conf.ini')], { warn: () => {}, cwd: dir });
  const boot = async (): Promise<TestServer> => {
    const srv = await startApiServer(conf, { host: '127.0.0.1', port: 0, transport: opts.transport });
    const self: TestServer = {
      ...srv,
      conf,
      dir,
      async restart() {
        await srv.close();
        return boot();
      },
      async destroy() {
        await srv.close();
        await pgdb?.drop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return self;
  };
  return boot();
}

export interface Reply {
  status: number;
  body: any;
}

export type As = { project?: string; roles?: string };

/** A small client: `call('POST', '/v2.0/networks', {network: {...}}, {project: 'demo'})`. */
export function client(url: string) {
  return async function call(method: string, path: string, body?: unknown, as: As = {}): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (as.project) headers['x-project-id'] = as.project;
    if (as.roles) headers['x-roles'] = as.roles;
    const r = await fetch(url + path, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : undefined };
  };
}

/** The body of a reply that has the expected status (the body is the failure message otherwise). */
export async function ok(reply: Promise<Reply>, status = 200): Promise<any> {
  const r = await reply;
  assert.equal(r.status, status, JSON.stringify(r.body));
  return r.body;
}

export const demo: As = { project: 'demo' };
export const admin: As = {};

// ---- with identity ----------------------------------------------------------------------

export interface KeystoneTestServer {
  conf: ServerConfig;
  dir: string;
  /** The network API (http://127.0.0.1:PORT). */
  url: string;
  /** The identity service's root (http://127.0.0.1:PORT) and its v3 endpoint. */
  identityUrl: string;
  authUrl: string;
  passwords: { admin: string; demo: string };
  /** Move the identity service's clock forward (token expiry without waiting). */
  advance(ms: number): void;
  servers: Servers;
  destroy(): Promise<void>;
}

/**
 * The shipped setup, on ports chosen at start: auth_strategy = keystone, identity in the same
 * process, bootstrap users admin/demo with the passwords below.
 */
export async function startKeystoneTestServer(kind: DbKind = 'sqlite', opts: { ml2?: string; neutron?: string; tokenExpiration?: number } = {}): Promise<KeystoneTestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-test-'));
  const pgdb = kind === 'postgres' ? await freshPostgres() : undefined;
  const connection = pgdb ? pgdb.url : `sqlite:///${join(dir, 'neutron.sqlite')}`;
  const passwords = { admin: 'admin-secret', demo: 'demo-secret' };
  writeFileSync(
    join(dir, 'neutron.conf'),
    `[DEFAULT]\ncore_plugin = ml2\nservice_plugins = router\nallow_overlapping_ips = True\nrouter_distributed = True\nauth_strategy = keystone\n${opts.neutron ?? ''}\n` +
      `[database]\nconnection = ${connection}\n` +
      `[identity]\nbind_host = 127.0.0.1\nbind_port = 0\nadmin_password = ${passwords.admin}\ndemo_password = ${passwords.demo}\ntoken_expiration = ${opts.tokenExpiration ?? 3600}\n`,
  );
  writeFileSync(join(dir, 'ml2_conf.ini'), opts.ml2 ?? SCENARIO_ML2);
  const conf = loadServerConfig([join(dir, 'neutron.conf'), join(dir, 'ml2_conf.ini')], { warn: () => {}, cwd: dir });
  let offset = 0;
  const servers = await startServers(conf, { host: '127.0.0.1', apiPort: 0, identityPort: 0, clock: () => Date.now() + offset });
  return {
    conf,
    dir,
    url: servers.api.url,
    identityUrl: servers.identity!.url,
    authUrl: servers.identity!.authUrl,
    passwords,
    advance(ms) {
      offset += ms;
    },
    servers,
    async destroy() {
      await servers.close();
      await pgdb?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A project-scoped token for user `user` (password auth, Default domain), as keystoneauth asks for it. */
export async function login(authUrl: string, user: string, password: string, project = user): Promise<{ token: string; body: any }> {
  const r = await fetch(`${authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: user, domain: { name: 'Default' }, password } } },
        scope: { project: { name: project, domain: { name: 'Default' } } },
      },
    }),
  });
  const body = await r.json();
  if (r.status !== 201) throw new Error(`login ${user}: ${r.status} ${JSON.stringify(body)}`);
  return { token: r.headers.get('x-subject-token')!, body };
}

/** Like client(), authenticating with a token. */
export function tokenClient(url: string, token: string | undefined) {
  return async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply & { headers: Headers }> {
    const h: Record<string, string> = { ...headers };
    if (body !== undefined) h['content-type'] = 'application/json';
    if (token !== undefined) h['x-auth-token'] = token;
    const r = await fetch(url + path, { method, headers: h, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : undefined, headers: r.headers };
  };
}
