// Test support: a real API server on a real database (a fresh SQLite file, or a fresh
// PostgreSQL database when DVRNET_TEST_POSTGRES names a server), spoken to over real HTTP.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadServerConfig } from '../config/load.js';
import type { ServerConfig } from '../config/server.js';
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

export async function startTestServer(kind: DbKind = 'sqlite', opts: { ml2?: string; neutron?: string } = {}): Promise<TestServer> {
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
    const srv = await startApiServer(conf, { host: '127.0.0.1', port: 0 });
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

export const demo: As = { project: 'demo' };
export const admin: As = {};
