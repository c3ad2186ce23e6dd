// The metadata proxy the linux driver starts inside a router or DHCP namespace (Neutron runs
// haproxy for this): HTTP on --listen, forwarded to --upstream (a UNIX socket path or an
// http:// URL) with X-Forwarded-For and X-Neutron-Router-ID / X-Neutron-Network-ID added.
// It writes --pid-file once it listens, so the driver knows it is serving.
import { createServer, request } from 'node:http';
import { unlinkSync, writeFileSync } from 'node:fs';

const opt = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const listen = opt('listen') ?? '';
const upstream = opt('upstream') ?? '';
const pidFile = opt('pid-file') ?? '';
const routerId = opt('router-id');
const networkId = opt('network-id');
const at = listen.lastIndexOf(':');
const host = listen.slice(0, at);
const port = Number(listen.slice(at + 1));

const server = createServer((req, res) => {
  const headers = { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress ?? '' } as unknown as Record<string, string>;
  if (routerId) headers['x-neutron-router-id'] = routerId;
  if (networkId) headers['x-neutron-network-id'] = networkId;
  const target = upstream.startsWith('http://') ? new URL(upstream) : undefined;
  const up = request(
    target
      ? { hostname: target.hostname, port: target.port || 80, path: req.url, method: req.method, headers: { ...headers, host: target.host } }
      : { socketPath: upstream, path: req.url, method: req.method, headers },
    (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    },
  );
  up.on('error', () => {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('metadata upstream unavailable\n');
  });
  req.pipe(up);
});
server.listen(port, host, () => writeFileSync(pidFile, `${process.pid}\n`));
const stop = () => {
  try {
    unlinkSync(pidFile);
  } catch {
    /* already gone */
  }
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
