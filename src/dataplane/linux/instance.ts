// An instance on the linux dataplane: a network namespace whose eth0 is the far end of a
// veth pair; the near end is the instance's "tap" on the host (what libvirt's tap is for a
// VM). The driver adopts such a tap when the state names it (tap -> qbr as os-vif plugs it).
// TX checksum offload is off on both ends so TCP/UDP survive OVS's userspace datapath.
import { existsSync } from 'node:fs';
import { CommandError, inNetns, ipArgv, run } from './exec.js';

export interface InstanceSpec {
  /** The instance's namespace on the machine. */
  netns: string;
  /** The host's namespace holding the tap (undefined: this process's namespace). */
  hostNetns?: string;
  tap: string;
  mac: string;
  /** `192.168.1.11/24`, or undefined to leave addressing to a DHCP client. */
  cidr?: string;
  gateway?: string;
  mtu?: number;
}

const NAME = /^[A-Za-z0-9_.][A-Za-z0-9_.-]*$/;

export async function bootInstance(i: InstanceSpec): Promise<void> {
  for (const [what, v] of [['netns', i.netns], ['tap', i.tap]] as const) if (!NAME.test(v)) throw new Error(`Instance ${what} "${v}" is not a plain name`);
  if (i.tap.length > 15) throw new Error(`Instance tap "${i.tap}" is longer than 15 characters`);
  if (!existsSync(`/run/netns/${i.netns}`)) await run(['ip', 'netns', 'add', i.netns]);
  const ip = (ns: string | undefined, args: string[]) => run(ipArgv(ns, args));
  const have = await ip(i.hostNetns, ['-j', '-d', 'link', 'show', 'dev', i.tap]).then(
    (r) => (JSON.parse(r.stdout) as { linkinfo?: { info_kind?: string } }[])[0],
    () => undefined,
  );
  if (have && have.linkinfo?.info_kind !== 'veth') await ip(i.hostNetns, ['link', 'del', 'dev', i.tap]);
  if (!have || have.linkinfo?.info_kind !== 'veth') {
    await ip(i.hostNetns, ['link', 'add', i.tap, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', i.netns]);
  }
  await ip(i.hostNetns, ['link', 'set', 'dev', i.tap, 'up']);
  await ip(i.netns, ['link', 'set', 'dev', 'lo', 'up']);
  await ip(i.netns, ['link', 'set', 'dev', 'eth0', 'address', i.mac, ...(i.mtu ? ['mtu', String(i.mtu)] : []), 'up']);
  if (i.cidr) await ip(i.netns, ['address', 'replace', i.cidr, 'dev', 'eth0']);
  if (i.gateway) await ip(i.netns, ['route', 'replace', 'default', 'via', i.gateway, 'dev', 'eth0']);
  for (const [ns, dev] of [[i.hostNetns, i.tap], [i.netns, 'eth0']] as const) {
    await run(inNetns(ns, ['ethtool', '-K', dev, 'tx', 'off'])).catch(() => undefined);
  }
}

/** `ping` from inside the instance; resolves with ping's output, rejects with it (CommandError) on loss. */
export async function pingFrom(netns: string, dst: string, count = 3): Promise<string> {
  const r = await run(['ip', 'netns', 'exec', netns, 'ping', '-c', String(count), '-i', '0.2', '-W', '2', dst], { timeoutMs: 20_000 });
  return r.stdout;
}

export async function deleteInstance(netns: string): Promise<void> {
  if (!existsSync(`/run/netns/${netns}`)) return;
  await run(['ip', 'netns', 'del', netns]).catch((e: CommandError) => {
    throw e;
  });
}
