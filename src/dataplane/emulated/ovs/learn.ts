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

/** The key words (and masks within them) that hold subfield `s`. */
function wordsOf(s: Subfield): Array<[number, number]> {
  return fieldToWords(s.field, 0n, onesBig(s.nbits) << BigInt(s.ofs)).map(([i, m]) => [i, m] as [number, number]);
}

/** A subfield's value from its masked words (as `wordsOf` lists them). */
function valueFromWords(s: Subfield, nums: number[]): bigint {
  let v = 0n;
  for (const n of nums) v = (v << 32n) | BigInt(n >>> 0);
  return (v >> BigInt(s.field.offset + s.ofs)) & onesBig(s.nbits);
}

/**
 * Per-spec plan so that learning from a packet is integer work on key words: a match whose
 * source and destination sit at the same bit positions copies masked words; loads and
 * outputs record the masked words of their source (their "signature").
 */
interface LearnPlan {
  items: Array<
    | { kind: 'copy'; copies: Array<[number, number, number]> } // [srcWord, dstWord, mask]
    | { kind: 'shift'; dst: Subfield; src: Subfield }
    | { kind: 'imm'; triples: Array<[number, number, number]> }
    | { kind: 'sig'; words: Array<[number, number]> }
  >;
}

const plans = new WeakMap<LearnSpec, LearnPlan>();

function planOf(spec: LearnSpec): LearnPlan {
  let plan = plans.get(spec);
  if (plan) return plan;
  plan = { items: [] };
  for (const it of spec.items) {
    if (it.kind === 'match') {
      const sw = wordsOf(it.src);
      const dw = wordsOf(it.dst);
      const aligned = sw.length === dw.length && sw.every(([, m], k) => m === dw[k][1]);
      plan.items.push(aligned ? { kind: 'copy', copies: sw.map(([i, m], k) => [i, dw[k][0], m]) } : { kind: 'shift', dst: it.dst, src: it.src });
    } else if (it.kind === 'match_imm') {
      plan.items.push({ kind: 'imm', triples: fieldToWords(it.dst.field, it.value << BigInt(it.dst.ofs), onesBig(it.dst.nbits) << BigInt(it.dst.ofs)) });
    } else if (it.kind === 'load' || it.kind === 'output') plan.items.push({ kind: 'sig', words: wordsOf(it.src) });
  }
  plans.set(spec, plan);
  return plan;
}

const scratch = new Int32Array(N_WORDS);

export interface Learned {
  match: Match;
  /** Masked source words of the learned actions (load values, output ports). */
  sig: number[];
}

/** Computes the match and action values of the flow `spec` learns from packet key `w`. */
export function learnFrom(spec: LearnSpec, w: Int32Array): Learned {
  const values = scratch;
  values.fill(0);
  const sig: number[] = [];
  for (const it of planOf(spec).items) {
    switch (it.kind) {
      case 'copy':
        for (const [src, dst, m] of it.copies) values[dst] = (values[dst] & ~m) | (w[src] & m);
        break;
      case 'imm':
        for (const [i, m, v] of it.triples) values[i] = (values[i] & ~m) | v;
        break;
      case 'shift': {
        const v = readSub(w, it.src);
        for (const [i, m, x] of fieldToWords(it.dst.field, v << BigInt(it.dst.ofs), onesBig(it.dst.nbits) << BigInt(it.dst.ofs)))
          values[i] = (values[i] & ~m) | x;
        break;
      }
      case 'sig':
        for (const [i, m] of it.words) sig.push(w[i] & m);
        break;
    }
  }
  const { idx, mask, key } = spec.shape;
  const val = new Array<number>(idx.length);
  for (let k = 0; k < idx.length; k++) val[k] = values[idx[k]] & mask[k];
  return { match: new Match(idx, mask, val, key), sig };
}

/** The actions of a learned flow, from its signature. */
export function learnedActions(spec: LearnSpec, sig: number[]): Action[] {
  const out: Action[] = [];
  let k = 0;
  const next = (s: Subfield): bigint => {
    const n = s.field.words.length;
    const v = valueFromWords(s, sig.slice(k, k + n));
    k += n;
    return v;
  };
  for (const it of spec.items) {
    if (it.kind === 'load') {
      const v = next(it.src);
      out.push(makeSet(it.dst, v, loadText(v, it.dst)));
    } else if (it.kind === 'load_imm') out.push(makeSet(it.dst, it.value, loadText(it.value, it.dst)));
    else if (it.kind === 'output') {
      const port = Number(next(it.src));
      out.push({ kind: 'output', port, text: `output:${port}` });
    }
  }
  return out;
}

export function sameSig(a: number[] | undefined, b: number[]): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
