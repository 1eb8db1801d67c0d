import { describe, expect, it } from 'vitest';
import { dependencyIndex } from '../src/model/analysis';
import { PlaygroundModel } from '../src/model/model';
import { layoutDepGraph } from '../src/views/DepGraph';
import { FULL_LANE_H, FULL_LANES_MAX, LANE_MIN_H, THIN_LANE_MIN_H, layoutLanes } from '../src/views/laneLayout';

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `n${i + 1}`);

describe('the stage lanes', () => {
  it('a few nodes share the height evenly, as before', () => {
    const l = layoutLanes(ids(4), 500, new Map(), new Set());
    expect(l.compact).toBe(false);
    expect(l.lanes.map((x) => x.h)).toEqual([125, 125, 125, 125]);
    expect(l.lanes.map((x) => x.y0)).toEqual([0, 125, 250, 375]);
  });

  it('in little room, fewer lanes stay full: the selected one first, then the busiest', () => {
    const l = layoutLanes(
      ids(32),
      500,
      new Map([
        ['n5', 90],
        ['n17', 80],
        ['n30', 70],
      ]),
      new Set(['n9']),
    );
    expect(l.lanes.filter((x) => !x.thin).map((x) => x.id)).toEqual(['n5', 'n9', 'n17']);
    expect(l.height).toBeLessThanOrEqual(500);
  });

  it('32 nodes in 600 px: every lane fits, the busiest and the selected one full, the others thin', () => {
    const activity = new Map([
      ['n5', 90],
      ['n17', 80],
      ['n30', 70],
      ['n2', 1],
    ]);
    const l = layoutLanes(ids(32), 600, activity, new Set(['n9']));
    expect(l.compact).toBe(true);
    expect(l.height).toBeLessThanOrEqual(600);
    const full = l.lanes.filter((x) => !x.thin).map((x) => x.id);
    expect(full).toEqual(expect.arrayContaining(['n5', 'n9', 'n17', 'n30']));
    expect(full).toHaveLength(FULL_LANES_MAX);
    for (const x of l.lanes.filter((y) => !y.thin)) expect(x.h).toBe(FULL_LANE_H);
    for (const x of l.lanes.filter((y) => y.thin)) {
      expect(x.h).toBeGreaterThanOrEqual(THIN_LANE_MIN_H);
      expect(x.h).toBeLessThan(LANE_MIN_H);
    }
    // Lanes keep their order and do not overlap.
    expect(l.lanes.map((x) => x.id)).toEqual(ids(32));
    for (let i = 1; i < l.lanes.length; i++) expect(l.lanes[i]!.y0).toBe(l.lanes[i - 1]!.y0 + l.lanes[i - 1]!.h);
  });

  it('too little room even for thin lanes: they keep their least height (the stage grows)', () => {
    const l = layoutLanes(ids(64), 300, new Map(), new Set());
    expect(l.lanes.every((x) => x.thin && x.h === THIN_LANE_MIN_H)).toBe(true);
    expect(l.height).toBe(64 * THIN_LANE_MIN_H);
  });
});

describe('the dependency graph with many nodes', () => {
  it('shows only the nodes in a dependency between nodes (and says which it leaves out)', () => {
    const m = new PlaygroundModel();
    const nodes = ids(20);
    let t = 1;
    for (const node of nodes) m.apply({ type: 'versionOpened', t: t++, node, worldLine: 1, version: 1, prevVersion: 0 });
    // n3's version 1 depends on n7's version 1.
    m.apply({ type: 'checkpointStarted', t: t++, node: 'n3', worldLine: 1, version: 1, prevVersion: 0, deps: { n7: 1 }, changedKeys: 1, full: false });
    const L = layoutDepGraph(m, dependencyIndex(m), 1200, new Set(), [], null);
    expect(L.rows).toEqual(['n3', 'n7']);
    expect(L.hiddenRows).toHaveLength(18);
    expect(L.edges.map((e) => [e.edge.from, e.edge.to])).toEqual([['n3|1|1', 'n7|1|1']]);
    // A highlighted version keeps its node in the graph.
    expect(layoutDepGraph(m, dependencyIndex(m), 1200, new Set(['n12|1|1']), [], null).rows).toEqual(['n3', 'n7', 'n12']);
  });

  it('a few nodes: every node is shown, as before', () => {
    const m = new PlaygroundModel();
    for (const [i, node] of ids(4).entries()) m.apply({ type: 'versionOpened', t: i, node, worldLine: 1, version: 1, prevVersion: 0 });
    const L = layoutDepGraph(m, dependencyIndex(m), 1200, new Set(), [], null);
    expect(L.rows).toEqual(ids(4));
    expect(L.hiddenRows).toEqual([]);
  });
});
