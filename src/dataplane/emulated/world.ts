// The world: emulated hosts joined by physical segments (management, tunnel, VLAN, external
// networks), the event queue that moves frames between them, the virtual clock, and the
// entry points that put traffic in and give back the trace of what happened.
//
//   const w = new World();
//   const tun = w.addSegment('tunnel');
//   const a = w.addHost('compute1'); a.addNic('eth1', tun); a.root.addAddr('eth1', '10.0.1.11/24');
//   ...
//   const rec = w.ping({ host: 'compute1', ns: 'vm1' }, '192.168.2.11');
//   console.log(renderTrace(rec));

import { Tracer, type TraceRecord } from '../../trace/record.js';
import type { Engine } from './engine.js';
import { EmulatedHost } from './linux/host.js';
import type { Namespace } from './linux/namespace.js';
import type { Frame, Icmp, Tcp, Udp } from './packet.js';
import { Segment } from './segment.js';
import { startDhcpClient, type DhcpLease } from './apps/dhcp.js';

export interface Endpoint {
  host: string;
  /** Namespace or instance name; absent for the root namespace. */
  ns?: string;
}

export interface SendSpec {
  dst: string;
  proto: 'icmp' | 'udp' | 'tcp';
  src?: string;
  sport?: number;
  dport?: number;
  ttl?: number;
  data?: unknown;
  /** ICMP echo id/seq. */
  id?: number;
  seq?: number;
  /** Bind to a device (route lookup with oif). */
  oif?: string;
}

/**
 * Events one call may process before the world declares a forwarding loop: at least
 * MAX_EVENTS, and EVENTS_PER_HOST for every host (a broadcast legitimately crosses every
 * host of its network, a few hundred events on each: a DHCP exchange in a 500-host cloud
 * passed 200,000).
 */
export const MAX_EVENTS = 200_000;
export const EVENTS_PER_HOST = 2_000;

export class World implements Engine {
  /** Open (active) only while `capture` and its kin run: see `record`. */
  tracer = new Tracer(false, false);
  /** Whether captures record steps (`tracing`); the tracer's own flag is on only inside one. */
  private stepsWanted = true;
  /** Whether captures keep a record at all (`unrecorded`). */
  private recordWanted = true;
  now = 0;
  hosts = new Map<string, EmulatedHost>();
  segments = new Map<string, Segment>();
  private queue: Array<() => void> = [];
  private head = 0;
  private unresolved: Array<() => void> = [];

  /** Whether steps are recorded (deliveries and drops always are). */
  get tracing(): boolean {
    return this.stepsWanted;
  }
  set tracing(on: boolean) {
    this.stepsWanted = on;
    if (this.tracer.active) this.tracer.steps = on;
  }

  /**
   * Runs `fn` without recording steps (deliveries and drops still are): for traffic whose
   * outcome is all that is wanted. A broadcast crosses every host of its network, some
   * forty steps on each.
   */
  untraced<T>(fn: () => T): T {
    return this.withOff((on) => (this.tracing = on), this.stepsWanted, fn);
  }

  /**
   * Runs `fn` with captures that keep nothing, not even deliveries and drops: for traffic whose
   * effect alone is wanted (a DHCP lease). A broadcast in a big cloud crosses every host of its
   * network, and each host's drop of it (and of the underlay ARP its tunnels need) was kept
   * for a record nobody read.
   */
  unrecorded<T>(fn: () => T): T {
    return this.withOff((on) => (this.recordWanted = on), this.recordWanted, fn);
  }

  /** Runs `fn` with a setting off, then puts it back as it `was`. */
  private withOff<T>(set: (on: boolean) => void, was: boolean, fn: () => T): T {
    set(false);
    try {
      return fn();
    } finally {
      set(was);
    }
  }

  /**
   * Runs `fn` and the traffic it causes with the tracer open, and returns the record. Traffic
   * outside (an agent's announcements, timers) is not recorded: nothing would ever read it,
   * and a long-running cloud would keep all of it.
   */
  private record(fn: () => void): TraceRecord {
    const { active, steps } = this.tracer;
    this.tracer.active = this.recordWanted;
    this.tracer.steps = this.recordWanted && this.stepsWanted;
    this.tracer.reset();
    try {
      fn();
      this.run();
      return this.tracer.reset();
    } finally {
      this.tracer.active = active;
      this.tracer.steps = steps;
    }
  }

  addHost(name: string): EmulatedHost {
    if (this.hosts.has(name)) throw new Error(`Host '${name}' already exists`);
    const h = new EmulatedHost(name, this);
    this.hosts.set(name, h);
    return h;
  }

  host(name: string): EmulatedHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`No host '${name}' in this world`);
    return h;
  }

  addSegment(name: string): Segment {
    if (this.segments.has(name)) throw new Error(`Segment '${name}' already exists`);
    const s = new Segment(name, this);
    this.segments.set(name, s);
    return s;
  }

  segment(name: string): Segment {
    const s = this.segments.get(name);
    if (!s) throw new Error(`No segment '${name}' in this world`);
    return s;
  }

  /**
   * A plain host on a segment (the external router 203.0.113.1, an outside host): one NIC
   * `eth0` with an address, optionally a default gateway and forwarding.
   */
  addPlainHost(name: string, opts: { segment: string; ip: string; mac?: string; gateway?: string; forward?: boolean }): EmulatedHost {
    const h = this.addHost(name);
    h.addNic('eth0', this.segment(opts.segment), { mac: opts.mac });
    h.root.addAddr('eth0', opts.ip);
    if (opts.gateway) h.root.addRoute({ dst: 'default', via: opts.gateway });
    if (opts.forward) h.root.setSysctl('net.ipv4.ip_forward', '1');
    return h;
  }

  schedule(fn: () => void): void {
    this.queue.push(fn);
  }

  watchUnresolved(check: () => void): void {
    this.unresolved.push(check);
  }

  /** Moves virtual time (conntrack, learned flows, FDB and neighbour ageing read it). */
  advance(seconds: number): void {
    this.now += seconds;
  }

  /** Processes events until the network is quiet; neighbours still unresolved then fail. */
  run(): void {
    let n = 0;
    const limit = Math.max(MAX_EVENTS, this.hosts.size * EVENTS_PER_HOST);
    for (;;) {
      while (this.head < this.queue.length) {
        const fn = this.queue[this.head++];
        fn();
        if (++n > limit) {
          this.queue.length = 0;
          this.head = 0;
          throw new Error(`More than ${limit} events for one injection: a forwarding loop?`);
        }
      }
      this.queue.length = 0;
      this.head = 0;
      if (!this.unresolved.length) return;
      const checks = this.unresolved.splice(0);
      for (const c of checks) c();
    }
  }

  // --- traffic -------------------------------------------------------------------------

  private ns(at: Endpoint): Namespace {
    return this.host(at.host).ns(at.ns);
  }

  /** A packet sent by an application in `from` (routing, netfilter, ARP as the kernel does). */
  send(from: Endpoint, spec: SendSpec): TraceRecord {
    const ns = this.ns(from);
    return this.record(() => {
      const pkt = this.tracer.newPacket(`${spec.proto} ${spec.src ?? ''}${spec.src ? ' ' : ''}-> ${spec.dst} from ${from.host}${from.ns ? `/${from.ns}` : ''}`);
      let l4: Icmp | Udp | Tcp;
      if (spec.proto === 'icmp') l4 = { kind: 'icmp', type: 8, code: 0, id: spec.id ?? 1, seq: spec.seq ?? 1 };
      else if (spec.proto === 'udp') l4 = { kind: 'udp', sport: spec.sport ?? ns.newEphemeralPort(), dport: need(spec.dport, 'udp') };
      else {
        const sport = spec.sport ?? ns.newEphemeralPort();
        ns.tcpClients.set(sport, { request: spec.data });
        l4 = { kind: 'tcp', sport, dport: need(spec.dport, 'tcp'), flags: { syn: true } };
      }
      ns.host.stack.send(ns, { dst: spec.dst, src: spec.src, ttl: spec.ttl, l4, data: spec.proto === 'tcp' ? undefined : spec.data, oif: spec.oif }, pkt);
    });
  }

  /** ICMP echo request from `from` to `dst`. */
  ping(from: Endpoint, dst: string, opts: { ttl?: number; src?: string; seq?: number } = {}): TraceRecord {
    return this.send(from, { proto: 'icmp', dst, ...opts });
  }

  /**
   * A ready frame put on a device: `tx` (default) as if the device sent it (a raw socket,
   * or an instance's NIC), `rx` as if it arrived on the device from its link.
   */
  inject(at: Endpoint & { dev: string }, frame: Frame, opts: { direction?: 'tx' | 'rx' } = {}): TraceRecord {
    const ns = this.ns(at);
    const dev = ns.device(at.dev);
    return this.record(() => {
      const pkt = this.tracer.newPacket(`frame injected on ${at.host}${at.ns ? `/${at.ns}` : ''} ${at.dev}`);
      if (opts.direction === 'rx') ns.host.rx(dev, frame, pkt);
      else ns.host.xmit(dev, frame, pkt);
    });
  }

  /** An instance (or any namespace) runs a DHCP client on `dev` (default eth0); `onLease` gets the lease. */
  dhcp(at: Endpoint & { dev?: string }, onLease?: (lease: DhcpLease) => void): TraceRecord {
    const ns = this.ns(at);
    const dev = at.dev ?? 'eth0';
    return this.capture((pkt) => startDhcpClient(ns, dev, (l) => onLease?.(l), pkt), `DHCPDISCOVER from ${at.host}/${at.ns ?? ''} ${dev}`);
  }

  /** Runs `fn` (which may send through the host APIs) and returns the trace of all it caused. */
  capture(fn: (pkt: number) => void, origin = 'capture'): TraceRecord {
    return this.record(() => fn(this.tracer.newPacket(origin)));
  }
}

function need(port: number | undefined, proto: string): number {
  if (port === undefined) throw new Error(`A ${proto} packet needs a destination port (dport)`);
  return port;
}
