import { scenarioSuite } from './scenarios';

// The workflow service under the simulator: see backend/src/sim/scenarios/workflow.ts for its workload and invariant.
scenarioSuite('workflow', 'workflow-saga', ['workflow-unstable-step-keys', 'workflow-compensation-lost'], { speculative: 100, durable: 20 });
