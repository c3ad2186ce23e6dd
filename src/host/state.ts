// The desired (or observed) network state of one host, as a plain value.
//
// Agents compute it, `diff` turns two of them into operations, drivers (emulated, linux)
// carry the operations out. It is JSON-safe on purpose (no Maps or bigints): it crosses
// process boundaries, is written to disk for debugging, and is compared by value. The one
// class is `ChunkList` (chunks.ts): the big unordered collections (flows, neighbours) may be
// held as the chunks they were built from, and are JSON as plain arrays.
//
// Field names follow the tools that realise them: OVSDB columns (`datapath_type`,
// `fail_mode`, `tag`, `external_ids`, `other_config`, `ofport_request`), `ovs-ofctl` flow
// syntax, `ip` (link/address/route/rule/neigh), `sysctl`, `iptables-restore`, `ipset` and
// dnsmasq options. Collections whose members have a name are records keyed by that name
// (the `name` field repeats the key so a value can travel alone; `validate` checks they
// agree). Collections without a natural name (routes, rules, neighbours, flows, addresses,
// ipset members) are arrays whose order carries no meaning: `canonicalize` sorts them.
//
// Defaults are spelled out rather than implied (route `table: 254`, `type: 'unicast'`), so
// two states that mean the same thing are equal as values. What the kernel or OVS creates
// by itself is not part of the state: `127.0.0.1/8` on `lo`, IPv6 link-local addresses,
// `proto kernel` routes and the local table's entries, the default `ip rule`s (0, 32766,
// 32767), the `iptables` built-in chains' empty default. A driver reading a host back
// leaves those out.

import type { Items } from './chunks.js';

/** `aa:bb:cc:dd:ee:ff`, lower case. */
export type Mac = string;
/** An IPv4 or IPv6 address without prefix length: `10.0.0.1`, `fe80::1`. */
export type Ip = string;
/** An address with prefix length, as `ip addr` writes it: `10.0.0.1/24`. */
export type Cidr = string;

// ---------------------------------------------------------------------------------------
// Open vSwitch

/**
 * An OVS bridge (OVSDB `Bridge` table). OVS creates the bridge's own "local" internal port
 * and Linux device with the bridge's name; that device appears in the root namespace's
 * `links` with kind `ovs-internal` (addresses such as the tunnel endpoint go there).
 */
export interface OvsBridge {
  name: string;
  /** `system` = kernel datapath; `netdev` = userspace datapath (no kernel module needed). */
  datapath_type: 'system' | 'netdev';
  /** `secure`: no flows means drop (Neutron's bridges); `standalone`: act as a learning switch. */
  fail_mode: 'secure' | 'standalone';
  /** OpenFlow versions, e.g. `['OpenFlow10', 'OpenFlow13']`; absent = OVS's default. */
  protocols?: string[];
  /** `Bridge.external_ids`, e.g. `bridge-id`. */
  external_ids?: Record<string, string>;
  /** `Bridge.other_config`, e.g. `mac-table-size`. */
  other_config?: Record<string, string>;
  /** Ports by name (OVS names ports and their single interface alike). */
  ports: Record<string, OvsPort>;
  /** The bridge's OpenFlow flows; keyed by (table, priority, match) as OVS keys them. */
  flows: Items<Flow>;
}

/** Columns shared by every kind of port (`Port` and its `Interface` in OVSDB). */
export interface OvsPortCommon {
  name: string;
  /** `Port.tag`: the access VLAN (0-4095); Neutron puts each network's local VLAN here on br-int. */
  tag?: number;
  /** `Interface.ofport_request`: the OpenFlow port number asked for (1-65279). */
  ofport_request?: number;
  /**
   * `Interface.external_ids`. Neutron's OVS agent and os-vif set `iface-id` (the Neutron
   * port id), `attached-mac`, `iface-status` (`active`) and `vm-uuid`.
   */
  external_ids?: Record<string, string>;
  /** `Port.other_config`. Neutron records `net_uuid`, `network_type`, `physical_network`, `segmentation_id`, `tag`. */
  other_config?: Record<string, string>;
}

/**
 * An internal port: OVS creates a Linux device of this name. Its Linux side (namespace,
 * MAC, MTU, addresses) is the `ovs-internal` link of the same name, in whichever namespace
 * it lives (Neutron's OVS interface driver moves `qr-`/`qg-`/`tap` internal ports into
 * router and DHCP namespaces).
 */
export interface OvsInternalPort extends OvsPortCommon {
  type: 'internal';
}

/** An existing Linux device (a veth end, a tap, a NIC) attached to the bridge; it must be a link in the root namespace. */
export interface OvsSystemPort extends OvsPortCommon {
  type: 'system';
}

/** One end of a patch pair between two bridges (`Interface.options:peer`). */
export interface OvsPatchPort extends OvsPortCommon {
  type: 'patch';
  peer: string;
}

/** A VXLAN or GRE tunnel port (`Interface.options`). */
export interface OvsTunnelPort extends OvsPortCommon {
  type: 'vxlan' | 'gre';
  remote_ip: Ip;
  local_ip?: Ip;
  /**
   * `options:key`: `flow` lets flows pick the VNI/GRE key (`set_tunnel`, `tun_id=`), which
   * is what Neutron uses (as `in_key=flow,out_key=flow`); a number fixes it.
   */
  key: 'flow' | number;
  /** `options:dst_port`; absent = 4789 for VXLAN. */
  dst_port?: number;
  /** Other `Interface.options` Neutron sets, e.g. `df_default`, `csum`, `tos`. */
  options?: Record<string, string>;
}

export type OvsPort = OvsInternalPort | OvsSystemPort | OvsPatchPort | OvsTunnelPort;
export type OvsPortType = OvsPort['type'];

/** `cookie=0x1f` as `ovs-ofctl` prints it: `0x` + lower-case hex, no leading zeros, at most 64 bits. */
export type Cookie = string;

/**
 * One OpenFlow flow. `match` and `actions` are `ovs-ofctl` text and the source of truth (the
 * same text goes to `ovs-ofctl add-flows` and to the emulator); table, priority and cookie
 * are kept apart because OVS identifies a flow by (table, priority, match) and Neutron owns
 * flows by cookie. `renderFlow` gives `table=0,priority=10,cookie=0x1,in_port=1,actions=NORMAL`.
 */
export interface Flow {
  /** 0-254. */
  table: number;
  /** 0-65535. */
  priority: number;
  cookie: Cookie;
  /** Comma-separated match fields without spaces, e.g. `in_port=patch-tun,dl_vlan=5`; `''` matches all. */
  match: string;
  /** The `actions=` value, e.g. `mod_vlan_vid:5,resubmit(,60)`. */
  actions: string;
}

/** What identifies a flow in a bridge, as OVS's strict matching does. */
export interface FlowKey {
  table: number;
  priority: number;
  match: string;
}

export interface OvsState {
  bridges: Record<string, OvsBridge>;
}

// ---------------------------------------------------------------------------------------
// Linux

/** Attributes every link has, as `ip link` shows them. */
export interface LinkCommon {
  name: string;
  /** Absent: whatever the kernel assigned. */
  mac?: Mac;
  /** Absent: the kernel's default for the kind (1500 for most). */
  mtu?: number;
  up: boolean;
  /** `ip link set X master BR`: a Linux bridge (kind `bridge`) in the same namespace. */
  master?: string;
  /** Addresses on the link, `ip addr add <cidr> dev <name>`; order carries no meaning. */
  addresses: Cidr[];
}

/** One end of a veth pair; the other end is a link of kind `veth` named `peer` in `peer_namespace`. */
export interface VethLink extends LinkCommon {
  kind: 'veth';
  peer: string;
  peer_namespace: string;
}

/**
 * Link kinds. The driver creates `veth`, `tap`, `bridge` and `dummy`. The others exist
 * before the state names them, and create/delete mean "configure"/"release":
 * `loopback` (`lo`, born with its namespace), `ovs-internal` (born with its OVS port or
 * bridge, then moved to its namespace) and `physical` (a NIC of the host, root namespace).
 */
export interface SimpleLink extends LinkCommon {
  kind: 'tap' | 'bridge' | 'dummy' | 'loopback' | 'ovs-internal' | 'physical';
}

export type Link = VethLink | SimpleLink;
export type LinkKind = Link['kind'];

/** `ip route` entry. Key (what `ip route replace` replaces): table, dst, metric. */
export interface Route {
  /** `default` or a CIDR with host bits clear: `10.0.0.0/24`. */
  dst: 'default' | Cidr;
  /** Next hop (`via`). */
  via?: Ip;
  /** Output device; required except for `blackhole`. */
  dev?: string;
  /** Routing table number: main = 254, local = 255, Neutron's FIP table = 16. */
  table: number;
  /** Preferred source address (`src`); must be an address of this namespace. */
  src?: Ip;
  /** Absent: the kernel decides (`link` without via, `global` with via). */
  scope?: 'global' | 'link' | 'host';
  /** Absent means 0. */
  metric?: number;
  type: 'unicast' | 'blackhole' | 'local';
}

/** `ip rule` entry. Neutron: `from 10.0.0.5 lookup 16 priority 32768`, `from all iif fpr-X lookup T priority T`. */
export interface Rule {
  priority: number;
  /** Source prefix (`from`); absent = `from all`. */
  from?: Cidr | Ip;
  to?: Cidr | Ip;
  /** Incoming device (`iif`), a link of this namespace. */
  iif?: string;
  table: number;
}

/** `ip neigh` entry, keyed by (dev, ip). Neutron's DVR router adds `permanent` ones on `qr-` devices. */
export interface Neighbour {
  dev: string;
  ip: Ip;
  lladdr: Mac;
  nud: 'permanent' | 'reachable';
}

export type IptablesTable = 'filter' | 'nat' | 'mangle' | 'raw';
export const IPTABLES_TABLES: readonly IptablesTable[] = ['raw', 'mangle', 'nat', 'filter'];

/** `ipset create <name> <type> family <family>` plus its members. */
export interface IpSet {
  /** At most 31 characters (IPSET_MAXNAMELEN 32 with the NUL). */
  name: string;
  type: 'hash:ip' | 'hash:net';
  family: 'inet' | 'inet6';
  /** Addresses (hash:ip) or CIDRs (hash:net); order carries no meaning. */
  members: string[];
}

/** A network namespace (`ip netns`). The root namespace has the name `''`. */
export interface Namespace {
  name: string;
  links: Record<string, Link>;
  routes: Route[];
  rules: Rule[];
  neighbours: Items<Neighbour>;
  /**
   * `sysctl` keys in dotted form and their values as text: `net.ipv4.ip_forward: '1'`,
   * `net.ipv4.conf.fg-1234.proxy_arp: '1'`, `net.bridge.bridge-nf-call-iptables: '1'`. A
   * per-device key (`net.ipv4.conf.<dev>.*`) names a link of this namespace (or `all`/`default`).
   */
  sysctls: Record<string, string>;
  /**
   * Per table, the whole `iptables-restore` input for that table: `*filter` ... `COMMIT`.
   * An absent table is unmanaged, which a driver realises as the empty table (built-in
   * chains with policy ACCEPT, no rules, no user chains).
   */
  iptables: Partial<Record<IptablesTable, string>>;
  ipsets: Record<string, IpSet>;
}

// ---------------------------------------------------------------------------------------
// Services that are part of the host's network: DHCP servers and metadata proxies

/** `--dhcp-range=set:<tag>,<network>,static,<netmask>,<lease>`: Neutron's ranges are `static` (only listed hosts get leases). */
export interface DhcpRange {
  /** dnsmasq tag, Neutron's `subnet-<subnet id>`; options with the same tag apply to it. */
  tag: string;
  /** The subnet, e.g. `192.168.1.0/24`. */
  cidr: Cidr;
}

/** `--dhcp-hostsfile` line: `<mac>,<hostname>.<domain>,<ip>`. */
export interface DhcpHost {
  mac: Mac;
  ip: Ip;
  /** Neutron's `host-192-168-1-5` unless the port has a DNS name. */
  hostname: string;
}

/**
 * `--dhcp-optsfile` line: `tag:<tag>,option:<n>,<values>`, or `dhcp-option-force=` when
 * `force`. Neutron writes router (3), dns-server (6), classless-static-route (121, and 249
 * for Windows) per subnet; the MTU (26) comes from `dnsmasq_config_file`.
 */
export interface DhcpOption {
  tag?: string;
  /** The option number (1-254). */
  option: number;
  /** Comma-separated by dnsmasq: `['192.168.1.1']`, `['169.254.169.254/32', '192.168.1.2', '0.0.0.0/0', '192.168.1.1']`. */
  values: string[];
  force?: boolean;
}

/** One dnsmasq, as Neutron's Dnsmasq driver runs it: one per network, in `qdhcp-<network id>`, bound to its tap device. */
export interface DhcpServer {
  /** Stable identity; Neutron's is the network id. */
  id: string;
  namespace: string;
  /** The device it listens on (`--interface`), a link of `namespace`. */
  interface: string;
  /** `--domain` (Neutron's `dns_domain`, default `openstacklocal`). */
  domain: string;
  /** Seconds (`dhcp_lease_duration`, default 86400); -1 = infinite. */
  lease_time: number;
  ranges: DhcpRange[];
  hosts: DhcpHost[];
  options: DhcpOption[];
}

/**
 * A metadata proxy: HTTP on `listen_ip:listen_port` inside `namespace`, forwarded to
 * `upstream` with `X-Neutron-Router-ID` or `X-Neutron-Network-ID` added (Neutron runs
 * haproxy on 9697 in `qrouter-` namespaces behind a REDIRECT of 169.254.169.254:80, and on
 * 169.254.169.254:80 in `qdhcp-` namespaces for isolated networks).
 */
export interface MetadataProxy {
  id: string;
  namespace: string;
  listen_ip: Ip;
  listen_port: number;
  /** Where requests go: the metadata agent's UNIX socket path or an `http://` URL. */
  upstream: string;
  router_id?: string;
  network_id?: string;
}

// ---------------------------------------------------------------------------------------

export interface HostState {
  ovs: OvsState;
  /** By name; `''` (the root namespace) is always present. */
  namespaces: Record<string, Namespace>;
  dhcp: Record<string, DhcpServer>;
  metadata: Record<string, MetadataProxy>;
}

export const ROOT_NS = '';
export const MAIN_TABLE = 254;
export const LOCAL_TABLE = 255;
