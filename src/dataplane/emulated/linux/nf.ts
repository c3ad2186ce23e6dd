// What the Linux model needs from netfilter (src/dataplane/emulated/netfilter/ implements
// it): run one hook over a frame with the interfaces the kernel would pass (in/out devices,
// and for bridged packets the bridge ports as physdev), and say what became of it. The
// skb state that links the hooks of one packet inside a namespace (conntrack attachment,
// mark) travels in `Frame.meta` and is scrubbed when the frame leaves through a device.

import type { Frame } from '../packet.js';
import type { NfContext, NfHook, NfResult } from '../netfilter/types.js';

export type HookName = NfHook;
export type HookContext = NfContext;

export interface NetfilterLike {
  hook(name: NfHook, frame: Frame, ctx: NfContext): NfResult;
}
