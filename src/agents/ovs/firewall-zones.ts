// Conntrack zones of the hybrid firewall (ip_conntrack.IpConntrackManager with
// zone_per_port): every filtered port gets its own zone from 4097 up, so two instances on
// one host with the same addresses (overlapping projects) never share connections. A zone,
// once given, stays with the port; a new port takes one above the highest in use, and only
// when 65535 is reached are the gaps of removed ports searched.

import { LINUX_DEV_LEN } from '../../host/names.js';

export const ZONE_START = 4097;
export const MAX_CONNTRACK_ZONES = 65535;
/** `LINUX_DEV_PREFIX_LEN`: the `tap`/`qvb` prefix in front of the port id in a device name. */
const DEV_PREFIX_LEN = 3;

/**
 * The zone map's key for a port: the part of its id that device names carry (11
 * characters), the only part a host's rules show (`--physdev-in qvb<11>`).
 */
export function zoneKey(portId: string): string {
  return portId.slice(0, LINUX_DEV_LEN - DEV_PREFIX_LEN);
}

/** `_find_open_zone`: above the highest zone in use; at the ceiling, the lowest gap. */
function openZone(used: Iterable<number>): number | undefined {
  const zones = [...new Set(used)].sort((a, b) => a - b);
  if (!zones.length) return ZONE_START;
  const last = zones[zones.length - 1];
  if (last < MAX_CONNTRACK_ZONES) return Math.max(last + 1, ZONE_START);
  for (let i = 0; i < zones.length; i++) if (zones[i] - i !== ZONE_START) return i + ZONE_START;
  return undefined;
}

/**
 * Zones for `portIds` (in the order given, which is Neutron's sorted-by-device order),
 * keeping every zone of `previous`. Returns a new map; `previous` is not changed.
 */
export function assignZones(portIds: readonly string[], previous: ReadonlyMap<string, number> | undefined, existing: readonly string[]): Map<string, number> {
  const zones = new Map(previous ?? []);
  for (const id of portIds) {
    const key = zoneKey(id);
    if (zones.has(key)) continue;
    let z = openZone(zones.values());
    if (z === undefined) {
      // _free_zones_from_removed_ports: forget ports no longer on the host, then retry.
      const live = new Set(existing.map(zoneKey));
      for (const k of [...zones.keys()]) if (!live.has(k)) zones.delete(k);
      z = openZone(zones.values());
      if (z === undefined) throw new Error(`Conntrack zones exhausted (${ZONE_START}-${MAX_CONNTRACK_ZONES} all in use) for port ${id}`);
    }
    zones.set(key, z);
  }
  return zones;
}

/**
 * `_populate_initial_zone_map`: the zones a host's raw table already gives its ports, so a
 * restarted agent keeps them (`--physdev-in qvb<11> ... -j CT --zone N`).
 */
export function zonesFromRaw(raw: string): Map<string, number> {
  const zones = new Map<string, number>();
  for (const line of raw.split('\n')) {
    const m = /.* --physdev-in ([a-zA-Z0-9-]+).* -j CT --zone (\d+)/.exec(line);
    if (m) zones.set(m[1].slice(DEV_PREFIX_LEN), Number(m[2]));
  }
  return zones;
}
