// The device_id of a DHCP agent's port, as Neutron builds it
// (`common.utils.get_dhcp_agent_device_id`): `dhcp` + the name-based (version 5) UUID of the
// host's short name in the DNS namespace + `-` + the network id. The same host always gets
// the same id, so a restarted agent finds (and reuses) its port.

import { createHash } from 'node:crypto';

/** RFC 4122 namespace for DNS names (Python's `uuid.NAMESPACE_DNS`). */
export const NAMESPACE_DNS = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';

/** RFC 4122 version 5 (SHA-1, name-based) UUID, as Python's `uuid.uuid5`. */
export function uuid5(namespace: string, name: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  if (ns.length !== 16) throw new Error(`Not a UUID: '${namespace}'`);
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest().subarray(0, 16);
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function dhcpDeviceId(networkId: string, host: string): string {
  const short = host.split('.')[0];
  return `dhcp${uuid5(NAMESPACE_DNS, short)}-${networkId}`;
}
