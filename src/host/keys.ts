// Identity keys and value comparison for the state's unnamed entries, shared by diff, apply,
// validate and canonicalize so the four agree on what "the same route" means.
import type { HostState, Neighbour, Route, Rule } from './state.js';

/** JSON with object keys sorted and `undefined` members dropped: equal values give equal text. */
export function stableStringify(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return stableStringify((v as { toJSON(): unknown }).toJSON()); // a ChunkList: its elements
  if (Array.isArray(v)) return '[' + v.map((x) => (x === undefined ? 'null' : stableStringify(x))).join(',') + ']';
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + stableStringify(o[k])).join(',') + '}';
}

export function sameValue(a: unknown, b: unknown): boolean {
  return a === b || stableStringify(a) === stableStringify(b);
}

/** Two string maps are the same column value; an absent map is the empty map (as in OVSDB). */
export function sameMap(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const ka = a ? Object.keys(a) : [];
  const kb = b ? Object.keys(b) : [];
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!b || b[k] !== a![k]) return false;
  return true;
}

function normDst(dst: string): string {
  return dst === '0.0.0.0/0' ? 'default' : dst === '::/0' ? 'default6' : dst;
}

/** What `ip route replace` replaces: the same table, destination and metric (and address family). */
export function routeKey(r: Route): string {
  return `${r.table}|${normDst(r.dst)}|${r.metric ?? 0}`;
}

/**
 * Whether `current` already is what `desired` asks for. A desired `scope` left out means
 * "whatever the kernel chose", so it matches any current scope.
 */
export function routeSatisfies(current: Route, desired: Route): boolean {
  return (
    current.dst === desired.dst &&
    current.via === desired.via &&
    current.dev === desired.dev &&
    current.table === desired.table &&
    current.src === desired.src &&
    (desired.scope === undefined || current.scope === desired.scope) &&
    (current.metric ?? 0) === (desired.metric ?? 0) &&
    current.type === desired.type
  );
}

/** An `ip rule` is identified by all of its selectors, its table and its priority. */
export function ruleKey(r: Rule): string {
  return `${r.priority}|${r.from ?? 'all'}|${r.to ?? 'all'}|${r.iif ?? ''}|${r.table}`;
}

export function neighKey(n: Pick<Neighbour, 'dev' | 'ip'>): string {
  return `${n.dev}|${n.ip}`;
}

/**
 * The device a per-device sysctl belongs to: `net.ipv4.conf.fg-1.proxy_arp` -> `fg-1`
 * (`/` in the key stands for `.` in the device name, as sysctl writes `eth0/100`); undefined
 * for global keys and for the `all`/`default` pseudo-devices.
 */
export function sysctlDevice(key: string): string | undefined {
  const m = /^net\.(?:ipv4|ipv6)\.(?:conf|neigh)\.([^.]+)\./.exec(key);
  if (!m || m[1] === 'all' || m[1] === 'default') return undefined;
  return m[1].replace(/\//g, '.');
}

/**
 * Every namespace's links and every bridge's ports are the same records (and the same names)
 * in both states: no device came, went or changed. What relates devices to each other then
 * holds as it did (validate), and nothing is deleted or re-created (diff). A pass for FDB
 * entries, neighbours or ipset members is such a pass.
 */
export function sameDevices(a: HostState, b: HostState): boolean {
  const nsKeys = Object.keys(b.namespaces);
  if (nsKeys.length !== Object.keys(a.namespaces).length) return false;
  for (const k of nsKeys) if (a.namespaces[k]?.links !== b.namespaces[k].links) return false;
  const bridgeKeys = Object.keys(b.ovs.bridges);
  if (bridgeKeys.length !== Object.keys(a.ovs.bridges).length) return false;
  for (const k of bridgeKeys) if (a.ovs.bridges[k]?.ports !== b.ovs.bridges[k].ports) return false;
  return true;
}
