// Typed settings of the agents, read like Neutron's agents read them: neutron.conf plus the
// agent's own file (and any per-node override files), later files overriding earlier ones.
// Option names and defaults are Neutron 21's; Kilo-era options the scenario still sets
// (use_namespaces, external_network_bridge, prevent_arp_spoofing, nova_metadata_ip) are
// accepted and checked against what dvrnet can do.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError } from './errors.js';
import { readIni } from './ini.js';
import { DHCP_AGENT_KNOWN, L3_AGENT_KNOWN, METADATA_AGENT_KNOWN, OVS_AGENT_KNOWN, type KnownSet } from './known.js';
import { Options, type Warn } from './options.js';
import { checkHostAddress, checkIpAddress, parseMappings } from './values.js';

export interface AgentLoadOptions {
  warn?: Warn;
  /** Base for relative paths (state_path, dnsmasq_config_file); default process.cwd(). */
  cwd?: string;
}

/** What every agent reads from neutron.conf [DEFAULT] and [agent]. */
export interface AgentCommon {
  /** The name the agent reports itself under (agent-list's host); default the host name. */
  host: string;
  /** Absolute; default `<cwd>/state` (Neutron: /var/lib/neutron). */
  state_path: string;
  debug: boolean;
  agent: { report_interval: number; availability_zone: string };
  /** Seconds an RPC call waits for its reply at first (oslo.messaging's, default 60). */
  rpc_response_timeout: number;
  /** Seconds a method's timeout may double up to after timeouts (Neutron's backing-off client, default 600). */
  rpc_response_max_timeout: number;
  config_files: string[];
  raw: Record<string, Record<string, string>>;
}

export type TunnelType = 'gre' | 'vxlan';
export type FirewallDriver = 'iptables_hybrid' | 'openvswitch' | 'iptables' | 'noop';

export interface OvsAgentConfig extends AgentCommon {
  ovs: {
    integration_bridge: string; // br-int
    tunnel_bridge: string; // br-tun
    int_peer_patch_port: string; // patch-tun
    tun_peer_patch_port: string; // patch-int
    /** This node's tunnel endpoint address; required when tunnel_types is not empty. */
    local_ip?: string;
    /** physnet -> bridge, e.g. [['vlan','br-vlan'], ['external','br-ex']]. */
    bridge_mappings: Array<{ physnet: string; bridge: string }>;
    datapath_type: 'system' | 'netdev';
    of_listen_address: string;
    of_listen_port: number;
    ovsdb_connection: string;
  };
  agent: AgentCommon['agent'] & {
    tunnel_types: TunnelType[];
    l2_population: boolean;
    arp_responder: boolean;
    enable_distributed_routing: boolean;
    prevent_arp_spoofing: boolean;
    vxlan_udp_port: number;
    dont_fragment: boolean;
    drop_flows_on_start: boolean;
    tunnel_csum: boolean;
    minimize_polling: boolean;
    extensions: string[];
  };
  securitygroup: {
    /** Neutron alias of the configured driver class; undefined = not set (no filtering). */
    firewall_driver?: FirewallDriver;
    enable_security_group: boolean;
    enable_ipset: boolean;
  };
}

export type L3AgentMode = 'legacy' | 'dvr' | 'dvr_snat' | 'dvr_no_external';

export interface L3AgentConfig extends AgentCommon {
  agent_mode: L3AgentMode;
  interface_driver: 'openvswitch';
  ovs_use_veth: boolean;
  handle_internal_only_routers: boolean;
  enable_metadata_proxy: boolean;
  metadata_port: number; // 9697
  periodic_interval: number;
  ipv6_gateway: string;
  /** Kilo option: namespaces are always used (False is refused). */
  use_namespaces: true;
  /** Kilo option: must be empty, external networks go through bridge_mappings (br-ex). */
  external_network_bridge: '';
  agent: AgentCommon['agent'] & { extensions: string[] };
}

export interface DhcpAgentConfig extends AgentCommon {
  interface_driver: 'openvswitch';
  dhcp_driver: 'dnsmasq';
  ovs_use_veth: boolean;
  enable_isolated_metadata: boolean;
  force_metadata: boolean;
  enable_metadata_network: boolean;
  /** Absolute path, or '' when unset. */
  dnsmasq_config_file: string;
  /** Options read from dnsmasq_config_file, e.g. {key:'dhcp-option-force', value:'26,1450'}. */
  dnsmasq_options: Array<{ key: string; value?: string }>;
  dnsmasq_dns_servers: string[];
  dnsmasq_lease_max: number;
  dnsmasq_local_resolv: boolean;
  dhcp_broadcast_reply: boolean;
  dhcp_confs: string; // $state_path/dhcp
  resync_interval: number;
  num_sync_threads: number;
}

export interface MetadataAgentConfig extends AgentCommon {
  nova_metadata_host: string;
  nova_metadata_port: number;
  nova_metadata_protocol: 'http' | 'https';
  nova_metadata_insecure: boolean;
  metadata_proxy_shared_secret: string;
  metadata_proxy_socket: string; // $state_path/metadata_proxy
  metadata_workers?: number;
  metadata_backlog: number;
}

const D = 'DEFAULT';

function open(files: string[], known: KnownSet, opts: AgentLoadOptions): { o: Options; common: AgentCommon } {
  const cwd = opts.cwd ?? process.cwd();
  const ini = readIni(files);
  const defaultStatePath = resolve(cwd, 'state');
  const o = new Options(ini, known, opts.warn, {
    'DEFAULT.state_path': defaultStatePath,
    'DEFAULT.host': hostname(),
  });
  const host = o.str(D, 'host', hostname());
  if (!host.trim()) o.fail(D, 'host', 'must not be empty');
  const common: AgentCommon = {
    host,
    state_path: resolve(cwd, o.str(D, 'state_path', defaultStatePath)),
    debug: o.bool(D, 'debug', false),
    agent: {
      report_interval: Number(o.str('agent', 'report_interval', '30')),
      availability_zone: o.str('agent', 'availability_zone', 'nova'),
    },
    rpc_response_timeout: o.int(D, 'rpc_response_timeout', 60, { min: 1 }),
    rpc_response_max_timeout: o.int(D, 'rpc_response_max_timeout', 600, { min: 1 }),
    config_files: [...files],
    raw: ini.toRaw(),
  };
  return { o, common };
}

const FIREWALL_DRIVERS: Record<string, FirewallDriver> = {
  iptables_hybrid: 'iptables_hybrid',
  'neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver': 'iptables_hybrid',
  openvswitch: 'openvswitch',
  'neutron.agent.linux.openvswitch_firewall.OVSFirewallDriver': 'openvswitch',
  iptables: 'iptables',
  'neutron.agent.linux.iptables_firewall.IptablesFirewallDriver': 'iptables',
  noop: 'noop',
  'neutron.agent.firewall.NoopFirewallDriver': 'noop',
};

export function loadOvsAgentConfig(files: string[], opts: AgentLoadOptions = {}): OvsAgentConfig {
  const { o, common } = open(files, OVS_AGENT_KNOWN, opts);
  const warn = opts.warn ?? ((m: string) => console.error(`WARNING config: ${m}`));

  const tunnel_types = [...new Set(o.list('agent', 'tunnel_types', []))].map((t) => {
    if (t === 'gre' || t === 'vxlan') return t;
    const why = t === 'geneve' ? 'is not supported by dvrnet' : 'is not a tunnel type';
    return o.fail('agent', 'tunnel_types', `'${t}' ${why} (use gre, vxlan)`);
  });
  const local_ip = o.strOpt('ovs', 'local_ip');
  if (local_ip !== undefined && checkIpAddress(local_ip)) o.fail('ovs', 'local_ip', 'not an IP address');
  if (tunnel_types.length > 0 && local_ip === undefined) {
    o.fail('agent', 'tunnel_types', 'tunneling needs this node\'s tunnel address: set [ovs] local_ip');
  }

  const mappings = parseMappings(o.list('ovs', 'bridge_mappings', []), 'PHYSNET:BRIDGE');
  if (typeof mappings === 'string') o.fail('ovs', 'bridge_mappings', mappings);
  const integration_bridge = o.str('ovs', 'integration_bridge', 'br-int');
  const tunnel_bridge = o.str('ovs', 'tunnel_bridge', 'br-tun');
  for (const [physnet, bridge] of mappings as Array<[string, string]>) {
    if (bridge === integration_bridge || bridge === tunnel_bridge) {
      o.fail('ovs', 'bridge_mappings', `physical network '${physnet}' is mapped to ${bridge}, which the agent uses as its ${bridge === integration_bridge ? 'integration' : 'tunnel'} bridge`);
    }
  }

  const l2_population = o.bool('agent', 'l2_population', false);
  const arp_responder = o.bool('agent', 'arp_responder', false);
  if (arp_responder && !l2_population) {
    const w = o.where('agent', 'arp_responder');
    warn(`${w.file}:${w.line}: [agent] arp_responder only takes effect with l2_population = True (as in Neutron)`);
  }

  const fw = o.strOpt('securitygroup', 'firewall_driver');
  let firewall_driver: FirewallDriver | undefined;
  if (fw !== undefined) {
    firewall_driver = FIREWALL_DRIVERS[fw];
    if (!firewall_driver) {
      o.fail('securitygroup', 'firewall_driver', `unknown firewall driver (known: ${[...new Set(Object.values(FIREWALL_DRIVERS))].join(', ')} or their Neutron class paths)`);
    }
  }

  const datapath = o.str('ovs', 'datapath_type', 'system') as 'system' | 'netdev';
  return {
    ...common,
    ovs: {
      integration_bridge,
      tunnel_bridge,
      int_peer_patch_port: o.str('ovs', 'int_peer_patch_port', 'patch-tun'),
      tun_peer_patch_port: o.str('ovs', 'tun_peer_patch_port', 'patch-int'),
      ...(local_ip !== undefined ? { local_ip } : {}),
      bridge_mappings: (mappings as Array<[string, string]>).map(([physnet, bridge]) => ({ physnet, bridge })),
      datapath_type: datapath,
      of_listen_address: o.str('ovs', 'of_listen_address', '127.0.0.1'),
      of_listen_port: o.int('ovs', 'of_listen_port', 6633, { min: 0, max: 65535 }),
      ovsdb_connection: o.str('ovs', 'ovsdb_connection', 'tcp:127.0.0.1:6640'),
    },
    agent: {
      ...common.agent,
      tunnel_types,
      l2_population,
      arp_responder,
      enable_distributed_routing: o.bool('agent', 'enable_distributed_routing', false),
      prevent_arp_spoofing: o.bool('agent', 'prevent_arp_spoofing', true),
      vxlan_udp_port: o.int('agent', 'vxlan_udp_port', 4789, { min: 0, max: 65535 }),
      dont_fragment: o.bool('agent', 'dont_fragment', true),
      drop_flows_on_start: o.bool('agent', 'drop_flows_on_start', false),
      tunnel_csum: o.bool('agent', 'tunnel_csum', false),
      minimize_polling: o.bool('agent', 'minimize_polling', true),
      extensions: o.list('agent', 'extensions', []),
    },
    securitygroup: {
      ...(firewall_driver ? { firewall_driver } : {}),
      enable_security_group: o.bool('securitygroup', 'enable_security_group', true),
      enable_ipset: o.bool('securitygroup', 'enable_ipset', true),
    },
  };
}

/** The L3 and DHCP agents plug their ports with OVS (Neutron: interface_driver is required). */
function interfaceDriver(o: Options): 'openvswitch' {
  const d = o.strOpt(D, 'interface_driver');
  if (d === undefined) o.fail(D, 'interface_driver', 'not set: an interface driver must be specified (openvswitch)');
  if (d !== 'openvswitch' && d !== 'neutron.agent.linux.interface.OVSInterfaceDriver') {
    o.fail(D, 'interface_driver', "unsupported interface driver (use openvswitch, i.e. neutron.agent.linux.interface.OVSInterfaceDriver)");
  }
  return 'openvswitch';
}

/** Kilo-era switches whose only value dvrnet implements is the scenario's. */
function legacyL3Options(o: Options): void {
  if (!o.bool(D, 'use_namespaces', true)) o.fail(D, 'use_namespaces', 'dvrnet always uses network namespaces');
  if (o.str(D, 'external_network_bridge', '').trim() !== '') {
    o.fail(D, 'external_network_bridge', 'must be empty: external networks are reached through [ovs] bridge_mappings (br-ex)');
  }
}

export function loadL3AgentConfig(files: string[], opts: AgentLoadOptions = {}): L3AgentConfig {
  const { o, common } = open(files, L3_AGENT_KNOWN, opts);
  const interface_driver = interfaceDriver(o);
  legacyL3Options(o);
  return {
    ...common,
    agent_mode: o.str(D, 'agent_mode', 'legacy') as L3AgentMode, // choices checked with the option's type
    interface_driver,
    ovs_use_veth: o.bool(D, 'ovs_use_veth', false),
    handle_internal_only_routers: o.bool(D, 'handle_internal_only_routers', true),
    enable_metadata_proxy: o.bool(D, 'enable_metadata_proxy', true),
    metadata_port: o.int(D, 'metadata_port', 9697, { min: 0, max: 65535 }),
    periodic_interval: o.int(D, 'periodic_interval', 40, { min: 1 }),
    ipv6_gateway: o.str(D, 'ipv6_gateway', ''),
    use_namespaces: true,
    external_network_bridge: '',
    agent: { ...common.agent, extensions: o.list('agent', 'extensions', []) },
  };
}

export function loadDhcpAgentConfig(files: string[], opts: AgentLoadOptions = {}): DhcpAgentConfig {
  const cwd = opts.cwd ?? process.cwd();
  const { o, common } = open(files, DHCP_AGENT_KNOWN, opts);
  const interface_driver = interfaceDriver(o);
  legacyL3Options(o);
  const driver = o.str(D, 'dhcp_driver', 'neutron.agent.linux.dhcp.Dnsmasq');
  if (driver !== 'neutron.agent.linux.dhcp.Dnsmasq' && driver !== 'dnsmasq') {
    o.fail(D, 'dhcp_driver', 'unsupported DHCP driver (use neutron.agent.linux.dhcp.Dnsmasq)');
  }
  const servers = o.list(D, 'dnsmasq_dns_servers', []);
  for (const s of servers) if (checkIpAddress(s)) o.fail(D, 'dnsmasq_dns_servers', `'${s}' is not an IP address`);

  const file = o.str(D, 'dnsmasq_config_file', '').trim();
  const dnsmasq_config_file = file ? resolve(cwd, file) : '';
  const dnsmasq_options = file ? readDnsmasqConfig(o, dnsmasq_config_file) : [];

  const enable_isolated_metadata = o.bool(D, 'enable_isolated_metadata', false);
  const enable_metadata_network = o.bool(D, 'enable_metadata_network', false);
  if (enable_metadata_network && !enable_isolated_metadata) {
    o.fail(D, 'enable_metadata_network', 'needs enable_isolated_metadata = True');
  }
  return {
    ...common,
    interface_driver,
    dhcp_driver: 'dnsmasq',
    ovs_use_veth: o.bool(D, 'ovs_use_veth', false),
    enable_isolated_metadata,
    force_metadata: o.bool(D, 'force_metadata', false),
    enable_metadata_network,
    dnsmasq_config_file,
    dnsmasq_options,
    dnsmasq_dns_servers: servers,
    dnsmasq_lease_max: o.int(D, 'dnsmasq_lease_max', 2 ** 24, { min: 1 }),
    dnsmasq_local_resolv: o.bool(D, 'dnsmasq_local_resolv', false),
    dhcp_broadcast_reply: o.bool(D, 'dhcp_broadcast_reply', false),
    dhcp_confs: resolve(cwd, o.str(D, 'dhcp_confs', '$state_path/dhcp')),
    resync_interval: o.int(D, 'resync_interval', 5, { min: 0 }),
    num_sync_threads: o.int(D, 'num_sync_threads', 4, { min: 1 }),
  };
}

/** dnsmasq's --conf-file syntax: `option` or `option=value` per line, `#` comments. */
function readDnsmasqConfig(o: Options, path: string): Array<{ key: string; value?: string }> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return o.fail(D, 'dnsmasq_config_file', `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  const out: Array<{ key: string; value?: string }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = (eq < 0 ? line : line.slice(0, eq)).trim();
    if (!/^[a-z0-9-]+$/.test(key)) {
      throw new ConfigError({ file: path, line: i + 1 }, `not a dnsmasq option: ${JSON.stringify(raw)}`);
    }
    out.push(eq < 0 ? { key } : { key, value: line.slice(eq + 1).trim() });
  });
  return out;
}

export function loadMetadataAgentConfig(files: string[], opts: AgentLoadOptions = {}): MetadataAgentConfig {
  const { o, common } = open(files, METADATA_AGENT_KNOWN, opts);
  const host = o.str(D, 'nova_metadata_host', '127.0.0.1');
  const bad = checkHostAddress(host);
  if (bad) o.fail(D, 'nova_metadata_host', bad);
  return {
    ...common,
    nova_metadata_host: host,
    nova_metadata_port: o.int(D, 'nova_metadata_port', 8775, { min: 0, max: 65535 }),
    nova_metadata_protocol: o.str(D, 'nova_metadata_protocol', 'http') as 'http' | 'https',
    nova_metadata_insecure: o.bool(D, 'nova_metadata_insecure', false),
    metadata_proxy_shared_secret: o.str(D, 'metadata_proxy_shared_secret', ''),
    metadata_proxy_socket: resolve(opts.cwd ?? process.cwd(), o.str(D, 'metadata_proxy_socket', '$state_path/metadata_proxy')),
    ...(o.intOpt(D, 'metadata_workers', { min: 0 }) !== undefined ? { metadata_workers: o.intOpt(D, 'metadata_workers', { min: 0 }) } : {}),
    metadata_backlog: o.int(D, 'metadata_backlog', 4096, { min: 1 }),
  };
}
