// What changed, told after the transaction that changed it commits: the RPC notifier turns
// these into pushes to the agents whose hosts they concern. Listeners must not throw into
// the API call; a failure to notify is healed by the agents' periodic resync.

import type { NetworkRow, PortRow, SubnetRow } from '../db/schema.js';

export type ChangeEvent =
  | { kind: 'port'; op: 'create' | 'update' | 'delete'; before?: PortRow; after?: PortRow }
  | { kind: 'network'; op: 'create' | 'update' | 'delete'; network: NetworkRow }
  | { kind: 'subnet'; op: 'create' | 'update' | 'delete'; subnet: SubnetRow }
  | { kind: 'security_group'; op: 'rules' | 'delete'; id: string }
  | { kind: 'router'; op: 'create' | 'update' | 'delete'; id: string; hosts: string[] }
  | { kind: 'floatingip'; op: 'create' | 'update' | 'delete'; id: string; routerIds: string[] }
  | { kind: 'agent'; op: 'create' | 'revive' | 'update' | 'delete'; id: string; agentType: string; host: string };

export type Listener = (e: ChangeEvent) => void | Promise<void>;

export class Events {
  private readonly listeners: Listener[] = [];

  on(l: Listener): () => void {
    this.listeners.push(l);
    return () => {
      const k = this.listeners.indexOf(l);
      if (k >= 0) this.listeners.splice(k, 1);
    };
  }

  emit(e: ChangeEvent): void {
    for (const l of this.listeners) {
      try {
        const r = l(e);
        if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch((err) => console.error('event listener failed:', err));
      } catch (err) {
        console.error('event listener failed:', err);
      }
    }
  }
}
