// Public API of the Open vSwitch bridge model.
//
//   const br = new OvsBridge('br-tun');            // has port 'br-tun' = LOCAL (0xfffe)
//   br.addPort('patch-int');                         // ofport 1, then 2, 3... (or {ofport})
//   br.addPort('qvo1234', { tag: 3 });               // access port; no tag = trunk
//   br.addFlows(['table=0,priority=1,in_port=patch-int,actions=resubmit(,2)', ...]);
//   br.delFlows('cookie=0x5/-1');                    // or 'table=21', match fields, '--strict ...'
//   br.replaceFlowsByCookie(0x5n, texts);            // an agent's whole flow set, counters kept
//   br.dumpFlows();                                  // flows with n_packets/n_bytes and text
//   const { outputs, steps } = br.process(frame, 'vxlan-0a000002', { tunId: 100 });
//
// Flow text is `ovs-ofctl add-flow` syntax; anything not modelled is refused with an
// OvsFlowError quoting the flow and naming the token.

export {
  OvsBridge,
  MAX_DEPTH,
  MAX_RESUBMITS,
  type AddPortOptions,
  type DumpedFlow,
  type OvsOutput,
  type OvsPort,
  type OvsStep,
  type ProcessOptions,
  type ProcessResult,
} from './bridge.js';
export { OvsFlowError, OvsPortError } from './errors.js';
export { parseFlow, OFP_DEFAULT_PRIORITY, type ParsedFlow } from './parse.js';
export { Classifier, FlowTable, N_TABLES } from './classifier.js';
export { Match, OFPP } from './match.js';
export { Rule } from './rule.js';
export { MacLearningTable, MAC_AGING_MS, type MacTableEntry } from './normal.js';
export type { Action } from './actions.js';
