// The cloud on real Linux, all hosts on one machine (root): each node is a network namespace
// `<tag><node>` with its own ovsdb-server and ovs-vswitchd on the userspace datapath (the
// OVS agents get `[ovs] datapath_type = netdev` from their generated config), NICs as veths
// into per-segment Linux bridges, and its Neutron namespaces prefixed `<tag><node>-`. The
// external router EG and the internet host are plain namespaces on the external and
// internet segments. VMs are namespaces `<tag><node>-instance-<id>` behind their taps,
// with busybox udhcpc as DHCP client and the real `ping`.
//
// The operator's setup on such a host differs from the kernel datapath's in one way: the
// tunnel address sits on an OVS bridge (br-phy) holding the tunnel NIC, because OVS's
// userspace tunnelling routes and ARPs for the outer packets itself (linux-notes).

import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { DhcpLease } from '../dataplane/emulated/apps/dhcp.js';
import { World } from '../dataplane/emulated/world.js';
import { readLease, startDhcpClient, waitForLease } from '../dataplane/linux/dhcp-client.js';
import { LinuxDriver } from '../dataplane/linux/driver.js';
import { inNetns, ipArgv, run } from '../dataplane/linux/exec.js';
import { bootInstance, deleteInstance } from '../dataplane/linux/instance.js';
import { Machine, type HostHandle } from '../dataplane/linux/machine.js';
import { livePid } from '../dataplane/linux/services.js';
import { forUserspaceDatapath } from '../dataplane/linux/userspace.js';
import { nicMac, SEGMENTS, setupState, type Dataplane, type Endpoint, type NodeHost, type PingOutcome, type VmSpec } from './dataplane.js';
import type { NodeSpec, Topology } from './topology.js';

export const DEFAULT_NETNS_TAG = 'dvr-';

const PING_SUMMARY = /(\d+) packets transmitted, (\d+) received(?:, \+\d+ errors)?, (\d+(?:\.\d+)?)% packet loss/;

export class LinuxDataplane implements Dataplane {
  readonly kind = 'linux';
  readonly datapathType = 'netdev';
  /** Nothing runs in it: the compute API's emulated-only endpoints find no host there. */
  readonly world = new World();
  readonly machine: Machine;
  private readonly hosts = new Map<string, HostHandle>();

  /** `stateDir`: the machine's record, the hosts' OVS databases and the VMs' files. */
  constructor(
    readonly stateDir: string,
    readonly tag = DEFAULT_NETNS_TAG,
  ) {
    this.machine = new Machine(tag, stateDir);
  }

  async outside(topology: Topology): Promise<void> {
    const len = topology.external.cidr.split('/')[1];
    const outLen = topology.outside.cidr.split('/')[1];
    const eg = await this.machine.host(
      'extrouter',
      [
        { name: 'eth0', segment: 'external', mac: topology.external.gatewayMac },
        { name: 'eth1', segment: 'internet', mac: 'fa:16:3e:ee:00:02' },
      ],
      { ovs: false },
    );
    await run(ipArgv(eg.netns, ['address', 'replace', `${topology.external.gateway}/${len}`, 'dev', 'eth0']));
    await run(ipArgv(eg.netns, ['address', 'replace', `${topology.outside.router}/${outLen}`, 'dev', 'eth1']));
    await run(inNetns(eg.netns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']));
    const inet = await this.machine.host('internet', [{ name: 'eth0', segment: 'internet', mac: 'fa:16:3e:ee:00:03' }], { ovs: false });
    await run(ipArgv(inet.netns, ['address', 'replace', `${topology.outside.host}/${outLen}`, 'dev', 'eth0']));
    await run(ipArgv(inet.netns, ['route', 'replace', 'default', 'via', topology.outside.router]));
    this.hosts.set('extrouter', eg);
    this.hosts.set('internet', inet);
  }

  async addHost(topology: Topology, spec: NodeSpec): Promise<NodeHost> {
    const nics = SEGMENTS.slice(0, 4).map((segment, k) => ({ name: `eth${k}`, segment, mac: nicMac(k, spec.index) }));
    const h = await this.machine.host(spec.name, nics);
    this.hosts.set(spec.name, h);
    // The host keeps its state across a cloud restart (OVSDB, namespaces): the driver reads it back.
    return { driver: new LinuxDriver(h.driverOptions), setup: forUserspaceDatapath(setupState(topology, spec), { tunnelNic: 'eth1' }) };
  }

  private handle(host: string): HostHandle {
    const h = this.hosts.get(host);
    if (!h) throw new Error(`No host "${host}" on this machine`);
    return h;
  }

  /** The VM's namespace: Nova-like `instance-` and the first block of its id, under the host's prefix. */
  vmNetns(vm: Pick<VmSpec, 'host' | 'id'>): string {
    return `${this.handle(vm.host).prefix}instance-${vm.id.slice(0, 8)}`;
  }

  private vmDir(vm: Pick<VmSpec, 'host' | 'id'>): string {
    return join(this.handle(vm.host).stateDir, 'instances', vm.id);
  }

  private readonly vms = new Map<string, VmSpec>();

  async startVm(vm: VmSpec): Promise<void> {
    const h = this.handle(vm.host);
    const netns = this.vmNetns(vm);
    this.vms.set(`${vm.host}/${vm.name}`, vm);
    const running = existsSync(`/run/netns/${netns}`) && livePid(join(this.vmDir(vm), 'udhcpc.pid'), 'udhcpc') !== undefined;
    if (!running) {
      await bootInstance({ netns, hostNetns: h.netns, tap: vm.tap, mac: vm.mac });
      // What libvirt does with a hybrid-plugged VIF: the tap carries the port's MAC with
      // fe: in front and joins the qbr bridge os-vif made.
      await run(ipArgv(h.netns, ['link', 'set', 'dev', vm.tap, 'address', `fe${vm.mac.slice(2)}`, 'master', vm.bridge, 'up']));
    }
    await startDhcpClient({ netns, dir: this.vmDir(vm) });
  }

  async deleteVm(vm: VmSpec): Promise<void> {
    this.vms.delete(`${vm.host}/${vm.name}`);
    const pid = livePid(join(this.vmDir(vm), 'udhcpc.pid'), 'udhcpc');
    if (pid !== undefined) process.kill(pid, 'SIGTERM');
    await deleteInstance(this.vmNetns(vm));
    rmSync(this.vmDir(vm), { recursive: true, force: true });
  }

  dhcp(vm: VmSpec): DhcpLease | undefined {
    return readLease(this.vmDir(vm));
  }

  /** The namespace an endpoint stands for: an outside host, a node, one of its namespaces, or a VM by name. */
  private endpointNetns(from: Endpoint): { netns: string; vm?: VmSpec } {
    const h = this.handle(from.host);
    if (!from.ns) return { netns: h.netns };
    const vm = this.vms.get(`${from.host}/${from.ns}`);
    if (vm) return { netns: this.vmNetns(vm), vm };
    return { netns: `${h.prefix}${from.ns}` };
  }

  async ping(from: Endpoint, dst: string, count = 4): Promise<PingOutcome> {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(dst)) throw new Error(`ping: "${dst}" is not an IPv4 address`);
    const { netns, vm } = this.endpointNetns(from);
    // A VM pings once its DHCP client has an address (a real VM's network comes up on its own).
    if (vm && !(await waitForLease(this.vmDir(vm), 60_000))) return { sent: 0, received: 0, summary: `${from.ns} has no DHCP lease (udhcpc got no answer)` };
    // The agents have applied; the first packets may still wait on ARP and learnt flows
    // along the path: a ping that loses packets is retried a few times before it counts.
    let last: PingOutcome = { sent: 0, received: 0, summary: '' };
    for (let attempt = 0; attempt < 4; attempt++) {
      if (attempt) await new Promise((r) => setTimeout(r, 1500));
      const r = await run(['ip', 'netns', 'exec', netns, 'ping', '-n', '-c', String(count), '-i', '0.2', '-W', '1', dst], { okCodes: [0, 1, 2], timeoutMs: 30_000 });
      const m = PING_SUMMARY.exec(r.stdout);
      last = m ? { sent: Number(m[1]), received: Number(m[2]), summary: m[0] } : { sent: count, received: 0, summary: (r.stdout + r.stderr).trim().split('\n').pop() ?? '' };
      if (last.received === last.sent && last.sent > 0) break;
    }
    return last;
  }

  async namespaces(host: string): Promise<string[]> {
    const prefix = this.handle(host).prefix;
    if (!existsSync('/run/netns')) return [];
    return readdirSync('/run/netns')
      .filter((n) => n.startsWith(prefix))
      .sort();
  }

  netnsName(host: string, ns: string): string {
    return `${this.handle(host).prefix}${ns}`;
  }

  /** Everything `up` made on the machine: processes in its namespaces, the namespaces, the state. */
  async down(): Promise<void> {
    await this.machine.down();
  }
}

/** Whether this machine can run the linux dataplane; the reason when not. */
export function linuxDataplaneUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the linux dataplane needs root (network namespaces, Open vSwitch)';
  if (!['/usr/sbin/ovs-vswitchd', '/usr/bin/ovs-vswitchd'].some(existsSync)) return 'ovs-vswitchd is not installed (apt-get install openvswitch-switch)';
  for (const [tool, paths] of [
    ['busybox', ['/usr/bin/busybox', '/bin/busybox']],
    ['dnsmasq', ['/usr/sbin/dnsmasq']],
    ['ethtool', ['/usr/sbin/ethtool', '/sbin/ethtool']],
    ['ping', ['/usr/bin/ping', '/bin/ping']],
  ] as const)
    if (!paths.some(existsSync)) return `${tool} is not installed`;
  return undefined;
}
