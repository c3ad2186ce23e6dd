// Stable allocations that outlive the agent process, as Neutron's ItemAllocator keeps them:
// the rfp/fpr link-local /31 per router (`$state_path/fip-linklocal-networks`) and the
// `ip rule` priority per floating IP (`$state_path/fip-priorities`). A key keeps its value
// until released, so a restarted agent rebuilds the same addresses and rule priorities.
// Files hold `key,value` lines; without a file the memory is the process's own.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ipv4ToInt } from '../../host/ip.js';

export class ItemAllocator<V extends string | number> {
  private readonly byKey = new Map<string, V>();
  private readonly used = new Set<string>();
  private dirty = false;

  /**
   * @param pool the values in the order they are handed out (lowest first).
   * @param parse turns a stored value back into V; throws on garbage.
   */
  constructor(
    private readonly pool: () => Iterable<V>,
    private readonly parse: (text: string) => V,
    private readonly file?: string,
  ) {}

  /** Reads `key,value` lines; entries whose key or value is already taken are skipped. */
  load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const [i, line] of text.split('\n').entries()) {
      if (!line.trim()) continue;
      const comma = line.lastIndexOf(',');
      if (comma < 1) throw new Error(`${file}:${i + 1}: "${line}" is not "key,value"`);
      const key = line.slice(0, comma);
      let value: V;
      try {
        value = this.parse(line.slice(comma + 1));
      } catch (err) {
        throw new Error(`${file}:${i + 1}: "${line}": ${(err as Error).message}`);
      }
      this.remember(key, value);
    }
  }

  get(key: string): V | undefined {
    return this.byKey.get(key);
  }

  /** Records a value found elsewhere (e.g. read back from the host); ignored if the key or value is taken. */
  remember(key: string, value: V): boolean {
    if (this.byKey.has(key) || this.used.has(String(value))) return false;
    this.byKey.set(key, value);
    this.used.add(String(value));
    this.dirty = true;
    return true;
  }

  allocate(key: string): V {
    const have = this.byKey.get(key);
    if (have !== undefined) return have;
    for (const v of this.pool()) {
      if (this.used.has(String(v))) continue;
      this.remember(key, v);
      return v;
    }
    throw new Error(`No free value left for "${key}" (${this.used.size} in use)`);
  }

  release(key: string): void {
    const v = this.byKey.get(key);
    if (v === undefined) return;
    this.byKey.delete(key);
    this.used.delete(String(v));
    this.dirty = true;
  }

  keys(): string[] {
    return [...this.byKey.keys()];
  }

  /** Writes the file if anything changed (write-and-rename, so a crash leaves the old or the new). */
  flush(): void {
    if (!this.file || !this.dirty) return;
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, [...this.byKey].map(([k, v]) => `${k},${v}\n`).join(''));
    renameSync(tmp, this.file);
    this.dirty = false;
  }
}

const intToIpv4 = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

/** The /31s of a CIDR (Neutron's DVR_FIP_LL_CIDR 169.254.64.0/18 has 8192), as `a.b.c.d/31`. */
export function linkLocalPairs(cidr: string): () => Iterable<string> {
  const [ip, len] = cidr.split('/');
  const base = ipv4ToInt(ip);
  const size = 2 ** (32 - Number(len));
  return function* () {
    for (let i = 0; i < size; i += 2) yield `${intToIpv4(base + i)}/31`;
  };
}

export function parsePair(text: string): string {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/31$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not an IPv4 /31`);
  ipv4ToInt(m[1]);
  return `${m[1]}/31`;
}

/** The two ends of a /31: rfp (router side) gets the even address, fpr (fip side) the odd one. */
export function pairEnds(pair: string): { rfp: string; fpr: string } {
  const base = ipv4ToInt(pair.split('/')[0]);
  return { rfp: intToIpv4(base), fpr: intToIpv4(base + 1) };
}

export function priorityRange(start: number, end: number): () => Iterable<number> {
  return function* () {
    for (let p = start; p < end; p++) yield p;
  };
}

export function parsePriority(text: string): number {
  const n = Number(text.trim());
  if (!Number.isInteger(n) || n < 0) throw new Error(`"${text}" is not a rule priority`);
  return n;
}
