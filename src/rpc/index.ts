// The one place that picks a transport: neutron.conf's transport_url decides.

import { AmqpTransport, type AmqpTransportOptions } from './amqp.js';
import { InProcessBus, InProcessTransport, type InProcessTransportOptions } from './inproc.js';
import type { FaultInjectable, Transport } from './transport.js';
import { parseTransportUrl } from './url.js';

export * from './transport.js';
export { AmqpTransport, type AmqpTransportOptions } from './amqp.js';
export { InProcessBus, InProcessTransport, type InProcessTransportOptions } from './inproc.js';
export { parseTransportUrl, redact, TransportUrlError, type TransportUrl } from './url.js';

export type TransportOptions = Omit<AmqpTransportOptions, 'url'> & Omit<InProcessTransportOptions, 'bus'>;

/**
 * `inproc://[name]` (or an empty URL): a transport on the in-process bus of that name, shared
 * by every transport made from the same URL in this process. `rabbit://`, `amqp://`,
 * `amqps://`: RabbitMQ, connected lazily at first use (call `connect()` to fail fast).
 */
export function transportFromUrl(url: string | undefined, opts: TransportOptions = {}): Transport & FaultInjectable {
  const u = parseTransportUrl(url);
  if (u.driver === 'inproc') return new InProcessTransport({ bus: InProcessBus.named(u.name), onHandlerError: opts.onHandlerError });
  return new AmqpTransport({ ...opts, url: url as string });
}
