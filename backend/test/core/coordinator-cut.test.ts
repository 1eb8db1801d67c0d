import type { Cut, CutKind, Deps, NodeId } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import { CutIndex } from '../../src/core/coordinator-cut';
import type { PendingGraph, PendingVersion } from '../../src/core/cut';
import { cheapCut, exactCut } from '../../src/core/cut';
import { Rng } from '../../src/sim/rng';

const emptyGraph = (nodes: readonly NodeId[]): PendingGraph => new Map(nodes.map((n) => [n, new Map<number, PendingVersion>()]));

interface Report {
  node: NodeId;
  version: number;
  prevVersion: number;
  deps: Deps;
}

/** Each node's versions 1..len (sometimes jumping), each depending on a few versions of other nodes near its own: cycles, gaps, and versions never persisted. */
function randomReports(rng: Rng, nodes: readonly NodeId[], len: number): Report[] {
  const out: Report[] = [];
  for (const n of nodes) {
    let prev = 0;
    for (let k = 0; k < len; k++) {
      const version = prev + (rng.chance(0.1) ? rng.int(2, 4) : 1);
      const deps: Deps = { [n]: version };
      for (let j = rng.int(0, 3); j > 0; j--) deps[rng.pick(nodes)] = Math.max(1, version + rng.int(-3, 2));
      out.push({ node: n, version, prevVersion: prev, deps });
      prev = version;
    }
  }
  // Reports arrive in any order; a few never arrive (a version lost, holding back what depends on it).
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out.filter(() => !rng.chance(0.03));
}

/** The coordinator's cut before the index: recomputed from the whole graph after every report. */
function fromScratch(kind: CutKind, nodes: readonly NodeId[], cut: Cut, graph: PendingGraph): Cut {
  const next = kind === 'exact' ? exactCut(nodes, cut, graph) : cheapCut(nodes, cut, graph);
  for (const n of nodes) for (const v of [...(graph.get(n)?.keys() ?? [])]) if (v <= next[n]!) graph.get(n)!.delete(v);
  return next;
}

describe('the cut index gives the cut of the whole graph, report by report', () => {
  for (const kind of ['exact', 'cheap'] as CutKind[]) {
    it(`${kind} cut: 300 random graphs, reports in random order, some lost`, () => {
      let advanced = 0;
      for (let seed = 1; seed <= 300; seed++) {
        const rng = new Rng(seed);
        const nodes = Array.from({ length: rng.int(1, 6) }, (_, i) => `n${i + 1}`);
        const reports = randomReports(rng, nodes, rng.int(1, 25));
        let refCut: Cut = Object.fromEntries(nodes.map((n) => [n, 0]));
        const refGraph: PendingGraph = emptyGraph(nodes);
        let cut: Cut = { ...refCut };
        const graph: PendingGraph = emptyGraph(nodes);
        const index = new CutIndex(kind);
        index.reset(nodes, cut, graph);
        // Halfway, the index is rebuilt from the graph (as after a recovery): it must carry on from there.
        const rebuildAt = rng.int(0, reports.length);
        reports.forEach((r, i) => {
          if (i === rebuildAt) index.reset(nodes, cut, graph);
          if (r.version > refCut[r.node]!) refGraph.get(r.node)!.set(r.version, { prevVersion: r.prevVersion, deps: r.deps });
          refCut = fromScratch(kind, nodes, refCut, refGraph);
          if (r.version <= cut[r.node]!) return;
          graph.get(r.node)!.set(r.version, { prevVersion: r.prevVersion, deps: r.deps });
          const advances = index.added(r.node, r.version);
          if (advances.size > 0) advanced++;
          cut = { ...cut, ...Object.fromEntries(advances) };
          expect(cut, `seed ${seed}, report ${i} (${r.node}@${r.version})`).toEqual(refCut);
        });
      }
      // The graphs were not all trivially blocked: cuts did advance.
      expect(advanced).toBeGreaterThan(300);
    });
  }

  it('exact cut: a report behind a long blocked chain touches only what waits on it', () => {
    // n1's version 1 is missing; n2..n4 each persist 2,000 versions that depend on n1's. Each report is
    // then cheap, and n1's version 1 commits everything at once.
    const nodes = ['n1', 'n2', 'n3', 'n4'];
    const graph: PendingGraph = emptyGraph(nodes);
    const index = new CutIndex('exact');
    index.reset(nodes, { n1: 0, n2: 0, n3: 0, n4: 0 }, graph);
    for (let v = 1; v <= 2000; v++) {
      for (const n of ['n2', 'n3', 'n4']) {
        graph.get(n)!.set(v, { prevVersion: v - 1, deps: { [n]: v, n1: 1 } });
        expect(index.added(n, v).size).toBe(0);
      }
    }
    graph.get('n1')!.set(1, { prevVersion: 0, deps: { n1: 1 } });
    expect(Object.fromEntries(index.added('n1', 1))).toEqual({ n1: 1, n2: 2000, n3: 2000, n4: 2000 });
    expect(graph.get('n2')!.size).toBe(0);
  });
});
