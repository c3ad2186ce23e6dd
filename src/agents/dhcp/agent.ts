// The DHCP agent (neutron-dhcp-agent with the Dnsmasq driver and the OVS interface driver):
// for every network the server scheduled to this host, a DHCP port of its own (created on
// the server with Neutron's device_id), `qdhcp-<network id>` with that port plugged into
// br-int, dnsmasq configured from the network's subnets and ports, and a metadata proxy for
// isolated networks. Level-triggered: a full pass recomputes the whole fragment from
// `get_active_networks_info`; a port or network update of a network served here fetches that
// network alone (`get_network_info`, as Neutron's agent refreshes one network), or, when the
// cast carries the port (as Neutron's `port_update_end` does), puts it into the network it
// holds (a network of thousands of ports is not fetched per port); anything else (a network
// deleted or new here, the periodic resync) makes a full pass. A network that is no longer
// hosted here loses its namespace and its DHCP port.

import type { DhcpAgentConfig } from '../../config/agents.js';
import { emptyHost } from '../../host/build.js';
import { DHCP_NS_PREFIX, INTEGRATION_BRIDGE } from '../../host/names.js';
import type { HostState, OvsBridge } from '../../host/state.js';
import type { NetworkInfo, PortInfo } from '../../rpc/messages.js';
import { AGENT_TOPICS } from '../../rpc/messages.js';
import { DEVICE_OWNER } from '../../common/constants.js';
import { Agent, configOptions, type AgentOptions } from '../agent.js';
import { dhcpDeviceId } from './device-id.js';
import { metadataProxySocket } from '../metadata/socket.js';
import { addDhcpNetwork, dhcpSubnets, parseDnsmasqOptions, type DnsmasqSettings } from './dnsmasq.js';

export interface DhcpAgentOptions extends AgentOptions {
  config: DhcpAgentConfig;
  /**
   * The metadata agent's socket the proxies forward to. Default: neutron.conf's
   * `metadata_proxy_socket`, else `$state_path/metadata_proxy` (both agents' default).
   */
  metadataProxySocket?: string;
  /** `[ovs] integration_bridge` (default br-int). */
  integrationBridge?: string;
}

export class DhcpAgent extends Agent {
  readonly agentType = 'DHCP agent';
  readonly binary = 'neutron-dhcp-agent';
  readonly topic = AGENT_TOPICS.dhcp;
  protected readonly serveBase = AGENT_TOPICS.dhcp;
  readonly config: DhcpAgentConfig;
  readonly settings: DnsmasqSettings;
  /** Networks served after the last sync, with their DHCP port (tests and report_state read it). */
  networks = new Map<string, { network: NetworkInfo; port: PortInfo }>();
  /** Networks whose qdhcp namespace may exist on the host (served now, or found at start). */
  private known = new Set<string>();
  private firstSync = true;
  private fullPending = true;
  /** Served networks a cast said changed since the last pass (fetched again). */
  private changed = new Set<string>();
  /** Ports the casts since the last pass brought (null: deleted), per served network. */
  private portCasts = new Map<string, Map<string, PortInfo | null>>();

  constructor(opts: DhcpAgentOptions) {
    // Neutron's resync_interval is a retry delay after a failure; the base class's periodic
    // full resync (off unless set) is what would heal missed casts here.
    super({ ...configOptions(opts.config), ...opts });
    this.config = opts.config;
    const raw = opts.config.raw.DEFAULT ?? {};
    this.settings = {
      domain: raw.dns_domain?.trim() || 'openstacklocal',
      lease_time: leaseDuration(raw.dhcp_lease_duration),
      enable_isolated_metadata: opts.config.enable_isolated_metadata,
      force_metadata: opts.config.force_metadata,
      enable_metadata_network: opts.config.enable_metadata_network,
      extra_options: parseDnsmasqOptions(opts.config.dnsmasq_options, opts.config.dnsmasq_config_file || 'dnsmasq_config_file'),
      metadata_proxy_socket: opts.metadataProxySocket ?? metadataProxySocket(opts.config),
      integration_bridge: opts.integrationBridge ?? INTEGRATION_BRIDGE,
    };
  }

  protected configurations(): Record<string, unknown> {
    let subnets = 0;
    let ports = 0;
    for (const { network } of this.networks.values()) {
      subnets += dhcpSubnets(network).length;
      ports += network.ports.length;
    }
    return {
      dhcp_driver: 'neutron.agent.linux.dhcp.Dnsmasq',
      dhcp_lease_duration: this.settings.lease_time,
      log_agent_heartbeats: false,
      networks: this.networks.size,
      subnets,
      ports,
    };
  }

  /** Any request but a served network's update is a full pass. */
  override requestSync(): void {
    this.fullPending = true;
    super.requestSync();
  }

  protected override handlers() {
    const one = ({ network_id }: { network_id: string }) => {
      if (!this.networks.has(network_id)) return this.requestSync();
      this.changed.add(network_id);
      super.requestSync(this.gatherMs(0));
    };
    const port = (network_id: string, id: string, info: PortInfo | null | undefined) => {
      const served = this.networks.get(network_id);
      // Our own DHCP port (someone changed or deleted it): the network is fetched again.
      if (!served || info === undefined || id === served.port.id) return one({ network_id });
      let m = this.portCasts.get(network_id);
      if (!m) this.portCasts.set(network_id, (m = new Map()));
      m.set(id, info);
      super.requestSync(this.gatherMs(0));
    };
    return {
      network_update_end: one,
      network_delete_end: () => this.requestSync(),
      port_update_end: (a: { port_id: string; network_id: string; port?: PortInfo }) => port(a.network_id, a.port_id, a.port),
      port_delete_end: (a: { port_id: string; network_id: string }) => port(a.network_id, a.port_id, null),
    };
  }

  protected async sync(): Promise<void> {
    const full = this.fullPending || this.firstSync;
    const changed = this.changed;
    const casts = this.portCasts;
    this.fullPending = false;
    this.changed = new Set();
    this.portCasts = new Map();
    try {
      if (full) await this.fullPass();
      else if (!(await this.refresh(changed, casts))) await this.fullPass();
    } catch (err) {
      // What the casts said is fetched instead (a later cast may have said more meanwhile).
      for (const id of [...changed, ...casts.keys()]) this.changed.add(id);
      this.fullPending ||= full;
      throw err;
    }
  }

  /**
   * The networks a cast named, fetched alone, or with the ports casts brought put in; false
   * when one is no longer ours to serve as it was (a full pass decides).
   */
  private async refresh(ids: Set<string>, casts: Map<string, Map<string, PortInfo | null>>): Promise<boolean> {
    const served = new Map(this.networks);
    for (const [id, ports] of casts) {
      const have = served.get(id);
      if (!have) return false;
      const subnets = new Set(have.network.subnets.map((s) => s.id));
      // A port on a subnet the network did not have: the subnet is news too, fetch it all.
      if ([...ports.values()].some((p) => p?.fixed_ips.some((a) => !subnets.has(a.subnet_id)))) ids.add(id);
      else if (!ids.has(id)) served.set(id, await this.withDhcpPort(withPorts(have.network, ports)));
    }
    for (const id of ids) {
      const net = await this.call('get_network_info', { network_id: id });
      if (!net || !net.admin_state_up || !dhcpSubnets(net).length || !served.has(id)) return false;
      served.set(id, await this.withDhcpPort(net));
    }
    await this.apply(served);
    this.networks = served;
    return true;
  }

  private async fullPass(): Promise<void> {
    if (this.firstSync) {
      // Namespaces left by an earlier run: released below if the server no longer gives us their network.
      const current = await this.composer.current();
      for (const name of Object.keys(current.namespaces)) if (name.startsWith(DHCP_NS_PREFIX)) this.known.add(name.slice(DHCP_NS_PREFIX.length));
    }
    const active = await this.call('get_active_networks_info', { host: this.host });
    const served = new Map<string, { network: NetworkInfo; port: PortInfo }>();
    for (const net of active) {
      if (!net.admin_state_up || !dhcpSubnets(net).length) continue;
      served.set(net.id, await this.withDhcpPort(net));
    }
    await this.apply(served);

    // Gone from here (unscheduled, deleted, DHCP disabled): the port goes too.
    for (const id of this.known) {
      if (served.has(id)) continue;
      await this.call('release_dhcp_port', { network_id: id, device_id: dhcpDeviceId(id, this.host) });
      this.known.delete(id);
    }
    for (const id of served.keys()) this.known.add(id);
    this.networks = served;
    this.firstSync = false;
  }

  /** The 'dhcp' fragment for the served networks, applied. */
  private async apply(served: Map<string, { network: NetworkInfo; port: PortInfo }>): Promise<void> {
    let s = emptyHost();
    const bridge = this.settings.integration_bridge ?? INTEGRATION_BRIDGE;
    const others = this.composer.desired('dhcp').ovs.bridges[bridge];
    if (others) s = { ...s, ovs: { bridges: { [bridge]: portsOnly(others) } } };
    for (const { network, port } of served.values()) s = addDhcpNetwork(s, network, port, this.settings);
    if (!served.size) s = emptyHost();
    this.composer.setFragment('dhcp', s);
    await this.composer.reconcile();
  }

  /**
   * The network with its DHCP port for this host: the existing one, or a new one on every DHCP
   * subnet (then added to the network's ports, in a new object: what the server sent is frozen).
   */
  private async withDhcpPort(net: NetworkInfo): Promise<{ network: NetworkInfo; port: PortInfo }> {
    const deviceId = dhcpDeviceId(net.id, this.host);
    const have = net.ports.find((p) => p.device_id === deviceId && p.device_owner === DEVICE_OWNER.dhcp);
    if (have && have.binding_host_id === this.host) return { network: net, port: have };
    const port = await this.call('create_dhcp_port', { host: this.host, network_id: net.id, device_id: deviceId, fixed_ips: dhcpSubnets(net).map((s) => ({ subnet_id: s.id })) });
    const network = net.ports.some((p) => p.id === port.id) ? net : { ...net, ports: [...net.ports, port] };
    return { network, port };
  }
}

/** `net` with the ports casts brought in place of its own (null: gone), new ones at the end. */
function withPorts(net: NetworkInfo, ports: Map<string, PortInfo | null>): NetworkInfo {
  const left = new Map(ports);
  const out: PortInfo[] = [];
  for (const p of net.ports) {
    if (!left.has(p.id)) out.push(p);
    else {
      const now = left.get(p.id);
      left.delete(p.id);
      if (now) out.push(now);
    }
  }
  for (const p of left.values()) if (p) out.push(p);
  return { ...net, ports: out };
}

/**
 * The integration bridge as another owner defines it, reduced to what merges without
 * overriding them: the composer merges bridges field by field, so this fragment leaves the
 * bridge's own settings (and its local device) to the OVS agent and the host's setup.
 */
function portsOnly(b: OvsBridge): OvsBridge {
  return { name: b.name, ports: {}, flows: [] } as unknown as OvsBridge;
}

function leaseDuration(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return 86400;
  const n = Number(text.trim());
  if (!Number.isInteger(n) || (n < 1 && n !== -1)) throw new Error(`dhcp_lease_duration: '${text}' is not a number of seconds (or -1 for infinite)`);
  return n;
}
