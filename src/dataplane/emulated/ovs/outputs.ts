// A host's flood flow lists an output per tunnel of its network: thousands of actions on a big
// cloud, written again whenever a peer comes or goes, and too long to share between bridges
// (actions.ts). Parsing each new version whole was most of what a big cloud's switches spent
// on flow text while it came up (every host re-parsed every network's list at each pass that
// changed it). A new version that differs from the last only in outputs keeps the last one's
// parsed actions around the change and parses only the outputs in between.

import type { Action } from './actions.js';

/**
 * The actions of `after` made from those of `before` (`parsed`, one per comma-separated item),
 * parsing only the items between the common head and tail with `parse`; undefined when that
 * would not give what a full parse gives (then parse in full): parentheses (an item may hold
 * commas), an item that made no action of its own (`drop`), an instruction whose place counts
 * (`goto_table`, `write_metadata`), or anything but outputs among the items that changed.
 */
export function reuseOutputs(before: string, parsed: readonly Action[], after: string, parse: (items: string[]) => Action[]): Action[] | undefined {
  if (before.includes('(') || after.includes('(')) return undefined;
  const a = before.split(',');
  const b = after.split(',');
  if (a.length !== parsed.length) return undefined;
  for (const x of parsed) if (x.kind === 'goto_table' || (x.kind === 'set' && x.text.startsWith('write_metadata'))) return undefined;
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  for (let i = head; i < a.length - tail; i++) if (parsed[i].kind !== 'output') return undefined;
  const middle = b.slice(head, b.length - tail);
  // `output:reg0[...]` reads a field: what it may read depends on the actions before it.
  if (!middle.every((item) => item.startsWith('output:') && !item.includes('['))) return undefined;
  const fresh = middle.length ? parse(middle) : [];
  if (fresh.length !== middle.length || fresh.some((x) => x.kind !== 'output')) return undefined;
  return [...parsed.slice(0, head), ...fresh, ...parsed.slice(a.length - tail)];
}
