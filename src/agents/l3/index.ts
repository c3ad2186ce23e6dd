export { L3Agent, L3_AGENT_BINARY, L3_AGENT_TYPE, type L3AgentOptions } from './agent.js';
export { buildL3, vethMac, networkOf, type L3BuildInput, type L3BuildOutput, type FipStatus } from './build.js';
export { IptablesManager, WrappedTable } from './iptables.js';
export { ItemAllocator } from './allocator.js';
