// neutron-style command lines: global `--os-*` options anywhere, output options (-f, -c),
// the command's own options, positionals, and anything else as neutronclient's "value
// specs": `--key value`, `--key` alone (true), `--key type=dict a=1,b=2`, `--key list=true a b`.

export type OptionKind =
  | 'string' // --name NAME
  | 'int' // --port-range-min 22
  | 'flag' // --disable-dhcp (sets `value`)
  | 'bool' // --distributed {True,False} (neutronclient's add_boolean_argument)
  | 'multi' // --dns-nameserver A --dns-nameserver B
  | 'kvmulti'; // --allocation-pool start=A,end=B (repeatable, each a dict)

export interface OptionSpec {
  flags: string[];
  /** The request attribute it sets; absent when the command's build() reads it itself. */
  attr?: string;
  kind: OptionKind;
  /** For flags: the attribute's value when given. */
  value?: unknown;
  metavar?: string;
  help: string;
}

export interface Parsed {
  positionals: string[];
  /** Keyed by the option's first flag. */
  options: Map<string, unknown>;
  /** Unrecognised `--key ...` pairs, converted as neutronclient does. */
  extras: Record<string, unknown>;
  global: Record<string, string>;
  format: { format?: string; columns: string[]; help: boolean };
}

export class UsageError extends Error {}

/** Global options (and their OS_* environment variables). */
export const GLOBAL_OPTIONS: Record<string, string> = {
  '--os-auth-url': 'OS_AUTH_URL',
  '--os-username': 'OS_USERNAME',
  '--os-user-id': 'OS_USER_ID',
  '--os-password': 'OS_PASSWORD',
  '--os-project-name': 'OS_PROJECT_NAME',
  '--os-project-id': 'OS_PROJECT_ID',
  '--os-tenant-name': 'OS_TENANT_NAME',
  '--os-tenant-id': 'OS_TENANT_ID',
  '--os-user-domain-name': 'OS_USER_DOMAIN_NAME',
  '--os-user-domain-id': 'OS_USER_DOMAIN_ID',
  '--os-project-domain-name': 'OS_PROJECT_DOMAIN_NAME',
  '--os-project-domain-id': 'OS_PROJECT_DOMAIN_ID',
  '--os-region-name': 'OS_REGION_NAME',
  '--os-interface': 'OS_INTERFACE',
  '--os-endpoint-type': 'OS_ENDPOINT_TYPE',
  '--os-token': 'OS_TOKEN',
  '--os-url': 'OS_URL',
  '--os-identity-api-version': 'OS_IDENTITY_API_VERSION',
};

const OUTPUT_FLAGS = new Set(['-f', '--format', '-c', '--column', '-h', '--help']);

/** Split `--opt=value`, keep everything else. */
function explode(argv: string[]): string[] {
  const out: string[] = [];
  for (const a of argv) {
    const m = /^(--[^=\s]+)=(.*)$/s.exec(a);
    if (m) out.push(m[1], m[2]);
    else out.push(a);
  }
  return out;
}

const isOption = (a: string | undefined) => a !== undefined && /^--?[A-Za-z]/.test(a);

/** `start=1.2.3.4,end=1.2.3.9` -> {start, end}; a value may not contain `,` or `=`. */
export function parseKeyValues(text: string, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) throw new UsageError(`${flag}: expected key=value[,key=value...], got '${text}'`);
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/** A value spec's scalar, converted as Neutron's API would accept it. */
function scalar(v: string): unknown {
  if (/^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  if (/^(none|null)$/i.test(v)) return null;
  if (/^-?\d+$/.test(v) && v.length < 16) return Number(v);
  return v;
}

export function parseArgs(argv: string[], options: OptionSpec[], opts: { remainderAfter?: number } = {}): Parsed {
  const args = explode(argv);
  const byFlag = new Map<string, OptionSpec>();
  for (const o of options) for (const f of o.flags) byFlag.set(f, o);
  const p: Parsed = { positionals: [], options: new Map(), extras: {}, global: {}, format: { columns: [], help: false } };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = () => {
      if (i + 1 >= args.length) throw new UsageError(`argument ${a}: expected one argument`);
      return args[++i];
    };
    if (opts.remainderAfter !== undefined && p.positionals.length >= opts.remainderAfter) {
      p.positionals.push(...args.slice(i));
      break;
    }
    if (a === '--') {
      p.positionals.push(...args.slice(i + 1));
      break;
    }
    if (a in GLOBAL_OPTIONS) {
      p.global[a] = next();
      continue;
    }
    if (OUTPUT_FLAGS.has(a)) {
      if (a === '-h' || a === '--help') p.format.help = true;
      else if (a === '-f' || a === '--format') p.format.format = next();
      else p.format.columns.push(next());
      continue;
    }
    const spec = byFlag.get(a);
    if (spec) {
      const key = spec.flags[0];
      switch (spec.kind) {
        case 'flag':
          p.options.set(key, spec.value ?? true);
          break;
        case 'string':
          p.options.set(key, next());
          break;
        case 'bool': {
          const v = next();
          if (!/^(true|false)$/i.test(v)) throw new UsageError(`argument ${a}: invalid choice: '${v}' (choose from 'True', 'False')`);
          p.options.set(key, v.toLowerCase() === 'true');
          break;
        }
        case 'int': {
          const v = next();
          if (!/^-?\d+$/.test(v)) throw new UsageError(`argument ${a}: invalid int value: '${v}'`);
          p.options.set(key, Number(v));
          break;
        }
        case 'multi':
          p.options.set(key, [...((p.options.get(key) as string[]) ?? []), next()]);
          break;
        case 'kvmulti':
          p.options.set(key, [...((p.options.get(key) as object[]) ?? []), parseKeyValues(next(), a)]);
          break;
      }
      continue;
    }
    if (a.startsWith('--') && a.length > 2) {
      i = valueSpec(args, i, p.extras);
      continue;
    }
    if (isOption(a) && !/^-\d/.test(a)) throw new UsageError(`unrecognized arguments: ${a}`);
    p.positionals.push(a);
  }
  return p;
}

/** One neutronclient value spec starting at args[i]; returns the index of its last word. */
function valueSpec(args: string[], i: number, extras: Record<string, unknown>): number {
  const key = args[i].slice(2);
  const values: string[] = [];
  let type: string | undefined;
  let list = false;
  let j = i + 1;
  for (; j < args.length && !isOption(args[j]); j++) {
    const w = args[j];
    if (values.length === 0 && /^type=/.test(w)) type = w.slice(5);
    else if (values.length === 0 && /^list=true$/i.test(w)) list = true;
    else {
      values.push(w);
      if (!list) {
        j++;
        break;
      }
    }
  }
  const convert = (v: string): unknown => {
    if (type === 'dict') return parseKeyValues(v, `--${key}`);
    if (type === 'bool') return /^true$/i.test(v);
    if (type === 'int') return Number(v);
    return type === 'str' ? v : scalar(v);
  };
  if (values.length === 0) extras[key] = true;
  else extras[key] = list ? values.map(convert) : convert(values[0]);
  return j - 1;
}
