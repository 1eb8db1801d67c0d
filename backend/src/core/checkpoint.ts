import type { Json, NodeId } from '@dse/shared';
import { DseError, isDseError } from '@dse/shared';
import type { CheckpointRecord, Clock, Observer, StateChanges, Storage, TimerId } from './ports';

/**
 * What a checkpoint row weighs beyond its keys, in keys: a row costs about as much to store and to read
 * back on a restore (an index step of the chain, its record and dependencies parsed) as this many keys.
 * It keeps a chain of tiny deltas on a big state short: at most about `state.size / DELTA_ROW_WEIGHT`
 * rows. Storage's prune uses it too (memory.ts).
 */
export const DELTA_ROW_WEIGHT = 16;

/**
 * Chooses between a delta and a full snapshot for each checkpoint, by size only. A delta weighs the
 * keys it writes plus `DELTA_ROW_WEIGHT`; a full snapshot is taken once the deltas since the last one,
 * with this one's keys, reach as many keys as the state holds. So:
 *
 * - a version costs, on average, at most about twice its delta: a full snapshot's cost is spread over
 *   the versions whose deltas added up to it. The cost follows the keys changed, not the state's size;
 * - a restore reads at most about twice the state: a full snapshot and deltas weighing no more than it.
 *
 * There is no count: a big state with small changes takes a full snapshot rarely, a small state often.
 */
export class SnapshotSchedule {
  /** Weight of the deltas since the last full snapshot (keys, plus `DELTA_ROW_WEIGHT` a row). */
  private weightSinceFull = 0;

  /**
   * The state was just restored from a checkpoint: the next one may be a delta on it. (The deltas the
   * restored version already chains onto are not known here: storage's prune compacts a chain that
   * repeated restores let grow, see `Storage.prune`.)
   */
  reset(): void {
    this.weightSinceFull = 0;
  }

  /**
   * The changes a checkpoint records: the whole `state`, or the keys changed since the previous
   * checkpoint (`dirty`, `undefined` marking a delete). `first`: there is no previous one to apply to.
   */
  capture(state: ReadonlyMap<string, Json>, dirty: ReadonlyMap<string, Json | undefined>, first: boolean): { full: boolean; changes: StateChanges } {
    const full = first || this.weightSinceFull + dirty.size >= state.size;
    const changes: StateChanges = { set: [], del: [] };
    if (full) {
      for (const [k, val] of state) changes.set.push([k, val]);
      this.weightSinceFull = 0;
    } else {
      for (const [k, val] of dirty) {
        if (val === undefined) changes.del.push(k);
        else changes.set.push([k, val]);
      }
      this.weightSinceFull += dirty.size + DELTA_ROW_WEIGHT;
    }
    return { full, changes };
  }
}

/** What the writer needs of the node whose checkpoints it writes. */
export interface CheckpointWriterHost {
  readonly id: NodeId;
  readonly clock: Clock;
  readonly storage: Storage;
  readonly observer: Observer;
  /** Batches written at once. */
  readonly writesInFlight: number;
  readonly storageRetryMs: number;
  /** Writes may start now (the node is up, or preparing a recovery: what gets persisted may be kept). */
  canWrite(): boolean;
  /** Bumped on every restore: outcomes of writes started before it are ignored. */
  epoch(): number;
  /** Runs a step; an error it throws stops the node. */
  guarded(fn: () => void): void;
  /** A batch is persisted, and every batch before it. */
  onPersisted(batch: CheckpointRecord[]): void;
}

/** A batch of checkpoints sent to storage: reported persisted once it and every batch before it are written. */
interface WriteSlot {
  batch: CheckpointRecord[];
  written: boolean;
  /** Failed for now (storage unavailable, or an indefinite outcome): written again after `storageRetryMs`. */
  failed: boolean;
}

/**
 * The write queue of one node's checkpoints. Up to `writesInFlight` batches at a time; whatever queued
 * meanwhile goes in the next batch (group commit). Batches may land in any order; they are reported
 * persisted in the order of their versions. A failed batch is written again after `storageRetryMs`
 * and the later ones wait for it; a write fenced off by a newer world-line stops writing until
 * `reset` (the recover of that world-line says what to write again).
 */
export class CheckpointWriter {
  private readonly host: CheckpointWriterHost;
  private queue: CheckpointRecord[] = [];
  /** Batches being written, oldest first (at most `writesInFlight`). */
  private writes: WriteSlot[] = [];
  private retryTimer: TimerId | null = null;
  /** Storage refused a write because a newer world-line started: writes wait for its `recover`. */
  private fenced = false;

  constructor(host: CheckpointWriterHost) {
    this.host = host;
  }

  /** Nothing queued and nothing being written. */
  get idle(): boolean {
    return this.queue.length === 0 && this.writes.length === 0;
  }

  /** Timers held (0 or 1: the retry). */
  get timersHeld(): number {
    return this.retryTimer === null ? 0 : 1;
  }

  /** Queues a checkpoint and starts writing it if a slot is free. */
  enqueue(record: CheckpointRecord): void {
    this.queue.push(record);
    this.pump();
  }

  /**
   * Forgets everything queued or being written (a restore; outcomes of writes in flight change nothing
   * now) and is no longer fenced off; `requeue` are queued again, in order, not yet written.
   */
  reset(requeue: CheckpointRecord[] = []): void {
    this.stop();
    this.fenced = false;
    this.writes = [];
    this.queue = requeue;
  }

  /** Stops the retry timer (the node stopped, or is restoring). */
  stop(): void {
    if (this.retryTimer !== null) {
      this.host.clock.clearTimer(this.retryTimer);
      this.retryTimer = null;
    }
  }

  /** Starts writing what is queued, in as many batches as slots are free. */
  pump(): void {
    if (this.retryTimer !== null || this.fenced) return;
    if (!this.host.canWrite()) return;
    while (this.queue.length > 0 && this.writes.length < this.host.writesInFlight) {
      const slot: WriteSlot = { batch: this.queue, written: false, failed: false };
      this.queue = [];
      this.writes.push(slot);
      this.startWrite(slot);
    }
  }

  private startWrite(slot: WriteSlot): void {
    const host = this.host;
    const epoch = host.epoch();
    // A slot no longer in `writes` was given up (a rollback, a fence): its outcome changes nothing.
    const current = (): boolean => epoch === host.epoch() && this.writes.includes(slot);
    host.storage.writeCheckpoints(slot.batch).then(
      () => {
        if (!current()) return;
        slot.written = true;
        host.guarded(() => {
          while (this.writes.length > 0 && this.writes[0]!.written) host.onPersisted(this.writes.shift()!.batch);
          this.pump();
        });
      },
      (err: unknown) => {
        if (!current()) return;
        this.onWriteFailed(slot, isDseError(err) ? err : new DseError('StorageUnavailable', String(err)));
      },
    );
  }

  private onWriteFailed(slot: WriteSlot, e: DseError): void {
    const host = this.host;
    for (const r of slot.batch) {
      host.observer.emit({
        type: 'checkpointFailed',
        t: host.clock.now(),
        node: host.id,
        worldLine: r.worldLine,
        version: r.version,
        code: e.code,
        definite: e.definite,
      });
    }
    if (e.code === 'StaleWorldLine') {
      // A newer world-line exists and its recover is on its way. Which of these versions it keeps is
      // for it to say: every version not reported yet waits, in order, and the kept ones are written
      // again in the new world-line.
      this.queue = [...this.writes.flatMap((w) => w.batch), ...this.queue];
      this.writes = [];
      this.fenced = true;
      return;
    }
    if (e.definite && e.code !== 'StorageConflict') {
      // The storage refuses these versions for good (say, a value it cannot store): retrying would
      // stop this node's checkpoints, and the cut, forever. The node stops instead; a restart restores
      // the committed cut, without the refused versions, and their requests are rolled back.
      host.guarded(() => {
        throw e;
      });
      return;
    }
    // Indefinite (or a conflict): it may or may not have been written. Writing it again is idempotent;
    // the batches after it wait to be reported until it is.
    slot.failed = true;
    if (this.retryTimer !== null) return;
    this.retryTimer = host.clock.setTimer(host.storageRetryMs, () => {
      this.retryTimer = null;
      for (const w of this.writes) {
        if (!w.failed) continue;
        w.failed = false;
        this.startWrite(w);
      }
      this.pump();
    });
  }
}
