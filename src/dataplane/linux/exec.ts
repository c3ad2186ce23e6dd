// Running the host's tools: always an argument vector (never a shell string), optionally
// inside a network namespace, with stdin text, collected output and a timeout. A failure
// carries the command line and its stderr, so the driver can report it with the operation.
import { spawn } from 'node:child_process';

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly code: number | null,
    readonly stderr: string,
    readonly stdout: string,
  ) {
    super(`command failed (${code === null ? 'killed' : `exit ${code}`}): ${quoteArgv(argv)}${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
    this.name = 'CommandError';
  }
}

/** The command as a reader would type it (for messages only; nothing runs it through a shell). */
export function quoteArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  /** Exit codes that are not failures (e.g. `[0, 1]` for a probe). */
  okCodes?: number[];
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new CommandError(argv, null, e.message, ''));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code !== null && (opts.okCodes ?? [0]).includes(code)) resolve({ stdout, stderr, code });
      else reject(new CommandError(argv, code, stderr, stdout));
    });
    child.stdin.on('error', () => {}); // the tool may exit before reading all input
    child.stdin.end(opts.input ?? '');
  });
}

/** `argv` run inside network namespace `netns` (`undefined`: this process's own namespace). */
export function inNetns(netns: string | undefined, argv: readonly string[]): string[] {
  return netns === undefined ? [...argv] : ['ip', 'netns', 'exec', netns, ...argv];
}

/** `ip` with `-n NS` when a namespace is given (cheaper than `ip netns exec`). */
export function ipArgv(netns: string | undefined, args: readonly string[]): string[] {
  return netns === undefined ? ['ip', ...args] : ['ip', '-n', netns, ...args];
}
