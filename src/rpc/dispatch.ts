// The server side shared by both transports: decode a request, run the handler, encode the
// reply. A handler never sees the sender's objects: args come from a fresh JSON.parse.

import type { Handlers } from './transport.js';
import { decodeRequest, encodeError, encodeResult, errorBody } from './wire.js';

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
    const handler = Object.hasOwn(handlers, method) ? handlers[method] : undefined;
    if (typeof handler !== 'function') {
      throw new NoSuchMethod(`Endpoint on topic '${topic}' does not support RPC method '${method}'`);
    }
    const result = await handler(env.args, { method, topic });
    const reply = encodeResult(result);
    // encodeResult turns an unencodable result into an error reply; surface it to the server too.
    return reply.startsWith('{"error"') ? { reply, method, error: JSON.parse(reply).error } : { reply, method };
  } catch (err) {
    return { reply: encodeError(err), method, error: err };
  }
}

/** Default report for failures nobody waits for (casts, fanouts): one line on stderr. */
export function reportHandlerError(err: unknown, meta: { topic: string; method: string }): void {
  const { type, message } = errorBody(err);
  process.stderr.write(`rpc: ${meta.method} on topic '${meta.topic}' failed: ${type}: ${message}\n`);
}
