// What travels between processes: JSON text in a small envelope. Both transports check payloads
// with these functions, so a payload that one of them refuses the other refuses too. Between
// processes nothing is shared by reference; in one process the payload is frozen and shared
// (sealJson), so again neither side can change what the other sees.
//
//   request  {"v": 1, "method": "...", "args": ...}     (args absent when undefined)
//   reply    {"result": ...}  or  {"error": {"type": "...", "message": "...", "status"?: n}}

import { RpcPayloadError } from './transport.js';

export const ENVELOPE_VERSION = 1;

export interface RequestEnvelope {
  v: number;
  method: string;
  args?: unknown;
}
export interface RemoteErrorBody {
  type: string;
  message: string;
  status?: number;
}
export type ReplyEnvelope = { result?: unknown } | { error: RemoteErrorBody };

/**
 * Checks that `value` survives JSON unchanged, throwing RpcPayloadError with the path of the
 * first offender. Refused: functions, symbols, bigints, NaN/Infinity, array holes or undefined
 * elements (JSON would turn them into null), cycles, and objects that are not plain (Date, Map,
 * Set, Buffer, class instances), which JSON would silently flatten. Undefined object
 * properties are allowed and dropped, as JSON does, so optional fields can be left unset.
 */
export function assertJson(value: unknown, path: string): void {
  checkJson(value, path, false);
}

/**
 * Long arrays `sealJson` checked and froze (a group's member list in every host's update):
 * checked once however many messages carry them. Only long ones: millions of small objects
 * made a weak set that cost more than walking them again (its table grew and shrank with
 * the collections).
 */
const SEALED = new WeakSet<object>();
const SEALED_MIN_LENGTH = 64;

/**
 * `assertJson`, then every object and array in `value` frozen: what the in-process transport
 * hands the receiver instead of a copy, so neither side can change what the other sees.
 */
export function sealJson<T>(value: T, path: string): T {
  checkJson(value, path, true);
  return value;
}

function checkJson(value: unknown, path: string, seal: boolean): void {
  const stack = new Set<object>();
  // The path is spelled out only for an offender: building it for every element cost more
  // than the check (a member list of thousands of addresses travels on every refresh).
  const keys: Array<string | number> = [];
  const at = () => path + keys.map((k) => (typeof k === 'number' ? `[${k}]` : /^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`)).join('');
  const walk = (v: unknown): void => {
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return;
      case 'number':
        if (!Number.isFinite(v)) throw new RpcPayloadError(`${at()} is ${v}, which JSON cannot carry`);
        return;
      case 'undefined':
        throw new RpcPayloadError(`${at()} is undefined, which JSON would turn into null`);
      case 'bigint':
      case 'symbol':
      case 'function':
        throw new RpcPayloadError(`${at()} is a ${typeof v}, which JSON cannot carry`);
    }
    if (v === null) return;
    const o = v as object;
    const long = seal && Array.isArray(o) && o.length >= SEALED_MIN_LENGTH;
    if (long && SEALED.has(o)) return;
    // An array of strings (an FDB entry's [MAC, IP] pair, a member list) holds no cycle:
    // checked without the stack, which cost more than the check for the pairs of every cast.
    if (Array.isArray(o) && allStrings(o)) {
      if (seal) Object.freeze(o);
      if (long) SEALED.add(o);
      return;
    }
    if (stack.has(o)) throw new RpcPayloadError(`${at()} refers back to one of its parents (a cycle)`);
    stack.add(o);
    if (Array.isArray(o)) {
      for (let i = 0; i < o.length; i++) {
        const x = o[i];
        if (typeof x === 'string') continue;
        keys.push(i);
        walk(x);
        keys.pop();
      }
    } else {
      const proto = Object.getPrototypeOf(o);
      if (proto !== Object.prototype && proto !== null) {
        const kind = (proto?.constructor?.name as string | undefined) || 'object';
        throw new RpcPayloadError(`${at()} is a ${kind}, not a plain object; convert it to JSON values first`);
      }
      for (const k in o) {
        if (!Object.hasOwn(o, k)) continue;
        const x = (o as Record<string, unknown>)[k];
        // Left out, as JSON leaves it out (the object is about to be frozen as it is sent).
        if (x === undefined && seal && !Object.isFrozen(o)) delete (o as Record<string, unknown>)[k];
        if (x === undefined || typeof x === 'string') continue;
        keys.push(k);
        walk(x);
        keys.pop();
      }
    }
    stack.delete(o);
    if (seal) Object.freeze(o);
    if (long) SEALED.add(o);
  };
  walk(value);
}

/** Every element a string (no holes: a hole reads as undefined). */
function allStrings(a: readonly unknown[]): boolean {
  for (let i = 0; i < a.length; i++) if (typeof a[i] !== 'string') return false;
  return true;
}

export function encodeRequest(method: string, args: unknown): string {
  if (args !== undefined) assertJson(args, 'args');
  const env: RequestEnvelope = { v: ENVELOPE_VERSION, method };
  if (args !== undefined) env.args = args;
  return JSON.stringify(env);
}

export class MessageFormatError extends Error {
  override name = 'MessageFormatError';
}

export function decodeRequest(text: string): RequestEnvelope {
  let env: unknown;
  try {
    env = JSON.parse(text);
  } catch {
    throw new MessageFormatError(`Request is not JSON: ${quote(text)}`);
  }
  if (typeof env !== 'object' || env === null || Array.isArray(env)) {
    throw new MessageFormatError(`Request is not an envelope object: ${quote(text)}`);
  }
  const e = env as Partial<RequestEnvelope>;
  if (e.v !== ENVELOPE_VERSION) {
    throw new MessageFormatError(`Request envelope version ${JSON.stringify(e.v)} is not ${ENVELOPE_VERSION}: ${quote(text)}`);
  }
  if (typeof e.method !== 'string' || e.method === '') {
    throw new MessageFormatError(`Request envelope has no method: ${quote(text)}`);
  }
  return e as RequestEnvelope;
}

/** Encodes a handler's result; one that JSON cannot carry becomes an RpcPayloadError reply. */
export function encodeResult(result: unknown): string {
  if (result === undefined) return '{}';
  try {
    assertJson(result, 'result');
  } catch (e) {
    return encodeError(e);
  }
  return JSON.stringify({ result });
}

/** The error's class name travels as `type`: NeutronError.type when present, else Error.name. */
export function encodeError(err: unknown): string {
  return JSON.stringify({ error: errorBody(err) });
}

export function errorBody(err: unknown): RemoteErrorBody {
  if (err instanceof Error) {
    const typed = (err as { type?: unknown }).type;
    const status = (err as { status?: unknown }).status;
    const body: RemoteErrorBody = { type: typeof typed === 'string' && typed ? typed : err.name || 'Error', message: err.message };
    if (typeof status === 'number' && Number.isFinite(status)) body.status = status;
    return body;
  }
  return { type: 'Error', message: typeof err === 'string' ? err : safeString(err) };
}

export function decodeReply(text: string): ReplyEnvelope {
  let env: unknown;
  try {
    env = JSON.parse(text);
  } catch {
    throw new MessageFormatError(`Reply is not JSON: ${quote(text)}`);
  }
  if (typeof env !== 'object' || env === null || Array.isArray(env)) {
    throw new MessageFormatError(`Reply is not an envelope object: ${quote(text)}`);
  }
  if ('error' in env) {
    const e = (env as { error: unknown }).error as Partial<RemoteErrorBody> | null;
    if (typeof e !== 'object' || e === null || typeof e.type !== 'string' || typeof e.message !== 'string') {
      throw new MessageFormatError(`Reply error has no type and message: ${quote(text)}`);
    }
  }
  return env as ReplyEnvelope;
}

const TOPIC = /^[A-Za-z0-9_.:-]{1,200}$/;

/** Topics are routing keys and queue names: no AMQP wildcards, no spaces, at most 200 chars. */
export function checkTopic(topic: unknown): string {
  if (typeof topic !== 'string' || !TOPIC.test(topic)) {
    throw new TypeError(`Invalid RPC topic ${quote(topic)}: use 1-200 of letters, digits, '_', '.', ':' and '-'`);
  }
  return topic;
}

export function checkMethod(method: unknown): string {
  if (typeof method !== 'string' || method === '') throw new TypeError(`Invalid RPC method name ${quote(method)}`);
  return method;
}

function quote(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : safeString(v);
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}

function safeString(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** A call, cast or fanout's payload, after checking its topic and method names. */
export function encodeMessage(topic: string, method: string, args: unknown): string {
  checkTopic(topic);
  checkMethod(method);
  return encodeRequest(method, args);
}

/** `encodeMessage` for a receiver in the same process: the request envelope itself, sealed. */
export function sealMessage(topic: string, method: string, args: unknown): RequestEnvelope {
  checkTopic(topic);
  checkMethod(method);
  const env: RequestEnvelope = { v: ENVELOPE_VERSION, method };
  if (args !== undefined) env.args = sealJson(args, 'args');
  return Object.freeze(env);
}

/** `encodeResult` for a caller in the same process: the reply envelope itself, sealed. */
export function sealResult(result: unknown): ReplyEnvelope {
  if (result === undefined) return {};
  try {
    return Object.freeze({ result: sealJson(result, 'result') });
  } catch (e) {
    return Object.freeze({ error: errorBody(e) });
  }
}
