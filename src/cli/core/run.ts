// Runs one client command: parse, open a session, print; errors print the server's message
// on stderr and give exit status 1 (2 for usage errors, as argparse).

import { parseArgs, UsageError, GLOBAL_OPTIONS } from './args.js';
import type { CliCommand } from './command.js';
import { COMMANDS } from '../commands/index.js';
import { outputFormat } from './format.js';
import { CliError, Session, credentials } from './session.js';

export interface Io {
  env: NodeJS.ProcessEnv;
  out(text: string): void;
  err(text: string): void;
}

export function commandHelp(c: CliCommand): string {
  const lines = [`usage: dvrnet ${c.name} ${c.usage}`.trimEnd(), '', c.summary];
  if (c.options.length) {
    lines.push('', 'options:');
    for (const o of c.options) lines.push(`  ${o.flags.join(', ')}${o.kind === 'flag' ? '' : ` ${o.metavar ?? ''}`}`.padEnd(44) + ` ${o.help}`);
  }
  if (!c.local) lines.push('', 'output: -f {table,json,value}, -c COLUMN (repeatable)', `auth: ${Object.keys(GLOBAL_OPTIONS).join(' ')} (or OS_* variables)`);
  return lines.join('\n');
}

export async function runCommand(c: CliCommand, argv: string[], io: Io): Promise<number> {
  try {
    const p = parseArgs(argv, c.options, { remainderAfter: c.remainderAfter });
    if (p.format.help) {
      io.out(commandHelp(c));
      return 0;
    }
    const format = outputFormat(p.format.format);
    const session = new Session(credentials(p.global, io.env));
    const code = await c.run(p, { session, format, columns: p.format.columns, env: io.env, out: io.out });
    return typeof code === 'number' ? code : 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`usage: dvrnet ${c.name} ${c.usage}`.trimEnd());
      io.err(`dvrnet ${c.name}: error: ${err.message}`);
      return 2;
    }
    if (err instanceof CliError) {
      io.err(err.message);
      return 1;
    }
    throw err;
  }
}

/** The client command named in argv (global --os-* options may come first), and the rest. */
export function findClientCommand(argv: string[], commands: CliCommand[] = COMMANDS): { command: CliCommand; rest: string[] } | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a in GLOBAL_OPTIONS) {
      i++;
      continue;
    }
    if (/^--os-[^=]+=/.test(a)) continue;
    const command = commands.find((c) => c.name === a);
    return command && { command, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return undefined;
}

/** `dvrnet ARGS...` for client commands; undefined when argv names none (server commands). */
export async function runClient(argv: string[], io: Io): Promise<number | undefined> {
  const found = findClientCommand(argv);
  return found && runCommand(found.command, found.rest, io);
}
