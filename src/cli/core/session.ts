// How the command line reaches the cloud, as the OpenStack clients do: a token and network
// endpoint from --os-token + --os-url, or password authentication against OS_AUTH_URL
// (Identity v3, project scope) with the network endpoint taken from the catalog. Every
// failure becomes a CliError carrying the server's own message.

import { GLOBAL_OPTIONS } from './args.js';

export class CliError extends Error {
  /** The HTTP status when a server refused the request. */
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface Reply {
  status: number;
  body: any;
}

export interface Credentials {
  authUrl?: string;
  username?: string;
  userId?: string;
  password?: string;
  projectName?: string;
  projectId?: string;
  userDomainName?: string;
  userDomainId?: string;
  projectDomainName?: string;
  projectDomainId?: string;
  regionName?: string;
  interface?: string;
  token?: string;
  url?: string;
}

/** --os-* flags over OS_* variables. */
export function credentials(global: Record<string, string>, env: NodeJS.ProcessEnv): Credentials {
  const get = (flag: string) => global[flag] ?? env[GLOBAL_OPTIONS[flag]] ?? undefined;
  const iface = get('--os-interface') ?? get('--os-endpoint-type');
  return {
    authUrl: get('--os-auth-url'),
    username: get('--os-username'),
    userId: get('--os-user-id'),
    password: get('--os-password'),
    projectName: get('--os-project-name') ?? get('--os-tenant-name'),
    projectId: get('--os-project-id') ?? get('--os-tenant-id'),
    userDomainName: get('--os-user-domain-name'),
    userDomainId: get('--os-user-domain-id'),
    projectDomainName: get('--os-project-domain-name'),
    projectDomainId: get('--os-project-domain-id'),
    regionName: get('--os-region-name'),
    interface: iface?.replace(/URL$/, ''),
    token: get('--os-token'),
    url: get('--os-url'),
  };
}

/** The message a failed reply carries: Neutron's NeutronError, Keystone's error, or the status. */
export function errorMessage(r: Reply): string {
  const b = r.body;
  if (b?.NeutronError?.message) return b.NeutronError.message;
  if (b?.error?.message) return b.error.message;
  // Nova's faults: {"itemNotFound": {"code": 404, "message": ...}}
  if (b && typeof b === 'object' && !Array.isArray(b)) {
    const fault = Object.values(b)[0] as { message?: unknown } | undefined;
    if (typeof fault?.message === 'string') return fault.message;
  }
  if (typeof b === 'string' && b) return b;
  return `HTTP ${r.status}`;
}

async function http(method: string, url: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: any; headers: Headers }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: body === undefined ? { accept: 'application/json', ...headers } : { accept: 'application/json', 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    const e = err as Error & { cause?: Error };
    throw new CliError(`Unable to establish connection to ${url}: ${e.cause?.message ?? e.message}`);
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text for the error message
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export interface Token {
  token: string;
  body: any;
}

/** POST /v3/auth/tokens with password credentials, scoped to the project named or given. */
export async function passwordToken(c: Credentials): Promise<Token> {
  const missing = [
    !c.authUrl && 'auth_url (--os-auth-url or OS_AUTH_URL)',
    !c.username && !c.userId && 'username (--os-username or OS_USERNAME)',
    c.password === undefined && 'password (--os-password or OS_PASSWORD)',
  ].filter(Boolean);
  if (missing.length) throw new CliError(`Missing credentials: ${missing.join(', ')}`);
  const domain = (name?: string, id?: string) => (id ? { id } : { name: name ?? 'Default' });
  const user = c.userId ? { id: c.userId, password: c.password } : { name: c.username, domain: domain(c.userDomainName, c.userDomainId), password: c.password };
  const project = c.projectId ? { id: c.projectId } : c.projectName ? { name: c.projectName, domain: domain(c.projectDomainName, c.projectDomainId) } : undefined;
  const base = c.authUrl!.replace(/\/+$/, '');
  const url = `${/\/v3$/.test(base) ? base : `${base}/v3`}/auth/tokens`;
  const r = await http('POST', url, {}, { auth: { identity: { methods: ['password'], password: { user } }, ...(project ? { scope: { project } } : {}) } });
  if (r.status !== 201) throw new CliError(`${errorMessage(r)} (HTTP ${r.status})`);
  return { token: r.headers.get('x-subject-token') ?? '', body: r.body };
}

/** The catalog URL of `type` for the interface (public) and region asked for. */
export function endpointOf(tokenBody: any, type: string, c: Credentials): string {
  const iface = c.interface ?? 'public';
  const service = (tokenBody?.token?.catalog ?? []).find((s: any) => s.type === type);
  const ep = service?.endpoints?.find((e: any) => e.interface === iface && (!c.regionName || e.region_id === c.regionName || e.region === c.regionName));
  if (!ep) throw new CliError(`publicURL endpoint for ${type} service${c.regionName ? ` in ${c.regionName} region` : ''} not found`);
  return ep.url.replace(/\/+$/, '');
}

/** An authenticated connection to one cloud: the network API, and identity when known. */
export class Session {
  private token?: Token;
  private resolved = false;
  private network?: string;

  constructor(readonly creds: Credentials) {}

  private async ensure(): Promise<void> {
    if (this.resolved) return;
    const c = this.creds;
    if (c.token && c.url) this.network = c.url.replace(/\/+$/, '');
    else if (c.url && !c.authUrl) this.network = c.url.replace(/\/+$/, ''); // noauth server
    else {
      this.token = await passwordToken(c);
      this.network = c.url?.replace(/\/+$/, '') ?? endpointOf(this.token.body, 'network', c);
    }
    this.resolved = true;
  }

  private async headers(): Promise<Record<string, string>> {
    await this.ensure();
    const t = this.creds.token && this.creds.url ? this.creds.token : this.token?.token;
    return t ? { 'x-auth-token': t } : {};
  }

  /** The project the token is scoped to (undefined without password authentication). */
  async projectId(): Promise<string | undefined> {
    await this.ensure();
    return this.token?.body?.token?.project?.id;
  }

  /** Roles of the token when the CLI authenticated itself (neutronclient adds tenant_id columns for admins). */
  async isAdmin(): Promise<boolean> {
    await this.ensure();
    return (this.token?.body?.token?.roles ?? []).some((r: any) => r.name === 'admin');
  }

  /** A network API call (`path` under /v2.0); non-2xx replies throw with the server's message. */
  async neutron(method: string, path: string, body?: unknown): Promise<any> {
    const h = await this.headers();
    const base = /\/v2\.0$/.test(this.network!) ? this.network! : `${this.network}/v2.0`;
    const r = await http(method, base + path, h, body);
    if (r.status >= 400) throw new CliError(errorMessage(r), r.status);
    return r.body;
  }

  /** The compute endpoint of the catalog (service type compute), e.g. http://host:8774/v2.1. */
  async computeUrl(): Promise<string> {
    await this.ensure();
    if (!this.token) throw new CliError('This command needs password credentials (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME): the compute endpoint comes from the catalog');
    return endpointOf(this.token.body, 'compute', this.creds);
  }

  /**
   * A compute API call: `path` under the catalog's compute endpoint (/servers...), or, when it
   * starts with /dvrnet/, under the same service's root (the dataplane's endpoints).
   */
  async compute(method: string, path: string, body?: unknown): Promise<any> {
    const url = await this.computeUrl();
    const base = path.startsWith('/dvrnet/') ? url.replace(/\/v2(\.\d+)?$/, '') : url;
    const r = await http(method, base + path, await this.headers(), body);
    if (r.status >= 400) throw new CliError(errorMessage(r), r.status);
    return r.body;
  }

  /** An identity API call (`path` under /v3). */
  async identity(method: string, path: string): Promise<Reply> {
    await this.ensure();
    if (!this.token) throw new CliError('This command needs password credentials (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME)');
    const url = endpointOf(this.token.body, 'identity', this.creds);
    const base = /\/v3$/.test(url) ? url : `${url}/v3`;
    const r = await http(method, base + path, { 'x-auth-token': this.token.token });
    return { status: r.status, body: r.body };
  }
}
