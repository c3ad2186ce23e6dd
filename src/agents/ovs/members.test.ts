import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memberDigest, sortAddresses, withAddresses } from '../../rpc/members.js';
import { applyMemberChange, canonicalMembers, sortedFamily } from './members.js';

/** A group of n IPv4 members, as a host decodes it (a fresh object each time). */
const group = (n: number, extra: string[] = []) => ({ IPv4: [...Array.from({ length: n }, (_, i) => `10.1.${i >> 8}.${i & 255}`), ...extra], IPv6: [] as string[] });

describe("the OVS agent's security group members", () => {
  it('keeps equal groups as one object, each family sorted as ipsets list them', () => {
    const a = canonicalMembers(group(40, ['10.0.0.10', '10.0.0.9']));
    assert.equal(canonicalMembers(group(40, ['10.0.0.10', '10.0.0.9'])), a);
    assert.deepEqual(a.IPv4.slice(0, 2), ['10.0.0.9', '10.0.0.10']);
    assert.equal(sortedFamily(a.IPv4), a.IPv4);
  });

  it('applies a change once for every host that holds the same members', () => {
    const target = group(40, ['10.0.0.99']);
    const change = { IPv4: { add: ['10.0.0.99'], del: [] }, digest: memberDigest(target) };
    const h1 = applyMemberChange(canonicalMembers(group(40)), change)!;
    const h2 = applyMemberChange(canonicalMembers(group(40)), change)!;
    assert.equal(h1, h2);
    assert.deepEqual([...h1.IPv4].sort(), [...target.IPv4].sort());
    assert.equal(h1.IPv6, canonicalMembers(group(40)).IPv6, 'the untouched family stays the same array');
    // Again after a fetch that already saw it: nothing to add, the same members.
    assert.equal(applyMemberChange(h1, change), h1);
  });

  it('meets again the members that hosts reached by other histories', () => {
    const target = group(40, ['10.0.0.99']);
    const viaChange = applyMemberChange(canonicalMembers(group(40)), { IPv4: { add: ['10.0.0.99'], del: [] }, digest: memberDigest(target) })!;
    const fetched = canonicalMembers({ IPv4: [...target.IPv4].reverse(), IPv6: [] });
    assert.equal(fetched, viaChange);
  });

  it('refuses a change that does not lead to the announced members', () => {
    const base = canonicalMembers(group(40));
    assert.equal(applyMemberChange(base, { IPv4: { add: ['10.0.0.99'], del: [] }, digest: memberDigest(group(40)) }), undefined);
    const removed = group(40).IPv4.slice(1);
    assert.deepEqual(applyMemberChange(base, { IPv4: { add: [], del: ['10.1.0.0'] }, digest: memberDigest({ IPv4: removed, IPv6: [] }) })?.IPv4, removed);
  });

  it('orders addresses as ipsets list them: IPv4 numerically, then IPv6', () => {
    assert.deepEqual(sortAddresses(['fd00::1', '10.0.0.10', '10.0.0.9/32', '9.0.0.1', '10.0.0.9', '2001:db8::/64']), ['9.0.0.1', '10.0.0.9', '10.0.0.9/32', '10.0.0.10', '2001:db8::/64', 'fd00::1']);
  });

  it('puts added members where a full sort would (numeric order, the later of equal keys after)', () => {
    const sorted = sortAddresses(group(300).IPv4.concat(['10.1.0.9/32', '192.168.0.1', 'fd00::1', '9.9.9.9']));
    for (const add of [['10.1.0.10'], ['10.1.0.9', '10.1.0.09', '1.2.3.4', '255.255.255.255', 'fd00::'], Array.from({ length: 40 }, (_, i) => `10.1.${i}.${(i * 7) % 256}`)])
      assert.deepEqual(withAddresses(sorted, add), sortAddresses([...sorted, ...add]), add.join(' '));
    // A change applied to a group yields the order canonicalMembers gives the same content.
    const base = canonicalMembers(group(300));
    const target = group(300, ['10.1.2.7', '10.0.255.255']);
    const after = applyMemberChange(base, { IPv4: { add: ['10.1.2.7', '10.0.255.255'], del: [] }, digest: memberDigest(target) })!;
    assert.equal(after, canonicalMembers({ IPv4: [...target.IPv4].reverse(), IPv6: [] }));
  });
});
