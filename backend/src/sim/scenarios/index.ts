import type { Scenario, ScenarioName } from '../scenario';
import { brokerScenario } from './broker';
import { kvScenario } from './kv';
import { kvtestScenario } from './kvtest';
import { walScenario } from './wal';

const SCENARIOS: Partial<Record<ScenarioName, Scenario>> = {
  kvtest: kvtestScenario,
  wal: walScenario,
  kv: kvScenario,
  broker: brokerScenario,
};

export function scenarioByName(name: ScenarioName): Scenario {
  const s = SCENARIOS[name];
  if (s === undefined) throw new Error(`no scenario named ${name}`);
  return s;
}
