import type { Scenario, ScenarioName } from '../scenario';
import { brokerScenario } from './broker';
import { kvScenario } from './kv';
import { kvtestScenario } from './kvtest';
import { walScenario } from './wal';
import { workflowScenario } from './workflow';

const SCENARIOS: Record<ScenarioName, Scenario> = {
  kvtest: kvtestScenario,
  wal: walScenario,
  kv: kvScenario,
  broker: brokerScenario,
  workflow: workflowScenario,
};

export function scenarioByName(name: ScenarioName): Scenario {
  return SCENARIOS[name];
}
