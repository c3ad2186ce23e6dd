// One test per match: a rule `-A FORWARD <match> -j DROP` must drop exactly the packets
// the match describes (and `!` the others).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Frame } from '../packet.js';
import { Netfilter, type NfContext } from './index.js';
import { icmpError, ping, tcp, udp } from './test-frames.js';

function dropsWith(rule: string, setup?: (nf: Netfilter) => void): (f: Frame, ctx?: NfContext, hook?: 'FORWARD') => boolean {
  const nf = new Netfilter();
  setup?.(nf);
  nf.restore(`*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD ${rule} -j DROP\nCOMMIT\n`);
  return (f, ctx = {}) => nf.hook('FORWARD', f, ctx).verdict === 'drop';
}

const T = tcp('10.0.0.5', 1234, '192.168.1.10', 80);

test('-s / -d with prefixes, dotted masks, bare addresses and !', () => {
  assert.equal(dropsWith('-s 10.0.0.0/24')(T), true);
  assert.equal(dropsWith('-s 10.0.1.0/24')(T), false);
  assert.equal(dropsWith('-s 10.0.0.5')(T), true);
  assert.equal(dropsWith('-s 10.0.0.0/255.255.255.0')(T), true);
  assert.equal(dropsWith('! -s 10.0.0.0/24')(T), false);
  assert.equal(dropsWith('-d 192.168.1.10/32')(T), true);
  assert.equal(dropsWith('-d 192.168.2.0/24')(T), false);
  assert.equal(dropsWith('! -d 192.168.2.0/24')(T), true);
  assert.equal(dropsWith('--source 0.0.0.0/0')(T), true);
});

test('-i / -o with the + wildcard and !', () => {
  const ctx = { in: 'qr-1234abcd-ef', out: 'qg-99' };
  assert.equal(dropsWith('-i qr-+')(T, ctx), true);
  assert.equal(dropsWith('-i qr-1234abcd-ef')(T, ctx), true);
  assert.equal(dropsWith('-i qg-+')(T, ctx), false);
  assert.equal(dropsWith('! -i qg-+')(T, ctx), true);
  assert.equal(dropsWith('-o qg-99')(T, ctx), true);
  assert.equal(dropsWith('! -o qg-99')(T, ctx), false);
  assert.equal(dropsWith('-i +')(T, ctx), true);
});

test('-p by name and number, and !', () => {
  assert.equal(dropsWith('-p tcp')(T), true);
  assert.equal(dropsWith('-p 6')(T), true);
  assert.equal(dropsWith('-p udp')(T), false);
  assert.equal(dropsWith('! -p udp')(T), true);
  assert.equal(dropsWith('-p all')(udp('1.1.1.1', 1, '2.2.2.2', 2)), true);
  assert.equal(dropsWith('-p icmp')(ping('1.1.1.1', '2.2.2.2')), true);
});

test('--sport / --dport: single ports, ranges, -m tcp, -m udp and the implicit protocol match', () => {
  assert.equal(dropsWith('-p tcp -m tcp --dport 80')(T), true);
  assert.equal(dropsWith('-p tcp --dport 80')(T), true);
  assert.equal(dropsWith('-p tcp -m tcp --dport 81')(T), false);
  assert.equal(dropsWith('-p tcp -m tcp ! --dport 81')(T), true);
  assert.equal(dropsWith('-p tcp -m tcp --sport 1000:2000')(T), true);
  assert.equal(dropsWith('-p tcp -m tcp --sport 1235:')(T), false);
  assert.equal(dropsWith('-p tcp -m tcp --sport :1234')(T), true);
  assert.equal(dropsWith('-p tcp --destination-port 80')(T), true);
  const dhcp = udp('0.0.0.0', 68, '255.255.255.255', 67);
  assert.equal(dropsWith('-p udp -m udp --sport 68 --dport 67')(dhcp), true);
  assert.equal(dropsWith('-p udp -m udp --sport 67 --dport 68')(dhcp), false);
});

test('-m multiport --dports / --sports / --ports', () => {
  assert.equal(dropsWith('-p tcp -m multiport --dports 22,80,443')(T), true);
  assert.equal(dropsWith('-p tcp -m multiport --dports 22,8000:9000')(T), false);
  assert.equal(dropsWith('-p tcp -m multiport --dports 70:90')(T), true);
  assert.equal(dropsWith('-p tcp -m multiport ! --dports 70:90')(T), false);
  assert.equal(dropsWith('-p tcp -m multiport --sports 1234')(T), true);
  assert.equal(dropsWith('-p tcp -m multiport --ports 1234')(T), true);
  assert.equal(dropsWith('-p tcp -m multiport --ports 80')(T), true);
  assert.equal(dropsWith('-p tcp -m multiport --ports 81')(T), false);
});

test('--icmp-type by name, number and type/code', () => {
  const echo = ping('10.0.0.5', '10.0.0.6');
  const unreach = icmpError('10.0.0.6', '10.0.0.5', udp('10.0.0.5', 1, '10.0.0.6', 2), 3, 3);
  assert.equal(dropsWith('-p icmp -m icmp --icmp-type echo-request')(echo), true);
  assert.equal(dropsWith('-p icmp --icmp-type 8')(echo), true);
  assert.equal(dropsWith('-p icmp --icmp-type 8/0')(echo), true);
  assert.equal(dropsWith('-p icmp --icmp-type echo-reply')(echo), false);
  assert.equal(dropsWith('-p icmp ! --icmp-type echo-reply')(echo), true);
  assert.equal(dropsWith('-p icmp --icmp-type destination-unreachable')(unreach), true);
  assert.equal(dropsWith('-p icmp --icmp-type port-unreachable')(unreach), true);
  assert.equal(dropsWith('-p icmp --icmp-type 3/1')(unreach), false);
  assert.equal(dropsWith('-p icmp --icmp-type any')(unreach), true);
});

test('--syn and --tcp-flags', () => {
  const ack = tcp('10.0.0.5', 1234, '192.168.1.10', 80, { ack: true });
  assert.equal(dropsWith('-p tcp --syn')(T), true);
  assert.equal(dropsWith('-p tcp --syn')(ack), false);
  assert.equal(dropsWith('-p tcp ! --syn')(ack), true);
  assert.equal(dropsWith('-p tcp --tcp-flags SYN,ACK ACK')(ack), true);
  assert.equal(dropsWith('-p tcp --tcp-flags ALL NONE')(ack), false);
});

test('-m state --state and -m conntrack --ctstate (NEW, ESTABLISHED, INVALID, !)', () => {
  const nf = new Netfilter();
  nf.restore(
    '*filter\n:FORWARD DROP [0:0]\n' +
      '-A FORWARD -m state --state INVALID -j DROP\n' +
      '-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT\n' +
      '-A FORWARD -m conntrack ! --ctstate NEW -j DROP\n' +
      '-A FORWARD -s 10.0.0.0/24 -m state --state NEW -j ACCEPT\nCOMMIT\n',
  );
  const fw = (f: Frame) => nf.hook('FORWARD', f).verdict;
  assert.equal(fw(tcp('8.8.8.8', 80, '10.0.0.5', 1000)), 'drop'); // NEW from outside: policy
  assert.equal(fw(T), 'accept'); // NEW from inside
  assert.equal(fw(tcp('192.168.1.10', 80, '10.0.0.5', 1234, { syn: true, ack: true })), 'accept'); // reply: ESTABLISHED
  assert.equal(fw(tcp('192.168.1.10', 80, '10.0.0.5', 999, { fin: true })), 'drop'); // INVALID
});

test('-m conntrack --ctstate RELATED / UNTRACKED / DNAT / SNAT', () => {
  const nf = new Netfilter();
  nf.restore(
    '*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -s 172.16.0.0/12 -j CT --notrack\nCOMMIT\n' +
      '*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n' +
      '-A PREROUTING -d 203.0.113.10/32 -j DNAT --to-destination 10.0.0.5\n' +
      '-A POSTROUTING -s 10.0.0.0/24 -o qg-1 -j SNAT --to-source 203.0.113.1\nCOMMIT\n' +
      '*filter\n:FORWARD ACCEPT [0:0]\n' +
      '-A FORWARD -m conntrack --ctstate RELATED -j REJECT\n' +
      '-A FORWARD -m state --state UNTRACKED -j DROP\n' +
      '-A FORWARD -m conntrack --ctstate DNAT -j MARK --set-xmark 0x1/0xffffffff\n' +
      '-A FORWARD -m conntrack --ctstate SNAT -j MARK --set-xmark 0x2/0xffffffff\nCOMMIT\n',
  );
  const pass = (f: Frame, out = 'qr-1') => {
    const a = nf.hook('PREROUTING', f, { in: 'x' });
    const b = nf.hook('FORWARD', a.frame, { in: 'x', out, ct: a.ct, mark: a.mark });
    const c = nf.hook('POSTROUTING', b.frame, { out, ct: b.ct, mark: b.mark });
    return { fwd: b, post: c };
  };
  assert.equal(pass(tcp('8.8.8.8', 1, '203.0.113.10', 22)).fwd.mark, 1); // DNAT
  const out = pass(udp('10.0.0.7', 5000, '8.8.4.4', 53), 'qg-1');
  assert.equal(out.fwd.mark, 0); // SNAT not decided before POSTROUTING
  assert.equal(pass(udp('10.0.0.7', 5000, '8.8.4.4', 53), 'qg-1').fwd.mark, 2); // now it is
  assert.equal(pass(tcp('172.16.0.1', 1, '10.0.0.5', 2)).fwd.verdict, 'drop'); // UNTRACKED
  const err = icmpError('192.0.2.1', '203.0.113.1', udp('203.0.113.1', 5000, '8.8.4.4', 53), 11, 0);
  assert.equal(pass(err).fwd.verdict, 'reject'); // RELATED
});

test('-m physdev: --physdev-in/out, --physdev-is-bridged/in/out, and non-bridged packets', () => {
  const bridged = { in: 'qbr1', out: 'qbr1', physIn: 'tap1', physOut: 'qvb1', bridged: true };
  assert.equal(dropsWith('-m physdev --physdev-in tap1 --physdev-is-bridged')(T, bridged), true);
  assert.equal(dropsWith('-m physdev --physdev-out tap1 --physdev-is-bridged')(T, bridged), false);
  assert.equal(dropsWith('-m physdev --physdev-out qvb+')(T, bridged), true);
  assert.equal(dropsWith('-m physdev ! --physdev-out qvb1')(T, bridged), false);
  assert.equal(dropsWith('-m physdev --physdev-is-in --physdev-is-out')(T, bridged), true);
  assert.equal(dropsWith('-m physdev ! --physdev-is-bridged')(T, bridged), false);
  // Routed (not bridged) packets: only all-negated physdev options match.
  assert.equal(dropsWith('-m physdev --physdev-in tap1')(T, { in: 'eth0' }), false);
  assert.equal(dropsWith('-m physdev ! --physdev-is-bridged')(T, { in: 'eth0' }), true);
  // Bridged into the host (INPUT): no output port, so not "is-bridged".
  assert.equal(dropsWith('-m physdev --physdev-in tap1 --physdev-is-bridged')(T, { in: 'qbr1', physIn: 'tap1', bridged: true }), false);
});

test('-m set --match-set src|dst and !', () => {
  const withSet = (nf: Netfilter) => nf.ipset.restore('create NIPv4sg hash:net family inet\nadd NIPv4sg 10.0.0.0/29');
  assert.equal(dropsWith('-m set --match-set NIPv4sg src', withSet)(T), true);
  assert.equal(dropsWith('-m set --match-set NIPv4sg dst', withSet)(T), false);
  assert.equal(dropsWith('-m set ! --match-set NIPv4sg dst', withSet)(T), true);
  assert.equal(dropsWith('-m set --match-set NIPv4sg src', withSet)(tcp('10.0.0.9', 1, '1.1.1.1', 2)), false);
});

test('-m set follows set changes after the rules are loaded', () => {
  const nf = new Netfilter();
  nf.ipset.restore('create S hash:net\nadd S 10.0.0.1');
  nf.restore('*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m set --match-set S src -j DROP\nCOMMIT\n');
  const f = tcp('10.0.0.2', 1, '1.1.1.1', 2);
  assert.equal(nf.hook('FORWARD', f).verdict, 'accept');
  nf.ipset.restore('add S 10.0.0.2');
  assert.equal(nf.hook('FORWARD', f).verdict, 'drop');
  assert.throws(() => nf.ipset.restore('destroy S'), /in use/);
});

test('-m mac --mac-source (any case) and !', () => {
  assert.equal(dropsWith('-m mac --mac-source FA:16:3E:00:00:0A')(T), true);
  assert.equal(dropsWith('-m mac --mac-source fa:16:3e:00:00:0b')(T), false);
  assert.equal(dropsWith('-m mac ! --mac-source fa:16:3e:00:00:0b')(T), true);
});

test('-m comment matches everything and keeps its text', () => {
  const nf = new Netfilter();
  nf.restore('*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m comment --comment "Direct traffic from the VM interface to the security group chain." -j DROP\nCOMMIT\n');
  const r = nf.hook('FORWARD', T);
  assert.equal(r.verdict, 'drop');
  assert.equal(r.steps.find((s) => s.table === 'filter')!.rule, '-A FORWARD -m comment --comment "Direct traffic from the VM interface to the security group chain." -j DROP');
});

test('-m mark --mark value/mask and !', () => {
  assert.equal(dropsWith('-m mark --mark 0x1/0xffff')(T, { mark: 0x10001 }), true);
  assert.equal(dropsWith('-m mark --mark 0x1/0xffff')(T, { mark: 0x2 }), false);
  assert.equal(dropsWith('-m mark --mark 0x1')(T, { mark: 0x10001 }), false);
  assert.equal(dropsWith('-m mark ! --mark 0x2/0xffff')(T, { mark: 0x1 }), true);
});

test('-m connmark --mark reads the connection mark', () => {
  const nf = new Netfilter();
  nf.restore(
    '*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -i qg-1 -j CONNMARK --set-xmark 0x4000000/0xffff0000\nCOMMIT\n' +
      '*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m connmark --mark 0x4000000/0xffff0000 -j DROP\nCOMMIT\n',
  );
  const a = nf.hook('PREROUTING', T, { in: 'qg-1' });
  assert.equal(nf.hook('FORWARD', a.frame, { in: 'qg-1', ct: a.ct }).verdict, 'drop');
  const b = nf.hook('PREROUTING', tcp('10.0.0.6', 1, '1.1.1.1', 1), { in: 'qr-1' });
  assert.equal(nf.hook('FORWARD', b.frame, { in: 'qr-1', ct: b.ct }).verdict, 'accept');
});

test('-m addrtype --dst-type LOCAL uses the namespace addresses', () => {
  const own = (ip: string) => ip === '192.168.1.10';
  assert.equal(dropsWith('-m addrtype --dst-type LOCAL')(T, { ownAddresses: own }), true);
  assert.equal(dropsWith('-m addrtype ! --dst-type LOCAL')(T, { ownAddresses: own }), false);
  assert.equal(dropsWith('-m addrtype --dst-type MULTICAST')(udp('1.1.1.1', 1, '224.0.0.18', 2)), true);
});

test('several matches are ANDed', () => {
  const drop = dropsWith('-s 10.0.0.0/24 -p tcp -m tcp --dport 80 -m mac --mac-source fa:16:3e:00:00:0a');
  assert.equal(drop(T), true);
  assert.equal(drop(tcp('10.0.0.5', 1234, '192.168.1.10', 443)), false);
  assert.equal(drop(tcp('10.0.0.5', 1234, '192.168.1.10', 80, { syn: true }, 'fa:16:3e:00:00:99')), false);
});

test('ARP and other non-IP frames pass without touching iptables', () => {
  const nf = new Netfilter();
  nf.restore('*filter\n:FORWARD DROP [0:0]\nCOMMIT\n');
  const arp: Frame = {
    eth: { src: 'fa:16:3e:00:00:01', dst: 'ff:ff:ff:ff:ff:ff', type: 0x0806 },
    arp: { op: 1, sha: 'fa:16:3e:00:00:01', spa: '10.0.0.1', tha: '00:00:00:00:00:00', tpa: '10.0.0.2' },
  };
  const r = nf.hook('FORWARD', arp);
  assert.equal(r.verdict, 'accept');
  assert.deepEqual(r.steps, []);
});
