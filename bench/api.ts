// API benchmark against any Neutron-compatible endpoint (dvrnet or a real Neutron):
//   npm run bench:api -- --url http://127.0.0.1:9696 [--token T] [--project-id P] [--runs 1]
// Phases as in ../shared/bench/reference-neutron.md: 100 network creates and deletes, a /16
// subnet, 1000 ports (500 at concurrency 1, 500 at 16), listing them (all, and filtered with
// fields), deleting them. Every reply is checked; duplicate IPs/MACs and leftovers are errors.
// Prints a table per run, then, as the LAST line, one JSON object (medians over the runs).
import { randomBytes } from 'node:crypto';
import { parseBenchArgs, USAGE, UsageError, type BenchArgs } from './lib/args.js';
import { NeutronClient } from './lib/neutron.js';
import { runOnce } from './lib/phases.js';
import { medianMetrics, metricsOf, table, type Metrics } from './lib/report.js';

async function main(): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError) && !(e instanceof TypeError)) throw e;
    if (e.message) console.error(`bench:api: ${e.message}`);
    console.error(USAGE);
    return 2;
  }
  const client = new NeutronClient({ url: args.url, token: args.token, projectId: args.projectId });

  const probe = await client.get('/networks?limit=1&fields=id');
  if (probe.status !== 200) {
    console.error(`bench:api: ${client.base}/networks answered ${probe.status || 'nothing'} ${probe.error ?? probe.text ?? ''}`);
    console.log(JSON.stringify({ url: args.url, errors: 1, error: `endpoint not usable (status ${probe.status})` }));
    return 1;
  }

  const runs: Metrics[] = [];
  const allErrors: string[] = [];
  for (let r = 1; r <= args.runs; r++) {
    const tag = `bench-${randomBytes(3).toString('hex')}`;
    console.log(`\nrun ${r}/${args.runs} against ${client.base} (names ${tag}-*)\n`);
    const res = await runOnce(client, args, tag);
    console.log(table(res.phases));
    const m = metricsOf(res.phases, args.concurrency);
    m.errors = res.errors.length;
    runs.push(m);
    allErrors.push(...res.errors.map((e) => `run ${r}: ${e}`));
    if (res.errors.length) {
      console.log(`\n${res.errors.length} error(s):`);
      for (const e of res.errors.slice(0, 20)) console.log(`  ${e}`);
      if (res.errors.length > 20) console.log(`  ... ${res.errors.length - 20} more`);
    }
  }

  const summary: Record<string, unknown> = {
    url: args.url,
    runs: args.runs,
    networks: args.networks,
    ports: args.ports,
    concurrency: args.concurrency,
    ...(args.runs > 1 ? medianMetrics(runs) : runs[0]),
    errors: allErrors.length,
  };
  if (args.runs > 1) {
    summary.first_run = runs[0];
    summary.per_run = runs;
  }
  console.log(`\n${allErrors.length === 0 ? 'no errors' : `${allErrors.length} error(s) in total`}`);
  console.log(JSON.stringify(summary));
  return allErrors.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench:api: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
