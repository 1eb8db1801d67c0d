import { describe, expect, it } from 'vitest';
import type { PendingGraph } from '../../src/core/cut';
import { cheapCut, exactCut } from '../../src/core/cut';
import { covers, merged } from '../../src/core/deps';

/** Builds a graph from `node: [[version, prevVersion, deps], ...]`. */
function graph(spec: Record<string, [number, number, Record<string, number>][]>): PendingGraph {
  const g: PendingGraph = new Map();
  for (const [n, rows] of Object.entries(spec)) {
    g.set(n, new Map(rows.map(([v, prev, deps]) => [v, { prevVersion: prev, deps }])));
  }
  return g;
}

describe('exact cut', () => {
  const nodes = ['a', 'b'];

  it('takes every persisted version whose dependencies are in the cut', () => {
    const g = graph({
      a: [
        [1, 0, {}],
        [2, 1, { b: 1 }],
      ],
      b: [[1, 0, {}]],
    });
    expect(exactCut(nodes, { a: 0, b: 0 }, g)).toEqual({ a: 2, b: 1 });
  });

  it('leaves out a version that depends on one not yet persisted', () => {
    const g = graph({
      a: [
        [1, 0, {}],
        [2, 1, { b: 2 }],
      ],
      b: [[1, 0, {}]],
    });
    expect(exactCut(nodes, { a: 0, b: 0 }, g)).toEqual({ a: 1, b: 1 });
  });

  it('stops at a gap: a node commits strictly in order', () => {
    // a@3 follows a@2, which is not persisted yet.
    const g = graph({
      a: [
        [1, 0, {}],
        [3, 2, {}],
      ],
      b: [],
    });
    expect(exactCut(nodes, { a: 0, b: 0 }, g)).toEqual({ a: 1, b: 0 });
  });

  it('cuts back transitively (greatest fixpoint)', () => {
    // a@1 needs b@1, b@1 needs a@2 (not persisted): neither can join.
    const g = graph({ a: [[1, 0, { b: 1 }]], b: [[1, 0, { a: 2 }]] });
    expect(exactCut(nodes, { a: 0, b: 0 }, g)).toEqual({ a: 0, b: 0 });
  });

  it('admits mutually dependent versions together', () => {
    const g = graph({ a: [[1, 0, { b: 1 }]], b: [[1, 0, { a: 1 }]] });
    expect(exactCut(nodes, { a: 0, b: 0 }, g)).toEqual({ a: 1, b: 1 });
  });

  it('never goes below the current cut', () => {
    const g = graph({ a: [[6, 5, { b: 9 }]], b: [] });
    expect(exactCut(nodes, { a: 5, b: 4 }, g)).toEqual({ a: 5, b: 4 });
  });

  it('a dependency on a version another node skipped is satisfied by its next one', () => {
    // b jumped from 1 to 4 (commit ordering); a depends on b@3, which b@4 covers.
    const g = graph({
      a: [[3, 0, { b: 3 }]],
      b: [
        [1, 0, {}],
        [4, 1, {}],
      ],
    });
    expect(exactCut(nodes, { a: 0, b: 0 }, g)).toEqual({ a: 3, b: 4 });
  });
});

describe('cheap cut', () => {
  it('is the minimum of every node’s highest persisted version', () => {
    const g = graph({
      a: [
        [1, 0, {}],
        [2, 1, {}],
        [3, 2, {}],
      ],
      b: [
        [1, 0, {}],
        [2, 1, {}],
      ],
      c: [
        [2, 0, {}],
        [5, 2, {}],
      ],
    });
    expect(cheapCut(['a', 'b', 'c'], { a: 0, b: 0, c: 0 }, g)).toEqual({ a: 2, b: 2, c: 2 });
  });

  it('does not look at dependencies (the commit-ordering rule makes them point lower)', () => {
    const g = graph({ a: [[2, 0, { b: 2 }]], b: [[2, 0, {}]] });
    expect(cheapCut(['a', 'b'], { a: 0, b: 0 }, g)).toEqual({ a: 2, b: 2 });
  });

  it('a node with nothing persisted holds everyone back', () => {
    const g = graph({ a: [[4, 0, {}]], b: [] });
    expect(cheapCut(['a', 'b'], { a: 0, b: 0 }, g)).toEqual({ a: 0, b: 0 });
  });
});

describe('dependency sets', () => {
  it('merge keeps the maximum version per node', () => {
    expect(merged({ a: 1, b: 5 }, { a: 3, c: 2 })).toEqual({ a: 3, b: 5, c: 2 });
  });
  it('a cut covers deps when every named node is at or above', () => {
    expect(covers({ a: 3, b: 2 }, { a: 3 })).toBe(true);
    expect(covers({ a: 3, b: 2 }, { a: 3, b: 3 })).toBe(false);
    expect(covers({ a: 3 }, { c: 1 })).toBe(false);
    expect(covers({}, {})).toBe(true);
  });
});
