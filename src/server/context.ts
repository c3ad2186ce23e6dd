// Who is asking: the project and roles a request acts with. The API layer builds it from the
// auth strategy (noauth headers now, Keystone tokens later); services and policy only read it.

export interface RequestContext {
  projectId: string;
  userId: string;
  roles: string[];
  isAdmin: boolean;
}

export function adminContext(projectId = 'admin'): RequestContext {
  return { projectId, userId: 'admin', roles: ['admin'], isAdmin: true };
}

export function memberContext(projectId: string, userId = projectId): RequestContext {
  return { projectId, userId, roles: ['member'], isAdmin: false };
}
