// The learn() action (ovs-actions(7) "The learn action"), as Neutron's br-tun uses it in
// table 10: from a packet that arrived on a tunnel, install into table 20 a flow that sends
// later packets for that MAC back through the same tunnel with the same VNI.
//
// The learned flow's shape (which words it matches, with which masks) is fixed by the spec,
// so it is computed once here; per packet only the values are read from the key.

import { OvsFlowError } from './errors.js';
import {
  N_WORDS,
  fieldByName,
  fieldToWords,
  onesBig,
  readField,
} from './fields.js';
import { Match } from './match.js';
import {
  checkLearnRead,
  loadText,
  makeSet,
  parseFieldValue,
  parseSubfield,
  splitTop,
  subfieldText,
  type Action,
  type FlowFacts,
  type ParseContext,
  type Subfield,
} from './actions.js';

export type LearnItem =
  | { kind: 'match'; dst: Subfield; src: Subfield }
  | { kind: 'match_imm'; dst: Subfield; value: bigint }
  | { kind: 'load'; dst: Subfield; src: Subfield }
  | { kind: 'load_imm'; dst: Subfield; value: bigint }
  | { kind: 'output'; src: Subfield };

export interface LearnSpec {
  table: number;
  priority: number;
  idleTimeout: number;
  hardTimeout: number;
  finIdleTimeout: number;
  finHardTimeout: number;
  cookie: bigint;
  items: LearnItem[];
  /** Shape of every flow this spec learns. */
  shape: { idx: number[]; mask: number[]; key: string };
  text: string;
}

const NUMERIC_KEYS = ['table', 'priority', 'idle_timeout', 'hard_timeout', 'fin_idle_timeout', 'fin_hard_timeout', 'cookie'];

export function parseLearn(body: string, flow: string, ctx: ParseContext, facts: FlowFacts): LearnSpec {
  const spec: LearnSpec = {
    table: 1,
    priority: 32768,
    idleTimeout: 0,
    hardTimeout: 0,
    finIdleTimeout: 0,
    finHardTimeout: 0,
    cookie: 0n,
    items: [],
    shape: { idx: [], mask: [], key: '' },
    text: body,
  };
  const masks = new Int32Array(N_WORDS);
  const addShape = (dst: Subfield, token: string) => {
    const mask = onesBig(dst.nbits) << BigInt(dst.ofs);
    for (const [i, m] of fieldToWords(dst.field, 0n, mask)) {
      if (masks[i] & m) throw new OvsFlowError(flow, token, 'learn matches the same bits twice');
      masks[i] |= m;
    }
  };
  for (const raw of splitTop(body)) {
    const item = raw.trim();
    const eq = item.indexOf('=');
    const key = eq >= 0 ? item.slice(0, eq) : item;
    if (NUMERIC_KEYS.includes(key)) {
      const v = item.slice(eq + 1);
      if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(v)) throw new OvsFlowError(flow, item, `invalid learn ${key}`);
      const n = BigInt(v);
      if (key === 'cookie') spec.cookie = n;
      else if (key === 'table') {
        if (n > 254n) throw new OvsFlowError(flow, item, 'learn table must be 0..254');
        spec.table = Number(n);
      } else if (key === 'priority') {
        if (n > 65535n) throw new OvsFlowError(flow, item, 'invalid priority');
        spec.priority = Number(n);
      } else {
        if (n > 65535n) throw new OvsFlowError(flow, item, `invalid ${key}`);
        const prop = { idle_timeout: 'idleTimeout', hard_timeout: 'hardTimeout', fin_idle_timeout: 'finIdleTimeout', fin_hard_timeout: 'finHardTimeout' }[
          key
        ] as 'idleTimeout';
        spec[prop] = Number(n);
      }
      continue;
    }
    if (item.startsWith('load:')) {
      const a = item.slice(5);
      const arrow = a.indexOf('->');
      if (arrow < 0) throw new OvsFlowError(flow, item, 'learn load needs SRC->DST[]');
      const dst = parseSubfield(a.slice(arrow + 2), flow);
      if (!dst.field.writable) throw new OvsFlowError(flow, item, `field ${dst.field.name} is read-only`);
      const srcText = a.slice(0, arrow).trim();
      if (srcText.includes('[')) {
        const src = parseSubfield(srcText, flow);
        if (src.nbits !== dst.nbits) throw new OvsFlowError(flow, item, `source is ${src.nbits} bits wide but destination is ${dst.nbits}`);
        checkLearnRead(src, facts, flow, item);
        spec.items.push({ kind: 'load', dst, src });
      } else {
        const v = /^(0x[0-9a-fA-F]+|\d+)$/.test(srcText) ? BigInt(srcText) : undefined;
        if (v === undefined || v > onesBig(dst.nbits)) throw new OvsFlowError(flow, item, `invalid value for ${subfieldText(dst)}`);
        spec.items.push({ kind: 'load_imm', dst, value: v });
      }
      continue;
    }
    if (item.startsWith('output:')) {
      const src = parseSubfield(item.slice(7), flow);
      checkLearnRead(src, facts, flow, item);
      spec.items.push({ kind: 'output', src });
      continue;
    }
    if (/^(delete_learned|send_flow_rem|limit|result_dst)/.test(item))
      throw new OvsFlowError(flow, item, `learn option '${key}' is not supported`);
    // Match specs: FIELD[..] | DST[..]=SRC[..] | DST[..]=VALUE | field=VALUE
    if (eq < 0) {
      const sf = parseSubfield(item, flow);
      checkLearnRead(sf, facts, flow, item);
      addShape(sf, item);
      spec.items.push({ kind: 'match', dst: sf, src: sf });
      continue;
    }
    const dstText = item.slice(0, eq);
    const srcText = item.slice(eq + 1);
    let dst: Subfield;
    if (dstText.includes('[')) dst = parseSubfield(dstText, flow);
    else {
      const fd = fieldByName(dstText);
      if (!fd) throw new OvsFlowError(flow, dstText, `unknown learn option or field '${dstText}'`);
      dst = { field: fd, ofs: 0, nbits: fd.bits };
    }
    addShape(dst, item);
    if (srcText.includes('[')) {
      const src = parseSubfield(srcText, flow);
      if (src.nbits !== dst.nbits) throw new OvsFlowError(flow, item, `source is ${src.nbits} bits wide but destination is ${dst.nbits}`);
      checkLearnRead(src, facts, flow, item);
      spec.items.push({ kind: 'match', dst, src });
    } else {
      const v = dstText.includes('[') ? (/^(0x[0-9a-fA-F]+|\d+)$/.test(srcText) ? BigInt(srcText) : undefined) : parseFieldValue(dst.field, srcText, flow, ctx);
      if (v === undefined || v > onesBig(dst.nbits)) throw new OvsFlowError(flow, item, `invalid value for ${dstText}`);
      spec.items.push({ kind: 'match_imm', dst, value: v });
    }
  }
  const idx: number[] = [];
  const mask: number[] = [];
  for (let i = 0; i < N_WORDS; i++) if (masks[i] !== 0) (idx.push(i), mask.push(masks[i]));
  spec.shape = { idx, mask, key: Match.shapeKeyOf(idx, mask) };
  return spec;
}

function readSub(w: Int32Array, s: Subfield): bigint {
  return (readField(w, s.field) >> BigInt(s.ofs)) & onesBig(s.nbits);
}

export interface Learned {
  match: Match;
  /** Values that decide the learned actions (load values, output ports): compared to skip rebuilding. */
  sig: bigint[];
}

/** Computes the match and action values of the flow `spec` learns from packet key `w`. */
export function learnFrom(spec: LearnSpec, w: Int32Array): Learned {
  const values = new Int32Array(N_WORDS);
  const sig: bigint[] = [];
  for (const it of spec.items) {
    if (it.kind === 'match' || it.kind === 'match_imm') {
      const v = it.kind === 'match' ? readSub(w, it.src) : it.value;
      for (const [i, m, x] of fieldToWords(it.dst.field, v << BigInt(it.dst.ofs), onesBig(it.dst.nbits) << BigInt(it.dst.ofs)))
        values[i] = (values[i] & ~m) | x;
    } else if (it.kind === 'load') sig.push(readSub(w, it.src));
    else if (it.kind === 'output') sig.push(readSub(w, it.src));
  }
  const { idx, mask, key } = spec.shape;
  const val = idx.map((i, k) => values[i] & mask[k]);
  return { match: new Match(idx, mask, val, key), sig };
}

/** The actions of a learned flow, from its signature values. */
export function learnedActions(spec: LearnSpec, sig: bigint[]): Action[] {
  const out: Action[] = [];
  let k = 0;
  for (const it of spec.items) {
    if (it.kind === 'load') {
      const v = sig[k++];
      out.push(makeSet(it.dst, v, loadText(v, it.dst)));
    } else if (it.kind === 'load_imm') out.push(makeSet(it.dst, it.value, loadText(it.value, it.dst)));
    else if (it.kind === 'output') {
      const port = Number(sig[k++]);
      out.push({ kind: 'output', port, text: `output:${port}` });
    }
  }
  return out;
}

export function sameSig(a: bigint[] | undefined, b: bigint[]): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
