// The server's side of the agents' RPC: serve the endpoints on the server's topics and
// push changes to the agents.

import { InProcessTransport } from '../../rpc/inproc.js';
import { SERVER_TOPICS } from '../../rpc/messages.js';
import type { Transport } from '../../rpc/transport.js';
import type { CorePlugin } from '../plugin.js';
import { serverEndpoints } from './endpoints.js';
import { AgentNotifier } from './notifier.js';
import { HostViews } from './views.js';
export { AgentNotifier, HostViews, serverEndpoints };

/** The server's RPC side, running: `idle` resolves once nothing waits to go out to the agents. */
export interface ServerRpc {
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/** Serve the server's endpoints on its topics and push changes to agents. */
export async function startServerRpc(p: CorePlugin, transport: Transport): Promise<ServerRpc> {
  // Answers are remembered between changes only when this server hears every change.
  const views = new HostViews(p, { remember: transport instanceof InProcessTransport });
  const notifier = new AgentNotifier(p, views, transport);
  const endpoints = serverEndpoints(p, views, notifier);
  const handlers = endpoints as unknown as Record<string, (args: any) => unknown>;
  const stops = [
    await transport.serve(SERVER_TOPICS.plugin, handlers),
    await transport.serve(SERVER_TOPICS.reports, { report_state: handlers.report_state }),
    await transport.serve(SERVER_TOPICS.l3, handlers),
  ];
  const off = p.events.on((e) => notifier.handle(e));
  return {
    idle: () => notifier.idle(),
    async stop() {
      off();
      notifier.close();
      for (const s of stops) await s();
    },
  };
}

