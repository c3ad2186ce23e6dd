// Command line of bench/api.ts.
import { parseArgs } from 'node:util';

export interface BenchArgs {
  url: string;
  token?: string;
  projectId?: string;
  runs: number;
  /** The server's process id: phases also report its CPU time (user + system). */
  serverPid?: number;
  networks: number;
  /** Total ports; half are created at concurrency 1, half at `concurrency`. */
  ports: number;
  lists: number;
  concurrency: number;
  cidr: string;
}

export const USAGE = `usage: npm run bench:api -- --url http://127.0.0.1:9696 [--token T] [--project-id P] [--runs 1]
  [--networks 100] [--ports 1000] [--lists 50] [--concurrency 16] [--cidr 10.96.0.0/16]
  [--server-pid PID]   also report the server's CPU time per operation (Linux /proc), robust on a busy machine`;

export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      'project-id': { type: 'string' },
      runs: { type: 'string', default: '1' },
      networks: { type: 'string', default: '100' },
      ports: { type: 'string', default: '1000' },
      lists: { type: 'string', default: '50' },
      concurrency: { type: 'string', default: '16' },
      cidr: { type: 'string', default: '10.96.0.0/16' },
      'server-pid': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) throw new UsageError('');
  if (!values.url) throw new UsageError('--url is required');
  if (!/^https?:\/\//.test(values.url)) throw new UsageError(`--url ${values.url}: expected http://host:port`);
  const count = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} ${v}: expected an integer >= ${min}`);
    return n;
  };
  return {
    url: values.url,
    token: values.token,
    projectId: values['project-id'],
    runs: count('runs', values.runs!, 1),
    networks: count('networks', values.networks!, 1),
    ports: count('ports', values.ports!, 2),
    lists: count('lists', values.lists!, 1),
    concurrency: count('concurrency', values.concurrency!, 1),
    cidr: values.cidr!,
    serverPid: values['server-pid'] === undefined ? undefined : count('server-pid', values['server-pid'], 1),
  };
}

export class UsageError extends Error {}
