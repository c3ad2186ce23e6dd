// Neutron-style INI files, read with oslo.config's rules (oslo_config/iniparser.py):
// - `[section]` headers; section names other than DEFAULT are case-insensitive (lowered);
// - `key = value` or `key: value` (whichever separator comes first); key and value trimmed;
//   a value wrapped in matching single or double quotes loses them;
// - whole-line comments start with `#` or `;` (no inline comments: `a = b # c` is "b # c");
// - an indented line continues the previous value (joined with "\n"); a blank line ends it;
// - a key given twice keeps the last value; later files override earlier ones option by option.
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.js';

export interface IniValue {
  value: string;
  file: string;
  line: number;
  /** The section and key as written (section already normalised). */
  section: string;
  option: string;
}

export interface ParsedIni {
  file: string;
  /** Every section header seen, in order, with the line of its first appearance. */
  sections: Map<string, number>;
  values: IniValue[];
}

export function normalizeSection(name: string): string {
  return name === 'DEFAULT' ? name : name.toLowerCase();
}

/** Parses one file's text; `file` is only used to name it in errors. */
export function parseIni(text: string, file: string): ParsedIni {
  const out: ParsedIni = { file, sections: new Map(), values: [] };
  let section: string | undefined;
  let pending: { key: string; lines: string[]; line: number } | undefined;
  const fail = (line: number, reason: string, raw: string): never => {
    throw new ConfigError({ file, line }, `${reason}: ${JSON.stringify(raw)}`);
  };
  const flush = () => {
    if (!pending) return;
    out.values.push({
      value: pending.lines.join('\n'),
      file,
      line: pending.line,
      section: section!,
      option: pending.key,
    });
    pending = undefined;
  };

  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i].replace(/\s+$/, '');
    if (line === '') {
      flush();
      continue;
    }
    if (line[0] === ' ' || line[0] === '\t') {
      if (!pending) fail(lineNo, 'unexpected continuation line', line);
      pending!.lines.push(line.replace(/^\s+/, ''));
      continue;
    }
    flush();
    if (line[0] === '[') {
      if (!line.endsWith(']')) fail(lineNo, 'invalid section (must end with ])', line);
      if (line.length <= 2) fail(lineNo, 'empty section name', line);
      section = normalizeSection(line.slice(1, -1));
      if (!out.sections.has(section)) out.sections.set(section, lineNo);
    } else if (line[0] === '#' || line[0] === ';') {
      continue;
    } else {
      const colon = line.indexOf(':');
      const equal = line.indexOf('=');
      if (colon < 0 && equal < 0) fail(lineNo, "no ':' or '=' found in assignment", line);
      const at = colon < 0 || (equal >= 0 && equal < colon) ? equal : colon;
      const key = line.slice(0, at).trim();
      let value = line.slice(at + 1).trim();
      if (value.length >= 2 && value[0] === value[value.length - 1] && (value[0] === '"' || value[0] === "'")) {
        value = value.slice(1, -1);
      }
      if (!key) fail(lineNo, 'key cannot be empty', line);
      if (section === undefined) fail(lineNo, 'section must be started before assignment', line);
      pending = { key, lines: [value], line: lineNo };
    }
  }
  flush();
  return out;
}

/** The merged view of several files: for each option the value from the last file setting it. */
export class IniConfig {
  readonly files: string[];
  private readonly data = new Map<string, Map<string, IniValue>>();
  /** Where each section was first declared (file and line), for warnings about sections. */
  private readonly sectionSources = new Map<string, Array<{ file: string; line: number }>>();

  constructor(parsed: ParsedIni[]) {
    this.files = parsed.map((p) => p.file);
    for (const p of parsed) {
      for (const [name, line] of p.sections) {
        if (!this.data.has(name)) this.data.set(name, new Map());
        const list = this.sectionSources.get(name) ?? [];
        list.push({ file: p.file, line });
        this.sectionSources.set(name, list);
      }
      for (const v of p.values) this.data.get(v.section)!.set(v.option, v);
    }
  }

  get(section: string, option: string): IniValue | undefined {
    return this.data.get(normalizeSection(section))?.get(option);
  }

  has(section: string, option: string): boolean {
    return this.get(section, option) !== undefined;
  }

  /** Sets (or overrides) a value, as if read from `where.file`; used for deprecated aliases. */
  set(v: IniValue): void {
    const s = normalizeSection(v.section);
    if (!this.data.has(s)) this.data.set(s, new Map());
    this.data.get(s)!.set(v.option, v);
  }

  sectionNames(): string[] {
    return [...this.data.keys()];
  }

  sectionDeclarations(section: string): Array<{ file: string; line: number }> {
    return this.sectionSources.get(normalizeSection(section)) ?? [];
  }

  options(section: string): IniValue[] {
    return [...(this.data.get(normalizeSection(section))?.values() ?? [])];
  }

  /** Plain `{section: {option: value}}` of everything read, for later consumers. */
  toRaw(): Record<string, Record<string, string>> {
    const raw: Record<string, Record<string, string>> = {};
    for (const [s, opts] of this.data) {
      raw[s] = {};
      for (const [k, v] of opts) raw[s][k] = v.value;
    }
    return raw;
  }
}

/**
 * Reads the files in order (later override earlier, option by option). A missing or
 * unreadable file stops startup, as `--config-file` does in oslo.config.
 */
export function readIni(files: string[]): IniConfig {
  const parsed = files.map((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? String(e);
      throw new ConfigError({ file }, `cannot read config file (${code})`);
    }
    return parseIni(text, file);
  });
  return new IniConfig(parsed);
}
