import type { WorldLine } from '@dse/shared';
import { isDseError } from '@dse/shared';
import type { CheckpointRecord, Storage } from '../core/ports';

interface Waiting {
  records: readonly CheckpointRecord[];
  worldLine: WorldLine;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit of checkpoint writes from many callers (the server writes for every node process):
 * the calls that arrive in one event-loop turn, or while `maxInFlight` writes are under way, go to the
 * storage as one `writeCheckpoints` (one transaction, one commit) instead of one each.
 *
 * Each caller still gets the all-or-none answer of its own call: a group holds calls of one world-line
 * only, so the storage's fence refuses all of them or none (`StaleWorldLine`); an indefinite failure
 * (`StorageUnavailable`) is every caller's, who retry (writes are idempotent). Any other refusal (say,
 * one caller's malformed record) must not become the others': the group's calls are then written one by
 * one, each getting its own answer.
 */
export class CheckpointGroupWriter {
  private queue: Waiting[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly storage: Storage,
    private readonly maxInFlight = 2,
    /** Defers the start of a group to the end of the turn (tests pass their own). */
    private readonly defer: (fn: () => void) => void = (fn) => setImmediate(fn),
  ) {}

  write(records: readonly CheckpointRecord[]): Promise<void> {
    const list: unknown = records; // checked as unknown: narrowing the typed parameter would make its elements `any`
    if (!Array.isArray(list) || records.length === 0) return this.storage.writeCheckpoints(records);
    const worldLine = records[0]!.worldLine;
    // Only single-world-line calls can share a fence check; anything else goes alone.
    if (!records.every((r) => typeof r === 'object' && r !== null && r.worldLine === worldLine)) return this.storage.writeCheckpoints(records);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ records, worldLine, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    this.defer(() => {
      this.scheduled = false;
      this.startGroup();
    });
  }

  private startGroup(): void {
    if (this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    const worldLine = this.queue[0]!.worldLine;
    const group = this.queue.filter((w) => w.worldLine === worldLine);
    this.queue = this.queue.filter((w) => w.worldLine !== worldLine);
    this.inFlight++;
    void this.writeGroup(group).finally(() => {
      this.inFlight--;
      this.schedule();
    });
    this.schedule();
  }

  private async writeGroup(group: Waiting[]): Promise<void> {
    try {
      await this.storage.writeCheckpoints(group.length === 1 ? group[0]!.records : group.flatMap((w) => w.records));
      for (const w of group) w.resolve();
      return;
    } catch (e) {
      const shared = group.length === 1 || (isDseError(e) && (e.code === 'StaleWorldLine' || e.code === 'StorageUnavailable'));
      if (shared) {
        for (const w of group) w.reject(e);
        return;
      }
    }
    // A refusal that may be one caller's: each call on its own.
    await Promise.all(
      group.map((w) =>
        this.storage.writeCheckpoints(w.records).then(
          () => w.resolve(),
          (err: unknown) => w.reject(err),
        ),
      ),
    );
  }
}
