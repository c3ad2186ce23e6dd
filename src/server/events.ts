// What changed, told after the transaction that changed it commits: follow-up work (DHCP
// scheduling, floating-IP gateway ports) and the RPC notifier that pushes to the agents
// whose hosts a change concerns. The API call waits for its listeners, so a client sees
// their effects; a listener's failure is logged, never turned into the call's error (the
// agents' periodic resync heals a lost notification).

import type { NetworkRow, PortRow, SubnetRow } from '../db/schema.js';

export type ChangeEvent =
  | { kind: 'port'; op: 'create' | 'update' | 'delete'; before?: PortRow; after?: PortRow; /** For a delete: the addresses and groups it had. */ fixedIps?: Array<{ subnet_id: string; ip_address: string }>; securityGroups?: string[] }
  | { kind: 'network'; op: 'create' | 'update' | 'delete'; network: NetworkRow; /** For a delete: the DHCP agents' hosts it had (their bindings go with it). */ dhcpHosts?: string[] }
  | { kind: 'subnet'; op: 'create' | 'update' | 'delete'; subnet: SubnetRow }
  | { kind: 'security_group'; op: 'rules' | 'delete'; id: string }
  | { kind: 'router'; op: 'create' | 'update' | 'delete'; id: string; hosts: string[] }
  /** Each router the floating IP was or is on, with the hosts whose L3 agents it concerns (absent: all of the router's). */
  | { kind: 'floatingip'; op: 'create' | 'update' | 'delete'; id: string; routers: FipTarget[] }
  | { kind: 'agent'; op: 'create' | 'revive' | 'update' | 'delete'; id: string; agentType: string; host: string }
  /** An admin added a network to a DHCP agent or removed it (the scheduler's own bindings come with their network's events). */
  | { kind: 'dhcp_binding'; op: 'add' | 'remove'; networkId: string; host: string };

export interface FipTarget {
  routerId: string;
  hosts?: string[];
}

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

  async emit(e: ChangeEvent): Promise<void> {
    for (const l of [...this.listeners]) {
      try {
        await l(e);
      } catch (err) {
        console.error(`${e.kind} ${e.op} listener failed:`, err);
      }
    }
  }
}
