// Peer lists shared by the OVS agents of a process: one held list per peer and content, and a
// frozen list (the server's, as the in-process bus hands it to every host) known by identity.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { heldPeerList, internPeerList } from './shared.js';

type List = Array<[string, string]>;
const list = (...macs: string[]): List => [['00:00:00:00:00:00', '0.0.0.0'], ...macs.map((m, i): [string, string] => [m, `10.9.0.${i + 1}`])];

describe('shared peer lists', () => {
  it('equal lists of one peer are held as one array; another peer holds its own', () => {
    const a = internPeerList('10.1.0.7', list('fa:16:3e:00:07:01'));
    assert.equal(internPeerList('10.1.0.7', list('fa:16:3e:00:07:01')), a);
    assert.notEqual(internPeerList('10.1.0.8', list('fa:16:3e:00:07:01')), a);
    assert.notEqual(internPeerList('10.1.0.7', list('fa:16:3e:00:07:02')), a);
  });

  it('a frozen list is known by identity after its first interning, for its own peer only', () => {
    const held = internPeerList('10.1.0.9', list('fa:16:3e:00:09:01'));
    const server = Object.freeze(list('fa:16:3e:00:09:01')) as List;
    assert.equal(heldPeerList('10.1.0.9', server), undefined, 'not seen yet');
    assert.equal(internPeerList('10.1.0.9', server), held);
    assert.equal(heldPeerList('10.1.0.9', server), held);
    assert.equal(heldPeerList('10.1.0.10', server), undefined, 'another peer with the same entries');
    const cast = list('fa:16:3e:00:09:01');
    assert.equal(internPeerList('10.1.0.9', cast), held);
    assert.equal(heldPeerList('10.1.0.9', cast), undefined, 'a list not frozen is not remembered');
  });
});
