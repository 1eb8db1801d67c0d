import type { Mode } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { ScenarioName } from '../../src/sim/scenario';
import { SCENARIO_NAMES } from '../../src/sim/scenario';
import type { PlantedBug, SimOptions } from '../../src/sim/world';
import { addResult, DEFAULT_SIM_OPTIONS, emptyTotals, formatViolations, runSeed } from '../../src/sim/world';

async function runMany(from: number, count: number, over: Partial<SimOptions>) {
  const totals = emptyTotals();
  const violations: string[] = [];
  for (let seed = from; seed < from + count; seed++) {
    const r = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed, ...over });
    addResult(totals, r);
    if (r.violations.length > 0) violations.push(formatViolations(r).join('\n'));
  }
  return { ...totals, violations };
}

/** Issue 20, item 1: the simulator and its checker at more nodes than the default four. */
describe('the simulator at 16 nodes', () => {
  for (const mode of ['speculative', 'durable'] as Mode[]) {
    it(`kvtest, ${mode} mode, faults on, 6 seeds: no violation`, async () => {
      const t = await runMany(7000, 6, { nodes: 16, mode });
      expect(t.violations).toEqual([]);
      // The faults really happened, and the work was spread and committed.
      expect(t.kills).toBeGreaterThanOrEqual(12);
      expect(t.coordinatorRestarts).toBeGreaterThanOrEqual(6);
      expect(t.committed).toBeGreaterThan(t.requests / 2);
    }, 120_000);
  }

  for (const scenario of SCENARIO_NAMES.filter((s): s is Exclude<ScenarioName, 'kvtest'> => s !== 'kvtest')) {
    it(`${scenario} scenario, faults on, 2 seeds: no violation`, async () => {
      const t = await runMany(7100, 2, { nodes: 16, scenario });
      expect(t.violations).toEqual([]);
      expect(t.kills).toBeGreaterThanOrEqual(4);
      expect(t.committed).toBeGreaterThan(0);
    }, 120_000);
  }

  it('membership changes (kv scenario), 2 seeds: no violation', async () => {
    const t = await runMany(7200, 2, { nodes: 16, scenario: 'kv', membership: true });
    expect(t.violations).toEqual([]);
    expect(t.membershipChanges).toBeGreaterThan(0);
  }, 120_000);

  // Bugs planted through the ports, as in simulation.test.ts: the checker must still see them among 16 nodes.
  const bugs: [PlantedBug, RegExp, Partial<SimOptions>][] = [
    ['cut-ignores-deps', /^cut-safety/, {}],
    ['no-world-line-check', /^no-orphans/, {}],
    ['durable-early-release', /^durable-sync/, { mode: 'durable' }],
  ];
  for (const [bug, expected, over] of bugs) {
    it(`catches the planted bug ${bug}`, async () => {
      const found: string[] = [];
      for (let seed = 1; seed <= 40 && !found.some((f) => expected.test(f)); seed++) {
        const r = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed, nodes: 16, ...over, plantedBug: bug });
        found.push(...r.violations.map((v) => `${v.invariant}: seed ${seed}: ${v.message}`));
      }
      expect(found.filter((f) => expected.test(f)).length).toBeGreaterThan(0);
    }, 120_000);
  }
});

describe('the simulator at 256 nodes', () => {
  it('kvtest, faults on, 1 seed: no violation', async () => {
    const r = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed: 7300, nodes: 256 });
    expect(formatViolations(r)).toEqual([]);
    expect(r.kills).toBeGreaterThanOrEqual(2);
    expect(r.committed).toBeGreaterThan(r.requests / 2);
  }, 120_000);
});
