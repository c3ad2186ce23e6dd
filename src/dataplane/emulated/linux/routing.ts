// Policy routing as Linux does it: `ip rule`s in priority order select routing tables; a
// table answers with its longest matching prefix (then lowest metric); when a table has no
// route the next rule is tried. Tables are indexed by prefix length so that a lookup costs
// one hash probe per distinct prefix length, whatever the number of routes.

import { cidrText, inCidr, intToIp, type Cidr } from '../addr.js';
import type { Device } from './device.js';

export const RT_TABLE_LOCAL = 255;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_DEFAULT = 253;

export type RouteType = 'unicast' | 'local' | 'blackhole' | 'unreachable' | 'prohibit' | 'throw';

export interface Route {
  dst: Cidr;
  type: RouteType;
  dev?: Device;
  /** Gateway (next hop) as a number. */
  via?: number;
  /** Preferred source address. */
  src?: number;
  metric: number;
  table: number;
  /** 'kernel' for connected routes made from addresses; 'static' for routes added. */
  proto: 'kernel' | 'static';
  scope: 'link' | 'global';
}

export function tableName(id: number): string {
  return id === RT_TABLE_MAIN ? 'main' : id === RT_TABLE_LOCAL ? 'local' : id === RT_TABLE_DEFAULT ? 'default' : String(id);
}

/** `ip route` style text of a route, as the trace and errors show it. */
export function routeText(r: Route): string {
  const parts: string[] = [];
  if (r.type !== 'unicast') parts.push(r.type);
  parts.push(cidrText(r.dst));
  if (r.via !== undefined) parts.push(`via ${intToIp(r.via)}`);
  if (r.dev) parts.push(`dev ${r.dev.name}`);
  if (r.table !== RT_TABLE_MAIN) parts.push(`table ${tableName(r.table)}`);
  if (r.proto === 'kernel') parts.push('proto kernel');
  if (r.scope === 'link' && r.via === undefined && r.type === 'unicast') parts.push('scope link');
  if (r.src !== undefined) parts.push(`src ${intToIp(r.src)}`);
  if (r.metric) parts.push(`metric ${r.metric}`);
  return parts.join(' ');
}

export class RouteTable {
  private byLen = new Map<number, Map<number, Route[]>>();
  /** Prefix lengths present, longest first. */
  private lens: number[] = [];
  size = 0;

  constructor(public id: number) {}

  add(r: Route): void {
    let m = this.byLen.get(r.dst.len);
    if (!m) {
      m = new Map();
      this.byLen.set(r.dst.len, m);
      this.lens.push(r.dst.len);
      this.lens.sort((a, b) => b - a);
    }
    const list = m.get(r.dst.net);
    if (list) {
      if (list.some((x) => sameRoute(x, r))) throw new Error(`RTNETLINK answers: File exists (route '${routeText(r)}')`);
      list.push(r);
      list.sort((a, b) => a.metric - b.metric);
    } else m.set(r.dst.net, [r]);
    this.size++;
  }

  /** Removes routes equal to `r` in destination and metric (and dev/via when given). */
  del(r: Pick<Route, 'dst' | 'metric'> & Partial<Pick<Route, 'dev' | 'via'>>): Route | undefined {
    const m = this.byLen.get(r.dst.len);
    const list = m?.get(r.dst.net);
    if (!m || !list) return undefined;
    const i = list.findIndex((x) => x.metric === r.metric && (!r.dev || x.dev === r.dev) && (r.via === undefined || x.via === r.via));
    if (i < 0) return undefined;
    const [gone] = list.splice(i, 1);
    if (!list.length) m.delete(r.dst.net);
    this.size--;
    return gone;
  }

  /** Removes every route through `dev` (the device went away or lost the address). */
  delWhere(pred: (r: Route) => boolean): void {
    for (const m of this.byLen.values()) {
      for (const [net, list] of m) {
        const keep = list.filter((r) => !pred(r));
        this.size -= list.length - keep.length;
        if (keep.length) m.set(net, keep);
        else m.delete(net);
      }
    }
  }

  /** Longest prefix match; routes whose device is down are skipped, as Linux does. */
  lookup(ip: number): Route | undefined {
    for (const len of this.lens) {
      const m = this.byLen.get(len)!;
      const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
      const list = m.get((ip & mask) >>> 0);
      if (!list) continue;
      for (const r of list) if (!r.dev || r.dev.up) return r;
    }
    return undefined;
  }

  routes(): Route[] {
    const out: Route[] = [];
    for (const m of this.byLen.values()) for (const list of m.values()) out.push(...list);
    return out;
  }
}

function sameRoute(a: Route, b: Route): boolean {
  return a.metric === b.metric && a.dst.len === b.dst.len && a.dst.net === b.dst.net;
}

export interface Rule {
  priority: number;
  from?: Cidr;
  to?: Cidr;
  iif?: string;
  oif?: string;
  fwmark?: { value: number; mask: number };
  table: number;
  /** The selectors as written (`10.0.0.5` or `10.0.0.5/32`), for reading the rule back. */
  fromText?: string;
  toText?: string;
}

/** `ip rule` text; `canonical` spells prefixes as the kernel stores them (for identity). */
export function ruleText(r: Rule, canonical = false): string {
  const parts = [`${r.priority}:`, 'from', (!canonical && r.fromText) || (r.from ? cidrText(r.from).replace('default', 'all') : 'all')];
  if (r.to) parts.push('to', (!canonical && r.toText) || cidrText(r.to));
  if (r.fwmark) parts.push('fwmark', `0x${r.fwmark.value.toString(16)}${r.fwmark.mask !== 0xffffffff ? `/0x${r.fwmark.mask.toString(16)}` : ''}`);
  if (r.iif) parts.push('iif', r.iif);
  if (r.oif) parts.push('oif', r.oif);
  parts.push('lookup', tableName(r.table));
  return parts.join(' ');
}

export interface RouteQuery {
  src?: number;
  dst: number;
  /** Incoming device name; 'lo' for locally generated packets. */
  iif: string;
  oif?: string;
  mark?: number;
}

export type RouteResult =
  | { kind: 'local'; rule: Rule }
  | { kind: 'route'; route: Route; rule: Rule }
  | { kind: 'error'; error: 'unreachable' | 'prohibit' | 'blackhole'; route?: Route; rule?: Rule };

export type RouteErrorKind = Extract<RouteResult, { kind: 'error' }>['error'];

/** The routing policy database of one namespace. */
export class Rib {
  tables = new Map<number, RouteTable>();
  rules: Rule[] = [];

  constructor(private isLocal: (ip: number) => boolean) {
    // Linux's three default rules.
    this.rules.push({ priority: 0, table: RT_TABLE_LOCAL }, { priority: 32766, table: RT_TABLE_MAIN }, { priority: 32767, table: RT_TABLE_DEFAULT });
    this.table(RT_TABLE_MAIN);
  }

  table(id: number): RouteTable {
    let t = this.tables.get(id);
    if (!t) {
      t = new RouteTable(id);
      this.tables.set(id, t);
    }
    return t;
  }

  addRule(r: Rule): void {
    const key = ruleText(r, true);
    if (this.rules.some((x) => ruleText(x, true) === key)) throw new Error(`RTNETLINK answers: File exists (rule '${ruleText(r)}')`);
    // Stable: a new rule goes after existing rules of the same priority, as `ip rule add` does.
    let i = this.rules.length;
    while (i > 0 && this.rules[i - 1].priority > r.priority) i--;
    this.rules.splice(i, 0, r);
  }

  delRule(r: Rule): boolean {
    const text = ruleText(r, true);
    const i = this.rules.findIndex((x) => ruleText(x, true) === text);
    if (i < 0) return false;
    this.rules.splice(i, 1);
    return true;
  }

  lookup(q: RouteQuery): RouteResult {
    for (const rule of this.rules) {
      if (rule.from && (q.src === undefined ? rule.from.len > 0 : !inCidr(q.src, rule.from))) continue;
      if (rule.to && !inCidr(q.dst, rule.to)) continue;
      if (rule.iif && rule.iif !== q.iif) continue;
      if (rule.oif && rule.oif !== q.oif) continue;
      if (rule.fwmark && (((q.mark ?? 0) & rule.fwmark.mask) >>> 0) !== rule.fwmark.value) continue;
      if (rule.table === RT_TABLE_LOCAL) {
        if (this.isLocal(q.dst)) return { kind: 'local', rule };
        continue;
      }
      const t = this.tables.get(rule.table);
      const route = t?.lookup(q.dst);
      if (!route || route.type === 'throw') continue;
      if (route.type === 'local') return { kind: 'local', rule };
      if (route.type !== 'unicast') return { kind: 'error', error: route.type as RouteErrorKind, route, rule };
      return { kind: 'route', route, rule };
    }
    return { kind: 'error', error: 'unreachable' };
  }
}
