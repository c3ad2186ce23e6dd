// Text and JSON forms of a trace record. The text numbers the steps and groups them per
// host, like the packet walks of the scenario (docs: scenario section 4); every line comes
// from a recorded step: where it happened, what decided (flow, rule, route, neighbour
// entry), what was done, and the headers before and after.

import type { Frame } from '../dataplane/emulated/packet.js';
import type { TraceRecord, TraceStep } from './record.js';

const ICMP_NAMES: Record<number, string> = { 0: 'echo-reply', 3: 'unreachable', 8: 'echo-request', 11: 'time-exceeded' };

/** One line of headers: `eth src > dst [vlan N] | ip src > dst ttl N proto ... | tunnel [inner]`. */
export function formatFrame(f: Frame): string {
  const parts = [`${f.eth.src} > ${f.eth.dst}${f.vlan !== undefined ? ` vlan ${f.vlan}` : ''}`];
  if (f.arp) {
    const a = f.arp;
    parts.push(a.op === 1 ? `arp who-has ${a.tpa} tell ${a.spa} (${a.sha})` : `arp reply ${a.spa} is-at ${a.sha} (to ${a.tpa} ${a.tha})`);
  } else if (f.ip) {
    const ip = f.ip;
    let l = `${ip.src} > ${ip.dst} ttl ${ip.ttl}`;
    const l4 = f.l4;
    if (l4?.kind === 'icmp') {
      l += ` icmp ${ICMP_NAMES[l4.type] ?? `type ${l4.type}`}${l4.type === 3 || l4.type === 11 ? ` code ${l4.code}` : ''}${l4.id !== undefined ? ` id ${l4.id} seq ${l4.seq}` : ''}`;
      if (l4.quoted?.ip) l += ` [about ${l4.quoted.ip.src} > ${l4.quoted.ip.dst}]`;
    } else if (l4?.kind === 'udp') l += ` udp ${l4.sport} > ${l4.dport}`;
    else if (l4?.kind === 'tcp') l += ` tcp ${l4.sport} > ${l4.dport} [${tcpFlags(l4.flags)}]`;
    else l += ` proto ${ip.proto}`;
    parts.push(l);
  } else parts.push(`ethertype 0x${f.eth.type.toString(16)}`);
  if (f.encap) {
    const e = f.encap;
    parts.push(`${e.kind === 'vxlan' ? `vxlan vni ${e.vni}` : `gre key ${e.key}`} [ ${formatFrame(e.inner)} ]`);
  }
  return parts.join(' | ');
}

function tcpFlags(fl: { syn?: boolean; ack?: boolean; fin?: boolean; rst?: boolean }): string {
  return [fl.syn ? 'S' : '', fl.fin ? 'F' : '', fl.rst ? 'R' : '', fl.ack ? '.' : ''].join('') || '-';
}

function where(s: TraceStep): string {
  const parts: string[] = [];
  if (s.ns) parts.push(`[${s.ns}]`);
  if (s.bridge) parts.push(s.bridge);
  if (s.dev && s.dev !== s.bridge) parts.push(s.dev);
  if (s.table !== undefined) parts.push(s.kind === 'ovs' ? `table ${s.table}` : String(s.table));
  return parts.join(' ');
}

export interface RenderOptions {
  /** Leave out device send/receive steps (the hop that follows names the device too). */
  compact?: boolean;
  /** Print the frame after each step even when unchanged. */
  frames?: boolean;
}

export function renderTrace(rec: TraceRecord, opts: RenderOptions = {}): string {
  const out: string[] = [];
  let host = '';
  let n = 0;
  for (const s of rec.steps) {
    if (opts.compact && (s.kind === 'tx' || s.kind === 'rx')) continue;
    if (s.host !== host) {
      host = s.host;
      out.push(`${out.length ? '\n' : ''}${host}:`);
    }
    n++;
    const w = where(s);
    out.push(`  ${String(n).padStart(3)}. ${w ? `${w} ` : ''}${s.kind}: ${s.action}`);
    if (s.rule) out.push(`       ${s.kind === 'ovs' ? 'flows' : s.kind === 'netfilter' ? 'rule' : s.kind === 'neigh' ? 'neigh' : s.kind === 'route' ? 'route' : 'by'}: ${s.rule}`);
    if (opts.frames || s.after || s.kind === 'rx' || s.kind === 'drop' || s.kind === 'deliver' || s.kind === 'wire') out.push(`       ${formatFrame(s.before)}`);
    if (s.after) out.push(`    -> ${formatFrame(s.after)}`);
  }
  if (rec.delivered.length) {
    out.push('', 'delivered:');
    for (const d of rec.delivered) out.push(`  ${d.host}${d.ns ? `/${d.ns}` : ''} ${d.dev} -> ${d.to}: ${formatFrame(d.frame)}`);
  }
  if (rec.dropped.length) {
    out.push('', 'dropped:');
    for (const d of rec.dropped) out.push(`  ${d.host}${d.ns ? `/${d.ns}` : ''}${d.bridge ? ` ${d.bridge}` : ''}${d.dev ? ` ${d.dev}` : ''}: ${d.reason}`);
  }
  return out.join('\n');
}

/** The record as JSON: kernel-internal packet state (conntrack references) is left out, bigints become strings. */
export function traceToJson(rec: TraceRecord, indent = 2): string {
  return JSON.stringify(rec, (k, v) => (k === 'meta' ? undefined : typeof v === 'bigint' ? v.toString() : v), indent);
}
