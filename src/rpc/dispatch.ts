// The server side shared by both transports: decode a request, run the handler, encode the
// reply. A handler never sees objects the sender can change: args come from a fresh
// JSON.parse, or (in one process) are the sender's, frozen (wire.ts sealJson).

import type { Handlers } from './transport.js';
import { decodeRequest, encodeError, encodeResult, errorBody, sealResult, type ReplyEnvelope, type RequestEnvelope } from './wire.js';

export interface Dispatched {
  /** The reply envelope as JSON text (sent back for a call, dropped for a cast or fanout). */
  reply: string;
  /** The method named in the request ('' when the request could not be decoded). */
  method: string;
  /** The handler's (or decoder's) failure, for the transport to report on casts. */
  error?: unknown;
}

export class NoSuchMethod extends Error {
  override name = 'NoSuchMethod';
}

export async function dispatch(handlers: Handlers, text: string, topic: string): Promise<Dispatched> {
  let method = '';
  try {
    const env = decodeRequest(text);
    method = env.method;
    const reply = encodeResult(await run(handlers, env, topic));
    // encodeResult turns an unencodable result into an error reply; surface it to the server too.
    return reply.startsWith('{"error"') ? { reply, method, error: JSON.parse(reply).error } : { reply, method };
  } catch (err) {
    return { reply: encodeError(err), method, error: err };
  }
}

/** `dispatch` for a request from the same process: its sealed envelope in, a sealed reply envelope out. */
export async function dispatchSealed(handlers: Handlers, env: RequestEnvelope, topic: string): Promise<{ reply: ReplyEnvelope; method: string; error?: unknown }> {
  try {
    const reply = sealResult(await run(handlers, env, topic));
    return 'error' in reply ? { reply, method: env.method, error: reply.error } : { reply, method: env.method };
  } catch (err) {
    return { reply: Object.freeze({ error: errorBody(err) }), method: env.method, error: err };
  }
}

function run(handlers: Handlers, env: RequestEnvelope, topic: string): unknown {
  const handler = Object.hasOwn(handlers, env.method) ? handlers[env.method] : undefined;
  if (typeof handler !== 'function') throw new NoSuchMethod(`Endpoint on topic '${topic}' does not support RPC method '${env.method}'`);
  return handler(env.args, { method: env.method, topic });
}

/** Default report for failures nobody waits for (casts, fanouts): one line on stderr. */
export function reportHandlerError(err: unknown, meta: { topic: string; method: string }): void {
  const { type, message } = errorBody(err);
  process.stderr.write(`rpc: ${meta.method} on topic '${meta.topic}' failed: ${type}: ${message}\n`);
}
