import { scenarioSuite } from './scenarios';

// The broker service under the simulator: see backend/src/sim/scenarios/broker.ts for its workload and invariant.
scenarioSuite('broker', 'broker-delivery', ['broker-volatile-offsets', 'broker-committed-poll-ignores-bound'], { speculative: 100, durable: 30 });
