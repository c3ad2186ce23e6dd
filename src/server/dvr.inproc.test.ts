import { InProcessBus } from '../rpc/inproc.js';
import { dvrScenarioSuite } from './dvr.case.js';

dvrScenarioSuite('the in-process bus', async () => {
  const bus = new InProcessBus();
  const server = bus.transport();
  const agents = bus.transport();
  return { server, agents, close: async () => (await server.close(), await agents.close()) };
});
