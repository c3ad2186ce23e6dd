// A centralized router (`distributed: false`) as Neutron's LegacyRouter lays it out, whole on
// the one host it is scheduled to (a dvr_snat agent hosts them too): `qrouter-<id>` with a
// qr- per interface port (its own MAC and fixed IPs; the OVS agent wires it as any port of
// the host and l2population tells the other hosts where it is), qg- with the gateway
// address and the default route, SNAT of what leaves by qg- to the gateway address, and the
// floating IPs as /32 addresses on qg- with DNAT/SNAT in the same namespace. Neighbours are
// learnt by ARP (no permanent tables as a distributed router needs). Not done, as for
// distributed routers: IPv6, address scopes, gratuitous ARP.
import { isIpv4 } from '../../host/ip.js';
import { routerInterfaceDevice, routerNamespace } from '../../host/names.js';
import type { PortInfo, RouterInfo } from '../../rpc/messages.js';
import { baseSysctls, cidrOf, extraRoutes, gatewayNatRules, plugGateway, routerMetadata, v4, type Announcement, type FipStatus, type L3BuildInput } from './build.js';
import type { Fragment } from './fragment.js';
import { IptablesManager } from './iptables.js';

export interface LegacyRouterOutput {
  fipStatuses: Record<string, FipStatus>;
  /** qg-'s gateway and floating IP addresses (gratuitous ARP when they appear). */
  announce: Announcement[];
  interfaces: number;
  exGwPorts: number;
  floatingIps: number;
}

export function buildLegacyRouter(f: Fragment, r: RouterInfo, opts: { integrationBridge: string; metadata: L3BuildInput['metadata'] }): LegacyRouterOutput {
  const out: LegacyRouterOutput = { fipStatuses: {}, announce: [], interfaces: 0, exGwPorts: 0, floatingIps: 0 };
  const br = opts.integrationBridge;
  const ns = routerNamespace(r.id);
  f.namespace(ns);
  baseSysctls(f, ns);
  // iptables_manager's own mangle `mark` chain, first in PREROUTING.
  const ipt = new IptablesManager();
  ipt.mangle.addChain('mark').addRule('PREROUTING', '-j $mark');

  // RouterInfo._process_internal_ports: only admin-up ports are plugged.
  const devices: Array<{ dev: string; port: PortInfo }> = [];
  for (const p of r._interfaces) {
    if (!p.admin_state_up) continue;
    const dev = routerInterfaceDevice(p.id);
    f.internalPort({ bridge: br, name: dev, namespace: ns, mac: p.mac_address, mtu: p.mtu, addresses: p.fixed_ips.map(cidrOf), portId: p.id });
    devices.push({ dev, port: p });
    out.interfaces++;
  }
  routerMetadata(f, ipt, ns, r.id, opts.metadata);

  const gw = r.gw_port;
  const fips = r._floatingips.filter((x) => isIpv4(x.floating_ip_address) && isIpv4(x.fixed_ip_address));
  if (gw) {
    out.exGwPorts++;
    // process_floating_ip_addresses: each floating IP is a /32 on qg-, so qg- answers ARP for it.
    const qg = plugGateway(f, br, ns, gw, fips.map((x) => `${x.floating_ip_address}/32`));
    devices.push({ dev: qg, port: gw });
    for (const ip of [...v4(gw).map((a) => a.ip_address), ...fips.map((x) => x.floating_ip_address)]) out.announce.push({ ns, dev: qg, ip });
    // _handle_router_snat_rules, then process_floating_ip_nat_rules.
    ipt.nat.addRule('snat', '-j $float-snat');
    gatewayNatRules(ipt, qg, gw, r.enable_snat);
    for (const x of fips) {
      ipt.nat.addRule('PREROUTING', `-d ${x.floating_ip_address}/32 -j DNAT --to-destination ${x.fixed_ip_address}`);
      // Traffic of the router itself to the floating IP (OUTPUT) reaches the instance too.
      ipt.nat.addRule('OUTPUT', `-d ${x.floating_ip_address}/32 -j DNAT --to-destination ${x.fixed_ip_address}`);
      ipt.nat.addRule('float-snat', `-s ${x.fixed_ip_address}/32 -j SNAT --to-source ${x.floating_ip_address} --random-fully`);
      out.fipStatuses[x.id] = 'ACTIVE';
      out.floatingIps++;
    }
  } else {
    for (const x of fips) out.fipStatuses[x.id] = 'ERROR'; // nowhere to put the address
  }
  extraRoutes(f, ns, r, devices);
  f.iptables(ns, ipt.texts());
  return out;
}
