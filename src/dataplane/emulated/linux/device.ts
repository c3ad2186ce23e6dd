// Network devices of the emulated Linux host. A device lives in one namespace and is
// attached to at most one "master": a Linux bridge (as a bridge port) or Open vSwitch (as a
// system or internal port). What happens when it sends a frame depends on its kind: a veth
// or tap hands the frame to its peer, a physical NIC to its segment, an OVS internal port
// to its OVS bridge, a bridge device to its own bridge.

import type { Mac } from '../packet.js';
import type { Cidr } from '../addr.js';
import type { Namespace } from './namespace.js';
import type { LinuxBridge } from './bridge.js';
import type { Segment } from '../segment.js';
import type { Neighbour } from './neigh.js';
import { IntMap } from '../../../common/intmap.js';

export type DeviceKind = 'loopback' | 'veth' | 'tap' | 'bridge' | 'ovs-internal' | 'physical' | 'dummy';

export interface IfAddr {
  ip: number;
  len: number;
  /** The subnet of the address (for the connected route and source selection). */
  subnet: Cidr;
  text: string; // '192.168.1.1/24'
}

/** How a device is attached to an OVS bridge (the vswitch keeps the port's other facts). */
export interface OvsAttachment {
  bridge: string;
  port: string;
}

export class Device {
  up = false;
  mtu = 1500;
  addrs: IfAddr[] = [];
  /** veth/tap: the other end. */
  peer?: Device;
  /** Set when the device is a port of a Linux bridge. */
  master?: LinuxBridge;
  /** Set when the device is an OVS port (system port, or the internal port itself). */
  ovs?: OvsAttachment;
  /** kind 'physical': the physical segment it is plugged into. */
  segment?: Segment;
  /** kind 'bridge': the bridge this device is the local port of. */
  bridge?: LinuxBridge;
  /**
   * Neighbour (ARP) table of this device, by IPv4 address as a number: flat arrays, not a Map
   * (a router's qr- device holds an entry for each port of its subnet, on every host).
   */
  neigh = new IntMap<Neighbour>();
  /** Per-interface sysctls that the model honours (net.ipv4.conf.<dev>.*). */
  proxyArp = false;
  /**
   * Devices that exist without being created (lo, NICs) are part of the host state only
   * once a state configured them; the driver sets this then.
   */
  managed = false;

  constructor(
    public name: string,
    public kind: DeviceKind,
    public mac: Mac,
    public ns: Namespace,
  ) {
    if (!/^[A-Za-z0-9_.:@+-]{1,15}$/.test(name)) throw new Error(`Invalid device name '${name}' (1-15 characters, no '/' or spaces)`);
  }

  /** The address used as source for packets sent on this device to `dst` (same subnet first). */
  sourceFor(dst: number): IfAddr | undefined {
    for (const a of this.addrs) if (((dst & a.subnet.mask) >>> 0) === a.subnet.net) return a;
    return this.addrs[0];
  }

  describe(): string {
    return `${this.name}${this.ns.name ? `@${this.ns.name}` : ''}`;
  }
}
