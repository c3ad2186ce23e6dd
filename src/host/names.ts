// The one place where device, namespace, port, table, rule-priority, ipset and chain names
// are built, the way Neutron builds them, so an operator who knows Neutron recognises every
// name on a dvrnet host. Nothing else in dvrnet concatenates a prefix and an id.
//
// Sources: neutron-lib `constants.DEVICE_NAME_MAX_LEN` (15) and Neutron's `LINUX_DEV_LEN`
// (14); `plugins.utils.get_interface_name` (hashing long names); the L3 agent's
// `dvr_fip_ns.py`/`dvr_local_router.py`/`dvr_snat_ns.py`; the OVS agent's tunnel port
// naming; `agent/linux/ipset_manager.py` and `iptables_manager.py`.
import { createHash } from 'node:crypto';
import { ipv4ToInt, isIpv4 } from './ip.js';

/** IFNAMSIZ (16) minus the terminating NUL: the longest Linux device name. */
export const DEVICE_NAME_MAX_LEN = 15;
/** Neutron cuts prefix + id to 14 characters (`LINUX_DEV_LEN`), one short of the kernel's limit. */
export const LINUX_DEV_LEN = 14;
/** Characters of SHA-1 hex that `get_interface_name` keeps when it shortens a long name. */
export const INTERFACE_HASH_LEN = 6;

// Device prefixes (Neutron's `*_DEV_PREFIX` constants and os-vif's hybrid plug).
export const ROUTER_INTERFACE_PREFIX = 'qr-';
export const ROUTER_GATEWAY_PREFIX = 'qg-';
export const SNAT_INTERFACE_PREFIX = 'sg-';
export const FIP_GATEWAY_PREFIX = 'fg-';
export const HA_INTERFACE_PREFIX = 'ha-';
export const TAP_PREFIX = 'tap';
export const HYBRID_BRIDGE_PREFIX = 'qbr';
export const HYBRID_VETH_BRIDGE_PREFIX = 'qvb';
export const HYBRID_VETH_OVS_PREFIX = 'qvo';
export const ROUTER_TO_FIP_PREFIX = 'rfp-';
export const FIP_TO_ROUTER_PREFIX = 'fpr-';

// Namespace prefixes.
export const ROUTER_NS_PREFIX = 'qrouter-';
export const SNAT_NS_PREFIX = 'snat-';
export const FIP_NS_PREFIX = 'fip-';
export const DHCP_NS_PREFIX = 'qdhcp-';

// Bridges and patch ports of the OVS agent.
export const INTEGRATION_BRIDGE = 'br-int';
export const TUNNEL_BRIDGE = 'br-tun';
export const PATCH_INT = 'patch-int'; // on br-tun, towards br-int
export const PATCH_TUN = 'patch-tun'; // on br-int, towards br-tun
export const PEER_INTEGRATION_PREFIX = 'int-';
export const PEER_PHYSICAL_PREFIX = 'phy-';

function portDevice(prefix: string, id: string): string {
  if (!id) throw new Error(`Empty id for a "${prefix}" device name`);
  return (prefix + id).slice(0, LINUX_DEV_LEN);
}

/** `qr-` + port id[:11]: a router interface in `qrouter-` (DVR: same IP and MAC on every host). */
export const routerInterfaceDevice = (portId: string) => portDevice(ROUTER_INTERFACE_PREFIX, portId);
/** `qg-` + port id[:11]: a router's external gateway port (in `snat-` for DVR). */
export const routerGatewayDevice = (portId: string) => portDevice(ROUTER_GATEWAY_PREFIX, portId);
/** `sg-` + port id[:11]: a DVR router's centralized-SNAT port in `snat-`. */
export const snatDevice = (portId: string) => portDevice(SNAT_INTERFACE_PREFIX, portId);
/** `fg-` + port id[:11]: the floating-IP agent gateway port in `fip-`. */
export const fipGatewayDevice = (portId: string) => portDevice(FIP_GATEWAY_PREFIX, portId);
/** `ha-` + port id[:11]: an HA router's keepalived port. */
export const haDevice = (portId: string) => portDevice(HA_INTERFACE_PREFIX, portId);
/** `tap` + port id[:11]: an instance's VIF, or the DHCP port in `qdhcp-`. */
export const tapDevice = (portId: string) => portDevice(TAP_PREFIX, portId);
/** `qbr` + port id[:11]: the per-port Linux bridge of the hybrid iptables firewall. */
export const hybridBridge = (portId: string) => portDevice(HYBRID_BRIDGE_PREFIX, portId);
/** `qvb` + port id[:11]: the veth end on the `qbr` bridge. */
export const hybridVethBridgeEnd = (portId: string) => portDevice(HYBRID_VETH_BRIDGE_PREFIX, portId);
/** `qvo` + port id[:11]: the veth end on br-int. */
export const hybridVethOvsEnd = (portId: string) => portDevice(HYBRID_VETH_OVS_PREFIX, portId);

function routerDevice(prefix: string, routerId: string): string {
  if (!routerId) throw new Error(`Empty router id for a "${prefix}" device name`);
  return prefix + routerId.slice(0, 10);
}
/** `rfp-` + router id[:10]: the qrouter end of the veth to the fip namespace. */
export const routerToFipDevice = (routerId: string) => routerDevice(ROUTER_TO_FIP_PREFIX, routerId);
/** `fpr-` + router id[:10]: the fip end of that veth. */
export const fipToRouterDevice = (routerId: string) => routerDevice(FIP_TO_ROUTER_PREFIX, routerId);

function ns(prefix: string, id: string): string {
  if (!id) throw new Error(`Empty id for a "${prefix}" namespace name`);
  return prefix + id;
}
export const routerNamespace = (routerId: string) => ns(ROUTER_NS_PREFIX, routerId);
export const snatNamespace = (routerId: string) => ns(SNAT_NS_PREFIX, routerId);
export const fipNamespace = (externalNetworkId: string) => ns(FIP_NS_PREFIX, externalNetworkId);
export const dhcpNamespace = (networkId: string) => ns(DHCP_NS_PREFIX, networkId);

/**
 * Neutron's `get_interface_name(name, prefix, max_len)`: prefix + name when it fits,
 * otherwise prefix + the start of name + the first 6 hex digits of SHA-1(name), so two long
 * names that share a start still differ.
 */
export function interfaceName(name: string, prefix = '', maxLen = DEVICE_NAME_MAX_LEN): string {
  const requested = prefix + name;
  if (requested.length <= maxLen) return requested;
  if (prefix.length + INTERFACE_HASH_LEN > maxLen) {
    throw new Error(`Prefix "${prefix}" too long for an interface name of at most ${maxLen} characters`);
  }
  const keep = maxLen - prefix.length - INTERFACE_HASH_LEN;
  const hash = createHash('sha1').update(name, 'utf8').digest('hex').slice(0, INTERFACE_HASH_LEN);
  return prefix + name.slice(0, keep) + hash;
}

/** On br-int, the patch port towards a physical bridge: `int-br-ex`. */
export const intToPhysPatch = (physBridge: string) => interfaceName(physBridge, PEER_INTEGRATION_PREFIX);
/** On a physical bridge, the patch port towards br-int: `phy-br-ex`. */
export const physToIntPatch = (physBridge: string) => interfaceName(physBridge, PEER_PHYSICAL_PREFIX);

/**
 * A tunnel port on br-tun: `<type>-<remote IPv4 as 8 hex digits>`, e.g. `vxlan-0a000102` for
 * 10.0.1.2 (the OVS agent's `get_tunnel_name`; dvrnet's tunnel network is IPv4).
 */
export function tunnelPortName(type: 'vxlan' | 'gre', remoteIp: string): string {
  if (!isIpv4(remoteIp)) throw new Error(`Tunnel remote_ip "${remoteIp}" is not an IPv4 address`);
  return `${type}-${ipv4ToInt(remoteIp).toString(16).padStart(8, '0')}`;
}

// Routing tables and rule priorities of the DVR L3 agent.

/** qrouter table holding `default via <fpr IP> dev rfp-X` (`FIP_RT_TBL`). */
export const FIP_RT_TBL = 16;
/** Per-floating-IP `ip rule from <fixed ip> lookup 16` priorities come from [32768, 72768). */
export const FIP_PR_START = 32768;
export const FIP_PR_END = FIP_PR_START + 40000;
/** Address-scope fast exit `from <subnet> lookup 16 priority 80000`. */
export const FAST_PATH_EXIT_PR = 80000;
/** Link-local pool for the rfp/fpr /31 pairs (`DVR_FIP_LL_CIDR`). */
export const DVR_FIP_LL_CIDR = '169.254.64.0/18';

/**
 * The table and rule priority that steer a subnet's traffic to the central SNAT port: the
 * integer value of the router interface's IPv4 address (10.0.0.1 -> 167772161).
 */
export function snatRedirectTable(routerInterfaceIp: string): number {
  return ipv4ToInt(routerInterfaceIp);
}

/** In the fip namespace, the per-router table (and rule priority) is the integer of the fpr address. */
export function fipRouterTable(fprIp: string): number {
  return ipv4ToInt(fprIp);
}

// Metadata.
export const METADATA_IP = '169.254.169.254';
/** haproxy's port inside qrouter namespaces, behind `REDIRECT --to-ports 9697`. */
export const METADATA_PROXY_PORT = 9697;

// ipsets and iptables chains of the hybrid firewall.

/** `ipset` names are cut to 29 so the swap set (`-n` suffix) still fits in 31. */
export const IPSET_NAME_MAX_LEN = 29;
export const IPSET_SWAP_SUFFIX = '-n';

/** The ipset of a security group's member addresses: `NIPv4` + sg id, cut to 29. */
export function securityGroupIpset(sgId: string, ethertype: 'IPv4' | 'IPv6'): string {
  return ('N' + ethertype + sgId).slice(0, IPSET_NAME_MAX_LEN);
}

/** iptables chain names are at most 28 characters. */
export const MAX_CHAIN_LEN = 28;
/** Neutron wraps its chains with the binary name cut to 16 characters, a dash and at most 11 more. */
export const MAX_CHAIN_LEN_WRAP = 11;
export const OVS_AGENT_CHAIN_PREFIX = 'neutron-openvswi';
export const L3_AGENT_CHAIN_PREFIX = 'neutron-l3-agent';

/** `neutron-l3-agent-snat`, `neutron-openvswi-sg-chain`: an agent's wrapped chain. */
export function wrappedChain(agentPrefix: string, chain: string): string {
  return `${agentPrefix}-${chain.slice(0, MAX_CHAIN_LEN_WRAP)}`;
}

/**
 * The hybrid firewall's per-port chain: `i` (to the instance), `o` (from it) or `s` (its
 * anti-spoofing) + port id, cut to 11, e.g. `neutron-openvswi-i1234567890`.
 */
export function portChain(direction: 'ingress' | 'egress' | 'spoof', portId: string): string {
  const letter = direction === 'ingress' ? 'i' : direction === 'egress' ? 'o' : 's';
  return wrappedChain(OVS_AGENT_CHAIN_PREFIX, letter + portId);
}
