// OpenFlow flows as `ovs-ofctl` text: building, rendering, parsing and keying.
//
// The match and actions stay text (the same text works with `ovs-ofctl add-flows` and the
// emulator); only what OVS itself separates out is structured: table, priority, cookie.
import type { Cookie, Flow, FlowKey } from './state.js';

/** OVS's priority when a flow does not name one (`ovs-ofctl dump-flows` then omits it). */
export const OFP_DEFAULT_PRIORITY = 32768;

const COOKIE_TEXT = /^0x[0-9a-fA-F]{1,16}$/;

/** A cookie in canonical form (`0x` + lower-case hex without leading zeros) from a number or text. */
export function cookie(value: number | string): Cookie {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`Cookie ${value} is not a non-negative safe integer`);
    return '0x' + value.toString(16);
  }
  const s = value.trim();
  if (/^\d+$/.test(s)) return cookie(Number(s));
  if (!COOKIE_TEXT.test(s)) throw new Error(`Cookie "${value}" is not 0x followed by 1-16 hex digits`);
  const hex = s.slice(2).toLowerCase().replace(/^0+/, '');
  return '0x' + (hex || '0');
}

export function isCanonicalCookie(c: string): boolean {
  return COOKIE_TEXT.test(c) && c === cookie(c);
}

/**
 * A match in canonical form: fields split at top-level commas, trimmed, empty ones dropped,
 * re-joined with `,`. Field order is kept (OVS itself does not care, but the key does: keep
 * one spelling per flow in the code that builds it).
 */
export function canonicalMatch(match: string): string {
  return splitTopLevel(match)
    .map((f) => f.trim())
    .filter((f) => f.length > 0)
    .join(',');
}

/** Splits at commas outside parentheses (so `learn(...)`-style arguments stay whole). */
export function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

export interface FlowInput {
  table?: number;
  priority?: number;
  cookie?: number | string;
  match?: string;
  actions: string;
}

/** A flow with defaults filled in (table 0, priority 32768, cookie 0x0) and text canonicalised. */
export function flow(input: FlowInput): Flow {
  return {
    table: input.table ?? 0,
    priority: input.priority ?? OFP_DEFAULT_PRIORITY,
    cookie: cookie(input.cookie ?? 0),
    match: canonicalMatch(input.match ?? ''),
    actions: input.actions.trim(),
  };
}

/** `table=0,priority=10,cookie=0x1,in_port=1,actions=NORMAL`: one line of `ovs-ofctl add-flows` input. */
export function renderFlow(f: Flow): string {
  return `table=${f.table},priority=${f.priority},cookie=${f.cookie}${f.match ? ',' + f.match : ''},actions=${f.actions}`;
}

/** `table=0,priority=10,in_port=1` (no cookie, no actions): what `ovs-ofctl --strict del-flows` takes. */
export function renderFlowKey(k: FlowKey): string {
  return `table=${k.table},priority=${k.priority}${k.match ? ',' + k.match : ''}`;
}

/** The key string OVS's strict matching amounts to: table, priority and match. */
export function flowKey(f: FlowKey): string {
  return `${f.table}|${f.priority}|${f.match}`;
}

// Fields `ovs-ofctl dump-flows` prints that describe the flow's life, not the flow.
const STAT_FIELDS = new Set(['duration', 'n_packets', 'n_bytes', 'idle_age', 'hard_age']);

/**
 * Parses one flow from `renderFlow`'s form or from an `ovs-ofctl dump-flows` line
 * (` cookie=0x0, duration=2.1s, table=0, n_packets=0, n_bytes=0, priority=10,in_port=1 actions=NORMAL`).
 * Statistics are dropped. A cookie mask, a timeout or a missing `actions=` is rejected.
 */
export function parseFlow(text: string): Flow {
  const at = findActions(text);
  if (at < 0) throw new Error(`Flow without actions: "${text}"`);
  const head = text.slice(0, at);
  const actions = text.slice(at + 'actions='.length).trim();
  if (!actions) throw new Error(`Flow with empty actions: "${text}"`);
  let table = 0;
  let priority = OFP_DEFAULT_PRIORITY;
  let ck: Cookie = '0x0';
  const match: string[] = [];
  for (const raw of splitTopLevel(head.replace(/\s+/g, ','))) {
    const field = raw.trim();
    if (!field) continue;
    const eq = field.indexOf('=');
    const name = eq < 0 ? field : field.slice(0, eq);
    const value = eq < 0 ? '' : field.slice(eq + 1);
    if (STAT_FIELDS.has(name)) continue;
    if (name === 'table') table = parseIntField(value, 'table', text);
    else if (name === 'priority') priority = parseIntField(value, 'priority', text);
    else if (name === 'cookie') {
      if (value.includes('/')) throw new Error(`Flow cookie with a mask cannot be stored: "${text}"`);
      ck = cookie(value);
    } else if (name === 'idle_timeout' || name === 'hard_timeout' || name === 'importance') {
      throw new Error(`Flow attribute "${name}" is not part of dvrnet's host state: "${text}"`);
    } else match.push(field);
  }
  return { table, priority, cookie: ck, match: match.join(','), actions };
}

function parseIntField(value: string, name: string, text: string): number {
  if (!/^\d+$/.test(value)) throw new Error(`Flow ${name} "${value}" is not a number: "${text}"`);
  return Number(value);
}

/** Index of `actions=` at a field boundary (start, or after a comma or a space). */
function findActions(text: string): number {
  let from = 0;
  for (;;) {
    const i = text.indexOf('actions=', from);
    if (i < 0) return -1;
    if (i === 0 || text[i - 1] === ',' || text[i - 1] === ' ') return i;
    from = i + 1;
  }
}
