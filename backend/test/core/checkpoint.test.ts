import type { Json } from '@dse/shared';
import { DseError } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import { CheckpointWriter, SnapshotSchedule } from '../../src/core/checkpoint';
import type { CheckpointRecord, Storage } from '../../src/core/ports';
import { ProcessClock, Scheduler } from '../../src/sim/scheduler';

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

describe('SnapshotSchedule: full snapshot or delta', () => {
  const state = (n: number): Map<string, Json> => new Map(Array.from({ length: n }, (_, i) => [`k${i}`, i]));

  it('the first checkpoint is full, then deltas, and a full one every `fullSnapshotEvery`', () => {
    const s = new SnapshotSchedule(3);
    const st = state(10);
    const dirty = new Map<string, Json | undefined>([
      ['k1', 1],
      ['gone', undefined],
    ]);
    const kinds = [s.capture(st, dirty, true), s.capture(st, dirty, false), s.capture(st, dirty, false), s.capture(st, dirty, false)];
    expect(kinds.map((k) => k.full)).toEqual([true, false, false, true]);
    expect(kinds[0]!.changes.set).toHaveLength(10);
    expect(kinds[1]!.changes).toEqual({ set: [['k1', 1]], del: ['gone'] });
  });

  it('a full one as soon as the deltas since the last one changed as many keys as the state holds', () => {
    const s = new SnapshotSchedule(100);
    const st = state(4);
    const dirty = new Map<string, Json | undefined>([
      ['k0', 0],
      ['k1', 1],
    ]);
    s.capture(st, dirty, true);
    expect([s.capture(st, dirty, false).full, s.capture(st, dirty, false).full, s.capture(st, dirty, false).full]).toEqual([false, true, false]);
    s.reset();
    expect(s.capture(st, dirty, false).full).toBe(false);
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
