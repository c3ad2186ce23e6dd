// The one error type of configuration loading: startup stops with its message, which always
// names where the bad text is (file, section, option, value) so the operator can fix it.

export interface ConfigErrorWhere {
  file?: string;
  line?: number;
  section?: string;
  option?: string;
  value?: string;
}

export class ConfigError extends Error {
  readonly file?: string;
  readonly line?: number;
  readonly section?: string;
  readonly option?: string;
  readonly value?: string;

  constructor(where: ConfigErrorWhere, reason: string) {
    super(`${describeLocation(where)}: ${reason}`);
    this.name = 'ConfigError';
    Object.assign(this, where);
  }
}

/** "etc/ml2_conf.ini:12: [ml2_type_vxlan] vni_ranges = 10:1" (parts that are known). */
export function describeLocation(w: ConfigErrorWhere): string {
  const file = w.file ?? '(default)';
  const head = w.line !== undefined ? `${file}:${w.line}` : file;
  if (w.section === undefined) return head;
  let s = `${head}: [${w.section}]`;
  if (w.option !== undefined) {
    s += ` ${w.option}`;
    if (w.value !== undefined) s += ` = ${w.value}`;
  }
  return s;
}
