// The compute service's instances on disk: a journal of JSON lines, one per change (an
// instance put, or an id deleted). Booting one instance in a cloud of ten thousand appends a
// line instead of rewriting every instance; the journal is rewritten as one line per
// instance when it has grown to twice their number. A line cut short by a crash is the
// last one, and is skipped when the journal is read back.

import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

type Entry<T> = { put: T } | { del: string };

export class Journal<T extends { id: string }> {
  private lines = 0;

  /** `records`: what the journal must hold when compacted (the caller's live records). */
  constructor(
    private readonly file: string,
    private readonly records: ReadonlyMap<string, T>,
  ) {}

  /** Every record the journal holds now (the last put of each id not deleted since). */
  load(): T[] {
    if (!existsSync(this.file)) return [];
    const byId = new Map<string, T>();
    const text = readFileSync(this.file, 'utf8');
    const lines = text.split('\n').filter((l) => l.length > 0);
    lines.forEach((line, i) => {
      let e: Entry<T>;
      try {
        e = JSON.parse(line) as Entry<T>;
      } catch (err) {
        if (i === lines.length - 1 && !text.endsWith('\n')) return; // the write a crash cut short
        throw new Error(`${this.file}: line ${i + 1} is not JSON: ${(err as Error).message}`);
      }
      if ('put' in e) byId.set(e.put.id, e.put);
      else byId.delete(e.del);
    });
    this.lines = lines.length;
    return [...byId.values()];
  }

  put(records: readonly T[]): void {
    this.append(records.map((put) => JSON.stringify({ put })));
  }

  del(id: string): void {
    this.append([JSON.stringify({ del: id })]);
  }

  private append(lines: string[]): void {
    if (!lines.length) return;
    appendFileSync(this.file, lines.join('\n') + '\n');
    this.lines += lines.length;
    if (this.lines > 2 * this.records.size + 64) this.compact();
  }

  /** One line per record, written beside the journal and renamed over it (never half a journal). */
  private compact(): void {
    const tmp = `${this.file}.tmp`;
    let text = '';
    for (const put of this.records.values()) text += JSON.stringify({ put }) + '\n';
    writeFileSync(tmp, text);
    renameSync(tmp, this.file);
    this.lines = this.records.size;
  }
}
