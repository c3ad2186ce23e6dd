import { test } from 'node:test';
import assert from 'node:assert/strict';
import { World } from '../dataplane/emulated/world.js';
import { formatFrame, renderTrace, traceToJson } from './render.js';
import type { TraceRecord } from './record.js';

function twoHosts() {
  const w = new World();
  const seg = w.addSegment('mgmt');
  w.addPlainHost('a', { segment: 'mgmt', ip: '10.0.0.1/24', mac: '52:54:00:00:00:01' });
  w.addPlainHost('b', { segment: 'mgmt', ip: '10.0.0.2/24', mac: '52:54:00:00:00:02' });
  void seg;
  return w;
}

test('the text form numbers steps and starts a block whenever the host changes', () => {
  const rec = twoHosts().ping({ host: 'a' }, '10.0.0.2');
  const text = renderTrace(rec);
  const lines = text.split('\n');
  assert.equal(lines[0], 'a:');
  // a ARPs for b, b answers, a sends the echo, b replies (it learnt a's MAC from the request).
  const blocks = lines.filter((l) => /^[a-z]+:$/.test(l) && l !== 'delivered:' && l !== 'dropped:');
  assert.deepEqual(blocks, ['a:', 'b:', 'a:', 'b:', 'a:']);
  const numbers = lines.map((l) => /^\s+(\d+)\. /.exec(l)?.[1]).filter(Boolean).map(Number);
  assert.deepEqual(numbers, numbers.map((_, i) => i + 1));
  assert.match(text, /neigh: next hop 10.0.0.2 unresolved: packet queued, ARP request sent/);
  assert.match(text, /52:54:00:00:00:01 > 52:54:00:00:00:02 \| 10.0.0.1 > 10.0.0.2 ttl 64 icmp echo-request id 1 seq 1/);
  assert.match(text, /\ndelivered:\n(.*\n)* {2}b eth0 -> icmp echo: /);
  // Compact leaves out send/receive steps but keeps every decision.
  const compact = renderTrace(rec, { compact: true });
  assert.ok(!/ rx: | tx: /.test(compact));
  assert.match(compact, /arp: reply 10.0.0.2 is-at 52:54:00:00:00:02/);
});

test('the JSON form is the record itself, without kernel-internal state', () => {
  const rec = twoHosts().ping({ host: 'a' }, '10.0.0.2');
  const back = JSON.parse(traceToJson(rec)) as TraceRecord;
  assert.equal(back.steps.length, rec.steps.length);
  assert.deepEqual(back.steps[0], JSON.parse(JSON.stringify(rec.steps[0])));
  assert.ok(back.steps.every((s) => s.host && s.kind && s.action && s.before.eth));
  assert.ok(!traceToJson(rec).includes('"meta"'));
  assert.deepEqual(
    back.packets.map((p) => p.origin),
    ['icmp -> 10.0.0.2 from a', 'ARP who-has 10.0.0.2 tell 10.0.0.1', 'ARP reply 10.0.0.2 is-at 52:54:00:00:00:02', 'ICMP echo reply from (root)', 'ARP who-has 10.0.0.1 tell 10.0.0.2', 'ARP reply 10.0.0.1 is-at 52:54:00:00:00:01'].filter((o) => back.packets.some((p) => p.origin === o)),
  );
});

test('tracing off keeps deliveries and drops but records no steps', () => {
  const w = twoHosts();
  w.tracing = false;
  const rec = w.ping({ host: 'a' }, '10.0.0.2');
  assert.equal(rec.steps.length, 0);
  assert.ok(rec.delivered.some((d) => d.host === 'b' && d.to === 'icmp echo'));
});

test('frames print with VLAN, ports and the tunnel header around the inner frame', () => {
  const inner = { eth: { src: 'fa:16:3f:00:00:01', dst: 'fa:16:3e:00:02:11', type: 0x800 }, ip: { src: '192.168.1.11', dst: '192.168.2.11', ttl: 63, proto: 17 }, l4: { kind: 'udp' as const, sport: 5000, dport: 53 } };
  assert.equal(formatFrame({ ...inner, vlan: 2 }), 'fa:16:3f:00:00:01 > fa:16:3e:00:02:11 vlan 2 | 192.168.1.11 > 192.168.2.11 ttl 63 udp 5000 > 53');
  const outer = { eth: { src: '52:54:00:00:00:01', dst: '52:54:00:00:00:02', type: 0x800 }, ip: { src: '10.0.1.31', dst: '10.0.1.32', ttl: 64, proto: 47 }, encap: { kind: 'gre' as const, key: 102, inner } };
  assert.equal(formatFrame(outer), '52:54:00:00:00:01 > 52:54:00:00:00:02 | 10.0.1.31 > 10.0.1.32 ttl 64 proto 47 | gre key 102 [ fa:16:3f:00:00:01 > fa:16:3e:00:02:11 | 192.168.1.11 > 192.168.2.11 ttl 63 udp 5000 > 53 ]');
});
