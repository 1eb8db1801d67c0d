import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Deps, InspectionEvent, NodeId, NumberedEvent } from '@dse/shared';
import { PlaygroundModel, versionKey, worldLineCause } from '../src/model/model';
import { dependencyIndex, explainRollback, killPreview, resolveVersion } from '../src/model/analysis';
import { parseTrace } from '../src/model/trace';
import { summarize } from '../src/views/EventTable';

type E = InspectionEvent;
const ev = <T extends E['type']>(type: T, t: number, rest: Omit<Extract<E, { type: T }>, 'type' | 't'>): E => ({ type, t, ...rest }) as unknown as E;
const k = (node: NodeId, worldLine: number, version: number): string => versionKey(node, worldLine, version);

/** Versions 1..`open` of one node on world-line 1: each closed and checkpointed but the open one; `persisted` of them written. */
function lane(node: NodeId, open: number, persisted: number, deps: Record<number, Deps>, t0: number): E[] {
  const out: E[] = [];
  for (let v = 1; v <= open; v++) {
    const t = t0 + v * 10;
    const on = deps[v];
    out.push(ev('versionOpened', t, { node, worldLine: 1, version: v, prevVersion: v - 1 }));
    if (on !== undefined) out.push(ev('dependencyRecorded', t + 1, { node, version: v, on }));
    if (v === open) break;
    out.push(ev('checkpointStarted', t + 9, { node, worldLine: 1, version: v, prevVersion: v - 1, deps: on ?? {}, changedKeys: 1, full: false }));
    if (v <= persisted) out.push(ev('checkpointPersisted', t + 9.5, { node, worldLine: 1, version: v, deps: on ?? {} }));
  }
  return out;
}

/**
 * Four nodes, cut at v1 everywhere. a has persisted up to v3, v4 is only in its memory (and v5 open).
 * b's v4 depends on a v4, c's v4 on b v4. d depends on nothing and has v3 open. a dies; precise
 * recovery keeps everything that does not reach a v4: a, b and c up to v3, d with its open v3.
 */
function beforeFailure(): E[] {
  return [
    ev('worldLineChanged', 0, {
      worldLine: 1,
      cut: { a: 0, b: 0, c: 0, d: 0 },
      failed: [],
      kept: { a: 0, b: 0, c: 0, d: 0 },
      reason: 'start',
      recovery: 'precise',
    }),
    ...lane('a', 5, 3, {}, 0),
    ...lane('b', 5, 3, { 4: { a: 4 } }, 1),
    ...lane('c', 5, 3, { 4: { b: 4 } }, 2),
    ...lane('d', 3, 2, {}, 3),
    ev('cutAdvanced', 60, { worldLine: 1, cut: { a: 1, b: 1, c: 1, d: 1 } }),
  ];
}

const FAILURE: E[] = [
  ev('nodeFailed', 70, { node: 'a', reason: 'killed' }),
  ev('worldLineChanged', 71, {
    worldLine: 2,
    cut: { a: 1, b: 1, c: 1, d: 1 },
    failed: ['a'],
    kept: { a: 3, b: 3, c: 3, d: 3 },
    reason: 'failure',
    recovery: 'precise',
  }),
];

const PLAN: E = ev('recoveryPlan', 71, {
  worldLine: 2,
  recovery: 'precise',
  lost: [{ node: 'a', version: 3 }],
  rolledBack: [
    { node: 'a', above: 3, versions: [], reason: 'lost', path: [] },
    {
      node: 'b',
      above: 3,
      versions: [4, 5],
      reason: 'dependency',
      path: [
        { node: 'b', version: 4 },
        { node: 'a', version: 4 },
      ],
    },
    {
      node: 'c',
      above: 3,
      versions: [4, 5],
      reason: 'dependency',
      path: [
        { node: 'c', version: 4 },
        { node: 'b', version: 4 },
        { node: 'a', version: 4 },
      ],
    },
  ],
  kept: [
    { node: 'a', version: 2 },
    { node: 'a', version: 3 },
    { node: 'b', version: 2 },
    { node: 'b', version: 3 },
    { node: 'c', version: 2 },
    { node: 'c', version: 3 },
    { node: 'd', version: 2 },
    { node: 'd', version: 3 },
  ],
});

const AFTER: E[] = [
  ev('rollback', 72, { node: 'b', worldLine: 2, toVersion: 3, discarded: { from: 4, to: 5 } }),
  ev('versionOpened', 72, { node: 'b', worldLine: 2, version: 4, prevVersion: 3 }),
  ev('rollback', 73, { node: 'c', worldLine: 2, toVersion: 3, discarded: { from: 4, to: 5 } }),
  ev('versionOpened', 73, { node: 'c', worldLine: 2, version: 4, prevVersion: 3 }),
  // d keeps its open version: no new version; it goes on in v3 and closes it under world-line 2.
  ev('rollback', 74, { node: 'd', worldLine: 2, toVersion: 3, discarded: null }),
  ev('dependencyRecorded', 75, { node: 'd', version: 3, on: { c: 3 } }),
  ev('checkpointStarted', 76, { node: 'd', worldLine: 2, version: 3, prevVersion: 2, deps: { c: 3 }, changedKeys: 1, full: false }),
  ev('versionOpened', 76, { node: 'd', worldLine: 2, version: 4, prevVersion: 3 }),
  // d's kept v3 is written under world-line 2.
  ev('checkpointPersisted', 77, { node: 'd', worldLine: 2, version: 3, deps: { c: 3 } }),
  ev('nodeRestarted', 78, { node: 'a' }),
  ev('rollback', 79, { node: 'a', worldLine: 2, toVersion: 3, discarded: null }),
  ev('versionOpened', 79, { node: 'a', worldLine: 2, version: 4, prevVersion: 3 }),
];

const state = (m: PlaygroundModel, key: string): string | undefined => m.versions.get(key)?.state;

describe('precise recovery in the model', () => {
  it('keeps versions above the cut up to each restore point, a failed node’s persisted ones too', () => {
    const m = new PlaygroundModel();
    m.applyAll([...beforeFailure(), ...FAILURE, PLAN, ...AFTER]);
    // Lost with a: only what it had not persisted.
    expect(state(m, k('a', 1, 4))).toBe('rolled-back');
    expect(state(m, k('a', 1, 5))).toBe('rolled-back');
    for (const key of [k('a', 1, 2), k('a', 1, 3), k('b', 1, 2), k('b', 1, 3), k('c', 1, 2), k('c', 1, 3), k('d', 1, 2), k('d', 1, 3)]) {
      expect(state(m, key), key).not.toBe('rolled-back');
      expect(m.versions.get(key)?.keptBy, key).toBe(2);
    }
    for (const key of [k('b', 1, 4), k('b', 1, 5), k('c', 1, 4), k('c', 1, 5)]) {
      expect(state(m, key), key).toBe('rolled-back');
      expect(m.versions.get(key)?.rolledBackBy, key).toBe(2);
    }
    // The kept open version goes on under world-line 2 as the same version, not a second copy.
    expect(m.versions.has(k('d', 2, 3))).toBe(false);
    const d3 = m.versions.get(k('d', 1, 3))!;
    expect(d3.deps).toEqual({ c: 3 });
    expect(d3.persistedAt).toBe(77);
    const rec = m.rollbacks.find((r) => r.worldLine === 2)!;
    expect(rec.roots.sort()).toEqual([k('a', 1, 4), k('a', 1, 5)]);
    expect(rec.discarded.sort()).toEqual([k('a', 1, 4), k('a', 1, 5), k('b', 1, 4), k('b', 1, 5), k('c', 1, 4), k('c', 1, 5)]);
    expect(rec.kept).toHaveLength(8);
    expect(rec.reason).toBe('failure');
    expect(rec.recovery).toBe('precise');

    // Kept versions commit later, on the new world-line's cut.
    m.apply(ev('cutAdvanced', 80, { worldLine: 2, cut: { a: 3, b: 3, c: 3, d: 3 } }));
    for (const key of [k('a', 1, 3), k('b', 1, 3), k('c', 1, 3), k('d', 1, 3)]) expect(state(m, key), key).toBe('committed');
    expect(state(m, k('b', 1, 4))).toBe('rolled-back');
  });

  it('leaves alone an empty open version above the restore point when the node discarded nothing', () => {
    // d did nothing in its open v3, so the recovery did not count it; d keeps it as it is.
    const plan: E = { ...PLAN, kept: (PLAN as Extract<E, { type: 'recoveryPlan' }>).kept.filter((r) => r.node !== 'd' || r.version < 3) } as E;
    const m = new PlaygroundModel();
    m.applyAll([...beforeFailure(), ...FAILURE, plan, ev('rollback', 74, { node: 'd', worldLine: 2, toVersion: 2, discarded: null })]);
    expect(state(m, k('d', 1, 3))).toBe('speculative');
    expect(m.versions.get(k('d', 1, 3))?.keptBy).toBeNull();
    expect(m.nodes.get('d')?.version).toBe(3);
    m.apply(ev('checkpointStarted', 75, { node: 'd', worldLine: 2, version: 3, prevVersion: 2, deps: {}, changedKeys: 0, full: false }));
    expect(state(m, k('d', 1, 3))).toBe('persisting');
    expect(m.versions.has(k('d', 2, 3))).toBe(false);
  });

  it('explains each rolled-back version from the plan: the lost one, the path, the prefix', () => {
    const m = new PlaygroundModel();
    m.applyAll([...beforeFailure(), ...FAILURE, PLAN, ...AFTER]);
    const x = explainRollback(
      m,
      dependencyIndex(m),
      m.rollbacks.find((r) => r.worldLine === 2)!,
    );
    const step = (key: string) => x.steps.find((s) => s.key === key)!;
    // Causal order: by hops from the lost state, then by when each version opened.
    expect(x.steps.map((s) => s.key)).toEqual([k('a', 1, 4), k('a', 1, 5), k('b', 1, 4), k('c', 1, 4), k('b', 1, 5), k('c', 1, 5)]);
    expect(step(k('a', 1, 4))).toMatchObject({ cause: 'lost', depth: 0, because: null, reason: 'lost: not persisted when its node failed' });
    expect(step(k('b', 1, 4))).toMatchObject({ cause: 'dependency', depth: 1, because: k('a', 1, 4) });
    expect(step(k('c', 1, 4))).toMatchObject({ cause: 'dependency', depth: 2, because: k('b', 1, 4) });
    // The path is the plan's, not one derived from the dependency graph.
    const plan = PLAN as Extract<E, { type: 'recoveryPlan' }>;
    expect(step(k('c', 1, 4)).path).toEqual(plan.rolledBack[2]!.path);
    expect(step(k('c', 1, 4)).reason).toBe('depends on a v4, which was lost: c v4 → b v4 → a v4');
    // A later version follows the node's first one: the same path, one step longer.
    expect(step(k('c', 1, 5))).toMatchObject({
      cause: 'dependency',
      depth: 3,
      because: k('c', 1, 4),
      path: [{ node: 'c', version: 5 }, ...plan.rolledBack[2]!.path],
    });
    expect(step(k('c', 1, 5)).reason).toBe('depends on a v4, which was lost: c v5 → c v4 → b v4 → a v4');
    expect(x.why).toEqual(
      expect.arrayContaining([
        { from: k('b', 1, 4), to: k('a', 1, 4), kind: 'node' },
        { from: k('c', 1, 4), to: k('b', 1, 4), kind: 'node' },
        { from: k('b', 1, 5), to: k('b', 1, 4), kind: 'prefix' },
        { from: k('c', 1, 5), to: k('c', 1, 4), kind: 'prefix' },
      ]),
    );
    expect(x.why).toHaveLength(4);
    expect(x.kept).toContain(k('d', 1, 3));
    expect(x.kept).not.toContain(k('b', 1, 4));
  });

  it('follows the plan’s path even where the recorded dependencies would say otherwise', () => {
    // The page saw c v4 depend on b v4; the coordinator's plan (which knows the open version's
    // dependencies at recovery) names d v4's lost state instead. The plan wins.
    const plan: E = {
      ...PLAN,
      rolledBack: [
        (PLAN as Extract<E, { type: 'recoveryPlan' }>).rolledBack[0]!,
        {
          node: 'c',
          above: 3,
          versions: [4, 5],
          reason: 'dependency',
          path: [
            { node: 'c', version: 4 },
            { node: 'a', version: 5 },
          ],
        },
      ],
    } as E;
    const m = new PlaygroundModel();
    m.applyAll([...beforeFailure(), ...FAILURE, plan, ...AFTER.slice(2, 4)]);
    const x = explainRollback(
      m,
      dependencyIndex(m),
      m.rollbacks.find((r) => r.worldLine === 2)!,
    );
    const c4 = x.steps.find((s) => s.key === k('c', 1, 4))!;
    expect(c4).toMatchObject({ because: k('a', 1, 5), depth: 1, reason: 'depends on a v5, which was lost: c v4 → a v5' });
    expect(x.why).toEqual([
      { from: k('c', 1, 4), to: k('a', 1, 5), kind: 'node' },
      { from: k('c', 1, 5), to: k('c', 1, 4), kind: 'prefix' },
    ]);
  });

  it('rolls back a version the plan did not know with the first one it names', () => {
    // The coordinator knew only b v5 (say b v4 was never reported): b restores to v3, and its plan
    // path starts at v5. b v4 goes too, but not because it follows v5.
    const rolled = {
      node: 'b',
      above: 3,
      versions: [5],
      reason: 'dependency' as const,
      path: [
        { node: 'b', version: 5 },
        { node: 'a', version: 5 },
      ],
    };
    const plan: E = { ...PLAN, rolledBack: [(PLAN as Extract<E, { type: 'recoveryPlan' }>).rolledBack[0]!, rolled] } as E;
    const m = new PlaygroundModel();
    m.applyAll([...beforeFailure(), ...FAILURE, plan, AFTER[0]!]);
    const x = explainRollback(
      m,
      dependencyIndex(m),
      m.rollbacks.find((r) => r.worldLine === 2)!,
    );
    const b4 = x.steps.find((s) => s.key === k('b', 1, 4))!;
    const b5 = x.steps.find((s) => s.key === k('b', 1, 5))!;
    expect(b5).toMatchObject({ because: k('a', 1, 5), depth: 1, path: rolled.path });
    expect(b4).toMatchObject({ cause: 'dependency', because: null, depth: 1, path: rolled.path });
    expect(b4.reason).toBe("above b's restore point v3, which the recovery put below b v5: that version depends on a v5, which was lost: b v5 → a v5");
    expect(x.why).toEqual([{ from: k('b', 1, 5), to: k('a', 1, 5), kind: 'node' }]);
  });

  it('explains a rollback carried out under a later world-line by the plan that asked for it', () => {
    // d dies before b heard of world-line 2: b rolls back once, under world-line 3, to the restore
    // point of world-line 2's plan; world-line 3's plan names only d.
    const m = new PlaygroundModel();
    m.applyAll([
      ...beforeFailure(),
      ...FAILURE,
      PLAN,
      ev('nodeFailed', 72, { node: 'd', reason: 'killed' }),
      ev('worldLineChanged', 73, {
        worldLine: 3,
        cut: { a: 1, b: 1, c: 1, d: 1 },
        failed: ['d'],
        kept: { a: 3, b: 3, c: 3, d: 2 },
        reason: 'failure',
        recovery: 'precise',
      }),
      ev('recoveryPlan', 73, {
        worldLine: 3,
        recovery: 'precise',
        lost: [{ node: 'd', version: 2 }],
        rolledBack: [{ node: 'd', above: 2, versions: [], reason: 'lost', path: [] }],
        kept: [{ node: 'd', version: 2 }],
      }),
      ev('rollback', 74, { node: 'b', worldLine: 3, toVersion: 3, discarded: { from: 4, to: 5 } }),
    ]);
    const x = explainRollback(
      m,
      dependencyIndex(m),
      m.rollbacks.find((r) => r.worldLine === 3)!,
    );
    expect(x.steps.map((s) => [s.key, s.cause])).toEqual([
      [k('d', 1, 3), 'lost'],
      [k('b', 1, 4), 'dependency'],
      [k('b', 1, 5), 'dependency'],
    ]);
    const b4 = x.steps[1]!;
    expect(b4.because).toBe(k('a', 1, 4));
    expect(b4.reason).toBe('depends on a v4, which was lost: b v4 → a v4 (the plan of world-line 2, carried out late)');
  });

  it('with recovery cut, names the nodes the plan does not list as rolled back by the cut', () => {
    const m = new PlaygroundModel();
    m.applyAll([
      ...beforeFailure(),
      ev('nodeFailed', 70, { node: 'a', reason: 'killed' }),
      ev('worldLineChanged', 71, {
        worldLine: 2,
        cut: { a: 1, b: 1, c: 1, d: 1 },
        failed: ['a'],
        kept: { a: 1, b: 1, c: 1, d: 1 },
        reason: 'failure',
        recovery: 'cut',
      }),
      ev('recoveryPlan', 71, {
        worldLine: 2,
        recovery: 'cut',
        lost: [{ node: 'a', version: 1 }],
        rolledBack: [{ node: 'a', above: 1, versions: [], reason: 'lost', path: [] }],
        kept: [],
      }),
      ev('rollback', 72, { node: 'd', worldLine: 2, toVersion: 1, discarded: { from: 2, to: 3 } }),
    ]);
    const x = explainRollback(
      m,
      dependencyIndex(m),
      m.rollbacks.find((r) => r.worldLine === 2)!,
    );
    const byKey = new Map(x.steps.map((s) => [s.key, s]));
    expect(byKey.get(k('a', 1, 2))).toMatchObject({ cause: 'lost', reason: 'lost with its failed node: recovery cut restores the node to the cut' });
    expect(byKey.get(k('a', 1, 4))).toMatchObject({ cause: 'lost', reason: 'lost: not persisted when its node failed' });
    expect(byKey.get(k('d', 1, 3))).toMatchObject({ cause: 'cut', depth: null, reason: 'recovery cut: everything uncommitted rolls back' });
    expect(state(m, k('a', 1, 2))).toBe('rolled-back');
    expect(x.kept).toEqual([]);
  });

  it('says so when a precise plan does not name a node that rolled back', () => {
    // d's restore point is its v2, but the plan lists nothing of d (the coordinator did not know its v3).
    const m = new PlaygroundModel();
    m.applyAll([
      ...beforeFailure(),
      ev('nodeFailed', 70, { node: 'a', reason: 'killed' }),
      ev('worldLineChanged', 71, {
        worldLine: 2,
        cut: { a: 1, b: 1, c: 1, d: 1 },
        failed: ['a'],
        kept: { a: 3, b: 3, c: 3, d: 2 },
        reason: 'failure',
        recovery: 'precise',
      }),
      { ...PLAN, kept: (PLAN as Extract<E, { type: 'recoveryPlan' }>).kept.filter((r) => r.node !== 'd') } as E,
      ev('rollback', 72, { node: 'd', worldLine: 2, toVersion: 2, discarded: { from: 3, to: 3 } }),
    ]);
    const x = explainRollback(
      m,
      dependencyIndex(m),
      m.rollbacks.find((r) => r.worldLine === 2)!,
    );
    expect(x.steps.find((s) => s.key === k('d', 1, 3))).toMatchObject({
      cause: 'unexplained',
      depth: null,
      reason: "above d's restore point v2; the recovery plan gives no reason (the coordinator did not know of this version)",
    });
  });

  it('falls back to the dependency graph for traces without plans', () => {
    const m = new PlaygroundModel();
    m.applyAll([...beforeFailure(), ...FAILURE, ...AFTER]);
    const rec = m.rollbacks.find((r) => r.worldLine === 2)!;
    expect(rec.plan).toBeNull();
    const x = explainRollback(m, dependencyIndex(m), rec);
    expect(x.steps.find((s) => s.key === k('c', 1, 4))).toMatchObject({ cause: 'dependency', because: k('b', 1, 4), depth: 2, path: [] });
  });

  it('previews a kill by the recovery kind: precise loses only the unpersisted versions', () => {
    const m = new PlaygroundModel();
    m.applyAll(beforeFailure());
    const idx = dependencyIndex(m);
    const p = killPreview(m, idx, 'a');
    expect(p.kind).toBe('precise');
    expect(p.lost.sort()).toEqual([k('a', 1, 4), k('a', 1, 5)]);
    expect(p.dependent.sort()).toEqual([k('b', 1, 4), k('b', 1, 5), k('c', 1, 4), k('c', 1, 5)]);
    // Kept by precise recovery: a's own persisted versions among them.
    expect(p.collateral.sort()).toEqual([k('a', 1, 2), k('a', 1, 3), k('b', 1, 2), k('b', 1, 3), k('c', 1, 2), k('c', 1, 3), k('d', 1, 2), k('d', 1, 3)]);
    // The cluster's setting decides (it applies from the next recovery).
    m.config = { recovery: 'cut' } as PlaygroundModel['config'];
    const q = killPreview(m, idx, 'a');
    expect(q.kind).toBe('cut');
    expect(q.lost.sort()).toEqual([k('a', 1, 2), k('a', 1, 3), k('a', 1, 4), k('a', 1, 5)]);
    expect(q.collateral.sort()).toEqual([k('b', 1, 2), k('b', 1, 3), k('c', 1, 2), k('c', 1, 3), k('d', 1, 2), k('d', 1, 3)]);
  });
});

describe('a precise recovery the simulator recorded', () => {
  // Seed 5, recovery precise, 3 nodes, 3 sessions of 8 requests, no coordinator crashes: n2 dies with
  // its persisted v5 kept and n1, n3 depending on its lost v6; then n3 dies before it rolled back.
  const events = JSON.parse(readFileSync(new URL('./fixtures/sim-precise-seed5.json', import.meta.url), 'utf8')) as E[];
  const plans = events.filter((e): e is Extract<E, { type: 'recoveryPlan' }> => e.type === 'recoveryPlan');

  it('keeps what each plan kept, rolls back what it rolled back, and never doubles a version', () => {
    const m = new PlaygroundModel();
    m.applyAll(events);
    expect(plans.length).toBeGreaterThan(0);
    let kept = 0;
    for (const p of plans) {
      for (const r of p.kept) {
        const v = resolveVersion(m, r.node, r.version, p.worldLine - 1);
        expect(v, `${r.node} v${r.version}`).toBeDefined();
        expect(v!.rolledBackBy === p.worldLine, v!.key).toBe(false);
        kept++;
      }
      for (const rb of p.rolledBack) {
        for (const version of rb.versions) expect(resolveVersion(m, rb.node, version, p.worldLine - 1)?.state).toBe('rolled-back');
      }
    }
    expect(kept).toBeGreaterThan(0);
    const live = new Set<string>();
    for (const v of m.versions.values()) {
      if (v.state === 'rolled-back') continue;
      expect(live.has(`${v.node}|${v.version}`), v.key).toBe(false);
      live.add(`${v.node}|${v.version}`);
      if (v.state === 'committed') expect(v.version).toBeLessThanOrEqual(m.cut[v.node] ?? 0);
      // Only versions a recovery kept outlive their world-line uncommitted.
      else if (v.worldLine < m.worldLine) expect(v.keptBy, v.key).not.toBeNull();
    }
  });

  it('explains every discard from a plan, each dependency ending at lost state', () => {
    const m = new PlaygroundModel();
    m.applyAll(events);
    const idx = dependencyIndex(m);
    let paths = 0;
    for (const rec of m.rollbacks) {
      const x = explainRollback(m, idx, rec);
      expect(x.steps).toHaveLength(rec.discarded.length);
      const pos = new Map(x.steps.map((s, i) => [s.key, i]));
      for (const s of x.steps) {
        expect(s.cause, s.key).not.toBe('unexplained');
        if (s.because !== null && pos.has(s.because)) expect(pos.get(s.because)!).toBeLessThan(pos.get(s.key)!);
        if (s.path.length === 0) continue;
        paths++;
        const end = s.path.at(-1)!;
        expect(rec.plan!.lost.some((l) => l.node === end.node && l.version < end.version)).toBe(true);
      }
    }
    expect(paths).toBeGreaterThan(0);
  });
});

describe('world-lines with their reasons', () => {
  it('labels each world-line by why it started and keeps the recovery kind', () => {
    const m = new PlaygroundModel();
    m.applyAll([
      ...beforeFailure(),
      ...FAILURE,
      ev('worldLineChanged', 90, {
        worldLine: 3,
        cut: { a: 1, b: 1, c: 1, d: 1 },
        failed: [],
        kept: { a: 3, b: 3, c: 3, d: 3 },
        reason: 'coordinatorRestart',
        recovery: 'precise',
      }),
      ev('worldLineChanged', 95, {
        worldLine: 4,
        cut: { a: 3, b: 3, c: 3, d: 3 },
        failed: [],
        kept: { a: 3, b: 3, c: 3, d: 3 },
        reason: 'modeChange',
        recovery: 'cut',
      }),
    ]);
    expect(m.worldLines.map((w) => worldLineCause(w))).toEqual(['start', 'a failed', 'coordinator restarted', 'mode change']);
    expect(m.worldLines.map((w) => w.recovery)).toEqual(['precise', 'precise', 'precise', 'cut']);
    expect(m.currentWorldLine()?.worldLine).toBe(4);
    expect(m.nextRecovery()).toBe('cut');
    // An older trace: no reason, so the failed nodes say it.
    expect(worldLineCause({ worldLine: 2, reason: null, failed: ['n2'] })).toBe('n2 failed');
  });

  it('describes the new events in the event table and accepts them in a trace', () => {
    const n = (e: E, i: number): NumberedEvent => ({ ...e, n: i });
    expect(summarize(n(FAILURE[1]!, 1))).toBe(
      'world-line 2 begins (a failed, precise recovery); cut a v1, b v1, c v1, d v1; kept above the cut: up to a v3, b v3, c v3, d v3',
    );
    const plan = summarize(n(PLAN, 2));
    expect(plan).toContain('lost a above v3');
    expect(plan).toContain('c rolled back above v3 (depends on lost state: c v4 → b v4 → a v4)');
    expect(plan).toContain('kept a v2, a v3, b v2');
    expect(parseTrace(JSON.stringify([PLAN])).events[0]!.type).toBe('recoveryPlan');
  });
});
