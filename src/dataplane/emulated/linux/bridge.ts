// A Linux bridge: a learning switch over its ports, with a local port (the bridge device
// itself) into the namespace's IP stack. With net.bridge.bridge-nf-call-iptables=1 bridged
// IPv4 frames also traverse iptables (PREROUTING once, then FORWARD and POSTROUTING per
// output port) with the bridge ports visible as physdev-in/physdev-out: this is how
// Neutron's hybrid firewall filters an instance's traffic on its qbr bridge.

import { isMulticastMac, type Frame, type Mac } from '../packet.js';
import type { Device } from './device.js';
import type { EmulatedHost } from './host.js';

/** Linux's default FDB ageing time (seconds). */
export const BRIDGE_AGEING = 300;

interface FdbEntry {
  port: Device;
  updated: number;
}

export class LinuxBridge {
  ports = new Set<Device>();
  fdb = new Map<Mac, FdbEntry>();

  constructor(
    private host: EmulatedHost,
    /** The bridge device (its local port). */
    public dev: Device,
  ) {}

  get name(): string {
    return this.dev.name;
  }

  addPort(port: Device): void {
    if (port === this.dev) throw new Error(`Cannot enslave bridge '${this.name}' to itself`);
    if (port.master) throw new Error(`Device '${port.name}' is already a port of bridge '${port.master.name}'`);
    if (port.ovs) throw new Error(`Device '${port.name}' is already a port of OVS bridge '${port.ovs.bridge}'`);
    if (port.ns !== this.dev.ns) throw new Error(`Device '${port.name}' is not in the namespace of bridge '${this.name}'`);
    port.master = this;
    this.ports.add(port);
  }

  delPort(port: Device): void {
    if (!this.ports.delete(port)) throw new Error(`Device '${port.name}' is not a port of bridge '${this.name}'`);
    port.master = undefined;
    for (const [mac, e] of this.fdb) if (e.port === port) this.fdb.delete(mac);
  }

  /** A frame arrived on bridge port `port`. */
  input(port: Device, frame: Frame, pkt: number): void {
    const host = this.host;
    const ns = this.dev.ns;
    const trace = host.engine.tracer.steps;
    if (!this.dev.up) return host.drop(ns, port, frame, pkt, `bridge ${this.name} is down`, this.name);
    const now = host.engine.now;
    const src = frame.eth.src;
    if (!isMulticastMac(src)) {
      const e = this.fdb.get(src);
      if (!e) this.fdb.set(src, { port, updated: now });
      else {
        e.port = port;
        e.updated = now;
      }
    }
    let f = frame;
    const nf = ns.netfilter && ns.bridgeNfCallIptables && f.ip && f.vlan === undefined;
    if (nf) {
      const g = host.stack.hook(ns, 'PREROUTING', f, this.name, undefined, pkt, port, port.name);
      if (!g) return;
      f = g;
    }
    const dst = f.eth.dst;
    if (isMulticastMac(dst)) {
      if (trace) host.step(ns, { pkt, dev: port.name, bridge: this.name, kind: 'bridge', action: `flood ${dst === 'ff:ff:ff:ff:ff:ff' ? 'broadcast' : 'multicast'} from ${port.name} to ${this.floodList(port)}${this.dev.up ? ` and local ${this.name}` : ''}`, before: f });
      for (const p of this.ports) if (p !== port) this.forward(port, p, f, pkt, !!nf);
      host.stack.input(this.dev, f, pkt, !!nf);
      return;
    }
    if (dst === this.dev.mac || this.isPortMac(dst)) {
      if (trace) host.step(ns, { pkt, dev: port.name, bridge: this.name, kind: 'bridge', rule: `fdb ${dst} local`, action: `deliver to local ${this.name}`, before: f });
      return host.stack.input(this.dev, f, pkt, !!nf);
    }
    const e = this.lookup(dst);
    if (e) {
      if (e.port === port) return host.drop(ns, port, f, pkt, `fdb: ${dst} is on the input port ${port.name}`, this.name);
      if (trace) host.step(ns, { pkt, dev: port.name, bridge: this.name, kind: 'bridge', rule: `fdb ${dst} dev ${e.port.name}`, action: `forward ${port.name} -> ${e.port.name}`, before: f });
      return this.forward(port, e.port, f, pkt, !!nf);
    }
    if (trace) host.step(ns, { pkt, dev: port.name, bridge: this.name, kind: 'bridge', rule: `fdb: ${dst} unknown`, action: `flood from ${port.name} to ${this.floodList(port)}`, before: f });
    for (const p of this.ports) if (p !== port) this.forward(port, p, f, pkt, !!nf);
  }

  /** The bridge device itself sends (the IP stack of the namespace is behind it). */
  output(frame: Frame, pkt: number): void {
    const host = this.host;
    const ns = this.dev.ns;
    const dst = frame.eth.dst;
    const e = isMulticastMac(dst) ? undefined : this.lookup(dst);
    if (e) {
      if (host.engine.tracer.steps) host.step(ns, { pkt, dev: this.name, bridge: this.name, kind: 'bridge', rule: `fdb ${dst} dev ${e.port.name}`, action: `local -> ${e.port.name}`, before: frame });
      return host.xmit(e.port, frame, pkt);
    }
    if (host.engine.tracer.steps) host.step(ns, { pkt, dev: this.name, bridge: this.name, kind: 'bridge', action: `local flood to ${this.floodList(undefined)}`, before: frame });
    for (const p of this.ports) host.xmit(p, frame, pkt);
  }

  private forward(inPort: Device, outPort: Device, frame: Frame, pkt: number, nf: boolean): void {
    const host = this.host;
    const ns = this.dev.ns;
    let f: Frame | undefined = frame;
    if (nf) {
      f = host.stack.hook(ns, 'FORWARD', f, this.name, this.name, pkt, outPort, inPort.name, outPort.name);
      if (!f) return;
      f = host.stack.hook(ns, 'POSTROUTING', f, undefined, this.name, pkt, outPort, inPort.name, outPort.name);
      if (!f) return;
    }
    host.xmit(outPort, f, pkt);
  }

  private lookup(mac: Mac): FdbEntry | undefined {
    const e = this.fdb.get(mac);
    if (!e) return undefined;
    if (this.host.engine.now - e.updated > BRIDGE_AGEING) {
      this.fdb.delete(mac);
      return undefined;
    }
    return e;
  }

  private isPortMac(mac: Mac): boolean {
    for (const p of this.ports) if (p.mac === mac) return true;
    return false;
  }

  private floodList(except: Device | undefined): string {
    const names = [...this.ports].filter((p) => p !== except).map((p) => p.name);
    return names.length ? names.join(', ') : '(no other port)';
  }
}
