// The OVS agent's OpenFlow tables (neutron_lib/plugins/ml2/ovs_constants.py, Zed), the dead
// VLAN, and the cookies dvrnet gives each role of flow so a dump can be read by role.

/** br-int tables. */
export const INT = {
  LOCAL_SWITCHING: 0,
  DVR_TO_SRC_MAC: 1,
  DVR_TO_SRC_MAC_PHYSICAL: 2,
  ARP_DVR_MAC_TO_DST_MAC: 3,
  ARP_DVR_MAC_TO_DST_MAC_PHYSICAL: 4,
  CANARY: 23,
  ARP_SPOOF: 24,
  MAC_SPOOF: 25,
  LOCAL_EGRESS: 30,
  PACKET_RATE_LIMIT: 59,
  TRANSIENT: 60,
} as const;

/** br-tun tables. */
export const TUN = {
  LOCAL_SWITCHING: 0,
  DVR_PROCESS: 1,
  PATCH_LV_TO_TUN: 2,
  GRE_TUN_TO_LV: 3,
  VXLAN_TUN_TO_LV: 4,
  DVR_NOT_LEARN: 9,
  LEARN_FROM_TUN: 10,
  UCAST_TO_TUN: 20,
  ARP_RESPONDER: 21,
  FLOOD_TO_TUN: 22,
} as const;

/** Physical bridge (br-ex, br-vlan) tables. */
export const PHYS = {
  LOCAL_SWITCHING: 0,
  DVR_PROCESS_PHYSICAL: 1,
  LOCAL_VLAN_TRANSLATION: 2,
  DVR_NOT_LEARN_PHYSICAL: 3,
} as const;

/** Ports of unknown or deleted Neutron ports (and admin-down ports) are parked here; br-int t0 drops it. */
export const DEAD_VLAN_TAG = 4095;
/** Local VLANs a network can get on a host's br-int. */
export const MIN_VLAN_TAG = 1;
export const MAX_VLAN_TAG = 4094;

/** Seconds a flow learned in br-tun table 10 lives (Neutron's learn hard_timeout). */
export const LEARN_HARD_TIMEOUT = 300;

/**
 * One cookie per role (Neutron draws one random cookie per agent run; dvrnet's are fixed so a
 * restarted agent writes the very same flows). `0x4e0` + role: "N"eutron, then the role.
 */
export const COOKIE = {
  /** The bridges' skeleton: table defaults, the patch/tunnel classification, learn(). */
  base: '0x4e01',
  /** Per network: tunnel id / physical VLAN <-> local VLAN. */
  localVlan: '0x4e02',
  /** l2population: unicast (t20), ARP responder (t21), flooding (t22) entries. */
  l2pop: '0x4e03',
  /** DVR: MAC rewrites, remote DVR MACs, gateway ARP guard. */
  dvr: '0x4e04',
  /** ARP and MAC anti-spoofing of ports with port security (br-int t0/t24/t25). */
  spoof: '0x4e05',
  /** What br-tun t10's learn() writes into t20 (live state, never in the desired state). */
  learned: '0x4e06',
} as const;

/** Prefix of device owners that are Neutron's own ports (no anti-spoofing for them). */
export const NETWORK_OWNER_PREFIX = 'network:';
