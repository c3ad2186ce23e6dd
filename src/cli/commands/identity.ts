// Identity-side commands the scenario uses: `project-show` (its `openstack project show
// demo`) and `credentials` (the "load the admin/demo credentials" step).

import { UsageError } from '../core/args.js';
import type { CliCommand } from '../core/command.js';
import { formatOne, type Row } from '../core/format.js';
import { CliError, errorMessage } from '../core/session.js';
import { loadServerConfig } from '../../config/load.js';
import { remoteIdentityUrl } from '../serve.js';

const shellQuote = (s: string) => (/^[A-Za-z0-9_./:@%+=,-]*$/.test(s) && s !== '' ? s : `'${s.replace(/'/g, `'\\''`)}'`);

const projectShow: CliCommand = {
  name: 'project-show',
  summary: 'Show a project (openstack project show).',
  usage: 'PROJECT',
  options: [],
  async run(p, io) {
    if (p.positionals.length !== 1) throw new UsageError('the following arguments are required: PROJECT');
    const ref = p.positionals[0];
    const s = io.session;
    let project: Row | undefined;
    const byId = await s.identity('GET', `/projects/${encodeURIComponent(ref)}`);
    if (byId.status === 200) project = byId.body.project;
    else {
      const byName = await s.identity('GET', `/projects?name=${encodeURIComponent(ref)}`);
      if (byName.status === 200) project = byName.body.projects.find((x: Row) => x.name === ref);
      else {
        // A member may not list projects; its own ones it may.
        const mine = await s.identity('GET', '/auth/projects');
        if (mine.status !== 200) throw new CliError(errorMessage(byName));
        project = mine.body.projects.find((x: Row) => x.name === ref || x.id === ref);
      }
    }
    if (!project) throw new CliError(`No project with a name or ID of '${ref}' exists.`);
    const { links: _links, ...shown } = project;
    io.out(formatOne(shown, io.format, io.columns));
  },
};

const CLOUDS: Record<string, { user: string; project: string; password: 'admin_password' | 'demo_password' }> = {
  admin: { user: 'admin', project: 'admin', password: 'admin_password' },
  demo: { user: 'demo', project: 'demo', password: 'demo_password' },
};

const credentials: CliCommand = {
  name: 'credentials',
  summary: 'Print the export OS_...= lines for the admin or demo cloud: eval "$(dvrnet credentials demo --config-file etc/neutron.conf)".',
  usage: '{admin,demo} --config-file FILE [--config-file FILE ...]',
  options: [{ flags: ['--config-file'], kind: 'multi', metavar: 'FILE', help: 'the server configuration (neutron.conf)' }],
  local: true,
  async run(p, io) {
    const cloud = CLOUDS[p.positionals[0] ?? ''];
    if (!cloud || p.positionals.length !== 1) throw new UsageError(`argument CLOUD: invalid choice: '${p.positionals.join(' ')}' (choose from 'admin', 'demo')`);
    const files = (p.options.get('--config-file') as string[] | undefined) ?? [];
    if (files.length === 0) throw new UsageError('the following arguments are required: --config-file');
    let conf;
    try {
      conf = loadServerConfig(files, { warn: () => {} });
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    const password = conf.identity?.[cloud.password];
    if (password === undefined) throw new CliError(`[identity] ${cloud.password} is not set in ${files.join(', ')}: the ${cloud.user} user does not exist`);
    const vars: Array<[string, string]> = [
      ['OS_AUTH_URL', remoteIdentityUrl(conf)],
      ['OS_IDENTITY_API_VERSION', '3'],
      ['OS_USERNAME', cloud.user],
      ['OS_PASSWORD', password],
      ['OS_PROJECT_NAME', cloud.project],
      ['OS_USER_DOMAIN_NAME', 'Default'],
      ['OS_PROJECT_DOMAIN_NAME', 'Default'],
      ['OS_REGION_NAME', 'RegionOne'],
    ];
    io.out(vars.map(([k, v]) => `export ${k}=${shellQuote(v)}`).join('\n'));
  },
};

export const identityCommands: CliCommand[] = [projectShow, credentials];
