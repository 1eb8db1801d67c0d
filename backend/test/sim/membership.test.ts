import { describe, expect, it } from 'vitest';
import type { Invariant } from '../../src/sim/checker';
import type { ScenarioName } from '../../src/sim/scenario';
import type { MembershipChangeKind } from '../../src/sim/membership';
import type { PlantedBug } from '../../src/sim/world';
import { DEFAULT_SIM_OPTIONS, formatViolations, runSeed } from '../../src/sim/world';

/**
 * Membership changes in the simulator (`SimOptions.membership`): nodes added, live ones drained and a
 * crashed one removed (its committed state taken over from storage), alongside the crashes; the
 * scenarios' own invariants and `placement` hold. A migration bug planted through the action context
 * (a hand-off that keeps a copy at the old owner, one that drops a unit) is caught.
 *
 * The workflow scenario found three bugs outside the simulator, fixed since: a step whose WrongOwner
 * answers ran out of retries during a change counted as failed; a `pl/await/` mark outlived the change
 * that set it; and a pinned workflow's late hand-off that overtook the hand-off announcing the pin left
 * the mark for good (seed 8).
 */
async function runMany(scenario: ScenarioName, from: number, count: number, plantedBug?: PlantedBug, membershipKinds?: readonly MembershipChangeKind[]) {
  const violations: string[] = [];
  const invariants = new Set<Invariant>();
  const changes: string[] = [];
  let kills = 0;
  let quietLeaves = 0;
  let broughtForward = 0;
  for (let seed = from; seed < from + count; seed++) {
    const r = await runSeed({
      ...DEFAULT_SIM_OPTIONS,
      seed,
      scenario,
      membership: true,
      ...(plantedBug !== undefined ? { plantedBug } : {}),
      ...(membershipKinds !== undefined ? { membershipKinds } : {}),
    });
    kills += r.kills;
    quietLeaves += r.quietLeaves;
    broughtForward += r.nodesBroughtForward;
    changes.push(...r.membershipChanges);
    for (const v of r.violations) invariants.add(v.invariant);
    violations.push(...formatViolations(r));
  }
  return { violations, invariants, changes, kills, quietLeaves, broughtForward };
}

describe('simulator: membership changes alongside crashes', () => {
  it('workflow: running workflows pinned and moved when done, 12 seeds (8: a late hand-off overtakes the pin): no violation', async () => {
    const t = await runMany('workflow', 1, 12);
    expect(t.violations).toEqual([]);
    expect(t.changes.length).toBeGreaterThan(12);
    // The control plane stopped half-way through some changes, and brought the nodes behind forward once started again.
    expect(t.broughtForward).toBeGreaterThan(0);
  });

  it('workflow seeds 1, 71 and 80 (once: a step stuck on a retired node; a late hand-off sent on by a stale view to a gone node; a compensation replayed at a new node), 21 (kv: a hand-off rolled back after its sender died)', async () => {
    for (const [scenario, seed] of [
      ['workflow', 1],
      ['workflow', 71],
      ['workflow', 80],
      ['kv', 21],
    ] as const) {
      const t = await runMany(scenario, seed, 1);
      expect(t.violations, `${scenario} seed ${seed}`).toEqual([]);
    }
  });

  it('kv: adds, drains and a crashed member removed, 16 seeds: no violation', async () => {
    const t = await runMany('kv', 1, 16);
    expect(t.violations).toEqual([]);
    const kinds = new Set(t.changes.map((c) => c.split(' ')[1]));
    // Every drain is followed by a retire: the drained node is stopped and the members inherit what is left of it.
    expect([...kinds].sort()).toEqual(['add', 'drain', 'remove-crashed', 'retire']);
    expect(t.kills).toBeGreaterThan(32);
    // Most drained nodes leave without a world-line; the others met a fault on the way and were removed as failures.
    expect(t.quietLeaves).toBeGreaterThan(0);
    expect(t.quietLeaves).toBeLessThanOrEqual(t.changes.filter((c) => c.includes(' retire ')).length);
  });

  it('workflow seed 2, durable, crashed members removed during the workload: a late hand-off on its way to a node that crashed and was removed is taken back by its sender, not lost', async () => {
    const r = await runSeed({
      ...DEFAULT_SIM_OPTIONS,
      seed: 2,
      scenario: 'workflow',
      mode: 'durable',
      membership: true,
      membershipKinds: ['add', 'drain', 'remove-crashed'],
    });
    expect(r.membershipChanges.filter((c) => c.includes(' remove-crashed ')).length).toBeGreaterThan(0);
    expect(formatViolations(r)).toEqual([]);
  });

  it('workflow seeds 71 and 60 (durable), crashed members removed during the workload: a node brought forward to its interrupted join is not given what an older change inherited', async () => {
    for (const [seed, mode] of [
      [71, 'speculative'],
      [60, 'durable'],
    ] as const) {
      const r = await runSeed({
        ...DEFAULT_SIM_OPTIONS,
        seed,
        scenario: 'workflow',
        mode,
        membership: true,
        membershipKinds: ['add', 'drain', 'remove-crashed'],
      });
      expect(r.nodesBroughtForward, `seed ${seed}`).toBeGreaterThan(0);
      expect(formatViolations(r), `seed ${seed}`).toEqual([]);
    }
  });

  it('without faults, a drained node leaves without a world-line: only a node removed after a crash starts one', async () => {
    let retires = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const r = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed, scenario: 'workflow', faults: false, membership: true });
      expect(formatViolations(r), `seed ${seed}`).toEqual([]);
      const count = (kind: string): number => r.membershipChanges.filter((c) => c.includes(` ${kind} `)).length;
      retires += count('retire');
      expect(r.quietLeaves, `seed ${seed}`).toBe(count('retire'));
      expect(r.worldLines, `seed ${seed}: ${r.membershipChanges.join(', ')}`).toBe(1 + count('remove-crashed'));
      expect(r.rollbacks, `seed ${seed}`).toBe(0);
    }
    expect(retires).toBeGreaterThan(3);
  });

  it('wal and broker, 6 seeds each: no violation', async () => {
    for (const scenario of ['wal', 'broker'] as const) {
      const t = await runMany(scenario, 1, 6);
      expect(t.violations, scenario).toEqual([]);
      expect(t.changes.length, scenario).toBeGreaterThan(6);
    }
  });

  // [bug, scenario, invariant, first seed, kinds of change]: 40 seeds from the first.
  const bugs: [PlantedBug, ScenarioName, Invariant, number, (readonly MembershipChangeKind[])?][] = [
    ['membership-handoff-keeps-copy', 'kv', 'kv-history', 1],
    ['membership-handoff-drops-unit', 'kv', 'kv-history', 1],
    ['membership-handoff-drops-unit', 'wal', 'wal-prefix', 1],
    // Needs a member removed after a crash, or a leave a fault turned into one, while a hand-off it sent is
    // not applied: rarer since drained nodes leave without a world-line (workflow seeds 84 and 146 of 150).
    ['membership-inherit-drops-unacknowledged', 'workflow', 'workflow-saga', 80, ['add', 'drain', 'remove-crashed']],
    ['membership-joiner-not-told-gone', 'workflow', 'workflow-saga', 1],
    ['membership-leave-before-commit', 'kv', 'kv-history', 1],
    // The control plane stops half-way through a change (15 % of changes) and, started again, leaves the nodes behind as they are.
    ['membership-interrupted-not-completed', 'kv', 'liveness', 1],
  ];
  for (const [bug, scenario, invariant, from, kinds] of bugs) {
    it(`catches the planted bug ${bug} with ${invariant} (${scenario})`, async () => {
      let found: Invariant[] = [];
      for (let seed = from; seed < from + 40 && !found.includes(invariant); seed++) found = [...(await runMany(scenario, seed, 1, bug, kinds)).invariants];
      expect(found).toContain(invariant);
    });
  }

  it('a seed with membership reproduces its run exactly', async () => {
    const a = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed: 9, scenario: 'kv', membership: true });
    const b = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed: 9, scenario: 'kv', membership: true });
    expect(a.membershipChanges.length).toBeGreaterThan(0);
    expect({ ...b, trace: b.trace.join('\n') }).toEqual({ ...a, trace: a.trace.join('\n') });
  });
});
