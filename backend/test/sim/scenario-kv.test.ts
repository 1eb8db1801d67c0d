import { scenarioSuite } from './scenarios';

// The kv service under the simulator: see backend/src/sim/scenarios/kv.ts for its workload and invariant.
scenarioSuite('kv', 'kv-history', ['kv-volatile-values', 'kv-cas-ignores-expected'], { speculative: 100, durable: 30 });
