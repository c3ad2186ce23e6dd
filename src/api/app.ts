// The Neutron v2.0 HTTP API on Fastify: discovery, extensions, and the generic collection
// and member routes for every resource in ./resources.ts (validation, policy, fields,
// filters, sorting, paging, bulk create, Neutron's error bodies).

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Faults, NeutronError } from '../common/errors.js';
import type { RequestContext } from '../server/context.js';
import type { ListQuery, SortKey } from '../server/listing.js';
import type { CorePlugin } from '../server/plugin.js';
import { checkAttributes, hideAttributes, owningProject } from '../server/policy.js';
import { AuthRejected, type Authenticator } from './auth.js';
import { EXTENSIONS } from './extensions.js';
import { resources, type ResourceDef } from './resources.js';
import * as v from './validators.js';
import { schedulerRoutes } from './scheduler_routes.js';

/** Neutron's default max_request_body_size. */
export const MAX_BODY = 114688;

type Body = Record<string, unknown>;

declare module 'fastify' {
  interface FastifyRequest {
    ctx: RequestContext;
  }
}

export interface AppOptions {
  plugin: CorePlugin;
  auth: Authenticator;
  logger?: boolean;
}

export function buildApp(opts: AppOptions): FastifyInstance {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: MAX_BODY,
    // Old neutron clients append .json to every path.
    rewriteUrl: (req) => (req.url ?? '/').replace(/\.json(?=$|\?)/, ''),
  });

  // An empty JSON body (a DELETE with a content type) is no body, not an error.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, text, done) => {
    const s = String(text);
    if (s.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(s));
    } catch {
      done(Faults.malformedBody(), undefined);
    }
  });

  app.setErrorHandler((err: unknown, req, reply) => {
    const e = err as { statusCode?: number; code?: string; message?: string };
    if (err instanceof AuthRejected) return reply.code(err.status).headers(err.headers).send(err.body);
    let fault: NeutronError;
    if (err instanceof NeutronError) fault = err;
    else if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') fault = new NeutronError('HTTPRequestEntityTooLarge', 413, 'Request is too large.');
    else if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') fault = new NeutronError('HTTPUnsupportedMediaType', 415, 'Unsupported Content-Type');
    else if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) fault = new NeutronError('HTTPBadRequest', e.statusCode, e.message ?? 'Bad request');
    else {
      req.log.error(err);
      if (!opts.logger) console.error(err);
      fault = new NeutronError('HTTPInternalServerError', 500, 'Request Failed: internal server error while processing your request.');
    }
    reply.code(fault.status).send({ NeutronError: { type: fault.type, message: fault.message, detail: '' } });
  });
  app.setNotFoundHandler((_req, reply) => {
    reply.code(404).send({ NeutronError: { type: 'HTTPNotFound', message: 'The resource could not be found.', detail: '' } });
  });

  app.addHook('onRequest', async (req) => {
    // Version discovery is public, as Neutron's paste pipeline serves it before authtoken.
    if (req.url === '/' && (req.method === 'GET' || req.method === 'HEAD')) return;
    req.ctx = await opts.auth.authenticate(req.headers);
  });

  const base = (req: FastifyRequest) => `${req.protocol}://${req.headers.host ?? 'localhost'}`;
  const defs = resources(opts.plugin);

  app.get('/', async (req) => ({
    versions: [{ id: 'v2.0', status: 'CURRENT', links: [{ href: `${base(req)}/v2.0/`, rel: 'self' }] }],
  }));
  const root = async (req: FastifyRequest) => ({
    resources: defs.map((d) => ({
      name: d.member,
      collection: d.collection,
      links: [{ href: `${base(req)}/v2.0/${urlName(d)}`, rel: 'self' }],
    })),
  });
  app.get('/v2.0', root);
  app.get('/v2.0/', root);
  app.get('/v2.0/extensions', async () => ({ extensions: EXTENSIONS }));
  app.get<{ Params: { alias: string } }>('/v2.0/extensions/:alias', async (req) => {
    const ext = EXTENSIONS.find((x) => x.alias === req.params.alias);
    if (!ext) throw new NeutronError('HTTPNotFound', 404, `Extension with alias ${req.params.alias} does not exist`);
    return { extension: ext };
  });

  for (const d of defs) routes(app, d, base);
  schedulerRoutes(app, opts.plugin);
  return app;
}

const urlName = (d: ResourceDef) => d.collection.replace(/_/g, '-');

function routes(app: FastifyInstance, d: ResourceDef, base: (r: FastifyRequest) => string) {
  const path = `/v2.0/${urlName(d)}`;
  const show = (ctx: RequestContext, body: Body, fields: string[] | undefined) => {
    hideAttributes(ctx, d.policy, body);
    if (!fields?.length) return body;
    const out: Body = {};
    for (const f of fields) if (f in body) out[f] = body[f];
    return out;
  };

  app.get(path, async (req, reply) => {
    const { q, fields } = parseListQuery(d, req.query as Record<string, unknown>);
    if (!fields?.length && d.listJson) {
      const json = await d.listJson(req.ctx, q);
      if (json !== undefined) return reply.type('application/json; charset=utf-8').send(json);
    }
    const limit = q.limit;
    if (limit !== undefined) q.limit = limit + 1; // one more tells whether a next page exists
    let items = await d.list(req.ctx, q);
    const more = limit !== undefined && items.length > limit;
    if (more) items = q.pageReverse ? items.slice(1) : items.slice(0, limit);
    const out: Body = { [d.collection]: items.map((x) => show(req.ctx, x, fields)) };
    if (limit !== undefined) {
      const links: Array<{ rel: string; href: string }> = [];
      const href = (marker: string, reverse: boolean) => {
        const params = new URLSearchParams();
        for (const [k, val] of Object.entries(req.query as Record<string, unknown>)) {
          if (k === 'marker' || k === 'page_reverse') continue;
          for (const x of Array.isArray(val) ? val : [val]) params.append(k, String(x));
        }
        params.set('marker', marker);
        if (reverse) params.set('page_reverse', 'True');
        return `${base(req)}/v2.0/${urlName(d)}?${params}`;
      };
      const [first, last] = [items[0], items[items.length - 1]];
      const nextExists = q.pageReverse ? !!q.marker : more;
      const prevExists = q.pageReverse ? more : !!q.marker;
      if (last && nextExists) links.push({ rel: 'next', href: href(String(last.id), false) });
      if (first && prevExists) links.push({ rel: 'previous', href: href(String(first.id), true) });
      out[`${d.collection}_links`] = links;
    }
    return out;
  });

  app.get<{ Params: { id: string } }>(`${path}/:id`, async (req) => {
    const { fields } = parseListQuery(d, req.query as Record<string, unknown>, true);
    return { [d.member]: show(req.ctx, await d.get(req.ctx, req.params.id), fields) };
  });

  for (const [action, run] of Object.entries(d.actions ?? {}))
    app.put<{ Params: { id: string } }>(`${path}/:id/${action}`, async (req) => {
      const body = req.body;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw Faults.malformedBody();
      return run(req.ctx, req.params.id, body as Body);
    });

  if (!d.noCreate) app.post(path, async (req, reply) => {
    const body = req.body as Body | undefined;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw Faults.bodyMissing(d.member);
    const bulk = Array.isArray(body[d.collection]);
    const raw = bulk ? (body[d.collection] as unknown[]) : [body[d.member]];
    if (!bulk && (typeof raw[0] !== 'object' || raw[0] === null || Array.isArray(raw[0]))) throw Faults.bodyMissing(d.member);
    if (bulk && raw.length === 0) throw Faults.badRequest(`Resources required`);
    const items = raw.map((item) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) throw Faults.bodyMissing(d.member);
      const attrs = validate(d, item as Body, 'post');
      checkAttributes(req.ctx, d.policy, 'create', attrs);
      const project = owningProject(req.ctx, attrs as { project_id?: string; tenant_id?: string });
      delete attrs.tenant_id;
      attrs.project_id = project;
      return attrs;
    });
    const created = await d.create(req.ctx, items);
    reply.code(201);
    return bulk
      ? { [d.collection]: created.map((x) => show(req.ctx, x, undefined)) }
      : { [d.member]: show(req.ctx, created[0], undefined) };
  });

  app.put<{ Params: { id: string } }>(`${path}/:id`, async (req) => {
    const body = req.body as Body | undefined;
    const item = body?.[d.member];
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw Faults.bodyMissing(d.member);
    const attrs = validate(d, item as Body, 'put');
    checkAttributes(req.ctx, d.policy, 'update', attrs);
    return { [d.member]: show(req.ctx, await d.update(req.ctx, req.params.id, attrs), undefined) };
  });

  app.delete<{ Params: { id: string } }>(`${path}/:id`, async (req, reply) => {
    await d.delete(req.ctx, req.params.id);
    reply.code(204).send();
  });
}

/** Check and convert a request body's attributes against the resource's attribute map. */
export function validate(d: ResourceDef, item: Body, op: 'post' | 'put'): Body {
  const unknown = Object.keys(item).filter((k) => !(k in d.attrs));
  if (unknown.length) throw Faults.unrecognizedAttributes(unknown);
  const out: Body = {};
  for (const [k, val] of Object.entries(item)) {
    const a = d.attrs[k];
    if (!a[op]) throw op === 'put' ? Faults.readOnlyAttribute(k) : Faults.badRequest(`Attribute '${k}' not allowed in POST`);
    out[k] = a.validate ? a.validate(val, k) : val;
  }
  if (op === 'post')
    for (const [k, a] of Object.entries(d.attrs)) if (a.required && !(k in item)) throw Faults.missingAttribute(k);
  return out;
}

const PAGING_KEYS = new Set(['fields', 'sort_key', 'sort_dir', 'limit', 'marker', 'page_reverse']);

/** Turn a list request's query string into filters, sort keys and paging. */
export function parseListQuery(d: ResourceDef, query: Record<string, unknown>, fieldsOnly = false): { q: ListQuery; fields?: string[] } {
  const arr = (x: unknown): string[] => (x === undefined ? [] : Array.isArray(x) ? x.map(String) : [String(x)]);
  const fields = arr(query.fields).flatMap((f) => f.split(',')).filter(Boolean);
  const q: ListQuery = { filters: {}, sort: [] };
  if (fieldsOnly) return { q, fields };
  for (const [k, val] of Object.entries(query)) {
    if (PAGING_KEYS.has(k)) continue;
    const a = d.attrs[k];
    if (!a && !d.extraFilters?.includes(k)) throw Faults.badRequest(`${k} is invalid attribute for filtering`);
    const conv = a?.validate === v.bool ? v.bool : undefined;
    q.filters[k] = arr(val).map((x) => (conv ? conv(x, k) : x));
  }
  const keys = arr(query.sort_key);
  const dirs = arr(query.sort_dir);
  if (dirs.length > keys.length) throw Faults.badRequest('The number of sort_keys and sort_dirs must be same');
  q.sort = keys.map((key, n): SortKey => {
    if (!(key in d.attrs)) throw Faults.badRequest(`${key} is invalid attribute for sort_key`);
    const dir = (dirs[n] ?? 'asc').toLowerCase();
    if (dir !== 'asc' && dir !== 'desc') throw Faults.badRequest(`${dirs[n]} is invalid value for sort_dir`);
    return { key, dir };
  });
  if (query.limit !== undefined) {
    const n = v.int(0)(arr(query.limit)[0], 'limit');
    if (n > 0) q.limit = n;
  }
  if (query.marker !== undefined) q.marker = arr(query.marker)[0];
  if (query.page_reverse !== undefined) q.pageReverse = v.bool(arr(query.page_reverse)[0], 'page_reverse');
  return { q, fields };
}
