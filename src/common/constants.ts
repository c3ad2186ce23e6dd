// Neutron's device_owner values and L3 agent modes (neutron_lib/constants.py).

export const DEVICE_OWNER = {
  routerInterface: 'network:router_interface',
  routerInterfaceDistributed: 'network:router_interface_distributed',
  routerGateway: 'network:router_gateway',
  routerSnat: 'network:router_centralized_snat',
  floatingIp: 'network:floatingip',
  agentGateway: 'network:floatingip_agent_gateway',
  dhcp: 'network:dhcp',
} as const;

/** Ports that belong to a router and are managed through the router API only. */
export const ROUTER_PORT_OWNERS: readonly string[] = [
  DEVICE_OWNER.routerInterface,
  DEVICE_OWNER.routerInterfaceDistributed,
  DEVICE_OWNER.routerGateway,
  DEVICE_OWNER.routerSnat,
];

export const ROUTER_INTERFACE_OWNERS: readonly string[] = [DEVICE_OWNER.routerInterface, DEVICE_OWNER.routerInterfaceDistributed];

export type L3AgentMode = 'legacy' | 'dvr' | 'dvr_snat' | 'dvr_no_external';

/** Instances' ports: `compute:` and the availability zone. */
export const COMPUTE_OWNER_PREFIX = 'compute:';

/** Ports a DVR router serves on a host: instances and DHCP ports (Neutron's is_dvr_serviced). */
export const isDvrServiced = (owner: string) => owner.startsWith(COMPUTE_OWNER_PREFIX) || owner === DEVICE_OWNER.dhcp;
