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
  run(args: Parsed, io: CommandIo): Promise<void>;
  /** Needs no cloud (e.g. `credentials`): no session is opened. */
  local?: boolean;
}
