// IPAM for IPv4 subnets: pools, validation and allocation. Addresses are also stored as
// integers (ip_num) so that "the lowest free address of a pool" is an index walk in SQL;
// the (subnet_id, ip_address) primary key is what finally guarantees that no address is
// ever given to two ports. IPv6 will allocate differently (EUI-64 / random) and only
// needs the unique key, so the model keeps ip_address as text.

import ipaddr from 'ipaddr.js';
import { Faults } from '../common/errors.js';
import { lowestFree, type Tx } from '../db/tx.js';
import type { SubnetRow } from '../db/schema.js';

export interface Pool {
  start: string;
  end: string;
}

export function ipToNum(ip: string): number {
  return ipaddr.IPv4.parse(ip).toByteArray().reduce((n, b) => n * 256 + b, 0);
}

export function numToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

export interface V4Range {
  network: number;
  broadcast: number;
  prefix: number;
}

export function v4Range(cidr: string): V4Range {
  const [addr, prefix] = ipaddr.parseCIDR(cidr);
  const network = ipToNum(addr.toString());
  const size = 2 ** (32 - prefix);
  return { network, broadcast: network + size - 1, prefix };
}

export function cidrContains(cidr: string, ip: string): boolean {
  const a = ipaddr.parse(ip);
  const [net, len] = ipaddr.parseCIDR(cidr);
  return a.kind() === net.kind() && a.match(net, len);
}

export function cidrsOverlap(a: string, b: string): boolean {
  const [na, la] = ipaddr.parseCIDR(a);
  const [nb, lb] = ipaddr.parseCIDR(b);
  if (na.kind() !== nb.kind()) return false;
  return la <= lb ? nb.match(na, la) : na.match(nb, lb);
}

/** The usable host range: /31 and /32 have no network/broadcast to reserve (RFC 3021). */
function hostRange(r: V4Range): [number, number] {
  return r.prefix >= 31 ? [r.network, r.broadcast] : [r.network + 1, r.broadcast - 1];
}

/** Neutron's default gateway: the first host address. */
export function defaultGateway(cidr: string): string {
  return numToIp(hostRange(v4Range(cidr))[0]);
}

/**
 * Validate a gateway and allocation pools against the CIDR, or compute the default pools
 * (the host range minus the gateway). Pools must lie in the host range, not overlap each
 * other, and not contain the gateway.
 */
export function resolvePools(cidr: string, gateway: string | null, requested: Pool[] | undefined): Pool[] {
  const r = v4Range(cidr);
  const [lo, hi] = hostRange(r);
  if (gateway !== null && cidrContains(cidr, gateway)) {
    const g = ipToNum(gateway);
    if (r.prefix < 31 && (g === r.network || g === r.broadcast))
      throw Faults.invalidInput(`Gateway is not valid on subnet`);
  }
  if (requested === undefined) {
    const g = gateway !== null && cidrContains(cidr, gateway) ? ipToNum(gateway) : undefined;
    const out: Pool[] = [];
    if (g === undefined || g < lo || g > hi) out.push({ start: numToIp(lo), end: numToIp(hi) });
    else {
      if (g > lo) out.push({ start: numToIp(lo), end: numToIp(g - 1) });
      if (g < hi) out.push({ start: numToIp(g + 1), end: numToIp(hi) });
    }
    return out;
  }
  const ranges = requested.map((p) => {
    if (!cidrContains(cidr, p.start) || !cidrContains(cidr, p.end))
      throw Faults.invalidInput(`The allocation pool ${p.start}-${p.end} spans beyond the subnet cidr ${cidr}`);
    const s = ipToNum(p.start);
    const e = ipToNum(p.end);
    if (s > e) throw Faults.invalidInput(`The allocation pool ${p.start}-${p.end} is not valid: start is after end`);
    if (s < lo || e > hi)
      throw Faults.invalidInput(`The allocation pool ${p.start}-${p.end} spans beyond the subnet cidr ${cidr}`);
    return { p, s, e };
  });
  ranges.sort((a, b) => a.s - b.s);
  for (let i = 1; i < ranges.length; i++)
    if (ranges[i].s <= ranges[i - 1].e)
      throw Faults.invalidInput(
        `Found overlapping allocation pools: ${ranges[i - 1].p.start}-${ranges[i - 1].p.end} and ${ranges[i].p.start}-${ranges[i].p.end}`,
      );
  if (gateway !== null && cidrContains(cidr, gateway)) {
    const g = ipToNum(gateway);
    const hit = ranges.find((x) => x.s <= g && g <= x.e);
    if (hit) throw Faults.gatewayConflictWithAllocationPools(gateway, `${hit.p.start}-${hit.p.end}`);
  }
  return requested;
}

export interface PoolRange {
  first_num: number;
  last_num: number;
}

/** The lowest free address of the subnet's pools, or undefined when they are exhausted. */
export async function allocateFromPools(tx: Tx, subnetId: string, pools: PoolRange[]): Promise<string | undefined> {
  for (const p of pools) {
    const n = await lowestFree(tx, 'ipallocations', 'ip_num', { subnet_id: subnetId }, p.first_num, p.last_num);
    if (n !== undefined) return numToIp(n);
  }
  return undefined;
}

/** Whether `ip` may be given to a port on this subnet at all (not its network/broadcast). */
export function assertAssignable(subnet: Pick<SubnetRow, 'cidr'>, ip: string): void {
  const r = v4Range(subnet.cidr);
  const n = ipToNum(ip);
  if (r.prefix < 31 && (n === r.network || n === r.broadcast))
    throw Faults.invalidInput(`IP address ${ip} is not a valid IP for the specified subnet.`);
}
