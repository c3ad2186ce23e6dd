// How a request's identity is established. Only the API layer reads HTTP headers; the
// rest of the server sees a RequestContext. Two strategies, as Neutron's auth_strategy:
// noauth (below) and keystone (further down).
//
// noauth (as Neutron's `auth_strategy = noauth`, extended so that tests and operators can
// act as a member without an identity service):
//   no X-Project-Id header      -> admin, project `fake_project_id` (Neutron's behaviour)
//   X-Project-Id / X-Tenant-Id  -> that project
//   X-User-Id                   -> the user (defaults to the project)
//   X-Roles: a,b                -> roles; `admin` among them makes the request admin
//                                  (default: member)

import { createHash } from 'node:crypto';
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

// ---- keystone ---------------------------------------------------------------------------
//
// `auth_strategy = keystone`: every request carries X-Auth-Token, which the identity
// service vouches for. When identity runs in this process its service validates directly
// (it keeps its own short cache); otherwise GET /v3/auth/tokens on the identity URL, with
// the token as both caller and subject (Keystone lets a token validate itself), cached for
// a short time as keystonemiddleware does.

/** What the network API needs to know about a valid token. */
export interface ValidatedToken {
  userId: string;
  /** Absent for an unscoped token, which the network API refuses. */
  projectId?: string;
  roles: string[];
  /** Epoch milliseconds. */
  expiresAt: number;
}

export interface TokenValidator {
  /** undefined: unknown, expired or revoked. Throws only when the identity service cannot be asked. */
  validate(token: string): Promise<ValidatedToken | undefined>;
}

/**
 * The refusal keystonemiddleware sends in front of a real Neutron: 401, Keystone's error
 * body, and WWW-Authenticate naming the identity service to get a token from.
 */
export class AuthRejected extends Error {
  readonly status = 401;
  constructor(readonly identityUri: string) {
    super('The request you have made requires authentication.');
  }
  get headers(): Record<string, string> {
    return { 'www-authenticate': `Keystone uri="${this.identityUri}"` };
  }
  get body() {
    return { error: { code: 401, title: 'Unauthorized', message: this.message } };
  }
}

export function keystoneAuth(validator: TokenValidator, opts: { identityUri: string | (() => string) }): Authenticator {
  const uri = () => (typeof opts.identityUri === 'function' ? opts.identityUri() : opts.identityUri);
  return {
    async authenticate(h) {
      const token = header(h, 'x-auth-token');
      if (!token) throw new AuthRejected(uri());
      const t = await validator.validate(token);
      if (!t || !t.projectId) throw new AuthRejected(uri());
      const roles = t.roles.map((r) => r.toLowerCase());
      // Neutron's context_is_admin: role:admin.
      return { projectId: t.projectId, userId: t.userId, roles, isAdmin: roles.includes('admin') };
    },
  };
}

/**
 * Validation over HTTP against `identityUrl` (with or without /v3), remembering valid tokens
 * for `ttlMs` (never past their expiry). Invalid tokens are not remembered: a token issued a
 * moment later must work at once.
 */
export function httpTokenValidator(identityUrl: string, opts: { ttlMs?: number; maxEntries?: number } = {}): TokenValidator {
  const base = identityUrl.replace(/\/+$/, '').replace(/\/v3$/, '');
  const ttl = opts.ttlMs ?? 30_000;
  const max = opts.maxEntries ?? 10_000;
  const cache = new Map<string, { t: ValidatedToken; until: number }>();
  return {
    async validate(token) {
      const key = createHash('sha256').update(token).digest('hex');
      const now = Date.now();
      const hit = cache.get(key);
      if (hit && now < hit.until) return hit.t;
      cache.delete(key);
      let res: Response;
      try {
        res = await fetch(`${base}/v3/auth/tokens?nocatalog`, {
          headers: { 'x-auth-token': token, 'x-subject-token': token, accept: 'application/json' },
          signal: AbortSignal.timeout(10_000),
        });
      } catch (err) {
        throw new Error(`identity service at ${base} unreachable: ${(err as Error).message}`);
      }
      if (res.status === 401 || res.status === 404) return undefined;
      if (res.status !== 200) throw new Error(`identity service at ${base} answered ${res.status} to token validation`);
      const body = (await res.json()) as {
        token: { user: { id: string }; project?: { id: string }; roles?: Array<{ name: string }>; expires_at: string };
      };
      const t: ValidatedToken = {
        userId: body.token.user.id,
        projectId: body.token.project?.id,
        roles: (body.token.roles ?? []).map((r) => r.name),
        expiresAt: Date.parse(body.token.expires_at),
      };
      if (now >= t.expiresAt) return undefined;
      if (cache.size >= max) cache.clear();
      cache.set(key, { t, until: Math.min(now + ttl, t.expiresAt) });
      return t;
    },
  };
}
