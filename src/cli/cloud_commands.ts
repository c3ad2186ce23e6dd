// `dvrnet up` and `dvrnet demo`: the scenario's whole cloud in this process, on the emulated
// dataplane or (`--dataplane linux`, root) on real namespaces with Open vSwitch. `up` serves
// it (network API, identity, compute API) and writes openrc files for admin and demo; `demo`
// starts a fresh one, runs the walk-through, then keeps serving (or exits with --exit, which
// on the linux dataplane also takes the hosts down). Both exit non-zero when the cloud
// cannot start. `dvrnet down` removes what a linux `up` left on the machine.

import type { Command } from 'commander';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startCloud, type Cloud } from '../cloud/cloud.js';
import { runDemo } from '../cloud/demo.js';
import { loadTopology } from '../cloud/topology.js';
import { DEFAULT_NETNS_TAG, LinuxDataplane, linuxDataplaneUnavailable } from '../cloud/linux-dataplane.js';
import { Machine } from '../dataplane/linux/machine.js';

interface CloudFlags {
  stateDir?: string;
  etc: string;
  topology?: string;
  apiPort?: number;
  identityPort?: number;
  computePort?: number;
  exit?: boolean;
  dataplane: string;
  netnsTag: string;
}

const DEFAULT_STATE = ['state', 'cloud'];
/** The linux dataplane's part of a cloud's state directory (machine record, OVS databases, VMs). */
const machineDir = (stateDir: string) => join(stateDir, 'linux');

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
  if (o.dataplane !== 'emulated' && o.dataplane !== 'linux') throw new Error(`--dataplane "${o.dataplane}": emulated or linux`);
  const stateDir = o.stateDir ? resolve(o.stateDir) : fresh ? mkdtempSync(join(tmpdir(), 'dvrnet-demo-')) : resolve(...DEFAULT_STATE);
  let dataplane: LinuxDataplane | undefined;
  if (o.dataplane === 'linux') {
    const why = linuxDataplaneUnavailable();
    if (why) throw new Error(`--dataplane linux: ${why}`);
    dataplane = new LinuxDataplane(machineDir(stateDir), o.netnsTag);
    // Another cloud's hosts on this machine would be taken over, not reconciled: refuse.
    const foreign = dataplane.machine.namespaces();
    if (foreign.length && !existsSync(join(machineDir(stateDir), 'machine.json')))
      throw new Error(`namespaces of another cloud with the tag "${o.netnsTag}" exist (${foreign.slice(0, 3).join(', ')}...): run dvrnet down with that cloud's --state-dir, or choose another --netns-tag`);
  }
  return startCloud({
    dataplane,
    stateDir,
    etcDir: o.etc,
    topology: o.topology ? loadTopology(o.topology) : undefined,
    apiPort: o.apiPort,
    identityPort: o.identityPort,
    computePort: o.computePort,
  });
}

/** Everything a linux cloud made on the machine, and the cloud's state directory. */
async function takeDown(stateDir: string, tag: string): Promise<string[]> {
  const machine = new Machine(tag, machineDir(stateDir));
  const namespaces = machine.namespaces();
  await machine.down();
  // The state directory is the cloud's when startCloud wrote its cloud.conf there.
  if (existsSync(join(stateDir, 'cloud.conf'))) rmSync(stateDir, { recursive: true, force: true });
  return namespaces;
}

function serveForever(cloud: Cloud) {
  const files = writeOpenrc(cloud);
  console.log(`\nThe cloud is up: network API ${cloud.servers.api.url}, identity ${cloud.servers.identity?.authUrl ?? '(noauth)'}, compute ${cloud.computeUrl}`);
  console.log(`Credentials: source ${files[0]} (admin) or ${files[1]} (demo); then e.g. openstack network list, or dvrnet net-list.`);
  console.log(cloud.dataplane.kind === 'linux' ? `Ctrl-C stops the services; the hosts stay (dvrnet down --state-dir ${cloud.stateDir} removes them).` : 'Ctrl-C stops it.');
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
      .option('--compute-port <port>', 'compute API port (default 8774)', num)
      .option('--dataplane <kind>', 'emulated (in-process) or linux (root: namespaces, Open vSwitch userspace datapath)', 'emulated')
      .option('--netns-tag <tag>', "prefix of the linux dataplane's namespaces", DEFAULT_NETNS_TAG);

  common(program.command('up').description('run the whole cloud (server, identity, every host and its agents) on the emulated or the linux dataplane')).action(
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
      let failures: string[];
      try {
        failures = (await runDemo(cloud, { out: (l) => console.log(l) })).failures;
      } catch (err) {
        failures = [(err as Error).message];
        console.error(err);
      }
      if (o.exit || failures.length) {
        await cloud.close();
        if (cloud.dataplane.kind === 'linux' && o.exit) await takeDown(cloud.stateDir, o.netnsTag);
        // The fresh state directory it made is nobody's once the cloud is gone.
        else if (cloud.dataplane.kind === 'emulated' && !o.stateDir) rmSync(cloud.stateDir, { recursive: true, force: true });
        process.exit(failures.length ? 1 : 0);
      }
      serveForever(cloud);
    });

  program
    .command('down')
    .description("remove what `dvrnet up --dataplane linux` made on this machine: its namespaces, their processes (Open vSwitch, dnsmasq, DHCP clients), its state")
    .option('--state-dir <dir>', 'the state directory of the cloud to take down', join(...DEFAULT_STATE))
    .option('--netns-tag <tag>', "prefix of the linux dataplane's namespaces", DEFAULT_NETNS_TAG)
    .action(async (o: { stateDir: string; netnsTag: string }) => {
      const gone = await takeDown(resolve(o.stateDir), o.netnsTag);
      console.log(gone.length ? `Removed ${gone.length} namespaces (${o.netnsTag}*) and ${resolve(o.stateDir)}.` : `No namespace ${o.netnsTag}* on this machine; removed ${resolve(o.stateDir)}.`);
    });
}
