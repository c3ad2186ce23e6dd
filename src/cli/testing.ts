// Test support for the command lines: a user's openrc variables, and `dvrnet` run in this
// process with them.
import { runClient } from './core/run.js';

export type OpenrcUser = 'admin' | 'demo';

/** The OS_* variables an openrc file sets for `user` (project of the same name, Default domains, Identity v3). */
export function openrcEnv(authUrl: string, user: OpenrcUser, password: string): NodeJS.ProcessEnv {
  return {
    OS_AUTH_URL: authUrl,
    OS_IDENTITY_API_VERSION: '3',
    OS_USERNAME: user,
    OS_PASSWORD: password,
    OS_PROJECT_NAME: user,
    OS_USER_DOMAIN_NAME: 'Default',
    OS_PROJECT_DOMAIN_NAME: 'Default',
  };
}

/** `dvrnet ARGV` in this process with `env`: its exit code and what it printed. */
export async function runDvrnet(env: NodeJS.ProcessEnv, argv: string[]): Promise<{ code: number | undefined; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runClient(argv, { env, out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
