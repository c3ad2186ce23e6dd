// A physical layer-2 segment joining hosts' NICs (the management, tunnel, VLAN and external
// networks of the scenario): a learning switch whose ports are trunks, so 802.1Q tags pass
// through untouched and MACs are learnt per VLAN, as on a physical switch.

import { isMulticastMac, type Frame } from './packet.js';
import type { Device } from './linux/device.js';
import type { Engine } from './engine.js';

export class Segment {
  nics = new Set<Device>();
  private fdb = new Map<string, Device>();

  constructor(
    public name: string,
    private engine: Engine,
  ) {}

  plug(nic: Device): void {
    if (nic.segment && nic.segment !== this) throw new Error(`NIC '${nic.name}' of host '${nic.ns.host.name}' is already plugged into segment '${nic.segment.name}'`);
    nic.segment = this;
    this.nics.add(nic);
  }

  unplug(nic: Device): void {
    this.nics.delete(nic);
    nic.segment = undefined;
    for (const [k, d] of this.fdb) if (d === nic) this.fdb.delete(k);
  }

  /** `from` put `frame` on the wire: deliver to the learnt NIC, or flood. */
  carry(from: Device, frame: Frame, pkt: number): void {
    const vlan = frame.vlan ?? 0;
    if (!isMulticastMac(frame.eth.src)) this.fdb.set(`${vlan}|${frame.eth.src}`, from);
    const to = isMulticastMac(frame.eth.dst) ? undefined : this.fdb.get(`${vlan}|${frame.eth.dst}`);
    const tracer = this.engine.tracer;
    const targets = to ? (to === from ? [] : [to]) : [...this.nics].filter((n) => n !== from);
    if (tracer.steps) {
      const names = targets.map((n) => `${n.ns.host.name}:${n.name}`).join(', ') || '(nobody)';
      tracer.step({ pkt, host: from.ns.host.name, dev: from.name, bridge: `segment ${this.name}`, kind: 'wire', action: `${to ? 'to' : 'flood to'} ${names}`, before: frame });
    }
    // One event for a flood: each NIC's rx in turn is what an event per NIC would run, in the same
    // order (what an rx schedules goes after the event, as after the last NIC's then), without
    // a closure per NIC (a thousand hosts' tunnel segment hears a million who-has per flood).
    if (targets.length)
      this.engine.schedule(() => {
        for (const n of targets) n.ns.host.rx(n, frame, pkt);
      });
  }
}
