import { scenarioSuite } from './scenarios';

// The wal service under the simulator: see backend/src/sim/scenarios/wal.ts for its workload and invariant.
scenarioSuite('wal', 'wal-prefix', ['wal-volatile-length', 'wal-committed-read-ignores-bound'], { speculative: 100, durable: 30 });
