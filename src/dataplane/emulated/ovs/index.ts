// Public API of the Open vSwitch bridge model.

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
export { Match } from './match.js';
export { OFPP } from './match.js';
export { Rule } from './rule.js';
export { MacLearningTable, MAC_AGING_MS, type MacTableEntry } from './normal.js';
export type { Action } from './actions.js';
