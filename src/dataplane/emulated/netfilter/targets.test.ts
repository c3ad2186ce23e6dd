// One test per target.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Frame } from '../packet.js';
import { Netfilter, type NfContext, type NfHook } from './index.js';
import { ipOf, ping, tcp, udp } from './test-frames.js';

const T = tcp('10.0.0.5', 1234, '192.168.1.10', 80);

function nfWith(text: string): Netfilter {
  const nf = new Netfilter();
  nf.restore(text);
  return nf;
}

/** Runs a routed packet through PREROUTING, FORWARD, POSTROUTING carrying ct and mark. */
function forward(nf: Netfilter, f: Frame, ctx: NfContext = { in: 'eth0', out: 'eth1' }) {
  const steps = [];
  let cur = { frame: f, ct: ctx.ct, mark: ctx.mark ?? 0 };
  for (const hook of ['PREROUTING', 'FORWARD', 'POSTROUTING'] as NfHook[]) {
    const r = nf.hook(hook, cur.frame, {
      ...ctx,
      in: hook === 'POSTROUTING' ? undefined : ctx.in,
      out: hook === 'PREROUTING' ? undefined : ctx.out,
      ct: cur.ct,
      mark: cur.mark,
    });
    steps.push(...r.steps);
    if (r.verdict !== 'accept') return { ...r, steps };
    cur = { frame: r.frame, ct: r.ct, mark: r.mark };
  }
  return { verdict: 'accept', frame: cur.frame, mark: cur.mark, ct: cur.ct, steps };
}

test('ACCEPT ends the table; later tables still run', () => {
  const nf = nfWith('*mangle\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j ACCEPT\n-A FORWARD -j DROP\nCOMMIT\n*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j DROP\nCOMMIT\n');
  const r = nf.hook('FORWARD', T);
  assert.equal(r.verdict, 'drop');
  assert.deepEqual(r.steps.filter((s) => s.table !== 'conntrack').map((s) => `${s.table} ${s.target}`), ['mangle ACCEPT', 'filter DROP']);
});

test('DROP, and policies', () => {
  const nf = nfWith('*filter\n:FORWARD DROP [0:0]\n-A FORWARD -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n');
  assert.equal(nf.hook('FORWARD', T).verdict, 'accept');
  const r = nf.hook('FORWARD', tcp('8.8.8.8', 1, '10.0.0.5', 2));
  assert.equal(r.verdict, 'drop');
  assert.equal(r.steps.at(-1)!.rule, ':FORWARD DROP');
  assert.deepEqual(nf.policy('filter', 'FORWARD'), { policy: 'DROP', pkts: 1, bytes: 40 });
});

test('REJECT reports what the caller must send back', () => {
  const nf = nfWith(
    '*filter\n:INPUT ACCEPT [0:0]\n' +
      '-A INPUT -p tcp --dport 22 -j REJECT --reject-with tcp-reset\n' +
      '-A INPUT -p tcp --dport 23 -j REJECT --reject-with icmp-admin-prohibited\n' +
      '-A INPUT -j REJECT\nCOMMIT\n',
  );
  assert.deepEqual(nf.hook('INPUT', tcp('1.1.1.1', 5, '2.2.2.2', 22)).reject, { with: 'tcp-reset', tcpReset: true });
  assert.deepEqual(nf.hook('INPUT', tcp('1.1.1.1', 5, '2.2.2.2', 23)).reject, { with: 'icmp-admin-prohibited', icmp: { type: 3, code: 13 } });
  const r = nf.hook('INPUT', udp('1.1.1.1', 5, '2.2.2.2', 53));
  assert.equal(r.verdict, 'reject');
  assert.deepEqual(r.reject, { with: 'icmp-port-unreachable', icmp: { type: 3, code: 3 } });
  // A rejected first packet leaves no conntrack entry behind.
  assert.equal(nf.conntrack.size, 0);
});

test('jump to a user chain, RETURN, and falling off a user chain', () => {
  const nf = nfWith(
    '*filter\n:FORWARD DROP [0:0]\n:sg - [0:0]\n:port - [0:0]\n' +
      '-A FORWARD -j sg\n-A FORWARD -s 10.0.0.5/32 -j ACCEPT\n' +
      '-A sg -j port\n-A sg -p udp -j ACCEPT\n' +
      '-A port -p tcp --dport 80 -j RETURN\n-A port -p tcp -j DROP\nCOMMIT\n',
  );
  const r = nf.hook('FORWARD', T);
  assert.equal(r.verdict, 'accept');
  assert.deepEqual(
    r.steps.filter((s) => s.table === 'filter').map((s) => s.rule),
    ['-A FORWARD -j sg', '-A sg -j port', '-A port -p tcp --dport 80 -j RETURN', '-A FORWARD -s 10.0.0.5/32 -j ACCEPT'],
  );
  assert.equal(nf.hook('FORWARD', tcp('10.0.0.5', 1, '1.1.1.1', 443)).verdict, 'drop');
  assert.equal(nf.hook('FORWARD', udp('10.0.0.9', 1, '1.1.1.1', 53)).verdict, 'accept');
  assert.equal(nf.hook('FORWARD', ping('10.0.0.9', '1.1.1.1')).verdict, 'drop'); // back to FORWARD, policy
});

test('-g goto: a RETURN goes back past the chain that jumped', () => {
  const nf = nfWith(
    '*filter\n:FORWARD ACCEPT [0:0]\n:a - [0:0]\n:b - [0:0]\n' +
      '-A FORWARD -j a\n-A FORWARD -j DROP\n' +
      '-A a -g b\n-A a -j ACCEPT\n' +
      '-A b -j RETURN\nCOMMIT\n',
  );
  const r = nf.hook('FORWARD', T);
  assert.equal(r.verdict, 'drop'); // b returned to FORWARD, not to a
  assert.deepEqual(r.steps.filter((s) => s.table === 'filter').map((s) => s.target), ['a', 'b', 'RETURN', 'DROP']);
  // goto from the built-in chain itself: falling off the target chain applies the policy.
  const nf2 = nfWith('*filter\n:FORWARD DROP [0:0]\n:b - [0:0]\n-A FORWARD -g b\n-A FORWARD -j ACCEPT\nCOMMIT\n');
  assert.equal(nf2.hook('FORWARD', T).verdict, 'drop');
});

test('SNAT rewrites the source on POSTROUTING and replies are un-SNATed on PREROUTING', () => {
  const nf = nfWith('*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -s 10.0.0.0/24 -o qg-1 -j SNAT --to-source 203.0.113.1 --random-fully\nCOMMIT\n');
  const out = forward(nf, T, { in: 'qr-1', out: 'qg-1' });
  assert.equal(ipOf(out.frame), '203.0.113.1:1234 > 192.168.1.10:80');
  const back = forward(nf, tcp('192.168.1.10', 80, '203.0.113.1', 1234, { syn: true, ack: true }), { in: 'qg-1', out: 'qr-1' });
  assert.equal(ipOf(back.frame), '192.168.1.10:80 > 10.0.0.5:1234');
  assert.ok(back.steps.some((s) => s.target === 'un-SNAT' && s.hook === 'PREROUTING'));
});

test('SNAT picks another source port when the reply tuple is taken', () => {
  const nf = nfWith('*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o qg-1 -j SNAT --to-source 203.0.113.1\nCOMMIT\n');
  const a = forward(nf, udp('10.0.0.5', 5000, '8.8.8.8', 53), { in: 'qr-1', out: 'qg-1' });
  const b = forward(nf, udp('10.0.0.6', 5000, '8.8.8.8', 53), { in: 'qr-1', out: 'qg-1' });
  assert.equal(ipOf(a.frame), '203.0.113.1:5000 > 8.8.8.8:53');
  assert.equal(ipOf(b.frame), '203.0.113.1:1024 > 8.8.8.8:53');
  const back = forward(nf, udp('8.8.8.8', 53, '203.0.113.1', 1024), { in: 'qg-1', out: 'qr-1' });
  assert.equal(ipOf(back.frame), '8.8.8.8:53 > 10.0.0.6:5000');
});

test('SNAT to a port range', () => {
  const nf = nfWith('*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -p tcp -j SNAT --to-source 203.0.113.1:2000-2001\nCOMMIT\n');
  assert.equal(ipOf(forward(nf, T).frame), '203.0.113.1:2000 > 192.168.1.10:80');
  assert.equal(ipOf(forward(nf, tcp('10.0.0.6', 1234, '192.168.1.10', 80)).frame), '203.0.113.1:2001 > 192.168.1.10:80');
});

test('DNAT rewrites the destination on PREROUTING (and OUTPUT); replies are un-DNATed on POSTROUTING', () => {
  const nf = nfWith(
    '*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n' +
      '-A PREROUTING -d 203.0.113.10/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80\n' +
      '-A OUTPUT -d 203.0.113.10/32 -j DNAT --to-destination 10.0.0.5\nCOMMIT\n',
  );
  const inb = forward(nf, tcp('8.8.8.8', 4000, '203.0.113.10', 8080), { in: 'qg-1', out: 'qr-1' });
  assert.equal(ipOf(inb.frame), '8.8.8.8:4000 > 10.0.0.5:80');
  const back = forward(nf, tcp('10.0.0.5', 80, '8.8.8.8', 4000, { syn: true, ack: true }), { in: 'qr-1', out: 'qg-1' });
  assert.equal(ipOf(back.frame), '203.0.113.10:8080 > 8.8.8.8:4000');
  assert.ok(back.steps.some((s) => s.target === 'un-DNAT' && s.hook === 'POSTROUTING'));
  const local = nf.hook('OUTPUT', udp('10.0.0.1', 3000, '203.0.113.10', 53), { out: 'qr-1' });
  assert.equal(ipOf(local.frame), '10.0.0.1:3000 > 10.0.0.5:53');
});

test('MASQUERADE uses the output device address; without one the packet is dropped', () => {
  const nf = nfWith('*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth1 -j MASQUERADE\nCOMMIT\n');
  const addr = (dev: string) => (dev === 'eth1' ? '198.51.100.7' : undefined);
  assert.equal(ipOf(forward(nf, T, { in: 'eth0', out: 'eth1', primaryAddress: addr }).frame), '198.51.100.7:1234 > 192.168.1.10:80');
  const r = forward(nf, tcp('10.0.0.9', 1, '1.1.1.1', 1), { in: 'eth0', out: 'eth1' });
  assert.equal(r.verdict, 'drop');
});

test('REDIRECT sends the metadata address to the local proxy port', () => {
  const nf = nfWith(
    '*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 9697\nCOMMIT\n',
  );
  const r = nf.hook('PREROUTING', tcp('10.0.0.5', 40000, '169.254.169.254', 80), {
    in: 'qr-1234abcd-ef',
    primaryAddress: (d) => (d === 'qr-1234abcd-ef' ? '10.0.0.1' : undefined),
  });
  assert.equal(ipOf(r.frame), '10.0.0.5:40000 > 10.0.0.1:9697');
  // The proxy's answer, leaving through OUTPUT/POSTROUTING, is rewritten back.
  const o = nf.hook('OUTPUT', tcp('10.0.0.1', 9697, '10.0.0.5', 40000, { syn: true, ack: true }), { out: 'qr-1234abcd-ef' });
  const p = nf.hook('POSTROUTING', o.frame, { out: 'qr-1234abcd-ef', ct: o.ct });
  assert.equal(ipOf(p.frame), '169.254.169.254:80 > 10.0.0.5:40000');
});

test('MARK --set-xmark, --set-mark, --and-mark, --or-mark, --xor-mark', () => {
  const mark = (target: string, start: number) =>
    nfWith(`*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK ${target}\nCOMMIT\n`).hook('PREROUTING', T, { mark: start }).mark;
  assert.equal(mark('--set-xmark 0x2/0xffff', 0x10001), 0x10002);
  assert.equal(mark('--set-xmark 0x1/0x1', 0x1), 0x0 ^ 0x1);
  assert.equal(mark('--set-mark 0x4/0xf', 0xff), 0xf4);
  assert.equal(mark('--set-mark 0x5', 0xff), 0x5);
  assert.equal(mark('--and-mark 0xf0', 0xff), 0xf0);
  assert.equal(mark('--or-mark 0x100', 0x1), 0x101);
  assert.equal(mark('--xor-mark 0x3', 0x1), 0x2);
});

test('CONNMARK --save-mark / --restore-mark with masks (address scopes)', () => {
  const nf = nfWith(
    '*mangle\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n' +
      '-A PREROUTING -m connmark ! --mark 0x0/0xffff0000 -j CONNMARK --restore-mark --nfmask 0xffff0000 --ctmask 0xffff0000\n' +
      '-A PREROUTING -i qr-1 -j MARK --set-xmark 0x4000000/0xffff0000\n' +
      '-A POSTROUTING -o qg-1 -m connmark --mark 0x0/0xffff0000 -j CONNMARK --save-mark --nfmask 0xffff0000 --ctmask 0xffff0000\nCOMMIT\n',
  );
  const out = forward(nf, T, { in: 'qr-1', out: 'qg-1' });
  assert.equal(out.mark, 0x4000000);
  assert.equal(nf.conntrack.entries()[0].mark, 0x4000000);
  const back = forward(nf, tcp('192.168.1.10', 80, '10.0.0.5', 1234, { syn: true, ack: true }), { in: 'qg-1', out: 'qr-1' });
  assert.equal(back.mark, 0x4000000); // restored from the connection
});

test('CT --zone puts the connection in a zone; CT --notrack and NOTRACK leave it untracked', () => {
  const nf = nfWith(
    '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n' +
      '-A PREROUTING -m physdev --physdev-in tap1 -j CT --zone 4097\n' +
      '-A PREROUTING -i fg-1 -j CT --notrack\n' +
      '-A OUTPUT -j NOTRACK\nCOMMIT\n',
  );
  const z = nf.hook('PREROUTING', T, { in: 'qbr1', physIn: 'tap1', bridged: true });
  assert.equal(z.ct!.zone, 4097);
  assert.equal(nf.conntrack.entries()[0].zone, 4097);
  assert.equal(nf.hook('PREROUTING', T, { in: 'fg-1' }).ct!.state, 'UNTRACKED');
  assert.equal(nf.hook('OUTPUT', T, { out: 'x' }).ct!.state, 'UNTRACKED');
  assert.equal(nf.conntrack.size, 1);
});

test('CHECKSUM --checksum-fill and LOG are recorded and fall through', () => {
  const nf = nfWith(
    '*mangle\n:POSTROUTING ACCEPT [0:0]\n' +
      '-A POSTROUTING -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill\n' +
      '-A POSTROUTING -j LOG --log-prefix "out: "\n-A POSTROUTING -j DROP\nCOMMIT\n',
  );
  const r = nf.hook('POSTROUTING', udp('10.0.0.2', 67, '10.0.0.5', 68), { out: 'tap1' });
  assert.equal(r.verdict, 'drop');
  assert.deepEqual(r.steps.filter((s) => s.table === 'mangle').map((s) => s.target), ['CHECKSUM', 'LOG', 'DROP']);
});

test('a rule without a target only counts', () => {
  const nf = nfWith('*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -s 10.0.0.5/32\nCOMMIT\n');
  nf.hook('FORWARD', T);
  nf.hook('FORWARD', T);
  assert.deepEqual(nf.rules('filter', 'FORWARD'), [{ rule: '-A FORWARD -s 10.0.0.5/32', pkts: 2, bytes: 80 }]);
});

test('SNAT in nat INPUT rewrites packets delivered locally; replies from OUTPUT are restored', () => {
  const nf = nfWith('*nat\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/24 -p udp -j SNAT --to-source 10.9.9.9\nCOMMIT\n');
  const pre = nf.hook('PREROUTING', udp('10.0.0.5', 7000, '10.0.0.1', 53), { in: 'qr-1' });
  const inp = nf.hook('INPUT', pre.frame, { in: 'qr-1', ct: pre.ct });
  assert.equal(ipOf(inp.frame), '10.9.9.9:7000 > 10.0.0.1:53');
  const out = nf.hook('OUTPUT', udp('10.0.0.1', 53, '10.9.9.9', 7000), { out: 'qr-1' });
  assert.equal(ipOf(out.frame), '10.0.0.1:53 > 10.0.0.5:7000'); // un-SNAT of the reply's destination
});

test('a hook entered without the CtRef finds the connection by its post-NAT tuple', () => {
  const nf = nfWith('*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 203.0.113.10/32 -j DNAT --to-destination 10.0.0.5\nCOMMIT\n');
  const pre = nf.hook('PREROUTING', tcp('8.8.8.8', 1, '203.0.113.10', 22), { in: 'qg-1' });
  const fwd = nf.hook('FORWARD', pre.frame, { in: 'qg-1', out: 'qr-1' });
  assert.equal(fwd.ct!.entry, pre.ct!.entry);
  assert.equal(fwd.ct!.dir, 'original');
  assert.equal(nf.conntrack.size, 1);
});

test('trace: false records no steps but still decides and counts', () => {
  const nf = nfWith('*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p udp -j ACCEPT\nCOMMIT\n');
  const r = nf.hook('FORWARD', T, { trace: false });
  assert.equal(r.verdict, 'drop');
  assert.deepEqual(r.steps, []);
  assert.equal(nf.policy('filter', 'FORWARD').pkts, 1);
});
