import type { CutKind, Mode, RecoveryKind } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { PlantedBug, SimOptions, SimResult } from '../../src/sim/world';
import { addResult, DEFAULT_SIM_OPTIONS, emptyTotals, formatViolations, runSeed } from '../../src/sim/world';

function opts(seed: number, over: Partial<SimOptions> = {}): SimOptions {
  return { ...DEFAULT_SIM_OPTIONS, seed, ...over };
}

function describeViolations(r: SimResult): string {
  return formatViolations(r).join('\n');
}

async function runMany(from: number, count: number, over: Partial<SimOptions>) {
  const totals = emptyTotals();
  const violations: string[] = [];
  for (let seed = from; seed < from + count; seed++) {
    const r = await runSeed(opts(seed, over));
    addResult(totals, r);
    if (r.violations.length > 0) violations.push(describeViolations(r));
  }
  return { ...totals, violations };
}

/** A seed sweep: seconds on an idle machine, minutes on a loaded one; the fast project's 30 s covers the rest. */
const SWEEP = { timeout: 120_000 };

describe('simulation with faults: every invariant holds', () => {
  // 8 × 100 = 800 seeds, each with at least 2 node crashes and 1 coordinator crash, message loss,
  // duplication, reordering and failing storage.
  const configs: [Mode, CutKind, RecoveryKind][] = [];
  for (const mode of ['speculative', 'durable'] as const)
    for (const cutKind of ['exact', 'cheap'] as const) for (const recovery of ['precise', 'cut'] as const) configs.push([mode, cutKind, recovery]);
  for (const [mode, cutKind, recovery] of configs) {
    it(`${mode} mode, ${cutKind} cut, ${recovery} recovery, 100 seeds`, SWEEP, async () => {
      const t = await runMany(1000, 100, { mode, cutKind, recovery });
      expect(t.violations).toEqual([]);
      // The faults really happened, and recovery really ran.
      expect(t.kills).toBeGreaterThanOrEqual(200);
      expect(t.coordinatorRestarts).toBeGreaterThanOrEqual(100);
      expect(t.versionsRolledBack).toBeGreaterThan(100);
      expect(t.committed).toBeGreaterThan(t.requests / 2);
      expect(t.rolledBack).toBeGreaterThan(0);
      // Precise recovery keeps uncommitted versions that depend on nothing lost; recovery cut keeps none.
      if (recovery === 'precise') expect(t.versionsKept).toBeGreaterThan(100);
      else expect(t.versionsKept).toBe(0);
      if (recovery === 'cut' && mode === 'speculative') expect(t.rollbacks).toBeGreaterThan(200);
    });
  }

  it('precise recovery rolls back fewer requests and versions than recovery cut, on the same seeds', SWEEP, async () => {
    const precise = await runMany(2000, 40, { recovery: 'precise' });
    const cut = await runMany(2000, 40, { recovery: 'cut' });
    expect(precise.violations).toEqual([]);
    expect(cut.violations).toEqual([]);
    expect(precise.rolledBack).toBeLessThan(cut.rolledBack);
    expect(precise.versionsRolledBack).toBeLessThan(cut.versionsRolledBack);
  });

  it('none mode without faults: everything commits', SWEEP, async () => {
    const t = await runMany(1, 40, { mode: 'none', faults: false });
    expect(t.violations).toEqual([]);
    expect(t.committed).toBe(t.requests);
    expect(t.kills).toBe(0);
  });

  it('none mode with faults: the checker reports the losses of running without persistence', async () => {
    const t = await runMany(1, 20, { mode: 'none' });
    expect(t.kills).toBeGreaterThan(0);
    expect(t.violations.length).toBeGreaterThan(0);
    expect(t.violations.join('\n')).toMatch(/durability|exactly-once|no-orphans/);
  });
});

describe('determinism', () => {
  it('a seed reproduces its run exactly', async () => {
    const a = await runSeed(opts(4242));
    const b = await runSeed(opts(4242));
    const strip = (r: SimResult) => ({ ...r, trace: r.trace.join('\n') });
    expect(strip(b)).toEqual(strip(a));
    const c = await runSeed(opts(4243));
    expect(c.messages === a.messages && c.virtualMs === a.virtualMs).toBe(false);
  });
});

describe('regression seeds (each once broke an invariant)', () => {
  // seed, mode, cut, what it caught
  const cases: [number, Mode, CutKind, string][] = [
    [1, 'speculative', 'exact', 'a committed request past a rolled-back one was probed again and rolled back'],
    [3, 'speculative', 'exact', 'a request sent just before a world-line change was never probed: stuck forever'],
    [12, 'speculative', 'exact', 'probing stopped at a rolled-back request'],
    [22, 'speculative', 'exact', 'a rolled-back request left its effects'],
    [69, 'speculative', 'cheap', 'an ack named an open version that was then renumbered: the cheap cut skipped it'],
    [229, 'durable', 'cheap', 'the cheap cut committed past a version renumbered by a jump'],
  ];
  for (const [seed, mode, cutKind, what] of cases) {
    it(`seed ${seed} (${mode}, ${cutKind}): ${what}`, async () => {
      const r = await runSeed(opts(seed, { mode, cutKind }));
      expect(describeViolations(r)).toBe('');
      expect(r.committed).toBeGreaterThan(r.requests / 2);
    });
  }
});

describe('the checker catches planted bugs', () => {
  // Each bug goes in through the same ports the real runtime uses (network, storage), not by editing the checker.
  const bugs: [PlantedBug, RegExp, Partial<SimOptions>][] = [
    // The coordinator commits versions whose dependencies are not in the cut.
    ['cut-ignores-deps', /^cut-safety/, {}],
    // Messages from a rolled-back world-line are applied: their effects outlive the rollback.
    ['no-world-line-check', /^no-orphans/, {}],
    // Dedup tables are not persisted: a restored node applies resent messages again.
    ['no-dedup', /^(exactly-once|internal)/, {}],
    // A new world-line announced before it is saved: a coordinator crash loses it, and it starts twice.
    ['announce-before-save', /^cut-safety/, {}],
    // Pruning below a cut that storage does not hold: a restarted coordinator starts below the announced cut.
    ['prune-before-save', /^cut-safety/, {}],
    // A restarted coordinator trusting its saved cut instead of rebuilding from the rows.
    ['restart-trusts-saved-cut', /^cut-safety/, {}],
    // Durable mode releasing messages before their version is persisted.
    ['durable-early-release', /^durable-sync/, { mode: 'durable' }],
    // A repeated request answered with a null result.
    ['duplicate-null-answer', /^kv-history/, {}],
    // A session taking its answers as survived without a probe.
    ['survive-without-probe', /^(durability|no-orphans|kv-history)/, {}],
  ];
  for (const [bug, expected, over] of bugs) {
    it(`planted bug: ${bug}`, async () => {
      const found: string[] = [];
      for (let seed = 1; seed <= 40 && !found.some((f) => expected.test(f)); seed++) {
        const r = await runSeed(opts(seed, { ...over, plantedBug: bug }));
        found.push(...r.violations.map((v) => `${v.invariant}: seed ${seed}: ${v.message}`));
      }
      expect(found.filter((f) => expected.test(f)).length).toBeGreaterThan(0);
    });
  }

  it('the same seeds without the bug are clean', async () => {
    const t = await runMany(1, 10, {});
    expect(t.violations).toEqual([]);
    const d = await runMany(1, 10, { mode: 'durable' });
    expect(d.violations).toEqual([]);
  });
});
