// DVR bookkeeping on the server (Neutron's dvr_mac_db and l3_dvr_db): one DVR MAC per host,
// the routers' central SNAT ports, the floating-IP agent gateway ports, and where each
// distributed router must exist.

import { randomInt } from 'node:crypto';
import { COMPUTE_OWNER_PREFIX, DEVICE_OWNER, ROUTER_INTERFACE_OWNERS } from '../../common/constants.js';
import { NeutronError } from '../../common/errors.js';
import type { ServerConfig } from '../../config/server.js';
import { isUniqueViolation, type Db } from '../../db/connect.js';
import type { PortRow, RouterRow } from '../../db/schema.js';
import type { Tx } from '../../db/tx.js';
import { AGENT_TYPES, configOf, type AgentService } from '../agents.js';
import { adminContext } from '../context.js';
import type { PortService } from '../ports.js';

const ADMIN = adminContext();

/** Only the ports `p` a distributed router serves (isDvrServiced, in SQL). */
const dvrServiced = <Q extends { where: (...a: any[]) => Q }>(q: Q): Q =>
  q.where((eb: any) => eb.or([eb('p.device_owner', 'like', `${COMPUTE_OWNER_PREFIX}%`), eb('p.device_owner', '=', DEVICE_OWNER.dhcp)]));

export class DvrService {
  constructor(
    private readonly db: Db,
    private readonly conf: ServerConfig,
    private readonly agents: AgentService,
    private readonly ports: PortService,
  ) {}

  /**
   * The host's DVR MAC, created on first request from dvr_base_mac: its first three octets
   * (four when the fourth is not 00) are kept, the rest random; unique across hosts.
   */
  async hostMac(host: string): Promise<string> {
    const k = this.db.kysely;
    for (let attempt = 0; attempt < 16; attempt++) {
      const have = await k.selectFrom('dvr_host_macs').select('mac_address').where('host', '=', host).executeTakeFirst();
      if (have) return have.mac_address;
      const base = this.conf.dvr_base_mac.toLowerCase().split(':');
      const mac = base.map((o, n) => (n < 3 || (n === 3 && o !== '00') ? o : randomInt(256).toString(16).padStart(2, '0'))).join(':');
      try {
        await k.insertInto('dvr_host_macs').values({ host, mac_address: mac }).execute();
        return mac;
      } catch (err) {
        if (!isUniqueViolation(err)) throw err; // another host took this MAC, or this host raced us
      }
    }
    throw new NeutronError('HostMacAddressGenerationFailure', 500, `Unable to generate unique DVR mac for ${host}.`);
  }

  async hostMacs(): Promise<Array<{ host: string; mac_address: string }>> {
    return this.db.kysely.selectFrom('dvr_host_macs').selectAll().orderBy('host').execute();
  }

  /** The host of the dvr_snat agent the router's SNAT is scheduled to. */
  async snatHost(tx: Tx | undefined, routerId: string): Promise<string | undefined> {
    const r = await (tx ?? this.db.kysely)
      .selectFrom('routerl3agentbindings as b')
      .innerJoin('agents as a', 'a.id', 'b.l3_agent_id')
      .select('a.host')
      .where('b.router_id', '=', routerId)
      .executeTakeFirst();
    return r?.host;
  }

  /** Subnets the router has interfaces on. */
  async interfaceSubnets(tx: Tx | undefined, routerId: string): Promise<Array<{ subnet_id: string; network_id: string; port_id: string; ip_address: string }>> {
    return (tx ?? this.db.kysely)
      .selectFrom('ports as p')
      .innerJoin('ipallocations as a', 'a.port_id', 'p.id')
      .select(['a.subnet_id', 'a.network_id', 'p.id as port_id', 'a.ip_address'])
      .where('p.device_id', '=', routerId)
      .where('p.device_owner', 'in', ROUTER_INTERFACE_OWNERS as string[])
      .execute();
  }

  /**
   * Hosts a distributed router must exist on: every host with an L3 agent in dvr or
   * dvr_snat mode and an instance or DHCP port on one of the router's subnets, plus the
   * host of its SNAT. A centralized router: the host it is scheduled to.
   */
  async routerHosts(tx: Tx | undefined, routerId: string): Promise<string[]> {
    const q = tx ?? this.db.kysely;
    // A centralized router lives only on the host it is scheduled to.
    const router = await q.selectFrom('routers').select('distributed').where('id', '=', routerId).executeTakeFirst();
    if (router && !router.distributed) {
      const host = await this.snatHost(tx, routerId);
      return host ? [host] : [];
    }
    const subnets = (await this.interfaceSubnets(tx, routerId)).map((s) => s.subnet_id);
    const hosts = new Set<string>();
    if (subnets.length) {
      // Distinct in the database: a router's subnets hold thousands of ports on a few hosts.
      const rows = await dvrServiced(
        q.selectFrom('ports as p').innerJoin('ipallocations as a', 'a.port_id', 'p.id').select('p.binding_host_id').distinct().where('a.subnet_id', 'in', subnets).where('p.binding_host_id', '!=', ''),
      ).execute();
      const l3 = await this.dvrL3Hosts(tx);
      for (const r of rows) if (l3.has(r.binding_host_id)) hosts.add(r.binding_host_id);
    }
    const snat = await this.snatHost(tx, routerId);
    if (snat) hosts.add(snat);
    return [...hosts].sort();
  }

  /**
   * The distributed routers whose hosts (routerHosts) include `host`, from the host's own
   * ports and the routers' interfaces (both small): what its L3 agent syncs, without
   * walking every port of every router's subnets.
   */
  async routersOnHost(tx: Tx | undefined, host: string): Promise<Set<string>> {
    const q = tx ?? this.db.kysely;
    const out = new Set<string>();
    if ((await this.dvrL3Hosts(tx, host)).has(host)) {
      const served = await dvrServiced(
        q.selectFrom('ports as p').innerJoin('ipallocations as a', 'a.port_id', 'p.id').select('a.subnet_id').distinct().where('p.binding_host_id', '=', host),
      ).execute();
      const routers = await this.routersOnSubnets(tx, served.map((r) => r.subnet_id), { distributedOnly: true });
      for (const r of routers) out.add(r);
    }
    const snat = await q
      .selectFrom('routerl3agentbindings as b')
      .innerJoin('agents as a', 'a.id', 'b.l3_agent_id')
      .innerJoin('routers as rt', 'rt.id', 'b.router_id')
      .select('b.router_id')
      .where('a.host', '=', host)
      .where('rt.distributed', '=', 1)
      .execute();
    for (const r of snat) out.add(r.router_id);
    return out;
  }

  /**
   * Routers with an interface on any of these subnets. Asked from the interfaces' side
   * (ports by network and owner): a subnet's own allocations run to thousands, its router
   * interfaces to one or two.
   */
  async routersOnSubnets(tx: Tx | undefined, subnets: string[], opts: { distributedOnly?: boolean } = {}): Promise<string[]> {
    if (!subnets.length) return [];
    let q = (tx ?? this.db.kysely)
      .selectFrom('ports as r')
      .innerJoin('ipallocations as ra', 'ra.port_id', 'r.id')
      .innerJoin('routers as rt', 'rt.id', 'r.device_id')
      .select(['rt.id', 'ra.subnet_id'])
      .where('r.network_id', 'in', (eb) => eb.selectFrom('subnets').select('network_id').where('id', 'in', subnets))
      .where('r.device_owner', 'in', ROUTER_INTERFACE_OWNERS as string[]);
    if (opts.distributedOnly) q = q.where('rt.distributed', '=', 1);
    const want = new Set(subnets);
    return [...new Set((await q.execute()).filter((r) => want.has(r.subnet_id)).map((r) => r.id))];
  }

  /** Hosts whose L3 agent runs distributed routers (dvr or dvr_snat mode); of `only` that host (one row, not every agent's). */
  private async dvrL3Hosts(tx: Tx | undefined, only?: string): Promise<Set<string>> {
    let q = (tx ?? this.db.kysely).selectFrom('agents').select(['host', 'configurations']).where('agent_type', '=', AGENT_TYPES.l3);
    if (only !== undefined) q = q.where('host', '=', only);
    const l3 = await q.execute();
    return new Set(l3.filter((a) => ['dvr', 'dvr_snat'].includes(configOf(a).agent_mode ?? 'legacy')).map((a) => a.host));
  }

  /**
   * Make the router's central SNAT ports match what it needs: with a gateway, one
   * network:router_centralized_snat port per IPv4 interface subnet, with its own address,
   * bound to the SNAT host; none otherwise.
   */
  async syncSnatPorts(tx: Tx, router: RouterRow): Promise<void> {
    const existing = await tx
      .selectFrom('ports as p')
      .innerJoin('ipallocations as a', 'a.port_id', 'p.id')
      .select(['p.id', 'a.subnet_id'])
      .where('p.device_id', '=', router.id)
      .where('p.device_owner', '=', DEVICE_OWNER.routerSnat)
      .execute();
    const wanted = router.distributed && router.gw_port_id ? await this.interfaceSubnets(tx, router.id) : [];
    const wantedSubnets = new Set(wanted.map((w) => w.subnet_id));
    const stale = existing.filter((e) => !wantedSubnets.has(e.subnet_id)).map((e) => e.id);
    await this.ports.deleteInTx(tx, stale);
    const host = (await this.snatHost(tx, router.id)) ?? '';
    for (const w of wanted) {
      const have = existing.find((e) => e.subnet_id === w.subnet_id);
      if (have) {
        await this.rebind(tx, have.id, host);
        continue;
      }
      await this.ports.createInTx(tx, ADMIN, {
        project_id: '',
        network_id: w.network_id,
        fixed_ips: [{ subnet_id: w.subnet_id }],
        device_id: router.id,
        device_owner: DEVICE_OWNER.routerSnat,
        admin_state_up: true,
        'binding:host_id': host,
      });
    }
  }

  /** Move a port's binding to `host` (the SNAT host changed, or was first chosen). */
  async rebind(tx: Tx, portId: string, host: string): Promise<void> {
    const p = await tx.selectFrom('ports').selectAll().where('id', '=', portId).executeTakeFirstOrThrow();
    if (p.binding_host_id === host) return;
    await this.ports.updateInTx(tx, ADMIN, p, { 'binding:host_id': host });
  }

  /**
   * The floating-IP agent gateway port of (external network, host): the `fg` device of the
   * host's fip namespace, one external address per host. Needs a dvr L3 agent on the host
   * (its id is the port's device_id); without one there is nothing to create yet.
   */
  async ensureFipGatewayPort(tx: Tx, externalNetworkId: string, host: string): Promise<PortRow | undefined> {
    const have = await tx
      .selectFrom('ports')
      .selectAll()
      .where('network_id', '=', externalNetworkId)
      .where('device_owner', '=', DEVICE_OWNER.agentGateway)
      .where('binding_host_id', '=', host)
      .executeTakeFirst();
    if (have) return have;
    const agent = (await tx.selectFrom('agents').selectAll().where('agent_type', '=', AGENT_TYPES.l3).where('host', '=', host).execute()).find(
      (a) => ['dvr', 'dvr_snat'].includes(configOf(a).agent_mode),
    );
    if (!agent) return undefined;
    const id = await this.ports.createInTx(tx, ADMIN, {
      project_id: '',
      network_id: externalNetworkId,
      device_id: agent.id,
      device_owner: DEVICE_OWNER.agentGateway,
      admin_state_up: true,
      'binding:host_id': host,
    });
    return tx.selectFrom('ports').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  }

  /** Remove fg ports of hosts that no longer have a floating IP on that external network. */
  async pruneFipGatewayPorts(tx: Tx, externalNetworkId: string): Promise<void> {
    const fgs = await tx
      .selectFrom('ports')
      .select(['id', 'binding_host_id'])
      .where('network_id', '=', externalNetworkId)
      .where('device_owner', '=', DEVICE_OWNER.agentGateway)
      .execute();
    if (!fgs.length) return;
    const used = await tx
      .selectFrom('floatingips as f')
      .innerJoin('ports as p', 'p.id', 'f.fixed_port_id')
      .innerJoin('routers as r', 'r.id', 'f.router_id')
      .select('p.binding_host_id')
      .where('f.floating_network_id', '=', externalNetworkId)
      .where('r.distributed', '=', 1)
      .execute();
    const hosts = new Set(used.map((u) => u.binding_host_id));
    await this.ports.deleteInTx(tx, fgs.filter((f) => !hosts.has(f.binding_host_id)).map((f) => f.id));
  }
}
