// Netfilter model for one network namespace of an emulated Linux host: iptables tables
// restored from `iptables-restore` text, conntrack with zones and NAT, and ipsets.
//
//   const nf = new Netfilter();
//   nf.ipset.restore('create NIPv4sg hash:net family inet\nadd NIPv4sg 10.0.0.5\n');
//   nf.restore(rulesText);                       // or nf.restore(text, { noflush: true })
//   const r = nf.hook('FORWARD', frame, { in: 'qbr1', out: 'qbr1', physIn: 'tap1', physOut: 'qvb1', bridged: true });
//   r.verdict; r.frame; r.steps; r.mark; r.ct;   // pass r.ct / r.mark to the next hook
//
// See types.ts (NfContext) for how a packet's conntrack attachment travels between hooks.

export { Netfilter, type NetfilterOptions } from './netfilter.js';
export { Ipsets, Ipset, IpsetError, type IpsetType, type IpsetFamily } from './ipset.js';
export {
  Conntrack,
  CT_TIMEOUTS,
  formatTuple,
  invert,
  tupleOf,
  type ConntrackOptions,
  type CtDeleteFilter,
  type CtDir,
  type CtEntry,
  type CtRef,
  type CtState,
  type CtTuple,
} from './conntrack.js';
export { IptablesRestoreError, type RestoreOptions } from './restore.js';
export {
  BUILTIN_CHAINS,
  HOOKS,
  TABLES,
  type NfContext,
  type NfHook,
  type NfResult,
  type NfStep,
  type NfTable,
  type RejectInfo,
  type Verdict,
} from './types.js';
