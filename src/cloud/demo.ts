// `dvrnet demo`: a fresh all-in-one cloud, then the scenario's walk-through (spec section
// 6, steps 1-14) with each command run through the real `dvrnet` command line and printed
// as the scenario shows it, the pings with ping's own summaries, the east-west case across
// compute1 and compute2, and the traces of the three packet flows of section 4 (emulated
// dataplane; on the linux dataplane the pings are real and there are no traces). Any step,
// ping or expected failure that does not behave as the scenario says makes it exit non-zero.

import type { Io } from '../cli/core/run.js';
import { runClient } from '../cli/core/run.js';
import { renderTrace } from '../trace/render.js';
import type { TraceRecord } from '../trace/record.js';
import type { Cloud } from './cloud.js';

export interface DemoOptions {
  out: (line: string) => void;
}

type Who = 'admin' | 'demo';

export async function runDemo(cloud: Cloud, o: DemoOptions): Promise<{ failures: string[] }> {
  const failures: string[] = [];
  const ic = cloud.conf.identity!;
  const identityUrl = cloud.servers.identity?.authUrl;
  const env = (who: Who): NodeJS.ProcessEnv => ({
    OS_AUTH_URL: identityUrl,
    OS_USERNAME: who,
    OS_PASSWORD: who === 'admin' ? ic.admin_password : ic.demo_password,
    OS_PROJECT_NAME: who,
    OS_USER_DOMAIN_NAME: 'Default',
    OS_PROJECT_DOMAIN_NAME: 'Default',
  });
  const say = (s = '') => o.out(s);
  const step = (n: number | string, title: string) => say(`\n=== Step ${n}: ${title}`);

  /** Run a dvrnet client command as `who`; print it and its output; return stdout. */
  const run = async (who: Who, argv: string[], opts: { quiet?: boolean; expectFail?: RegExp } = {}) => {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { env: env(who), out: (t) => out.push(t), err: (t) => err.push(t) };
    if (!opts.quiet) say(`[${who}]$ dvrnet ${argv.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ')}`);
    const code = await runClient(argv, io);
    if (!opts.quiet) {
      for (const l of out) say(l);
      for (const l of err) say(l);
    }
    if (opts.expectFail) {
      if (code === 0 || !opts.expectFail.test(err.join('\n'))) failures.push(`expected failure of 'dvrnet ${argv.join(' ')}' did not happen as expected`);
      else say('(fails, as the scenario expects)');
    } else if (code !== 0) failures.push(`'dvrnet ${argv.join(' ')}' failed: ${err.join(' ') || `exit ${code}`}`);
    return out.join('\n').trim();
  };
  const value = (who: Who, argv: string[]) => run(who, [...argv, '-f', 'value'], { quiet: true });

  const pingShow = async (label: string, from: { host: string; ns?: string }, dst: string, expect = true) => {
    say(`${label}$ ping -c 4 ${dst}`);
    const r = await cloud.dataplane.ping(from, dst, 4);
    say(r.summary);
    if ((r.received === r.sent) !== expect) failures.push(`ping ${dst} from ${label}: ${r.summary}`);
    return r;
  };
  const netns = async (host: string, expect: string[]) => {
    say(`[${host}]$ ip netns`);
    const names = await cloud.dataplane.namespaces(host);
    for (const n of names) say(n);
    for (const e of expect.map((n) => cloud.dataplane.netnsName(host, n))) if (!names.includes(e)) failures.push(`namespace ${e} missing on ${host}`);
  };

  step(1, 'the agents (as admin)');
  await cloud.settle();
  await run('admin', ['agent-list']);

  step(2, 'the external network');
  await run('admin', ['net-create', 'ext-net', '--router:external', '--provider:physical_network', 'external', '--provider:network_type', 'flat']);

  step(3, 'its subnet, the floating IP range');
  await run('admin', ['subnet-create', 'ext-net', '203.0.113.0/24', '--name', 'ext-subnet', '--allocation-pool', 'start=203.0.113.101,end=203.0.113.200', '--disable-dhcp', '--gateway', '203.0.113.1']);

  step(4, 'the demo project network (as admin, VXLAN)');
  await run('admin', ['project-show', 'demo']);
  const demoId = await value('admin', ['project-show', 'demo', '-c', 'id']);
  await run('admin', ['net-create', 'demo-net', '--tenant-id', demoId, '--provider:network_type', 'vxlan']);

  step(5, 'the demo subnet (as demo)');
  await run('demo', ['subnet-create', 'demo-net', '--name', 'demo-subnet', '--gateway', '192.168.1.1', '192.168.1.0/24']);

  step(6, 'the router (as demo): distributed by default, hidden from demo');
  await run('demo', ['router-create', 'demo-router']);
  await run('admin', ['router-show', 'demo-router', '-c', 'distributed', '-c', 'ha']);

  step(7, 'the router interface and gateway');
  await run('demo', ['router-interface-add', 'demo-router', 'demo-subnet']);
  await run('demo', ['router-gateway-set', 'demo-router', 'ext-net']);
  await cloud.settle();

  const routerId = await value('admin', ['router-show', 'demo-router', '-c', 'id']);
  const netId = await value('admin', ['net-show', 'demo-net', '-c', 'id']);
  const extId = await value('admin', ['net-show', 'ext-net', '-c', 'id']);

  step(8, 'namespaces on the network node');
  await netns('network1', [`snat-${routerId}`, `qrouter-${routerId}`, `qdhcp-${netId}`]);

  step(9, 'the router ports; ping the router gateway from the external network');
  await run('admin', ['router-port-list', 'demo-router']);
  await pingShow('[extrouter]', { host: 'extrouter' }, '203.0.113.101');

  step(10, 'an instance on demo-net; the router follows it to its compute node');
  // The compute service places instances on the least loaded compute node: compute1 first.
  await run('demo', ['boot', '--flavor', 'm1.tiny', '--image', 'cirros', '--nic', `net-id=${netId}`, '--security-group', 'default', 'demo-instance1']);
  await cloud.settle();
  const i1 = cloud.compute.list({ projectId: demoId, userId: 'demo', roles: ['member'], isAdmin: false }).find((i) => i.name === 'demo-instance1');
  let snatTrace: TraceRecord | undefined;
  if (i1) {
    await netns(i1.host, [`qrouter-${routerId}`]);
    await pingShow('[demo-instance1]', { host: i1.host, ns: i1.name }, '192.168.1.1');
    const outside = await pingShow('[demo-instance1]', { host: i1.host, ns: i1.name }, cloud.topology.outside.host);
    snatTrace = outside.first;
  } else failures.push('demo-instance1 was not booted');

  step(11, 'security group rules for ICMP and SSH');
  await run('demo', ['secgroup-add-rule', 'default', 'icmp', '-1', '-1', '0.0.0.0/0']);
  await run('demo', ['secgroup-add-rule', 'default', 'tcp', '22', '22', '0.0.0.0/0']);

  step(12, 'a floating IP for the instance');
  await run('demo', ['floatingip-create', 'ext-net']);
  await run('demo', ['floating-ip-associate', 'demo-instance1', '203.0.113.102']);
  await cloud.settle();
  await run('demo', ['list']);

  step(13, 'the fip namespace on the compute node');
  if (i1) await netns(i1.host, [`fip-${extId}`]);

  step(14, 'ping the floating IP from the outside');
  const fipPing = await pingShow('[internet]', { host: 'internet' }, '203.0.113.102');

  step('14b', 'east-west: a second network on the same router, an instance on compute2');
  // Like demo-net, a VXLAN network made by admin for demo (section 4 draws VXLAN only).
  await run('admin', ['net-create', 'demo-net2', '--tenant-id', demoId, '--provider:network_type', 'vxlan']);
  await run('demo', ['subnet-create', 'demo-net2', '--name', 'demo-subnet2', '--gateway', '192.168.2.1', '192.168.2.0/24']);
  await run('demo', ['router-interface-add', 'demo-router', 'demo-subnet2']);
  const net2Id = await value('demo', ['net-show', 'demo-net2', '-c', 'id']);
  // ...and the second one on compute2, the least loaded then.
  await run('demo', ['boot', '--flavor', 'm1.tiny', '--image', 'cirros', '--nic', `net-id=${net2Id}`, '--security-group', 'default', 'demo-instance2']);
  await cloud.settle();
  const i2 = cloud.compute.list({ projectId: demoId, userId: 'demo', roles: ['member'], isAdmin: false }).find((i) => i.name === 'demo-instance2');
  if (i2 && i2.host !== 'compute2') failures.push(`demo-instance2 landed on ${i2.host}, not compute2`);
  let ewTrace: TraceRecord | undefined;
  if (i1 && i2) ewTrace = (await pingShow('[demo-instance1]', { host: i1.host, ns: i1.name }, i2.lease?.ip ?? i2.fixed_ip)).first;
  else failures.push('demo-instance2 was not booted');

  // Traces are the emulated dataplane's record of a packet; real pings leave none.
  if (fipPing.first) {
    say('\n=== Packet flow 4.1: north-south, fixed IP only (SNAT through network1)');
    if (snatTrace) say(renderTrace(snatTrace, { compact: true }));
    say('\n=== Packet flow 4.2: north-south, floating IP (compute1 only)');
    say(renderTrace(fipPing.first, { compact: true }));
    say('\n=== Packet flow 4.3: east-west (compute1 -> compute2)');
    if (ewTrace) say(renderTrace(ewTrace, { compact: true }));
  }

  say(failures.length ? `\nThe walk-through FAILED:\n- ${failures.join('\n- ')}` : '\nThe walk-through behaved as the scenario says.');
  return { failures };
}
