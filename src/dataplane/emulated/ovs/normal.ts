// The MAC learning table behind the NORMAL action ("The OVS Normal Pipeline" in
// ovs-actions(7)): (VLAN, source MAC) -> port, with OVS's default 300 s aging.

import { formatMacBig } from './values.js';

export const MAC_AGING_MS = 300_000;

interface MacEntry {
  port: number;
  learnedAt: number;
}

export interface MacTableEntry {
  vlan: number;
  mac: string;
  port: number;
  /** Seconds since last learned. */
  age: number;
}

export class MacLearningTable {
  private readonly byVlan = new Map<number, Map<number, MacEntry>>();

  constructor(readonly agingMs = MAC_AGING_MS) {}

  /** Records that `mac` (48-bit value) was seen on `port` in `vlan`. Returns true when new or moved. */
  learn(vlan: number, mac: number, port: number, now: number): boolean {
    let t = this.byVlan.get(vlan);
    if (!t) {
      t = new Map();
      this.byVlan.set(vlan, t);
    }
    const e = t.get(mac);
    if (e && e.port === port) {
      e.learnedAt = now;
      return false;
    }
    t.set(mac, { port, learnedAt: now });
    return true;
  }

  lookup(vlan: number, mac: number, now: number): number | undefined {
    const t = this.byVlan.get(vlan);
    const e = t?.get(mac);
    if (!e) return undefined;
    if (now - e.learnedAt >= this.agingMs) {
      t!.delete(mac);
      return undefined;
    }
    return e.port;
  }

  /** Forgets everything learned on a port (port deleted). */
  flushPort(port: number): void {
    for (const t of this.byVlan.values()) for (const [mac, e] of t) if (e.port === port) t.delete(mac);
  }

  flush(): void {
    this.byVlan.clear();
  }

  /** Like `ovs-appctl fdb/show`. */
  entries(now: number): MacTableEntry[] {
    const out: MacTableEntry[] = [];
    for (const [vlan, t] of this.byVlan)
      for (const [mac, e] of t)
        if (now - e.learnedAt < this.agingMs)
          out.push({ vlan, mac: formatMacBig(BigInt(mac)), port: e.port, age: Math.floor((now - e.learnedAt) / 1000) });
    return out.sort((a, b) => a.port - b.port || a.vlan - b.vlan || a.mac.localeCompare(b.mac));
  }
}
