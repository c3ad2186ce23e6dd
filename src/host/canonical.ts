// One spelling per meaning: records with sorted keys, unordered lists sorted, empty optional
// maps dropped. Two states that `diff` finds nothing between, and that spell out the same
// optional attributes, canonicalize to equal values (deepEqual, or equal JSON text).
import { itemsOf, type Items } from './chunks.js';
import { flowKey } from './flow.js';
import { neighKey, routeKey, ruleKey, stableStringify } from './keys.js';
import type { HostState, Link, Namespace, OvsBridge, OvsPort } from './state.js';

function sortRecord<T>(r: Record<string, T>, fn: (v: T) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(r).sort()) out[k] = fn(r[k]);
  return out;
}

/** Sorted by identity key; the whole value breaks ties (only invalid states have any). */
function byKey<T>(list: Items<T>, key: (t: T) => string): T[] {
  const items = itemsOf(list);
  const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return items
    .map((t) => ({ k: key(t), t }))
    .sort((a, b) => cmp(a.k, b.k) || cmp(stableStringify(a.t), stableStringify(b.t)))
    .map(({ t }) => t);
}

function dropEmpty<T extends object>(o: T, keys: (keyof T)[]): T {
  const c = { ...o };
  for (const k of keys) {
    const v = c[k] as unknown;
    if (v === undefined || (Array.isArray(v) && v.length === 0) || (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0)) {
      delete c[k];
    } else if (v && typeof v === 'object' && !Array.isArray(v)) {
      (c as Record<string, unknown>)[k as string] = sortRecord(v as Record<string, unknown>, (x) => x);
    }
  }
  return c;
}

const link = (l: Link): Link => dropUndefined({ ...l, addresses: [...l.addresses].sort() });

function dropUndefined<T extends object>(o: T): T {
  const c = { ...o } as Record<string, unknown>;
  for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k];
  return c as T;
}

const port = (p: OvsPort): OvsPort => dropUndefined(dropEmpty(p, ['external_ids', 'other_config', 'options' as keyof OvsPort]));

const bridge = (b: OvsBridge): OvsBridge => ({
  ...dropUndefined(dropEmpty(b, ['external_ids', 'other_config', 'protocols'])),
  ports: sortRecord(b.ports, port),
  flows: byKey(b.flows, flowKey),
});

const namespace = (n: Namespace): Namespace => ({
  name: n.name,
  links: sortRecord(n.links, link),
  routes: byKey(n.routes.map(dropUndefined), routeKey),
  rules: byKey(n.rules.map(dropUndefined), ruleKey),
  neighbours: byKey(n.neighbours, neighKey),
  sysctls: sortRecord(n.sysctls, (v) => v),
  iptables: sortRecord(n.iptables as Record<string, string>, (v) => v),
  ipsets: sortRecord(n.ipsets, (s) => ({ ...s, members: [...s.members].sort() })),
});

export function canonicalize(s: HostState): HostState {
  return {
    ovs: { bridges: sortRecord(s.ovs.bridges, bridge) },
    namespaces: sortRecord(s.namespaces, namespace),
    dhcp: sortRecord(s.dhcp, (d) => structuredClone(d)),
    metadata: sortRecord(s.metadata, (m) => dropUndefined({ ...m })),
  };
}
