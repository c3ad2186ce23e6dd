// Flows read back in the state's own spelling. OVS prints a flow its own way (`load:101->`
// becomes `load:0x65->`, fields reorder, port names become numbers), so the text the state
// holds cannot be compared with `dump-flows` directly. OVS itself does the translation:
// `ovs-ofctl parse-flows` prints each state flow as OVS will show it (port names replaced
// by the bridge's OpenFlow port numbers first, since parse-flows has no switch to ask), which
// maps every dumped flow back to the state flow it came from. A dumped flow no state flow
// explains is reported in OVS's spelling, so `diff` deletes it.
import { parseFlow, renderFlow, splitTopLevel } from '../../host/flow.js';
import type { Flow } from '../../host/state.js';

/** `priority=..,match|cookie|actions` per table: one spelling for a parse-flows or dump-flows line. */
export type FlowSig = string;

const sig = (table: number, prioMatch: string, cookie: string, actions: string): FlowSig => `${table}|${prioMatch}|${cookie}|${actions}`;

/** A `dump-flows --no-stats --no-names` line, or undefined for learnt/timed flows (not part of a state). */
export function dumpLineSig(line: string): { sig: FlowSig; flow: Flow } | undefined {
  const text = line.trim();
  if (!text || text.startsWith('NXST') || text.startsWith('OFPST')) return undefined;
  if (/(^|[ ,])(idle_timeout|hard_timeout)=/.test(text.slice(0, text.indexOf('actions=')))) return undefined;
  const at = text.indexOf(' actions=');
  if (at < 0) return undefined;
  const head = text.slice(0, at);
  const actions = text.slice(at + ' actions='.length);
  let table = 0;
  let cookie = '0x0';
  const rest: string[] = [];
  for (const part of head.split(/,\s+/)) {
    const m = /^(cookie|table)=(.*)$/.exec(part);
    if (m && m[1] === 'cookie') cookie = m[2];
    else if (m && m[1] === 'table') table = Number(m[2]);
    else rest.push(part);
  }
  const prioMatch = rest.join(',');
  return { sig: sig(table, prioMatch, cookie, actions), flow: parseFlow(`table=${table},cookie=${cookie},${prioMatch} actions=${actions}`) };
}

/** One `OFPT_FLOW_MOD (xid=0x1): ADD table:60 priority=20,dl_vlan=1 cookie:0x1a2b actions=strip_vlan,output:1` line. */
export function parseFlowsLineSig(line: string): FlowSig | undefined {
  const m = /^[A-Z0-9]+_FLOW_MOD \([^)]*\): ADD (?:table:(\d+) )?(\S*?)(?: cookie:(0x[0-9a-f]+))? actions=(.*)$/.exec(line.trim());
  if (!m) return undefined;
  return sig(m[1] ? Number(m[1]) : 0, m[2], m[3] ?? '0x0', m[4]);
}

/** A port named in a flow: `in_port=X`, `output:X`, `resubmit(X,`, `output(port=X`; not a field like `output:NXM_OF_IN_PORT[]`. */
export const PORT_REF = /(in_port=|output:|resubmit\(|output\(port=)"?([A-Za-z0-9_.-]+)(?![A-Za-z0-9_.[-])"?/g;

/** The port names a flow's text refers to. */
export function portRefs(text: string): string[] {
  return [...text.matchAll(PORT_REF)].map((m) => m[2]);
}

/** Port names in a flow's text replaced by OpenFlow port numbers (what parse-flows can read). */
export function numberPorts(text: string, ofports: Record<string, number>): string {
  const sub = (name: string) => (ofports[name] !== undefined ? String(ofports[name]) : name);
  return text
    .replace(PORT_REF, (_all, pre: string, name: string) => pre + sub(name));
}

/** parse-flows input for the state flows: one line each, port names numbered. */
export function parseFlowsInput(flows: readonly Flow[], ofports: Record<string, number>): string {
  return flows.map((f) => numberPorts(renderFlow(f), ofports)).join('\n') + '\n';
}

/** Maps parse-flows output (one ADD line per input flow, in order) to the input flows. */
export function sigsOf(flows: readonly Flow[], parseFlowsOut: string): Map<FlowSig, Flow> {
  const out = new Map<FlowSig, Flow>();
  const sigs = parseFlowsOut
    .split('\n')
    .map(parseFlowsLineSig)
    .filter((s): s is FlowSig => s !== undefined);
  if (sigs.length !== flows.length) throw new Error(`ovs-ofctl parse-flows printed ${sigs.length} flows for ${flows.length}`);
  flows.forEach((f, i) => out.set(sigs[i], f));
  return out;
}

/** The bridge's flows in state spelling where a known flow explains them, OVS's otherwise. */
export function readBackFlows(dump: string, known: Map<FlowSig, Flow>): Flow[] {
  const out: Flow[] = [];
  for (const line of dump.split('\n')) {
    const d = dumpLineSig(line);
    if (!d) continue;
    out.push(known.get(d.sig) ?? d.flow);
  }
  return out;
}

/** `ovs-ofctl add-flows --bundle` input for one flows.update: deletions, then adds (an add with an existing key overwrites it). */
export function bundleInput(add: readonly Flow[], modify: readonly Flow[], del: readonly { table: number; priority: number; match: string }[]): string {
  const lines: string[] = [];
  for (const k of del) lines.push(`delete_strict table=${k.table},priority=${k.priority}${k.match ? ',' + k.match : ''}`);
  for (const f of [...modify, ...add]) lines.push(`add ${renderFlow(f)}`);
  return lines.join('\n') + '\n';
}

export { splitTopLevel };
