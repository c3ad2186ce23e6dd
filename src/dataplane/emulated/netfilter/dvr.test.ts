// The L3 agent's namespaces (router_info.py, dvr_local_router.py, dvr_edge_router.py,
// dvr_fip_ns.py, metadata/driver.py) with their rules written out by hand as
// iptables_manager wraps them (binary name `neutron-l3-agent`), and packets through them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Frame } from '../packet.js';
import { Netfilter, type NfContext, type NfHook, type NfStep } from './index.js';
import { icmpError, ipOf, ping, tcp, udp } from './test-frames.js';

const L = 'neutron-l3-agent';
const QR = 'qr-11111111-11';
const QR2 = 'qr-22222222-22';
const RFP = 'rfp-3333333333';
const QG = 'qg-44444444-44';
const SG = 'sg-55555555-55';
const FIXED = '10.0.0.5';
const FIP = '172.24.4.10';
const GW_IP = '172.24.4.2';

const ADDRESS_SCOPE_MANGLE = `-A ${L}-PREROUTING -j ${L}-mark
-A ${L}-PREROUTING -j ${L}-scope
-A ${L}-PREROUTING -m connmark ! --mark 0x0/0xffff0000 -j CONNMARK --restore-mark --nfmask 0xffff0000 --ctmask 0xffff0000
-A ${L}-PREROUTING -j ${L}-floatingip
-A ${L}-float-snat -m connmark --mark 0x0/0xffff0000 -j CONNMARK --save-mark --nfmask 0xffff0000 --ctmask 0xffff0000`;

const MANGLE_CHAINS = `:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:${L}-FORWARD - [0:0]
:${L}-INPUT - [0:0]
:${L}-OUTPUT - [0:0]
:${L}-POSTROUTING - [0:0]
:${L}-PREROUTING - [0:0]
:${L}-float-snat - [0:0]
:${L}-floatingip - [0:0]
:${L}-mark - [0:0]
:${L}-scope - [0:0]
-A PREROUTING -j ${L}-PREROUTING
-A INPUT -j ${L}-INPUT
-A FORWARD -j ${L}-FORWARD
-A OUTPUT -j ${L}-OUTPUT
-A POSTROUTING -j ${L}-POSTROUTING`;

const NAT_CHAINS = `:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:${L}-OUTPUT - [0:0]
:${L}-POSTROUTING - [0:0]
:${L}-PREROUTING - [0:0]
:${L}-float-snat - [0:0]
:${L}-snat - [0:0]
:neutron-postrouting-bottom - [0:0]
-A PREROUTING -j ${L}-PREROUTING
-A OUTPUT -j ${L}-OUTPUT
-A POSTROUTING -j ${L}-POSTROUTING
-A POSTROUTING -j neutron-postrouting-bottom
-A neutron-postrouting-bottom -m comment --comment "Perform source NAT on outgoing traffic." -j ${L}-snat
-A ${L}-snat -j ${L}-float-snat`;

const FILTER = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:neutron-filter-top - [0:0]
:${L}-FORWARD - [0:0]
:${L}-INPUT - [0:0]
:${L}-OUTPUT - [0:0]
:${L}-local - [0:0]
:${L}-scope - [0:0]
-A INPUT -j ${L}-INPUT
-A FORWARD -j neutron-filter-top
-A FORWARD -j ${L}-FORWARD
-A OUTPUT -j neutron-filter-top
-A OUTPUT -j ${L}-OUTPUT
-A neutron-filter-top -j ${L}-local
-A ${L}-FORWARD -j ${L}-scope
-A ${L}-INPUT -m mark --mark 0x1/0xffff -j ACCEPT
-A ${L}-INPUT -p tcp -m tcp --dport 9697 -j DROP
-A ${L}-scope -m mark --mark 0x1/0xffff -j DROP
COMMIT`;

/** qrouter namespace on a compute host: a floating IP and the metadata proxy. */
const QROUTER = `*mangle
${MANGLE_CHAINS}
${ADDRESS_SCOPE_MANGLE}
-A ${L}-PREROUTING -d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x1/0xffff
-A ${L}-FORWARD -s ${FIXED}/32 -j ${L}-float-snat
-A ${L}-floatingip -d ${FIP}/32 -i ${RFP} -j MARK --set-xmark 0x4000000/0xffff0000
COMMIT
*nat
${NAT_CHAINS}
-A ${L}-POSTROUTING ! -o ${RFP} -m conntrack ! --ctstate DNAT -j ACCEPT
-A ${L}-PREROUTING -d 169.254.169.254/32 -i qr-+ -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 9697
-A ${L}-PREROUTING -d ${FIP}/32 -i ${RFP} -j DNAT --to-destination ${FIXED}
-A ${L}-float-snat -s ${FIXED}/32 -j SNAT --to-source ${FIP} --random-fully
COMMIT
${FILTER}
`;

/** snat namespace on the dvr_snat host: default SNAT, plus a centralized (unbound) floating IP. */
const SNAT_NS = `*mangle
${MANGLE_CHAINS}
${ADDRESS_SCOPE_MANGLE}
-A ${L}-mark -i ${QG} -j MARK --set-xmark 0x2/0xffff
COMMIT
*nat
${NAT_CHAINS}
-A ${L}-POSTROUTING ! -o ${QG} -m conntrack ! --ctstate DNAT -j ACCEPT
-A ${L}-PREROUTING -d 172.24.4.20/32 -j DNAT --to-destination 10.0.0.9
-A ${L}-OUTPUT -d 172.24.4.20/32 -j DNAT --to-destination 10.0.0.9
-A ${L}-float-snat -s 10.0.0.9/32 -j SNAT --to-source 172.24.4.20
-A ${L}-snat -o ${QG} -j SNAT --to-source ${GW_IP} --random-fully
-A ${L}-snat -m mark ! --mark 0x2/0xffff -m conntrack --ctstate DNAT -j SNAT --to-source ${GW_IP} --random-fully
COMMIT
${FILTER}
`;

const FIP_NS = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:${L}-OUTPUT - [0:0]
:${L}-PREROUTING - [0:0]
-A PREROUTING -j ${L}-PREROUTING
-A OUTPUT -j ${L}-OUTPUT
-A ${L}-PREROUTING -j CT --notrack
COMMIT
`;

function ns(rules: string): Netfilter {
  const nf = new Netfilter();
  nf.restore(rules);
  return nf;
}

/** Routes a packet through a namespace: PREROUTING, FORWARD, POSTROUTING. */
function route(nf: Netfilter, f: Frame, inDev: string, outDev: string, extra: Partial<NfContext> = {}) {
  const steps: NfStep[] = [];
  let cur: { frame: Frame; ct?: NfContext['ct']; mark: number } = { frame: f, mark: 0 };
  const hooks: [NfHook, NfContext][] = [
    ['PREROUTING', { in: inDev }],
    ['FORWARD', { in: inDev, out: outDev }],
    ['POSTROUTING', { out: outDev }],
  ];
  for (const [hook, ctx] of hooks) {
    const r = nf.hook(hook, cur.frame, { ...extra, ...ctx, ct: cur.ct, mark: cur.mark });
    steps.push(...r.steps);
    if (r.verdict !== 'accept') return { verdict: r.verdict, frame: r.frame, steps, mark: r.mark };
    cur = { frame: r.frame, ct: r.ct, mark: r.mark };
  }
  return { verdict: 'accept', frame: cur.frame, steps, mark: cur.mark };
}

test('qrouter: the VM goes out with its floating IP (float-snat) and the reply is un-SNATed', () => {
  const nf = ns(QROUTER);
  const out = route(nf, udp(FIXED, 5000, '8.8.8.8', 53), QR, RFP);
  assert.equal(ipOf(out.frame), `${FIP}:5000 > 8.8.8.8:53`);
  const snat = out.steps.find((s) => s.target === 'SNAT')!;
  assert.equal(snat.rule, `-A ${L}-float-snat -s ${FIXED}/32 -j SNAT --to-source ${FIP} --random-fully`);
  assert.equal(snat.hook, 'POSTROUTING');
  const back = route(nf, udp('8.8.8.8', 53, FIP, 5000), RFP, QR);
  assert.equal(ipOf(back.frame), `8.8.8.8:53 > ${FIXED}:5000`);
  // Un-SNAT happened on PREROUTING, from conntrack; the DNAT rule was not consulted.
  assert.deepEqual(
    back.steps.filter((s) => s.table === 'nat' || s.target.startsWith('un-')).map((s) => `${s.hook} ${s.target}`),
    ['PREROUTING un-SNAT'],
  );
});

test('qrouter: a new connection to the floating IP is DNATed in PREROUTING and not SNATed', () => {
  const nf = ns(QROUTER);
  const inb = route(nf, tcp('8.8.4.4', 33000, FIP, 22), RFP, QR);
  assert.equal(ipOf(inb.frame), `8.8.4.4:33000 > ${FIXED}:22`);
  assert.ok(inb.steps.some((s) => s.target === 'DNAT' && s.rule.includes(`-i ${RFP} -j DNAT`)));
  // The floating-IP address-scope mark (mangle floatingip chain).
  assert.equal(inb.mark, 0x4000000);
  const reply = route(nf, tcp(FIXED, 22, '8.8.4.4', 33000, { syn: true, ack: true }), QR, RFP);
  assert.equal(ipOf(reply.frame), `${FIP}:22 > 8.8.4.4:33000`);
  assert.ok(reply.steps.some((s) => s.hook === 'POSTROUTING' && s.target === 'un-DNAT'));
});

test('qrouter: east-west traffic between subnets is not NATed', () => {
  const nf = ns(QROUTER);
  const r = route(nf, tcp(FIXED, 1000, '10.0.1.7', 80), QR, QR2);
  assert.equal(ipOf(r.frame), `${FIXED}:1000 > 10.0.1.7:80`);
  const accept = r.steps.find((s) => s.hook === 'POSTROUTING' && s.table === 'nat' && s.target === 'ACCEPT')!;
  assert.equal(accept.rule, `-A ${L}-POSTROUTING ! -o ${RFP} -m conntrack ! --ctstate DNAT -j ACCEPT`);
});

test('qrouter: metadata requests are REDIRECTed to the proxy on 9697 and marked; the port is closed otherwise', () => {
  const nf = ns(QROUTER);
  const addr = (d: string) => (d === QR ? '10.0.0.1' : undefined);
  const pre = nf.hook('PREROUTING', tcp(FIXED, 41000, '169.254.169.254', 80), { in: QR, primaryAddress: addr });
  assert.equal(ipOf(pre.frame), `${FIXED}:41000 > 10.0.0.1:9697`);
  assert.equal(pre.mark, 0x1);
  const input = nf.hook('INPUT', pre.frame, { in: QR, ct: pre.ct, mark: pre.mark });
  assert.equal(input.verdict, 'accept');
  const direct = nf.hook('PREROUTING', tcp(FIXED, 41001, '10.0.0.1', 9697), { in: QR });
  assert.equal(nf.hook('INPUT', direct.frame, { in: QR, ct: direct.ct, mark: direct.mark }).verdict, 'drop');
  // A marked metadata request that would be forwarded (no proxy) is dropped by the scope chain.
  assert.equal(nf.hook('FORWARD', pre.frame, { in: QR, out: RFP, mark: 0x1, ct: pre.ct }).verdict, 'drop');
});

test('snat namespace: default SNAT to the gateway IP on qg-, replies un-SNATed and marked on ingress', () => {
  const nf = ns(SNAT_NS);
  const out = route(nf, tcp(FIXED, 45000, '93.184.216.34', 443), SG, QG);
  assert.equal(ipOf(out.frame), `${GW_IP}:45000 > 93.184.216.34:443`);
  const back = route(nf, tcp('93.184.216.34', 443, GW_IP, 45000, { syn: true, ack: true }), QG, SG);
  assert.equal(ipOf(back.frame), `93.184.216.34:443 > ${FIXED}:45000`);
  assert.equal(back.mark, 0x2); // external_ingress_mark
});

test('snat namespace: hairpin to a centralized floating IP is SNATed so replies come back through it', () => {
  const nf = ns(SNAT_NS);
  const inside = route(nf, tcp(FIXED, 46000, '172.24.4.20', 80), SG, SG);
  assert.equal(ipOf(inside.frame), `${GW_IP}:46000 > 10.0.0.9:80`);
  const outside = route(nf, tcp('8.8.8.8', 46000, '172.24.4.20', 80), QG, SG);
  assert.equal(ipOf(outside.frame), '8.8.8.8:46000 > 10.0.0.9:80'); // marked 0x2: not SNATed
  const reply = route(nf, tcp('10.0.0.9', 80, GW_IP, 46000, { syn: true, ack: true }), SG, SG);
  assert.equal(ipOf(reply.frame), `172.24.4.20:80 > ${FIXED}:46000`);
  // The namespace itself reaching the centralized floating IP: OUTPUT DNAT.
  const local = nf.hook('OUTPUT', ping(GW_IP, '172.24.4.20'), { out: SG });
  assert.equal(local.frame.ip!.dst, '10.0.0.9');
});

test('snat namespace: an ICMP error about a SNATed flow is RELATED and translated inside and out', () => {
  const nf = ns(SNAT_NS);
  const q = udp(FIXED, 5353, '8.8.8.8', 53);
  const out = route(nf, q, SG, QG);
  const err = icmpError('192.0.2.1', GW_IP, out.frame, 11, 0);
  const back = route(nf, err, QG, SG);
  assert.equal(back.verdict, 'accept');
  assert.equal(back.frame.ip!.dst, FIXED);
  const quoted = (back.frame.l4 as { quoted: Frame }).quoted;
  assert.equal(ipOf(quoted), `${FIXED}:5353 > 8.8.8.8:53`);
  assert.equal(back.steps[0].target, 'RELATED');
});

test('fip namespace: raw CT --notrack leaves everything untracked', () => {
  const nf = ns(FIP_NS);
  const r = route(nf, tcp('8.8.8.8', 1, FIP, 22), 'fg-66666666-66', 'fpr-3333333333');
  assert.equal(r.verdict, 'accept');
  assert.equal(r.steps.find((s) => s.table === 'conntrack')!.target, 'UNTRACKED');
  assert.equal(nf.conntrack.size, 0);
});

test('CT zones isolate two identical connections through the hooks', () => {
  // Two ports with the same address on different networks, on one host.
  const nf = ns(
    '*raw\n:PREROUTING ACCEPT [0:0]\n' +
      '-A PREROUTING -m physdev --physdev-in tapA -j CT --zone 1\n-A PREROUTING -m physdev --physdev-in qvbA -j CT --zone 1\n' +
      '-A PREROUTING -m physdev --physdev-in tapB -j CT --zone 2\n-A PREROUTING -m physdev --physdev-in qvbB -j CT --zone 2\nCOMMIT\n' +
      '*filter\n:FORWARD DROP [0:0]\n' +
      '-A FORWARD -m state --state RELATED,ESTABLISHED -j ACCEPT\n' +
      '-A FORWARD -m physdev --physdev-in tap+ -j ACCEPT\nCOMMIT\n',
  );
  const cross = (f: Frame, physIn: string, physOut: string) => {
    const pre = nf.hook('PREROUTING', f, { in: 'qbr', physIn, bridged: true });
    return nf.hook('FORWARD', pre.frame, { in: 'qbr', out: 'qbr', physIn, physOut, bridged: true, ct: pre.ct });
  };
  const syn = tcp('10.0.0.5', 1000, '10.0.0.7', 22);
  const synack = tcp('10.0.0.7', 22, '10.0.0.5', 1000, { syn: true, ack: true });
  assert.equal(cross(syn, 'tapA', 'qvbA').verdict, 'accept');
  assert.equal(cross(synack, 'qvbA', 'tapA').verdict, 'accept'); // zone 1: ESTABLISHED
  assert.equal(cross(synack, 'qvbB', 'tapB').verdict, 'drop'); // zone 2 never saw the SYN
  assert.equal(cross(syn, 'tapB', 'qvbB').verdict, 'accept');
  assert.equal(cross(synack, 'qvbB', 'tapB').verdict, 'accept');
  assert.deepEqual(nf.conntrack.entries().map((e) => e.zone).sort(), [1, 2]);
});
