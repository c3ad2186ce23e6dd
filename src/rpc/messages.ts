// The messages between the server and its agents: topics, method names and payload types,
// after Neutron's RPC APIs (plugin_rpc, dvr_rpc, l3_rpc, dhcp_rpc, securitygroups_rpc,
// l2pop rpc). The transports carry them as JSON; both sides import these types, so a
// message that changes shape does not compile on either side until both agree.

import type { MemberChange, MemberIps } from './members.js';

/** Topics the server serves (agents call these). */
export const SERVER_TOPICS = {
  plugin: 'q-plugin',
  reports: 'q-reports-plugin',
  l3: 'q-l3-plugin',
} as const;

/** Topics agents serve; the server casts to one host's agent, or fans out to all. */
export const AGENT_TOPICS = {
  ovs: 'q-agent-notifier',
  l3: 'l3_agent',
  dhcp: 'dhcp_agent',
} as const;

export const hostTopic = (base: string, host: string) => `${base}.${host}`;

// --- shared shapes ---

export interface FixedIp {
  subnet_id: string;
  ip_address: string;
}

export interface AgentStateMsg {
  agent_type: string;
  binary: string;
  topic: string;
  host: string;
  availability_zone?: string;
  configurations: Record<string, unknown>;
  start_flag?: boolean;
  resources_synced?: boolean;
}

export interface Segment {
  network_type: 'flat' | 'vlan' | 'gre' | 'vxlan';
  physical_network: string | null;
  segmentation_id: number | null;
}

/** get_devices_details_list: what the OVS agent needs to wire one port. */
export interface DeviceDetails extends Segment {
  device: string;
  port_id: string;
  mac_address: string;
  admin_state_up: boolean;
  network_id: string;
  fixed_ips: FixedIp[];
  device_owner: string;
  device_id: string;
  port_security_enabled: boolean;
  security_groups: string[];
  allowed_address_pairs: Array<{ ip_address: string; mac_address: string }>;
  mtu: number;
  status: string;
}

export interface SubnetInfo {
  id: string;
  cidr: string;
  gateway_ip: string | null;
  ip_version: number;
  network_id: string;
  enable_dhcp: boolean;
  dns_nameservers: string[];
  host_routes: Array<{ destination: string; nexthop: string }>;
  allocation_pools: Array<{ start: string; end: string }>;
}

/** A port as the L3 and DHCP agents see it: with its subnets' facts and its network's MTU. */
export interface PortInfo {
  id: string;
  network_id: string;
  mac_address: string;
  fixed_ips: Array<FixedIp & { prefixlen: number }>;
  subnets: SubnetInfo[];
  device_owner: string;
  device_id: string;
  binding_host_id: string;
  admin_state_up: boolean;
  status: string;
  mtu: number;
}

/**
 * A port as `get_ports_by_subnet` answers (Neutron's port dict: no subnet details or MTU). A
 * router's neighbour table needs only addresses and MACs, and every host of the router asks
 * for every subnet: with the subnets spelled out per port the answers were ten times larger.
 */
export type SubnetPortInfo = Omit<PortInfo, 'subnets' | 'mtu'>;

export interface FloatingIpInfo {
  id: string;
  floating_ip_address: string;
  floating_network_id: string;
  fixed_ip_address: string;
  port_id: string;
  router_id: string;
  status: string;
  /** The host of the fixed port: where a distributed router NATs it. */
  host: string;
}

/** sync_routers: one router as the L3 agent on a host needs it. */
export interface RouterInfo {
  id: string;
  name: string;
  project_id: string;
  admin_state_up: boolean;
  distributed: boolean;
  ha: boolean;
  enable_snat: boolean;
  routes: Array<{ destination: string; nexthop: string }>;
  gw_port: PortInfo | null;
  /** The host of the router's SNAT (dvr_snat agent), or of the centralized router. */
  gw_port_host: string | null;
  _interfaces: PortInfo[];
  /** Central SNAT ports (one per interface subnet): what the snat namespace plugs as sg-. */
  _snat_router_interfaces: PortInfo[];
  /** Floating IPs this host must serve (for DVR: those whose port is bound here). */
  _floatingips: FloatingIpInfo[];
  /** This host's floating-IP agent gateway port (fg) on the router's external network. */
  fip_agent_gw_port: PortInfo | null;
}

export interface ArpEntry {
  ip_address: string;
  mac_address: string;
  subnet_id: string;
}

/** DHCP agent's view of a network. */
export interface NetworkInfo {
  id: string;
  project_id: string;
  name: string;
  admin_state_up: boolean;
  mtu: number;
  segment: Segment | null;
  subnets: SubnetInfo[];
  ports: PortInfo[];
}

export interface SecurityGroupRuleInfo {
  id: string;
  security_group_id: string;
  direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6';
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
}

export interface SecurityGroupInfo {
  devices: Record<
    string,
    {
      id: string;
      mac_address: string;
      fixed_ips: string[];
      allowed_address_pairs: Array<{ ip_address: string; mac_address: string }>;
      security_groups: string[];
      port_security_enabled: boolean;
      device_owner: string;
      network_id: string;
    }
  >;
  security_groups: Record<string, SecurityGroupRuleInfo[]>;
  sg_member_ips: Record<string, MemberIps>;
}

/**
 * l2population forwarding entries: per network, per remote tunnel endpoint, the
 * [mac, ip] pairs behind it; FLOODING_ENTRY marks the endpoint as a flood target.
 */
export type FdbEntries = Record<
  string,
  { network_type: string; segment_id: number; ports: Record<string, Array<[string, string]>> }
>;
export const FLOODING_ENTRY: [string, string] = ['00:00:00:00:00:00', '0.0.0.0'];

// --- what agents call on the server, method -> [args, result] ---

export interface ServerMethods {
  report_state: [{ agent_state: AgentStateMsg }, { status: 'alive' }];
  // OVS agent (plugin_rpc, dvr_rpc, l2pop)
  get_devices_details_list: [{ devices: string[]; host: string }, DeviceDetails[]];
  get_devices_on_host: [{ host: string }, string[]];
  update_device_up: [{ device: string; host: string }, { ok: boolean }];
  update_device_down: [{ device: string; host: string }, { ok: boolean }];
  /** Neutron's batched form (RPC 1.5): one call per agent pass, so the server notifies once per burst. */
  update_device_list: [
    { devices_up: string[]; devices_down: string[]; host: string },
    { devices_up: string[]; devices_down: string[]; failed_devices_up: string[]; failed_devices_down: string[] },
  ];
  get_dvr_mac_address_by_host: [{ host: string }, { host: string; mac_address: string }];
  get_dvr_mac_address_list: [Record<string, never>, Array<{ host: string; mac_address: string }>];
  get_ports_on_host_by_subnet: [{ host: string; subnet: string }, PortInfo[]];
  get_subnet_for_dvr: [{ subnet: string; fixed_ips?: FixedIp[] }, (SubnetInfo & { gateway_mac: string | null }) | null];
  get_fdb_entries: [{ host: string }, FdbEntries];
  security_group_info_for_devices: [{ devices: string[] }, SecurityGroupInfo];
  // L3 agent
  sync_routers: [{ host: string; router_ids?: string[] }, RouterInfo[]];
  get_agent_gateway_port: [{ network_id: string; host: string }, PortInfo | null];
  get_ports_by_subnet: [{ subnet_id: string }, SubnetPortInfo[]];
  update_floatingip_statuses: [{ router_id: string; fip_statuses: Record<string, 'ACTIVE' | 'DOWN' | 'ERROR'> }, { ok: boolean }];
  // DHCP agent
  get_active_networks_info: [{ host: string }, NetworkInfo[]];
  get_network_info: [{ network_id: string }, NetworkInfo | null];
  create_dhcp_port: [{ host: string; network_id: string; device_id: string; fixed_ips?: Array<{ subnet_id: string }> }, PortInfo];
  release_dhcp_port: [{ network_id: string; device_id: string }, { ok: boolean }];
  // metadata agent
  get_port_by_ip: [{ ip_address: string; network_id?: string; router_id?: string }, { port_id: string; device_id: string; project_id: string; network_id: string } | null];
}

export type ServerMethod = keyof ServerMethods;

// --- what the server casts to agents, method -> args ---

export interface AgentMethods {
  // OVS agent
  port_update: { port_id: string; network_id: string };
  port_delete: { port_id: string };
  network_update: { network_id: string };
  add_fdb_entries: { fdb_entries: FdbEntries };
  remove_fdb_entries: { fdb_entries: FdbEntries };
  dvr_mac_address_update: { dvr_macs: Array<{ host: string; mac_address: string }> };
  security_groups_rule_updated: { security_groups: string[] };
  /**
   * dvrnet: each group's members as the server sees them when it sends the cast, whole
   * (`member_ips`: the first time this server announces the group) or as the change since its
   * last announcement (`member_changes`, members.ts), so the agent remakes its ipsets without
   * calling back (Neutron's agents call security_group_info_for_devices; one given neither
   * here still does).
   */
  security_groups_member_updated: { security_groups: string[]; member_ips?: Record<string, MemberIps>; member_changes?: Record<string, MemberChange> };
  // L3 agent
  routers_updated: { routers: string[] };
  router_removed_from_agent: { router_id: string };
  add_arp_entry: { router_id: string; arp_table: ArpEntry };
  del_arp_entry: { router_id: string; arp_table: ArpEntry };
  /**
   * dvrnet: the ARP entries of a burst in one message, in order (a cloud coming up fans one
   * out per port to every L3 agent: ten million messages at a thousand hosts). Each entry is
   * what add_arp_entry / del_arp_entry carries; Neutron's singular casts work too.
   */
  add_arp_entries: { entries: Array<{ router_id: string; arp_table: ArpEntry }> };
  del_arp_entries: { entries: Array<{ router_id: string; arp_table: ArpEntry }> };
  // DHCP agent
  network_update_end: { network_id: string };
  network_delete_end: { network_id: string };
  /**
   * `port`: the port as get_network_info lists it (Neutron's payload carries the port too), so
   * the agent updates the network it holds instead of fetching thousands of ports again.
   * Without it (an older server) the agent fetches the network.
   */
  port_update_end: { port_id: string; network_id: string; port?: PortInfo };
  port_delete_end: { port_id: string; network_id: string };
}

export type AgentMethod = keyof AgentMethods;

/** Every method the server may cast to an agent (the compiler checks it against AgentMethods). */
export const AGENT_METHOD_NAMES = Object.keys({
  port_update: 0, port_delete: 0, network_update: 0, add_fdb_entries: 0, remove_fdb_entries: 0, dvr_mac_address_update: 0,
  security_groups_rule_updated: 0, security_groups_member_updated: 0, routers_updated: 0, router_removed_from_agent: 0,
  add_arp_entry: 0, del_arp_entry: 0, add_arp_entries: 0, del_arp_entries: 0, network_update_end: 0, network_delete_end: 0, port_update_end: 0, port_delete_end: 0,
} satisfies Record<AgentMethod, 0>) as AgentMethod[];
