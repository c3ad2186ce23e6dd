import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { suiteDirs } from '../common/testing.js';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadServerConfig } from './load.js';

const ETC = resolve(dirname(fileURLToPath(import.meta.url)), '../../etc');

const freshDir = suiteDirs('dvrnet-cfg-');

function tmp(contents: Record<string, string>): string[] {
  const dir = freshDir();
  return Object.entries(contents).map(([name, text]) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  });
}

function load(contents: Record<string, string>, cwd = '/srv/dvrnet') {
  const warnings: string[] = [];
  const files = tmp(contents);
  const config = loadServerConfig(files, { warn: (m) => warnings.push(m), cwd });
  return { config, warnings, files };
}

/** Asserts that loading throws a ConfigError whose message holds every fragment. */
function rejects(contents: Record<string, string>, ...fragments: Array<string | RegExp>) {
  let files: string[] = [];
  assert.throws(
    () => {
      files = tmp(contents);
      loadServerConfig(files, { warn: () => {} });
    },
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `not a ConfigError: ${e}`);
      for (const f of fragments) {
        if (typeof f === 'string') assert.ok(e.message.includes(f), `'${e.message}' lacks '${f}'`);
        else assert.match(e.message, f);
      }
      // Every message names the file it came from.
      assert.ok(files.some((p) => e.message.includes(p)), `'${e.message}' names no file`);
      return true;
    },
  );
}

test('the shipped etc/neutron.conf + etc/ml2_conf.ini load without warnings, as the scenario says', () => {
  const warnings: string[] = [];
  const c = loadServerConfig([join(ETC, 'neutron.conf'), join(ETC, 'ml2_conf.ini')], {
    warn: (m) => warnings.push(m),
    cwd: '/srv/dvrnet',
  });
  assert.deepEqual(warnings, []);
  assert.equal(c.core_plugin, 'ml2');
  assert.deepEqual(c.service_plugins, ['router']);
  assert.equal(c.allow_overlapping_ips, true);
  assert.equal(c.router_distributed, true);
  assert.equal(c.auth_strategy, 'keystone');
  assert.equal(c.bind_host, '127.0.0.1');
  assert.equal(c.bind_port, 9696);
  assert.equal(c.database.connection, 'sqlite:////srv/dvrnet/state/dvrnet.sqlite');
  assert.equal(c.database.sqlite_path, '/srv/dvrnet/state/dvrnet.sqlite');
  assert.deepEqual(c.ml2.type_drivers, ['flat', 'vlan', 'gre', 'vxlan']);
  assert.deepEqual(c.ml2.tenant_network_types, ['vlan', 'gre', 'vxlan']);
  assert.deepEqual(c.ml2.mechanism_drivers, ['openvswitch', 'l2population']);
  assert.deepEqual(c.ml2.extension_drivers, ['port_security']);
  assert.deepEqual(c.ml2_type_flat.flat_networks, ['external']);
  assert.deepEqual(c.ml2_type_vlan.network_vlan_ranges, [{ physnet: 'external' }, { physnet: 'vlan', min: 100, max: 200 }]);
  assert.deepEqual(c.ml2_type_gre.tunnel_id_ranges, [[1, 1000]]);
  assert.deepEqual(c.ml2_type_vxlan.vni_ranges, [[1, 1000]]);
  assert.equal(c.securitygroup.enable_ipset, true);
  assert.deepEqual(c.identity, { bind_host: '127.0.0.1', bind_port: 5000, token_expiration: 3600, admin_password: 'admin', demo_password: 'demo' });
  assert.equal(c.state_path, '/srv/dvrnet/state');
});

test("no files: Neutron's defaults (with dvrnet's loopback bind and SQLite file)", () => {
  const c = loadServerConfig([], { warn: () => assert.fail('no warning expected'), cwd: '/w' });
  assert.equal(c.base_mac, 'fa:16:3e:00:00:00');
  assert.equal(c.dvr_base_mac, 'fa:16:3f:00:00:00');
  assert.equal(c.bind_host, '127.0.0.1');
  assert.equal(c.bind_port, 9696);
  assert.equal(c.auth_strategy, 'keystone');
  assert.equal(c.global_physnet_mtu, 1500);
  assert.equal(c.allow_overlapping_ips, false);
  assert.equal(c.router_distributed, false);
  assert.deepEqual(c.service_plugins, []);
  assert.deepEqual(c.ml2_type_flat.flat_networks, ['*']);
  assert.equal(c.ml2.path_mtu, 0);
  assert.equal(c.api_workers, undefined);
  assert.equal(c.database.connection, 'sqlite:////w/state/dvrnet.sqlite');
  assert.equal(c.securitygroup.enable_security_group, true);
  assert.equal(c.pagination_max_limit, -1);
  assert.equal(c.max_dns_nameservers, 5);
  assert.equal(c.max_subnet_host_routes, 20);
  assert.equal(c.max_allowed_address_pair, 10);
});

test('later files override earlier ones option by option', () => {
  const { config } = load({
    'neutron.conf': '[DEFAULT]\nbind_port = 9696\nbind_host = 127.0.0.1\ncore_plugin = ml2\n',
    'override.conf': '[DEFAULT]\nbind_port = 19696\n[ml2]\ntenant_network_types = vxlan\n',
  });
  assert.equal(config.bind_port, 19696);
  assert.equal(config.bind_host, '127.0.0.1');
  assert.deepEqual(config.ml2.tenant_network_types, ['vxlan']);
});

test('lists ignore whitespace around items; booleans take oslo spellings', () => {
  const { config } = load({
    'a.conf': [
      '[DEFAULT]',
      'allow_overlapping_ips = yes',
      'router_distributed = ON',
      'service_plugins = neutron.services.l3_router.l3_router_plugin.L3RouterPlugin',
      'core_plugin = neutron.plugins.ml2.plugin.Ml2Plugin',
      '[ml2]',
      'type_drivers =  flat , vlan,',
      '  vxlan',
      'tenant_network_types = vxlan , vlan',
      '[securitygroup]',
      'enable_ipset = 0',
      'enable_security_group = False',
    ].join('\n'),
  });
  assert.equal(config.allow_overlapping_ips, true);
  assert.equal(config.router_distributed, true);
  assert.deepEqual(config.service_plugins, ['router']);
  assert.equal(config.core_plugin, 'ml2');
  assert.deepEqual(config.ml2.type_drivers, ['flat', 'vlan', 'vxlan']);
  assert.deepEqual(config.ml2.tenant_network_types, ['vxlan', 'vlan']);
  assert.equal(config.securitygroup.enable_ipset, false);
  assert.equal(config.securitygroup.enable_security_group, false);
});

test('unknown sections and options warn, naming file, line, section and option', () => {
  const { config, warnings, files } = load({
    'neutron.conf': '[DEFAULT]\ncore_plugin = ml2\nbind_prot = 1\n[bogus]\nx = 1\n[keystone_authtoken]\nauth_url = http://c:5000\n',
  });
  assert.equal(config.bind_port, 9696);
  assert.deepEqual(warnings, [
    `${files[0]}:3: [DEFAULT] bind_prot: unknown option, ignored`,
    `${files[0]}:4: [bogus]: unknown section, ignored`,
  ]);
  // Unknown or pass-through sections are still kept raw.
  assert.equal(config.raw.bogus.x, '1');
  assert.equal(config.raw.keystone_authtoken.auth_url, 'http://c:5000');
});

test('known options of Neutron and oslo libraries do not warn', () => {
  const { warnings } = load({
    'neutron.conf': [
      '[DEFAULT]',
      'debug = True',
      'verbose = True',
      'transport_url = rabbit://openstack:pw@controller',
      'state_path = /var/lib/neutron',
      'notify_nova_on_port_status_changes = True',
      'notify_nova_on_port_data_changes = True',
      'agent_down_time = 75',
      'dhcp_agents_per_network = 1',
      'l3_ha = False',
      'api_workers = 2',
      '[database]',
      'connection = sqlite://',
      'max_pool_size = 5',
      '[keystone_authtoken]',
      'auth_type = password',
      'project_domain_name = default',
      '[nova]',
      'region_name = RegionOne',
      '[oslo_concurrency]',
      'lock_path = /var/lib/neutron/tmp',
      '[oslo_messaging_rabbit]',
      'heartbeat_timeout_threshold = 60',
      '[agent]',
      'root_helper = sudo',
      '[identity]',
      'token_expiration = 600',
      '[ml2_type_vxlan]',
      'vxlan_group = 239.1.1.1',
    ].join('\n'),
  });
  assert.deepEqual(warnings, []);
});

test('deprecated option names are accepted with a warning', () => {
  const { config, warnings } = load({ 'neutron.conf': '[DEFAULT]\nsql_connection = sqlite://\n' });
  assert.equal(config.database.connection, 'sqlite://');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /\[DEFAULT\] sql_connection is deprecated, use \[database\] connection/);
});

test('database connection: sqlite paths resolved against cwd, memory, postgresql normalised', () => {
  const conn = (c: string) => load({ 'n.conf': `[database]\nconnection = ${c}\n` }, '/srv/x').config.database;
  assert.deepEqual(conn('sqlite:///state/db.sqlite'), { connection: 'sqlite:////srv/x/state/db.sqlite', backend: 'sqlite', sqlite_path: '/srv/x/state/db.sqlite' });
  assert.deepEqual(conn('sqlite:////abs/db.sqlite'), { connection: 'sqlite:////abs/db.sqlite', backend: 'sqlite', sqlite_path: '/abs/db.sqlite' });
  assert.deepEqual(conn('sqlite://'), { connection: 'sqlite://', backend: 'sqlite', sqlite_path: ':memory:' });
  assert.deepEqual(conn('sqlite:///:memory:'), { connection: 'sqlite://', backend: 'sqlite', sqlite_path: ':memory:' });
  assert.equal(conn('postgresql+psycopg2://neutron:pw@127.0.0.1/neutron').connection, 'postgresql://neutron:pw@127.0.0.1/neutron');
  assert.equal(conn('postgresql://neutron@localhost:5433/n').backend, 'postgresql');
});

test('$option substitution as in oslo.config', () => {
  const { config } = load({
    'n.conf': '[DEFAULT]\nstate_path = /var/lib/dvr\n[database]\nconnection = sqlite:///$state_path/db.sqlite\n',
  });
  assert.equal(config.database.connection, 'sqlite:////var/lib/dvr/db.sqlite');
});

// ---- every malformed or contradictory value stops startup, naming file, section, option, value

test('ranges: min > max, VLAN id outside 1-4094, VNI and GRE id limits', () => {
  rejects({ 'ml2.ini': '[ml2_type_vxlan]\nvni_ranges = 10:1\n' }, '[ml2_type_vxlan] vni_ranges = 10:1', 'greater than');
  rejects({ 'ml2.ini': '[ml2_type_vlan]\nnetwork_vlan_ranges = vlan:100:5000\n' }, '[ml2_type_vlan] network_vlan_ranges = vlan:100:5000', '5000 is not a valid VLAN id (valid: 1-4094)');
  rejects({ 'ml2.ini': '[ml2_type_vlan]\nnetwork_vlan_ranges = vlan:0:10\n' }, 'network_vlan_ranges', '0 is not a valid VLAN id');
  rejects({ 'ml2.ini': '[ml2_type_vlan]\nnetwork_vlan_ranges = vlan:200:100\n' }, 'network_vlan_ranges', 'greater than');
  rejects({ 'ml2.ini': '[ml2_type_vlan]\nnetwork_vlan_ranges = vlan:100\n' }, 'network_vlan_ranges = vlan:100', 'not of the form');
  rejects({ 'ml2.ini': '[ml2_type_vlan]\nnetwork_vlan_ranges = :1:2\n' }, 'missing physical network');
  rejects({ 'ml2.ini': '[ml2_type_vxlan]\nvni_ranges = 1:16777216\n' }, '[ml2_type_vxlan] vni_ranges', '16777216 is not a valid VXLAN VNI (valid: 1-16777215)');
  rejects({ 'ml2.ini': '[ml2_type_vxlan]\nvni_ranges = 0:10\n' }, 'vni_ranges', '0 is not a valid VXLAN VNI');
  rejects({ 'ml2.ini': '[ml2_type_gre]\ntunnel_id_ranges = 1:4294967296\n' }, '[ml2_type_gre] tunnel_id_ranges', '4294967296 is not a valid GRE tunnel id (valid: 1-4294967295)');
  rejects({ 'ml2.ini': '[ml2_type_gre]\ntunnel_id_ranges = 1-1000\n' }, 'tunnel_id_ranges = 1-1000', 'MIN:MAX');
  rejects({ 'ml2.ini': '[ml2_type_gre]\ntunnel_id_ranges = a:b\n' }, 'tunnel_id_ranges', 'must be integers');
  // The limits themselves are accepted.
  const { config } = load({ 'ml2.ini': '[ml2_type_gre]\ntunnel_id_ranges = 1:4294967295\n[ml2_type_vxlan]\nvni_ranges = 16777215:16777215\n[ml2_type_vlan]\nnetwork_vlan_ranges = p:1:4094\n' });
  assert.deepEqual(config.ml2_type_gre.tunnel_id_ranges, [[1, 4294967295]]);
  assert.deepEqual(config.ml2_type_vxlan.vni_ranges, [[16777215, 16777215]]);
});

test('type drivers: tenant type not in type_drivers, unknown or unsupported driver', () => {
  rejects({ 'ml2.ini': '[ml2]\ntype_drivers = flat,vlan\ntenant_network_types = vxlan\n' }, '[ml2] tenant_network_types = vxlan', "'vxlan' is not in type_drivers");
  rejects({ 'ml2.ini': '[ml2]\ntype_drivers = flat,vxlan,bogus\n' }, '[ml2] type_drivers', "unknown type driver 'bogus'");
  rejects({ 'ml2.ini': '[ml2]\ntype_drivers = flat,geneve\n' }, "'geneve' is not supported");
  rejects({ 'ml2.ini': '[ml2]\ntenant_network_types = local\n' }, '[ml2] tenant_network_types', "'local' is not supported");
  // The default tenant type (vxlan) must be among explicitly configured type drivers.
  rejects({ 'ml2.ini': '[ml2]\ntype_drivers = flat\n' }, '[ml2] type_drivers = flat', "'vxlan' is not in type_drivers");
});

test('drivers and plugins dvrnet does not have', () => {
  rejects({ 'ml2.ini': '[ml2]\nmechanism_drivers = linuxbridge\n' }, '[ml2] mechanism_drivers', "'linuxbridge' is not supported");
  rejects({ 'ml2.ini': '[ml2]\nmechanism_drivers = openvswtich\n' }, "'openvswtich' is unknown");
  rejects({ 'ml2.ini': '[ml2]\nmechanism_drivers = l2population\n' }, 'beside a binding driver');
  rejects({ 'ml2.ini': '[ml2]\nextension_drivers = qos\n' }, '[ml2] extension_drivers', "'qos' is not supported");
  rejects({ 'n.conf': '[DEFAULT]\ncore_plugin = ovn\n' }, '[DEFAULT] core_plugin = ovn', 'unsupported core plugin');
  rejects({ 'n.conf': '[DEFAULT]\nservice_plugins = router,metering\n' }, '[DEFAULT] service_plugins', "unsupported service plugin 'metering'");
});

test('MACs: malformed, multicast, or DVR prefix overlapping base_mac', () => {
  rejects({ 'n.conf': '[DEFAULT]\nbase_mac = fa:16:3e:00:00\n' }, '[DEFAULT] base_mac = fa:16:3e:00:00', 'not a unicast MAC');
  rejects({ 'n.conf': '[DEFAULT]\nbase_mac = zz:16:3e:00:00:00\n' }, '[DEFAULT] base_mac');
  rejects({ 'n.conf': '[DEFAULT]\nbase_mac = fb:16:3e:00:00:00\n' }, 'base_mac = fb:16:3e:00:00:00', 'first octet even');
  rejects({ 'n.conf': '[DEFAULT]\ndvr_base_mac = fa:16:3e:4f:00:00\n' }, '[DEFAULT] dvr_base_mac', 'share their fixed prefix');
  // A 4-octet prefix below a different 3-octet prefix is fine, and MACs are lower-cased.
  const { config } = load({ 'n.conf': '[DEFAULT]\nbase_mac = FA:16:3E:00:00:00\ndvr_base_mac = fa:16:3f:4f:00:00\n' });
  assert.equal(config.base_mac, 'fa:16:3e:00:00:00');
  assert.equal(config.dvr_base_mac, 'fa:16:3f:4f:00:00');
});

test('ports, integers, booleans, hosts, auth strategy', () => {
  rejects({ 'n.conf': '[DEFAULT]\nbind_port = 96x6\n' }, '[DEFAULT] bind_port = 96x6', 'not a port number');
  rejects({ 'n.conf': '[DEFAULT]\nbind_port = 70000\n' }, '[DEFAULT] bind_port = 70000');
  rejects({ 'n.conf': '[DEFAULT]\nglobal_physnet_mtu = big\n' }, '[DEFAULT] global_physnet_mtu = big', 'not an integer');
  rejects({ 'n.conf': '[DEFAULT]\nglobal_physnet_mtu = 40\n' }, '[DEFAULT] global_physnet_mtu = 40', 'at least 68');
  rejects({ 'n.conf': '[DEFAULT]\napi_workers = -1\n' }, '[DEFAULT] api_workers = -1', 'at least 0');
  rejects({ 'n.conf': '[DEFAULT]\nrouter_distributed = maybe\n' }, '[DEFAULT] router_distributed = maybe', 'not a boolean');
  rejects({ 'n.conf': '[DEFAULT]\ndebug = sure\n' }, '[DEFAULT] debug = sure', 'not a boolean');
  rejects({ 'n.conf': '[DEFAULT]\nbind_host = not a host\n' }, '[DEFAULT] bind_host = not a host', 'not an IP address or host name');
  rejects({ 'n.conf': '[DEFAULT]\nauth_strategy = ldap\n' }, '[DEFAULT] auth_strategy = ldap', 'unsupported auth_strategy');
  rejects({ 'n.conf': '[identity]\nbind_port = five\n' }, '[identity] bind_port = five');
  rejects({ 'n.conf': '[identity]\ntoken_expiration = 0\n' }, '[identity] token_expiration = 0', 'at least 1');
  rejects({ 'n.conf': '[DEFAULT]\ndhcp_load_type = random\n' }, '[DEFAULT] dhcp_load_type = random', 'must be one of: networks, subnets, ports');
  rejects({ 'n.conf': '[DEFAULT]\nrouter_distributed = True\nenable_dvr = False\n' }, '[DEFAULT] enable_dvr = False', 'router_distributed = True needs DVR');
  rejects({ 'ml2.ini': '[ml2_type_vxlan]\nvxlan_group = notanip\n' }, '[ml2_type_vxlan] vxlan_group = notanip');
});

test('database connection: other backends and malformed URLs are refused', () => {
  rejects({ 'n.conf': '[database]\nconnection = mysql+pymysql://neutron:pw@controller/neutron\n' }, '[database] connection = mysql+pymysql://neutron:pw@controller/neutron', 'unsupported database URL');
  rejects({ 'n.conf': '[database]\nconnection = /var/lib/db.sqlite\n' }, '[database] connection', 'sqlite:///path');
  rejects({ 'n.conf': '[database]\nconnection = sqlite:///\n' }, '[database] connection = sqlite:///', 'empty SQLite path');
  rejects({ 'n.conf': '[database]\nconnection = postgresql://a b@/\n' }, 'not a valid postgresql:// URL');
});

test('errors carry the line number and the structured location', () => {
  const files = tmp({ 'ml2.ini': '[ml2]\ntype_drivers = vxlan\n\n[ml2_type_vxlan]\nvni_ranges = 10:1\n' });
  try {
    loadServerConfig(files, { warn: () => {} });
    assert.fail('expected ConfigError');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.file, files[0]);
    assert.equal(e.line, 5);
    assert.equal(e.section, 'ml2_type_vxlan');
    assert.equal(e.option, 'vni_ranges');
    assert.equal(e.value, '10:1');
    assert.ok(e.message.startsWith(`${files[0]}:5: [ml2_type_vxlan] vni_ranges = 10:1: `));
  }
});
