// The resources of the Neutron v2.0 API: for each, its URL and JSON names, its attributes
// (who may post or put them, how they are validated) and the service calls behind it. This
// is dvrnet's RESOURCE_ATTRIBUTE_MAP: the HTTP layer is generic over it.

import type { NetworkType } from '../config/server.js';
import type { RequestContext } from '../server/context.js';
import type { ListQuery } from '../server/listing.js';
import type { CorePlugin } from '../server/plugin.js';
import type { Resource as PolicyResource } from '../server/policy.js';
import * as v from './validators.js';

export interface Attr {
  post?: boolean;
  put?: boolean;
  required?: boolean;
  validate?: v.Validator;
}

type Body = Record<string, unknown>;

export interface ResourceDef {
  collection: string; // JSON key and URL segment with '_' -> '-'
  member: string;
  policy: PolicyResource;
  attrs: Record<string, Attr>;
  /** Query parameters that filter on something other than a plain attribute. */
  extraFilters?: string[];
  /** PUT /<collection>/<id>/<action>: Neutron's member actions (add_router_interface...). */
  actions?: Record<string, (ctx: RequestContext, id: string, body: Body) => Promise<unknown>>;
  /** No POST on the collection (agents register over RPC). */
  noCreate?: boolean;
  list(ctx: RequestContext, q: ListQuery): Promise<Body[]>;
  /** The whole reply of a list as JSON text, when the resource can serve it cheaper that way (no fields). */
  listJson?(ctx: RequestContext, q: ListQuery): Promise<string | undefined>;
  get(ctx: RequestContext, id: string): Promise<Body>;
  create(ctx: RequestContext, bodies: Body[]): Promise<Body[]>;
  update(ctx: RequestContext, id: string, body: Body): Promise<Body>;
  delete(ctx: RequestContext, id: string): Promise<void>;
}

const RO: Attr = {};
const name: Attr = { post: true, put: true, validate: v.string(255) };
const description: Attr = { post: true, put: true, validate: v.string(255) };
const project: Attr = { post: true, validate: v.string(255) };
const std = { id: RO, name, description, project_id: project, tenant_id: project, revision_number: RO, created_at: RO, updated_at: RO, tags: RO };

const pool = v.dict<{ start: string; end: string }>({ start: v.ip, end: v.ip }, ['start', 'end']);
const route = v.dict<{ destination: string; nexthop: string }>({ destination: v.cidr, nexthop: v.ip }, ['destination', 'nexthop']);
const fixedIp = v.dict<{ subnet_id?: string; ip_address?: string }>({ subnet_id: v.uuid, ip_address: v.ip });
const ipOrCidr: v.Validator<string> = (x, attr) => (typeof x === 'string' && x.includes('/') ? v.cidr(x, attr) : v.ip(x, attr));
const pair = v.dict<{ ip_address: string; mac_address?: string }>({ ip_address: ipOrCidr, mac_address: v.mac }, ['ip_address']);
/** A remote prefix may carry host bits (Neutron normalises it in normalized_cidr). */
const ipPrefix: v.Validator<string> = (x, attr) => {
  if (typeof x !== 'string') return v.cidr(x, attr);
  if (!x.includes('/')) return `${v.ip(x, attr)}/${x.includes(':') ? 128 : 32}`;
  const [addr, len] = x.split('/');
  v.ip(addr, attr);
  v.int(0, x.includes(':') ? 128 : 32)(len, attr);
  return `${v.ip(addr, attr)}/${Number(len)}`;
};

const gatewayInfo: v.Validator = (x, attr) => {
  if (x === null) return null;
  if (typeof x === 'object' && !Array.isArray(x) && Object.keys(x as object).length === 0) return {};
  return v.dict<{ network_id: string; enable_snat?: boolean; external_fixed_ips?: Array<{ subnet_id?: string; ip_address?: string }> }>(
    { network_id: v.uuid, enable_snat: v.bool, external_fixed_ips: v.list(fixedIp) },
    ['network_id'],
  )(x, attr);
};
const routeEntry = v.dict<{ destination: string; nexthop: string }>({ destination: v.cidr, nexthop: v.ip }, ['destination', 'nexthop']);
const interfaceInfo = (body: Body) => {
  const out: { subnet_id?: string; port_id?: string } = {};
  for (const k of Object.keys(body)) if (k !== 'subnet_id' && k !== 'port_id') throw v.fail(k, `Unrecognized attribute '${k}'`);
  if (body.subnet_id !== undefined) out.subnet_id = v.uuid(body.subnet_id, 'subnet_id');
  if (body.port_id !== undefined) out.port_id = v.uuid(body.port_id, 'port_id');
  return out;
};

export function resources(p: CorePlugin): ResourceDef[] {
  return [
    {
      collection: 'networks',
      member: 'network',
      policy: 'network',
      attrs: {
        ...std,
        admin_state_up: { post: true, put: true, validate: v.bool },
        status: RO,
        subnets: RO,
        shared: { post: true, put: true, validate: v.bool },
        mtu: { post: true, put: true, validate: v.int(68) },
        'router:external': { post: true, put: true, validate: v.bool },
        port_security_enabled: { post: true, put: true, validate: v.bool },
        availability_zone_hints: { post: true, validate: v.list(v.string(255)) },
        availability_zones: RO,
        ipv4_address_scope: RO,
        ipv6_address_scope: RO,
        l2_adjacency: RO,
        'provider:network_type': { post: true, put: true, validate: v.oneOf<NetworkType>('flat', 'vlan', 'gre', 'vxlan') },
        'provider:physical_network': { post: true, put: true, validate: v.nullable(v.string(64)) },
        'provider:segmentation_id': { post: true, put: true, validate: v.nullable(v.int(0, 2 ** 32 - 1)) },
      },
      list: (c, q) => p.networks.list(c, q),
      get: (c, id) => p.networks.get(c, id),
      create: (c, bs) => p.networks.createBulk(c, bs as any),
      update: (c, id, b) => p.networks.update(c, id, b),
      delete: (c, id) => p.networks.delete(c, id),
    },
    {
      collection: 'subnets',
      member: 'subnet',
      policy: 'subnet',
      attrs: {
        ...std,
        network_id: { post: true, required: true, validate: v.uuid },
        ip_version: { post: true, required: true, validate: (x, a) => Number(v.oneOf('4', '6')(String(x), a)) },
        cidr: { post: true, required: true, validate: v.cidr },
        gateway_ip: { post: true, put: true, validate: v.nullable(v.ip) },
        allocation_pools: { post: true, put: true, validate: v.list(pool) },
        dns_nameservers: { post: true, put: true, validate: v.list(v.ip, { unique: true }) },
        host_routes: { post: true, put: true, validate: v.list(route) },
        enable_dhcp: { post: true, put: true, validate: v.bool },
        ipv6_ra_mode: { post: true, validate: v.nullable(v.oneOf('slaac', 'dhcpv6-stateful', 'dhcpv6-stateless')) },
        ipv6_address_mode: { post: true, validate: v.nullable(v.oneOf('slaac', 'dhcpv6-stateful', 'dhcpv6-stateless')) },
        subnetpool_id: { post: true, validate: v.onlyNull('subnet pools are not supported') },
        segment_id: { post: true, validate: v.onlyNull('routed network segments are not supported') },
        service_types: { post: true, validate: v.list(v.string(255)) },
      },
      list: (c, q) => p.subnets.list(c, q),
      get: (c, id) => p.subnets.get(c, id),
      create: (c, bs) => p.subnets.createBulk(c, bs as any),
      update: (c, id, b) => p.subnets.update(c, id, b),
      delete: (c, id) => p.subnets.delete(c, id),
    },
    {
      collection: 'ports',
      member: 'port',
      policy: 'port',
      extraFilters: ['fixed_ips', 'security_groups'],
      attrs: {
        ...std,
        network_id: { post: true, required: true, validate: v.uuid },
        admin_state_up: { post: true, put: true, validate: v.bool },
        mac_address: { post: true, put: true, validate: v.mac },
        fixed_ips: { post: true, put: true, validate: v.list(fixedIp) },
        device_id: { post: true, put: true, validate: v.string(255) },
        device_owner: { post: true, put: true, validate: v.string(255) },
        status: RO,
        security_groups: { post: true, put: true, validate: v.list(v.uuid) },
        allowed_address_pairs: { post: true, put: true, validate: v.list(pair) },
        port_security_enabled: { post: true, put: true, validate: v.bool },
        extra_dhcp_opts: RO,
        ip_allocation: RO,
        'binding:host_id': { post: true, put: true, validate: v.string(255) },
        'binding:profile': { post: true, put: true, validate: v.anyDict },
        'binding:vnic_type': { post: true, put: true, validate: v.oneOf('normal', 'direct', 'macvtap', 'baremetal', 'direct-physical', 'virtio-forwarder', 'smart-nic', 'remote-managed') },
        'binding:vif_type': RO,
        'binding:vif_details': RO,
      },
      list: (c, q) => p.ports.list(c, q),
      listJson: (c, q) => p.ports.listJson(c, q),
      get: (c, id) => p.ports.get(c, id),
      create: (c, bs) => p.ports.createBulk(c, bs as any),
      update: (c, id, b) => p.ports.update(c, id, b),
      delete: (c, id) => p.ports.delete(c, id),
    },
    {
      collection: 'security_groups',
      member: 'security_group',
      policy: 'security_group',
      attrs: {
        ...std,
        stateful: { post: true, put: true, validate: v.bool },
        shared: RO,
        security_group_rules: RO,
      },
      list: (c, q) => p.securityGroups.list(c, q),
      get: (c, id) => p.securityGroups.get(c, id),
      create: (c, bs) => p.securityGroups.createBulk(c, bs as any),
      update: (c, id, b) => p.securityGroups.update(c, id, b),
      delete: (c, id) => p.securityGroups.delete(c, id),
    },
    {
      collection: 'security_group_rules',
      member: 'security_group_rule',
      policy: 'security_group_rule',
      attrs: {
        id: RO,
        description,
        project_id: project,
        tenant_id: project,
        revision_number: RO,
        created_at: RO,
        updated_at: RO,
        tags: RO,
        security_group_id: { post: true, required: true, validate: v.uuid },
        direction: { post: true, required: true, validate: v.oneOf('ingress', 'egress') },
        ethertype: { post: true, validate: v.oneOf('IPv4', 'IPv6') },
        protocol: { post: true, validate: v.nullable((x, a) => (typeof x === 'number' ? v.int(0, 255)(x, a) : v.string(40)(x, a))) },
        port_range_min: { post: true, validate: v.nullable(v.int(0, 65535)) },
        port_range_max: { post: true, validate: v.nullable(v.int(0, 65535)) },
        remote_ip_prefix: { post: true, validate: v.nullable(ipPrefix) },
        remote_group_id: { post: true, validate: v.nullable(v.uuid) },
        remote_address_group_id: { post: true, validate: v.onlyNull('address groups are not supported') },
        normalized_cidr: RO,
      },
      list: (c, q) => p.securityGroups.listRules(c, q),
      get: (c, id) => p.securityGroups.getRule(c, id),
      create: (c, bs) => p.securityGroups.createRules(c, bs as any),
      update: (c, id, b) => p.securityGroups.updateRule(c, id, b),
      delete: (c, id) => p.securityGroups.deleteRule(c, id),
    },
    {
      collection: 'routers',
      member: 'router',
      policy: 'router',
      attrs: {
        ...std,
        admin_state_up: { post: true, put: true, validate: v.bool },
        status: RO,
        external_gateway_info: { post: true, put: true, validate: gatewayInfo },
        routes: { put: true, validate: v.list(routeEntry) },
        distributed: { post: true, put: true, validate: v.bool },
        ha: { post: true, put: true, validate: v.bool },
        availability_zone_hints: { post: true, validate: v.list(v.string(255)) },
        availability_zones: RO,
        flavor_id: RO,
      },
      actions: {
        add_router_interface: (c, id, b) => p.routers.addInterface(c, id, interfaceInfo(b)),
        remove_router_interface: (c, id, b) => p.routers.removeInterface(c, id, interfaceInfo(b)),
      },
      list: (c, q) => p.routers.list(c, q),
      get: (c, id) => p.routers.get(c, id),
      create: (c, bs) => p.routers.createBulk(c, bs as any),
      update: (c, id, b) => p.routers.update(c, id, b),
      delete: (c, id) => p.routers.delete(c, id),
    },
    {
      collection: 'floatingips',
      member: 'floatingip',
      policy: 'floatingip',
      attrs: {
        id: RO,
        description,
        project_id: project,
        tenant_id: project,
        revision_number: RO,
        created_at: RO,
        updated_at: RO,
        tags: RO,
        floating_network_id: { post: true, required: true, validate: v.uuid },
        floating_ip_address: { post: true, validate: v.ip },
        subnet_id: { post: true, validate: v.nullable(v.uuid) },
        port_id: { post: true, put: true, validate: v.nullable(v.uuid) },
        fixed_ip_address: { post: true, put: true, validate: v.nullable(v.ip) },
        router_id: RO,
        status: RO,
        port_forwardings: RO,
      },
      list: (c, q) => p.floatingIps.list(c, q),
      get: (c, id) => p.floatingIps.get(c, id),
      create: (c, bs) => p.floatingIps.createBulk(c, bs as any),
      update: (c, id, b) => p.floatingIps.update(c, id, b),
      delete: (c, id) => p.floatingIps.delete(c, id),
    },
    {
      collection: 'agents',
      member: 'agent',
      policy: 'agent',
      noCreate: true,
      attrs: {
        id: RO,
        agent_type: RO,
        binary: RO,
        topic: RO,
        host: RO,
        admin_state_up: { put: true, validate: v.bool },
        description: { put: true, validate: v.string(255) },
        created_at: RO,
        started_at: RO,
        heartbeat_timestamp: RO,
        alive: { validate: v.bool },
        availability_zone: RO,
        configurations: RO,
        resources_synced: RO,
      },
      list: (c, q) => p.agents.list(c, q),
      get: (c, id) => p.agents.get(c, id),
      create: async () => {
        throw v.fail('agent', 'agents register themselves');
      },
      update: (c, id, b) => p.agents.update(c, id, b),
      delete: async (c, id) => {
        await p.deleteAgent(c, id);
      },
    },
  ];
}
