// Row types of dvrnet's tables, as Kysely sees them. Names follow Neutron's models
// (networks, ports, ipallocations, securitygroups, ml2 segment allocations...) so that an
// operator who knows Neutron's schema finds their way. Booleans are stored as 0/1 integers
// and JSON values as text, so that SQLite and PostgreSQL rows look the same to the code.

/** Columns every Neutron "standard attribute" resource carries. */
export interface StandardAttrs {
  id: string;
  project_id: string;
  name: string;
  description: string;
  revision_number: number;
  created_at: string;
  updated_at: string;
}

export interface NetworkRow extends StandardAttrs {
  admin_state_up: number;
  status: string;
  shared: number;
  router_external: number;
  mtu: number;
  port_security_enabled: number;
  availability_zone_hints: string; // JSON list
}

export interface NetworkSegmentRow {
  id: string;
  network_id: string;
  network_type: string;
  /** '' for tunnel types, so the allocation's primary key works the same on both databases. */
  physical_network: string;
  segmentation_id: number | null;
  segment_index: number;
}

/** One row per segment in use: (type, physnet, id) is handed out at most once. Flat uses id 0. */
export interface SegmentAllocationRow {
  network_type: string;
  physical_network: string;
  segmentation_id: number;
  network_id: string;
}

export interface SubnetRow extends StandardAttrs {
  network_id: string;
  ip_version: number;
  cidr: string;
  gateway_ip: string | null;
  enable_dhcp: number;
  ipv6_ra_mode: string | null;
  ipv6_address_mode: string | null;
  dns_nameservers: string; // JSON list, ordered
  host_routes: string; // JSON list of {destination, nexthop}
}

export interface AllocationPoolRow {
  subnet_id: string;
  first_ip: string;
  last_ip: string;
  first_num: number;
  last_num: number;
}

export interface PortRow extends StandardAttrs {
  network_id: string;
  mac_address: string;
  admin_state_up: number;
  status: string;
  device_id: string;
  device_owner: string;
  port_security_enabled: number;
  binding_host_id: string;
  binding_vif_type: string;
  binding_vif_details: string; // JSON object
  binding_profile: string; // JSON object
  binding_vnic_type: string;
}

/** A fixed IP. ip_num is the IPv4 address as an integer: IPAM walks it to find free addresses. */
export interface IpAllocationRow {
  port_id: string;
  network_id: string;
  subnet_id: string;
  ip_address: string;
  ip_num: number;
}

export interface AllowedAddressPairRow {
  port_id: string;
  ip_address: string;
  mac_address: string;
}

export interface SecurityGroupRow extends StandardAttrs {
  stateful: number;
}

export interface SecurityGroupRuleRow {
  id: string;
  project_id: string;
  security_group_id: string;
  remote_group_id: string | null;
  remote_address_group_id: string | null;
  direction: string;
  ethertype: string;
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  description: string;
  revision_number: number;
  created_at: string;
  updated_at: string;
}

export interface SecurityGroupPortBindingRow {
  port_id: string;
  security_group_id: string;
}

export interface DefaultSecurityGroupRow {
  project_id: string;
  security_group_id: string;
}

export interface RouterRow extends StandardAttrs {
  admin_state_up: number;
  status: string;
  distributed: number;
  ha: number;
  gw_port_id: string | null;
  enable_snat: number;
}

export interface RouterRouteRow {
  router_id: string;
  destination: string;
  nexthop: string;
}

export interface FloatingIpRow {
  id: string;
  project_id: string;
  description: string;
  revision_number: number;
  created_at: string;
  updated_at: string;
  floating_ip_address: string;
  floating_network_id: string;
  floating_port_id: string;
  fixed_port_id: string | null;
  fixed_ip_address: string | null;
  router_id: string | null;
  status: string;
}

export interface AgentRow {
  id: string;
  agent_type: string;
  binary: string;
  topic: string;
  host: string;
  availability_zone: string | null;
  admin_state_up: number;
  created_at: string;
  started_at: string;
  heartbeat_timestamp: string;
  description: string;
  configurations: string; // JSON object
  resources_synced: number | null;
}

export interface DvrHostMacRow {
  host: string;
  mac_address: string;
}

export interface RouterL3AgentBindingRow {
  router_id: string;
  l3_agent_id: string;
}

export interface NetworkDhcpAgentBindingRow {
  network_id: string;
  dhcp_agent_id: string;
}

export interface Database {
  networks: NetworkRow;
  networksegments: NetworkSegmentRow;
  ml2_segment_allocations: SegmentAllocationRow;
  subnets: SubnetRow;
  ipallocationpools: AllocationPoolRow;
  ports: PortRow;
  ipallocations: IpAllocationRow;
  allowedaddresspairs: AllowedAddressPairRow;
  securitygroups: SecurityGroupRow;
  securitygrouprules: SecurityGroupRuleRow;
  securitygroupportbindings: SecurityGroupPortBindingRow;
  default_security_group: DefaultSecurityGroupRow;
  routers: RouterRow;
  routerroutes: RouterRouteRow;
  floatingips: FloatingIpRow;
  agents: AgentRow;
  dvr_host_macs: DvrHostMacRow;
  routerl3agentbindings: RouterL3AgentBindingRow;
  networkdhcpagentbindings: NetworkDhcpAgentBindingRow;
}
