// Frame builders shared by this folder's tests.

import { ETH_TYPE_ARP, ETH_TYPE_IPV4, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, type Frame } from '../packet.js';

export const MAC = {
  vm1: 'fa:16:3e:00:00:01',
  vm2: 'fa:16:3e:00:00:02',
  vm3: 'fa:16:3e:00:00:03',
  qr: 'fa:16:3e:00:00:aa',
  dvrA: 'fa:16:3f:00:00:0a',
  dvrB: 'fa:16:3f:00:00:0b',
  bcast: 'ff:ff:ff:ff:ff:ff',
};

export function icmp(src: string, dst: string, ipSrc = '10.0.0.1', ipDst = '10.0.0.2', vlan?: number, ttl = 64): Frame {
  const f: Frame = {
    eth: { src, dst, type: ETH_TYPE_IPV4 },
    ip: { src: ipSrc, dst: ipDst, ttl, proto: IPPROTO_ICMP },
    l4: { kind: 'icmp', type: 8, code: 0, id: 7, seq: 1 },
  };
  if (vlan !== undefined) f.vlan = vlan;
  return f;
}

export function tcp(src: string, dst: string, sport: number, dport: number, ipSrc = '10.0.0.1', ipDst = '10.0.0.2'): Frame {
  return {
    eth: { src, dst, type: ETH_TYPE_IPV4 },
    ip: { src: ipSrc, dst: ipDst, ttl: 64, proto: IPPROTO_TCP },
    l4: { kind: 'tcp', sport, dport, flags: { syn: true } },
  };
}

export function udp(src: string, dst: string, sport: number, dport: number, ipSrc = '10.0.0.1', ipDst = '10.0.0.2'): Frame {
  return {
    eth: { src, dst, type: ETH_TYPE_IPV4 },
    ip: { src: ipSrc, dst: ipDst, ttl: 64, proto: IPPROTO_UDP },
    l4: { kind: 'udp', sport, dport },
  };
}

export function arpRequest(sha: string, spa: string, tpa: string, vlan?: number): Frame {
  const f: Frame = {
    eth: { src: sha, dst: 'ff:ff:ff:ff:ff:ff', type: ETH_TYPE_ARP },
    arp: { op: 1, sha, spa, tha: '00:00:00:00:00:00', tpa },
  };
  if (vlan !== undefined) f.vlan = vlan;
  return f;
}

export function arpReply(sha: string, spa: string, tha: string, tpa: string): Frame {
  return { eth: { src: sha, dst: tha, type: ETH_TYPE_ARP }, arp: { op: 2, sha, spa, tha, tpa } };
}
