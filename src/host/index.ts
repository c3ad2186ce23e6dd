// The desired host state: types, builders, naming, validation, diff and its model.
export * from './state.js';
export * from './ops.js';
export * from './build.js';
export * from './flow.js';
export * from './names.js';
export * from './diff.js';
export * from './apply.js';
export * from './validate.js';
export * from './canonical.js';
export { interfaceOptions, interfaceType, bridgeSpec, linkSpec } from './ovs.js';
export { routeKey, ruleKey, neighKey, routeSatisfies, sysctlDevice, stableStringify } from './keys.js';
export { isIp, isIpv4, isIpv6, isCidr, isNetworkCidr, isMac, ipv4ToInt } from './ip.js';
export * from './samples.js';
