import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { suiteDirs } from '../common/testing.js';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  loadDhcpAgentConfig,
  loadL3AgentConfig,
  loadMetadataAgentConfig,
  loadOvsAgentConfig,
} from './load.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const etc = (...p: string[]) => join(ROOT, 'etc', ...p);

const freshDir = suiteDirs('dvrnet-agent-');

function tmp(contents: Record<string, string>): string[] {
  const dir = freshDir();
  return Object.entries(contents).map(([name, text]) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  });
}

function collect() {
  const warnings: string[] = [];
  return { warnings, opts: { warn: (m: string) => warnings.push(m), cwd: ROOT } };
}

test('shipped OVS agent files: network1, compute1, compute2 load without warnings', () => {
  const ips: Record<string, string> = { network1: '10.0.1.21', compute1: '10.0.1.31', compute2: '10.0.1.32' };
  for (const node of Object.keys(ips)) {
    const { warnings, opts } = collect();
    const c = loadOvsAgentConfig(
      [etc('neutron.conf'), etc(node, 'neutron.conf'), etc('openvswitch_agent.ini'), etc(node, 'openvswitch_agent.ini')],
      opts,
    );
    assert.deepEqual(warnings, [], node);
    assert.equal(c.host, node);
    assert.equal(c.ovs.local_ip, ips[node]);
    assert.deepEqual(c.ovs.bridge_mappings, [
      { physnet: 'vlan', bridge: 'br-vlan' },
      { physnet: 'external', bridge: 'br-ex' },
    ]);
    assert.equal(c.ovs.integration_bridge, 'br-int');
    assert.equal(c.ovs.tunnel_bridge, 'br-tun');
    assert.deepEqual(c.agent.tunnel_types, ['gre', 'vxlan']);
    assert.equal(c.agent.enable_distributed_routing, true);
    assert.equal(c.agent.l2_population, true);
    assert.equal(c.agent.arp_responder, true);
    assert.equal(c.agent.prevent_arp_spoofing, true);
    assert.equal(c.agent.vxlan_udp_port, 4789);
    assert.equal(c.securitygroup.firewall_driver, 'iptables_hybrid');
    assert.equal(c.securitygroup.enable_security_group, true);
  }
});

test('shipped L3 agent files: dvr_snat on network1, dvr on compute nodes', () => {
  const { warnings, opts } = collect();
  const net = loadL3AgentConfig([etc('neutron.conf'), etc('network1', 'neutron.conf'), etc('l3_agent.ini'), etc('network1', 'l3_agent.ini')], opts);
  const cmp = loadL3AgentConfig([etc('neutron.conf'), etc('compute1', 'neutron.conf'), etc('l3_agent.ini')], opts);
  assert.deepEqual(warnings, []);
  assert.equal(net.agent_mode, 'dvr_snat');
  assert.equal(net.host, 'network1');
  assert.equal(cmp.agent_mode, 'dvr');
  assert.equal(cmp.host, 'compute1');
  assert.equal(cmp.interface_driver, 'openvswitch');
  assert.equal(cmp.use_namespaces, true);
  assert.equal(cmp.external_network_bridge, '');
  assert.equal(cmp.metadata_port, 9697);
});

test('shipped DHCP agent file reads dnsmasq-neutron.conf (option 26 = MTU 1450)', () => {
  const { warnings, opts } = collect();
  const c = loadDhcpAgentConfig([etc('neutron.conf'), etc('network1', 'neutron.conf'), etc('dhcp_agent.ini')], opts);
  assert.deepEqual(warnings, []);
  assert.equal(c.dhcp_driver, 'dnsmasq');
  assert.equal(c.enable_isolated_metadata, true);
  assert.equal(c.dnsmasq_config_file, etc('dnsmasq-neutron.conf'));
  assert.deepEqual(c.dnsmasq_options, [{ key: 'dhcp-option-force', value: '26,1450' }]);
  // $state_path substitution in a default, state_path relative to the working directory.
  assert.equal(c.state_path, join(ROOT, 'state'));
  assert.equal(c.dhcp_confs, join(ROOT, 'state', 'dhcp'));
});

test('shipped metadata agent file', () => {
  const { warnings, opts } = collect();
  const c = loadMetadataAgentConfig([etc('neutron.conf'), etc('compute2', 'neutron.conf'), etc('metadata_agent.ini')], opts);
  assert.deepEqual(warnings, []);
  assert.equal(c.host, 'compute2');
  assert.equal(c.nova_metadata_host, 'controller');
  assert.equal(c.nova_metadata_port, 8775);
  assert.equal(c.metadata_proxy_shared_secret, 'lab-metadata-secret');
  assert.equal(c.metadata_proxy_socket, join(ROOT, 'state', 'metadata_proxy'));
});

test("agent defaults are Neutron's", () => {
  const { opts } = collect();
  const [f] = tmp({ 'l3.ini': '[DEFAULT]\ninterface_driver = openvswitch\n' });
  const l3 = loadL3AgentConfig([f], opts);
  assert.equal(l3.agent_mode, 'legacy');
  assert.equal(l3.handle_internal_only_routers, true);
  assert.equal(l3.agent.report_interval, 30);
  assert.equal(l3.agent.availability_zone, 'nova');
  assert.equal(l3.rpc_response_timeout, 60);
  assert.equal(l3.rpc_response_max_timeout, 600);
  const ovs = loadOvsAgentConfig([], opts);
  assert.equal(ovs.ovs.local_ip, undefined);
  assert.deepEqual(ovs.agent.tunnel_types, []);
  assert.equal(ovs.agent.l2_population, false);
  assert.equal(ovs.securitygroup.firewall_driver, undefined);
  const md = loadMetadataAgentConfig([], opts);
  assert.equal(md.nova_metadata_host, '127.0.0.1');
  assert.equal(md.nova_metadata_protocol, 'http');
});

test('the Kilo name nova_metadata_ip still works, with a deprecation warning', () => {
  const { warnings, opts } = collect();
  const [f] = tmp({ 'md.ini': '[DEFAULT]\nnova_metadata_ip = 10.0.0.11\n' });
  const c = loadMetadataAgentConfig([f], opts);
  assert.equal(c.nova_metadata_host, '10.0.0.11');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /nova_metadata_ip is deprecated, use \[DEFAULT\] nova_metadata_host/);
});

test('agent warnings: unknown options; arp_responder without l2_population', () => {
  const { warnings, opts } = collect();
  const [f] = tmp({ 'ovs.ini': '[ovs]\nbridge_mapings = x:br-x\n[agent]\narp_responder = True\n' });
  loadOvsAgentConfig([f], opts);
  assert.deepEqual(warnings, [
    `${f}:2: [ovs] bridge_mapings: unknown option, ignored`,
    `${f}:4: [agent] arp_responder only takes effect with l2_population = True (as in Neutron)`,
  ]);
});

function rejects(load: (files: string[]) => unknown, text: string, ...fragments: string[]) {
  const [f] = tmp({ 'agent.ini': text });
  assert.throws(
    () => load([f]),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `not a ConfigError: ${e}`);
      for (const fr of [f, ...fragments]) assert.ok(e.message.includes(fr), `'${e.message}' lacks '${fr}'`);
      return true;
    },
  );
}

test('OVS agent: bad or contradictory values stop startup', () => {
  const ovs = (files: string[]) => loadOvsAgentConfig(files, { warn: () => {} });
  rejects(ovs, '[agent]\ntunnel_types = vxlan\n', '[agent] tunnel_types = vxlan', 'set [ovs] local_ip');
  rejects(ovs, '[ovs]\nlocal_ip = 10.0.1\n', '[ovs] local_ip = 10.0.1', 'not an IP address');
  rejects(ovs, '[ovs]\nlocal_ip = 10.0.1.5\n[agent]\ntunnel_types = vxlan,stt\n', "'stt' is not a tunnel type");
  rejects(ovs, '[ovs]\nlocal_ip = 10.0.1.5\n[agent]\ntunnel_types = geneve\n', "'geneve' is not supported");
  rejects(ovs, '[ovs]\nbridge_mappings = vlan:br-vlan,vlan:br-ex\n', '[ovs] bridge_mappings', "key 'vlan'", 'not unique');
  rejects(ovs, '[ovs]\nbridge_mappings = a:br-ex,b:br-ex\n', "value 'br-ex'", 'not unique');
  rejects(ovs, '[ovs]\nbridge_mappings = vlan\n', "invalid mapping 'vlan'");
  rejects(ovs, '[ovs]\nbridge_mappings = ext:br-int\n', 'integration bridge');
  rejects(ovs, '[ovs]\ndatapath_type = dpdk\n', '[ovs] datapath_type = dpdk', 'must be one of: system, netdev');
  rejects(ovs, '[agent]\nl2_population = sometimes\n', '[agent] l2_population = sometimes', 'not a boolean');
  rejects(ovs, '[agent]\nvxlan_udp_port = 65536\n', '[agent] vxlan_udp_port = 65536');
  rejects(ovs, '[securitygroup]\nfirewall_driver = pf\n', '[securitygroup] firewall_driver = pf', 'unknown firewall driver');
});

test('L3 / DHCP agents: bad or contradictory values stop startup', () => {
  const l3 = (files: string[]) => loadL3AgentConfig(files, { warn: () => {} });
  const dhcp = (files: string[]) => loadDhcpAgentConfig(files, { warn: () => {}, cwd: '/nonexistent' });
  rejects(l3, '[DEFAULT]\nagent_mode = dvr\n', '[DEFAULT] interface_driver', 'must be specified');
  rejects(l3, '[DEFAULT]\ninterface_driver = linuxbridge\n', '[DEFAULT] interface_driver = linuxbridge', 'unsupported interface driver');
  rejects(l3, '[DEFAULT]\ninterface_driver = openvswitch\nagent_mode = snat\n', '[DEFAULT] agent_mode = snat', 'must be one of: dvr, dvr_snat, legacy, dvr_no_external');
  rejects(l3, '[DEFAULT]\ninterface_driver = openvswitch\nuse_namespaces = False\n', '[DEFAULT] use_namespaces = False', 'always uses network namespaces');
  rejects(l3, '[DEFAULT]\ninterface_driver = openvswitch\nexternal_network_bridge = br-ex\n', '[DEFAULT] external_network_bridge = br-ex', 'must be empty');
  rejects(l3, '[DEFAULT]\ninterface_driver = openvswitch\nmetadata_port = http\n', '[DEFAULT] metadata_port = http');
  rejects(l3, '[DEFAULT]\ninterface_driver = openvswitch\nrpc_response_timeout = 0\n', '[DEFAULT] rpc_response_timeout = 0');
  rejects(l3, '[DEFAULT]\ninterface_driver = openvswitch\nrpc_response_max_timeout = soon\n', '[DEFAULT] rpc_response_max_timeout = soon');
  rejects(dhcp, '[DEFAULT]\ninterface_driver = openvswitch\ndhcp_driver = isc\n', '[DEFAULT] dhcp_driver = isc', 'unsupported DHCP driver');
  rejects(dhcp, '[DEFAULT]\ninterface_driver = openvswitch\ndnsmasq_config_file = etc/none.conf\n', '[DEFAULT] dnsmasq_config_file = etc/none.conf', 'cannot read /nonexistent/etc/none.conf');
  rejects(dhcp, '[DEFAULT]\ninterface_driver = openvswitch\ndnsmasq_dns_servers = 8.8.8.8,dns.example\n', "'dns.example' is not an IP address");
  rejects(dhcp, '[DEFAULT]\ninterface_driver = openvswitch\nenable_metadata_network = True\n', '[DEFAULT] enable_metadata_network = True', 'needs enable_isolated_metadata');
});

test('dnsmasq config file syntax errors name that file and line', () => {
  const [conf, ini] = tmp({ 'dnsmasq.conf': '# ok\ndhcp-option-force=26,1450\n!bad\n', 'dhcp.ini': '' });
  writeFileSync(ini, `[DEFAULT]\ninterface_driver = openvswitch\ndnsmasq_config_file = ${conf}\n`);
  assert.throws(() => loadDhcpAgentConfig([ini], { warn: () => {} }), new RegExp(`${conf}:3: not a dnsmasq option`));
});

test('metadata agent: host and protocol are checked', () => {
  const md = (files: string[]) => loadMetadataAgentConfig(files, { warn: () => {} });
  rejects(md, '[DEFAULT]\nnova_metadata_host = bad host\n', '[DEFAULT] nova_metadata_host = bad host');
  rejects(md, '[DEFAULT]\nnova_metadata_protocol = ftp\n', '[DEFAULT] nova_metadata_protocol = ftp', 'must be one of: http, https');
  rejects(md, '[DEFAULT]\nnova_metadata_port = -1\n', '[DEFAULT] nova_metadata_port = -1');
});
