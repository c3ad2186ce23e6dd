import { performance } from 'node:perf_hooks';

// A minimal Neutron v2.0 HTTP client for the benchmark: plain fetch (Node's built-in undici,
// keep-alive pooled per origin), JSON in and out. It never throws for HTTP or network
// failures: the caller checks the status it expected and counts the rest as errors.

export interface ClientOptions {
  /** Neutron endpoint, with or without the /v2.0 suffix (http://127.0.0.1:9696). */
  url: string;
  /** Sent as X-Auth-Token (keystone). */
  token?: string;
  /** Sent as X-Project-Id (noauth); create bodies then also carry project_id, as Neutron requires. */
  projectId?: string;
  timeoutMs?: number;
}

export interface Reply {
  status: number;
  /** Parsed JSON body, or undefined (204, non-JSON body, network error). */
  body?: any;
  /** Network error, timeout, or unparsable body. */
  error?: string;
  /** First bytes of the body, for error reports. */
  text?: string;
  /** From sending the request to the last byte of the reply (JSON parsing excluded). */
  ms: number;
}

export class NeutronClient {
  readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(readonly opts: ClientOptions) {
    const u = opts.url.replace(/\/+$/, '');
    this.base = /\/v2\.0$/.test(u) ? u : `${u}/v2.0`;
    this.headers = { Accept: 'application/json' };
    if (opts.token) this.headers['X-Auth-Token'] = opts.token;
    if (opts.projectId) this.headers['X-Project-Id'] = opts.projectId;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  /** Adds project_id to a create body when a project is given (noauth demands it). */
  withProject<T extends object>(attrs: T): T & { project_id?: string } {
    return this.opts.projectId ? { ...attrs, project_id: this.opts.projectId } : attrs;
  }

  async request(method: string, path: string, body?: unknown): Promise<Reply> {
    const t0 = performance.now();
    const headers = body === undefined ? this.headers : { ...this.headers, 'Content-Type': 'application/json' };
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      const err = e as Error & { cause?: Error };
      return { status: 0, error: `${err.name}: ${err.cause?.message ?? err.message}`, ms: performance.now() - t0 };
    }
    const text = await res.text().catch((e: Error) => `(body read failed: ${e.message})`);
    const ms = performance.now() - t0;
    if (!text) return { status: res.status, ms };
    try {
      return { status: res.status, body: JSON.parse(text), text: text.slice(0, 300), ms };
    } catch {
      return { status: res.status, error: 'response body is not JSON', text: text.slice(0, 300), ms };
    }
  }

  get(path: string) {
    return this.request('GET', path);
  }
  post(path: string, body: unknown) {
    return this.request('POST', path, body);
  }
  delete(path: string) {
    return this.request('DELETE', path);
  }
}
