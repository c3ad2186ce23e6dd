// How a request's identity is established. Only the API layer reads HTTP headers; the
// rest of the server sees a RequestContext.
//
// noauth (as Neutron's `auth_strategy = noauth`, extended so that tests and operators can
// act as a member without an identity service):
//   no X-Project-Id header      -> admin, project `fake_project_id` (Neutron's behaviour)
//   X-Project-Id / X-Tenant-Id  -> that project
//   X-User-Id                   -> the user (defaults to the project)
//   X-Roles: a,b                -> roles; `admin` among them makes the request admin
//                                  (default: member)

import { Faults } from '../common/errors.js';
import type { RequestContext } from '../server/context.js';

export type Headers = Record<string, string | string[] | undefined>;

export interface Authenticator {
  authenticate(headers: Headers): Promise<RequestContext>;
}

const header = (h: Headers, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

export const NOAUTH_PROJECT = 'fake_project_id';

export const noauth: Authenticator = {
  async authenticate(h) {
    const project = header(h, 'x-project-id') ?? header(h, 'x-tenant-id');
    if (!project) return { projectId: NOAUTH_PROJECT, userId: 'fake_user_id', roles: ['admin'], isAdmin: true };
    const roles = (header(h, 'x-roles') ?? 'member')
      .split(',')
      .map((r) => r.trim().toLowerCase())
      .filter(Boolean);
    return { projectId: project, userId: header(h, 'x-user-id') ?? project, roles, isAdmin: roles.includes('admin') };
  },
};

/** For auth_strategy values this server cannot serve: every request is refused. */
export const denyAll: Authenticator = {
  async authenticate() {
    throw Faults.notAuthenticated();
  },
};
