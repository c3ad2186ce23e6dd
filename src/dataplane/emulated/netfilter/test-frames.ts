// Frame builders for the netfilter tests.

import type { Frame, Tcp } from '../packet.js';
import { ETH_TYPE_IPV4, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../packet.js';

const MAC_A = 'fa:16:3e:00:00:0a';
const MAC_B = 'fa:16:3e:00:00:0b';

export function tcp(src: string, sport: number, dst: string, dport: number, flags: Tcp['flags'] = { syn: true }, mac = MAC_A): Frame {
  return {
    eth: { src: mac, dst: MAC_B, type: ETH_TYPE_IPV4 },
    ip: { src, dst, ttl: 64, proto: IPPROTO_TCP },
    l4: { kind: 'tcp', sport, dport, flags },
  };
}

export function udp(src: string, sport: number, dst: string, dport: number, mac = MAC_A): Frame {
  return {
    eth: { src: mac, dst: MAC_B, type: ETH_TYPE_IPV4 },
    ip: { src, dst, ttl: 64, proto: IPPROTO_UDP },
    l4: { kind: 'udp', sport, dport },
  };
}

export function ping(src: string, dst: string, id = 7, type = 8, mac = MAC_A): Frame {
  return {
    eth: { src: mac, dst: MAC_B, type: ETH_TYPE_IPV4 },
    ip: { src, dst, ttl: 64, proto: IPPROTO_ICMP },
    l4: { kind: 'icmp', type, code: 0, id, seq: 1 },
  };
}

/** An ICMP error from `src` to `dst` quoting `about`. */
export function icmpError(src: string, dst: string, about: Frame, type = 3, code = 3): Frame {
  return {
    eth: { src: MAC_B, dst: MAC_A, type: ETH_TYPE_IPV4 },
    ip: { src, dst, ttl: 64, proto: IPPROTO_ICMP },
    l4: { kind: 'icmp', type, code, quoted: about },
  };
}

export function ipOf(f: Frame): string {
  const l4 = f.l4;
  const ports = l4 && l4.kind !== 'icmp' ? [`:${l4.sport}`, `:${l4.dport}`] : ['', ''];
  return `${f.ip!.src}${ports[0]} > ${f.ip!.dst}${ports[1]}`;
}
