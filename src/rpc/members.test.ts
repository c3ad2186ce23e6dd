import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memberChange, memberDigest } from './members.js';

const sets = (v4: string[], v6: string[] = []) => ({ IPv4: new Set(v4), IPv6: new Set(v6) });

describe('security group members on the wire', () => {
  it('digests a member set whatever its order, and tells sets apart', () => {
    const a = memberDigest({ IPv4: ['10.0.0.5', '10.0.0.6'], IPv6: ['2001:db8::5'] });
    assert.equal(memberDigest({ IPv4: ['10.0.0.6', '10.0.0.5'], IPv6: ['2001:db8::5'] }), a);
    assert.notEqual(memberDigest({ IPv4: ['10.0.0.5', '10.0.0.7'], IPv6: ['2001:db8::5'] }), a);
    assert.notEqual(memberDigest({ IPv4: ['10.0.0.5'], IPv6: ['2001:db8::5'] }), a);
    assert.match(a, /^3:[0-9a-f]+$/);
  });

  it('says what joined and left each family, with the digest of the result', () => {
    const after = { IPv4: ['10.0.0.1', '10.0.0.2', '10.0.0.4'], IPv6: ['2001:db8::1'] };
    const c = memberChange(sets(['10.0.0.1', '10.0.0.2', '10.0.0.3'], ['2001:db8::1']), after);
    assert.deepEqual(c, { IPv4: { add: ['10.0.0.4'], del: ['10.0.0.3'] }, digest: memberDigest(after) });
  });

  it('gives no change when the members whole would say less', () => {
    assert.equal(memberChange(sets(['10.0.0.1', '10.0.0.2']), { IPv4: ['10.0.0.3'], IPv6: [] }), undefined);
    assert.equal(memberChange(sets(['10.0.0.1']), { IPv4: [], IPv6: [] }), undefined);
  });
});
