import type { Json } from '@dse/shared';
import { DseError } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import { CheckpointWriter, DELTA_ROW_WEIGHT, SnapshotSchedule } from '../../src/core/checkpoint';
import type { CheckpointRecord, Storage } from '../../src/core/ports';
import { Rng } from '../../src/sim/rng';
import { ProcessClock, Scheduler } from '../../src/sim/scheduler';
import { MemoryStorage } from '../../src/storage/memory';

const record = (version: number): CheckpointRecord => ({
  node: 'n1',
  worldLine: 1,
  version,
  prevVersion: version - 1,
  deps: {},
  full: false,
  changes: { set: [], del: [] },
});

/** A storage whose writes the test settles one by one, in any order. */
function manualStorage() {
  const pending: { batch: number[]; resolve: () => void; reject: (e: unknown) => void }[] = [];
  const unused = (): never => {
    throw new Error('not used by the writer');
  };
  const storage: Storage = {
    writeCheckpoints: (records) => new Promise<void>((resolve, reject) => pending.push({ batch: records.map((r) => r.version), resolve, reject })),
    loadCheckpoint: unused,
    listCheckpoints: unused,
    loadCoordinator: unused,
    saveCoordinator: unused,
    prune: unused,
  };
  return { storage, pending };
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

function writer(storage: Storage, opts: { canWrite?: () => boolean } = {}) {
  const sched = new Scheduler();
  const persisted: number[][] = [];
  const fatal: unknown[] = [];
  const failed: string[] = [];
  const w = new CheckpointWriter({
    id: 'n1',
    clock: new ProcessClock(sched),
    storage,
    observer: { emit: (e) => (e.type === 'checkpointFailed' ? failed.push(`${e.version}:${e.code}`) : undefined) },
    writesInFlight: 2,
    storageRetryMs: 50,
    canWrite: opts.canWrite ?? (() => true),
    epoch: () => 0,
    guarded: (fn) => {
      try {
        fn();
      } catch (e) {
        fatal.push(e);
      }
    },
    onPersisted: (batch) => persisted.push(batch.map((r) => r.version)),
  });
  return { w, sched, persisted, fatal, failed };
}

describe('SnapshotSchedule: full snapshot or delta, by size only', () => {
  const state = (n: number): Map<string, Json> => new Map(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
  const dirtyOf = (n: number): Map<string, Json | undefined> => new Map(Array.from({ length: n }, (_, i) => [`k${i}`, -i]));

  it('the first checkpoint is full, then deltas of the changed keys (a delete as del)', () => {
    const s = new SnapshotSchedule();
    const st = state(100);
    const dirty = new Map<string, Json | undefined>([
      ['k1', 1],
      ['gone', undefined],
    ]);
    const first = s.capture(st, dirty, true);
    expect(first.full).toBe(true);
    expect(first.changes.set).toHaveLength(100);
    expect(first.changes.del).toEqual([]);
    expect(s.capture(st, dirty, false)).toEqual({ full: false, changes: { set: [['k1', 1]], del: ['gone'] } });
  });

  it('no full snapshot while the deltas since the last one weigh less than the state: none after a count', () => {
    const s = new SnapshotSchedule();
    const st = state(1000);
    s.capture(st, new Map(), true);
    // Deltas of 10 keys weigh 10 + DELTA_ROW_WEIGHT: 39 of them (1,014) before the 40th reaches 1,000.
    const kinds = Array.from({ length: 200 }, () => s.capture(st, dirtyOf(10), false).full);
    const fulls = kinds.map((f, i) => (f ? i + 1 : -1)).filter((i) => i > 0);
    const period = Math.ceil((1000 - 10) / (10 + DELTA_ROW_WEIGHT)) + 1;
    expect(period).toBe(40);
    expect(fulls).toEqual([40, 80, 120, 160, 200]);
    // The old count of 32 no longer takes one.
    expect(kinds[31]).toBe(false);
  });

  it('changes as big as the state: a full snapshot at once; an empty state: always full', () => {
    const s = new SnapshotSchedule();
    s.capture(state(10), new Map(), true);
    expect(s.capture(state(10), dirtyOf(10), false).full).toBe(true);
    expect(s.capture(state(10), dirtyOf(3), false).full).toBe(false);
    expect(s.capture(new Map(), new Map(), false).full).toBe(true);
  });

  it('a version costs at most about twice its delta, and a chain stays short, whatever the state and the changes', () => {
    const rng = new Rng(7);
    const dirties = new Map<number, Map<string, Json | undefined>>();
    const dirty = (n: number): Map<string, Json | undefined> => dirties.get(n) ?? dirties.set(n, dirtyOf(n)).get(n)!;
    for (const size of [50, 1_000, 20_000]) {
      for (const maxChanged of [1, 20, Math.ceil(size / 10)]) {
        const s = new SnapshotSchedule();
        const st = state(size);
        s.capture(st, new Map(), true);
        let written = 0; // keys written, plus DELTA_ROW_WEIGHT a row
        let deltaWeight = 0; // what the same versions would weigh as deltas
        let chain = 0;
        let longest = 0;
        const versions = 2_000;
        for (let v = 0; v < versions; v++) {
          const changed = 1 + Math.floor(rng.next() * maxChanged);
          const { full, changes } = s.capture(st, dirty(Math.min(changed, size)), false);
          written += changes.set.length + changes.del.length + DELTA_ROW_WEIGHT;
          deltaWeight += Math.min(changed, size) + DELTA_ROW_WEIGHT;
          chain = full ? 0 : chain + 1;
          longest = Math.max(longest, chain);
        }
        // The first cycle may be cut short by the end of the run: one more full snapshot of slack.
        expect(written, `${size} keys, up to ${maxChanged} changed`).toBeLessThanOrEqual(2 * deltaWeight + size + DELTA_ROW_WEIGHT);
        // A restore reads at most about twice the state, in at most about state / DELTA_ROW_WEIGHT deltas.
        expect(longest).toBeLessThanOrEqual(Math.ceil(size / DELTA_ROW_WEIGHT) + 1);
      }
    }
  });

  it('restore after many deltas, pruned as the coordinator does, reads back the state; pruning rewrites nothing', () => {
    const rng = new Rng(11);
    const storage = new MemoryStorage();
    const s = new SnapshotSchedule();
    const st = new Map<string, Json>();
    for (let i = 0; i < 500; i++) st.set(`k${i}`, i);
    const fulls: number[] = [];
    let prev = 0;
    for (let v = 1; v <= 400; v++) {
      const dirty = new Map<string, Json | undefined>();
      for (let i = 0; i < 1 + Math.floor(rng.next() * 8); i++) {
        const k = `k${Math.floor(rng.next() * 600)}`;
        if (rng.next() < 0.2) {
          st.delete(k);
          dirty.set(k, undefined);
        } else {
          st.set(k, v);
          dirty.set(k, v);
        }
      }
      const { full, changes } = s.capture(st, dirty, v === 1);
      if (full) fulls.push(v);
      storage.writeSync([{ node: 'n1', worldLine: 1, version: v, prevVersion: prev, deps: {}, full, changes }]);
      prev = v;
      if (v % 7 === 0) {
        // The cut trails the newest version; prune at it, as the coordinator does after each save.
        const cut = v - 3;
        storage.pruneSync('n1', cut);
        const base = fulls.filter((f) => f <= cut).at(-1)!;
        // Kept: the full snapshot at or below the cut and every version after it; nothing below it.
        const held = storage.rowCount('n1');
        expect(held, `at ${v}`).toBe(v - base + 1);
      }
      expect(Object.fromEntries(storage.loadSync('n1', v)!.state), `version ${v}`).toEqual(Object.fromEntries(st));
    }
    // Deltas of 1 to 8 keys (17 to 24 with their rows) on about 500: a full snapshot every 20 to 35 versions.
    expect(fulls.length).toBeGreaterThan(10);
    for (let i = 1; i < fulls.length; i++) expect(fulls[i]! - fulls[i - 1]!).toBeGreaterThanOrEqual(15);
  });
});

describe('CheckpointWriter: the write queue', () => {
  it('writes up to two batches at once, groups what queues meanwhile, and reports in version order', async () => {
    const { storage, pending } = manualStorage();
    const { w, persisted } = writer(storage);
    w.enqueue(record(1));
    w.enqueue(record(2));
    w.enqueue(record(3));
    w.enqueue(record(4));
    expect(pending.map((p) => p.batch)).toEqual([[1], [2]]);
    pending[1]!.resolve(); // the second lands first: nothing is reported before the first
    await flush();
    expect(persisted).toEqual([]);
    pending[0]!.resolve();
    await flush();
    expect(persisted).toEqual([[1], [2]]);
    expect(pending.map((p) => p.batch)).toEqual([[1], [2], [3, 4]]);
    expect(w.idle).toBe(false);
    pending[2]!.resolve();
    await flush();
    expect(persisted).toEqual([[1], [2], [3, 4]]);
    expect(w.idle).toBe(true);
  });

  it('an indefinite failure is written again after storageRetryMs; the batches after it wait', async () => {
    const { storage, pending } = manualStorage();
    const { w, sched, persisted, failed } = writer(storage);
    w.enqueue(record(1));
    w.enqueue(record(2));
    pending[0]!.reject(new DseError('StorageUnavailable', 'down'));
    pending[1]!.resolve();
    await flush();
    expect(failed).toEqual(['1:StorageUnavailable']);
    expect(persisted).toEqual([]);
    expect(w.timersHeld).toBe(1);
    sched.step();
    expect(pending.map((p) => p.batch)).toEqual([[1], [2], [1]]);
    pending[2]!.resolve();
    await flush();
    expect(persisted).toEqual([[1], [2]]);
    expect(w.timersHeld).toBe(0);
  });

  it('fenced off by a newer world-line: nothing more is written until reset, which queues what it is given', async () => {
    const { storage, pending } = manualStorage();
    const { w, persisted } = writer(storage);
    w.enqueue(record(1));
    pending[0]!.reject(new DseError('StaleWorldLine', 'newer'));
    await flush();
    w.enqueue(record(2));
    expect(pending).toHaveLength(1);
    w.reset([{ ...record(1), worldLine: 2 }]);
    w.pump();
    expect(pending.map((p) => p.batch)).toEqual([[1], [1]]);
    pending[1]!.resolve();
    await flush();
    expect(persisted).toEqual([[1]]);
  });

  it('a definite refusal stops the node (guarded), and writes wait while the node cannot write', async () => {
    const { storage, pending } = manualStorage();
    let up = false;
    const { w, fatal } = writer(storage, { canWrite: () => up });
    w.enqueue(record(1));
    expect(pending).toHaveLength(0);
    up = true;
    w.pump();
    pending[0]!.reject(new DseError('BadRequest', 'too deep'));
    await flush();
    expect(fatal).toHaveLength(1);
    expect((fatal[0] as DseError).code).toBe('BadRequest');
  });
});
