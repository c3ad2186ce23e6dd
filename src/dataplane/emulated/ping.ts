// `ping` over the emulated dataplane, reported in ping's own words.

import type { Endpoint, World } from './world.js';
import type { TraceRecord } from '../../trace/record.js';

/** Whether the echo reply of this record came back to the sender. */
export function echoReplied(rec: TraceRecord, from: Endpoint): boolean {
  return rec.delivered.some((d) => d.host === from.host && (d.ns ?? '') === (from.ns ?? '') && d.frame.l4?.kind === 'icmp' && d.frame.l4.type === 0);
}

export interface PingResult {
  sent: number;
  received: number;
  summary: string;
  /** The record of the first echo (what a trace shows). */
  first: TraceRecord;
}

/** `ping -c count dst` from an endpoint; the summary line is ping's. */
export function ping(world: World, from: Endpoint, dst: string, count = 4): PingResult {
  let received = 0;
  let first: TraceRecord | undefined;
  for (let seq = 1; seq <= count; seq++) {
    // Only the first echo's record is kept: the others need their outcome only.
    const rec = seq === 1 ? world.ping(from, dst, { seq }) : world.untraced(() => world.ping(from, dst, { seq }));
    first ??= rec;
    if (echoReplied(rec, from)) received++;
    world.advance(1);
  }
  const loss = Math.round((100 * (count - received)) / count);
  return { sent: count, received, first: first!, summary: `${count} packets transmitted, ${received} received, ${loss}% packet loss` };
}
