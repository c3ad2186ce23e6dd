import { AmqpTransport } from '../rpc/amqp.js';
import { dvrScenarioSuite } from './dvr.case.js';

// CI starts RabbitMQ and sets DVRNET_TEST_AMQP (see .ci/run).
const url = process.env.DVRNET_TEST_AMQP;
dvrScenarioSuite(
  'RabbitMQ',
  async () => {
    const exchange = `dvrnet_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    const quiet = { url: url!, exchange, log: () => {}, onHandlerError: () => {} };
    const server = new AmqpTransport(quiet);
    const agents = new AmqpTransport(quiet);
    return { server, agents, close: async () => (await server.close(), await agents.close()) };
  },
  { skip: url ? undefined : 'DVRNET_TEST_AMQP is not set' },
);
