// Open vSwitch through `ovs-vsctl` on the host's own database socket: reading bridges, ports
// and interfaces back as the state spells them, and building one transaction (`--` separated
// commands) for a run of OVS operations. Values are written in OVSDB's JSON-like syntax
// (strings quoted), passed as argument vector elements, never through a shell.
import type { BridgeColumn, BridgeSpec, PortColumn } from '../../host/ops.js';
import { interfaceOptions, interfaceType } from '../../host/ovs.js';
import type { OvsBridge, OvsPort } from '../../host/state.js';

/** Port.external_ids key marking a port realised as a veth pair because its device lives in another namespace. */
export const VETH_PORT_MARK = 'dvrnet-veth-internal';

type Datum = unknown;

function atom(d: Datum): unknown {
  if (Array.isArray(d) && d[0] === 'set') return (d[1] as unknown[]).length ? (d[1] as unknown[])[0] : undefined;
  return d;
}
function setOf(d: Datum): unknown[] {
  if (Array.isArray(d) && d[0] === 'set') return d[1] as unknown[];
  return [d];
}
function mapOf(d: Datum): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(d) && d[0] === 'map') for (const [k, v] of d[1] as [string, string][]) out[k] = String(v);
  return out;
}
function uuid(d: Datum): string {
  return (d as [string, string])[1];
}

interface Table {
  headings: string[];
  data: Datum[][];
}
function rows(t: Table): Record<string, Datum>[] {
  return t.data.map((r) => Object.fromEntries(t.headings.map((h, i) => [h, r[i]])));
}

export const READ_ARGS = [
  '--format=json',
  '--data=json',
  '--',
  '--columns=name,datapath_type,fail_mode,protocols,external_ids,other_config,ports',
  'list',
  'Bridge',
  '--',
  '--columns=_uuid,name,tag,other_config,external_ids,interfaces',
  'list',
  'Port',
  '--',
  '--columns=_uuid,name,type,options,ofport_request,external_ids,ofport',
  'list',
  'Interface',
];

export interface OvsReadBack {
  bridges: Record<string, OvsBridge>;
  /** Ports realised as veth pairs (their device lives in another namespace). */
  vethPorts: Set<string>;
  /** OpenFlow port numbers per bridge, by port name. */
  ofports: Record<string, Record<string, number>>;
}

/** Parses the output of `ovs-vsctl READ_ARGS` (three JSON tables, one per line). */
export function parseOvsList(stdout: string): OvsReadBack {
  const [bt, pt, it] = stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Table);
  const ifaces = new Map(rows(it).map((r) => [uuid(r._uuid), r]));
  const ports = new Map(rows(pt).map((r) => [uuid(r._uuid), r]));
  const bridges: Record<string, OvsBridge> = {};
  const vethPorts = new Set<string>();
  const ofports: Record<string, Record<string, number>> = {};
  for (const b of rows(bt)) {
    const name = String(b.name);
    const dt = String(atom(b.datapath_type) ?? '');
    const fm = atom(b.fail_mode);
    const bridge: OvsBridge = { name, datapath_type: dt === 'netdev' ? 'netdev' : 'system', fail_mode: fm === 'secure' ? 'secure' : 'standalone', ports: {}, flows: [] };
    const protocols = setOf(b.protocols).map(String);
    if (protocols.length) bridge.protocols = protocols.sort();
    const ext = mapOf(b.external_ids);
    if (Object.keys(ext).length) bridge.external_ids = ext;
    const oc = mapOf(b.other_config);
    if (Object.keys(oc).length) bridge.other_config = oc;
    ofports[name] = {};
    for (const pu of setOf(b.ports)) {
      const p = ports.get(uuid(pu));
      if (!p) continue;
      const pname = String(p.name);
      const iface = ifaces.get(uuid(setOf(p.interfaces)[0]));
      if (!iface) continue;
      const ofport = Number(atom(iface.ofport));
      if (Number.isInteger(ofport) && ofport > 0) ofports[name][pname] = ofport;
      if (pname === name) continue; // the bridge's own local port
      const portExt = mapOf(p.external_ids);
      const isVeth = portExt[VETH_PORT_MARK] === 'true';
      if (isVeth) vethPorts.add(pname);
      const type = String(iface.type ?? '');
      const common: { name: string; tag?: number; ofport_request?: number; external_ids?: Record<string, string>; other_config?: Record<string, string> } = { name: pname };
      const tag = atom(p.tag);
      if (tag !== undefined) common.tag = Number(tag);
      const ofr = atom(iface.ofport_request);
      if (ofr !== undefined) common.ofport_request = Number(ofr);
      const iext = mapOf(iface.external_ids);
      if (Object.keys(iext).length) common.external_ids = iext;
      const poc = mapOf(p.other_config);
      if (Object.keys(poc).length) common.other_config = poc;
      const opts = mapOf(iface.options);
      let port: OvsPort;
      if (isVeth || type === 'internal') port = { ...common, type: 'internal' };
      else if (type === '' || type === 'system') port = { ...common, type: 'system' };
      else if (type === 'patch') port = { ...common, type: 'patch', peer: opts.peer ?? '' };
      else if (type === 'vxlan' || type === 'gre') {
        const { remote_ip, local_ip, key, dst_port, ...rest } = opts;
        const t: OvsPort = { ...common, type, remote_ip: remote_ip ?? '', key: key === undefined || key === 'flow' ? 'flow' : Number(key) };
        if (key === undefined) (t as { key: unknown }).key = 0;
        if (local_ip !== undefined) t.local_ip = local_ip;
        if (dst_port !== undefined) t.dst_port = Number(dst_port);
        if (Object.keys(rest).length) t.options = rest;
        port = t;
      } else port = { ...common, type: 'system' }; // other interface types: shown as a plain port so diff replaces it
      bridge.ports[pname] = port;
    }
    bridges[name] = bridge;
  }
  return { bridges, vethPorts, ofports };
}

// --- writing ---------------------------------------------------------------------------

const q = (s: string) => JSON.stringify(s);
const mapValue = (m: Record<string, string> | undefined) =>
  `{${Object.entries(m ?? {})
    .map(([k, v]) => `${q(k)}=${q(v)}`)
    .join(',')}}`;

/** `set`/`clear` arguments for a column: an absent or empty value clears it. */
function setOrClear(table: string, record: string, column: string, value: string | undefined): string[] {
  return value === undefined ? ['--', 'clear', table, record, column] : ['--', 'set', table, record, `${column}=${value}`];
}

function bridgeColumn(b: BridgeSpec, c: BridgeColumn): string | undefined {
  switch (c) {
    case 'datapath_type':
      return b.datapath_type;
    case 'fail_mode':
      return b.fail_mode;
    case 'protocols':
      return b.protocols?.length ? `[${b.protocols.map(q).join(',')}]` : undefined;
    case 'external_ids':
      return b.external_ids && Object.keys(b.external_ids).length ? mapValue(b.external_ids) : undefined;
    case 'other_config':
      return b.other_config && Object.keys(b.other_config).length ? mapValue(b.other_config) : undefined;
  }
}

const BRIDGE_COLUMNS: BridgeColumn[] = ['datapath_type', 'fail_mode', 'protocols', 'external_ids', 'other_config'];

export function bridgeCreateArgs(b: BridgeSpec): string[] {
  const out = ['--', '--may-exist', 'add-br', b.name];
  for (const c of BRIDGE_COLUMNS) {
    const v = bridgeColumn(b, c);
    if (v !== undefined) out.push('--', 'set', 'Bridge', b.name, `${c}=${v}`);
  }
  return out;
}

export function bridgeSetArgs(b: BridgeSpec, changed: BridgeColumn[]): string[] {
  return changed.flatMap((c) => setOrClear('Bridge', b.name, c, bridgeColumn(b, c)));
}

export function bridgeDeleteArgs(name: string): string[] {
  return ['--', '--if-exists', 'del-br', name];
}

function portColumnArgs(p: OvsPort, c: PortColumn, asVeth: boolean): string[] {
  switch (c) {
    case 'tag':
      return setOrClear('Port', p.name, 'tag', p.tag === undefined ? undefined : String(p.tag));
    case 'ofport_request':
      return setOrClear('Interface', p.name, 'ofport_request', p.ofport_request === undefined ? undefined : String(p.ofport_request));
    case 'external_ids':
      return setOrClear('Interface', p.name, 'external_ids', p.external_ids && Object.keys(p.external_ids).length ? mapValue(p.external_ids) : undefined);
    case 'other_config':
      return setOrClear('Port', p.name, 'other_config', p.other_config && Object.keys(p.other_config).length ? mapValue(p.other_config) : undefined);
    case 'options': {
      const o = interfaceOptions(p);
      return asVeth ? [] : setOrClear('Interface', p.name, 'options', Object.keys(o).length ? mapValue(o) : undefined);
    }
  }
}

const PORT_COLUMNS: PortColumn[] = ['tag', 'ofport_request', 'external_ids', 'other_config', 'options'];

/** `add-port` with every column; `asVeth`: the device is the root end of a veth pair (a system port marked as internal). */
export function portAddArgs(bridge: string, p: OvsPort, asVeth: boolean): string[] {
  const out = ['--', '--may-exist', 'add-port', bridge, p.name];
  const type = asVeth ? '' : interfaceType(p);
  if (type) out.push('--', 'set', 'Interface', p.name, `type=${type}`);
  if (asVeth) out.push('--', 'set', 'Port', p.name, `external_ids:${VETH_PORT_MARK}=true`);
  for (const c of PORT_COLUMNS) {
    const args = portColumnArgs(p, c, asVeth);
    if (args[1] === 'set') out.push(...args);
  }
  return out;
}

export function portSetArgs(p: OvsPort, changed: PortColumn[], asVeth: boolean): string[] {
  return changed.flatMap((c) => portColumnArgs(p, c, asVeth));
}

export function portDeleteArgs(bridge: string, name: string): string[] {
  return ['--', '--if-exists', 'del-port', bridge, name];
}
