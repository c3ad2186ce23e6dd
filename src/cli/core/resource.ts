// The five neutron commands of a resource (X-create, X-list, X-show, X-update, X-delete)
// generated from one declaration: its names, list columns, options and how positionals map
// to attributes. A resource module supplies only what is particular to it.

import { UsageError, type OptionSpec, type Parsed } from './args.js';
import type { CliCommand, CommandIo } from './command.js';
import { cell, formatList, formatOne, type Row } from './format.js';
import { CliError, type Session } from './session.js';

export interface ResourceSpec {
  /** Body key and the noun in messages: 'network', 'security_group'. */
  resource: string;
  collection: string;
  /** Command prefix: 'net' gives net-create, net-list... */
  prefix: string;
  /** Noun for help texts ('network'). */
  noun?: string;
  listColumns: string[];
  /** Table cells of list columns needing more than the default rendering. */
  listCells?: Record<string, (v: unknown, row: Row) => string>;
  /** Fill computed list columns (rows are the server's, fields all present). */
  listRows?: (rows: Row[], s: Session) => Promise<Row[]>;
  /** neutronclient's allow_names = False: show/update/delete take ids only (agents, floating IPs). */
  idsOnly?: boolean;
  /** neutronclient's json_indent: dicts in show/create tables as indented JSON (agent-show: 5). */
  jsonIndent?: number;
  /** Absent for resources nobody creates through the API (agents register over RPC). */
  create?: {
    /** Positional names, required in order; e.g. ['NAME'] or ['NETWORK', 'CIDR']. */
    positionals: string[];
    optionalPositionals?: string[];
    options: OptionSpec[];
    /** Turn positionals (and options without `attr`) into attributes. */
    build(p: Parsed, body: Row, s: Session): Promise<void>;
  };
  update?: {
    options: OptionSpec[];
    build?(p: Parsed, body: Row, s: Session): Promise<void>;
  };
}

const path = (collection: string) => `/${collection.replace(/_/g, '-')}`;

export const TENANT_ID: OptionSpec = { flags: ['--tenant-id', '--project-id'], attr: 'tenant_id', kind: 'string', metavar: 'TENANT_ID', help: 'the owner project (admin only)' };
export const NAME: OptionSpec = { flags: ['--name'], attr: 'name', kind: 'string', metavar: 'NAME', help: 'name' };
export const DESCRIPTION: OptionSpec = { flags: ['--description'], attr: 'description', kind: 'string', metavar: 'DESCRIPTION', help: 'description' };

/** The id of the resource named or identified by `ref` (neutronclient's find_resourceid_by_name_or_id). */
export async function findId(s: Session, collection: string, resource: string, ref: string): Promise<string> {
  const q = (k: string) => `${path(collection)}?${k}=${encodeURIComponent(ref)}&fields=id`;
  const byId = (await s.neutron('GET', q('id')))[collection] as Row[];
  if (byId.length === 1) return String(byId[0].id);
  const byName = (await s.neutron('GET', q('name')))[collection] as Row[];
  if (byName.length === 1) return String(byName[0].id);
  if (byName.length > 1) throw new CliError(`Multiple ${resource} matches found for name '${ref}', use an ID to be more specific.`);
  throw new CliError(`Unable to find ${resource} with name or id '${ref}'`);
}

/** The id of the resource with id `ref` (neutronclient's find_resourceid_by_id: ids only, no names). */
export async function findIdOnly(s: Session, collection: string, resource: string, ref: string): Promise<string> {
  const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
  if (UUID.test(ref)) {
    const found = (await s.neutron('GET', `${path(collection)}?id=${encodeURIComponent(ref)}&fields=id`))[collection] as Row[];
    if (found.length) return String(found[0].id);
  }
  throw new CliError(`Unable to find ${resource} with id '${ref}'`);
}

/** Value specs of a list command as query parameters (`--device_id X` -> device_id=X). */
export function filterQuery(extras: Record<string, unknown>): URLSearchParams {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(extras)) for (const x of Array.isArray(v) ? v : [v]) q.append(k, String(x === true ? 'True' : x === false ? 'False' : x));
  return q;
}

/** A list as neutronclient's ListCommand prints it: list_columns the rows have, tenant_id for admins. */
export async function printList(io: CommandIo, rows: Row[], spec: Pick<ResourceSpec, 'listColumns' | 'listCells' | 'listRows'>): Promise<void> {
  if (spec.listRows) rows = await spec.listRows(rows, io.session);
  let columns = spec.listColumns.filter((c) => rows.length === 0 || c in rows[0]);
  // neutronclient shows the owner to admins, after id and name.
  if (!columns.includes('tenant_id') && rows.length && 'tenant_id' in rows[0] && (await io.session.isAdmin())) {
    const at = Math.max(columns.indexOf('id'), columns.indexOf('name')) + 1;
    columns = [...columns.slice(0, at), 'tenant_id', ...columns.slice(at)];
  }
  // -c may name any field the server returned, as in neutronclient (port-list -c binding:host_id).
  if (io.columns.length && rows.length) columns = [...columns, ...Object.keys(rows[0]).filter((k) => !columns.includes(k))];
  const text = formatList(rows, columns, io.format, io.columns, spec.listCells);
  if (text) io.out(text);
}

/** Options with an `attr`, then the command's own build(), then value specs (they win, as in neutronclient). */
async function buildBody(p: Parsed, options: OptionSpec[], s: Session, build?: (p: Parsed, body: Row, s: Session) => Promise<void>): Promise<Row> {
  const body: Row = {};
  for (const o of options) if (o.attr && p.options.has(o.flags[0])) body[o.attr] = p.options.get(o.flags[0]);
  await build?.(p, body, s);
  return Object.assign(body, p.extras);
}

export function needPositionals(p: Parsed, names: string[], optional: string[] = []): void {
  if (p.positionals.length < names.length) throw new UsageError(`the following arguments are required: ${names.slice(p.positionals.length).join(', ')}`);
  if (p.positionals.length > names.length + optional.length) throw new UsageError(`unrecognized arguments: ${p.positionals.slice(names.length + optional.length).join(' ')}`);
}

const usageOf = (options: OptionSpec[]) => options.map((o) => `[${o.flags[0]}${o.kind === 'flag' ? '' : ` ${o.metavar ?? o.flags[0].slice(2).toUpperCase()}`}]`).join(' ');

export function resourceCommands(spec: ResourceSpec): CliCommand[] {
  const { resource, collection, prefix } = spec;
  const noun = spec.noun ?? resource.replace(/_/g, ' ');
  const indent = spec.jsonIndent;
  const show = (io: CommandIo, obj: Row) => io.out(formatOne(obj, io.format, io.columns, indent ? Object.fromEntries(Object.keys(obj).map((k) => [k, (v: unknown) => cell(v, indent)])) : {}));
  const create = spec.create;
  const cmds: CliCommand[] = [];
  if (create)
    cmds.push({
      name: `${prefix}-create`,
      summary: `Create a ${noun}.`,
      usage: `${[...create.positionals, ...(create.optionalPositionals ?? []).map((x) => `[${x}]`)].join(' ')} ${usageOf(create.options)}`,
      options: create.options,
      async run(p, io) {
        needPositionals(p, create.positionals, create.optionalPositionals);
        const body = await buildBody(p, create.options, io.session, create.build);
        const r = await io.session.neutron('POST', path(collection), { [resource]: body });
        if (io.format === 'table') io.out(`Created a new ${resource}:`);
        show(io, r[resource]);
      },
    });
  cmds.push(
    {
      name: `${prefix}-list`,
      summary: `List ${noun}s that belong to a given tenant (filters: --KEY VALUE).`,
      usage: '[--KEY VALUE ...]',
      options: [],
      async run(p, io) {
        if (p.positionals.length) throw new UsageError(`unrecognized arguments: ${p.positionals.join(' ')}`);
        const q = filterQuery(p.extras);
        const rows = (await io.session.neutron('GET', `${path(collection)}${q.size ? `?${q}` : ''}`))[collection] as Row[];
        await printList(io, rows, spec);
      },
    },
    {
      name: `${prefix}-show`,
      summary: `Show information of a given ${noun}.`,
      usage: noun.toUpperCase().replace(/ /g, '_'),
      options: [],
      async run(p, io) {
        needPositionals(p, [noun.toUpperCase()]);
        // Without names the id goes to the server as typed: its 404 is the message.
        const id = spec.idsOnly ? encodeURIComponent(p.positionals[0]) : await findId(io.session, collection, resource, p.positionals[0]);
        show(io, (await io.session.neutron('GET', `${path(collection)}/${id}`))[resource]);
      },
    },
    {
      name: `${prefix}-delete`,
      summary: `Delete a given ${noun}.`,
      usage: `${noun.toUpperCase().replace(/ /g, '_')} [${noun.toUpperCase().replace(/ /g, '_')} ...]`,
      options: [],
      async run(p, io) {
        if (p.positionals.length === 0) throw new UsageError(`the following arguments are required: ${noun.toUpperCase()}`);
        const deleted: string[] = [];
        const missing: string[] = [];
        const failed: string[] = [];
        for (const ref of p.positionals) {
          let id: string;
          try {
            id = spec.idsOnly ? encodeURIComponent(ref) : await findId(io.session, collection, resource, ref);
          } catch (err) {
            if (err instanceof CliError && /^Unable to find/.test(err.message)) missing.push(ref);
            else failed.push(`${ref}: ${(err as Error).message}`);
            continue;
          }
          try {
            await io.session.neutron('DELETE', `${path(collection)}/${id}`);
            deleted.push(ref);
          } catch (err) {
            if (spec.idsOnly && err instanceof CliError && err.status === 404) missing.push(ref);
            else failed.push(`${(err as Error).message}`);
          }
        }
        if (deleted.length) io.out(`Deleted ${resource}(s): ${deleted.join(', ')}`);
        const errors = [...failed];
        if (missing.length) errors.push(`Unable to find ${resource}(s) with id(s) '${missing.join("', '")}'.`);
        if (errors.length) throw new CliError(errors.join('\n'));
      },
    },
  );
  if (spec.update) {
    const update = spec.update;
    cmds.splice(cmds.length - 1, 0, {
      name: `${prefix}-update`,
      summary: `Update ${noun}'s information.`,
      usage: `${noun.toUpperCase().replace(/ /g, '_')} ${usageOf(update.options)}`,
      options: update.options,
      async run(p, io) {
        needPositionals(p, [noun.toUpperCase()]);
        const body = await buildBody(p, update.options, io.session, update.build);
        if (Object.keys(body).length === 0) throw new UsageError('Must specify new values to update ' + noun);
        const id = await (spec.idsOnly ? findIdOnly : findId)(io.session, collection, resource, p.positionals[0]);
        await io.session.neutron('PUT', `${path(collection)}/${id}`, { [resource]: body });
        io.out(`Updated ${resource}: ${p.positionals[0]}`);
      },
    });
  }
  return cmds;
}
