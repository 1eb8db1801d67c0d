import type { Json, NodeId, Version } from '@dse/shared';
import { DseError, ERROR_CODES } from '@dse/shared';
import type { Socket } from 'socket.io-client';
import type { CheckpointMeta, CheckpointRecord, CoordinatorRecord, LoadedCheckpoint, Storage } from '../core/ports';
import type { StorageOp, StorageReply } from './wire';

/** What `loadCheckpoint` returns over the wire: the state as entries (a Map does not survive JSON). */
export interface LoadedCheckpointWire extends Omit<LoadedCheckpoint, 'state'> {
  state: [string, Json][];
}

/**
 * A node process's Storage: every call goes to the server, which owns the database (PGlite or
 * PostgreSQL). A call that gets no answer (connection lost, timeout) rejects with the indefinite
 * `StorageUnavailable`: the write may have happened, and the node retries (writes are idempotent).
 * A node only writes and reads its own checkpoints; the coordinator's calls never leave the server.
 */
export class RpcStorage implements Storage {
  constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {}

  private call(op: StorageOp, args: unknown[]): Promise<unknown> {
    if (!this.socket.connected) return Promise.reject(new DseError('StorageUnavailable', 'storage: not connected to the server'));
    return new Promise((resolve, reject) => {
      this.socket.timeout(this.timeoutMs).emit('st', op, args, (err: Error | null, reply: StorageReply) => {
        if (err !== null) {
          reject(new DseError('StorageUnavailable', `storage: ${op} got no answer in ${this.timeoutMs} ms`));
          return;
        }
        if ('error' in reply) {
          const code = reply.error.code in ERROR_CODES ? reply.error.code : 'Internal';
          reject(new DseError(code, reply.error.message));
          return;
        }
        resolve(reply.value);
      });
    });
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
