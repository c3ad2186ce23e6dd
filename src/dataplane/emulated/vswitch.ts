// The host's Open vSwitch (what ovs-vswitchd does around the flow tables): bridges and the
// kind of each port. The flow tables themselves are the OVS model's (ovs/); this file
// connects its outputs to the rest of the host:
//   internal port  -> the Linux device of that name (wherever it was moved) receives it;
//   system port    -> the Linux device of that name sends it (a veth end, a NIC);
//   patch port     -> the peer port's bridge processes it;
//   vxlan/gre port -> encapsulated, then sent by the host's own IP stack (root namespace)
//                     to remote_ip; the receiving host's stack hands UDP 4789 / GRE to the
//                     tunnel port whose remote_ip/local_ip/key match, with tun_id set.

import { ipToInt } from './addr.js';
import { IPPROTO_GRE, VXLAN_PORT, type Frame } from './packet.js';
import type { Device } from './linux/device.js';
import type { EmulatedHost } from './linux/host.js';
import type { OvsPort } from '../../host/state.js';
import type { BridgeSpec } from '../../host/ops.js';
import { OvsBridge, type OvsStep } from './ovs/index.js';

export type VsPortType = 'internal' | 'system' | 'patch' | 'vxlan' | 'gre';

export interface VsPortSpec {
  name: string;
  type: VsPortType;
  tag?: number;
  ofport?: number;
  /** patch: the peer port's name. */
  peer?: string;
  /** vxlan/gre. */
  remoteIp?: string;
  localIp?: string;
  key?: number | 'flow';
  dstPort?: number;
  /** internal: namespace and MAC of the device OVS creates. */
  ns?: string;
  mac?: string;
}

export interface VsPort extends VsPortSpec {
  bridge: VsBridge;
  /** The port as the host state describes it (columns the model does not act on included). */
  state?: OvsPort;
  remote?: number;
  local?: number;
}

export interface VsBridge {
  name: string;
  /** OVSDB columns of the bridge (datapath_type, fail_mode...), kept for reading the state back. */
  spec: BridgeSpec;
  model: OvsBridge;
  ports: Map<string, VsPort>;
}

export class Vswitch {
  bridges = new Map<string, VsBridge>();
  ports = new Map<string, VsPort>();
  /** Tunnel ports by type and remote IP (as an integer): what a tunnel packet arriving is matched against. */
  private readonly tunnelsByRemote = { vxlan: new Map<number, VsPort[]>(), gre: new Map<number, VsPort[]>() };

  constructor(private host: EmulatedHost) {}

  bridge(name: string): VsBridge {
    const b = this.bridges.get(name);
    if (!b) throw new Error(`no bridge named ${name} on host '${this.host.name}'`);
    return b;
  }

  /** `ovs-vsctl add-br`: also creates the bridge's local internal port and device (down). */
  addBridge(name: string, opts: { mac?: string } = {}): VsBridge {
    if (this.bridges.has(name) || this.ports.has(name)) throw new Error(`cannot create a bridge named ${name} on host '${this.host.name}' because a bridge or port named ${name} already exists`);
    // The OVS model's bridge has the LOCAL port named after the bridge; the vswitch adds its
    // internal device. Its clock is the world's (milliseconds), for learn() and MAC ageing.
    const engine = this.host.engine;
    const b: VsBridge = { name, spec: { name, datapath_type: 'system', fail_mode: 'secure' }, model: new OvsBridge(name, { clock: () => engine.now * 1000 }), ports: new Map() };
    this.bridges.set(name, b);
    this.addPort(name, { name, type: 'internal', mac: opts.mac, ofport: 65534 });
    return b;
  }

  delBridge(name: string): void {
    const b = this.bridge(name);
    for (const p of [...b.ports.keys()]) this.delPort(p);
    this.bridges.delete(name);
  }

  addPort(bridge: string, spec: VsPortSpec): VsPort {
    const b = this.bridge(bridge);
    if (this.ports.has(spec.name)) throw new Error(`cannot create a port named ${spec.name} on host '${this.host.name}' because a port named ${spec.name} already exists on bridge ${this.ports.get(spec.name)!.bridge.name}`);
    const port: VsPort = { ...spec, bridge: b };
    if (spec.type === 'patch' && !spec.peer) throw new Error(`patch port ${spec.name} needs options:peer`);
    if (spec.type === 'vxlan' || spec.type === 'gre') {
      if (!spec.remoteIp) throw new Error(`${spec.type} port ${spec.name} needs options:remote_ip`);
      port.remote = ipToInt(spec.remoteIp);
      if (spec.localIp) port.local = ipToInt(spec.localIp);
      if (spec.key === undefined) port.key = 0;
    }
    if (spec.type === 'internal') {
      const dev = this.host.findDevice(spec.name) ?? this.host.addInternalDevice(spec.name, { mac: spec.mac });
      if (dev.kind !== 'ovs-internal') throw new Error(`cannot add internal port ${spec.name} on host '${this.host.name}': a ${dev.kind} device of that name exists`);
      if (spec.ns && dev.ns.name !== spec.ns) this.host.moveLink(dev, spec.ns);
      dev.ovs = { bridge: bridge, port: spec.name };
    } else if (spec.type === 'system') {
      const dev = this.host.root.devices.get(spec.name);
      if (dev) this.bindDevice(dev, port);
    }
    if (spec.name !== bridge) b.model.addPort(spec.name, { tag: spec.tag, ofport: spec.ofport });
    b.ports.set(spec.name, port);
    this.ports.set(spec.name, port);
    if (port.remote !== undefined) this.indexTunnel(port, true);
    return port;
  }

  /** `ovs-vsctl set Port X tag=N` (or clear it with undefined). */
  setTag(name: string, tag: number | undefined): void {
    const p = this.port(name);
    p.tag = tag;
    p.bridge.model.setPortTag(name, tag);
  }

  delPort(name: string): void {
    const p = this.port(name);
    if (name !== p.bridge.name) p.bridge.model.delPort(name);
    p.bridge.ports.delete(name);
    this.ports.delete(name);
    if (p.remote !== undefined) this.indexTunnel(p, false);
    const dev = p.type === 'internal' ? this.host.findDevice(name) : this.host.root.devices.get(name);
    if (dev?.ovs?.port === name) {
      dev.ovs = undefined;
      // OVS destroys the internal device with its port.
      if (p.type === 'internal') this.host.delLink(dev);
    }
  }

  port(name: string): VsPort {
    const p = this.ports.get(name);
    if (!p) throw new Error(`no port named ${name} on host '${this.host.name}'`);
    return p;
  }

  private bindDevice(dev: Device, port: VsPort): void {
    if (dev.master) throw new Error(`cannot add ${dev.name} to OVS bridge ${port.bridge.name}: it is a port of Linux bridge ${dev.master.name}`);
    dev.ovs = { bridge: port.bridge.name, port: port.name };
  }

  /** A device went away under a system port (the port stays, as in OVS, without a device). */
  unbindDevice(dev: Device): void {
    dev.ovs = undefined;
  }

  /** A system port's device was created after the port: bind it. */
  deviceAppeared(dev: Device): void {
    const p = this.ports.get(dev.name);
    if (p && p.type === 'system' && dev.ns === this.host.root && !dev.ovs) this.bindDevice(dev, p);
  }

  private indexTunnel(p: VsPort, add: boolean): void {
    const byRemote = this.tunnelsByRemote[p.type as 'vxlan' | 'gre'];
    const list = byRemote.get(p.remote!) ?? [];
    const next = add ? [...list, p] : list.filter((x) => x !== p);
    if (next.length) byRemote.set(p.remote!, next);
    else byRemote.delete(p.remote!);
    // The kernel's vxlan_sys_4789 / gre0 receivers exist while a tunnel port of the kind does
    // (asked of the index, not of every port: a host adds a tunnel per peer, and a walk per
    // add was the cube of the hosts over a cloud's start).
    const root = this.host.root;
    if (this.tunnelsByRemote.vxlan.size) root.udpKernel.set(VXLAN_PORT, this.vxlanRx);
    else root.udpKernel.delete(VXLAN_PORT);
    if (this.tunnelsByRemote.gre.size) root.protoKernel.set(IPPROTO_GRE, this.greRx);
    else root.protoKernel.delete(IPPROTO_GRE);
  }

  // --- packets -------------------------------------------------------------------------

  /** A frame arrived on a system port's device. */
  fromSystemPort(dev: Device, frame: Frame, pkt: number): void {
    const p = this.ports.get(dev.ovs!.port);
    if (!p) return this.host.drop(dev.ns, dev, frame, pkt, `${dev.name} is not an OVS port`);
    this.process(p, frame, pkt, undefined);
  }

  /** The namespace behind an internal port sent a frame into the bridge. */
  fromInternal(dev: Device, frame: Frame, pkt: number): void {
    const p = dev.ovs ? this.ports.get(dev.ovs.port) : undefined;
    if (!p) return this.host.drop(dev.ns, dev, frame, pkt, `internal device ${dev.name} has no OVS port`);
    this.process(p, frame, pkt, undefined);
  }

  private process(inPort: VsPort, frame: Frame, pkt: number, tunId: number | bigint | undefined): void {
    const b = inPort.bridge;
    const host = this.host;
    const tracer = host.engine.tracer;
    const r = b.model.process(frame, inPort.name, { tunId, trace: tracer.steps });
    if (tracer.steps) this.traceSteps(inPort, frame, tunId, r.steps, pkt);
    if (!r.outputs.length) tracer.drop({ pkt, host: host.name, bridge: b.name, dev: inPort.name, reason: r.error ?? `${b.name}: no flow output the packet (in_port=${inPort.name})`, frame });
    for (const o of r.outputs) {
      const p = b.ports.get(o.port);
      if (!p) {
        host.drop(undefined, undefined, o.frame, pkt, `${b.name} output to port ${o.port} that the vswitch does not know`, b.name);
        continue;
      }
      this.output(p, o.frame, pkt, o.tunId);
    }
  }

  /** One trace step per flow the packet hit (or table miss), with the packet before and after it. */
  private traceSteps(inPort: VsPort, frame: Frame, tunId: number | bigint | undefined, steps: OvsStep[], pkt: number): void {
    let before = frame;
    // Each OvsStep's frame includes what its nested resubmits did; walk them in order and
    // compare against the previous step's frame so that each change shows once.
    for (const s of steps) {
      const changed = !sameL2L3(before, s.frame);
      const what: string[] = [];
      if (s.kind === 'miss') what.push('table miss: drop');
      else if (s.kind === 'error') what.push('error');
      if (s.outputs.length) what.push(`output ${s.outputs.join(', ')}`);
      if (s.notes?.length) what.push(...s.notes);
      this.host.step(undefined, {
        pkt,
        dev: inPort.name,
        bridge: s.bridge,
        kind: 'ovs',
        table: s.table,
        rule: s.flow,
        action: `${s.depth === 0 ? `in_port=${inPort.name}${tunId !== undefined ? ` tun_id=${tunId}` : ''}: ` : ''}${what.join('; ') || 'continue'}${s.tunId !== undefined && s.tunId !== tunId ? ` (tun_id=${s.tunId})` : ''}`,
        before,
        after: changed ? s.frame : undefined,
        detail: s,
      });
      before = s.frame;
    }
  }

  private output(p: VsPort, frame: Frame, pkt: number, tunId: number | bigint | undefined): void {
    const host = this.host;
    switch (p.type) {
      case 'internal': {
        const dev = host.findDevice(p.name);
        if (!dev) return host.drop(undefined, undefined, frame, pkt, `internal port ${p.name} has no device`, p.bridge.name);
        host.engine.schedule(() => host.rx(dev, frame, pkt));
        return;
      }
      case 'system': {
        const dev = host.root.devices.get(p.name);
        if (!dev || dev.ovs?.port !== p.name) return host.drop(undefined, undefined, frame, pkt, `system port ${p.name}: could not open network device ${p.name} (No such device)`, p.bridge.name);
        host.xmit(dev, frame, pkt);
        return;
      }
      case 'patch': {
        const peer = this.ports.get(p.peer!);
        if (!peer || peer.type !== 'patch' || peer.peer !== p.name) return host.drop(undefined, undefined, frame, pkt, `patch port ${p.name}: peer ${p.peer} is not a patch port pointing back`, p.bridge.name);
        host.engine.schedule(() => this.process(peer, frame, pkt, undefined));
        return;
      }
      case 'vxlan':
      case 'gre':
        return this.tunnelTx(p, frame, pkt, tunId);
    }
  }

  private tunnelTx(p: VsPort, inner: Frame, pkt: number, tunId: number | bigint | undefined): void {
    const host = this.host;
    const key = p.key === 'flow' ? Number(tunId ?? 0) : (p.key as number);
    const src = p.localIp;
    const encap = p.type === 'vxlan' ? ({ kind: 'vxlan', vni: key, inner } as const) : ({ kind: 'gre', key, inner } as const);
    // The UDP source port is a hash of the inner flow (RFC 7348 5), for ECMP in the underlay.
    const sport = p.type === 'vxlan' ? 49152 + (hashText(`${inner.eth.src}${inner.eth.dst}${inner.ip?.src ?? ''}${inner.ip?.dst ?? ''}`) % 16384) : 0;
    if (host.engine.tracer.steps) {
      host.step(undefined, { pkt, dev: p.name, bridge: p.bridge.name, kind: 'encap', rule: `${p.name}: type=${p.type} remote_ip=${p.remoteIp}${p.localIp ? ` local_ip=${p.localIp}` : ''} key=${p.key}`, action: `encapsulate in ${p.type === 'vxlan' ? `VXLAN VNI ${key}` : `GRE key ${key}`} to ${p.remoteIp}`, before: inner });
    }
    host.stack.send(host.root, { src, dst: p.remoteIp!, ...(p.type === 'vxlan' ? { l4: { kind: 'udp', sport, dport: p.dstPort ?? VXLAN_PORT } } : { proto: IPPROTO_GRE }), encap }, pkt);
  }

  private readonly vxlanRx = (outer: Frame, dev: Device, pkt: number): void => this.tunnelRx('vxlan', outer, dev, pkt);
  private readonly greRx = (outer: Frame, dev: Device, pkt: number): void => this.tunnelRx('gre', outer, dev, pkt);

  private tunnelRx(type: 'vxlan' | 'gre', outer: Frame, dev: Device, pkt: number): void {
    const host = this.host;
    const e = outer.encap;
    if (!e || e.kind !== type) return host.drop(host.root, dev, outer, pkt, `${type} packet without a ${type} header`);
    const key = e.kind === 'vxlan' ? e.vni : e.key;
    const src = ipToInt(outer.ip!.src);
    const dst = ipToInt(outer.ip!.dst);
    const port = (this.tunnelsByRemote[type].get(src) ?? []).find((p) => (p.local === undefined || p.local === dst) && (p.key === 'flow' || p.key === key));
    if (!port) return host.drop(host.root, dev, outer, pkt, `no ${type} port with remote_ip=${outer.ip!.src} and key ${key} (flow or ${key}): packet discarded`);
    const inner = e.inner;
    if (host.engine.tracer.steps) {
      host.step(undefined, { pkt, dev: port.name, bridge: port.bridge.name, kind: 'decap', rule: `${port.name}: type=${type} remote_ip=${port.remoteIp} key=${port.key}`, action: `decapsulate ${type === 'vxlan' ? `VXLAN VNI ${key}` : `GRE key ${key}`} from ${outer.ip!.src}: in_port=${port.name} tun_id=${key}`, before: outer, after: inner });
    }
    host.engine.schedule(() => this.process(port, inner, pkt, key));
  }
}

function hashText(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

function sameL2L3(a: Frame, b: Frame): boolean {
  return (
    a.eth.src === b.eth.src &&
    a.eth.dst === b.eth.dst &&
    a.vlan === b.vlan &&
    a.arp?.op === b.arp?.op &&
    a.arp?.sha === b.arp?.sha &&
    a.arp?.spa === b.arp?.spa &&
    a.arp?.tha === b.arp?.tha &&
    a.arp?.tpa === b.arp?.tpa &&
    a.ip?.src === b.ip?.src &&
    a.ip?.dst === b.ip?.dst &&
    a.ip?.ttl === b.ip?.ttl
  );
}
