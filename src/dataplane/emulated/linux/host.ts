// An emulated Linux host: its network namespaces (the root one, ip netns ones, and the
// instances it runs, each with its own stack), the devices joining them, its Linux bridges,
// and its Open vSwitch. The methods are the imperative API (`ip link`, `ip netns`, `brctl`,
// `ovs-vsctl` equivalents); the driver (driver.ts) calls them to realise a desired state.
//
// Frames move between devices through the engine's queue: `xmit` is a device sending,
// `rx` a device receiving; what happens next depends on the device kind and its master.

import { macFromSeed, normalizeMac } from '../addr.js';
import type { Engine } from '../engine.js';
import type { Frame } from '../packet.js';
import type { Segment } from '../segment.js';
import { Vswitch } from '../vswitch.js';
import { EmulatedDriver } from '../driver.js';
import type { HostOp } from '../../../host/ops.js';
import type { HostState } from '../../../host/state.js';
import type { TraceStep } from '../../../trace/record.js';
import { LinuxBridge } from './bridge.js';
import { Device, type DeviceKind } from './device.js';
import { Namespace } from './namespace.js';
import { IpStack } from './stack.js';

export interface DeviceOptions {
  ns?: string;
  mac?: string;
  up?: boolean;
  mtu?: number;
}

export class EmulatedHost {
  /** ip netns namespaces, by name. */
  namespaces = new Map<string, Namespace>();
  /** Instances (VMs): each a stack of its own behind a tap. */
  instances = new Map<string, Namespace>();
  root: Namespace;
  stack: IpStack;
  vswitch: Vswitch;
  bridges = new Map<string, LinuxBridge>();
  private driverInstance?: EmulatedDriver;

  constructor(
    public name: string,
    public engine: Engine,
  ) {
    this.root = new Namespace(this, '');
    this.stack = new IpStack(this);
    this.vswitch = new Vswitch(this);
  }

  // --- desired state (src/host) --------------------------------------------------------

  get driver(): EmulatedDriver {
    return (this.driverInstance ??= new EmulatedDriver(this));
  }

  /** Carries out host operations (from `diff`) in order. */
  apply(ops: readonly HostOp[]): void {
    this.driver.apply(ops);
  }

  /** Makes the host match `desired`; returns the operations that took. */
  applyState(desired: HostState): HostOp[] {
    return this.driver.applyState(desired);
  }

  /** The host as a HostState (what the driver manages; see driver.ts for what is left out). */
  readState(): HostState {
    return this.driver.readState();
  }

  // --- namespaces ----------------------------------------------------------------------

  /** The namespace by name ('' or undefined: the root namespace; instances by their name too). */
  ns(name?: string): Namespace {
    if (!name) return this.root;
    const n = this.namespaces.get(name) ?? this.instances.get(name);
    if (!n) throw new Error(`Cannot open network namespace '${name}' on host '${this.name}': No such file or directory`);
    return n;
  }

  addNetns(name: string): Namespace {
    if (!name || name.includes('/')) throw new Error(`Invalid network namespace name '${name}'`);
    if (this.namespaces.has(name) || this.instances.has(name)) throw new Error(`Cannot create namespace '${name}' on host '${this.name}': File exists`);
    const n = new Namespace(this, name);
    this.namespaces.set(name, n);
    return n;
  }

  /** `ip netns del`: devices inside are destroyed (veth peers with them), as the kernel does. */
  delNetns(name: string): void {
    const n = this.namespaces.get(name);
    if (!n) throw new Error(`Cannot remove namespace '${name}' on host '${this.name}': No such file or directory`);
    for (const d of [...n.devices.values()]) if (d.kind !== 'loopback') this.delLink(d);
    this.namespaces.delete(name);
  }

  // --- links ---------------------------------------------------------------------------

  private newDevice(name: string, kind: DeviceKind, opts: DeviceOptions): Device {
    const ns = this.ns(opts.ns);
    const d = new Device(name, kind, normalizeMac(opts.mac ?? macFromSeed(`${this.name}/${opts.ns ?? ''}/${name}`)), ns);
    if (opts.mtu) d.mtu = opts.mtu;
    ns.attach(d);
    if (opts.up) d.up = true;
    return d;
  }

  /** `ip link add NAME type veth peer name PEER` (ends possibly in different namespaces). */
  addVeth(name: string, peer: string, opts: DeviceOptions & { peerNs?: string; peerMac?: string } = {}): [Device, Device] {
    const a = this.newDevice(name, 'veth', opts);
    let b: Device;
    try {
      b = this.newDevice(peer, 'veth', { ns: opts.peerNs, mac: opts.peerMac, up: opts.up, mtu: opts.mtu });
    } catch (e) {
      a.ns.detach(a);
      throw e;
    }
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  /** A tap device; `addInstance` puts an instance behind it. */
  addTap(name: string, opts: DeviceOptions = {}): Device {
    return this.newDevice(name, 'tap', opts);
  }

  /** `ip link add NAME type dummy`: a device that swallows what it sends. */
  addDummy(name: string, opts: DeviceOptions = {}): Device {
    return this.newDevice(name, 'dummy', opts);
  }

  /** A physical NIC in the root namespace, plugged into a segment of the fabric. */
  addNic(name: string, segment: Segment, opts: Omit<DeviceOptions, 'ns'> = {}): Device {
    const d = this.newDevice(name, 'physical', { ...opts, up: opts.up ?? true });
    segment.plug(d);
    return d;
  }

  /** `ip link add NAME type bridge`. */
  addBridge(name: string, opts: DeviceOptions = {}): LinuxBridge {
    if (this.bridges.has(name)) throw new Error(`Bridge '${name}' already exists on host '${this.name}'`);
    const d = this.newDevice(name, 'bridge', opts);
    const br = new LinuxBridge(this, d);
    d.bridge = br;
    this.bridges.set(name, br);
    return br;
  }

  /** `ip link set DEV master BRIDGE` (or nomaster with bridge undefined). */
  setMaster(devName: string, bridge: string | undefined, ns?: string): void {
    const d = this.ns(ns).device(devName);
    if (bridge === undefined) {
      if (d.master) d.master.delPort(d);
      return;
    }
    const br = this.bridges.get(bridge);
    if (!br) throw new Error(`Cannot find bridge '${bridge}' on host '${this.name}'`);
    br.addPort(d);
  }

  /** An OVS internal port's device (created by the vswitch). */
  addInternalDevice(name: string, opts: DeviceOptions): Device {
    return this.newDevice(name, 'ovs-internal', opts);
  }

  linkSet(devName: string, change: { up?: boolean; mtu?: number; mac?: string; ns?: string; netns?: string }): void {
    const d = this.ns(change.ns).device(devName);
    if (change.up !== undefined) d.up = change.up;
    if (change.mtu !== undefined) d.mtu = change.mtu;
    if (change.mac !== undefined) d.mac = normalizeMac(change.mac);
    if (change.netns !== undefined) this.moveLink(d, change.netns);
  }

  /** `ip link set DEV netns NS`: addresses and routes are lost, the device goes down. */
  moveLink(d: Device, toNs: string): void {
    const target = this.ns(toNs);
    if (target === d.ns) return;
    if (d.master) throw new Error(`Cannot move '${d.name}' out of its namespace while it is a port of bridge '${d.master.name}'`);
    if (target.devices.has(d.name)) throw new Error(`RTNETLINK answers: File exists (device '${d.name}' in namespace '${toNs}')`);
    d.ns.detach(d);
    d.up = false;
    target.attach(d);
  }

  /** `ip link del`: a veth takes its peer with it; bridge ports are released. */
  delLink(d: Device): void {
    if (d.kind === 'loopback') throw new Error(`Cannot delete loopback device in '${d.ns.label}'`);
    if (d.master) d.master.delPort(d);
    if (d.ovs) this.vswitch.unbindDevice(d);
    if (d.segment) d.segment.unplug(d);
    if (d.bridge) {
      for (const p of [...d.bridge.ports]) d.bridge.delPort(p);
      this.bridges.delete(d.name);
    }
    d.ns.detach(d);
    const peer = d.peer;
    d.peer = undefined;
    if (peer && d.kind === 'veth') {
      peer.peer = undefined;
      this.delLink(peer);
    } else if (peer) peer.peer = undefined;
  }

  /** Every device of the host in every namespace (not instances). */
  *allDevices(): Iterable<Device> {
    yield* this.root.devices.values();
    for (const n of this.namespaces.values()) yield* n.devices.values();
  }

  /** Finds a device by name in any namespace of the host (OVS ports refer to devices by name only). */
  findDevice(name: string): Device | undefined {
    const d = this.root.devices.get(name);
    if (d) return d;
    for (const n of this.namespaces.values()) {
      const x = n.devices.get(name);
      if (x) return x;
    }
    return undefined;
  }

  // --- instances -----------------------------------------------------------------------

  /**
   * An instance plugged into tap `tap`: a stack of its own with one interface, eth0, whose
   * other end is the tap (what the hypervisor does). Give it an address and a gateway, or
   * let it ask DHCP.
   */
  addInstance(name: string, opts: { tap: string; mac: string; ip?: string; gateway?: string; mtu?: number }): Namespace {
    if (this.instances.has(name) || this.namespaces.has(name)) throw new Error(`Instance '${name}' already exists on host '${this.name}'`);
    const tap = this.root.device(opts.tap);
    if (tap.kind !== 'tap') throw new Error(`Device '${opts.tap}' on host '${this.name}' is not a tap`);
    if (tap.peer) throw new Error(`Tap '${opts.tap}' on host '${this.name}' is already plugged into an instance`);
    const vm = new Namespace(this, name);
    vm.kind = 'instance';
    this.instances.set(name, vm);
    const eth0 = new Device('eth0', 'veth', normalizeMac(opts.mac), vm);
    eth0.up = true;
    if (opts.mtu) eth0.mtu = opts.mtu;
    vm.attach(eth0);
    eth0.peer = tap;
    tap.peer = eth0;
    if (opts.ip) vm.addAddr('eth0', opts.ip);
    if (opts.gateway) vm.addRoute({ dst: 'default', via: opts.gateway, dev: 'eth0' });
    return vm;
  }

  delInstance(name: string): void {
    const vm = this.instances.get(name);
    if (!vm) throw new Error(`No instance '${name}' on host '${this.name}'`);
    const eth0 = vm.devices.get('eth0');
    if (eth0?.peer) eth0.peer.peer = undefined;
    this.instances.delete(name);
  }

  // --- moving frames -------------------------------------------------------------------

  /** Device `dev` sends `frame`. */
  xmit(dev: Device, frame: Frame, pkt: number): void {
    const tracer = this.engine.tracer;
    if (!dev.up) return this.drop(dev.ns, dev, frame, pkt, `${dev.name} is down`);
    // The skb's conntrack attachment and mark stay behind (skb_scrub_packet). Frames are
    // values, but meta is the sending namespace's scratch state, so it is cleared in place.
    if (frame.meta) frame.meta = undefined;
    if (tracer.steps) this.step(dev.ns, { pkt, dev: dev.name, kind: 'tx', action: `${dev.name} sends`, before: frame });
    switch (dev.kind) {
      case 'veth':
      case 'tap': {
        const peer = dev.peer;
        if (!peer) return this.drop(dev.ns, dev, frame, pkt, `${dev.name} has no peer (no carrier)`);
        const f = frame;
        this.engine.schedule(() => peer.ns.host.rx(peer, f, pkt));
        return;
      }
      case 'dummy':
        return this.drop(dev.ns, dev, frame, pkt, `${dev.name} is a dummy device: what it sends goes nowhere`);
      case 'physical':
        if (!dev.segment) return this.drop(dev.ns, dev, frame, pkt, `${dev.name} has no carrier (not plugged into a segment)`);
        return dev.segment.carry(dev, frame, pkt);
      case 'ovs-internal':
        return this.vswitch.fromInternal(dev, frame, pkt);
      case 'bridge':
        return dev.bridge!.output(frame, pkt);
      case 'loopback':
        this.engine.schedule(() => this.rx(dev, frame, pkt));
        return;
    }
  }

  /** Device `dev` received `frame`. */
  rx(dev: Device, frame: Frame, pkt: number): void {
    if (!dev.up) return this.drop(dev.ns, dev, frame, pkt, `${dev.name} is down`);
    if (this.engine.tracer.steps) this.step(dev.ns, { pkt, dev: dev.name, kind: 'rx', action: `${dev.name} receives`, before: frame });
    if (dev.master) return dev.master.input(dev, frame, pkt);
    if (dev.ovs && dev.kind !== 'ovs-internal') return this.vswitch.fromSystemPort(dev, frame, pkt);
    this.stack.input(dev, frame, pkt);
  }

  // --- trace helpers -------------------------------------------------------------------

  step(ns: Namespace | undefined, s: Omit<TraceStep, 'seq' | 'host'>): void {
    const st = s as TraceStep;
    st.host = this.name;
    if (ns?.name) st.ns = ns.name;
    this.engine.tracer.step(st);
  }

  drop(ns: Namespace | undefined, dev: Device | undefined, frame: Frame, pkt: number, reason: string, bridge?: string): void {
    if (!this.engine.tracer.active) return;
    this.engine.tracer.drop({ pkt, host: this.name, ns: ns?.name || undefined, dev: dev?.name, bridge, reason, frame });
    if (this.engine.tracer.steps) this.step(ns, { pkt, dev: dev?.name, bridge, kind: 'drop', action: `dropped: ${reason}`, before: frame });
  }

  deliver(ns: Namespace, dev: Device, frame: Frame, pkt: number, to: string): void {
    if (!this.engine.tracer.active) return;
    this.engine.tracer.deliver({ pkt, host: this.name, ns: ns.name || undefined, dev: dev.name, to, frame });
    if (this.engine.tracer.steps) this.step(ns, { pkt, dev: dev.name, kind: 'deliver', action: `delivered to ${to}`, before: frame });
  }
}
