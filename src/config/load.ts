// `neutron-server --config-file neutron.conf --config-file ml2_conf.ini`: reads the files
// (later override earlier), checks them, and returns the typed ServerConfig with Neutron's
// defaults. Anything malformed or contradictory throws ConfigError naming file, section,
// option and value; unknown sections/options only warn.
import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from './errors.js';
import { readIni } from './ini.js';
import { SERVER_KNOWN } from './known.js';
import { Options, type Warn } from './options.js';
import type { IdentityConfig, NetworkType, ServerConfig, VlanRange } from './server.js';
import { checkBaseMac, checkHostAddress, checkIpAddress, macPrefixesOverlap, parseInteger, parseRange } from './values.js';

export { ConfigError } from './errors.js';
export { readIni, parseIni, IniConfig, type IniValue } from './ini.js';
export { Options, type Warn } from './options.js';
export {
  loadOvsAgentConfig,
  loadL3AgentConfig,
  loadDhcpAgentConfig,
  loadMetadataAgentConfig,
  type OvsAgentConfig,
  type L3AgentConfig,
  type DhcpAgentConfig,
  type MetadataAgentConfig,
} from './agents.js';

export interface LoadOptions {
  warn?: Warn;
  /** Base for relative paths (SQLite file, state_path); default process.cwd(). */
  cwd?: string;
}

/** Type drivers dvrnet implements; Neutron also has local and geneve. */
export const SUPPORTED_TYPE_DRIVERS: readonly NetworkType[] = ['flat', 'vlan', 'gre', 'vxlan'];
const NEUTRON_ONLY_TYPE_DRIVERS = ['local', 'geneve'];
/** Mechanism drivers dvrnet implements (Neutron also has ovn, linuxbridge, sriovnicswitch, macvtap). */
export const SUPPORTED_MECHANISM_DRIVERS = ['openvswitch', 'l2population'];
const NEUTRON_ONLY_MECHANISM_DRIVERS = ['ovn', 'linuxbridge', 'sriovnicswitch', 'macvtap', 'fake_agent', 'logger', 'test'];
export const SUPPORTED_EXTENSION_DRIVERS = ['port_security'];
/** Service plugin aliases dvrnet implements, with the class paths Neutron also accepts. */
export const SUPPORTED_SERVICE_PLUGINS: Record<string, string> = {
  router: 'neutron.services.l3_router.l3_router_plugin.L3RouterPlugin',
};
const ML2_PLUGIN_CLASS = 'neutron.plugins.ml2.plugin.Ml2Plugin';

/** Neutron's segmentation id limits (neutron_lib.constants). */
export const VLAN_RANGE: [number, number] = [1, 4094];
export const GRE_RANGE: [number, number] = [1, 2 ** 32 - 1];
export const VXLAN_RANGE: [number, number] = [1, 2 ** 24 - 1];

export function loadServerConfig(files: string[], opts: LoadOptions = {}): ServerConfig {
  const cwd = opts.cwd ?? process.cwd();
  const ini = readIni(files);
  const defaultStatePath = resolve(cwd, 'state');
  const o = new Options(ini, SERVER_KNOWN, opts.warn, {
    'DEFAULT.state_path': defaultStatePath,
    'DEFAULT.host': hostname(),
  });
  const D = 'DEFAULT';

  const core = o.str(D, 'core_plugin', 'ml2');
  if (core !== 'ml2' && core !== ML2_PLUGIN_CLASS) {
    o.fail(D, 'core_plugin', `unsupported core plugin '${core}' (dvrnet implements ml2)`);
  }

  const service_plugins = o.list(D, 'service_plugins', []).map((p) => {
    for (const [alias, cls] of Object.entries(SUPPORTED_SERVICE_PLUGINS)) if (p === alias || p === cls) return alias;
    return o.fail(D, 'service_plugins', `unsupported service plugin '${p}' (supported: ${Object.keys(SUPPORTED_SERVICE_PLUGINS).join(', ')})`);
  });

  const base_mac = o.str(D, 'base_mac', 'fa:16:3e:00:00:00');
  checkOr(o, D, 'base_mac', checkBaseMac(base_mac));
  const dvr_base_mac = o.str(D, 'dvr_base_mac', 'fa:16:3f:00:00:00');
  checkOr(o, D, 'dvr_base_mac', checkBaseMac(dvr_base_mac));
  if (macPrefixesOverlap(base_mac, dvr_base_mac)) {
    const blame = o.isSet(D, 'dvr_base_mac') ? 'dvr_base_mac' : 'base_mac';
    o.fail(D, blame, `dvr_base_mac ${dvr_base_mac} and base_mac ${base_mac} share their fixed prefix: DVR MACs could collide with port MACs`);
  }

  const bind_host = o.str(D, 'bind_host', '127.0.0.1');
  checkOr(o, D, 'bind_host', checkHostAddress(bind_host));

  const auth = o.str(D, 'auth_strategy', 'keystone');
  if (auth !== 'noauth' && auth !== 'keystone') {
    o.fail(D, 'auth_strategy', "unsupported auth_strategy (use 'noauth' or 'keystone')");
  }

  const router_distributed = o.bool(D, 'router_distributed', false);
  const enable_dvr = o.bool(D, 'enable_dvr', true);
  if (router_distributed && !enable_dvr) {
    o.fail(D, 'enable_dvr', 'router_distributed = True needs DVR enabled (enable_dvr = True)');
  }

  const pagination = o.str(D, 'pagination_max_limit', '-1').trim();
  let pagination_max_limit = -1;
  if (pagination.toLowerCase() !== 'infinite') {
    const n = parseInteger(pagination);
    if (n === undefined) o.fail(D, 'pagination_max_limit', "not an integer or 'infinite'");
    pagination_max_limit = n! > 0 ? n! : -1;
  }

  const state_path = resolve(cwd, o.str(D, 'state_path', defaultStatePath));

  const ml2 = loadMl2(o);
  const config: ServerConfig = {
    core_plugin: 'ml2',
    service_plugins,
    allow_overlapping_ips: o.bool(D, 'allow_overlapping_ips', false),
    router_distributed,
    base_mac: base_mac.toLowerCase(),
    dvr_base_mac: dvr_base_mac.toLowerCase(),
    bind_host,
    bind_port: o.int(D, 'bind_port', 9696, { min: 0, max: 65535 }),
    auth_strategy: auth as 'noauth' | 'keystone',
    global_physnet_mtu: o.int(D, 'global_physnet_mtu', 1500, { min: 68, max: 65535 }),
    api_workers: o.intOpt(D, 'api_workers', { min: 0 }),
    database: parseDatabaseConnection(o, cwd),
    ...ml2,
    host: o.str(D, 'host', hostname()),
    state_path,
    debug: o.bool(D, 'debug', false),
    enable_dvr,
    l3_ha: o.bool(D, 'l3_ha', false),
    agent_down_time: o.int(D, 'agent_down_time', 75, { min: 1 }),
    dhcp_agents_per_network: o.int(D, 'dhcp_agents_per_network', 1, { min: 1 }),
    allow_bulk: o.bool(D, 'allow_bulk', true),
    pagination_max_limit,
    max_dns_nameservers: o.int(D, 'max_dns_nameservers', 5, { min: 0 }),
    max_subnet_host_routes: o.int(D, 'max_subnet_host_routes', 20, { min: 0 }),
    max_allowed_address_pair: o.int(D, 'max_allowed_address_pair', 10, { min: 0 }),
    config_files: [...files],
    raw: ini.toRaw(),
  };
  if (config.ml2.path_mtu > 0 && config.ml2.path_mtu < 68) o.fail('ml2', 'path_mtu', 'must be 0 (use global_physnet_mtu) or at least 68');
  config.identity = loadIdentity(o);
  return config;
}

type Ml2Part = Pick<ServerConfig, 'ml2' | 'ml2_type_flat' | 'ml2_type_vlan' | 'ml2_type_gre' | 'ml2_type_vxlan' | 'securitygroup'>;

function loadMl2(o: Options): Ml2Part {
  const M = 'ml2';
  const typeDriver = (option: string, t: string): NetworkType => {
    if ((SUPPORTED_TYPE_DRIVERS as string[]).includes(t)) return t as NetworkType;
    if (NEUTRON_ONLY_TYPE_DRIVERS.includes(t)) {
      return o.fail(M, option, `type driver '${t}' is not supported by dvrnet (supported: ${SUPPORTED_TYPE_DRIVERS.join(', ')})`);
    }
    return o.fail(M, option, `unknown type driver '${t}' (known: ${SUPPORTED_TYPE_DRIVERS.join(', ')})`);
  };
  const type_drivers = dedupe(o.list(M, 'type_drivers', [...SUPPORTED_TYPE_DRIVERS]).map((t) => typeDriver('type_drivers', t)));
  // Neutron's default is ['local'], which dvrnet does not have; vxlan is the overlay it defaults to.
  const tenant_network_types = dedupe(o.list(M, 'tenant_network_types', ['vxlan']).map((t) => typeDriver('tenant_network_types', t)));
  for (const t of tenant_network_types) {
    if (!type_drivers.includes(t)) {
      const blame = o.isSet(M, 'tenant_network_types') ? 'tenant_network_types' : 'type_drivers';
      o.fail(M, blame, `tenant network type '${t}' is not in type_drivers (${type_drivers.join(',')})`);
    }
  }

  const mechanism_drivers = dedupe(o.list(M, 'mechanism_drivers', []));
  for (const d of mechanism_drivers) {
    if (SUPPORTED_MECHANISM_DRIVERS.includes(d)) continue;
    const why = NEUTRON_ONLY_MECHANISM_DRIVERS.includes(d) ? 'is not supported by dvrnet' : 'is unknown';
    o.fail(M, 'mechanism_drivers', `mechanism driver '${d}' ${why} (supported: ${SUPPORTED_MECHANISM_DRIVERS.join(', ')})`);
  }
  if (mechanism_drivers.includes('l2population') && !mechanism_drivers.includes('openvswitch')) {
    o.fail(M, 'mechanism_drivers', "l2population only works beside a binding driver: add 'openvswitch'");
  }
  const extension_drivers = dedupe(o.list(M, 'extension_drivers', []));
  for (const d of extension_drivers) {
    if (!SUPPORTED_EXTENSION_DRIVERS.includes(d)) {
      o.fail(M, 'extension_drivers', `extension driver '${d}' is not supported (supported: ${SUPPORTED_EXTENSION_DRIVERS.join(', ')})`);
    }
  }

  const flat_networks = o.list('ml2_type_flat', 'flat_networks', ['*']);
  const network_vlan_ranges = parseVlanRanges(o);
  const tunnel_id_ranges = parseTunnelRanges(o, 'ml2_type_gre', 'tunnel_id_ranges', GRE_RANGE, 'GRE tunnel id');
  const vni_ranges = parseTunnelRanges(o, 'ml2_type_vxlan', 'vni_ranges', VXLAN_RANGE, 'VXLAN VNI');
  const vxlan_group = o.strOpt('ml2_type_vxlan', 'vxlan_group');
  if (vxlan_group !== undefined) {
    const addr = vxlan_group.split('/')[0];
    checkOr(o, 'ml2_type_vxlan', 'vxlan_group', checkIpAddress(addr));
  }

  const S = 'securitygroup';
  return {
    ml2: {
      type_drivers,
      tenant_network_types,
      mechanism_drivers,
      extension_drivers,
      path_mtu: o.int(M, 'path_mtu', 0, { min: 0, max: 65535 }),
    },
    ml2_type_flat: { flat_networks },
    ml2_type_vlan: { network_vlan_ranges },
    ml2_type_gre: { tunnel_id_ranges },
    ml2_type_vxlan: vxlan_group === undefined ? { vni_ranges } : { vni_ranges, vxlan_group },
    securitygroup: {
      enable_ipset: o.bool(S, 'enable_ipset', true),
      enable_security_group: o.bool(S, 'enable_security_group', true),
      ...(o.strOpt(S, 'firewall_driver') !== undefined ? { firewall_driver: o.strOpt(S, 'firewall_driver') } : {}),
    },
  };
}

/** `physnet` or `physnet:MIN:MAX`, comma separated (Neutron's parse_network_vlan_ranges). */
function parseVlanRanges(o: Options): VlanRange[] {
  const S = 'ml2_type_vlan';
  const out: VlanRange[] = [];
  for (const item of o.list(S, 'network_vlan_ranges', [])) {
    const parts = item.split(':').map((p) => p.trim());
    if (!parts[0]) o.fail(S, 'network_vlan_ranges', `'${item}': missing physical network name`);
    if (parts.length === 1) {
      out.push({ physnet: parts[0] });
      continue;
    }
    if (parts.length !== 3) o.fail(S, 'network_vlan_ranges', `'${item}' is not of the form PHYSNET or PHYSNET:MIN_VLAN:MAX_VLAN`);
    const r = parseRange(`${parts[1]}:${parts[2]}`, VLAN_RANGE[0], VLAN_RANGE[1], 'VLAN id');
    if (typeof r === 'string') o.fail(S, 'network_vlan_ranges', `in '${item}': ${r}`);
    const [min, max] = r as [number, number];
    out.push({ physnet: parts[0], min, max });
  }
  return out;
}

function parseTunnelRanges(o: Options, section: string, option: string, limits: [number, number], what: string): Array<[number, number]> {
  return o.list(section, option, []).map((item) => {
    const r = parseRange(item, limits[0], limits[1], what);
    return typeof r === 'string' ? o.fail(section, option, r) : r;
  });
}

/** Normalises `[database] connection` (see ServerConfig.database). */
function parseDatabaseConnection(o: Options, cwd: string): ServerConfig['database'] {
  const url = o.str('database', 'connection', 'sqlite:///state/dvrnet.sqlite').trim();
  const sqlite = /^sqlite:\/\/(\/(.*))?$/.exec(url);
  if (sqlite) {
    const path = sqlite[2];
    if (path === undefined || path === '' || path === ':memory:') {
      if (path === '') o.fail('database', 'connection', "empty SQLite path (use sqlite:///path, or sqlite:// for memory)");
      return { connection: 'sqlite://', backend: 'sqlite', sqlite_path: ':memory:' };
    }
    const abs = isAbsolute(path) ? path : resolve(cwd, path);
    return { connection: `sqlite:///${abs}`, backend: 'sqlite', sqlite_path: abs };
  }
  const pg = /^postgres(?:ql)?(?:\+psycopg2)?:\/\/(.+)$/.exec(url);
  if (pg) {
    try {
      new URL(`postgresql://${pg[1]}`);
    } catch {
      o.fail('database', 'connection', 'not a valid postgresql:// URL');
    }
    return { connection: `postgresql://${pg[1]}`, backend: 'postgresql' };
  }
  return o.fail('database', 'connection', 'unsupported database URL: use sqlite:///path (sqlite:// = in memory) or postgresql://user:password@host/dbname');
}

/** [identity]: dvrnet's built-in identity service. */
function loadIdentity(o: Options): IdentityConfig {
  const I = 'identity';
  const bind_host = o.str(I, 'bind_host', '127.0.0.1');
  checkOr(o, I, 'bind_host', checkHostAddress(bind_host));
  const out: IdentityConfig = {
    bind_host,
    bind_port: o.int(I, 'bind_port', 5000, { min: 0, max: 65535 }),
    token_expiration: o.int(I, 'token_expiration', 3600, { min: 1 }),
  };
  const admin = o.strOpt(I, 'admin_password');
  const demo = o.strOpt(I, 'demo_password');
  if (admin !== undefined) out.admin_password = admin;
  if (demo !== undefined) out.demo_password = demo;
  return out;
}

function checkOr(o: Options, section: string, option: string, reason: string | undefined): void {
  if (reason) o.fail(section, option, reason);
}

function dedupe<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}
