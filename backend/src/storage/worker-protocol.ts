import type { Json, NodeId, Version, WorldLine } from '@dse/shared';
import type { CheckpointMeta, CheckpointRecord, CoordinatorRecord, LoadedCheckpoint } from '../core/ports';

/**
 * What crosses between `WorkerPgliteStorage` (worker-storage.ts) and its thread (pglite-worker.ts):
 * calls `{id, method, args}`, answered `{id, value}` or `{id, error}`. One table of the methods, their
 * arguments and their results, so that both sides are checked against the same signatures.
 */

/** A checkpoint as it crosses: its state as entries (a Map does not cross postMessage as fast as an array). */
export type WireCheckpoint = Omit<LoadedCheckpoint, 'state'> & { state: [string, Json][] };

export interface WorkerCalls {
  writeCheckpoints: { args: [records: readonly CheckpointRecord[]]; result: void };
  loadCheckpoint: { args: [node: NodeId, version: Version]; result: WireCheckpoint | null };
  listCheckpoints: { args: [worldLine: WorldLine]; result: CheckpointMeta[] };
  loadCoordinator: { args: []; result: CoordinatorRecord | null };
  saveCoordinator: { args: [record: CoordinatorRecord]; result: void };
  prune: { args: [node: NodeId, version: Version]; result: void };
  rowCount: { args: [node?: NodeId]; result: number };
  /** A statement of its own (tests and tools): its rows. */
  query: { args: [sql: string, values?: unknown[]]; result: Record<string, unknown>[] };
  close: { args: []; result: void };
}

export type WorkerMethod = keyof WorkerCalls;

/** A call of method `M` (by default: of any method, one union member per method). */
export type WorkerRequest<M extends WorkerMethod = WorkerMethod> = { [K in M]: { id: number; method: K; args: WorkerCalls[K]['args'] } }[M];

export interface WorkerError {
  code: string;
  message: string;
}

/** The answer to call `id`; id 0 answers the start (`value` then tells `describe`). */
export interface WorkerReply {
  id: number;
  value?: unknown;
  error?: WorkerError;
}
