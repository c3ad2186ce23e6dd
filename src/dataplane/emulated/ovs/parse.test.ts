// Flow text parsing: defaults, normalisation, and a clear error (flow text + token) for every
// form the model does not accept.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OvsBridge, OvsFlowError, parseFlow } from './index.js';
import { MAC, icmp } from './fixtures.test-util.js';

function bridge(): OvsBridge {
  const b = new OvsBridge('br-int');
  b.addPort('patch-tun');
  b.addPort('qvo1');
  return b;
}

describe('OVS flow parser', () => {
  it('defaults: table 0, priority 32768, cookie 0; keeps timeouts', () => {
    const pf = parseFlow('actions=drop');
    assert.deepEqual([pf.table, pf.priority, pf.cookie, pf.actions], [0, 32768, 0n, []]);
    const t = parseFlow('table=3,priority=7,cookie=0xdeadbeefcafe,idle_timeout=10,hard_timeout=300,importance=2,ip,actions=drop');
    assert.deepEqual([t.table, t.priority, t.cookie, t.idleTimeout, t.hardTimeout, t.importance], [3, 7, 0xdeadbeefcafen, 10, 300, 2]);
  });

  it('accepts spaces as separators and a 64-bit cookie', () => {
    const pf = parseFlow('table=1 priority=2 cookie=0xffffffffffffffff in_port=1 actions=output:2');
    assert.equal(pf.cookie, 0xffffffffffffffffn);
    assert.equal(pf.match.toString(), 'in_port=1');
  });

  it('normalises MACs to lowercase and prints matches as dump-flows does', () => {
    const b = bridge();
    b.addFlow('table=1,priority=4,dl_vlan=2,dl_dst=FA:16:3E:AA:BB:CC,actions=mod_dl_src:FA:16:3F:00:00:01,output:qvo1');
    const [f] = b.dumpFlows();
    assert.equal(f.match, 'dl_vlan=2,dl_dst=fa:16:3e:aa:bb:cc');
    assert.equal(f.actions, 'mod_dl_src:fa:16:3f:00:00:01,output:2');
    assert.match(f.dump, /^ cookie=0x0, duration=[\d.]+s, table=1, n_packets=0, n_bytes=0, priority=4,dl_vlan=2,dl_dst=fa:16:3e:aa:bb:cc actions=mod_dl_src:fa:16:3f:00:00:01,output:2$/);
  });

  it('prints shorthands and protocol-specific names like ovs-ofctl', () => {
    const cases: Array<[string, string]> = [
      ['arp,nw_src=10.0.0.1', 'arp,arp_spa=10.0.0.1'],
      ['arp,nw_proto=1', 'arp,arp_op=1'],
      ['udp,udp_dst=67', 'udp,tp_dst=67'],
      ['icmp,tp_src=8', 'icmp,icmp_type=8'],
      ['ip,nw_dst=10.0.0.0/255.255.0.0', 'ip,nw_dst=10.0.0.0/16'],
      ['dl_vlan=0xffff', 'vlan_tci=0x0000'],
      ['vlan_tci=0x1000/0x1000', 'vlan_tci=0x1000/0x1000'],
      ['vlan_vid=0x1005', 'dl_vlan=5'],
      ['reg0=0x1/0xf,tun_id=0x5/0xff', 'reg0=0x1/0xf,tun_id=0x5/0xff'],
      ['in_port=65534', 'in_port=LOCAL'],
      ['dl_type=0x88cc', 'dl_type=0x88cc'],
    ];
    for (const [input, printed] of cases) assert.equal(parseFlow(`${input},actions=drop`).match.toString(), printed, input);
  });

  it('resolves port names in matches and actions against the bridge', () => {
    const b = bridge();
    const r = b.addFlow('in_port=patch-tun,actions=output:qvo1,resubmit(qvo1,3),qvo1');
    assert.equal(r.match.toString(), 'in_port=1');
    // An output keeps the port's name (looked up when a packet leaves); dumps show its number as OVS does.
    assert.equal(r.actions.map((a) => a.text).join(','), 'output:qvo1,resubmit(2,3),output:qvo1');
    assert.equal(b.dumpFlows()[0].actions, 'output:2,resubmit(2,3),output:2');
  });

  it('one parse and rule spec serve bridges that number a named output port differently', () => {
    const a = new OvsBridge('br-tun');
    a.addPort('patch-int');
    a.addPort('vxlan-0a000002');
    const b = new OvsBridge('br-tun');
    b.addPort('patch-int');
    b.addPort('vxlan-0a000003');
    b.addPort('vxlan-0a000002');
    const text = 'table=0,priority=1,in_port=patch-int,actions=output:vxlan-0a000002';
    const [ra, rb] = [a.addFlow(text), b.addFlow(text)];
    assert.equal(ra.spec, rb.spec);
    const frame = icmp(MAC.vm1, MAC.vm2);
    assert.deepEqual(a.process(frame, 'patch-int').outputs.map((o) => [o.port, o.ofport]), [['vxlan-0a000002', 2]]);
    assert.deepEqual(b.process(frame, 'patch-int').outputs.map((o) => [o.port, o.ofport]), [['vxlan-0a000002', 3]]);
    assert.equal(b.dumpFlows()[0].actions, 'output:3');
    // A bridge without the port refuses the flow, as OVS does, even though the text was parsed before.
    const c = new OvsBridge('br-tun');
    c.addPort('patch-int');
    assert.throws(() => c.addFlow(text), /invalid or unknown port/);
  });

  it('addFlows is all-or-nothing', () => {
    const b = bridge();
    assert.throws(() => b.addFlows(['actions=drop', 'actions=bogus']), OvsFlowError);
    assert.equal(b.flowCount, 0);
  });

  const REJECTED: Array<[string, string, RegExp]> = [
    ['table=0,priority=1,in_port=1', 'table=0,priority=1,in_port=1', /must specify an action/],
    ['foo=1,actions=drop', 'foo=1', /unknown match field 'foo'/],
    ['ipv6_src=::1,actions=drop', 'ipv6_src=::1', /not supported by this model/],
    ['ct_state=+trk,actions=drop', 'ct_state=+trk', /not supported by this model/],
    ['tcp_flags=+syn,actions=drop', 'tcp_flags=+syn', /not supported/],
    ['nw_src=10.0.0.1,actions=drop', 'nw_src=10.0.0.1', /needs the flow to match ip or arp/],
    ['tcp_dst=80,actions=drop', 'tcp_dst=80', /needs the flow to match tcp/],
    ['udp,tcp_dst=80,actions=drop', 'tcp_dst=80', /needs the flow to match tcp/],
    ['arp_op=1,actions=drop', 'arp_op=1', /needs the flow to match arp/],
    ['ip,arp,actions=drop', 'arp', /contradicts/],
    ['dl_src=fa:16:3e:00:00:01,dl_src=fa:16:3e:00:00:02,actions=drop', 'dl_src=fa:16:3e:00:00:02', /given twice/],
    ['dl_src=fa:16:3e:00:00,actions=drop', 'fa:16:3e:00:00', /invalid value for dl_src/],
    ['ip,nw_src=10.0.0.300,actions=drop', '10.0.0.300', /invalid value for nw_src/],
    ['ip,nw_src=10.0.0.0/33,actions=drop', 'nw_src=10.0.0.0/33', /prefix length/],
    ['in_port=1/1,actions=drop', 'in_port=1/1', /cannot be masked/],
    ['in_port=nosuchport,actions=drop', 'nosuchport', /unknown port/],
    ['dl_vlan=4096,actions=drop', 'dl_vlan=4096', /VLAN VID/],
    ['table=255,actions=drop', 'table=255', /invalid number/],
    ['priority=70000,actions=drop', 'priority=70000', /invalid number/],
    ['cookie=0x1/-1,actions=drop', 'cookie=0x1/-1', /cannot use a cookie mask/],
    ['send_flow_rem,actions=drop', 'send_flow_rem', /unknown keyword/],
    ['actions=output:1,drop', 'drop', /must not be accompanied/],
    ['actions=controller', 'controller', /unsupported action 'controller'/],
    ['actions=CONTROLLER:65535', 'CONTROLLER:65535', /unsupported action/],
    ['actions=ct(commit)', 'ct(commit)', /unsupported action 'ct'/],
    ['actions=note:abcd', 'note:abcd', /unsupported action 'note'/],
    ['actions=enqueue:1:2', 'enqueue:1:2', /unsupported action/],
    ['actions=group:1', 'group:1', /unsupported action/],
    ['actions=output(port=2,max_len=100)', 'output(port=2,max_len=100)', /max_len/],
    ['actions=output:99999', '99999', /out of range/],
    ['actions=output:NONE', 'output:NONE', /not supported/],
    ['actions=resubmit(,300)', 'resubmit(,300)', /unknown table/],
    ['actions=resubmit(,1,ct)', 'resubmit(,1,ct)', /ct is not supported/],
    ['actions=goto_table:1,output:2', 'output:2', /goto_table must be the last/],
    ['table=2,actions=goto_table:1', 'goto_table:1', /later table/],
    ['actions=write_metadata:0x1,output:2', 'output:2', /write_metadata may only be followed by goto_table/],
    ['actions=mod_vlan_vid:4096', 'mod_vlan_vid:4096', /not a valid VLAN VID/],
    ['actions=push_vlan:0x88a8', 'push_vlan:0x88a8', /only push_vlan:0x8100/],
    ['actions=strip_vlan:1', 'strip_vlan:1', /takes no argument/],
    ['actions=mod_dl_src:zz:16:3e:00:00:01', 'mod_dl_src:zz:16:3e:00:00:01', /invalid MAC/],
    ['actions=set_field:2->arp_op', 'set_field:2->arp_op', /arp_op lacks its prerequisite/],
    ['actions=load:2->NXM_OF_ARP_OP[]', 'load:2->NXM_OF_ARP_OP[]', /lacks its prerequisite/],
    ['actions=move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]', 'move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]', /lacks its prerequisite/],
    ['actions=set_field:10.0.0.1->ip_src', 'set_field:10.0.0.1->ip_src', /lacks its prerequisite/],
    ['actions=set_field:0x1005->vlan_vid', 'set_field:0x1005->vlan_vid', /known to carry a VLAN tag/],
    ['actions=set_field:1->nosuch', 'nosuch', /unknown field/],
    ['actions=set_field:0x5/0x5->reg0', 'set_field:0x5/0x5->reg0', /contiguous/],
    ['actions=set_field:0x0800->eth_type', 'set_field:0x0800->eth_type', /read-only/],
    ['actions=load:0x1005->OXM_OF_VLAN_VID[]', 'load:0x1005->OXM_OF_VLAN_VID[]', /does not fit into 12 bits/],
    ['actions=load:foo->NXM_NX_REG0[]', 'load:foo->NXM_NX_REG0[]', /must be an integer/],
    ['actions=load:1->NXM_NX_REG0[0..32]', 'NXM_NX_REG0[0..32]', /bit range outside/],
    ['actions=load:1->NXM_NX_REG9[]', 'NXM_NX_REG9', /unknown field/],
    ['actions=load:1->NXM_NX_REG0', 'NXM_NX_REG0', /expected a field reference/],
    ['actions=move:NXM_NX_REG0[0..11]->NXM_OF_VLAN_TCI[0..10]', 'move:NXM_NX_REG0[0..11]->NXM_OF_VLAN_TCI[0..10]', /12 bits wide but destination is 11/],
    ['actions=set_tunnel:0x100000000', 'set_tunnel:0x100000000', /invalid tunnel id/],
    ['actions=dec_ttl', 'dec_ttl', /needs a flow that matches ip/],
    ['ip,actions=dec_ttl(1,2)', 'dec_ttl(1,2)', /controller ids/],
    ['actions=learn(table=20,delete_learned,NXM_OF_ETH_DST[])', 'delete_learned', /not supported/],
    ['actions=learn(table=20,limit=10,NXM_OF_ETH_DST[])', 'limit=10', /not supported/],
    ['actions=learn(table=300,NXM_OF_ETH_DST[])', 'table=300', /0..254/],
    ['actions=learn(table=20,NXM_OF_ETH_DST[]=NXM_NX_REG0[])', 'NXM_OF_ETH_DST[]=NXM_NX_REG0[]', /32 bits wide but destination is 48/],
    ['actions=learn(table=20,bogus=1)', 'bogus', /unknown learn option or field/],
    ['actions=learn(table=20,NXM_OF_ARP_SPA[])', 'NXM_OF_ARP_SPA[]', /lacks its prerequisite/],
    ['actions=resubmit(,1', 'resubmit(,1', /unbalanced/],
  ];

  for (const [flow, token, reason] of REJECTED) {
    it(`rejects ${flow}`, () => {
      const b = bridge();
      assert.throws(
        () => b.addFlow(flow),
        (e: unknown) => {
          assert.ok(e instanceof OvsFlowError, String(e));
          assert.ok(e.message.includes(`"${flow}"`), `message quotes the flow: ${e.message}`);
          assert.ok(e.message.includes(token), `message names '${token}': ${e.message}`);
          assert.match(e.message, reason);
          return true;
        },
      );
    });
  }
});
