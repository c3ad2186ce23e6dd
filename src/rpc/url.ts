// oslo.messaging's transport_url, as neutron.conf writes it:
//   rabbit://user:pass@host:5672[,user2:pass2@host2:5672]/virtual_host?heartbeat=30&ssl=1
// 'amqp://' and 'amqps://' are accepted as synonyms (amqps means TLS), and 'inproc://name' (or
// an empty URL) selects the in-process bus called `name` ('default').

export interface AmqpHost {
  hostname: string;
  port: number;
  username: string;
  password: string;
}

export type TransportUrl =
  | { driver: 'inproc'; name: string }
  | { driver: 'amqp'; hosts: AmqpHost[]; vhost: string; tls: boolean; heartbeatS?: number };

export class TransportUrlError extends Error {
  override name = 'TransportUrlError';
}

export function parseTransportUrl(url: string | undefined): TransportUrl {
  const text = (url ?? '').trim();
  if (text === '') return { driver: 'inproc', name: 'default' };
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/i.exec(text);
  if (!m) throw new TransportUrlError(`Invalid transport_url ${JSON.stringify(redact(text))}: expected driver://[user:pass@]host:port/[vhost]`);
  const [, scheme, authority, path = '', query = ''] = m;
  const driver = scheme.toLowerCase();
  if (driver === 'inproc') return { driver: 'inproc', name: decodeURIComponent(authority) || 'default' };
  if (driver !== 'rabbit' && driver !== 'amqp' && driver !== 'amqps') {
    throw new TransportUrlError(`Unsupported transport_url driver '${scheme}' in ${JSON.stringify(redact(text))}: use rabbit://, amqp://, amqps:// or inproc://`);
  }
  const params = new URLSearchParams(query.slice(1));
  const ssl = params.get('ssl');
  const tls = driver === 'amqps' || ssl === '1' || ssl?.toLowerCase() === 'true';
  let heartbeatS: number | undefined;
  const hb = params.get('heartbeat');
  if (hb !== null) {
    heartbeatS = Number(hb);
    if (!Number.isInteger(heartbeatS) || heartbeatS < 0) {
      throw new TransportUrlError(`Invalid heartbeat ${JSON.stringify(hb)} in transport_url ${JSON.stringify(redact(text))}`);
    }
  }
  if (authority === '') throw new TransportUrlError(`transport_url ${JSON.stringify(redact(text))} names no host`);
  const hosts = authority.split(',').map((h) => parseHost(h, tls ? 5671 : 5672, text));
  // oslo: an empty path is the default virtual host '/'; '/%2F' is also '/'.
  const vhost = decodeURIComponent(path.slice(1)) || '/';
  return { driver: 'amqp', hosts, vhost, tls, ...(heartbeatS !== undefined ? { heartbeatS } : {}) };
}

function parseHost(part: string, defaultPort: number, url: string): AmqpHost {
  const at = part.lastIndexOf('@');
  const userinfo = at >= 0 ? part.slice(0, at) : '';
  const hostport = at >= 0 ? part.slice(at + 1) : part;
  const colon = userinfo.indexOf(':');
  const username = decodeURIComponent(colon >= 0 ? userinfo.slice(0, colon) : userinfo) || 'guest';
  const password = colon >= 0 ? decodeURIComponent(userinfo.slice(colon + 1)) : at >= 0 ? '' : 'guest';
  const hm = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d+))?$/i.exec(hostport);
  if (!hm) throw new TransportUrlError(`Invalid host ${JSON.stringify(hostport)} in transport_url ${JSON.stringify(redact(url))}`);
  const port = hm[2] === undefined ? defaultPort : Number(hm[2]);
  if (port < 1 || port > 65535) throw new TransportUrlError(`Invalid port ${hm[2]} in transport_url ${JSON.stringify(redact(url))}`);
  return { hostname: hm[1].replace(/^\[|\]$/g, ''), port, username, password };
}

/** The URL with passwords replaced by '***', for messages and logs. */
export function redact(url: string): string {
  return url.replace(/([/,][^/:@,]*:)[^@,/]*@/g, '$1***@');
}

/** 'amqp://guest@127.0.0.1:5672/' for messages: no password, first host only is enough. */
export function describeHost(h: AmqpHost, tls: boolean, vhost: string): string {
  const v = vhost === '/' ? '' : encodeURIComponent(vhost);
  const host = h.hostname.includes(':') ? `[${h.hostname}]` : h.hostname;
  return `${tls ? 'amqps' : 'amqp'}://${encodeURIComponent(h.username)}@${host}:${h.port}/${v}`;
}
