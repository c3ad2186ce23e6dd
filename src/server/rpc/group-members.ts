// What the server knows of a security group's ports: their addresses (fixed IPs and allowed
// address pairs), as the notifier announces them and `security_group_info_for_devices`
// answers, and their hosts (where a member change goes). Read whole the first time a group is
// asked about; when remembering (one server hears every change), a port's change then costs
// that port's rows, not the group's: a group's ten thousand members and their hosts were read
// again after every port that came or went.

import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import { sortAddresses, withAddresses, type MemberIps } from '../../rpc/members.js';
import { chunks } from '../util.js';

/** One group as kept: each port's addresses, how many ports hold each address, the sorted families. */
interface Kept {
  byPort: Map<string, string[]>;
  count: Map<string, number>;
  ips: MemberIps;
}

/**
 * Answers kept per key and brought up to date by the ports that changed since: the ports named
 * (`portChanged`) are read once, when next asked, and applied to every kept answer in the
 * order they were read (one catch-up at a time). Without `remember` every question reads.
 */
abstract class KeptByPort<T> {
  private readonly kept = new Map<string, Promise<T>>();
  /** Ports changed since the last catch-up was queued. */
  private dirty = new Set<string>();
  /** The last catch-up queued: each waits for the one before (a port's rows applied in the order read). */
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: () => Kysely<Database>,
    protected readonly remember: boolean,
  ) {}

  protected get k(): Kysely<Database> {
    return this.db();
  }

  /** A port's rows may have changed (or it is gone). */
  portChanged(portId: string): void {
    if (this.kept.size) this.dirty.add(portId);
  }

  /** Anything may have changed: read every answer again when next asked. */
  clear(): void {
    this.kept.clear();
    this.dirty.clear();
  }

  protected async answer(key: string, read: () => Promise<T>): Promise<T> {
    if (!this.remember) return read();
    // Wait for the ports changed before this question only: ports that change while it waits
    // (a cloud coming up changes thousands) are the next question's, or a caller would wait
    // for as long as ports keep changing.
    if (this.dirty.size) {
      const ports = [...this.dirty];
      this.dirty = new Set();
      this.tail = this.tail.then(() => this.catchUp(ports)).catch(() => this.clear()); // a failed read: read all again
    }
    await this.tail;
    let kept = this.kept.get(key);
    if (!kept) {
      kept = read();
      this.kept.set(key, kept);
      kept.catch(() => this.kept.get(key) === kept && this.kept.delete(key));
    }
    return kept;
  }

  private async catchUp(ports: string[]): Promise<void> {
    const answers: T[] = [];
    for (const p of this.kept.values()) await p.then((a) => answers.push(a), () => {}); // a failed read is forgotten
    if (answers.length) await this.update(ports, answers);
  }

  /** Each port's security groups now. */
  protected async groupsOf(ports: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const part of chunks(ports, 500))
      for (const r of await this.k.selectFrom('securitygroupportbindings').select(['port_id', 'security_group_id']).where('port_id', 'in', part).execute()) {
        const list = out.get(r.port_id);
        if (list) list.push(r.security_group_id);
        else out.set(r.port_id, [r.security_group_id]);
      }
    return out;
  }

  /** Bring `answers` up to date with the ports' rows as they are now. */
  protected abstract update(ports: string[], answers: T[]): Promise<void>;
}

/** The group's addresses: per port, how many ports hold each, and the sorted families. */
export class GroupMembers extends KeptByPort<Kept & { group: string }> {
  /** The group's addresses per family, sorted as ipsets list them (a copy: the caller's to keep). */
  async memberIps(group: string): Promise<MemberIps> {
    const { ips } = await this.answer(group, async () => ({ group, ...(await this.read(group)) }));
    return this.remember ? { IPv4: [...ips.IPv4], IPv6: [...ips.IPv6] } : ips;
  }

  protected async update(ports: string[], answers: Array<Kept & { group: string }>): Promise<void> {
    const groups = await this.groupsOf(ports);
    const addresses = await this.addressesOf(ports);
    for (const kept of answers) {
      const now = (port: string) => (groups.get(port)?.includes(kept.group) ? (addresses.get(port) ?? []) : []);
      const { add, del } = recount(kept.byPort, kept.count, ports, now);
      kept.ips = family(kept.ips, add, del);
    }
  }

  private async read(group: string): Promise<Kept> {
    const byPort = await this.addressesOf([], group);
    const count = new Map<string, number>();
    for (const list of byPort.values()) for (const ip of list) count.set(ip, (count.get(ip) ?? 0) + 1);
    const all = [...count.keys()];
    return { byPort, count, ips: { IPv4: sortAddresses(all.filter((ip) => !ip.includes(':'))), IPv6: sortAddresses(all.filter((ip) => ip.includes(':'))) } };
  }

  /** Each port's distinct addresses (fixed IPs, then pairs): of `ports`, or of a group's ports (by a join) when `group` is given. */
  private async addressesOf(ports: string[], group?: string): Promise<Map<string, string[]>> {
    const rows: Array<{ port_id: string; ip_address: string }> = [];
    if (group !== undefined) {
      rows.push(
        ...(await this.k
          .selectFrom('securitygroupportbindings as g')
          .innerJoin('ipallocations as a', 'a.port_id', 'g.port_id')
          .select(['a.port_id', 'a.ip_address'])
          .where('g.security_group_id', '=', group)
          .execute()),
        ...(await this.k
          .selectFrom('securitygroupportbindings as g')
          .innerJoin('allowedaddresspairs as aap', 'aap.port_id', 'g.port_id')
          .select(['aap.port_id', 'aap.ip_address'])
          .where('g.security_group_id', '=', group)
          .execute()),
      );
    } else {
      for (const part of chunks(ports, 500)) rows.push(...(await this.k.selectFrom('ipallocations').select(['port_id', 'ip_address']).where('port_id', 'in', part).execute()));
      for (const part of chunks(ports, 500)) rows.push(...(await this.k.selectFrom('allowedaddresspairs').select(['port_id', 'ip_address']).where('port_id', 'in', part).execute()));
    }
    const out = new Map<string, string[]>();
    for (const r of rows) {
      const list = out.get(r.port_id);
      if (!list) out.set(r.port_id, [r.ip_address]);
      else if (!list.includes(r.ip_address)) list.push(r.ip_address);
    }
    return out;
  }
}

/** A set of groups as kept: the groups whose ports count (those and the ones naming them as remote), each such port's host, ports per host. */
interface KeptHosts {
  all: Set<string>;
  byPort: Map<string, string[]>;
  count: Map<string, number>;
  hosts: string[];
}

/**
 * The hosts with a bound port in any of a set of groups or in a group whose rules name one of
 * them as remote (where a member change must go), kept per set of groups like the members.
 */
export class GroupHosts extends KeptByPort<KeptHosts> {
  async hostsFor(groups: string[]): Promise<string[]> {
    const { hosts } = await this.answer([...groups].sort().join(','), () => this.read(groups));
    return [...hosts];
  }

  private async read(groups: string[]): Promise<KeptHosts> {
    const referencing = await this.k.selectFrom('securitygrouprules').select('security_group_id').where('remote_group_id', 'in', groups).execute();
    const all = new Set([...groups, ...referencing.map((r) => r.security_group_id)]);
    const rows = await this.k
      .selectFrom('securitygroupportbindings as g')
      .innerJoin('ports as p', 'p.id', 'g.port_id')
      .select(['p.id', 'p.binding_host_id'])
      .where('g.security_group_id', 'in', [...all])
      .where('p.binding_host_id', '!=', '')
      .execute();
    const byPort = new Map(rows.map((r) => [r.id, [r.binding_host_id]]));
    const count = new Map<string, number>();
    for (const [host] of byPort.values()) count.set(host, (count.get(host) ?? 0) + 1);
    return { all, byPort, count, hosts: [...count.keys()] };
  }

  protected async update(ports: string[], answers: KeptHosts[]): Promise<void> {
    const groups = await this.groupsOf(ports);
    const hosts = new Map<string, string>();
    for (const part of chunks(ports, 500))
      for (const r of await this.k.selectFrom('ports').select(['id', 'binding_host_id']).where('id', 'in', part).execute()) hosts.set(r.id, r.binding_host_id);
    for (const kept of answers) {
      const now = (port: string) => {
        const host = hosts.get(port);
        return host && groups.get(port)?.some((g) => kept.all.has(g)) ? [host] : [];
      };
      const { add, del } = recount(kept.byPort, kept.count, ports, now);
      if (add.length || del.length) kept.hosts = [...kept.count.keys()];
    }
  }
}

/** The families after `add` and `del` (new arrays where a family changed). */
function family(ips: MemberIps, add: string[], del: string[]): MemberIps {
  if (!add.length && !del.length) return ips;
  const gone = new Set(del);
  const one = (list: string[], v6: boolean) => {
    const a = add.filter((ip) => ip.includes(':') === v6);
    const kept = del.some((ip) => ip.includes(':') === v6) ? list.filter((ip) => !gone.has(ip)) : list;
    return a.length ? withAddresses(kept, a) : kept;
  };
  return { IPv4: one(ips.IPv4, false), IPv6: one(ips.IPv6, true) };
}

/**
 * `byPort` and `count` after each port's values became `now(port)`: the values no port holds
 * any more (`del`) and those that were held by none (`add`); one that left and came back in
 * the same catch-up is in neither.
 */
function recount(byPort: Map<string, string[]>, count: Map<string, number>, ports: string[], now: (port: string) => string[]): { add: string[]; del: string[] } {
  const add: string[] = [];
  const del: string[] = [];
  for (const port of ports) {
    const before = byPort.get(port) ?? [];
    const after = now(port);
    if (after.length) byPort.set(port, after);
    else byPort.delete(port);
    for (const v of before) {
      const n = count.get(v)! - 1;
      if (n) count.set(v, n);
      else count.delete(v), del.push(v);
    }
    for (const v of after) {
      const n = (count.get(v) ?? 0) + 1;
      count.set(v, n);
      if (n === 1) add.push(v);
    }
  }
  const back = new Set(add.filter((v) => del.includes(v)));
  return back.size ? { add: add.filter((v) => !back.has(v)), del: del.filter((v) => !back.has(v)) } : { add, del };
}
