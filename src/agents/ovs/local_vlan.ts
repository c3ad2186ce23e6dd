// Local VLANs: each network with ports on this host gets a VLAN id on br-int, chosen here
// and meaningful only here. A restarted agent must give every network the VLAN it already
// has (the ports are tagged with it and other hosts' flows do not care, but this host's
// flows and tags would all change): like Neutron's `_restore_local_vlan_map`, the map is
// recovered from the ports' `other_config` (net_uuid, tag) as OVSDB holds them. A new
// network takes its segmentation id when that is free (Neutron takes any free id): hosts
// then agree on it, which an operator reading flows across hosts appreciates, and the
// emulated cloud shares one parse of a flow text among all of them.
import type { HostState } from '../../host/state.js';
import { DEAD_VLAN_TAG, MAX_VLAN_TAG, MIN_VLAN_TAG } from './constants.js';

export class LocalVlanMap {
  private readonly byNet = new Map<string, number>();
  private readonly used = new Set<number>();
  /** Lowest id that may be free (ids below it are taken). */
  private next = MIN_VLAN_TAG;

  get(netId: string): number | undefined {
    return this.byNet.get(netId);
  }

  entries(): IterableIterator<[string, number]> {
    return this.byNet.entries();
  }

  get size(): number {
    return this.byNet.size;
  }

  /** Take over the VLANs recorded on a bridge's ports (first one wins when they disagree). */
  restore(state: HostState, bridge: string): void {
    const ports = state.ovs.bridges[bridge]?.ports ?? {};
    for (const p of Object.values(ports)) {
      const net = p.other_config?.net_uuid;
      const tag = Number(p.other_config?.tag ?? p.tag);
      if (!net || !Number.isInteger(tag) || tag < MIN_VLAN_TAG || tag > MAX_VLAN_TAG || tag === DEAD_VLAN_TAG) continue;
      if (this.byNet.has(net) || this.used.has(tag)) continue;
      this.byNet.set(net, tag);
      this.used.add(tag);
    }
  }

  /**
   * The network's VLAN: `preferred` when it is free (the agent offers the segmentation id,
   * so hosts agree on a network's local VLAN: one flow text on every host, and a number an
   * operator recognises), else the lowest free one.
   */
  allocate(netId: string, preferred?: number): number {
    const have = this.byNet.get(netId);
    if (have !== undefined) return have;
    if (preferred !== undefined && Number.isInteger(preferred) && preferred >= MIN_VLAN_TAG && preferred <= MAX_VLAN_TAG && preferred !== DEAD_VLAN_TAG && !this.used.has(preferred)) {
      this.byNet.set(netId, preferred);
      this.used.add(preferred);
      return preferred;
    }
    while (this.used.has(this.next)) this.next++;
    if (this.next > MAX_VLAN_TAG) throw new Error(`No free local VLAN for network ${netId}: all ${MAX_VLAN_TAG} are in use on this host`);
    const v = this.next++;
    this.byNet.set(netId, v);
    this.used.add(v);
    return v;
  }

  /** Give back the VLANs of networks that no longer have ports here. */
  retain(netIds: Set<string>): void {
    for (const [net, v] of this.byNet) {
      if (netIds.has(net)) continue;
      this.byNet.delete(net);
      this.used.delete(v);
      if (v < this.next) this.next = v;
    }
  }
}
