import type { Json, NodeId } from '@dse/shared';
import { DseError, isDseError } from '@dse/shared';
import type { CheckpointRecord, Clock, Observer, StateChanges, Storage, TimerId } from './ports';

/**
 * Chooses between a delta and a full snapshot for each checkpoint. A full snapshot at least every
 * `fullSnapshotEvery` checkpoints; deltas in between. A full one is also taken as soon as the deltas
 * since the last one changed as many keys as the state holds: then the deltas written (and read back
 * on a restore) never cost more than about one more full snapshot.
 */
export class SnapshotSchedule {
  private readonly fullSnapshotEvery: number;
  private checkpointsSinceFull = 0;
  /** Keys changed by the deltas since the last full snapshot. */
  private changedSinceFull = 0;

  constructor(fullSnapshotEvery: number) {
    this.fullSnapshotEvery = fullSnapshotEvery;
  }

  /** The state was just restored from a checkpoint: the next one may be a delta on it. */
  reset(): void {
    this.checkpointsSinceFull = 0;
    this.changedSinceFull = 0;
  }

  /**
   * The changes a checkpoint records: the whole `state`, or the keys changed since the previous
   * checkpoint (`dirty`, `undefined` marking a delete). `first`: there is no previous one to apply to.
   */
  capture(state: ReadonlyMap<string, Json>, dirty: ReadonlyMap<string, Json | undefined>, first: boolean): { full: boolean; changes: StateChanges } {
    const full = first || this.checkpointsSinceFull + 1 >= this.fullSnapshotEvery || this.changedSinceFull + dirty.size >= state.size;
    const changes: StateChanges = { set: [], del: [] };
    if (full) {
      for (const [k, val] of state) changes.set.push([k, val]);
      this.checkpointsSinceFull = 0;
      this.changedSinceFull = 0;
    } else {
      for (const [k, val] of dirty) {
        if (val === undefined) changes.del.push(k);
        else changes.set.push([k, val]);
      }
      this.checkpointsSinceFull++;
      this.changedSinceFull += dirty.size;
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
