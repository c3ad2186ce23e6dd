// OVSDB spellings of the state's OVS values, for drivers and for comparing columns.
import type { BridgeSpec, LinkSpec } from './ops.js';
import type { HostState, Link, OvsBridge, OvsPort } from './state.js';

/** `Interface.type` as OVSDB spells it (`''` is a system port). */
export function interfaceType(p: OvsPort): string {
  return p.type === 'system' ? '' : p.type;
}

/** `Interface.options`: `peer` for patch ports; `remote_ip`, `local_ip`, `key`, `dst_port` and extras for tunnels. */
export function interfaceOptions(p: OvsPort): Record<string, string> {
  if (p.type === 'patch') return { peer: p.peer };
  if (p.type === 'vxlan' || p.type === 'gre') {
    const o: Record<string, string> = { ...(p.options ?? {}), remote_ip: p.remote_ip, key: String(p.key) };
    if (p.local_ip !== undefined) o.local_ip = p.local_ip;
    if (p.dst_port !== undefined) o.dst_port = String(p.dst_port);
    return o;
  }
  return {};
}

export function bridgeSpec(b: OvsBridge): BridgeSpec {
  const { ports: _ports, flows: _flows, ...spec } = b;
  return spec;
}

export function linkSpec(l: Link): LinkSpec {
  const { addresses: _addresses, ...spec } = l;
  return spec;
}

/** A bridge's internal ports (each has a Linux device) and its ports whose checks look at the rest of the host (system: a root-namespace device; patch: a peer). */
export interface PortKinds {
  internal: string[];
  related: OvsPort[];
}

const kindsMemo = new WeakMap<object, PortKinds>();

/** `portKinds` of a ports record, computed once per record (agents keep br-tun's, a tunnel per peer host, while unchanged). */
export function portKinds(ports: Record<string, OvsPort>): PortKinds {
  let k = kindsMemo.get(ports);
  if (!k) {
    k = { internal: [], related: [] };
    for (const port of Object.values(ports)) {
      if (port.type === 'internal') k.internal.push(port.name);
      else if (port.type === 'system' || port.type === 'patch') k.related.push(port);
    }
    kindsMemo.set(ports, k);
  }
  return k;
}

/** The bridge holding port `name`: looked up rather than indexed, as a host has a handful of bridges and br-tun a port per peer. */
export function portAt(s: HostState, name: string): { bridge: string; port: OvsPort } | undefined {
  const bridges = s.ovs.bridges;
  for (const b in bridges) {
    const port = bridges[b].ports[name];
    if (port) return { bridge: b, port };
  }
  return undefined;
}
