import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { InspectionEvent } from '@dse/shared';
import { PlaygroundModel } from '../src/model/model';
import { dependencyIndex, explainRollback } from '../src/model/analysis';
import { describeEdge, edgeOrigin, requestOfMessage, requestPath } from '../src/model/paths';
import { layoutDepGraph, type Box } from '../src/views/DepGraph';
import { placeWorldLineLabels } from '../src/views/SpaceTime';
import { isClassPace, workloadAtPace, CLASS_PACE } from '../src/pace';
import { DEFAULT_CLUSTER_CONFIG_FOR_TESTS } from './config';

type E = InspectionEvent;

function traceModel(name: string): PlaygroundModel {
  const events = JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8')) as E[];
  const m = new PlaygroundModel();
  m.applyAll(events);
  return m;
}

/** Does the segment (axis-parallel) pass through the inside of the box? */
function crosses(a: [number, number], b: [number, number], r: Box): boolean {
  const [x0, y0] = a;
  const [x1, y1] = b;
  const inX = (x: number): boolean => x > r.x + 0.5 && x < r.x + r.w - 0.5;
  const inY = (y: number): boolean => y > r.y + 0.5 && y < r.y + r.h - 0.5;
  if (x0 === x1) return inX(x0) && Math.min(y0, y1) < r.y + r.h - 0.5 && Math.max(y0, y1) > r.y + 0.5;
  if (y0 === y1) return inY(y0) && Math.min(x0, x1) < r.x + r.w - 0.5 && Math.max(x0, x1) > r.x + 0.5;
  return false;
}

describe('the dependency graph layout', () => {
  for (const name of ['sim-precise-seed5', 'sim-seed3']) {
    it(`${name}: boxes never overlap, every edge goes around the boxes and ends on its target's border`, () => {
      const m = traceModel(name);
      const index = dependencyIndex(m);
      const rec = m.rollbacks.at(-1);
      const why = rec === undefined ? [] : explainRollback(m, index, rec).why;
      const L = layoutDepGraph(m, index, 1200, new Set(), why, null);
      expect(L.boxes.length).toBeGreaterThan(10);
      expect(L.edges.length).toBeGreaterThan(3);
      for (const a of L.boxes) {
        for (const b of L.boxes) {
          if (a === b || a.row !== b.row) continue;
          expect(a.x + a.w <= b.x || b.x + b.w <= a.x, `${a.key} and ${b.key} overlap`).toBe(true);
        }
      }
      // Placed by time: along a row, a later-opened version is further right.
      for (const r of L.rows.keys()) {
        const row = L.boxes.filter((b) => b.row === r);
        for (let i = 1; i < row.length; i++) expect(row[i]!.v.openedAt).toBeGreaterThanOrEqual(row[i - 1]!.v.openedAt);
      }
      const byKey = new Map(L.boxes.map((b) => [b.key, b]));
      for (const e of L.edges) {
        const from = byKey.get(e.edge.from)!;
        const to = byKey.get(e.edge.to)!;
        const pts = e.points;
        for (let i = 0; i + 1 < pts.length; i++) {
          for (const box of L.boxes) {
            // The first segment leaves its own box and the last enters its target: only those may touch them.
            if ((i === 0 && box === from) || (i === pts.length - 2 && box === to)) continue;
            expect(crosses(pts[i]!, pts[i + 1]!, box), `edge ${e.edge.from} → ${e.edge.to}, segment ${i}, runs through ${box.key}`).toBe(false);
          }
        }
        // The arrowhead's tip is on the target's top or bottom border.
        const [tx, ty] = pts.at(-1)!;
        expect(tx).toBeGreaterThanOrEqual(to.x);
        expect(tx).toBeLessThanOrEqual(to.x + to.w);
        expect([to.y, to.y + to.h]).toContain(ty);
      }
    });
  }

  it('zoomed to a rollback, it shows only the rollback’s versions', () => {
    const m = traceModel('sim-precise-seed5');
    const index = dependencyIndex(m);
    const rec = m.rollbacks.find((r) => r.discarded.length > 0)!;
    const zoom = new Set(rec.discarded);
    const L = layoutDepGraph(m, index, 1200, new Set(), [], zoom);
    expect(L.boxes.length).toBeGreaterThan(0);
    for (const b of L.boxes) expect(zoom.has(b.key)).toBe(true);
  });
});

describe('what created a dependency, and a request’s path', () => {
  it('names the message that recorded a cross-node dependency', () => {
    const m = traceModel('sim-precise-seed5');
    const index = dependencyIndex(m);
    let named = 0;
    let total = 0;
    for (const edges of index.out.values()) {
      for (const e of edges) {
        if (e.kind !== 'node') continue;
        total++;
        const o = edgeOrigin(m, e);
        if (o.messages.length + o.requests.length > 0) named++;
        const text = describeEdge(m, e);
        expect(text).toMatch(/depends on/);
      }
    }
    expect(total).toBeGreaterThan(0);
    // Nearly every edge of a full trace has its message retained.
    expect(named / total).toBeGreaterThan(0.8);
  });

  it('follows a client request: where it ran, its answer, and its commit or rollback', () => {
    const m = traceModel('sim-precise-seed5');
    const reqs = [...m.sessions.values()];
    const committed = reqs.find((r) => r.committedAt !== null)!;
    const p = requestPath(m, committed.session, committed.seq);
    expect(p.requests.length).toBeGreaterThan(0);
    expect(p.speculative).not.toBeNull();
    expect(p.committed).not.toBeNull();
    expect(p.versions.length).toBeGreaterThan(0);
    const ran = p.requests.find((h) => h.version !== null)!;
    expect(ran.version!.node).toBe(ran.message.to);
    const rolled = reqs.find((r) => r.rolledBackAt !== null);
    if (rolled !== undefined) {
      const q = requestPath(m, rolled.session, rolled.seq);
      expect(q.rolledBack).not.toBeNull();
    }
    expect(requestOfMessage('q/s1/7/2')).toEqual({ session: 's1', seq: 7 });
    // A workflow's start request: its path lists the calls of its steps (the orchestrator's sthreads).
    const wf = traceModel('sim-workflow-seed1');
    const start = [...wf.sessions.values()].find((r) => r.committedAt !== null)!;
    const w = requestPath(wf, start.session, start.seq);
    expect(w.steps.length).toBeGreaterThan(1);
    for (const h of w.steps) {
      expect(h.step).toMatch(/^[sc]\d+$/);
      expect(h.message.from).toBe(w.requests[0]!.message.to);
      expect(h.reply).not.toBeNull();
    }
    // Steps' versions are among those the request touched.
    for (const h of w.steps) if (h.version !== null) expect(w.versions.map((v) => v.key)).toContain(h.version.key);
    // A request that is no workflow has none.
    expect(requestPath(traceModel('sim-precise-seed5'), committed.session, committed.seq).steps).toEqual([]);
    expect(requestOfMessage('a/n1/3')).toBeNull();
  });
});

describe('world-line labels', () => {
  it('never overlap: stacked in rows, shortened with the full text kept when no row has room', () => {
    const items = Array.from({ length: 12 }, (_, i) => ({ worldLine: i + 2, x: 100 + i * 25, full: `w${i + 2} (n${(i % 4) + 1} failed · precise)` }));
    const placed = placeWorldLineLabels(items, 900, 3, 7.8);
    expect(placed).toHaveLength(12);
    for (const a of placed) {
      expect(a.x + a.width).toBeLessThanOrEqual(900 + 0.001);
      expect(a.full).toMatch(/^w\d+/);
      for (const b of placed) {
        if (a === b || a.row !== b.row) continue;
        expect(a.x + a.width <= b.x || b.x + b.width <= a.x, `${a.text} and ${b.text} overlap`).toBe(true);
      }
    }
    expect(new Set(placed.map((p) => p.row)).size).toBeGreaterThan(1);
    // Two far apart share the first row, whole.
    const two = placeWorldLineLabels(
      [
        { worldLine: 3, x: 100, full: 'w3 (n1 failed · precise)' },
        { worldLine: 4, x: 600, full: 'w4 (n2 failed · precise)' },
      ],
      900,
    );
    expect(two.map((p) => [p.row, p.text])).toEqual([
      [0, 'w3 (n1 failed · precise)'],
      [0, 'w4 (n2 failed · precise)'],
    ]);
  });
});

describe('classroom pace', () => {
  it('is told by the checkpoint interval; the workload keeps its kind at the pace’s rate', () => {
    expect(isClassPace({ ...DEFAULT_CLUSTER_CONFIG_FOR_TESTS, ...CLASS_PACE })).toBe(true);
    expect(isClassPace(DEFAULT_CLUSTER_CONFIG_FOR_TESTS)).toBe(false);
    expect(workloadAtPace({ kind: 'chain', rate: 40 }, true)).toEqual({ kind: 'chain', rate: 2 });
    expect(workloadAtPace({ kind: 'chain', rate: 0 }, true)).toEqual({ kind: 'chain', rate: 0 });
  });
});
