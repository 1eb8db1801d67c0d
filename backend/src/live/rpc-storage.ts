import type { Json, NodeId, Version } from '@dse/shared';
import { DseError, ERROR_CODES } from '@dse/shared';
import type { CheckpointMeta, CheckpointRecord, CoordinatorRecord, LoadedCheckpoint, Storage } from '../core/ports';
import type { StorageOp, StorageReply } from './wire';

/** What `loadCheckpoint` returns over the wire: the state as entries (a Map does not survive JSON). */
export interface LoadedCheckpointWire extends Omit<LoadedCheckpoint, 'state'> {
  state: [string, Json][];
}

/** Where an RPC storage puts its calls: the node's next up frame. */
export interface StorageChannel {
  connected(): boolean;
  /** Queues a call in the next frame to the server; its answer comes back through `RpcStorage.onReply`. */
  send(id: number, op: StorageOp, args: unknown[]): void;
}

/**
 * A node process's Storage: every call goes to the server, which owns the database (PGlite or
 * PostgreSQL). Calls travel in the node's frames (`UpFrame.s`) and their answers in the server's
 * (`DownFrame.r`), together with whatever else goes the same way in that event-loop turn. A call that
 * gets no answer (connection lost, timeout) rejects with the indefinite `StorageUnavailable`: the write
 * may have happened, and the node retries (writes are idempotent). A node only writes and reads its own
 * checkpoints; the coordinator's calls never leave the server.
 */
export class RpcStorage implements Storage {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout; op: StorageOp }>();

  constructor(
    private readonly channel: StorageChannel,
    /** How long a call may wait for its answer. */
    public timeoutMs: number,
  ) {}

  private call(op: StorageOp, args: unknown[]): Promise<unknown> {
    if (!this.channel.connected()) return Promise.reject(new DseError('StorageUnavailable', 'storage: not connected to the server'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new DseError('StorageUnavailable', `storage: ${op} got no answer in ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer, op });
      this.channel.send(id, op, args);
    });
  }

  /** An answer from the server (unknown ids, say of calls that timed out, are ignored). */
  onReply(id: unknown, reply: unknown): void {
    if (typeof id !== 'number') return;
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    const r = reply as StorageReply | null;
    if (typeof r !== 'object' || r === null) {
      p.reject(new DseError('StorageUnavailable', `storage: ${p.op} got a malformed answer`));
      return;
    }
    if ('error' in r) {
      const code = r.error.code in ERROR_CODES ? r.error.code : 'Internal';
      p.reject(new DseError(code, r.error.message));
      return;
    }
    p.resolve(r.value);
  }

  /** Every call still waiting fails (indefinitely): the connection is gone. */
  failAll(): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new DseError('StorageUnavailable', `storage: ${p.op}: the connection to the server was lost`));
    }
  }

  async writeCheckpoints(records: readonly CheckpointRecord[]): Promise<void> {
    await this.call('writeCheckpoints', [records]);
  }

  async loadCheckpoint(node: NodeId, version: Version): Promise<LoadedCheckpoint | null> {
    const w = (await this.call('loadCheckpoint', [node, version])) as LoadedCheckpointWire | null;
    if (w === null) return null;
    return { ...w, state: new Map(w.state) };
  }

  listCheckpoints(): Promise<CheckpointMeta[]> {
    return Promise.reject(new DseError('BadRequest', 'storage: listCheckpoints is the coordinator’s, not a node’s'));
  }
  loadCoordinator(): Promise<CoordinatorRecord | null> {
    return Promise.reject(new DseError('BadRequest', 'storage: loadCoordinator is the coordinator’s, not a node’s'));
  }
  saveCoordinator(): Promise<void> {
    return Promise.reject(new DseError('BadRequest', 'storage: saveCoordinator is the coordinator’s, not a node’s'));
  }
  prune(): Promise<void> {
    return Promise.reject(new DseError('BadRequest', 'storage: prune is the coordinator’s, not a node’s'));
  }
}
