// What token validation costs: the API benchmark (bench/api.ts) against dvrnet with
// auth_strategy = noauth and with keystone (identity in the same process, admin token),
// alternating the two `--rounds` times on fresh SQLite databases, comparing port-create p50
// (bench:api's headline: the concurrent phase; the sequential one is reported too). Prints
// a line per run, then, as the LAST line, one JSON object.
//   npm run bench:auth -- [--rounds 2] [--ports 1000] [--networks 100] [--lists 50]
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { keystoneAuth, noauth, type Authenticator } from '../src/api/auth.js';
import { SCENARIO_ML2, login } from '../src/api/testing.js';
import { inProcessValidator, startServers } from '../src/cli/serve.js';
import { loadServerConfig } from '../src/config/load.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
type Mode = 'noauth' | 'keystone';

/** The server one way, bench/api.ts against it in a child process, its JSON summary. */
/** Microseconds per authenticate() call: the per-request cost itself, free of HTTP and DB noise. */
async function perCallUs(auth: Authenticator, headers: Record<string, string>): Promise<number> {
  for (let i = 0; i < 2000; i++) await auth.authenticate(headers);
  const n = 50_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await auth.authenticate(headers);
  return Number(process.hrtime.bigint() - t0) / n / 1000;
}

async function once(mode: Mode, pass: string[], costs?: Record<string, number>): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-bench-auth-'));
  writeFileSync(
    join(dir, 'neutron.conf'),
    `[DEFAULT]\nallow_overlapping_ips = True\nauth_strategy = ${mode}\n[database]\nconnection = sqlite:///${join(dir, 'neutron.sqlite')}\n` +
      `[identity]\nbind_port = 0\nadmin_password = bench-admin\ndemo_password = bench-demo\n`,
  );
  writeFileSync(join(dir, 'ml2_conf.ini'), SCENARIO_ML2);
  const conf = loadServerConfig([join(dir, 'neutron.conf'), join(dir, 'ml2_conf.ini')], { warn: () => {}, cwd: dir });
  const servers = await startServers(conf, { host: '127.0.0.1', apiPort: 0, identityPort: 0 });
  try {
    const token = mode === 'keystone' ? ['--token', (await login(servers.identity!.authUrl, 'admin', 'bench-admin')).token] : [];
    if (costs && mode === 'keystone') {
      const ks = keystoneAuth(inProcessValidator(servers.identity!.service), { identityUri: servers.identity!.url });
      costs.keystone_authenticate_us = await perCallUs(ks, { 'x-auth-token': token[1] });
      costs.noauth_authenticate_us = await perCallUs(noauth, {});
    }
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(here, 'api.ts'), '--url', servers.api.url, ...token, ...pass], {
      maxBuffer: 64 * 1024 * 1024,
    });
    const summary = JSON.parse(stdout.trim().split('\n').pop()!);
    if (summary.errors) throw new Error(`bench:api reported ${summary.errors} error(s) with ${mode}`);
    return summary;
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '2' },
      ports: { type: 'string', default: '1000' },
      networks: { type: 'string', default: '100' },
      lists: { type: 'string', default: '50' },
    },
    strict: true,
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds ${values.rounds}: expected an integer >= 1`);
  const pass = ['--ports', values.ports!, '--networks', values.networks!, '--lists', values.lists!];
  const results: Record<Mode, Array<Record<string, number>>> = { noauth: [], keystone: [] };
  const costs: Record<string, number> = {};
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first, so warm-up and machine noise fall on both.
    for (const mode of (r % 2 ? ['keystone', 'noauth'] : ['noauth', 'keystone']) as Mode[]) {
      const m = await once(mode, pass, r === 0 ? costs : undefined);
      results[mode].push(m);
      console.log(
        `round ${r + 1} ${mode.padEnd(8)} port create p50 ${m.port_create_p50_ms} ms (concurrent), ${m.port_create_p50_ms_c1} ms (sequential); ` +
          `network create p50 ${m.net_create_p50_ms} ms; port list p50 ${m.port_list_p50_ms} ms`,
      );
    }
  }
  const stat = (mode: Mode, key: string) => round(median(results[mode].map((m) => m[key]).filter((x) => typeof x === 'number')));
  const keys = ['port_create_p50_ms', 'port_create_p95_ms', 'port_create_p50_ms_c1', 'net_create_p50_ms', 'port_list_p50_ms'];
  const summary: Record<string, unknown> = { rounds, ports: Number(values.ports) };
  for (const k of keys) {
    summary[`noauth_${k}`] = stat('noauth', k);
    summary[`keystone_${k}`] = stat('keystone', k);
  }
  const overhead = (stat('keystone', 'port_create_p50_ms') / stat('noauth', 'port_create_p50_ms') - 1) * 100;
  summary.port_create_p50_overhead_pct = round(overhead, 1);
  summary.port_create_p50_c1_overhead_pct = round((stat('keystone', 'port_create_p50_ms_c1') / stat('noauth', 'port_create_p50_ms_c1') - 1) * 100, 1);
  summary.within_10pct = overhead <= 10;
  // The validation itself, per request, as a share of a sequential port create.
  summary.keystone_authenticate_us = round(costs.keystone_authenticate_us, 2);
  summary.noauth_authenticate_us = round(costs.noauth_authenticate_us, 2);
  summary.validation_pct_of_port_create_c1 = round(((costs.keystone_authenticate_us - costs.noauth_authenticate_us) / 1000 / stat('noauth', 'port_create_p50_ms_c1')) * 100, 3);
  console.log(JSON.stringify(summary));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench:auth: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
