// Splits an iptables-restore line into words the way iptables-restore does: whitespace
// separates, double or single quotes group (`-m comment --comment "a b"`), and a
// backslash escapes a quote inside quotes.

export class TokenizeError extends Error {}

export function tokenize(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\' && (line[i + 1] === quote || line[i + 1] === '\\')) {
        cur += line[++i];
      } else if (c === quote) {
        quote = undefined;
      } else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new TokenizeError(`unterminated ${quote} quote`);
  if (inWord) out.push(cur);
  return out;
}

/** Quotes a word for output when it would not survive tokenize() bare. */
export function quoteWord(w: string): string {
  if (w !== '' && !/[\s"'\\]/.test(w)) return w;
  return `"${w.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
