import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Conntrack, CT_TIMEOUTS } from './index.js';
import { icmpError, ping, tcp, udp } from './test-frames.js';

test('NEW until a reply is seen, then ESTABLISHED both ways', () => {
  const ct = new Conntrack();
  const syn = tcp('10.0.0.5', 1000, '10.0.1.5', 22);
  assert.equal(ct.track(syn, 0).state, 'NEW');
  assert.equal(ct.track(syn, 0).state, 'NEW'); // retransmitted SYN
  const synack = ct.track(tcp('10.0.1.5', 22, '10.0.0.5', 1000, { syn: true, ack: true }), 0);
  assert.equal(synack.state, 'ESTABLISHED');
  assert.equal(synack.dir, 'reply');
  assert.equal(ct.track(tcp('10.0.0.5', 1000, '10.0.1.5', 22, { ack: true }), 0).state, 'ESTABLISHED');
  assert.equal(ct.entries()[0].tcp!.state, 'ESTABLISHED');
  assert.equal(ct.size, 1);
});

test('INVALID: TCP FIN/RST/SYN-ACK without an entry, an echo reply without a request', () => {
  const ct = new Conntrack();
  assert.equal(ct.track(tcp('10.0.0.5', 1000, '10.0.1.5', 22, { fin: true, ack: true }), 0).state, 'INVALID');
  assert.equal(ct.track(tcp('10.0.0.5', 1000, '10.0.1.5', 22, { rst: true }), 0).state, 'INVALID');
  assert.equal(ct.track(tcp('10.0.0.5', 1000, '10.0.1.5', 22, { syn: true, ack: true }), 0).state, 'INVALID');
  assert.equal(ct.track(ping('10.0.0.5', '10.0.1.5', 7, 0), 0).state, 'INVALID');
  assert.equal(ct.size, 0);
});

test('a mid-stream ACK is picked up as NEW with tcp_loose=1 (kernel default) and INVALID with tcp_loose=0', () => {
  const ack = tcp('10.0.0.5', 1000, '10.0.1.5', 22, { ack: true });
  assert.equal(new Conntrack().track(ack, 0).state, 'NEW');
  assert.equal(new Conntrack({ tcpLoose: false }).track(ack, 0).state, 'INVALID');
});

test('ICMP echo: request NEW, reply ESTABLISHED, keyed by id', () => {
  const ct = new Conntrack();
  assert.equal(ct.track(ping('10.0.0.5', '10.0.1.5', 7), 0).state, 'NEW');
  assert.equal(ct.track(ping('10.0.1.5', '10.0.0.5', 7, 0), 0).state, 'ESTABLISHED');
  assert.equal(ct.track(ping('10.0.1.5', '10.0.0.5', 8, 0), 0).state, 'INVALID'); // other id
});

test('RELATED: an ICMP error quoting a tracked packet, in either direction', () => {
  const ct = new Conntrack();
  const q = udp('10.0.0.5', 5000, '8.8.8.8', 53);
  ct.track(q, 0);
  const err = ct.track(icmpError('192.0.2.1', '10.0.0.5', q, 11, 0), 0);
  assert.equal(err.state, 'RELATED');
  assert.equal(err.dir, 'reply');
  const err2 = ct.track(icmpError('10.0.0.5', '8.8.8.8', udp('8.8.8.8', 53, '10.0.0.5', 5000)), 0);
  assert.equal(err2.state, 'RELATED');
  assert.equal(err2.dir, 'original');
  // Quoting nothing known, or quoting nothing at all: INVALID.
  assert.equal(ct.track(icmpError('192.0.2.1', '10.0.0.5', udp('10.0.0.5', 1, '9.9.9.9', 2)), 0).state, 'INVALID');
  const bare = icmpError('192.0.2.1', '10.0.0.5', q);
  delete (bare.l4 as { quoted?: unknown }).quoted;
  assert.equal(ct.track(bare, 0).state, 'INVALID');
  assert.equal(ct.size, 1);
});

test('zones keep identical tuples apart', () => {
  const ct = new Conntrack();
  const syn = tcp('10.0.0.5', 1000, '10.0.0.6', 22);
  assert.equal(ct.track(syn, 1).state, 'NEW');
  assert.equal(ct.track(tcp('10.0.0.6', 22, '10.0.0.5', 1000, { syn: true, ack: true }), 1).state, 'ESTABLISHED');
  assert.equal(ct.track(syn, 2).state, 'NEW');
  assert.equal(ct.track(tcp('10.0.0.6', 22, '10.0.0.5', 1000, { syn: true, ack: true }), 3).state, 'INVALID');
  assert.deepEqual(ct.entries().map((e) => e.zone).sort(), [1, 2]);
});

test('entries expire on the virtual clock; replies and TCP state stretch the timeout', () => {
  const ct = new Conntrack();
  ct.track(udp('10.0.0.5', 5000, '8.8.8.8', 53), 0);
  ct.advance(CT_TIMEOUTS.udp - 1);
  assert.equal(ct.size, 1);
  ct.advance(1);
  assert.equal(ct.size, 0);
  ct.track(udp('10.0.0.5', 5000, '8.8.8.8', 53), 0);
  ct.track(udp('8.8.8.8', 53, '10.0.0.5', 5000), 0);
  ct.advance(CT_TIMEOUTS.udp + 1);
  assert.equal(ct.size, 1); // replied: the stream timeout applies
  ct.advance(CT_TIMEOUTS.udpStream);
  assert.equal(ct.size, 0);

  ct.track(tcp('10.0.0.5', 1000, '10.0.1.5', 22), 0);
  ct.advance(CT_TIMEOUTS.tcp.SYN_SENT);
  assert.equal(ct.track(tcp('10.0.1.5', 22, '10.0.0.5', 1000, { syn: true, ack: true }), 0).state, 'INVALID');
});

test('an external clock drives expiry too', () => {
  let now = 1000;
  const ct = new Conntrack({ clock: () => now });
  ct.track(ping('10.0.0.5', '10.0.1.5'), 0);
  now += CT_TIMEOUTS.icmp;
  assert.equal(ct.size, 0);
});

test('FIN from both sides then TIME_WAIT; RST closes; a new SYN reopens a closed connection', () => {
  const ct = new Conntrack();
  ct.track(tcp('10.0.0.5', 1000, '10.0.1.5', 22), 0);
  ct.track(tcp('10.0.1.5', 22, '10.0.0.5', 1000, { syn: true, ack: true }), 0);
  ct.track(tcp('10.0.0.5', 1000, '10.0.1.5', 22, { ack: true }), 0);
  ct.track(tcp('10.0.0.5', 1000, '10.0.1.5', 22, { fin: true, ack: true }), 0);
  assert.equal(ct.entries()[0].tcp!.state, 'FIN_WAIT');
  ct.track(tcp('10.0.1.5', 22, '10.0.0.5', 1000, { fin: true, ack: true }), 0);
  assert.equal(ct.entries()[0].tcp!.state, 'TIME_WAIT');
  const again = ct.track(tcp('10.0.0.5', 1000, '10.0.1.5', 22), 0);
  assert.equal(again.state, 'NEW');
  assert.equal(again.created, true);
  ct.track(tcp('10.0.1.5', 22, '10.0.0.5', 1000, { rst: true }), 0);
  assert.equal(ct.entries()[0].tcp!.state, 'CLOSE');
  ct.advance(CT_TIMEOUTS.tcp.CLOSE);
  assert.equal(ct.size, 0);
});

test('flush, delete by filter (conntrack -D) and a conntrack -L style listing', () => {
  const ct = new Conntrack();
  ct.track(udp('10.0.0.5', 5000, '8.8.8.8', 53), 0);
  ct.track(udp('10.0.0.6', 5000, '8.8.8.8', 53), 4);
  ct.track(tcp('10.0.0.5', 1000, '10.0.1.5', 22), 4);
  assert.deepEqual(ct.list(), [
    'udp      17 30 src=10.0.0.5 dst=8.8.8.8 sport=5000 dport=53 [UNREPLIED] src=8.8.8.8 dst=10.0.0.5 sport=53 dport=5000 mark=0',
    'udp      17 30 src=10.0.0.6 dst=8.8.8.8 sport=5000 dport=53 [UNREPLIED] src=8.8.8.8 dst=10.0.0.6 sport=53 dport=5000 mark=0 zone=4',
    'tcp      6 120 SYN_SENT src=10.0.0.5 dst=10.0.1.5 sport=1000 dport=22 [UNREPLIED] src=10.0.1.5 dst=10.0.0.5 sport=22 dport=1000 mark=0 zone=4',
  ]);
  assert.equal(ct.delete({ zone: 4, src: '10.0.0.6' }), 1);
  assert.equal(ct.delete({ addr: '10.0.1.5' }), 1);
  assert.equal(ct.size, 1);
  ct.flush();
  assert.equal(ct.size, 0);
  assert.equal(ct.track(udp('8.8.8.8', 53, '10.0.0.5', 5000), 0).state, 'NEW');
});
