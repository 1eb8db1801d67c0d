import type { Cut, Json } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import { unitsOnOneNode } from '../../src/chaos/run';
import type { Application, PutRecord } from '../../src/chaos/verify';
import { RestorePoints, checkKv } from '../../src/chaos/verify';

/** The chaos checks with membership changes (`--membership`): units move, so a key may be on any node, but on one only. */

function rec(q: number): PutRecord {
  return { session: 'a', q, key: `chxa.${q}`, value: { q }, incarnation: 1, id: `r${q}`, outcome: 'committed', answerWorldLine: 1, resumes: 0 };
}

describe('chaos checks with membership changes', () => {
  it('a unit in the committed state of two nodes is reported, one on a single node is not', () => {
    const nodes = new Map<string, Map<string, Json>>([
      [
        'n1',
        new Map<string, Json>([
          ['chx.1', 1],
          ['kv/x', { x: 1, n: 1, v: 3 }],
          ['~n2/chx.2', 2],
        ]),
      ],
      [
        'n2',
        new Map<string, Json>([
          ['chx.2', 2],
          ['pl/view', { v: 1 }],
        ]),
      ],
      ['n3', new Map<string, Json>([['kv/y', { x: 1, n: 1, v: 3 }]])],
    ]);
    // Replicas (~origin/key) and the membership's own state are not placed.
    expect(unitsOnOneNode(nodes)).toEqual([]);
    nodes.get('n3')!.set('chx.1', 1);
    nodes.get('n2')!.set('kv/x', { x: 1, n: 1, v: 3 });
    expect(unitsOnOneNode(nodes).sort()).toEqual(['unit app:chx.1 is in the committed state of n1 and n3', 'unit kv:x is in the committed state of n1 and n2']);
  });

  it('exactly once with moves: a put handed off (deleted, installed elsewhere, even back) is one application; applied again while held is a second', () => {
    const rs = [rec(1), rec(2), rec(3)];
    const at = (node: string, version: number, s: number, del = false): Application => ({
      node,
      worldLine: 1,
      version,
      inc: 1,
      t: s * 1000,
      ...(del ? { del: true } : {}),
    });
    const apps = new Map<string, Application[]>([
      // Applied at n1, handed to n4, handed back to n1: one application (times in seconds). The deletion of
      // the second hand-off is reported a little after the install it made possible: still a move.
      [rs[0]!.key, [at('n1', 5, 10), at('n1', 6, 20, true), at('n4', 9, 21), at('n1', 14, 31), at('n4', 12, 31.1, true)]],
      // Applied at n2, then at n3 while n2 still held it: twice.
      [rs[1]!.key, [at('n2', 3, 10), at('n3', 8, 15)]],
      // Applied at n5, which was then removed while down: its state taken over by n2 (n5 never deleted it).
      [rs[2]!.key, [at('n5', 3, 10), at('n2', 30, 50)]],
    ]);
    const restorePoints = new RestorePoints(new Map<number, Cut>([[2, { n1: 20, n2: 40, n3: 10, n4: 20, n5: 10 }]]));
    const state = new Map<string, Json>(rs.map((r) => [r.key, r.value]));
    expect(checkKv({ records: rs, state, keyPrefix: 'chx', applications: apps, restorePoints }).duplicates).toBe(3);
    const v = checkKv({ records: rs, state, keyPrefix: 'chx', applications: apps, restorePoints, moves: { removedDown: new Set(['n5']) } });
    expect(v.duplicates).toBe(1);
    expect(v.notes[0]!.message).toContain(rs[1]!.key);
  });
});
