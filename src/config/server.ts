// Typed settings of the API server, read from neutron.conf + ml2_conf.ini (+ any other
// --config-file), with Neutron's defaults. The loader lives in ./load.ts.

export type NetworkType = 'flat' | 'vlan' | 'gre' | 'vxlan';

export interface VlanRange {
  physnet: string;
  /** Absent when the physnet is listed without a range: any VLAN id, admin only. */
  min?: number;
  max?: number;
}

export interface IdentityConfig {
  bind_host: string; // default '127.0.0.1'
  bind_port: number; // default 5000
  /** Bootstrap passwords; absent = that user is not created (admin is then unusable). */
  admin_password?: string;
  demo_password?: string;
  token_expiration: number; // seconds, default 3600
}

export interface ServerConfig {
  core_plugin: string; // 'ml2'
  service_plugins: string[]; // ['router']
  allow_overlapping_ips: boolean; // default false (Neutron's default); scenario sets true
  router_distributed: boolean; // default false
  base_mac: string; // default 'fa:16:3e:00:00:00'
  dvr_base_mac: string; // default 'fa:16:3f:00:00:00'
  bind_host: string; // default '127.0.0.1' (Neutron: 0.0.0.0; we default to loopback)
  bind_port: number; // default 9696
  auth_strategy: 'noauth' | 'keystone'; // default 'keystone'
  global_physnet_mtu: number; // default 1500
  api_workers?: number;
  /**
   * default 'sqlite:///state/dvrnet.sqlite'. The loader normalises it: a relative SQLite path
   * becomes absolute (against the working directory: 'sqlite:////abs/path'), 'sqlite://' and
   * 'sqlite:///:memory:' become 'sqlite://' (in memory), 'postgresql+psycopg2://' becomes
   * 'postgresql://'. `backend` and `sqlite_path` (absolute, or ':memory:') are filled too.
   */
  database: { connection: string; backend?: 'sqlite' | 'postgresql'; sqlite_path?: string };
  ml2: {
    type_drivers: NetworkType[];
    tenant_network_types: NetworkType[];
    mechanism_drivers: string[];
    extension_drivers: string[];
    path_mtu: number; // default 0 -> use global_physnet_mtu
  };
  ml2_type_flat: { flat_networks: string[] }; // ['*'] means any
  ml2_type_vlan: { network_vlan_ranges: VlanRange[] };
  ml2_type_gre: { tunnel_id_ranges: Array<[number, number]> };
  ml2_type_vxlan: { vni_ranges: Array<[number, number]>; vxlan_group?: string };
  securitygroup: { enable_ipset: boolean; enable_security_group: boolean; firewall_driver?: string };

  // Further neutron.conf [DEFAULT] options the loader fills (optional so that hand-built
  // configs in tests stay short; the loader always sets them, with Neutron's defaults).
  host?: string; // default: the machine's host name
  state_path?: string; // default 'state' (Neutron: /var/lib/neutron), made absolute
  debug?: boolean; // default false
  enable_dvr?: boolean; // default true
  l3_ha?: boolean; // default false
  agent_down_time?: number; // default 75 (seconds)
  dhcp_agents_per_network?: number; // default 1
  allow_bulk?: boolean; // default true
  /** -1 = no limit (Neutron's pagination_max_limit, default "-1"). */
  pagination_max_limit?: number;
  max_dns_nameservers?: number; // default 5
  max_subnet_host_routes?: number; // default 20
  max_allowed_address_pair?: number; // default 10
  /** The files read, in order. */
  config_files?: string[];
  /** dvrnet's built-in identity service (Keystone v3 subset), `[identity]`. */
  identity?: IdentityConfig;
  /** Raw sections for later issues (agents) so nothing read is lost. */
  raw: Record<string, Record<string, string>>;
}
