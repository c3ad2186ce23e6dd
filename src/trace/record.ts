// The trace record: what the emulated dataplane did to packets, hop by hop, across hosts.
// The models append steps as they act (a flow that matched, a route that was chosen, a
// neighbour entry that was used, a netfilter rule that decided); nothing here invents text.
// Frames are immutable values, so a step keeps references to the frame before and after
// the hop instead of copies.

import type { Frame } from '../dataplane/emulated/packet.js';

export type StepKind =
  | 'rx' // a device received the frame
  | 'tx' // a device sent the frame
  | 'wire' // a physical segment carried the frame between hosts
  | 'bridge' // a Linux bridge forwarded, flooded or delivered it locally
  | 'ovs' // an Open vSwitch bridge's flow tables processed it
  | 'netfilter' // an iptables hook (with the rules that decided)
  | 'route' // a routing decision (ip rule + route)
  | 'neigh' // a neighbour (ARP) table lookup or update
  | 'arp' // ARP request answered (or proxied)
  | 'icmp' // an ICMP message generated (echo reply, errors)
  | 'encap' // a tunnel header added
  | 'decap' // a tunnel header removed
  | 'deliver' // handed to a local socket/application
  | 'app' // an application acted (a reply sent...)
  | 'drop';

export interface TraceStep {
  /** Global order of the step, from 1. */
  seq: number;
  /** The packet this step belongs to (see `TraceRecord.packets`). */
  pkt: number;
  host: string;
  /** Network namespace; absent for the host's root namespace. */
  ns?: string;
  dev?: string;
  /** OVS or Linux bridge name. */
  bridge?: string;
  kind: StepKind;
  /** OpenFlow table, iptables table/chain, routing table. */
  table?: string | number;
  /** The flow, iptables rule, route or neighbour entry that decided, as text. */
  rule?: string;
  /** What the model did. */
  action: string;
  before: Frame;
  /** The frame after the hop, when the hop changed it. */
  after?: Frame;
  /** The sub-model's own steps (OVS table hits, netfilter rule walk), kept as returned. */
  detail?: unknown;
}

export interface TracePacket {
  id: number;
  /** The packet that caused this one (an ARP request for a queued packet, a reply...). */
  parent?: number;
  origin: string;
}

export interface Delivery {
  pkt: number;
  host: string;
  ns?: string;
  dev: string;
  /** Who received it: 'udp:67', 'tcp:9697', 'icmp', 'stack' (ARP), 'tunnel', 'segment-end'... */
  to: string;
  frame: Frame;
}

export interface Drop {
  pkt: number;
  host: string;
  ns?: string;
  dev?: string;
  bridge?: string;
  reason: string;
  frame: Frame;
}

export interface TraceRecord {
  steps: TraceStep[];
  packets: TracePacket[];
  delivered: Delivery[];
  dropped: Drop[];
}

export function emptyRecord(): TraceRecord {
  return { steps: [], packets: [], delivered: [], dropped: [] };
}

/**
 * Collects steps while the world moves packets. With `steps` off, only packets, deliveries
 * and drops are kept (cheap: what tests and the benchmark need to see the outcome). With
 * `active` off nothing is kept: the World opens the tracer only for the traffic it returns a
 * record of, and what moves outside (an agent's gratuitous ARPs, a VM's timers) has no reader.
 */
export class Tracer {
  record: TraceRecord = emptyRecord();
  private nextPkt = 1;

  constructor(
    public steps = true,
    public active = true,
  ) {}

  reset(): TraceRecord {
    const r = this.record;
    this.record = emptyRecord();
    return r;
  }

  newPacket(origin: string, parent?: number): number {
    const id = this.nextPkt++;
    if (this.steps && this.active) this.record.packets.push(parent === undefined ? { id, origin } : { id, parent, origin });
    return id;
  }

  step(s: Omit<TraceStep, 'seq'>): void {
    if (!this.active) return;
    (s as TraceStep).seq = this.record.steps.length + 1;
    this.record.steps.push(s as TraceStep);
  }

  deliver(d: Delivery): void {
    if (this.active) this.record.delivered.push(d);
  }

  drop(d: Drop): void {
    if (this.active) this.record.dropped.push(d);
  }
}
