// What the driver remembers between applies, in `<stateDir>/ledger.json`, because the host
// cannot tell it: which `lo`s and NICs a state configured (only those are read back), which
// namespaces outside Neutron's prefixes it created, the sysctl keys it set, the last flows,
// iptables texts and ipset spellings applied (the dictionary that turns what the tools print
// back into the state's spelling), the reachable neighbours it set, and the services' configs.
// It is a dictionary, never the truth: every read compares it with the host.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DhcpServer, Flow, IptablesTable, MetadataProxy, Neighbour } from '../../host/state.js';

export interface Ledger {
  namespaces: string[];
  /** State namespace name -> loopback/physical links a state configured there. */
  configured: Record<string, string[]>;
  sysctls: Record<string, Record<string, string>>;
  /** Per namespace and table: the state's text and `iptables-save -t` right after it was restored. */
  iptables: Record<string, Partial<Record<IptablesTable, { text: string; saved: string }>>>;
  /** Per namespace and set: member spellings last applied. */
  ipsetMembers: Record<string, Record<string, string[]>>;
  neighbours: Record<string, Neighbour[]>;
  flows: Record<string, readonly Flow[]>;
  dhcp: Record<string, DhcpServer>;
  metadata: Record<string, MetadataProxy>;
}

export function emptyLedger(): Ledger {
  return { namespaces: [], configured: {}, sysctls: {}, iptables: {}, ipsetMembers: {}, neighbours: {}, flows: {}, dhcp: {}, metadata: {} };
}

export function loadLedger(file: string): Ledger {
  if (!existsSync(file)) return emptyLedger();
  try {
    return { ...emptyLedger(), ...(JSON.parse(readFileSync(file, 'utf8')) as Partial<Ledger>) };
  } catch {
    return emptyLedger(); // a torn file only costs one re-apply of what it described
  }
}

export function saveLedger(file: string, l: Ledger): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(l));
  renameSync(`${file}.tmp`, file);
}
