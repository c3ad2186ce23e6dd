// The host's network services as processes: one dnsmasq per DHCP server, started inside its
// namespace with Neutron's Dnsmasq driver's options and files (hosts, options, leases, pid
// under the state directory), and one small metadata proxy (metadata-proxy.ts) per proxy.
// A service is "running" when its pid file names a live process whose command line holds
// that pid file, so a pid reused by another program is not mistaken for it.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DhcpServer, MetadataProxy } from '../../host/state.js';
import { inNetns, run } from './exec.js';

function ipv4Netmask(len: number): string {
  const m = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

export function dnsmasqHosts(d: DhcpServer): string {
  return d.hosts.map((h) => `${h.mac},${h.hostname}.${d.domain},${h.ip}`).join('\n') + '\n';
}

export function dnsmasqOpts(d: DhcpServer): string {
  return (
    d.options
      .filter((o) => !o.force)
      .map((o) => [...(o.tag ? [`tag:${o.tag}`] : []), String(o.option), ...o.values].join(','))
      .join('\n') + '\n'
  );
}

export function dnsmasqArgs(d: DhcpServer, dir: string): string[] {
  const lease = d.lease_time === -1 ? 'infinite' : `${d.lease_time}s`;
  const args = [
    'dnsmasq',
    '--no-hosts',
    '--no-resolv',
    `--pid-file=${join(dir, 'pid')}`,
    `--dhcp-hostsfile=${join(dir, 'host')}`,
    `--addn-hosts=${join(dir, 'addn_hosts')}`,
    `--dhcp-optsfile=${join(dir, 'opts')}`,
    `--dhcp-leasefile=${join(dir, 'leases')}`,
    '--dhcp-match=set:ipxe,175',
    '--bind-interfaces',
    `--interface=${d.interface}`,
    '--except-interface=lo',
    '--user=root',
    '--group=root',
    '--conf-file=/dev/null',
    `--domain=${d.domain}`,
  ];
  for (const r of d.ranges) {
    const [net, len] = r.cidr.split('/');
    args.push(net.includes(':') ? `--dhcp-range=set:${r.tag},${net},static,${len},${lease}` : `--dhcp-range=set:${r.tag},${net},static,${ipv4Netmask(Number(len))},${lease}`);
  }
  for (const o of d.options) if (o.force) args.push(`--dhcp-option-force=${[...(o.tag ? [`tag:${o.tag}`] : []), String(o.option), ...o.values].join(',')}`);
  args.push(`--dhcp-lease-max=${Math.max(16, d.hosts.length * 2)}`);
  return args;
}

/** The pid in `pidFile` if that process is alive and its command line mentions `marker`. */
export function livePid(pidFile: string, marker: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes(marker) ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function stopPid(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 40; i++) {
    if (!existsSync(`/proc/${pid}`)) return;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ');
    if (stat[2] === 'Z') return; // a zombie is gone as a service
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

export class Services {
  constructor(private readonly stateDir: string) {}

  private dhcpDir(id: string): string {
    return join(this.stateDir, 'dhcp', id);
  }

  dhcpRunning(id: string): boolean {
    const dir = this.dhcpDir(id);
    return livePid(join(dir, 'pid'), join(dir, 'pid')) !== undefined;
  }

  private writeDhcpFiles(d: DhcpServer): string {
    const dir = this.dhcpDir(d.id);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'host'), dnsmasqHosts(d));
    writeFileSync(join(dir, 'opts'), dnsmasqOpts(d));
    writeFileSync(join(dir, 'addn_hosts'), d.hosts.map((h) => `${h.ip}\t${h.hostname}.${d.domain}\t${h.hostname}`).join('\n') + '\n');
    return dir;
  }

  async dhcpStart(d: DhcpServer, netns: string | undefined): Promise<void> {
    const dir = this.writeDhcpFiles(d);
    if (this.dhcpRunning(d.id)) await this.dhcpStop(d.id);
    await run(inNetns(netns, dnsmasqArgs(d, dir)));
  }

  async dhcpReload(d: DhcpServer, netns: string | undefined): Promise<void> {
    const dir = this.writeDhcpFiles(d);
    const pid = livePid(join(dir, 'pid'), join(dir, 'pid'));
    if (pid === undefined) return this.dhcpStart(d, netns);
    process.kill(pid, 'SIGHUP');
  }

  async dhcpStop(id: string): Promise<void> {
    const dir = this.dhcpDir(id);
    const pid = livePid(join(dir, 'pid'), join(dir, 'pid'));
    if (pid !== undefined) await stopPid(pid);
    rmSync(dir, { recursive: true, force: true });
  }

  // --- metadata proxies

  private proxyPidFile(id: string): string {
    return join(this.stateDir, 'metadata', `${id}.pid`);
  }

  metadataRunning(id: string): boolean {
    const f = this.proxyPidFile(id);
    return livePid(f, f) !== undefined;
  }

  async metadataStart(m: MetadataProxy, netns: string | undefined): Promise<void> {
    const pidFile = this.proxyPidFile(m.id);
    mkdirSync(join(this.stateDir, 'metadata'), { recursive: true });
    if (this.metadataRunning(m.id)) await this.metadataStop(m.id);
    const here = fileURLToPath(import.meta.url);
    const script = here.replace(/services\.(ts|js)$/, 'metadata-proxy.$1');
    const node = script.endsWith('.ts') ? [process.execPath, '--import', 'tsx', script] : [process.execPath, script];
    const args = [...node, `--listen=${m.listen_ip}:${m.listen_port}`, `--upstream=${m.upstream}`, `--pid-file=${pidFile}`];
    if (m.router_id) args.push(`--router-id=${m.router_id}`);
    if (m.network_id) args.push(`--network-id=${m.network_id}`);
    const argv = inNetns(netns, args);
    const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: 'ignore', cwd: process.cwd() });
    child.unref();
    // The proxy writes its pid file once it listens: wait for it (or for it to die).
    for (let i = 0; i < 100; i++) {
      if (this.metadataRunning(m.id)) return;
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`metadata proxy ${m.id} did not start listening on ${m.listen_ip}:${m.listen_port}`);
  }

  async metadataStop(id: string): Promise<void> {
    const f = this.proxyPidFile(id);
    const pid = livePid(f, f);
    if (pid !== undefined) await stopPid(pid);
    rmSync(f, { force: true });
  }
}
