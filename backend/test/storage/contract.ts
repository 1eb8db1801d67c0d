import type { Json } from '@dse/shared';
import { DseError } from '@dse/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CheckpointRecord, CoordinatorRecord, Storage } from '../../src/core/ports';

/** One storage under test, fresh and empty. */
export interface StorageUnderTest {
  storage: Storage;
  close(): Promise<void>;
}

export interface ContractOptions {
  /** The storage serializes and so checks its input (SQL): bad input is a typed `BadRequest`. */
  checksInput: boolean;
}

type Rec = Partial<CheckpointRecord> & Pick<CheckpointRecord, 'node' | 'version'>;

function rec(r: Rec): CheckpointRecord {
  return {
    worldLine: 1,
    prevVersion: r.version - 1,
    deps: {},
    full: false,
    changes: { set: [], del: [] },
    ...r,
  };
}

function coord(worldLine: number, cut: Record<string, number>, extra: Partial<CoordinatorRecord> = {}): CoordinatorRecord {
  return { worldLine, cut, recoveryCuts: [{ worldLine, cut }], nodes: Object.keys(cut), ...extra };
}

function asObject(state: Map<string, Json> | undefined): Record<string, Json> | undefined {
  return state === undefined ? undefined : Object.fromEntries(state);
}

async function expectCode(p: Promise<unknown>, code: string): Promise<DseError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected a ${code} rejection`).toBeInstanceOf(DseError);
  expect((err as DseError).code).toBe(code);
  return err as DseError;
}

/** A chain on n1: 1 full {a:1,b:2}; 2 sets b, deletes a; 3 sets c; 4 full; 5 sets e. */
const CHAIN: CheckpointRecord[] = [
  rec({
    node: 'n1',
    version: 1,
    full: true,
    changes: {
      set: [
        ['a', 1],
        ['b', 2],
      ],
      del: [],
    },
  }),
  rec({ node: 'n1', version: 2, changes: { set: [['b', 3]], del: ['a'] }, deps: { n2: 1 } }),
  rec({ node: 'n1', version: 3, changes: { set: [['c', { x: [1, 2] }]], del: [] } }),
  rec({
    node: 'n1',
    version: 4,
    full: true,
    changes: {
      set: [
        ['b', 3],
        ['c', { x: [1, 2] }],
        ['d', 'four'],
      ],
      del: [],
    },
  }),
  rec({ node: 'n1', version: 5, changes: { set: [['e', true]], del: ['b'] }, deps: { n2: 3, n3: 1 } }),
];
const CHAIN_STATES: Record<number, Record<string, Json>> = {
  1: { a: 1, b: 2 },
  2: { b: 3 },
  3: { b: 3, c: { x: [1, 2] } },
  4: { b: 3, c: { x: [1, 2] }, d: 'four' },
  5: { c: { x: [1, 2] }, d: 'four', e: true },
};

/** The Storage contract (ports.ts, with memory.ts as its reference), run against one implementation. */
export function storageContract(name: string, open: () => Promise<StorageUnderTest>, opts: ContractOptions): void {
  describe(`Storage contract: ${name}`, () => {
    let sut: StorageUnderTest;
    let s: Storage;
    beforeEach(async () => {
      sut = await open();
      s = sut.storage;
    });
    afterEach(async () => {
      await sut.close();
    });

    it('starts empty', async () => {
      expect(await s.loadCoordinator()).toBeNull();
      expect(await s.loadCheckpoint('n1', 1)).toBeNull();
      expect(await s.listCheckpoints(1)).toEqual([]);
      await s.writeCheckpoints([]);
    });

    it('writes a delta chain and reads every version back whole', async () => {
      await s.writeCheckpoints(CHAIN.slice(0, 2));
      await s.writeCheckpoints(CHAIN.slice(2));
      for (const v of [1, 2, 3, 4, 5]) {
        const cp = await s.loadCheckpoint('n1', v);
        expect(cp, `version ${v}`).not.toBeNull();
        expect(asObject(cp!.state), `version ${v}`).toEqual(CHAIN_STATES[v]);
        expect(cp!.version).toBe(v);
        expect(cp!.worldLine).toBe(1);
        expect(cp!.node).toBe('n1');
      }
      expect((await s.loadCheckpoint('n1', 5))!.deps).toEqual({ n2: 3, n3: 1 });
      expect(await s.loadCheckpoint('n1', 6)).toBeNull();
      expect(await s.loadCheckpoint('n2', 1)).toBeNull();
    });

    it('a version with a gap below it (versions jump) chains through prevVersion', async () => {
      await s.writeCheckpoints([
        rec({ node: 'n1', version: 1, full: true, changes: { set: [['a', 1]], del: [] } }),
        rec({ node: 'n1', version: 7, prevVersion: 1, changes: { set: [['b', 2]], del: [] } }),
        rec({ node: 'n1', version: 20, prevVersion: 7, changes: { set: [['a', 3]], del: [] } }),
      ]);
      expect(asObject((await s.loadCheckpoint('n1', 20))!.state)).toEqual({ a: 3, b: 2 });
      expect(await s.loadCheckpoint('n1', 8)).toBeNull();
    });

    it('a delta whose base is gone is reported as StorageCorrupt, not read as a partial state', async () => {
      await s.writeCheckpoints([rec({ node: 'n1', version: 3, prevVersion: 2, changes: { set: [['a', 1]], del: [] } })]);
      await expectCode(s.loadCheckpoint('n1', 3), 'StorageCorrupt');
    });

    it('rewriting a (node, world-line, version) is idempotent: the first write stays', async () => {
      await s.writeCheckpoints(CHAIN.slice(0, 3));
      await s.writeCheckpoints(CHAIN.slice(0, 3));
      const changed = rec({ node: 'n1', version: 2, changes: { set: [['z', 9]], del: [] } });
      await s.writeCheckpoints([changed, changed, CHAIN[3]!]);
      expect(asObject((await s.loadCheckpoint('n1', 2))!.state)).toEqual(CHAIN_STATES[2]);
      expect(asObject((await s.loadCheckpoint('n1', 4))!.state)).toEqual(CHAIN_STATES[4]);
      expect((await s.listCheckpoints(1)).map((m) => m.version)).toEqual([1, 2, 3, 4]);
    });

    it('lists every row held of world-lines up to the one asked, sorted, with their deps', async () => {
      await s.writeCheckpoints([
        rec({ node: 'n2', version: 1, full: true, deps: { n1: 1 } }),
        ...CHAIN.slice(0, 2),
        rec({ node: 'n10', version: 1, full: true }),
      ]);
      const one = [
        { node: 'n1', worldLine: 1, version: 1, prevVersion: 0, deps: {} },
        { node: 'n1', worldLine: 1, version: 2, prevVersion: 1, deps: { n2: 1 } },
        { node: 'n10', worldLine: 1, version: 1, prevVersion: 0, deps: {} },
        { node: 'n2', worldLine: 1, version: 1, prevVersion: 0, deps: { n1: 1 } },
      ];
      expect(await s.listCheckpoints(1)).toEqual(one);
      // Rows a world-line change kept (here: all, at or below the restore points) are listed with the newer one's.
      await s.saveCoordinator(coord(2, { n1: 1, n2: 1, n10: 1 }, { kept: { n1: 2, n2: 1, n10: 1 } }));
      await s.writeCheckpoints([rec({ node: 'n1', version: 3, worldLine: 2, prevVersion: 2 })]);
      expect(await s.listCheckpoints(1)).toEqual(one);
      expect(await s.listCheckpoints(2)).toEqual([...one.slice(0, 2), { node: 'n1', worldLine: 2, version: 3, prevVersion: 2, deps: {} }, ...one.slice(2)]);
    });

    it('a new world-line keeps rows up to its restore points (precise recovery), not only up to the cut', async () => {
      await s.writeCheckpoints(CHAIN);
      await s.saveCoordinator(coord(1, { n1: 1 }));
      await s.saveCoordinator(coord(2, { n1: 1 }, { kept: { n1: 3 } }));
      expect((await s.listCheckpoints(2)).map((m) => m.version)).toEqual([1, 2, 3]);
      expect(await s.loadCheckpoint('n1', 4)).toBeNull();
      // A kept version is read through its chain, and a later world-line builds on it.
      expect(asObject((await s.loadCheckpoint('n1', 3))!.state)).toEqual(CHAIN_STATES[3]);
      await s.writeCheckpoints([rec({ node: 'n1', version: 4, worldLine: 2, prevVersion: 3, changes: { set: [['w', 2]], del: [] } })]);
      expect(asObject((await s.loadCheckpoint('n1', 4))!.state)).toEqual({ ...CHAIN_STATES[3], w: 2 });
      expect((await s.loadCoordinator())!.kept).toEqual({ n1: 3 });
    });

    it('the cut never goes back within a world-line: a lower one is refused (StaleCut, definite)', async () => {
      await s.saveCoordinator(coord(1, { n1: 4, n2: 2 }));
      const e = await expectCode(s.saveCoordinator(coord(1, { n1: 3, n2: 5 })), 'StaleCut');
      expect(e.definite).toBe(true);
      // A node left out counts as going back to 0.
      await expectCode(s.saveCoordinator(coord(1, { n1: 5 })), 'StaleCut');
      expect((await s.loadCoordinator())!.cut).toEqual({ n1: 4, n2: 2 });
      await s.saveCoordinator(coord(1, { n1: 4, n2: 3 }));
      expect((await s.loadCoordinator())!.cut).toEqual({ n1: 4, n2: 3 });
      // A new world-line may start anywhere at or above what storage holds: the coordinator checks that.
      await s.saveCoordinator(coord(2, { n1: 4, n2: 3 }, { starts: true }));
      expect((await s.loadCoordinator())!.worldLine).toBe(2);
    });

    it('a save that starts a world-line is refused when that world-line started already (two coordinators)', async () => {
      await s.saveCoordinator(coord(1, { n1: 0 }, { starts: true }));
      await s.saveCoordinator(coord(2, { n1: 1 }, { starts: true }));
      const e = await expectCode(s.saveCoordinator(coord(2, { n1: 2 }, { starts: true })), 'StaleWorldLine');
      expect(e.definite).toBe(true);
      expect((await s.loadCoordinator())!.cut).toEqual({ n1: 1 });
      // `starts` is not stored.
      expect((await s.loadCoordinator())!.starts).toBeUndefined();
    });

    it('saves and loads the coordinator record', async () => {
      const r = coord(1, { n1: 0, n2: 0 }, { recoveryCuts: [{ worldLine: 1, cut: { n1: 0, n2: 0 } }], nodes: ['n1', 'n2'] });
      await s.saveCoordinator(r);
      expect(await s.loadCoordinator()).toEqual(r);
      const r2 = coord(1, { n1: 4, n2: 2 }, { nodes: ['n1', 'n2', 'n3'] });
      await s.saveCoordinator(r2);
      const back = await s.loadCoordinator();
      expect(back).toEqual(r2);
      back!.cut.n1 = 99;
      expect((await s.loadCoordinator())!.cut.n1).toBe(4);
    });

    it('fencing: once a newer world-line is saved, writes of older ones are refused (definite), all or none', async () => {
      await s.writeCheckpoints([rec({ node: 'n1', version: 1, full: true })]);
      await s.saveCoordinator(coord(2, { n1: 1 }));
      const e = await expectCode(s.writeCheckpoints([rec({ node: 'n1', version: 2, worldLine: 1 })]), 'StaleWorldLine');
      expect(e.definite).toBe(true);
      // A batch holding one stale record writes nothing.
      await expectCode(
        s.writeCheckpoints([rec({ node: 'n2', version: 1, worldLine: 2, full: true }), rec({ node: 'n1', version: 2, worldLine: 1 })]),
        'StaleWorldLine',
      );
      expect(await s.loadCheckpoint('n2', 1)).toBeNull();
      await s.writeCheckpoints([rec({ node: 'n1', version: 2, worldLine: 2 })]);
      expect((await s.loadCheckpoint('n1', 2))!.worldLine).toBe(2);
      // The coordinator's record cannot go back either.
      await expectCode(s.saveCoordinator(coord(1, { n1: 1 })), 'StaleWorldLine');
      expect((await s.loadCoordinator())!.worldLine).toBe(2);
    });

    it('saveCoordinator of a new world-line deletes older world-lines rows above the cut, and only those', async () => {
      await s.writeCheckpoints(CHAIN);
      await s.writeCheckpoints([
        rec({ node: 'n2', version: 1, full: true, changes: { set: [['k', 1]], del: [] } }),
        rec({ node: 'n2', version: 2, changes: { set: [['k', 2]], del: [] } }),
        rec({ node: 'n3', version: 1, full: true }),
      ]);
      await s.saveCoordinator(coord(1, { n1: 2, n2: 1 }));
      // Same world-line: nothing deleted.
      expect(await s.listCheckpoints(1)).toHaveLength(8);
      await s.saveCoordinator(coord(2, { n1: 3, n2: 1 }));
      const left = (await s.listCheckpoints(1)).map((m) => `${m.node}@${m.version}`);
      // n3 is not in the cut: its cut is 0, so all of its rows were above it.
      expect(left).toEqual(['n1@1', 'n1@2', 'n1@3', 'n2@1']);
      expect(await s.loadCheckpoint('n1', 4)).toBeNull();
      expect(asObject((await s.loadCheckpoint('n1', 3))!.state)).toEqual(CHAIN_STATES[3]);
      // The new world-line continues on top of the cut version of the old one.
      await s.writeCheckpoints([rec({ node: 'n1', version: 4, worldLine: 2, prevVersion: 3, changes: { set: [['w', 2]], del: [] } })]);
      const cp = (await s.loadCheckpoint('n1', 4))!;
      expect(cp.worldLine).toBe(2);
      expect(asObject(cp.state)).toEqual({ ...CHAIN_STATES[3], w: 2 });
      // Saving world-line 2 again (a newer cut) deletes nothing of world-line 2.
      await s.saveCoordinator(coord(2, { n1: 3, n2: 1 }));
      expect((await s.listCheckpoints(2)).filter((m) => m.worldLine === 2).map((m) => m.version)).toEqual([4]);
    });

    it('a delta chain follows, at each version, the highest world-line not above its own', async () => {
      await s.writeCheckpoints(CHAIN.slice(0, 3));
      await s.saveCoordinator(coord(2, { n1: 3 }));
      await s.writeCheckpoints([rec({ node: 'n1', version: 4, worldLine: 2, prevVersion: 3, changes: { set: [['w', 2]], del: [] } })]);
      await s.saveCoordinator(coord(3, { n1: 4 }));
      // A row of world-line 3 at version 3 must not leak into world-line 2's version 4.
      await s.writeCheckpoints([rec({ node: 'n1', version: 3, worldLine: 3, full: true, changes: { set: [['other', 1]], del: [] } })]);
      expect(asObject((await s.loadCheckpoint('n1', 4))!.state)).toEqual({ ...CHAIN_STATES[3], w: 2 });
      // Version 3 itself: the highest world-line's row.
      const v3 = (await s.loadCheckpoint('n1', 3))!;
      expect(v3.worldLine).toBe(3);
      expect(asObject(v3.state)).toEqual({ other: 1 });
    });

    it('prune drops versions below the full snapshot a committed one chains onto, and keeps it (and everything above) readable', async () => {
      await s.writeCheckpoints(CHAIN);
      await s.writeCheckpoints([rec({ node: 'n2', version: 1, full: true, changes: { set: [['k', 1]], del: [] } })]);
      const before = new Map<number, Record<string, Json> | undefined>();
      for (const v of [1, 2, 3, 4, 5]) before.set(v, asObject((await s.loadCheckpoint('n1', v))?.state));
      const held = async (): Promise<number[]> => (await s.listCheckpoints(1)).filter((m) => m.node === 'n1').map((m) => m.version);
      // 2 is a delta on the full snapshot 1: reading it needs 1, so nothing goes.
      await s.prune('n1', 2);
      expect(await held()).toEqual([1, 2, 3, 4, 5]);
      for (const v of [2, 3, 4, 5]) expect(asObject((await s.loadCheckpoint('n1', v))!.state), `version ${v}`).toEqual(before.get(v));
      // 5 is a delta on the full snapshot 4: what is below 4 goes.
      await s.prune('n1', 5);
      expect(await held()).toEqual([4, 5]);
      expect(await s.loadCheckpoint('n1', 3)).toBeNull();
      expect(asObject((await s.loadCheckpoint('n1', 5))!.state)).toEqual(CHAIN_STATES[5]);
      expect(asObject((await s.loadCheckpoint('n1', 4))!.state)).toEqual(CHAIN_STATES[4]);
      expect((await s.loadCheckpoint('n1', 5))!.deps).toEqual({ n2: 3, n3: 1 });
      // Other nodes are untouched; pruning again, lower, or at a version not held, changes nothing.
      await s.prune('n1', 5);
      await s.prune('n1', 4);
      await s.prune('n1', 2);
      await s.prune('n9', 4);
      expect(await held()).toEqual([4, 5]);
      expect(asObject((await s.loadCheckpoint('n2', 1))!.state)).toEqual({ k: 1 });
      // Later deltas still chain onto the kept ones.
      await s.writeCheckpoints([rec({ node: 'n1', version: 6, prevVersion: 5, changes: { set: [['f', 6]], del: [] } })]);
      expect(asObject((await s.loadCheckpoint('n1', 6))!.state)).toEqual({ ...CHAIN_STATES[5], f: 6 });
    });

    it('prune rewrites no full snapshot while the deltas weigh less than it; a chain outweighing twice its snapshot is compacted', async () => {
      const keys = (n: number, v: number): [string, Json][] => Array.from({ length: n }, (_, i): [string, Json] => [`key:${i}`, { v, s: 'some value' }]);
      const expected: Record<string, Json> = Object.fromEntries(keys(200, 1));
      // A big snapshot and small deltas (what the node's schedule writes): pruning keeps the chain.
      await s.writeCheckpoints([rec({ node: 'n1', version: 1, full: true, changes: { set: keys(200, 1), del: [] } })]);
      for (let v = 2; v <= 12; v++) {
        await s.writeCheckpoints([rec({ node: 'n1', version: v, changes: { set: [[`key:${v}`, { v, s: 'changed' }]], del: [`key:${100 + v}`] } })]);
        expected[`key:${v}`] = { v, s: 'changed' };
        delete expected[`key:${100 + v}`];
      }
      for (const cut of [4, 8, 12]) {
        await s.prune('n1', cut);
        expect((await s.listCheckpoints(1)).map((m) => m.version)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      }
      expect(asObject((await s.loadCheckpoint('n1', 12))!.state)).toEqual(expected);
      // A small snapshot and big deltas (as repeated restores can chain): the kept version becomes a
      // full snapshot, and nothing below it stays.
      await s.writeCheckpoints([rec({ node: 'n2', version: 1, full: true, changes: { set: [['x', 1]], del: [] } })]);
      for (let v = 2; v <= 5; v++) await s.writeCheckpoints([rec({ node: 'n2', version: v, changes: { set: keys(50, v), del: [] } })]);
      await s.prune('n2', 4);
      expect((await s.listCheckpoints(1)).filter((m) => m.node === 'n2').map((m) => m.version)).toEqual([4, 5]);
      expect(asObject((await s.loadCheckpoint('n2', 4))!.state)).toEqual({ x: 1, ...Object.fromEntries(keys(50, 4)) });
      expect(asObject((await s.loadCheckpoint('n2', 5))!.state)).toEqual({ x: 1, ...Object.fromEntries(keys(50, 5)) });
      // n1 was not touched.
      expect(asObject((await s.loadCheckpoint('n1', 12))!.state)).toEqual(expected);
    });

    it('values come back exactly as written (key order, awkward strings, numbers)', async () => {
      const values: [string, Json][] = [
        ['', 'empty key'],
        ['quote"back\\slash', 'a\u0000b\u0001'],
        ['unicode ✓ 𝄞', 'snow ☃ and a lone surrogate \ud800'],
        ['order', { z: 1, a: 2, m: { y: [3, { b: 1, a: 2 }] } }],
        ['numbers', [0, -1, 1.5, 1e300, -2.5e-300, 9007199254740991]],
        ['literals', [true, false, null, '', []]],
        ['{"set":', '"]}'],
      ];
      await s.writeCheckpoints([rec({ node: 'n1', version: 1, full: true, changes: { set: values, del: [] } })]);
      await s.writeCheckpoints([rec({ node: 'n1', version: 2, changes: { set: [['order', { q: 1, b: 2 }]], del: ['numbers'] } })]);
      const v1 = (await s.loadCheckpoint('n1', 1))!.state;
      expect([...v1.keys()]).toEqual(values.map(([k]) => k));
      for (const [k, v] of values) expect(JSON.stringify(v1.get(k))).toBe(JSON.stringify(v));
      const v2 = (await s.loadCheckpoint('n1', 2))!.state;
      expect(JSON.stringify(v2.get('order'))).toBe('{"q":1,"b":2}');
      expect(v2.has('numbers')).toBe(false);
    });

    it('node ids are any non-empty string', async () => {
      const cut: Record<string, number> = {};
      for (const node of ["it's", 'n"1', 'ünï', 'a b']) {
        await s.writeCheckpoints([rec({ node, version: 1, full: true, changes: { set: [['x', node]], del: [] } })]);
        expect((await s.loadCheckpoint(node, 1))!.state.get('x')).toBe(node);
        cut[node] = 1;
        await s.saveCoordinator(coord(1, { ...cut }));
        expect((await s.loadCoordinator())!.cut[node]).toBe(1);
      }
    });

    it('a 10,000-key state round-trips in one checkpoint', async () => {
      const set: [string, Json][] = Array.from({ length: 10_000 }, (_, i) => [`key:${i}`, { n: i, s: 'v'.repeat(i % 17) }]);
      await s.writeCheckpoints([rec({ node: 'big', version: 1, full: true, changes: { set, del: [] } })]);
      await s.writeCheckpoints([rec({ node: 'big', version: 2, changes: { set: set.slice(0, 100).map(([k]) => [k, 0]), del: ['key:9999'] } })]);
      const st = (await s.loadCheckpoint('big', 2))!.state;
      expect(st.size).toBe(9_999);
      expect(st.get('key:0')).toBe(0);
      expect(st.get('key:100')).toEqual({ n: 100, s: 'v'.repeat(100 % 17) });
    });

    it('concurrent writes racing a world-line change: no row of the old world-line survives above the cut', async () => {
      await s.writeCheckpoints([rec({ node: 'a', version: 1, full: true }), rec({ node: 'b', version: 1, full: true })]);
      await s.saveCoordinator(coord(1, { a: 1, b: 1 }));
      const ops: Promise<string>[] = [];
      for (let v = 2; v <= 40; v++) {
        for (const node of ['a', 'b']) {
          ops.push(
            s.writeCheckpoints([rec({ node, version: v, changes: { set: [['v', v]], del: [] } })]).then(
              () => 'ok',
              (e: unknown) => (e instanceof DseError ? e.code : 'other'),
            ),
          );
        }
        if (v === 20) ops.push(s.saveCoordinator(coord(2, { a: 5, b: 6 })).then(() => 'saved'));
      }
      const outcomes = await Promise.all(ops);
      expect(outcomes.filter((o) => o !== 'ok' && o !== 'StaleWorldLine' && o !== 'saved')).toEqual([]);
      const left = await s.listCheckpoints(1);
      for (const m of left) expect(m.version, `${m.node}@${m.version}`).toBeLessThanOrEqual(m.node === 'a' ? 5 : 6);
      expect(asObject((await s.loadCheckpoint('a', 5))!.state)).toEqual({ v: 5 });
      expect(outcomes).toContain('saved');
      // Writes of the new world-line go through.
      await s.writeCheckpoints([rec({ node: 'a', version: 6, worldLine: 2, changes: { set: [['v', 'w2']], del: [] } })]);
      expect(asObject((await s.loadCheckpoint('a', 6))!.state)).toEqual({ v: 'w2' });
    });

    if (opts.checksInput) {
      it('bad input is refused with a definite BadRequest, and the storage keeps working', async () => {
        const good = rec({ node: 'n1', version: 1, full: true, changes: { set: [['a', 1]], del: [] } });
        const bads: unknown[] = [
          { ...good, version: 0 },
          { ...good, version: 1.5 },
          { ...good, version: Number.NaN },
          { ...good, version: '1' },
          { ...good, worldLine: 0 },
          { ...good, prevVersion: 1 },
          { ...good, prevVersion: -1 },
          { ...good, node: '' },
          { ...good, node: 'a\u0000b' },
          { ...good, full: 'yes' },
          { ...good, deps: { n2: -1 } },
          { ...good, deps: [] },
          { ...good, changes: { set: [['a', Number.NaN]], del: [] } },
          { ...good, changes: { set: [['a', Infinity]], del: [] } },
          { ...good, changes: { set: [['a', undefined]], del: [] } },
          { ...good, changes: { set: [['a', { f: () => 1 }]], del: [] } },
          { ...good, changes: { set: [['a', 1n]], del: [] } },
          { ...good, changes: { set: [['a', new Date(0)]], del: [] } },
          { ...good, changes: { set: [[1, 1]], del: [] } },
          { ...good, changes: { set: [], del: [1] } },
          { ...good, changes: { set: {}, del: [] } },
          { ...good, changes: undefined },
          null,
        ];
        for (const b of bads) {
          const e = await expectCode(s.writeCheckpoints([good, b as CheckpointRecord]), 'BadRequest');
          expect(e.definite).toBe(true);
        }
        await expectCode(s.writeCheckpoints('x' as unknown as CheckpointRecord[]), 'BadRequest');
        await expectCode(s.loadCheckpoint('n1', -1), 'BadRequest');
        await expectCode(s.loadCheckpoint('', 1), 'BadRequest');
        await expectCode(s.listCheckpoints(1.5), 'BadRequest');
        await expectCode(s.prune('n1', 0), 'BadRequest');
        await expectCode(s.saveCoordinator(coord(0, {})), 'BadRequest');
        await expectCode(s.saveCoordinator({ ...coord(1, {}), cut: { n1: -1 } }), 'BadRequest');
        await expectCode(s.saveCoordinator({ ...coord(1, {}), nodes: 'n1' as unknown as string[] }), 'BadRequest');
        // Nothing of the refused batches was written; the storage still works.
        expect(await s.loadCheckpoint('n1', 1)).toBeNull();
        expect(await s.loadCoordinator()).toBeNull();
        await s.writeCheckpoints([good]);
        expect(asObject((await s.loadCheckpoint('n1', 1))!.state)).toEqual({ a: 1 });
      });
    }
  });
}
