// The OVS flow-table model as the vswitch uses it. The model lives in ovs/ (its own
// session's work); this is the one place that constructs it, so the rest of the host does
// not depend on its internals.

import type { Frame } from './packet.js';

export interface OvsOutput {
  port: string;
  frame: Frame;
  tunId?: number | bigint;
}

export interface OvsProcessResult {
  outputs: OvsOutput[];
  steps: unknown[];
}

export interface OvsBridgeModel {
  addPort(name: string, opts: { tag?: number; ofport?: number }): unknown;
  delPort(name: string): unknown;
  setPortTag?(name: string, tag: number | undefined): unknown;
  addFlows(texts: string[]): unknown;
  delFlows(spec: string): unknown;
  replaceFlowsByCookie?(cookie: string | bigint, texts: string[]): unknown;
  dumpFlows(): unknown;
  process(frame: Frame, inPort: string, opts: { tunId?: number | bigint }): OvsProcessResult;
}

let factory: ((name: string) => OvsBridgeModel) | undefined;

/** Installs the OVS model's constructor (done by the module that imports ovs/). */
export function setOvsBridgeFactory(f: (name: string) => OvsBridgeModel): void {
  factory = f;
}

export function createOvsBridge(name: string): OvsBridgeModel {
  if (!factory) throw new Error(`Cannot create OVS bridge '${name}': no OVS model installed`);
  return factory(name);
}
