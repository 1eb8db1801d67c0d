import type { CutKind, Mode, RecoveryKind } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { Invariant } from '../../src/sim/checker';
import type { ScenarioName } from '../../src/sim/scenario';
import type { PlantedBug, SimOptions } from '../../src/sim/world';
import { addResult, DEFAULT_SIM_OPTIONS, emptyTotals, formatViolations, runSeed } from '../../src/sim/world';

/** A seed sweep: seconds on an idle machine, minutes on a loaded one; the fast project's 30 s covers the rest. */
const SWEEP = { timeout: 120_000 };

async function runMany(scenario: ScenarioName, from: number, count: number, over: Partial<SimOptions>) {
  const totals = emptyTotals();
  const violations: string[] = [];
  const invariants = new Set<Invariant>();
  for (let seed = from; seed < from + count; seed++) {
    const r = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed, scenario, ...over });
    addResult(totals, r);
    for (const v of r.violations) invariants.add(v.invariant);
    if (r.violations.length > 0) violations.push(formatViolations(r).join('\n'));
  }
  return { ...totals, violations, invariants };
}

/**
 * The simulation tests of one service scenario: its invariants and the six generic ones hold with
 * faults on in speculative and durable mode and without faults in none mode; without persistence its
 * own checker reports the losses; and a bug planted in the service is caught by its own invariant.
 */
export function scenarioSuite(
  scenario: Exclude<ScenarioName, 'kvtest'>,
  invariant: Invariant,
  bugs: readonly PlantedBug[],
  seeds: { speculative: number; durable: number },
): void {
  describe(`scenario ${scenario}`, () => {
    const configs: [Mode, CutKind, RecoveryKind, number][] = [
      ['speculative', 'exact', 'precise', seeds.speculative],
      ['speculative', 'exact', 'cut', Math.ceil(seeds.speculative / 4)],
      ['durable', 'exact', 'precise', seeds.durable],
      ['speculative', 'cheap', 'precise', Math.ceil(seeds.speculative / 8)],
    ];
    for (const [mode, cutKind, recovery, count] of configs) {
      it(`${mode} mode, ${cutKind} cut, ${recovery} recovery, faults on, ${count} seeds: no violation`, SWEEP, async () => {
        const t = await runMany(scenario, 5000, count, { mode, cutKind, recovery });
        expect(t.violations).toEqual([]);
        // The faults really happened, and recovery really ran.
        expect(t.kills).toBeGreaterThanOrEqual(2 * count);
        expect(t.coordinatorRestarts).toBeGreaterThanOrEqual(count);
        expect(t.versionsRolledBack).toBeGreaterThan(0);
        expect(t.committed).toBeGreaterThan(t.requests / 2);
        expect(t.rolledBack).toBeGreaterThan(0);
      });
    }

    it('none mode without faults, 10 seeds: everything commits', async () => {
      const t = await runMany(scenario, 1, 10, { mode: 'none', faults: false });
      expect(t.violations).toEqual([]);
      expect(t.committed).toBe(t.requests);
    });

    it(`none mode with faults: ${invariant} reports the losses of running without persistence`, async () => {
      const t = await runMany(scenario, 1, 6, { mode: 'none' });
      expect(t.kills).toBeGreaterThan(0);
      expect([...t.invariants]).toContain(invariant);
    });

    for (const bug of bugs) {
      it(`catches the planted bug ${bug} with ${invariant}`, async () => {
        const found: string[] = [];
        for (let seed = 1; seed <= 40 && found.length === 0; seed++) {
          const r = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed, scenario, plantedBug: bug });
          found.push(...r.violations.filter((v) => v.invariant === invariant).map((v) => `seed ${seed}: ${v.message}`));
        }
        expect(found.length).toBeGreaterThan(0);
      });
    }

    it('a seed reproduces its run exactly', async () => {
      const a = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed: 77, scenario });
      const b = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed: 77, scenario });
      expect({ ...b, trace: b.trace.join('\n') }).toEqual({ ...a, trace: a.trace.join('\n') });
    });
  });
}
