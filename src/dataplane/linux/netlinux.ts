// Reading one network namespace back with `ip -j` (one `ip -batch` per namespace), and the
// line syntax of the `ip` commands the driver writes. What the kernel makes by itself is
// left out, as src/host/state.ts says: `proto kernel` routes, the local table, the default
// rules, link-local and loopback addresses; learnt neighbours unless the state set them.
import type { Neighbour, Route, Rule } from '../../host/state.js';

export interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  address?: string;
  master?: string;
  link?: string;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string };
  addr_info?: { family: string; local: string; prefixlen: number; scope: string }[];
}

export interface IpNamespaceDump {
  links: IpLink[];
  routes: Route[];
  rules: Rule[];
  neighbours: Neighbour[];
  /** nsid (as this namespace numbers them) -> namespace name. */
  nsids: Map<number, string>;
}

export const READ_BATCH = 'addr show\nroute show table all\nrule show\nneigh show\nnetns list-id\n';

const TABLES: Record<string, number> = { main: 254, local: 255, default: 253 };
const tableNo = (t: unknown) => (t === undefined ? 254 : typeof t === 'number' ? t : (TABLES[String(t)] ?? Number(t)));

export function parseIpBatch(stdout: string): IpNamespaceDump {
  const lines = stdout.split('\n').filter((l) => l.trim().startsWith('['));
  const [links, routes, rules, neighs, ids] = lines.map((l) => JSON.parse(l) as Record<string, unknown>[]);
  return {
    links: (links ?? []) as unknown as IpLink[],
    routes: (routes ?? []).flatMap(readRoute),
    rules: (rules ?? []).flatMap(readRule),
    neighbours: (neighs ?? []).flatMap(readNeigh),
    nsids: new Map((ids ?? []).filter((x) => x.name !== undefined).map((x) => [Number(x.nsid), String(x.name)])),
  };
}

function readRoute(r: Record<string, unknown>): Route[] {
  if (r.protocol === 'kernel') return [];
  const table = tableNo(r.table);
  if (table === 255) return [];
  const type = (r.type as string | undefined) ?? 'unicast';
  if (type !== 'unicast' && type !== 'blackhole' && type !== 'local') return [];
  const dst = String(r.dst);
  const route: Route = { dst: dst === 'default' ? 'default' : dst.includes('/') ? dst : `${dst}/${dst.includes(':') ? 128 : 32}`, table, type };
  if (r.gateway !== undefined) route.via = String(r.gateway);
  if (r.dev !== undefined) route.dev = String(r.dev);
  if (r.prefsrc !== undefined) route.src = String(r.prefsrc);
  route.scope = r.scope === 'link' ? 'link' : r.scope === 'host' ? 'host' : 'global';
  if (r.metric) route.metric = Number(r.metric);
  return [route];
}

function readRule(r: Record<string, unknown>): Rule[] {
  const prio = Number(r.priority);
  const table = tableNo(r.table);
  const plain = r.src === 'all' && r.dst === undefined && r.iif === undefined && r.fwmark === undefined && r.oif === undefined;
  if (plain && ((prio === 0 && table === 255) || (prio === 32766 && table === 254) || (prio === 32767 && table === 253))) return [];
  const rule: Rule = { priority: prio, table };
  const sel = (a: unknown, len: unknown) => (a === undefined || a === 'all' ? undefined : len !== undefined && Number(len) !== 32 && Number(len) !== 128 ? `${a}/${len}` : String(a));
  const from = sel(r.src, r.srclen);
  const to = sel(r.dst, r.dstlen);
  if (from) rule.from = from;
  if (to) rule.to = to;
  if (r.iif !== undefined) rule.iif = String(r.iif);
  return [rule];
}

function readNeigh(n: Record<string, unknown>): Neighbour[] {
  const state = (n.state as string[] | undefined) ?? [];
  if (!n.lladdr || state.includes('FAILED') || state.includes('INCOMPLETE') || state.includes('NOARP')) return [];
  return [{ dev: String(n.dev), ip: String(n.dst), lladdr: String(n.lladdr).toLowerCase(), nud: state.includes('PERMANENT') ? 'permanent' : 'reachable' }];
}

/** Without a `/32` (or `/128`): how the kernel shows host selectors and how states may spell them. */
export const hostless = (a: string | undefined) => (a === undefined ? undefined : a.replace(/\/(32|128)$/, ''));

// --- writing: one `ip` command line per operation (tokens are validated, no spaces) ---

export function routeArgs(verb: 'replace' | 'del', r: Route): string[] {
  const a = ['route', verb];
  if (r.type !== 'unicast') a.push(r.type);
  a.push(r.dst);
  if (r.via) a.push('via', r.via);
  if (r.dev) a.push('dev', r.dev);
  a.push('table', String(r.table));
  if (r.src) a.push('src', r.src);
  if (r.scope && verb === 'replace') a.push('scope', r.scope);
  if (r.metric) a.push('metric', String(r.metric));
  return a;
}

export function ruleArgs(verb: 'add' | 'del', r: Rule): string[] {
  const a = ['rule', verb];
  if (r.from) a.push('from', r.from);
  if (r.to) a.push('to', r.to);
  if (r.iif) a.push('iif', r.iif);
  a.push('lookup', String(r.table), 'priority', String(r.priority));
  return a;
}

export function neighArgs(verb: 'replace' | 'del', n: Neighbour): string[] {
  return verb === 'del' ? ['neigh', 'del', n.ip, 'dev', n.dev] : ['neigh', 'replace', n.ip, 'lladdr', n.lladdr, 'dev', n.dev, 'nud', n.nud];
}
