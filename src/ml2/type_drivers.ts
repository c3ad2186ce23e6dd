// ML2 type drivers: which segments exist and who may have them. A segment is
// (network_type, physical_network, segmentation_id); a row in ml2_segment_allocations marks
// it taken, and the table's primary key guarantees it is never handed out twice. Flat
// segments use segmentation_id 0, so "one flat network per physnet" is the same rule.

import type { NetworkType, ServerConfig } from '../config/server.js';
import { lockDomain, lowestFree, type Tx } from '../db/tx.js';
import type { Db } from '../db/connect.js';
import { Faults } from '../common/errors.js';

export interface Segment {
  network_type: NetworkType;
  physical_network: string | null;
  segmentation_id: number | null;
}

/** Encapsulation overhead Neutron subtracts from the physical MTU (IPv4 outer header). */
const OVERHEAD: Record<NetworkType, number> = { flat: 0, vlan: 0, gre: 42, vxlan: 50 };
const MAX_ID: Record<NetworkType, number> = { flat: 0, vlan: 4094, gre: 2 ** 32 - 1, vxlan: 2 ** 24 - 1 };

export class TypeManager {
  constructor(
    private readonly db: Db,
    private readonly conf: ServerConfig,
  ) {}

  mtu(seg: Segment): number {
    const phys = this.conf.ml2.path_mtu > 0 ? this.conf.ml2.path_mtu : this.conf.global_physnet_mtu;
    return phys - OVERHEAD[seg.network_type];
  }

  /** Check an admin's provider:* request against type_drivers, flat_networks and VLAN ranges. */
  validateProvider(seg: Segment): void {
    const { network_type: type, physical_network: physnet, segmentation_id: id } = seg;
    const bad = (reason: string) => Faults.invalidInput(reason);
    if (!this.conf.ml2.type_drivers.includes(type)) throw bad(`network_type value '${type}' not supported`);
    if (type === 'flat') {
      if (id !== null) throw bad('segmentation_id specified for flat provider network');
      if (!physnet) throw bad('physical_network required for flat provider network');
      const flat = this.conf.ml2_type_flat.flat_networks;
      if (!flat.includes('*') && !flat.includes(physnet))
        throw bad(`physical_network '${physnet}' unknown for flat provider network`);
    } else if (type === 'vlan') {
      if (!physnet) throw bad('physical_network required for VLAN provider network');
      if (!this.conf.ml2_type_vlan.network_vlan_ranges.some((r) => r.physnet === physnet))
        throw bad(`physical_network '${physnet}' unknown for VLAN provider network`);
      if (id !== null && (id < 1 || id > 4094)) throw bad(`segmentation_id out of range (1 through 4094)`);
    } else {
      if (physnet) throw bad(`provider:physical_network specified for ${type.toUpperCase()} network`);
      if (id !== null && (id < 1 || id > MAX_ID[type]))
        throw bad(`${type.toUpperCase()} ID ${id} out of range (1 through ${MAX_ID[type]})`);
    }
  }

  private ranges(type: NetworkType, physnet: string | null): Array<[number, number]> {
    switch (type) {
      case 'flat':
        return [[0, 0]];
      case 'vlan':
        return this.conf.ml2_type_vlan.network_vlan_ranges
          .filter((r) => r.physnet === physnet && r.min !== undefined)
          .map((r) => [r.min!, r.max!]);
      case 'gre':
        return this.conf.ml2_type_gre.tunnel_id_ranges;
      case 'vxlan':
        return this.conf.ml2_type_vxlan.vni_ranges;
    }
  }

  /** A project network's segment: the first tenant type with a free id, lowest id first. */
  async allocateTenantSegment(tx: Tx, networkId: string): Promise<Segment> {
    await lockDomain(this.db, tx, 'ml2_segments');
    for (const type of this.conf.ml2.tenant_network_types) {
      if (type === 'flat') continue; // Neutron's flat driver never allocates project networks
      const physnets =
        type === 'vlan'
          ? [...new Set(this.conf.ml2_type_vlan.network_vlan_ranges.filter((r) => r.min !== undefined).map((r) => r.physnet))]
          : [null];
      for (const physnet of physnets) {
        const seg = await this.takeFromRanges(tx, networkId, type, physnet);
        if (seg) return seg;
      }
    }
    throw Faults.noNetworkAvailable();
  }

  /** An admin's provider network: take exactly the requested id, or the lowest free in range. */
  async reserveProviderSegment(tx: Tx, networkId: string, seg: Segment): Promise<Segment> {
    await lockDomain(this.db, tx, 'ml2_segments');
    const physnet = seg.physical_network ?? '';
    const id = seg.network_type === 'flat' ? 0 : seg.segmentation_id;
    if (id === null) {
      const got = await this.takeFromRanges(tx, networkId, seg.network_type, seg.physical_network);
      if (!got) throw Faults.noNetworkAvailable();
      return got;
    }
    const taken = await tx
      .selectFrom('ml2_segment_allocations')
      .select('network_id')
      .where('network_type', '=', seg.network_type)
      .where('physical_network', '=', physnet)
      .where('segmentation_id', '=', id)
      .executeTakeFirst();
    if (taken) throw this.inUse(seg.network_type, physnet, id);
    await tx
      .insertInto('ml2_segment_allocations')
      .values({ network_type: seg.network_type, physical_network: physnet, segmentation_id: id, network_id: networkId })
      .execute();
    return { ...seg, segmentation_id: seg.network_type === 'flat' ? null : id };
  }

  private inUse(type: NetworkType, physnet: string, id: number) {
    if (type === 'flat') return Faults.flatNetworkInUse(physnet);
    if (type === 'vlan') return Faults.vlanIdInUse(id, physnet);
    return Faults.tunnelIdInUse(id);
  }

  private async takeFromRanges(
    tx: Tx,
    networkId: string,
    type: NetworkType,
    physnet: string | null,
  ): Promise<Segment | undefined> {
    const scope = { network_type: type, physical_network: physnet ?? '' };
    for (const [min, max] of this.ranges(type, physnet)) {
      const id = await lowestFree(tx, 'ml2_segment_allocations', 'segmentation_id', scope, min, max);
      if (id === undefined) continue;
      await tx.insertInto('ml2_segment_allocations').values({ ...scope, segmentation_id: id, network_id: networkId }).execute();
      return { network_type: type, physical_network: physnet, segmentation_id: type === 'flat' ? null : id };
    }
    return undefined;
  }

  async release(tx: Tx, networkId: string): Promise<void> {
    await tx.deleteFrom('ml2_segment_allocations').where('network_id', '=', networkId).execute();
  }
}
