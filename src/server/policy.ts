// Neutron's default policy (legacy defaults, as Zed ships with enforce_new_defaults=False),
// for the resources dvrnet has. Every authorisation decision is made here: the API layer
// asks before writing attributes and before showing them; services ask which rows a
// context may see. Hidden resources answer 404, visible-but-forbidden ones 403, as Neutron.

import { Faults } from '../common/errors.js';
import type { RequestContext } from './context.js';

export type Resource = 'network' | 'subnet' | 'port' | 'security_group' | 'security_group_rule' | 'router' | 'floatingip' | 'agent';
export type Action = 'create' | 'update' | 'get';

/** Attributes only an admin may set (create/update) or see (get). */
const ADMIN_ONLY: Record<Resource, Partial<Record<string, Action[]>>> = {
  network: {
    'provider:network_type': ['create', 'update', 'get'],
    'provider:physical_network': ['create', 'update', 'get'],
    'provider:segmentation_id': ['create', 'update', 'get'],
    segments: ['create', 'update', 'get'],
    'router:external': ['create', 'update'],
    shared: ['create', 'update'],
  },
  subnet: {},
  port: {
    'binding:host_id': ['create', 'update', 'get'],
    'binding:profile': ['create', 'update', 'get'],
    'binding:vif_type': ['get'],
    'binding:vif_details': ['get'],
    mac_address: ['update'],
  },
  security_group: {},
  security_group_rule: {},
  router: {
    distributed: ['create', 'update', 'get'],
    ha: ['create', 'update', 'get'],
  },
  floatingip: {
    floating_ip_address: ['create'],
  },
  agent: {},
};

/** Keys inside a router's external_gateway_info only an admin may set. */
const ADMIN_ONLY_GATEWAY_KEYS = ['enable_snat', 'external_fixed_ips'];

/** Refuse any attribute in `attrs` the context may not set: 403 naming Neutron's rule. */
export function checkAttributes(ctx: RequestContext, resource: Resource, action: 'create' | 'update', attrs: object): void {
  if (ctx.isAdmin) return;
  for (const name of Object.keys(attrs)) {
    if (ADMIN_ONLY[resource][name]?.includes(action)) throw Faults.policy(`${action}_${resource}:${name}`);
  }
  const gw = resource === 'router' ? (attrs as { external_gateway_info?: Record<string, unknown> | null }).external_gateway_info : undefined;
  for (const key of ADMIN_ONLY_GATEWAY_KEYS)
    if (gw && key in gw) throw Faults.policy(`${action}_router:external_gateway_info:${key}`);
}

/** Remove what the context may not see from a response body (in place, returns it). */
export function hideAttributes<T extends Record<string, unknown>>(ctx: RequestContext, resource: Resource, body: T): T {
  if (ctx.isAdmin) return body;
  for (const [name, actions] of Object.entries(ADMIN_ONLY[resource])) if (actions!.includes('get')) delete body[name];
  return body;
}

/**
 * The project a new resource belongs to: the request's own, or, for an admin only, the one
 * named in the body (Neutron answers a member's attempt with 400, not 403).
 */
export function owningProject(ctx: RequestContext, body: { project_id?: string; tenant_id?: string }): string {
  const { project_id: p, tenant_id: t } = body;
  if (p !== undefined && t !== undefined && p !== t) throw Faults.badRequest(`'project_id' and 'tenant_id' do not match`);
  const requested = p ?? t;
  if (requested === undefined || requested === ctx.projectId) return ctx.projectId;
  if (!ctx.isAdmin)
    throw Faults.badRequest(
      "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
    );
  return requested;
}

/** May the context modify a row it can see? Owners and admins may. */
export function checkOwner(ctx: RequestContext, resource: Resource, action: 'update' | 'delete', projectId: string): void {
  if (!ctx.isAdmin && ctx.projectId !== projectId) throw Faults.policy(`${action}_${resource}`);
}

/**
 * May the context attach a subnet or port to this network? Its owner, an admin, or anyone
 * on a shared network (Neutron's _validate_network_tenant_ownership).
 */
export function checkNetworkUse(
  ctx: RequestContext,
  what: 'subnet' | 'port',
  net: { project_id: string; shared: number },
): void {
  if (ctx.isAdmin || net.shared || net.project_id === ctx.projectId) return;
  throw Faults.policy(`create_${what}:network`);
}
