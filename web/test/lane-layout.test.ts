import { describe, expect, it } from 'vitest';
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
