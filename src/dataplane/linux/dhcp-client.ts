// An instance's DHCP client on the linux dataplane: busybox `udhcpc` running inside the
// instance's namespace, as a cirros image runs it at boot. It keeps asking until the port is
// wired and dnsmasq answers, then renews. udhcpc leaves configuring the interface to its
// event program: ours (written next to the instance's files, run by udhcpc with the event
// as its argument and the lease in its environment) applies the lease with `ip` argument
// vectors and records it as JSON, so the compute service can report the address it got.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { inNetns } from './exec.js';
import { livePid } from './services.js';

export interface ClientLease {
  ip: string;
  /** The subnet, e.g. `192.168.1.0/24`. */
  cidr: string;
  router?: string;
  mtu?: number;
  routes: Array<{ dst: string; via: string }>;
  server: string;
}

// The event program (CommonJS, run by the node that runs dvrnet). udhcpc's variables:
// interface, ip, mask (prefix length), subnet (dotted), router (list), mtu, serverid.
const HOOK = `'use strict';
const { execFileSync } = require('node:child_process');
const { writeFileSync, rmSync } = require('node:fs');
const env = process.env;
const dev = env.interface || 'eth0';
const leaseFile = env.DVRNET_LEASE_FILE;
const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'inherit'] });
const toInt = (a) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const toDotted = (n) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
const event = process.argv[2];
if (event === 'deconfig') {
  ip('addr', 'flush', 'dev', dev);
  ip('link', 'set', 'dev', dev, 'up');
  if (leaseFile) rmSync(leaseFile, { force: true });
} else if (event === 'bound' || event === 'renew') {
  const len = env.mask ? Number(env.mask) : (toInt(env.subnet || '255.255.255.0').toString(2).match(/1/g) || []).length;
  const net = toDotted(toInt(env.ip) - (toInt(env.ip) % 2 ** (32 - len)));
  const router = (env.router || '').split(/\\s+/).filter(Boolean)[0];
  const mtu = env.mtu ? Number(env.mtu) : undefined;
  if (mtu) ip('link', 'set', 'dev', dev, 'mtu', String(mtu));
  ip('addr', 'replace', env.ip + '/' + len, 'dev', dev);
  if (router) ip('route', 'replace', 'default', 'via', router, 'dev', dev);
  const lease = { ip: env.ip, cidr: net + '/' + len, router, mtu, routes: [], server: env.serverid || '' };
  if (leaseFile) writeFileSync(leaseFile, JSON.stringify(lease) + '\\n');
}
`;

export interface DhcpClientSpec {
  /** The instance's namespace. */
  netns: string;
  /** Where the client's pid, log and lease files go. */
  dir: string;
  dev?: string;
}

const pidFile = (dir: string) => join(dir, 'udhcpc.pid');
const leaseFile = (dir: string) => join(dir, 'lease.json');

/** Starts udhcpc in the instance's namespace unless it runs already. */
export async function startDhcpClient(c: DhcpClientSpec): Promise<void> {
  mkdirSync(c.dir, { recursive: true });
  if (livePid(pidFile(c.dir), 'udhcpc') !== undefined) return;
  const hook = join(c.dir, 'udhcpc-event.cjs');
  writeFileSync(hook, `#!${process.execPath}\n${HOOK}`);
  chmodSync(hook, 0o755);
  // -T 1 -t 3 -A 2: three DISCOVERs a second apart, a short pause, again; -f: stay in the
  // foreground of our detached child, so the pid file is the client's own.
  const argv = inNetns(c.netns, ['busybox', 'udhcpc', '-f', '-i', c.dev ?? 'eth0', '-s', hook, '-p', pidFile(c.dir), '-T', '1', '-t', '3', '-A', '2']);
  const log = openSync(join(c.dir, 'udhcpc.log'), 'a');
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', log, log], env: { ...process.env, DVRNET_LEASE_FILE: leaseFile(c.dir) } });
  closeSync(log);
  child.unref();
  for (let i = 0; i < 40; i++) {
    if (livePid(pidFile(c.dir), 'udhcpc') !== undefined) return;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`udhcpc did not start in namespace ${c.netns}: ${tail(join(c.dir, 'udhcpc.log'))}`);
}

/** The lease the client holds now (undefined before the first ACK). */
export function readLease(dir: string): ClientLease | undefined {
  const f = leaseFile(dir);
  if (!existsSync(f)) return undefined;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as ClientLease;
  } catch {
    return undefined; // being written
  }
}

/** Waits up to `timeoutMs` for a lease. */
export async function waitForLease(dir: string, timeoutMs = 30_000): Promise<ClientLease | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const l = readLease(dir);
    if (l || Date.now() > until) return l;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return '(no log)';
  }
}
