// What every emulated host shares with the world it lives in: the event queue that moves
// frames between devices (one event per hand-over, first in first out, so a flood or a
// reply is processed in the order a real network would see it), the virtual clock, and the
// tracer that records what happened.

import type { Tracer } from '../../trace/record.js';

export interface Engine {
  tracer: Tracer;
  /** Virtual time in seconds (conntrack, learn() timeouts, neighbour and FDB ageing). */
  now: number;
  schedule(fn: () => void): void;
  /** Called when a neighbour entry starts waiting for an ARP reply; checked when the queue drains. */
  watchUnresolved(check: () => void): void;
  /** Processes what was scheduled until the network is quiet (a frame a host sends on its own). */
  run(): void;
}
