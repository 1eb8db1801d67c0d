import type { CutKind, Mode } from '@dse/shared';
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

describe('simulation with faults: every invariant holds', () => {
  // 4 × 150 = 600 seeds, each with at least 2 crashes, message loss, duplication, reordering and failing storage.
  const configs: [Mode, CutKind][] = [
    ['speculative', 'exact'],
    ['speculative', 'cheap'],
    ['durable', 'exact'],
    ['durable', 'cheap'],
  ];
  for (const [mode, cutKind] of configs) {
    it(`${mode} mode, ${cutKind} cut, 150 seeds`, async () => {
      const t = await runMany(1000, 150, { mode, cutKind });
      expect(t.violations).toEqual([]);
      // The faults really happened, and recovery really ran.
      expect(t.kills).toBeGreaterThanOrEqual(300);
      expect(t.rollbacks).toBeGreaterThan(300);
      expect(t.committed).toBeGreaterThan(t.requests / 2);
      expect(t.committed + t.rolledBack).toBe(t.requests);
    });
  }

  it('none mode without faults: everything commits', async () => {
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
      expect(r.committed + r.rolledBack).toBe(r.requests);
    });
  }
});

describe('the checker catches planted bugs', () => {
  // Each bug goes in through the same ports the real runtime uses (network, storage), not by editing the checker.
  const bugs: [PlantedBug, RegExp][] = [
    // The coordinator commits versions whose dependencies are not in the cut.
    ['cut-ignores-deps', /^cut-safety/],
    // Messages from a rolled-back world-line are applied: their effects outlive the rollback.
    ['no-world-line-check', /^no-orphans/],
    // Dedup tables are not persisted: a restored node applies resent messages again.
    ['no-dedup', /^exactly-once/],
  ];
  for (const [bug, expected] of bugs) {
    it(`planted bug: ${bug}`, async () => {
      const found: string[] = [];
      for (let seed = 1; seed <= 40 && !found.some((f) => expected.test(f)); seed++) {
        const r = await runSeed(opts(seed, { plantedBug: bug }));
        found.push(...r.violations.map((v) => `${v.invariant}: seed ${seed}: ${v.message}`));
      }
      expect(found.filter((f) => expected.test(f)).length).toBeGreaterThan(0);
    });
  }

  it('the same seeds without the bug are clean', async () => {
    const t = await runMany(1, 10, {});
    expect(t.violations).toEqual([]);
  });
});
