// Several hosts on one machine: each emulated host is a network namespace running its own
// ovsdb-server and ovs-vswitchd (userspace datapath), with NICs that are veth pairs into
// Linux bridges in a shared "fabric" namespace, one bridge per segment (management, tunnel,
// external). Each host's own namespaces (qrouter-, fip-, instances) carry the host's prefix.
//
// `up` reconciles instead of failing: what exists and is healthy is kept (a live daemon, a
// namespace, a NIC), what is missing or dead is made again, so `up` after a crash heals.
// `down` removes exactly what `up` and the hosts' drivers made: the processes in this
// machine's namespaces, the namespaces with this machine's tag, the state directory.
// A record file in the state directory lets a later process tear down after a crash.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inNetns, ipArgv, run } from './exec.js';
import { livePid } from './services.js';
import type { LinuxDriverOptions } from './driver.js';

export interface NicSpec {
  name: string;
  segment: string;
  mac?: string;
}

export interface HostHandle {
  name: string;
  /** The host's root namespace on the machine. */
  netns: string;
  /** Prefix of the host's other namespaces. */
  prefix: string;
  stateDir: string;
  ovs: { dbSock: string; rundir: string };
  nics: NicSpec[];
  /** Options for a LinuxDriver of this host. */
  driverOptions: LinuxDriverOptions;
}

interface Record_ {
  tag: string;
  hosts: Record<string, NicSpec[]>;
  segments: string[];
}

const TAG = /^[a-z][a-z0-9]{0,7}-$/;
const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

export class Machine {
  readonly fabric: string;
  private readonly recordFile: string;
  private record: Record_;

  /** `tag` prefixes every namespace (`dvr-`); `stateDir` holds each host's OVS database and sockets. */
  constructor(
    readonly tag: string,
    readonly stateDir: string,
  ) {
    if (!TAG.test(tag)) throw new Error(`Machine tag "${tag}" is not 1-8 lower-case letters/digits and a "-"`);
    this.fabric = `${tag}fabric`;
    this.recordFile = join(stateDir, 'machine.json');
    this.record = existsSync(this.recordFile) ? (JSON.parse(readFileSync(this.recordFile, 'utf8')) as Record_) : { tag, hosts: {}, segments: [] };
  }

  private save(): void {
    mkdirSync(this.stateDir, { recursive: true });
    writeFileSync(this.recordFile, JSON.stringify(this.record, null, 1));
  }

  hostNetns(name: string): string {
    return `${this.tag}${name}`;
  }

  private async ensureNetns(ns: string): Promise<void> {
    if (!existsSync(`/run/netns/${ns}`)) await run(['ip', 'netns', 'add', ns]);
    await run(ipArgv(ns, ['link', 'set', 'dev', 'lo', 'up']));
  }

  private async linkExists(ns: string, dev: string): Promise<boolean> {
    return run(ipArgv(ns, ['link', 'show', 'dev', dev])).then(
      () => true,
      () => false,
    );
  }

  /** A Linux bridge in the fabric namespace standing for one network segment. */
  async segment(name: string): Promise<string> {
    if (!/^[a-z0-9]{1,11}$/.test(name)) throw new Error(`Segment name "${name}" is not 1-11 lower-case letters/digits`);
    await this.ensureNetns(this.fabric);
    const br = `seg-${name}`;
    if (!(await this.linkExists(this.fabric, br))) await run(ipArgv(this.fabric, ['link', 'add', br, 'type', 'bridge']));
    await run(ipArgv(this.fabric, ['link', 'set', 'dev', br, 'up']));
    if (!this.record.segments.includes(name)) this.record.segments.push(name);
    this.save();
    return br;
  }

  /**
   * Makes (or heals) one host: namespace, NICs on their segments, OVS daemons (`ovs: false`:
   * a plain host without Open vSwitch, e.g. a router or a host outside the cloud).
   */
  async host(name: string, nics: NicSpec[], opts: { ovs?: boolean } = {}): Promise<HostHandle> {
    if (!/^[a-z][a-z0-9]{0,11}$/.test(name)) throw new Error(`Host name "${name}" is not 1-12 lower-case letters/digits`);
    const netns = this.hostNetns(name);
    const dir = join(this.stateDir, name);
    mkdirSync(dir, { recursive: true });
    this.record.hosts[name] = nics;
    this.save();
    await this.ensureNetns(netns);
    const index = Object.keys(this.record.hosts).indexOf(name);
    for (const nic of nics) {
      if (!/^[a-z0-9]{1,8}$/.test(nic.name)) throw new Error(`NIC name "${nic.name}" is not 1-8 lower-case letters/digits`);
      const br = await this.segment(nic.segment);
      const far = `h${index}-${nic.name}`; // the fabric end, unique in the fabric namespace
      if (!(await this.linkExists(netns, nic.name))) {
        if (await this.linkExists(this.fabric, far)) await run(ipArgv(this.fabric, ['link', 'del', 'dev', far]));
        await run(ipArgv(netns, ['link', 'add', nic.name, ...(nic.mac ? ['address', nic.mac] : []), 'type', 'veth', 'peer', 'name', far, 'netns', this.fabric]));
      }
      await run(ipArgv(this.fabric, ['link', 'set', 'dev', far, 'master', br, 'up']));
      await run(ipArgv(netns, ['link', 'set', 'dev', nic.name, 'up']));
      for (const [ns, dev] of [[netns, nic.name], [this.fabric, far]]) await run(inNetns(ns, ['ethtool', '-K', dev, 'tx', 'off'])).catch(() => undefined);
    }
    if (opts.ovs !== false) await this.startOvs(netns, dir);
    const ovs = { dbSock: join(dir, 'db.sock'), rundir: dir };
    return {
      name,
      netns,
      prefix: `${netns}-`,
      stateDir: dir,
      ovs,
      nics,
      driverOptions: { hostName: name, netnsPrefix: `${netns}-`, rootNetns: netns, ovs, stateDir: join(dir, 'dvrnet'), nics: nics.map((n) => n.name) },
    };
  }

  private async startOvs(netns: string, dir: string): Promise<void> {
    const env = { ...process.env, OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir, OVS_SYSCONFDIR: dir };
    const db = join(dir, 'conf.db');
    const sock = join(dir, 'db.sock');
    if (livePid(join(dir, 'ovsdb.pid'), 'ovsdb-server') === undefined) {
      if (!existsSync(db)) await run(['ovsdb-tool', 'create', db, SCHEMA], { env });
      rmSync(sock, { force: true });
      await run(inNetns(netns, ['ovsdb-server', db, `--remote=punix:${sock}`, `--pidfile=${join(dir, 'ovsdb.pid')}`, '--detach', `--log-file=${join(dir, 'ovsdb.log')}`]), { env });
      await run(['ovs-vsctl', `--db=unix:${sock}`, '--no-wait', 'init'], { env });
    }
    if (livePid(join(dir, 'vswitchd.pid'), 'ovs-vswitchd') === undefined) {
      await run(inNetns(netns, ['ovs-vswitchd', `unix:${sock}`, `--pidfile=${join(dir, 'vswitchd.pid')}`, '--detach', `--log-file=${join(dir, 'vswitchd.log')}`]), { env });
    }
  }

  /** This machine's namespaces: the fabric, the hosts and every namespace with a host's prefix. */
  namespaces(): string[] {
    if (!existsSync('/run/netns')) return [];
    return readdirSync('/run/netns').filter((n) => n.startsWith(this.tag));
  }

  /** Stops every process in this machine's namespaces, deletes the namespaces and the state directory. */
  async down(): Promise<void> {
    const nss = this.namespaces();
    const pids = new Set<number>();
    for (const ns of nss) {
      const r = await run(['ip', 'netns', 'pids', ns]).catch(() => ({ stdout: '' }));
      for (const p of r.stdout.split(/\s+/)) if (/^\d+$/.test(p)) pids.add(Number(p));
    }
    for (const p of pids) {
      try {
        process.kill(p, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    for (let i = 0; i < 40 && [...pids].some((p) => existsSync(`/proc/${p}`) && !isZombie(p)); i++) await new Promise((r) => setTimeout(r, 50));
    for (const p of pids) {
      try {
        if (existsSync(`/proc/${p}`) && !isZombie(p)) process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const ns of nss) await run(['ip', 'netns', 'del', ns]).catch(() => undefined);
    rmSync(this.stateDir, { recursive: true, force: true });
    this.record = { tag: this.tag, hosts: {}, segments: [] };
  }
}

function isZombie(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z';
  } catch {
    return true;
  }
}
