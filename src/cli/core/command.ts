// What every `dvrnet` client command is: a name, a usage line, its options, and a run
// function given the parsed arguments and an authenticated session. Resource modules in
// ../commands/ export lists of these; ../commands/index.ts is the one table of them all.

import type { OptionSpec, Parsed } from './args.js';
import type { Format } from './format.js';
import type { Session } from './session.js';

export interface CommandIo {
  session: Session;
  format: Format;
  columns: string[];
  env: NodeJS.ProcessEnv;
  out(text: string): void;
}

export interface CliCommand {
  name: string;
  summary: string;
  /** Positionals and main options, for help: 'NAME [--tenant-id TENANT_ID]'. */
  usage: string;
  options: OptionSpec[];
  /** Resolves to the exit status when it is not 0 without an error message (`exec ... ping` with loss). */
  run(args: Parsed, io: CommandIo): Promise<void | number>;
  /** After this many positionals every word is a positional (argparse REMAINDER): `exec VM ping -c 4 X`. */
  remainderAfter?: number;
  /** Needs no cloud (e.g. `credentials`): no session is opened. */
  local?: boolean;
}
