// The L3 agent's small parts: the iptables layout (as iptables_manager writes it, and as
// the netfilter model accepts it), the persisted allocators, the veth MACs.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Netfilter } from '../../dataplane/emulated/netfilter/index.js';
import { ItemAllocator, linkLocalPairs, pairEnds, parsePair, parsePriority, priorityRange } from './allocator.js';
import { networkOf, vethMac } from './build.js';
import { IptablesManager } from './iptables.js';

test('iptables: the nat table of a qrouter with a floating IP, laid out as iptables_manager does', () => {
  const m = new IptablesManager();
  m.nat.addRule('PREROUTING', '-d 203.0.113.102/32 -i rfp-5a3c2f1e-7 -j DNAT --to-destination 192.168.1.11');
  m.nat.addRule('float-snat', '-s 192.168.1.11/32 -j SNAT --to-source 203.0.113.102 --random-fully');
  m.nat.addRule('snat', '-j $float-snat');
  m.nat.addRule('POSTROUTING', '! -o rfp-5a3c2f1e-7 -m conntrack ! --ctstate DNAT -j ACCEPT');
  assert.equal(
    m.texts().nat,
    `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:neutron-l3-agent-OUTPUT - [0:0]
:neutron-l3-agent-POSTROUTING - [0:0]
:neutron-l3-agent-PREROUTING - [0:0]
:neutron-l3-agent-float-snat - [0:0]
:neutron-l3-agent-snat - [0:0]
:neutron-postrouting-bottom - [0:0]
-A PREROUTING -j neutron-l3-agent-PREROUTING
-A OUTPUT -j neutron-l3-agent-OUTPUT
-A POSTROUTING -j neutron-l3-agent-POSTROUTING
-A POSTROUTING -j neutron-postrouting-bottom
-A neutron-postrouting-bottom -m comment --comment "Perform source NAT on outgoing traffic." -j neutron-l3-agent-snat
-A neutron-l3-agent-PREROUTING -d 203.0.113.102/32 -i rfp-5a3c2f1e-7 -j DNAT --to-destination 192.168.1.11
-A neutron-l3-agent-POSTROUTING ! -o rfp-5a3c2f1e-7 -m conntrack ! --ctstate DNAT -j ACCEPT
-A neutron-l3-agent-float-snat -s 192.168.1.11/32 -j SNAT --to-source 203.0.113.102 --random-fully
-A neutron-l3-agent-snat -j neutron-l3-agent-float-snat
COMMIT
`,
  );
});

test('iptables: filter has neutron-filter-top before the wrapped chains; every table restores in the netfilter model', () => {
  const m = new IptablesManager();
  m.filter.addChain('scope').addRule('FORWARD', '-j $scope').addRule('scope', '-m mark --mark 0x1/0xffff -j DROP');
  m.filter.addRule('INPUT', '-p tcp -m tcp --dport 9697 -j DROP');
  m.mangle.addChain('mark').addRule('PREROUTING', '-j $mark').addRule('mark', '-i qg-1 -j MARK --set-xmark 0x2/0xffff');
  m.raw.addRule('PREROUTING', '-j CT --notrack');
  m.nat.addRule('PREROUTING', '-d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 9697');
  const texts = m.texts();
  assert.deepEqual(
    texts.filter!.split('\n').filter((l) => l.startsWith('-A FORWARD') || l.startsWith('-A OUTPUT')),
    ['-A FORWARD -j neutron-filter-top', '-A FORWARD -j neutron-l3-agent-FORWARD', '-A OUTPUT -j neutron-filter-top', '-A OUTPUT -j neutron-l3-agent-OUTPUT'],
  );
  const nf = new Netfilter();
  nf.restore(Object.values(texts).join(''));
  assert.throws(() => m.nat.addRule('snat', '-j $nowhere'), /unknown chain "nowhere"/);
  assert.throws(() => m.nat.addRule('nowhere', '-j ACCEPT'), /rule "-j ACCEPT" for unknown chain "nowhere"/);
});

test('allocator: lowest free first, stable per key, released values reused, persisted as key,value lines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-l3-alloc-'));
  try {
    const file = join(dir, 'fip-linklocal-networks');
    const a = new ItemAllocator(linkLocalPairs('169.254.64.0/18'), parsePair, file);
    assert.equal(a.allocate('r1'), '169.254.64.0/31');
    assert.equal(a.allocate('r2'), '169.254.64.2/31');
    assert.equal(a.allocate('r1'), '169.254.64.0/31');
    a.release('r1');
    assert.equal(a.allocate('r3'), '169.254.64.0/31');
    a.flush();
    assert.equal(readFileSync(file, 'utf8'), 'r2,169.254.64.2/31\nr3,169.254.64.0/31\n');
    const b = new ItemAllocator(linkLocalPairs('169.254.64.0/18'), parsePair, file);
    assert.ok(b.remember('r3', '169.254.64.8/31'), 'what the host has comes first');
    b.load(file);
    assert.deepEqual([b.get('r2'), b.get('r3')], ['169.254.64.2/31', '169.254.64.8/31']);
    writeFileSync(file, 'r9,169.254.64.3/32\n');
    assert.throws(() => new ItemAllocator(linkLocalPairs('169.254.64.0/18'), parsePair, file).load(file), /fip-linklocal-networks:1: "r9,169.254.64.3\/32": "169.254.64.3\/32" is not an IPv4 \/31/);
    const p = new ItemAllocator(priorityRange(32768, 32770), parsePriority);
    assert.equal(p.allocate('203.0.113.102'), 32768);
    assert.equal(p.allocate('203.0.113.103'), 32769);
    assert.throws(() => p.allocate('203.0.113.104'), /No free value left for "203.0.113.104"/);
    assert.equal([...linkLocalPairs('169.254.64.0/18')()][0], '169.254.64.0/31');
    assert.equal([...linkLocalPairs('169.254.64.0/18')()].length, 8192);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the /31 ends, the rule prefix, the veth MACs', () => {
  assert.deepEqual(pairEnds('169.254.64.0/31'), { rfp: '169.254.64.0', fpr: '169.254.64.1' });
  assert.deepEqual(pairEnds('169.254.127.254/31'), { rfp: '169.254.127.254', fpr: '169.254.127.255' });
  assert.equal(networkOf('192.168.1.1', 24), '192.168.1.0/24');
  assert.equal(networkOf('10.1.2.3', 0), '0.0.0.0/0');
  const m = vethMac('rfp-5a3c2f1e-7', '5a3c2f1e-7d4b');
  assert.match(m, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  assert.equal(parseInt(m.slice(0, 2), 16) & 3, 2, 'locally administered unicast');
  assert.equal(vethMac('rfp-5a3c2f1e-7', '5a3c2f1e-7d4b'), m);
  assert.notEqual(vethMac('fpr-5a3c2f1e-7', '5a3c2f1e-7d4b'), m);
});
