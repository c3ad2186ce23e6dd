// The notifier: pushes changes to exactly the hosts they concern (host-scoped casts through
// an outbox that batches a burst; DVR MAC lists and DVR ARP entries fan out, as in Neutron).

import { DEVICE_OWNER, ROUTER_INTERFACE_OWNERS, isDvrServiced } from '../../common/constants.js';
import type { PortRow } from '../../db/schema.js';
import { memberChange, type MemberChange, type MemberIps } from '../../rpc/members.js';
import { AGENT_TOPICS, FLOODING_ENTRY, hostTopic, type AgentMethod, type AgentMethods, type FdbEntries } from '../../rpc/messages.js';
import type { Transport } from '../../rpc/transport.js';
import { AGENT_TYPES } from '../agents.js';
import type { ChangeEvent } from '../events.js';
import type { CorePlugin } from '../plugin.js';
import { HostViews, TUNNEL_TYPES } from './views.js';

/** How long after the last DVR MAC registration the list goes to every OVS agent... */
export const DVR_MACS_GATHER_MS = 200;
/** ...and how long registrations that keep coming may hold it back. */
export const DVR_MACS_MAX_WAIT_MS = 2000;

/**
 * Pushes changes to the agents they concern. Host-scoped casts go to `<topic>.<host>`;
 * only DVR MAC updates and DVR ARP entries fan out (as Neutron does), and routers unknown
 * to an agent are ignored there.
 */
export class AgentNotifier {
  constructor(
    private readonly p: CorePlugin,
    private readonly views: HostViews,
    private readonly transport: Transport,
  ) {}

  /**
   * Casts and fanouts wait in an outbox until the current burst of changes has been handled
   * (the next turn of the event loop), then go out in order. A bulk create or a host
   * reporting many ports up thus sends each host one add_fdb_entries with every new entry
   * (adjacent ones to the same host merge) and one copy of each resync trigger, instead of
   * one message per port and per host (the notifier's fan-out dominated convergence).
   */
  private outbox: Array<{ kind: 'cast' | 'fanout'; topic: string; method: AgentMethod; args: any; key?: string }> = [];
  private queued = new Set<string>();
  private flushing?: Promise<void>;

  /**
   * A host got its DVR MAC: every OVS agent hears the whole list (Neutron's
   * dvr_mac_address_update), DVR_MACS_GATHER_MS after the last registration while hosts keep
   * registering, and at least every DVR_MACS_MAX_WAIT_MS. A cloud coming up registers hundreds
   * of hosts one after the other: the list to every agent per registration grew with the cube
   * of the hosts (101 s of a 500-host cloud's start), and one list per 200 ms still had every
   * agent rebuild its DVR flows fifty times over a 600-host start.
   */
  dvrMacsChanged(): void {
    const now = Date.now();
    this.macSince ??= now;
    clearTimeout(this.macTimer);
    this.macTimer = setTimeout(
      () => {
        this.macTimer = undefined;
        this.macSince = undefined;
        const sending: Promise<void> = this.p.dvr
          .hostMacs()
          .then((dvr_macs) => this.fanout(AGENT_TOPICS.ovs, 'dvr_mac_address_update', { dvr_macs }))
          .catch((err) => console.error('dvr_mac_address_update failed:', err))
          .finally(() => {
            if (this.macSending === sending) this.macSending = undefined;
          });
        this.macSending = sending;
      },
      Math.max(0, Math.min(DVR_MACS_GATHER_MS, this.macSince + DVR_MACS_MAX_WAIT_MS - now)),
    );
  }

  private macTimer?: NodeJS.Timeout;
  /** The gathered list on its way (read, then queued). */
  private macSending?: Promise<void>;

  /**
   * Resolves once nothing waits to go out: no DVR MAC list gathering or being read, an empty
   * outbox. (What "the cloud has settled" needs besides idle agents and an idle bus: a list
   * still gathering made a host that registered first miss a later host's MAC until it came.)
   */
  async idle(): Promise<void> {
    for (;;) {
      if (this.macTimer) await new Promise((r) => setTimeout(r, 10));
      else if (this.macSending) await this.macSending;
      else if (this.flushing) await this.flushing;
      else return;
    }
  }
  /** When the registrations the pending list gathers began. */
  private macSince?: number;

  /** Nothing more goes out (the server stops). */
  close(): void {
    clearTimeout(this.macTimer);
    this.macTimer = undefined;
    this.macSince = undefined;
  }

  async cast<M extends AgentMethod>(base: string, host: string, method: M, args: AgentMethods[M]) {
    this.enqueue('cast', hostTopic(base, host), method, args);
  }

  async fanout<M extends AgentMethod>(base: string, method: M, args: AgentMethods[M]) {
    this.enqueue('fanout', base, method, args);
  }

  private enqueue(kind: 'cast' | 'fanout', topic: string, method: AgentMethod, args: any) {
    const tk = `${kind}|${topic}`;
    if (method === 'add_fdb_entries' || method === 'remove_fdb_entries') {
      // Merged into the topic's last stateful message when it is of the same kind (order
      // kept: resync triggers in between commute with FDB casts, a full pass rebuilds the FDB).
      // Once per host of a network per port coming up: no closures made per call.
      // The first message to a topic is the caller's (shared by every host it goes to); a
      // second one copies it before merging (a port coming up alone copies nothing per host).
      const last = this.mergeable(tk, method);
      if (last) {
        if (last.shared) (last.args = { fdb_entries: mergeFdb({}, last.args.fdb_entries) }), (last.shared = false);
        mergeFdb(last.args.fdb_entries, args.fdb_entries);
      } else this.push(tk, kind, topic, method, args, true);
    } else if (method === 'add_arp_entry' || method === 'del_arp_entry') {
      // The same for ARP entries: a run of them to one topic goes as one add_arp_entries or
      // del_arp_entries, in order (an add after a del starts a new message).
      const batch = method === 'add_arp_entry' ? 'add_arp_entries' : 'del_arp_entries';
      const last = this.mergeable(tk, batch);
      if (last) last.args.entries.push(args);
      else this.push(tk, kind, topic, batch, { entries: [args] }, false);
    } else if (RESYNC_TRIGGERS.has(method)) {
      // A pure "look again" message: a copy already queued since the topic's last stateful
      // message is as good (router removals count as stateful: an update after one must stay).
      const key = `${tk}|${method}|${argsKey(args)}|${this.epochs.get(tk) ?? 0}`;
      if (this.queued.has(key)) return;
      this.queued.add(key);
      this.outbox.push({ kind, topic, method, args, key });
      if (method === 'router_removed_from_agent') this.bump(kind, topic);
    } else {
      this.outbox.push({ kind, topic, method, args });
      this.bump(kind, topic);
      this.lastMergeable.delete(tk);
    }
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.send());
  }

  /** The topic's last stateful message when it is a `method` one (what the next of its kind merges into). */
  private mergeable(tk: string, method: AgentMethod): Mergeable | undefined {
    const last = this.lastMergeable.get(tk);
    return last && last.method === method ? last : undefined;
  }

  /** A new mergeable message at the end of the outbox; `shared`: its args are the caller's, to copy before changing. */
  private push(tk: string, kind: 'cast' | 'fanout', topic: string, method: AgentMethod, args: any, shared: boolean) {
    const m: Mergeable & { kind: 'cast' | 'fanout'; topic: string } = { kind, topic, method, args, shared };
    this.outbox.push(m);
    this.bump(kind, topic);
    this.lastMergeable.set(tk, m);
  }

  private epochs = new Map<string, number>();
  /** Per security group, the members this server last announced (what its next member update is a change from). */
  private readonly announced = new Map<string, { IPv4: Set<string>; IPv6: Set<string> }>();
  /** Per topic, its last queued stateful message when that is an FDB or ARP batch (what the next of its kind merges into). */
  private lastMergeable = new Map<string, Mergeable>();
  private bump(kind: string, topic: string) {
    const k = `${kind}|${topic}`;
    this.epochs.set(k, (this.epochs.get(k) ?? 0) + 1);
  }

  private async send(): Promise<void> {
    const batch = this.outbox;
    this.outbox = [];
    this.queued = new Set();
    this.epochs = new Map();
    this.lastMergeable = new Map();
    this.flushing = undefined;
    // Member updates carry their groups' addresses as they are now, read once per group for
    // the whole batch (and after the burst, so a thousand new ports send one list, not a
    // thousand growing ones): whole the first time this server announces a group, then as
    // the change since its last announcement (members.ts).
    const wire = new Map<string, Promise<{ ips: MemberIps } | { change: MemberChange }>>();
    const announce = async (g: string) => {
      const ips = await this.views.memberIps(g);
      const before = this.announced.get(g);
      if (ips.IPv4.length + ips.IPv6.length) this.announced.set(g, { IPv4: new Set(ips.IPv4), IPv6: new Set(ips.IPv6) });
      else this.announced.delete(g);
      const change = before && memberChange(before, ips);
      return change ? { change } : { ips };
    };
    for (const m of batch) {
      if (m.method !== 'security_groups_member_updated') continue;
      const member_ips: Record<string, MemberIps> = {};
      const member_changes: Record<string, MemberChange> = {};
      for (const g of m.args.security_groups as string[]) {
        if (!wire.has(g)) wire.set(g, announce(g));
        const w = await wire.get(g)!;
        if ('change' in w) member_changes[g] = w.change;
        else member_ips[g] = w.ips;
      }
      m.args = { ...m.args, ...(Object.keys(member_ips).length && { member_ips }), ...(Object.keys(member_changes).length && { member_changes }) };
    }
    const sent: Promise<void>[] = [];
    for (const m of batch) {
      const p = m.kind === 'cast' ? this.transport.cast(m.topic, m.method, m.args) : this.transport.fanout(m.topic, m.method, m.args);
      sent.push(p.catch((err) => console.error(`${m.kind} ${m.method} to ${m.topic} failed:`, err)));
    }
    await Promise.all(sent);
  }

  private async l3Hosts(hosts: string[]) {
    const l3 = await this.p.agents.usableHosts(AGENT_TYPES.l3, hosts);
    return hosts.filter((h) => l3.has(h));
  }

  async routersUpdated(routerIds: string[], hosts?: string[]) {
    for (const id of routerIds) {
      const targets = hosts ?? (await this.p.dvr.routerHosts(undefined, id));
      for (const h of await this.l3Hosts(targets)) await this.cast(AGENT_TOPICS.l3, h, 'routers_updated', { routers: [id] });
    }
  }

  async handle(e: ChangeEvent): Promise<void> {
    // Networks and routers going away take ports with them, not always one event each.
    if ((e.kind === 'network' || e.kind === 'router') && e.op === 'delete') {
      this.views.bindingsChanged();
      this.views.membersChanged();
    }
    // What the views remember (see views.ts) is forgotten before anything asks again.
    if (e.kind === 'port') {
      const port = (e.after ?? e.before)!;
      this.views.portsChanged(port.network_id, port.id);
    }
    if (e.kind === 'network' || e.kind === 'subnet' || e.kind === 'router') this.views.networksChanged();
    if (e.kind === 'agent') await this.views.agentChanged(e);
    if (e.kind === 'security_group') this.views.groupsChanged();
    switch (e.kind) {
      case 'port':
        return this.portChanged(e.before, e.after, e.fixedIps, e.securityGroups);
      case 'network': {
        if (e.op === 'create') return;
        for (const h of e.dhcpHosts ?? (await this.views.dhcpHosts(e.network.id)))
          await this.cast(AGENT_TOPICS.dhcp, h, e.op === 'delete' ? 'network_delete_end' : 'network_update_end', { network_id: e.network.id });
        for (const h of await this.views.hostsOnNetwork(e.network.id)) await this.cast(AGENT_TOPICS.ovs, h, 'network_update', { network_id: e.network.id });
        return;
      }
      case 'subnet': {
        for (const h of await this.views.dhcpHosts(e.subnet.network_id)) await this.cast(AGENT_TOPICS.dhcp, h, 'network_update_end', { network_id: e.subnet.network_id });
        await this.routersUpdated(await this.p.dvr.routersOnSubnets(undefined, [e.subnet.id]));
        return;
      }
      case 'security_group': {
        for (const h of await this.views.hostsForGroups([e.id])) await this.cast(AGENT_TOPICS.ovs, h, 'security_groups_rule_updated', { security_groups: [e.id] });
        return;
      }
      case 'router':
        if (e.op === 'delete') {
          for (const h of await this.l3Hosts(e.hosts)) await this.cast(AGENT_TOPICS.l3, h, 'router_removed_from_agent', { router_id: e.id });
          return;
        }
        return this.routersUpdated([e.id], [...new Set([...e.hosts, ...(await this.p.dvr.routerHosts(undefined, e.id))])]);
      case 'floatingip':
        for (const t of e.routers) await this.routersUpdated([t.routerId], t.hosts);
        return;
      case 'agent':
        return;
      case 'dhcp_binding':
        // As Neutron's DhcpAgentNotifyAPI: the agent that got the network creates it, the one that lost it deletes it.
        return this.cast(AGENT_TOPICS.dhcp, e.host, e.op === 'add' ? 'network_update_end' : 'network_delete_end', { network_id: e.networkId });
    }
  }

  private async fixedIps(port: PortRow) {
    return this.p.db.kysely.selectFrom('ipallocations').select(['subnet_id', 'ip_address']).where('port_id', '=', port.id).execute();
  }

  private async portChanged(
    before: PortRow | undefined,
    after: PortRow | undefined,
    deletedIps: Array<{ subnet_id: string; ip_address: string }> = [],
    deletedGroups: string[] = [],
  ) {
    const port = (after ?? before)!;
    // The port's addresses, read once for what follows (a deleted port's came with the event).
    let ipsRead: Promise<Array<{ subnet_id: string; ip_address: string }>> | undefined;
    const addresses = () => (ipsRead ??= after ? this.fixedIps(after) : Promise.resolve(deletedIps));
    const oldHost = before?.binding_host_id ?? '';
    const newHost = after?.binding_host_id ?? '';
    // A port that arrives bound (or binds) only adds its host to what is kept about bindings;
    // anything else (a move, an unbinding, a router interface, a new owner) starts afresh.
    const plainBind = !!after && !!newHost && !oldHost && (!before || (before.device_owner === after.device_owner && before.device_id === after.device_id)) && !ROUTER_INTERFACE_OWNERS.includes(after.device_owner);
    if (plainBind) this.views.portBound(after!.network_id, newHost, after!.device_owner, port.id);
    else if (!before || !after || oldHost !== newHost || before.device_owner !== after.device_owner || before.device_id !== after.device_id) this.views.bindingsChanged(port.id);
    // Addresses, groups and pairs bump a port's revision without showing in its row.
    const membersMayChange = !statusOnly(before, after);
    if (membersMayChange) this.views.membersChanged(port.id);
    // The OVS agents of the hosts involved; a status report came from the agent itself (ML2
    // sends no port_update for update_device_up either).
    if (after && newHost && membersMayChange) await this.cast(AGENT_TOPICS.ovs, newHost, 'port_update', { port_id: port.id, network_id: port.network_id });
    if (oldHost && oldHost !== newHost) await this.cast(AGENT_TOPICS.ovs, oldHost, 'port_delete', { port_id: port.id });
    // l2population: a port that became ACTIVE on a host is announced to the network's
    // other hosts, and that host learns the whole network; one that left is withdrawn.
    const wasActive = before?.status === 'ACTIVE' && !!oldHost;
    const isActive = after?.status === 'ACTIVE' && !!newHost;
    if (port.device_owner !== DEVICE_OWNER.routerInterfaceDistributed && (wasActive !== isActive || (isActive && oldHost !== newHost))) {
      if (wasActive) await this.l2popRemove(before!, oldHost, await addresses());
      if (isActive) await this.l2popAdd(after!, newHost, await addresses());
    }
    // DHCP agents of the network; not for a status report (as Neutron's DhcpAgentNotifyAPI:
    // nothing the DHCP agent serves depends on it).
    if (membersMayChange) {
      const hosts = await this.views.dhcpHosts(port.network_id);
      const info = after && hosts.length ? (await this.views.portInfos([after]))[0] : undefined;
      for (const h of hosts)
        await this.cast(AGENT_TOPICS.dhcp, h, after ? 'port_update_end' : 'port_delete_end', { port_id: port.id, network_id: port.network_id, ...(info && { port: info }) });
    }
    // Distributed routers: where a served port appears or goes, the router follows, and
    // every host of the router learns its address through an ARP entry once the port is up on
    // its host (in the burst of its l2population entries and group members: one pass there),
    // and forgets it when the port leaves.
    const arrives = isActive && (!wasActive || oldHost !== newHost);
    const leaves = !!oldHost && oldHost !== newHost;
    if (isDvrServiced(port.device_owner) && (oldHost !== newHost || arrives)) {
      const ips = await addresses();
      const routers = await this.p.dvr.routersOnSubnets(undefined, ips.map((x) => x.subnet_id));
      // Only the hosts the port arrives on and leaves need the router re-synced; the
      // others learn the address from the ARP entry fanned out below (Neutron does the same).
      if (oldHost !== newHost) {
        await this.routersUpdated(routers, [newHost, oldHost].filter((h) => !!h));
        await this.dvrPeersMoved(routers, newHost, oldHost, port.id);
      }
      if (arrives || leaves)
        for (const r of routers)
          for (const ip of ips)
            await this.fanout(AGENT_TOPICS.l3, arrives ? 'add_arp_entry' : 'del_arp_entry', { router_id: r, arp_table: { ip_address: ip.ip_address, mac_address: port.mac_address, subnet_id: ip.subnet_id } });
    }
    // Security groups whose members changed, as other hosts' ipsets need them: a port's
    // addresses matter there once it is up on its host (announced in the burst of its
    // l2population entries, so a host takes both in one pass: a port that is not wired sends
    // nothing), they may change in place on a bound port (anything but a status report), and
    // they go when the port leaves its host.
    const inPlace = !!before && !!after && !!newHost && oldHost === newHost && membersMayChange;
    if (arrives || inPlace || leaves) {
      const groups = after
        ? (await this.p.db.kysely.selectFrom('securitygroupportbindings').select('security_group_id').where('port_id', '=', port.id).execute()).map((g) => g.security_group_id)
        : deletedGroups;
      const update = { security_groups: groups }; // one object for every host: its outbox key is made once
      for (const h of await this.views.hostsForGroups(groups)) await this.cast(AGENT_TOPICS.ovs, h, 'security_groups_member_updated', update);
    }
  }

  private async l2popAdd(port: PortRow, host: string, ips: Array<{ ip_address: string }>) {
    const seg = await this.views.segment(port.network_id);
    if (!seg || !TUNNEL_TYPES.has(seg.network_type)) return;
    const ip = await this.views.ovsAgentIp(host);
    if (!ip) return;
    const addr = ips[0]?.ip_address ?? '';
    const announce: FdbEntries = { [port.network_id]: { network_type: seg.network_type, segment_id: seg.segmentation_id!, ports: { [ip]: [FLOODING_ENTRY, [port.mac_address, addr]] } } };
    const add = { fdb_entries: announce };
    for (const h of await this.views.hostsOnNetwork(port.network_id)) if (h !== host) await this.cast(AGENT_TOPICS.ovs, h, 'add_fdb_entries', add);
    // The host learns the whole network with its first active port there (as Neutron's
    // l2pop does); later ports add nothing it was not told already.
    if (await this.views.hasActivePort(port.network_id, host, port.id)) return;
    const full = await this.views.fdbFor(port.network_id, host);
    if (Object.keys(full).length) await this.cast(AGENT_TOPICS.ovs, host, 'add_fdb_entries', { fdb_entries: full });
  }

  /**
   * A served port arrived on or left a host: the host may have become, or stopped being, a
   * host of the distributed routers on the port's subnets, and so a flooding peer on their
   * tunnel networks (in Neutron, the qr- port's distributed binding on that host going
   * ACTIVE or away). The other hosts on each network hear of it; the host itself learns
   * its networks on its own full pass (the port_update above).
   */
  private async dvrPeersMoved(routerIds: string[], newHost: string, oldHost: string, portId: string) {
    const nets = new Set<string>();
    for (const r of routerIds) for (const s of await this.p.dvr.interfaceSubnets(undefined, r)) nets.add(s.network_id);
    if (!nets.size) return;
    // A host with another served port on the routers' networks was, and stays, a peer on all
    // of them: nothing moved (the common case, and the per-network queries below are O(ports)).
    const servedElsewhere = async (host: string) =>
      !!host &&
      (
        await this.p.db.kysely
          .selectFrom('ports')
          .select('device_owner')
          .where('binding_host_id', '=', host)
          .where('network_id', 'in', [...nets])
          .where('id', '!=', portId)
          .execute()
      ).some((r) => isDvrServiced(r.device_owner));
    if ((await servedElsewhere(newHost)) || !newHost) newHost = '';
    if ((await servedElsewhere(oldHost)) || !oldHost) oldHost = '';
    if (!newHost && !oldHost) return;
    for (const net of nets) {
      const seg = await this.views.segment(net);
      if (!seg || !TUNNEL_TYPES.has(seg.network_type)) continue;
      const peers = new Set(await this.views.dvrPeers(net));
      for (const [host, add] of [[newHost, true], [oldHost, false]] as const) {
        if (!host || peers.has(host) !== add) continue;
        if (!add && (await this.views.hasActivePort(net, host))) continue;
        const ip = await this.views.ovsAgentIp(host);
        if (!ip) continue;
        const fdb: FdbEntries = { [net]: { network_type: seg.network_type, segment_id: seg.segmentation_id!, ports: { [ip]: [FLOODING_ENTRY] } } };
        for (const h of await this.views.hostsOnNetwork(net)) if (h !== host) await this.cast(AGENT_TOPICS.ovs, h, add ? 'add_fdb_entries' : 'remove_fdb_entries', { fdb_entries: fdb });
      }
    }
  }

  /** `ips`: the port's addresses (a deleted port's allocations are gone with it: the event's). */
  private async l2popRemove(port: PortRow, host: string, ips: Array<{ ip_address: string }>) {
    const seg = await this.views.segment(port.network_id);
    if (!seg || !TUNNEL_TYPES.has(seg.network_type)) return;
    const ip = await this.views.ovsAgentIp(host);
    if (!ip) return;
    const addr = ips[0]?.ip_address ?? '';
    // The flood entry goes too when this was the host's last active port on the network.
    const stillThere = await this.p.db.kysely
      .selectFrom('ports')
      .select('id')
      .where('network_id', '=', port.network_id)
      .where('binding_host_id', '=', host)
      .where('status', '=', 'ACTIVE')
      .where('id', '!=', port.id)
      .limit(1)
      .executeTakeFirst();
    // A host of a distributed router on the network stays a flooding peer without ports of its own.
    const keepFlood = !!stillThere || (await this.views.dvrPeers(port.network_id)).includes(host);
    const entries: Array<[string, string]> = keepFlood ? [[port.mac_address, addr]] : [FLOODING_ENTRY, [port.mac_address, addr]];
    const withdraw: FdbEntries = { [port.network_id]: { network_type: seg.network_type, segment_id: seg.segmentation_id!, ports: { [ip]: entries } } };
    for (const h of await this.views.hostsOnNetwork(port.network_id)) if (h !== host) await this.cast(AGENT_TOPICS.ovs, h, 'remove_fdb_entries', { fdb_entries: withdraw });
  }
}

/**
 * Whether a port update changed its status and nothing else a row shows (the agents' reports):
 * anything else (addresses, groups and pairs bump the revision without showing in the row)
 * may change what a security group's members are.
 */
function statusOnly(before: PortRow | undefined, after: PortRow | undefined): boolean {
  if (!before || !after || before.status === after.status) return false;
  for (const k of Object.keys(after) as Array<keyof PortRow>) {
    if (k === 'status' || k === 'revision_number' || k === 'updated_at') continue;
    if (before[k] !== after[k]) return false;
  }
  return true;
}

/** Casts whose only effect is that the agent looks again (identical copies in one burst are redundant). */
const RESYNC_TRIGGERS: ReadonlySet<AgentMethod> = new Set<AgentMethod>([
  'port_update',
  'port_delete',
  'network_update',
  'security_groups_rule_updated',
  'security_groups_member_updated',
  'routers_updated',
  'router_removed_from_agent',
  'network_update_end',
  'network_delete_end',
  'port_update_end',
  'port_delete_end',
]);

/** A resync trigger's arguments as text, made once per object (a member update goes to every host of its group). */
const ARGS_KEYS = new WeakMap<object, string>();
function argsKey(args: unknown): string {
  if (typeof args !== 'object' || args === null) return JSON.stringify(args);
  let k = ARGS_KEYS.get(args);
  if (k === undefined) ARGS_KEYS.set(args, (k = JSON.stringify(args)));
  return k;
}

/** A queued FDB or ARP batch that later casts to its topic merge into. */
interface Mergeable {
  method: AgentMethod;
  args: any;
  shared: boolean;
}

/**
 * Folds one add (or remove) FDB message into another, in place: `into` is the outbox's own
 * copy (made from `{}` when a second message merges into a topic's first), so a burst of a
 * thousand ports costs a thousand small merges, not a thousand copies of everything gathered
 * so far. Each pair once.
 */
function mergeFdb(into: FdbEntries, more: FdbEntries): FdbEntries {
  // Once per host of the network per port coming up: no per-call copies. The [mac, ip] pairs
  // are the announcement's own (shared by the hosts, never changed).
  for (const net in more) {
    const e = more[net];
    let to = into[net];
    if (!to) into[net] = to = { network_type: e.network_type, segment_id: e.segment_id, ports: {} };
    else (to.network_type = e.network_type), (to.segment_id = e.segment_id);
    for (const ip in e.ports) {
      const list = (to.ports[ip] ??= []);
      for (const x of e.ports[ip]) {
        let seen = false;
        for (let i = 0; i < list.length && !seen; i++) seen = list[i][0] === x[0] && list[i][1] === x[1];
        if (!seen) list.push(x);
      }
    }
  }
  return into;
}
