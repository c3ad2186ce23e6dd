// Names and shapes shared by the netfilter model: hooks, tables, per-hook context and
// result, and the step record the trace renders.

import type { Frame } from '../packet.js';
import type { CtRef } from './conntrack.js';

export type NfHook = 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING';
export type NfTable = 'raw' | 'mangle' | 'nat' | 'filter';

export const HOOKS: readonly NfHook[] = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];
export const TABLES: readonly NfTable[] = ['raw', 'mangle', 'nat', 'filter'];

/** Built-in chains per table, in the order iptables-save prints them. */
export const BUILTIN_CHAINS: Record<NfTable, readonly NfHook[]> = {
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};

export type Verdict = 'accept' | 'drop' | 'reject';

/**
 * What the caller (the Linux host model) knows about a packet at a hook.
 *
 * A packet that crosses several hooks in one namespace (PREROUTING -> FORWARD ->
 * POSTROUTING, or PREROUTING -> INPUT, or OUTPUT -> POSTROUTING) should carry `ct` and
 * `mark` from each result into the next call, as the kernel keeps them on the skb. Drop
 * both when the packet leaves the namespace or crosses a veth (skb_scrub_packet): the
 * next namespace looks the connection up afresh. Without `ct`, a hook looks the
 * connection up itself from the frame.
 *
 * A bridged IPv4 frame (bridge-nf-call-iptables=1) crosses PREROUTING (in = bridge,
 * physIn = port, bridged), FORWARD (in = out = bridge, physIn, physOut, bridged) and
 * POSTROUTING (out = bridge, physOut, bridged), as br_netfilter does.
 */
export interface NfContext {
  in?: string;
  out?: string;
  physIn?: string;
  physOut?: string;
  /** The packet is being bridged (br_netfilter); set on every hook of a bridged frame. */
  bridged?: boolean;
  /** Whether an address is one of this namespace's own (for `-m addrtype`). */
  ownAddresses?(ip: string): boolean;
  /** Primary IPv4 address of a device (REDIRECT uses the input device's, MASQUERADE the output's). */
  primaryAddress?(dev: string): string | undefined;
  /** skb mark on entry (default 0). */
  mark?: number;
  /** Conntrack attachment from an earlier hook of the same packet in this namespace. */
  ct?: CtRef;
  /** Record steps (default true); false for bulk traffic where nobody reads the trace. */
  trace?: boolean;
}

export interface RejectInfo {
  /** The `--reject-with` value, e.g. 'icmp-port-unreachable' or 'tcp-reset'. */
  with: string;
  /** ICMP type/code to send back (absent for tcp-reset). */
  icmp?: { type: number; code: number };
  tcpReset?: boolean;
}

export interface NfStep {
  hook: NfHook;
  /** 'conntrack' for lookups and for NAT applied from an existing connection. */
  table: NfTable | 'conntrack';
  chain?: string;
  /** The matched rule as written (`-A chain ...`), or `:CHAIN POLICY` for a policy verdict. */
  rule: string;
  /** Target taken: ACCEPT, DROP, a chain name, DNAT..., or a conntrack state. */
  target: string;
  /** The frame after this step (the same object when the step changed nothing). */
  frame: Frame;
  mark: number;
}

export interface NfResult {
  verdict: Verdict;
  frame: Frame;
  steps: NfStep[];
  mark: number;
  /** Pass to the next hook of this packet (see NfContext). */
  ct?: CtRef;
  reject?: RejectInfo;
}
