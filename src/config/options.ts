// Typed access to a merged IniConfig for one program (server or an agent): reports unknown
// sections/options as warnings, maps deprecated names, checks every known option's value type
// up front (oslo.config would fail on first use; we fail at startup), and substitutes
// `$option` / `${section.option}` references the way oslo.config does.
import { ConfigError, type ConfigErrorWhere } from './errors.js';
import type { IniConfig, IniValue } from './ini.js';
import type { KnownSet } from './known.js';
import { checkInt, checkSpec, parseBool, parseInteger, parseList } from './values.js';

export type Warn = (msg: string) => void;

export const defaultWarn: Warn = (msg) => console.error(`WARNING config: ${msg}`);

export class Options {
  constructor(
    readonly ini: IniConfig,
    private readonly known: KnownSet,
    private readonly warn: Warn = defaultWarn,
    /** Values used for `$name` substitution when the files do not set them ('DEFAULT.state_path'). */
    private readonly substitutionDefaults: Record<string, string> = {},
  ) {
    this.applyAliases();
    this.reportUnknown();
    this.checkTypes();
  }

  /** The value as written (after substitution), or undefined when no file sets it. */
  raw(section: string, option: string): string | undefined {
    const v = this.ini.get(section, option);
    return v === undefined ? undefined : this.substitute(v.value, section, 0);
  }

  isSet(section: string, option: string): boolean {
    return this.ini.has(section, option);
  }

  /** Defaults take part in substitution too ('$state_path/dhcp'). */
  str(section: string, option: string, def: string): string {
    return this.raw(section, option) ?? this.substitute(def, section, 0);
  }

  strOpt(section: string, option: string): string | undefined {
    const v = this.raw(section, option);
    return v === undefined || v === '' ? undefined : v;
  }

  bool(section: string, option: string, def: boolean): boolean {
    const v = this.raw(section, option);
    if (v === undefined) return def;
    const b = parseBool(v);
    if (b === undefined) this.fail(section, option, 'not a boolean (use true/false, yes/no, on/off, 1/0)');
    return b!;
  }

  int(section: string, option: string, def: number, bounds: { min?: number; max?: number } = {}): number {
    const v = this.raw(section, option);
    if (v === undefined) return def;
    const reason = checkInt(v, bounds.min, bounds.max);
    if (reason) this.fail(section, option, reason);
    return parseInteger(v)!;
  }

  intOpt(section: string, option: string, bounds: { min?: number; max?: number } = {}): number | undefined {
    return this.isSet(section, option) && this.raw(section, option)!.trim() !== ''
      ? this.int(section, option, 0, bounds)
      : undefined;
  }

  list(section: string, option: string, def: string[]): string[] {
    const v = this.raw(section, option);
    return v === undefined ? def : parseList(v);
  }

  /** Where an option's value came from, for error messages. */
  where(section: string, option: string): ConfigErrorWhere {
    const v = this.ini.get(section, option);
    // Not set anywhere (a default, or a required option): name the files that were read.
    if (!v) return { file: this.ini.files.length ? this.ini.files.join(', ') : '(no config file)', section, option };
    return { file: v.file, line: v.line, section: v.section, option: v.option, value: v.value };
  }

  fail(section: string, option: string, reason: string): never {
    throw new ConfigError(this.where(section, option), reason);
  }

  private applyAliases(): void {
    for (const [from, to] of this.known.aliases) {
      const dot = from.indexOf('.');
      const old = this.ini.get(from.slice(0, dot), from.slice(dot + 1));
      if (!old) continue;
      this.warn(
        `${old.file}:${old.line}: [${old.section}] ${old.option} is deprecated, use [${to.section}] ${to.option}`,
      );
      // The current name wins when both are given (as in oslo.config).
      if (!this.ini.has(to.section, to.option)) {
        this.ini.set({ ...old, section: to.section, option: to.option });
      }
    }
  }

  private isAlias(section: string, option: string): boolean {
    return this.known.aliases.has(`${section}.${option}`);
  }

  private reportUnknown(): void {
    for (const section of this.ini.sectionNames()) {
      const known = this.known.sections.get(section);
      if (known === '*') continue;
      if (known === undefined) {
        // e.g. [sql] connection: a deprecated spelling, already reported as such.
        const opts = this.ini.options(section);
        if (opts.length > 0 && opts.every((v) => this.isAlias(section, v.option))) continue;
        for (const d of this.ini.sectionDeclarations(section)) {
          this.warn(`${d.file}:${d.line}: [${section}]: unknown section, ignored`);
        }
        continue;
      }
      for (const v of this.ini.options(section)) {
        if (!known.has(v.option) && !this.isAlias(section, v.option)) {
          this.warn(`${v.file}:${v.line}: [${section}] ${v.option}: unknown option, ignored`);
        }
      }
    }
  }

  private checkTypes(): void {
    for (const [section, opts] of this.known.sections) {
      if (opts === '*') continue;
      for (const v of this.ini.options(section)) {
        const spec = opts.get(v.option);
        if (spec === undefined) continue;
        const value = this.substitute(v.value, section, 0);
        const reason = checkSpec(spec, value);
        if (reason) throw new ConfigError(describe(v), reason);
      }
    }
  }

  /**
   * oslo.config's template substitution: `$name` or `${name}` is the option `name` of the same
   * section, else of DEFAULT; `${section.name}` names the section; `$$` (or `\$`) is a literal
   * dollar; unknown names stay as written (safe_substitute).
   */
  private substitute(value: string, section: string, depth: number): string {
    if (!value.includes('$')) return value;
    if (depth > 10) throw new ConfigError({ section, value }, 'option substitution nests too deep (a loop?)');
    return value
      .replace(/\\\$/g, '$$$$')
      .replace(/\$(?:\$|\{([_a-z][._a-z0-9]*)\}|([_a-z][_a-z0-9]*))/gi, (m, braced?: string, bare?: string) => {
        if (m === '$$') return '$';
        const name = (braced ?? bare)!;
        const dot = name.indexOf('.');
        const candidates: Array<[string, string]> =
          dot >= 0 ? [[name.slice(0, dot), name.slice(dot + 1)]] : [[section, name], ['DEFAULT', name]];
        for (const [s, o] of candidates) {
          const v = this.ini.get(s, o);
          if (v) return this.substitute(v.value, s, depth + 1);
          const d = this.substitutionDefaults[`${s}.${o}`];
          if (d !== undefined) return d;
        }
        return m;
      });
  }
}

function describe(v: IniValue): ConfigErrorWhere {
  return { file: v.file, line: v.line, section: v.section, option: v.option, value: v.value };
}
