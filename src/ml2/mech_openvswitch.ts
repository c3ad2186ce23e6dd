// The openvswitch mechanism driver's port binding: a port binds to binding:host_id when an
// alive OVS agent there can reach the network's segment (a bridge mapping for its physical
// network, or its tunnel type). Hybrid plugging (tap -> qbr -> qvb/qvo) because the
// firewall is the iptables one, so vif_details say port_filter and ovs_hybrid_plug.

import type { Tx } from '../db/tx.js';

export interface PortBinding {
  vif_type: string;
  vif_details: Record<string, unknown>;
}

export interface BindRequest {
  id: string;
  network_id: string;
  host: string;
  vnic_type: string;
  device_owner: string;
}

/** How ML2 binds a port to a host; called inside the port's transaction. */
export interface PortBinder {
  bind(tx: Tx, port: BindRequest): Promise<PortBinding>;
}

export const BINDING_FAILED: PortBinding = { vif_type: 'binding_failed', vif_details: {} };
export const UNBOUND: PortBinding = { vif_type: 'unbound', vif_details: {} };

/** The OVS agent facts binding needs: its bridge mappings and tunnel types. */
export interface OvsAgentFacts {
  bridge_mappings: Record<string, string>;
  tunnel_types: string[];
  datapath_type?: string;
  integration_bridge?: string;
}

export class OpenvswitchMechanismDriver implements PortBinder {
  constructor(private readonly ovsAgentsOn: (tx: Tx, host: string) => Promise<OvsAgentFacts[]>) {}

  async bind(tx: Tx, port: BindRequest): Promise<PortBinding> {
    if (port.vnic_type !== 'normal') return BINDING_FAILED;
    const seg = await tx
      .selectFrom('networksegments')
      .selectAll()
      .where('network_id', '=', port.network_id)
      .orderBy('segment_index')
      .executeTakeFirst();
    if (!seg) return BINDING_FAILED;
    for (const agent of await this.ovsAgentsOn(tx, port.host)) {
      const reachable =
        seg.network_type === 'flat' || seg.network_type === 'vlan'
          ? seg.physical_network in (agent.bridge_mappings ?? {})
          : (agent.tunnel_types ?? []).includes(seg.network_type);
      if (!reachable) continue;
      return {
        vif_type: 'ovs',
        vif_details: {
          port_filter: true,
          ovs_hybrid_plug: true,
          datapath_type: agent.datapath_type ?? 'system',
          bridge_name: agent.integration_bridge ?? 'br-int',
          connectivity: 'l2',
        },
      };
    }
    return BINDING_FAILED;
  }
}
