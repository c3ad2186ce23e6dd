// `dvrnet up` and `dvrnet demo`: the scenario's whole cloud in this process on the emulated
// dataplane. `up` serves it (network API, identity, compute API) and writes openrc files
// for admin and demo; `demo` starts a fresh one, runs the walk-through, then keeps serving
// (or exits with --exit). Both exit non-zero when the cloud cannot start.

import type { Command } from 'commander';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startCloud, type Cloud } from '../cloud/cloud.js';
import { runDemo } from '../cloud/demo.js';
import { loadTopology } from '../cloud/topology.js';

interface CloudFlags {
  stateDir?: string;
  etc: string;
  topology?: string;
  apiPort?: number;
  identityPort?: number;
  computePort?: number;
  exit?: boolean;
}

/** openrc-style files, as the scenario's "load the credentials" step sources them. */
function writeOpenrc(cloud: Cloud): string[] {
  const ic = cloud.conf.identity!;
  const files: string[] = [];
  for (const who of ['admin', 'demo'] as const) {
    const file = join(cloud.stateDir, `${who}-openrc.sh`);
    writeFileSync(
      file,
      [
        `export OS_AUTH_URL=${cloud.servers.identity?.authUrl ?? ''}`,
        `export OS_USERNAME=${who}`,
        `export OS_PASSWORD=${who === 'admin' ? ic.admin_password : ic.demo_password}`,
        `export OS_PROJECT_NAME=${who}`,
        'export OS_USER_DOMAIN_NAME=Default',
        'export OS_PROJECT_DOMAIN_NAME=Default',
        'export OS_IDENTITY_API_VERSION=3',
        '',
      ].join('\n'),
    );
    files.push(file);
  }
  return files;
}

async function start(o: CloudFlags, fresh: boolean): Promise<Cloud> {
  const stateDir = o.stateDir ? resolve(o.stateDir) : fresh ? mkdtempSync(join(tmpdir(), 'dvrnet-demo-')) : resolve('state', 'cloud');
  return startCloud({
    stateDir,
    etcDir: o.etc,
    topology: o.topology ? loadTopology(o.topology) : undefined,
    apiPort: o.apiPort,
    identityPort: o.identityPort,
    computePort: o.computePort,
  });
}

function serveForever(cloud: Cloud) {
  const files = writeOpenrc(cloud);
  console.log(`\nThe cloud is up: network API ${cloud.servers.api.url}, identity ${cloud.servers.identity?.authUrl ?? '(noauth)'}, compute ${cloud.computeUrl}`);
  console.log(`Credentials: source ${files[0]} (admin) or ${files[1]} (demo); then e.g. openstack network list, or dvrnet net-list.`);
  console.log('Ctrl-C stops it.');
  const stop = async () => {
    await cloud.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

export function registerCloudCommands(program: Command) {
  const num = (v: string) => Number(v);
  const common = (c: Command) =>
    c
      .option('--state-dir <dir>', 'where the cloud keeps its database and state')
      .option('--etc <dir>', 'directory of the shipped configuration', 'etc')
      .option('--topology <file>', 'JSON topology (default: the scenario: controller, network1, compute1, compute2)')
      .option('--api-port <port>', 'network API port (default: bind_port, 9696)', num)
      .option('--identity-port <port>', 'identity port (default: [identity] bind_port, 5000)', num)
      .option('--compute-port <port>', 'compute API port (default 8774)', num);

  common(program.command('up').description('run the whole cloud (server, identity, every host and its agents) on the emulated dataplane')).action(
    async (o: CloudFlags) => {
      const cloud = await start(o, false);
      await cloud.settle();
      serveForever(cloud);
    },
  );

  common(program.command('demo').description("a fresh cloud, the scenario's walk-through with pings and traces, then keep serving"))
    .option('--exit', 'stop after the walk-through (exit status: 0 when everything behaved as the scenario says)')
    .action(async (o: CloudFlags) => {
      const cloud = await start(o, true);
      const { failures } = await runDemo(cloud, { out: (l) => console.log(l) });
      if (o.exit || failures.length) {
        await cloud.close();
        process.exit(failures.length ? 1 : 0);
      }
      serveForever(cloud);
    });
}
