// Neighbour (ARP) entries, per device, as `ip neigh` shows them. An INCOMPLETE entry holds
// the packets waiting for the ARP reply (Linux's unres_qlen queue, 3 packets by default
// for ARP in older kernels; we keep the same small bound so that a black hole shows up as
// drops rather than unbounded memory).

import type { Frame, Mac } from '../packet.js';
import { intToIp } from '../addr.js';

export type NeighState = 'PERMANENT' | 'REACHABLE' | 'STALE' | 'INCOMPLETE' | 'FAILED';

export const UNRES_QLEN = 3;

export interface PendingPacket {
  frame: Frame;
  pkt: number;
}

export interface Neighbour {
  ip: number;
  mac?: Mac;
  state: NeighState;
  /** Packets waiting for resolution (INCOMPLETE only; absent while none ever waited: a router holds thousands of permanent entries). */
  pending?: PendingPacket[];
  /** Virtual time (seconds) of the last confirmation, for REACHABLE -> STALE. */
  updated: number;
  /** Added by `ip neigh replace` (part of the host state), not learnt from ARP. */
  managed?: boolean;
}

export function neighText(n: Neighbour, dev: string): string {
  return `${intToIp(n.ip)} dev ${dev}${n.mac ? ` lladdr ${n.mac}` : ''} ${n.state}`;
}
