// OVSDB spellings of the state's OVS values, for drivers and for comparing columns.
import type { BridgeSpec, LinkSpec } from './ops.js';
import type { Link, OvsBridge, OvsPort } from './state.js';

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
